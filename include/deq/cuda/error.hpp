/// @file
/// @brief `deq::cuda_error` and the check that turns a CUDA runtime status into it.
///
/// Every CUDA runtime call deq makes goes through detail::cuda_check(), so a failure is a `deq`
/// exception whose message names the call and CUDA's own description of the error, for example
/// `deq: CUDA call cudaMalloc(4096 bytes) failed: out of memory (cudaErrorMemoryAllocation)`.
/// Needs the CUDA runtime headers (nvcc, or a host compiler with the toolkit's include directory).
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

#include "../core/error.hpp"

namespace deq {

/// A CUDA runtime call failed (no device, out of device memory, a failed launch, ...).
class cuda_error : public error {
public:
    /// @param message The full message.
    /// @param code    The CUDA status.
    cuda_error(std::string const& message, cudaError_t code) : error(message), code_(code) {}
    /// @return The CUDA status that caused the error.
    cudaError_t code() const noexcept { return code_; }

private:
    cudaError_t code_;
};

namespace detail {

/// Throws deq::cuda_error unless @p status is cudaSuccess. The message names @p call (with any
/// arguments worth reporting), CUDA's description of the status and its enumerator name.
/// @param status The status a CUDA runtime call returned.
/// @param call   What was called, e.g. "cudaMalloc(4096 bytes)".
inline void cuda_check(cudaError_t status, std::string_view call) {
    if (status == cudaSuccess) return;
    char const* text = cudaGetErrorString(status);
    char const* name = cudaGetErrorName(status);
    throw cuda_error(concat("deq: CUDA call ", call, " failed: ", text != nullptr ? text : "unknown error", " (",
                            name != nullptr ? name : "unknown status", ")"),
                     status);
}

}  // namespace detail

}  // namespace deq
