/// @file
/// @brief BSR on deq::exec::cuda: `deq::cuda::device_bsr<BR, BC>`, to_bsr() of a device bit mask (the
/// host's gather functor counts the non-empty blocks of every block row, a CUB exclusive scan gives the
/// block-row pointers, the same functor fills the block columns and bit patterns) and back to a mask,
/// with the host's layout and results (deq/sparse/bsr.hpp).
#pragma once

#if !defined(__CUDACC__)
#error "deq/sparse/cuda/bsr.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cstddef>
#include <cstdint>

#include "../../core/bit_mask.hpp"
#include "../../core/checked_size.hpp"
#include "../../cuda/device_array.hpp"
#include "../../cuda/device_scope.hpp"
#include "../../cuda/error.hpp"
#include "../../exec/cuda.hpp"
#include "../bsr.hpp"
#include "../detail/check.hpp"
#include "detail/offsets.hpp"

namespace deq {

namespace cuda {

/// A BSR matrix with blocks of BR x BC in device memory, with deq::bsr's layout.
/// @tparam BR Block rows.
/// @tparam BC Block columns.
template <index_t BR, index_t BC>
    requires(BR >= 1 && BC >= 1)
struct device_bsr {
    /// Words per block pattern.
    static constexpr index_t words_per_block = bsr<BR, BC>::words_per_block;
    index_t batch = 0;                           ///< Batch extent (1 = broadcast).
    index_t heads = 0;                           ///< Head extent (1 = broadcast).
    index_t rows = 0;                            ///< Rows per (b, h).
    index_t cols = 0;                            ///< Columns.
    device_array<index_t> block_row_ptr;         ///< batch · heads · row_blocks() + 1 offsets.
    device_array<index_t> block_col_idx;         ///< Block column of every stored block.
    device_array<std::uint64_t> patterns;        ///< words_per_block words per stored block.

    /// @return ceil(rows / BR).
    index_t row_blocks() const { return rows / BR + (rows % BR != 0 ? 1 : 0); }
    /// @return batch · heads · row_blocks().
    index_t block_row_count() const { return batch * heads * row_blocks(); }
    /// @return The number of stored blocks.
    index_t block_count() const { return static_cast<index_t>(block_col_idx.size()); }
};

/// A host copy of a device BSR matrix.
/// @param m      The device matrix.
/// @param stream The stream of the copies.
/// @return The host matrix (deq::bsr).
template <index_t BR, index_t BC>
bsr<BR, BC> to_host(device_bsr<BR, BC> const& m, cudaStream_t stream = nullptr) {
    bsr<BR, BC> out;
    out.batch = m.batch;
    out.heads = m.heads;
    out.rows = m.rows;
    out.cols = m.cols;
    out.block_row_ptr = to_host(m.block_row_ptr, stream);
    out.block_col_idx = to_host(m.block_col_idx, stream);
    out.patterns = to_host(m.patterns, stream);
    return out;
}

}  // namespace cuda

/// to_bsr() on a GPU: the BSR form of a device bit mask, equal (after cuda::to_host) to the host to_bsr().
/// @tparam BR Block rows.
/// @tparam BC Block columns.
/// @param space The CUDA space.
/// @param mask  The mask; its words are device memory.
/// @return The device BSR matrix.
/// @throws what the host to_bsr() throws for a malformed view; deq::invalid_argument for host memory;
///         deq::cuda_error when the device fails.
template <index_t BR, index_t BC>
    requires(BR >= 1 && BC >= 1)
cuda::device_bsr<BR, BC> to_bsr(exec::cuda const& space, const_bit_mask_view mask) {
    detail::check_mask_view(mask);
    ::deq::cuda::device_scope const scope(space.device());
    cuda::device_bsr<BR, BC> out;
    out.batch = mask.batch();
    out.heads = mask.heads();
    out.rows = mask.rows();
    out.cols = mask.cols();
    index_t const n = out.block_row_count();
    index_t const rb = out.row_blocks() > 0 ? out.row_blocks() : 1;
    cuda::device_array<index_t> counts(n + 1, space.device());
    out.block_row_ptr = cuda::device_array<index_t>(n + 1, space.device());
    if (n > 0) {
        cuda::require_device_memory("mask", mask.words(), 1);
        exec::parallel_for(space, n, detail::bsr_gather_kernel<BR, BC, false>{mask, rb, counts.device_data(), nullptr, nullptr});
    }
    index_t const blocks = detail::cuda_offsets_from_counts(space, counts.device_data(), out.block_row_ptr.device_data(), n);
    out.block_col_idx = cuda::device_array<index_t>(blocks, space.device());
    index_t const pattern_words = detail::checked_size("bsr patterns", {blocks, cuda::device_bsr<BR, BC>::words_per_block});
    out.patterns = cuda::device_array<std::uint64_t>(pattern_words, space.device());
    if (blocks > 0) {
        detail::cuda_check(cudaMemsetAsync(out.patterns.device_data(), 0, static_cast<std::size_t>(pattern_words) * sizeof(std::uint64_t),
                                           space.stream()),
                           "cudaMemsetAsync (bsr patterns)");
        exec::parallel_for(space, n,
                           detail::bsr_gather_kernel<BR, BC, true>{mask, rb, out.block_row_ptr.device_data(), out.block_col_idx.device_data(),
                                                                   out.patterns.device_data()});
    }
    return out;
}

/// to_bit_mask() on a GPU: the bit mask of a device BSR matrix, into device words (zeroed here).
/// @tparam BR Block rows.
/// @tparam BC Block columns.
/// @param space The CUDA space.
/// @param m     The device matrix (as to_bsr() writes it).
/// @param out   The mask, of m's extents; its words are device memory.
/// @throws deq::shape_error when @p out's extents differ from @p m's; deq::cuda_error when the device fails.
template <index_t BR, index_t BC>
void to_bit_mask(exec::cuda const& space, cuda::device_bsr<BR, BC> const& m, bit_mask_view out) {
    if (!detail::cuda_clear_mask_for(space, out, "bsr", m.batch, m.heads, m.rows, m.cols)) return;
    ::deq::cuda::device_scope const scope(space.device());
    index_t const rb = m.row_blocks() > 0 ? m.row_blocks() : 1;
    exec::parallel_for(space, m.block_row_count(),
                       detail::bsr_scatter_kernel<BR, BC>{out, rb, m.block_row_ptr.device_data(), m.block_col_idx.device_data(),
                                                          m.patterns.device_data()});
}

}  // namespace deq
