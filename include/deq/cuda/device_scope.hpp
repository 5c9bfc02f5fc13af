/// @file
/// @brief `deq::cuda::device_scope`: makes one device current for a scope, and restores the previous one.
#pragma once

#include <cuda_runtime_api.h>

#include "error.hpp"

namespace deq::cuda {

/// Makes @p device the calling thread's current device for the lifetime of the object, then restores
/// the device that was current before (the CUDA runtime's current device is per host thread).
class device_scope {
public:
    /// @param device Device ordinal.
    /// @throws deq::cuda_error when the runtime has no such device.
    explicit device_scope(int device) {
        deq::detail::cuda_check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != device) deq::detail::cuda_check(cudaSetDevice(device), deq::detail::concat("cudaSetDevice(", device, ")"));
    }
    ~device_scope() {
        int now = -1;
        if (cudaGetDevice(&now) == cudaSuccess && now != previous_) (void)cudaSetDevice(previous_);
    }
    device_scope(device_scope const&) = delete;
    device_scope& operator=(device_scope const&) = delete;

private:
    int previous_ = 0;
};

}  // namespace deq::cuda
