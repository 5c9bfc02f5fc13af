# Helpers that give deq's optional component targets (deq::kokkos, deq::cuda, deq::text) their usage
# requirements. Used in two places, so the build tree and the installed package agree:
#   - deq's own CMakeLists.txt (DEQ_ENABLE_KOKKOS / DEQ_ENABLE_CUDA), on INTERFACE libraries;
#   - the installed deqConfig.cmake (find_package(deq COMPONENTS Kokkos CUDA)), on IMPORTED
#     INTERFACE targets.
# Nothing here changes global state: only the named target is modified.
include_guard(GLOBAL)

# deq_add_kokkos_usage(<target>)
# Call after a successful find_package(Kokkos) in the calling scope. Links <target> to Kokkos.
#
# A standalone Kokkos (3.x, 4.x, 5.x) provides a working Kokkos::kokkos target, whose include
# directories come through Kokkos::kokkoscore. Debian bookworm's libtrilinos-kokkos-dev (Kokkos
# 3.4.01 built by TriBITS) ships a Kokkos::kokkos whose INTERFACE_INCLUDE_DIRECTORIES is the
# non-existent <prefix>/lib/include (generate-time error when linked); its headers really live in
# ${Kokkos_INCLUDE_DIRS} (<prefix>/include/trilinos) and its libraries are ${Kokkos_LIBRARIES}.
# The Kokkos::kokkos target is used when it has no include directory of its own or one of them
# holds Kokkos_Core.hpp; otherwise the variables are used, with the headers as SYSTEM includes.
function(deq_add_kokkos_usage target)
  set(use_target FALSE)
  if(TARGET Kokkos::kokkos)
    set(use_target TRUE)
    get_target_property(dirs Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
    if(dirs)
      set(use_target FALSE)
      foreach(dir IN LISTS dirs)
        if(dir MATCHES "\\$<" OR EXISTS "${dir}/Kokkos_Core.hpp")
          set(use_target TRUE)
        endif()
      endforeach()
    endif()
  endif()

  if(use_target)
    target_link_libraries(${target} INTERFACE Kokkos::kokkos)
    return()
  endif()

  set(found_core FALSE)
  foreach(dir IN LISTS Kokkos_INCLUDE_DIRS)
    if(EXISTS "${dir}/Kokkos_Core.hpp")
      set(found_core TRUE)
    endif()
  endforeach()
  if(NOT found_core OR NOT Kokkos_LIBRARIES)
    message(FATAL_ERROR
      "deq: the Kokkos found at '${Kokkos_DIR}' has neither a usable Kokkos::kokkos target nor "
      "Kokkos_INCLUDE_DIRS (with Kokkos_Core.hpp) and Kokkos_LIBRARIES. Point Kokkos_ROOT at a "
      "Kokkos installation.")
  endif()
  target_include_directories(${target} SYSTEM INTERFACE ${Kokkos_INCLUDE_DIRS})
  target_link_libraries(${target} INTERFACE ${Kokkos_LIBRARIES})
endfunction()

# deq_toolkit_cccl_hints(<out-var>)
# Call after a successful find_package(CUDAToolkit). Sets <out-var> to the directories where the
# CUDA toolkit keeps its own CCCL package (<toolkit>/lib64/cmake/cccl, or lib/cmake/cccl).
#
# deq::cuda deliberately uses the CCCL (Thrust, CUB, libcu++) that ships with the CUDA toolkit
# FindCUDAToolkit selected, the copy nvcc itself puts on the include path. The search is limited to
# these hints (NO_DEFAULT_PATH), so another CCCL/Thrust on CMAKE_PREFIX_PATH or in /usr (Debian's
# libthrust-dev 1.17) cannot shadow it. To use a different CCCL, set CCCL_DIR to the directory that
# contains its cccl-config.cmake; an explicit CCCL_DIR always wins.
function(deq_toolkit_cccl_hints out_var)
  set(hints)
  foreach(dir IN ITEMS "${CUDAToolkit_LIBRARY_DIR}" "${CUDAToolkit_TARGET_DIR}/lib64" "${CUDAToolkit_TARGET_DIR}/lib"
                       "${CUDAToolkit_LIBRARY_ROOT}/lib64" "${CUDAToolkit_LIBRARY_ROOT}/lib")
    if(dir AND IS_DIRECTORY "${dir}/cmake/cccl")
      list(APPEND hints "${dir}/cmake/cccl")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES hints)
  set(${out_var} "${hints}" PARENT_SCOPE)
endfunction()

# deq_find_toolkit_cccl([REQUIRED])
# Build-tree counterpart of the find_dependency(CCCL ...) call in deqConfig.cmake.
macro(deq_find_toolkit_cccl)
  deq_toolkit_cccl_hints(_deq_cccl_hints)
  find_package(CCCL CONFIG ${ARGN} HINTS ${_deq_cccl_hints} NO_DEFAULT_PATH)
  unset(_deq_cccl_hints)
endmacro()

# deq_add_cuda_usage(<target>)
# Call after find_package(CUDAToolkit) and the toolkit's CCCL were found. Links <target> to the
# CUDA runtime (CUDA::cudart) and to CCCL::CCCL. No CUDA architectures or compile flags are set:
# those belong to the consumer.
function(deq_add_cuda_usage target)
  target_link_libraries(${target} INTERFACE CUDA::cudart CCCL::CCCL)
endfunction()

# deq_find_utf8proc([REQUIRED])
# Finds utf8proc (Unicode normalisation, categories and case mapping used by the BERT tokenizer in
# deq/text): sets DEQ_UTF8PROC_INCLUDE_DIR, DEQ_UTF8PROC_LIBRARY (cache) and deq_utf8proc_FOUND in
# the calling scope. With REQUIRED a missing utf8proc is a fatal error naming the package.
function(deq_find_utf8proc)
  find_path(DEQ_UTF8PROC_INCLUDE_DIR utf8proc.h)
  find_library(DEQ_UTF8PROC_LIBRARY NAMES utf8proc)
  if(DEQ_UTF8PROC_INCLUDE_DIR AND DEQ_UTF8PROC_LIBRARY)
    set(deq_utf8proc_FOUND TRUE PARENT_SCOPE)
  else()
    set(deq_utf8proc_FOUND FALSE PARENT_SCOPE)
    if("${ARGN}" STREQUAL "REQUIRED")
      message(FATAL_ERROR "deq: utf8proc (header utf8proc.h and library) not found; install it "
                          "(Debian: apt-get install libutf8proc-dev) or set DEQ_UTF8PROC_INCLUDE_DIR / DEQ_UTF8PROC_LIBRARY")
    endif()
  endif()
endfunction()

# deq_add_text_usage(<target>)
# Call after a successful deq_find_utf8proc(). Links <target> to utf8proc.
function(deq_add_text_usage target)
  target_include_directories(${target} SYSTEM INTERFACE ${DEQ_UTF8PROC_INCLUDE_DIR})
  target_link_libraries(${target} INTERFACE ${DEQ_UTF8PROC_LIBRARY})
endfunction()

# deq_find_cblas([REQUIRED])
# Finds a CBLAS for deq/bert (the encoder's linear layers call cblas_sgemm): BLAS (vendor OpenBLAS
# unless the caller set BLA_VENDOR), the cblas.h header (also under include/openblas) and Threads.
# Sets DEQ_CBLAS_INCLUDE_DIR (cache) and deq_cblas_FOUND in the calling scope; the imported targets
# BLAS::BLAS and Threads::Threads are created in the calling directory. With REQUIRED a missing
# piece is a fatal error naming the Debian package.
function(deq_find_cblas)
  set(_deq_quiet QUIET)
  if("${ARGN}" STREQUAL "REQUIRED")
    set(_deq_quiet)
  endif()
  if(NOT DEFINED BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)   # function scope: the caller's BLA_VENDOR is untouched
  endif()
  find_package(Threads ${_deq_quiet})
  find_package(BLAS ${_deq_quiet})
  find_path(DEQ_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
  if(Threads_FOUND AND BLAS_FOUND AND DEQ_CBLAS_INCLUDE_DIR AND TARGET BLAS::BLAS)
    set(deq_cblas_FOUND TRUE PARENT_SCOPE)
  else()
    set(deq_cblas_FOUND FALSE PARENT_SCOPE)
    if("${ARGN}" STREQUAL "REQUIRED")
      message(FATAL_ERROR "deq: deq/bert needs a CBLAS (BLAS library ${BLA_VENDOR} and cblas.h) and threads; "
                          "install them (Debian: apt-get install libopenblas-dev) or set BLA_VENDOR / DEQ_CBLAS_INCLUDE_DIR")
    endif()
  endif()
endfunction()

# deq_add_bert_usage(<target>)
# Call after a successful deq_find_cblas(). Links <target> to the CBLAS and to Threads.
function(deq_add_bert_usage target)
  target_include_directories(${target} SYSTEM INTERFACE ${DEQ_CBLAS_INCLUDE_DIR})
  target_link_libraries(${target} INTERFACE BLAS::BLAS Threads::Threads)
endfunction()
