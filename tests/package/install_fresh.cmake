# Installs the deq build tree BUILD_DIR into a fresh PREFIX and checks the installed layout.
# Usage: cmake -DBUILD_DIR=... -DPREFIX=... -DSOURCE_INCLUDE_DIR=... -P install_fresh.cmake
foreach(var BUILD_DIR PREFIX SOURCE_INCLUDE_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_fresh.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()

# The CMake package lives in share/cmake/deq (architecture-independent).
foreach(file deqConfig.cmake deqConfigVersion.cmake deqTargets.cmake deqComponents.cmake)
  if(NOT EXISTS "${PREFIX}/share/cmake/deq/${file}")
    message(FATAL_ERROR "missing ${PREFIX}/share/cmake/deq/${file}")
  endif()
endforeach()

# Every file of the source include/ tree is installed, and nothing else lands under include/.
file(GLOB_RECURSE source_headers RELATIVE "${SOURCE_INCLUDE_DIR}" "${SOURCE_INCLUDE_DIR}/*")
file(GLOB_RECURSE installed_files RELATIVE "${PREFIX}/include" "${PREFIX}/include/*")
list(SORT source_headers)
list(SORT installed_files)
if(NOT source_headers STREQUAL installed_files)
  message(FATAL_ERROR "installed include/ differs from the source tree:\n"
    "  source:    ${source_headers}\n  installed: ${installed_files}")
endif()
list(LENGTH installed_files count)

# A header-only package installs no libraries.
file(GLOB_RECURSE libs "${PREFIX}/lib*/*")
list(FILTER libs INCLUDE REGEX "\\.(a|so|so\\..*)$")
if(libs)
  message(FATAL_ERROR "unexpected libraries installed: ${libs}")
endif()
message(STATUS "installed ${count} header files and the CMake package into ${PREFIX}")
