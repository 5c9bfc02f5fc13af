/// @file
/// @brief The shared steps of the device sparse formats (internal; CSR, BSR, pack & split): row offsets
/// from row counts with cub::DeviceScan::ExclusiveSum (the host builders use a sequential scan), and the
/// cleared output mask of to_bit_mask().
#pragma once

#if !defined(__CUDACC__)
#error "deq/sparse/cuda/detail/offsets.hpp is CUDA C++: compile this translation unit with nvcc"
#endif

#include <cub/device/device_scan.cuh>

#include <cstddef>
#include <cstdint>

#include "../../../config.hpp"
#include "../../../core/bit_mask.hpp"
#include "../../../core/checked_size.hpp"
#include "../../../core/error.hpp"
#include "../../../cuda/device_scope.hpp"
#include "../../../cuda/device_array.hpp"
#include "../../../cuda/error.hpp"
#include "../../../exec/cuda.hpp"

namespace deq::detail {

/// Turns @p n per-row counts into n + 1 offsets (offsets[0] = 0, offsets[n] = the total).
/// @param space  The CUDA space.
/// @param counts Device counts, n + 1 entries (the last is overwritten with 0).
/// @param offsets Device output, n + 1 entries.
/// @param n      Rows.
/// @return The total, offsets[n].
inline index_t cuda_offsets_from_counts(exec::cuda const& space, index_t* counts, index_t* offsets, index_t n) {
    cuda_check(cudaMemsetAsync(counts + n, 0, sizeof(index_t), space.stream()), "cudaMemsetAsync (the last count)");
    std::size_t temp_bytes = 0;
    cuda_check(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, counts, offsets, n + 1, space.stream()),
               "cub::DeviceScan::ExclusiveSum (temporary storage size)");
    // (at least one byte: CUB reads a null temporary storage as a size query and would do nothing)
    cuda::device_array<unsigned char> temp(static_cast<index_t>(temp_bytes > 0 ? temp_bytes : 1), space.device());
    cuda_check(cub::DeviceScan::ExclusiveSum(temp.device_data(), temp_bytes, counts, offsets, n + 1, space.stream()),
               "cub::DeviceScan::ExclusiveSum");
    cuda_check(cudaStreamSynchronize(space.stream()), "cudaStreamSynchronize (after cub::DeviceScan::ExclusiveSum)");
    return cuda::copy_element_to_host(offsets + n);
}

/// The start of a device to_bit_mask(): checks that @p out has the extents of the sparse matrix @p what
/// and zeroes its words.
/// @param space The CUDA space.
/// @param out   The output mask; its words are device memory.
/// @param what  The format's name, for the message ("csr", "bsr", "pack_split").
/// @param batch The matrix's batch extent.
/// @param heads Its head extent.
/// @param rows  Its rows.
/// @param cols  Its columns.
/// @return False when the mask has no words (nothing to scatter).
/// @throws deq::shape_error for other extents; deq::invalid_argument for host memory; deq::cuda_error.
inline bool cuda_clear_mask_for(exec::cuda const& space, bit_mask_view out, char const* what, index_t batch, index_t heads, index_t rows,
                                index_t cols) {
    if (out.batch() != batch || out.heads() != heads || out.rows() != rows || out.cols() != cols) {
        throw_shape_error(concat("mask has shape [", out.batch(), ", ", out.heads(), ", ", out.rows(), ", ", out.cols(), "], expected the ", what,
                                 "'s [", batch, ", ", heads, ", ", rows, ", ", cols, "]"));
    }
    index_t const n = batch * heads * rows;
    if (n == 0 || out.words_per_row() == 0) return false;
    cuda::require_device_memory("mask", out.words(), 1);
    ::deq::cuda::device_scope const scope(space.device());
    std::size_t const bytes = checked_bytes("mask words", n * out.words_per_row(), sizeof(std::uint64_t));
    cuda_check(cudaMemsetAsync(out.words(), 0, bytes, space.stream()), "cudaMemsetAsync (mask words)");
    return true;
}

}  // namespace deq::detail
