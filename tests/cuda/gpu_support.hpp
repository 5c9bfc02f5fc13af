// Helpers shared by the CUDA test files.
#pragma once

#include <cuda_runtime_api.h>

#include "../unit/mask/select_test_support.hpp"  // message_of

namespace deq_test {

/// Whether the CUDA runtime sees at least one device.
inline bool have_gpu() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

using deq_select_test::message_of;

}  // namespace deq_test
