# deq_enable_cuda_language(): enables CUDA in the calling directory for deq's own CUDA translation units
# (tests/cuda, benchmarks), with nvcc found through the toolkit when it is not on PATH, the C++ compiler
# as nvcc's host compiler, and the compile check's architectures unless the caller chose some
# (CMAKE_CUDA_ARCHITECTURES is the consumer's choice; deq never sets it for them). A macro, because
# enable_language() must run at file scope. Developer builds only (not installed).
set(DEQ_CUDA_CHECK_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures of the nvcc compile check")
set(deq_cuda_flags
  -std=c++20
  -Werror=all-warnings
  "-Xcompiler=-Wall,-Wextra")
macro(deq_enable_cuda_language)
  if(NOT CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit REQUIRED)   # locates /usr/local/cuda when nvcc is not on PATH
    set(CMAKE_CUDA_COMPILER "${CUDAToolkit_NVCC_EXECUTABLE}" CACHE FILEPATH "CUDA compiler")
  endif()
  if(NOT CMAKE_CUDA_HOST_COMPILER)
    set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}" CACHE FILEPATH "Host compiler used by nvcc")
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "${DEQ_CUDA_CHECK_ARCHITECTURES}")   # only for enable_language's checks
  endif()
  enable_language(CUDA)
endmacro()
