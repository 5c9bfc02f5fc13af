/// @file
/// @brief `deq::exec::cuda`: runs deq's kernels on one NVIDIA GPU, on one CUDA stream.
///
/// The space plugs in at the same dispatch point as the host spaces: `deq::exec::backend<cuda>`
/// launches any deq kernel functor (whose call operator is `DEQ_HOST_DEVICE`) over [0, n) as a
/// grid-stride CUDA kernel on the space's stream, checks the launch and waits for it. Its kernels
/// read and write device memory only (`host_accessible` is false), so the host pipelines, which
/// require deq::exec::host_execution_space, do not accept it by mistake; device memory is owned by
/// deq::cuda::device_array (deq/cuda/device_array.hpp). Every CUDA failure is a deq::cuda_error that
/// names the call. Needs nvcc (the launch is CUDA C++); the consumer chooses the CUDA architectures.
#pragma once

#if !defined(__CUDACC__)
#error "deq/exec/cuda.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cuda_runtime_api.h>

#include <type_traits>

#include "../core/error.hpp"
#include "../cuda/device_scope.hpp"
#include "../cuda/error.hpp"
#include "execution_space.hpp"

namespace deq::exec {

/// The CUDA execution space: a device and a stream (the default stream unless one is given). Cheap
/// to copy; it does not own the stream.
class cuda {
public:
    /// The calling thread's current device, on the default stream.
    /// @throws deq::cuda_error when there is no usable CUDA device.
    cuda() : cuda(current_or_first_device(), nullptr) {}

    /// @param device Device ordinal, in [0, number of devices).
    /// @param stream A stream of that device (nullptr: the default stream).
    /// @throws deq::invalid_argument for an ordinal out of range; deq::cuda_error when the runtime fails.
    explicit cuda(int device, cudaStream_t stream = nullptr) : device_(device), stream_(stream) {
        int const count = device_count();
        if (device < 0 || device >= count) {
            deq::detail::throw_invalid_argument("device", device, deq::detail::concat("must be in [0, ", count, ") (the CUDA devices present)"));
        }
        deq::detail::cuda_check(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device),
                                "cudaDeviceGetAttribute(cudaDevAttrMultiProcessorCount)");
        deq::detail::cuda_check(cudaDeviceGetAttribute(&threads_per_multiprocessor_, cudaDevAttrMaxThreadsPerMultiProcessor, device),
                                "cudaDeviceGetAttribute(cudaDevAttrMaxThreadsPerMultiProcessor)");
    }

    /// @return The device ordinal.
    int device() const noexcept { return device_; }
    /// @return The stream (nullptr: the default stream).
    cudaStream_t stream() const noexcept { return stream_; }
    /// @return The device's number of streaming multiprocessors.
    int multiprocessors() const noexcept { return multiprocessors_; }
    /// @return Resident threads per multiprocessor.
    int threads_per_multiprocessor() const noexcept { return threads_per_multiprocessor_; }

    /// Waits for everything queued on the stream.
    /// @throws deq::cuda_error when queued work failed.
    void fence() const {
        ::deq::cuda::device_scope const scope(device_);
        deq::detail::cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }

    /// The number of CUDA devices.
    /// @return It (at least 1).
    /// @throws deq::cuda_error when the runtime reports no device or no usable driver.
    static int device_count() {
        int count = 0;
        deq::detail::cuda_check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
        if (count <= 0) deq::detail::cuda_check(cudaErrorNoDevice, "cudaGetDeviceCount");
        return count;
    }

private:
    static int current_or_first_device() {
        (void)device_count();
        int device = 0;
        deq::detail::cuda_check(cudaGetDevice(&device), "cudaGetDevice");
        return device;
    }

    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    int multiprocessors_ = 1;
    int threads_per_multiprocessor_ = 1024;
};

namespace detail {

/// Threads per block of the launches of backend<cuda>::parallel_for().
inline constexpr int cuda_block_threads = 256;

/// The grid-stride loop of backend<cuda>::parallel_for(): work item i runs `kernel(i)`.
/// @tparam Kernel A functor with a `DEQ_HOST_DEVICE void operator()(index_t) const`.
/// @param kernel The kernel (copied into the launch's parameter space).
/// @param n      Number of work items.
template <class Kernel>
__global__ void cuda_for_each(Kernel kernel, index_t n) {
    index_t const stride = static_cast<index_t>(gridDim.x) * blockDim.x;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) kernel(i);
}

/// The number of blocks of a launch of @p n work items: enough for every item, at most the number
/// that keeps every multiprocessor full (the grid-stride loop covers the rest).
/// @param n                Number of work items (>= 1).
/// @param multiprocessors  Streaming multiprocessors.
/// @param threads_per_sm   Resident threads per multiprocessor.
/// @return Blocks of cuda_block_threads threads (>= 1).
DEQ_HOST_DEVICE inline int cuda_grid_blocks(index_t n, int multiprocessors, int threads_per_sm) {
    index_t const needed = n / cuda_block_threads + (n % cuda_block_threads != 0 ? 1 : 0);
    index_t const resident = static_cast<index_t>(multiprocessors > 0 ? multiprocessors : 1) *
                             (threads_per_sm >= cuda_block_threads ? threads_per_sm / cuda_block_threads : 1);
    index_t const blocks = needed < resident ? needed : resident;
    return static_cast<int>(blocks > 0 ? blocks : 1);
}

}  // namespace detail

/// Backend of deq::exec::cuda.
template <>
struct backend<cuda> {
    /// Backend name.
    static constexpr char const* name = "cuda";
    /// Kernels run on device memory.
    static constexpr bool host_accessible = false;
    /// Launches `kernel(i)` for every i in [0, n) on the space's device and stream, and waits for it.
    /// @tparam Kernel A trivially copyable functor with a device-callable `void operator()(index_t) const`.
    /// @param space  The space.
    /// @param n      Number of work items (>= 1).
    /// @param kernel The kernel; its pointers must address device memory.
    /// @throws deq::cuda_error when the launch or the kernel fails.
    template <class Kernel>
    static void parallel_for(cuda const& space, index_t n, Kernel const& kernel) {
        static_assert(std::is_trivially_copyable_v<Kernel>, "a deq::exec::cuda kernel is copied to the device: it must be trivially copyable");
        ::deq::cuda::device_scope const scope(space.device());
        int const blocks = detail::cuda_grid_blocks(n, space.multiprocessors(), space.threads_per_multiprocessor());
        detail::cuda_for_each<<<blocks, detail::cuda_block_threads, 0, space.stream()>>>(kernel, n);
        deq::detail::cuda_check(cudaGetLastError(), "kernel launch (deq::exec::cuda parallel_for)");
        deq::detail::cuda_check(cudaStreamSynchronize(space.stream()), "cudaStreamSynchronize (after a deq::exec::cuda parallel_for)");
    }
    /// @param space The space.
    /// @return The number of threads the device keeps resident.
    static int concurrency(cuda const& space) { return space.multiprocessors() * space.threads_per_multiprocessor(); }
};

}  // namespace deq::exec
