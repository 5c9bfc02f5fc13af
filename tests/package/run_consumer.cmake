# Configures, builds and tests a consumer project in a fresh binary directory with
# `ctest --build-and-test`.
#   -DCTEST_COMMAND -DSOURCE_DIR -DBINARY_DIR -DGENERATOR -DMAKE_PROGRAM
#   -DOPTIONS=<-D...>|<-D...>   ('|'-separated configure options)
#   -DEXPECT_FAILURE=<regex>    (optional) the run must fail and its output must match <regex>
file(REMOVE_RECURSE "${BINARY_DIR}")
string(REPLACE "|" ";" options "${OPTIONS}")
set(command "${CTEST_COMMAND}" --build-and-test "${SOURCE_DIR}" "${BINARY_DIR}"
  --build-generator "${GENERATOR}")
if(MAKE_PROGRAM)
  list(APPEND command --build-makeprogram "${MAKE_PROGRAM}")
endif()
list(APPEND command --build-options ${options}
  --test-command "${CTEST_COMMAND}" --output-on-failure --no-tests=error)

execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(EXPECT_FAILURE)
  if(rc EQUAL 0)
    message(FATAL_ERROR "the consumer was expected to fail, but it succeeded")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat_out "${out}")   # CMake wraps long messages
  if(NOT flat_out MATCHES "${EXPECT_FAILURE}")
    message(FATAL_ERROR "the consumer failed, but not with the expected error /${EXPECT_FAILURE}/")
  endif()
  message(STATUS "failed as expected: /${EXPECT_FAILURE}/")
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer project failed (${rc})")
endif()
