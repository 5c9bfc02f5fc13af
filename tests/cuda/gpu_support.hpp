// Helpers shared by the CUDA test files.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include <deq/core/error.hpp>

namespace deq_test {

/// Whether the CUDA runtime sees at least one device.
inline bool have_gpu() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

/// The message of the deq::error that @p call throws, or "(no exception)".
inline std::string message_of(auto const& call) {
    try {
        call();
    } catch (deq::error const& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace deq_test
