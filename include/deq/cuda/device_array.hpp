/// @file
/// @brief `deq::cuda::device_array<T>`: an owning array in device memory, and the explicit host <->
/// device copies.
///
/// Device memory is owned by a type that knows it is device memory (as a Kokkos view knows its memory
/// space, or a Thrust device_vector): device_array has no element access, no iterators and no implicit
/// conversion to a pointer, so host code cannot dereference it by accident. Its address is only
/// reachable through `device_data()`, which is what kernels and deq::exec::cuda calls take.
/// Copies between host and device are explicit calls (copy_to_device(), copy_to_host(), to_device(),
/// to_host()), each checked: the sizes must agree, and every CUDA failure is a deq::cuda_error.
/// memory_kind_of() tells which memory a raw pointer addresses, so a call can reject host memory where
/// it needs device memory (and the other way round) with a clear error instead of a crash.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/checked_size.hpp"
#include "../core/error.hpp"
#include "device_scope.hpp"
#include "error.hpp"

namespace deq::detail {

/// Checks that a copy's two sides hold the same number of elements.
/// @param what        The copy's name.
/// @param source      Source elements.
/// @param destination Destination elements.
inline void cuda_copy_count(char const* what, std::size_t source, std::size_t destination) {
    if (source != destination) {
        throw_shape_error(concat(what, ": the source holds ", source, " elements and the destination ", destination));
    }
}

}  // namespace deq::detail

namespace deq::cuda {

/// The memory a pointer addresses, as the CUDA runtime reports it.
enum class memory_kind {
    host,     ///< Host memory (pageable, or registered / pinned with the runtime).
    device,   ///< Device memory (cudaMalloc and friends): not accessible from host code.
    managed,  ///< Managed (unified) memory, accessible from both.
};

/// @param kind A memory kind.
/// @return Its name ("host", "device", "managed").
inline char const* name_of(memory_kind kind) {
    switch (kind) {
        case memory_kind::device: return "device";
        case memory_kind::managed: return "managed";
        default: return "host";
    }
}

/// Which memory @p p addresses. A null pointer, and any address the runtime does not know (ordinary
/// pageable host memory), is host memory.
/// @param p An address.
/// @return Its memory kind.
/// @throws deq::cuda_error when the runtime cannot answer (e.g. no usable driver).
inline memory_kind memory_kind_of(void const* p) {
    if (p == nullptr) return memory_kind::host;
    cudaPointerAttributes attributes{};
    deq::detail::cuda_check(cudaPointerGetAttributes(&attributes, p), "cudaPointerGetAttributes");
    switch (attributes.type) {
        case cudaMemoryTypeDevice: return memory_kind::device;
        case cudaMemoryTypeManaged: return memory_kind::managed;
        default: return memory_kind::host;
    }
}

/// Throws deq::invalid_argument unless @p p is device-accessible memory (device or managed), naming
/// the argument and the memory it does address.
/// @param name The argument's name.
/// @param p    Its address (null is accepted only when @p bytes is 0).
/// @param bytes The bytes the call will access.
inline void require_device_memory(std::string_view name, void const* p, std::size_t bytes) {
    if (bytes == 0) return;
    memory_kind const kind = p == nullptr ? memory_kind::host : memory_kind_of(p);
    if (kind == memory_kind::host) {
        throw invalid_argument(deq::detail::concat("deq: argument '", name, "' is ", p == nullptr ? "a null pointer" : "host memory",
                                                   "; a deq::exec::cuda call needs device memory (copy it with deq::cuda::to_device)"));
    }
}

/// Throws deq::invalid_argument unless @p p is host-accessible memory (host or managed).
/// @param name  The argument's name.
/// @param p     Its address.
/// @param bytes The bytes the call will access.
inline void require_host_memory(std::string_view name, void const* p, std::size_t bytes) {
    if (bytes == 0) return;
    if (p == nullptr) throw invalid_argument(deq::detail::concat("deq: argument '", name, "' is a null pointer"));
    if (memory_kind_of(p) == memory_kind::device) {
        throw invalid_argument(deq::detail::concat("deq: argument '", name,
                                                   "' is device memory; host code needs host memory (copy it with deq::cuda::to_host)"));
    }
}

/// The current device of the calling host thread.
/// @return Its ordinal.
/// @throws deq::cuda_error without a usable device.
inline int current_device() {
    int device = 0;
    deq::detail::cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    return device;
}

/// An owning array of @p T in the memory of one device. Move-only; freed by its destructor.
/// No element access from host code: use copy_to_host() / to_host().
/// @tparam T A trivially copyable element type.
template <class T>
class device_array {
    static_assert(std::is_trivially_copyable_v<T>, "device_array holds trivially copyable elements");

public:
    /// An empty array (no allocation).
    device_array() = default;

    /// Allocates @p count uninitialised elements on @p device.
    /// @param count  Number of elements (>= 0).
    /// @param device Device ordinal (-1: the calling thread's current device).
    /// @throws deq::shape_error when the byte count overflows; deq::cuda_error when the allocation fails.
    explicit device_array(index_t count, int device = -1) {
        std::size_t const bytes = deq::detail::checked_bytes("device_array", count, sizeof(T));
        device_ = device >= 0 ? device : current_device();
        size_ = static_cast<std::size_t>(count);
        if (bytes == 0) return;
        device_scope const scope(device_);
        void* p = nullptr;
        deq::detail::cuda_check(cudaMalloc(&p, bytes), deq::detail::concat("cudaMalloc(", bytes, " bytes) on device ", device_));
        data_ = static_cast<T*>(p);
    }

    device_array(device_array const&) = delete;
    device_array& operator=(device_array const&) = delete;

    /// Takes over @p other's memory; @p other becomes empty.
    /// @param other The source.
    device_array(device_array&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)), device_(other.device_) {}

    /// Frees this array's memory and takes over @p other's.
    /// @param other The source.
    /// @return *this.
    device_array& operator=(device_array&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            device_ = other.device_;
        }
        return *this;
    }

    ~device_array() { release(); }

    /// @return The number of elements.
    std::size_t size() const noexcept { return size_; }
    /// @return Whether the array holds no element.
    bool empty() const noexcept { return size_ == 0; }
    /// @return The device that holds the memory.
    int device() const noexcept { return device_; }
    /// @return The device address of the first element (null when empty). Not dereferenceable on the host.
    T* device_data() noexcept { return data_; }
    /// @return The device address of the first element (null when empty). Not dereferenceable on the host.
    T const* device_data() const noexcept { return data_; }

private:
    void release() noexcept {
        if (data_ != nullptr) (void)cudaFree(data_);  // a destructor does not throw; cudaFree synchronises
        data_ = nullptr;
        size_ = 0;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
    int device_ = 0;
};

/// Copies host elements into a device array of the same size, then waits for the copy on @p stream.
/// @tparam T Element type.
/// @param source      Host elements.
/// @param destination The device array (its size must equal source.size()).
/// @param stream      The stream of the copy (0: the default stream).
/// @throws deq::shape_error on a size mismatch; deq::invalid_argument when @p source is device memory;
///         deq::cuda_error when the copy fails.
template <class T>
void copy_to_device(std::span<T const> source, device_array<T>& destination, cudaStream_t stream = nullptr) {
    deq::detail::cuda_copy_count("copy_to_device", source.size(), destination.size());
    if (source.empty()) return;
    require_host_memory("source", source.data(), source.size_bytes());
    deq::detail::cuda_check(cudaMemcpyAsync(destination.device_data(), source.data(), source.size_bytes(), cudaMemcpyHostToDevice, stream),
                       deq::detail::concat("cudaMemcpyAsync(", source.size_bytes(), " bytes, host to device)"));
    deq::detail::cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

/// Copies a device array into host elements of the same size, then waits for the copy on @p stream.
/// @tparam T Element type.
/// @param source      The device array.
/// @param destination Host elements (destination.size() must equal source.size()).
/// @param stream      The stream of the copy (0: the default stream).
/// @throws deq::shape_error on a size mismatch; deq::invalid_argument when @p destination is device
///         memory; deq::cuda_error when the copy fails.
template <class T>
void copy_to_host(device_array<T> const& source, std::span<T> destination, cudaStream_t stream = nullptr) {
    deq::detail::cuda_copy_count("copy_to_host", source.size(), destination.size());
    if (destination.empty()) return;
    require_host_memory("destination", destination.data(), destination.size_bytes());
    deq::detail::cuda_check(cudaMemcpyAsync(destination.data(), source.device_data(), destination.size_bytes(), cudaMemcpyDeviceToHost, stream),
                       deq::detail::concat("cudaMemcpyAsync(", destination.size_bytes(), " bytes, device to host)"));
    deq::detail::cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

/// Copies one element from device memory to the host (for an error message that names a value).
/// @tparam T Element type.
/// @param address The element's device address.
/// @return The element.
/// @throws deq::cuda_error when the copy fails.
template <class T>
std::remove_const_t<T> copy_element_to_host(T* address) {
    std::remove_const_t<T> value{};
    deq::detail::cuda_check(cudaMemcpy(&value, address, sizeof(value), cudaMemcpyDeviceToHost), "cudaMemcpy(one element, device to host)");
    return value;
}

/// A new device array holding a copy of host elements.
/// @tparam T Element type.
/// @param source Host elements.
/// @param device Device ordinal (-1: current).
/// @param stream The stream of the copy.
/// @return The device array.
template <class T>
device_array<std::remove_const_t<T>> to_device(std::span<T> source, int device = -1, cudaStream_t stream = nullptr) {
    using U = std::remove_const_t<T>;
    device_array<U> out(static_cast<index_t>(source.size()), device);
    copy_to_device(std::span<U const>(source.data(), source.size()), out, stream);
    return out;
}

/// to_device() of a std::vector.
/// @tparam T Element type.
/// @param source Host elements.
/// @param device Device ordinal (-1: current).
/// @param stream The stream of the copy.
/// @return The device array.
template <class T>
device_array<T> to_device(std::vector<T> const& source, int device = -1, cudaStream_t stream = nullptr) {
    return to_device(std::span<T const>(source.data(), source.size()), device, stream);
}

/// A host copy of a device array.
/// @tparam T Element type.
/// @param source The device array.
/// @param stream The stream of the copy.
/// @return The elements.
template <class T>
std::vector<T> to_host(device_array<T> const& source, cudaStream_t stream = nullptr) {
    std::vector<T> out(source.size());
    copy_to_host(source, std::span<T>(out.data(), out.size()), stream);
    return out;
}

}  // namespace deq::cuda
