# Script mode helper of cmake/deqDocs.cmake.
#
# Run:   cmake -DDOXYGEN=<exe> -DDOXYFILE=<file> -DLOG=<raw warning log> -DERRORS=<error log>
#              -DOUTPUT_DIR=<dir> [-DSTRICT_RETURNS=ON] -P deqRunDoxygen.cmake
#   Runs Doxygen (WARN_AS_ERROR = FAIL_ON_WARNINGS, warnings written to LOG), prints the warnings,
#   writes the ones that count as errors to ERRORS and fails if there is any.
#   Doxygen 1.9.4's WARN_NO_PARAMDOC also demands @return on every documented non-void function.
#   deq's documentation rules require @param and @tparam but not @return, so unless
#   STRICT_RETURNS is ON the single-line "return type of member ... is not documented" warnings
#   are reported as a count and do not fail the build. Every other warning does.
# Check: cmake -DERRORS=<error log> -DINDEX=<html/index.html> -P deqRunDoxygen.cmake
#   (the docs.no_warnings test) fails unless the HTML index exists and the error log is empty.
if(DEFINED DOXYGEN)
  file(MAKE_DIRECTORY "${OUTPUT_DIR}")
  file(REMOVE "${LOG}" "${ERRORS}")
  execute_process(COMMAND "${DOXYGEN}" "${DOXYFILE}" RESULT_VARIABLE rc)
  set(raw "")
  if(EXISTS "${LOG}")
    file(READ "${LOG}" raw)
  endif()

  set(errors "${raw}")
  set(tolerated 0)
  if(NOT STRICT_RETURNS)
    string(REGEX MATCHALL "return type of member [^\n]* is not documented" returns "${raw}")
    list(LENGTH returns tolerated)
    string(REGEX REPLACE "[^\n]*return type of member [^\n]* is not documented[^\n]*\n?" "" errors "${raw}")
  endif()
  string(STRIP "${errors}" errors)
  file(WRITE "${ERRORS}" "${errors}")

  if(tolerated GREATER 0)
    message(STATUS "Doxygen: ${tolerated} functions without @return (allowed; see ${LOG})")
  endif()
  if(NOT errors STREQUAL "")
    file(REMOVE "${OUTPUT_DIR}/html/index.html")   # so the next build runs Doxygen again
    message("${errors}")
    string(REGEX MATCHALL "\n" newlines "${errors}\n")
    list(LENGTH newlines count)
    message(FATAL_ERROR "Doxygen reported ${count} warning line(s) (see ${ERRORS}); warnings are errors")
  endif()
  if(NOT rc EQUAL 0 AND tolerated EQUAL 0)
    file(REMOVE "${OUTPUT_DIR}/html/index.html")
    message(FATAL_ERROR "Doxygen failed (exit code ${rc})")
  endif()
  if(NOT EXISTS "${OUTPUT_DIR}/html/index.html")
    message(FATAL_ERROR "Doxygen did not write ${OUTPUT_DIR}/html/index.html")
  endif()
else()
  if(NOT EXISTS "${INDEX}")
    message(FATAL_ERROR "missing ${INDEX}: the docs target did not produce the HTML documentation")
  endif()
  if(NOT EXISTS "${ERRORS}")
    message(FATAL_ERROR "missing ${ERRORS}: the docs target did not run")
  endif()
  file(READ "${ERRORS}" errors)
  if(NOT errors STREQUAL "")
    message(FATAL_ERROR "Doxygen warnings:\n${errors}")
  endif()
  message(STATUS "docs: ${INDEX} generated with no Doxygen warnings")
endif()
