/// @file
/// @brief select_elements() on deq::exec::cuda: every deq::mask_rule on a GPU, with the host's masks.
///
/// The same checks, messages and kernel sequence as the host select_elements() (both run
/// detail::select_elements_with()): the row kernels are the host's functors on their portable tier,
/// whose float softmax (deq::exp_fused, written with explicit fused multiply-adds, then sums and
/// quotients) gives the same bits on the device, so every mask bit equals the host's. One thread per
/// chunk of rows; the scratch of each chunk is one row of Lk values, and the number of chunks is
/// capped so that the scratch stays within 256 MiB. This first device version supports float scores
/// (double would need a device exp with glibc's bits).
/// The scores, the padding and the mask words must be device memory.
#pragma once

#if !defined(__CUDACC__)
#error "deq/mask/cuda/select_elements.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cstdint>
#include <vector>

#include "../../core/bit_mask.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../cuda/device_array.hpp"
#include "../../cuda/padding_to_host.hpp"
#include "../../exec/cuda.hpp"
#include "../select.hpp"

namespace deq {

namespace detail {

/// Scratch of select_elements_with() in device memory (see select_host_buffers).
struct select_cuda_buffers {
    exec::cuda const* space;  ///< The space (device and stream).

    /// @return @p n copies of @p fill in device memory.
    template <class T>
    cuda::device_array<T> make(index_t n, T fill) const {
        return cuda::to_device(std::vector<T>(static_cast<std::size_t>(n), fill), space->device(), space->stream());
    }
    /// @return The device address of @p v's elements.
    template <class T>
    T* data(cuda::device_array<T>& v) const {
        return v.device_data();
    }
    /// @return A host copy of @p v.
    template <class T>
    std::vector<T> host(cuda::device_array<T> const& v) const {
        return cuda::to_host(v, space->stream());
    }
};

/// Row chunks of the device select kernels: one per row, capped so that chunks × Lk scores of
/// scratch take at most 256 MiB.
/// @param rows Score rows.
/// @param lk   Keys per row.
/// @param bytes Bytes per scratch element (the score and, for the ranking rules, its index).
/// @return The chunk count, in [1, rows].
inline index_t select_cuda_chunk_count(index_t rows, index_t lk, std::size_t bytes) {
    index_t const cap = static_cast<index_t>((std::size_t{256} << 20) / (static_cast<std::size_t>(lk) * bytes));
    index_t const chunks = rows < cap ? rows : cap;
    return chunks > 0 ? chunks : 1;
}

}  // namespace detail

/// select_elements() on a GPU: the same arguments, checks, messages and mask bits as the host version,
/// with @p scores, @p padding and @p out in device memory.
/// @param space   The CUDA space.
/// @param scores  Predicted scores Ŝ, [B, H, Lq, Lk] (may be strided), device memory.
/// @param padding Key padding ([B, Lk], device memory) or none.
/// @param rule    The rule (validated).
/// @param out     Output mask of exactly [B, H, Lq, Lk]; its words are device memory.
/// @throws everything the host select_elements() throws, deq::invalid_argument when an argument is host
///         memory, and deq::cuda_error when the device fails.
inline void select_elements(exec::cuda const& space, tensor_view<float const, 4> scores, key_padding padding, mask_rule const& rule,
                            bit_mask_view out) {
    index_t const shape[4] = {scores.extent(0), scores.extent(1), scores.extent(2), scores.extent(3)};
    detail::select_check_arguments(shape, padding, rule, out, scores.shape_string());
    index_t const batch = shape[0], lk = shape[3], rows = shape[0] * shape[1] * shape[2];
    cuda::require_device_memory("scores", scores.data(), 1);  // non-empty: checked above
    cuda::require_device_memory("out", out.row(0, 0, 0), 1);
    ::deq::cuda::device_scope const scope(space.device());

    // The padded-key words are built on the host from a host copy of the padding, then uploaded.
    cuda::device_array<std::uint64_t> padded_words;
    if (!padding.none()) {
        cuda::require_device_memory("padding", padding.valid.data(), 1);
        std::vector<std::uint8_t> host_valid;
        key_padding const host_padding = cuda::padding_to_host(padding, host_valid, space.stream());
        padded_words = cuda::to_device(detail::padded_key_words(host_padding, batch, lk), space.device(), space.stream());
    }
    detail::select_elements_with(space, scores, padding, padded_words.empty() ? nullptr : padded_words.device_data(), rule, out,
                                 detail::select_cuda_chunk_count(rows, lk, sizeof(float) + sizeof(index_t)), arch::isa::portable,
                                 detail::select_cuda_buffers{&space}, [&](index_t b, index_t h, index_t i, index_t j) {
                                     return static_cast<double>(cuda::copy_element_to_host(&scores(b, h, i, j)));
                                 });
}

}  // namespace deq
