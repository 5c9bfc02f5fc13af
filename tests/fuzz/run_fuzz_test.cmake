# Runs one libFuzzer target for CTest (see tests/fuzz/CMakeLists.txt):
#   cmake -DFUZZER=<exe> -DSEEDS=<seed dir> -DWORK=<work dir> -DMODE=seeds|fuzz [-DSECONDS=20] [-DDICT=<file>]
#         [-DRSS_LIMIT_MB=2048] [-DINPUT_TIMEOUT=10] -P run_fuzz_test.cmake
# MODE=seeds runs every seed file once; MODE=fuzz fuzzes for SECONDS on a fresh copy of the seeds in
# WORK/corpus. Crash reproducers go to WORK/artifacts/. Any finding makes the test fail.
cmake_policy(VERSION 3.25)
foreach(var FUZZER SEEDS WORK MODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzz_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED RSS_LIMIT_MB)
  set(RSS_LIMIT_MB 2048)
endif()
if(NOT DEFINED INPUT_TIMEOUT)
  set(INPUT_TIMEOUT 10)
endif()

file(GLOB seed_files LIST_DIRECTORIES false ${SEEDS}/*)
list(SORT seed_files)
if(NOT seed_files)
  message(FATAL_ERROR "deq fuzz: no seed file in ${SEEDS}")
endif()
set(artifacts ${WORK}/artifacts)
file(MAKE_DIRECTORY ${artifacts})
set(limits -rss_limit_mb=${RSS_LIMIT_MB} -timeout=${INPUT_TIMEOUT} -artifact_prefix=${artifacts}/)

if(MODE STREQUAL "seeds")
  list(LENGTH seed_files count)
  message(STATUS "deq fuzz: running ${count} seed files of ${SEEDS} once each")
  execute_process(COMMAND ${FUZZER} ${limits} ${seed_files} WORKING_DIRECTORY ${WORK} RESULT_VARIABLE rc)
elseif(MODE STREQUAL "fuzz")
  if(NOT DEFINED SECONDS)
    set(SECONDS 20)
  endif()
  set(corpus ${WORK}/corpus)
  file(REMOVE_RECURSE ${corpus})
  file(MAKE_DIRECTORY ${corpus})
  file(COPY ${seed_files} DESTINATION ${corpus})
  set(dict_arg)
  if(DICT)
    set(dict_arg -dict=${DICT})
  endif()
  message(STATUS "deq fuzz: fuzzing for ${SECONDS} s on a copy of ${SEEDS} in ${corpus}")
  execute_process(COMMAND ${FUZZER} ${limits} -max_total_time=${SECONDS} -print_final_stats=1 ${dict_arg} ${corpus}
                  WORKING_DIRECTORY ${WORK} RESULT_VARIABLE rc)
else()
  message(FATAL_ERROR "run_fuzz_test.cmake: MODE must be seeds or fuzz, got '${MODE}'")
endif()

if(NOT rc EQUAL 0)
  message(FATAL_ERROR "deq fuzz: ${FUZZER} reported a finding (exit status ${rc}); the reproducer is in ${artifacts}/. "
                      "Reproduce with: ${FUZZER} <file>; minimise with: ${FUZZER} -minimize_crash=1 -runs=10000 <file> "
                      "(docs/fuzzing.md)")
endif()
