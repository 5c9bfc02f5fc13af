# The `docs` target (DEQ_BUILD_DOCS): Doxygen HTML for the public headers and docs/*.md.
# docs/Doxyfile.in is configured into the build tree; cmake/deqRunDoxygen.cmake runs Doxygen and
# fails on any warning (raw log: <build>/docs/doxygen-warnings.log; the warnings that fail the build:
# <build>/docs/doxygen-errors.log). Functions without @return are tolerated unless
# DEQ_DOCS_STRICT_RETURNS is ON (see deqRunDoxygen.cmake). The CTest test docs.no_warnings checks
# the error log and the generated index when tests are enabled.
find_package(Doxygen 1.9 REQUIRED)
option(DEQ_DOCS_STRICT_RETURNS "Fail the docs build on functions without @return too" ON)

set(DEQ_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs)

# Pages: docs/mainpage.md and the other docs/*.md, except generated result reports (results*.md).
file(GLOB deq_doc_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
list(FILTER deq_doc_pages EXCLUDE REGEX "/results[^/]*\\.md$")
file(GLOB_RECURSE deq_doc_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/deq/*.hpp)

set(DEQ_DOXYGEN_INPUT "\"${PROJECT_SOURCE_DIR}/include/deq\"")
foreach(page IN LISTS deq_doc_pages)
  string(APPEND DEQ_DOXYGEN_INPUT " \"${page}\"")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)

add_custom_command(
  OUTPUT ${DEQ_DOCS_OUTPUT_DIR}/html/index.html
  COMMAND ${CMAKE_COMMAND}
    -DDOXYGEN=$<TARGET_FILE:Doxygen::doxygen>
    -DDOXYFILE=${PROJECT_BINARY_DIR}/Doxyfile
    -DLOG=${DEQ_DOCS_OUTPUT_DIR}/doxygen-warnings.log
    -DERRORS=${DEQ_DOCS_OUTPUT_DIR}/doxygen-errors.log
    -DOUTPUT_DIR=${DEQ_DOCS_OUTPUT_DIR}
    -DSTRICT_RETURNS=${DEQ_DOCS_STRICT_RETURNS}
    -P ${PROJECT_SOURCE_DIR}/cmake/deqRunDoxygen.cmake
  DEPENDS
    ${PROJECT_BINARY_DIR}/Doxyfile ${PROJECT_SOURCE_DIR}/cmake/deqRunDoxygen.cmake
    ${deq_doc_pages} ${deq_doc_headers}
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "Doxygen: API documentation (warnings are errors)"
  VERBATIM)
add_custom_target(docs ALL DEPENDS ${DEQ_DOCS_OUTPUT_DIR}/html/index.html)

if(BUILD_TESTING AND PROJECT_IS_TOP_LEVEL)
  add_test(NAME docs.no_warnings
    COMMAND ${CMAKE_COMMAND}
      -DERRORS=${DEQ_DOCS_OUTPUT_DIR}/doxygen-errors.log
      -DINDEX=${DEQ_DOCS_OUTPUT_DIR}/html/index.html
      -P ${PROJECT_SOURCE_DIR}/cmake/deqRunDoxygen.cmake)
  set_tests_properties(docs.no_warnings PROPERTIES LABELS docs)
endif()
