// Helpers shared by the CUDA test files.
#pragma once

#include <cuda_runtime_api.h>

namespace deq_test {

/// Whether the CUDA runtime sees at least one device.
inline bool have_gpu() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

}  // namespace deq_test
