/// @file
/// @brief Compiler and platform configuration: host/device annotations and feature detection.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
/// Marks a function callable from host and device code (expands to `__host__ __device__` under nvcc).
#define DEQ_HOST_DEVICE __host__ __device__
/// Defined to 1 when the translation unit is compiled by a CUDA compiler.
#define DEQ_CUDA_COMPILER 1
#else
/// Marks a function callable from host and device code (empty outside CUDA compilers).
#define DEQ_HOST_DEVICE
/// Defined to 0 when the translation unit is not compiled by a CUDA compiler.
#define DEQ_CUDA_COMPILER 0
#endif

#if defined(__CUDA_ARCH__)
/// Defined to 1 in the device pass of a CUDA compilation.
#define DEQ_DEVICE_PASS 1
#else
/// Defined to 0 outside the device pass of a CUDA compilation.
#define DEQ_DEVICE_PASS 0
#endif
