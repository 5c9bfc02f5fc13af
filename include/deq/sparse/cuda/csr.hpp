/// @file
/// @brief CSR on deq::exec::cuda: `deq::cuda::device_csr`, to_csr() of a device bit mask (row counts, a
/// CUB exclusive scan for the row pointers, the columns in order) and back to a mask, with the host's
/// layout and results (deq/sparse/csr.hpp).
///
/// The count, fill and scatter kernels are the host's functors (csr_count_kernel, csr_fill_kernel,
/// csr_scatter_kernel); only the scan differs: cub::DeviceScan::ExclusiveSum on the device instead of
/// the host's sequential scan. `to_host(device_csr)` gives a deq::csr equal to the host to_csr() of the
/// same mask.
#pragma once

#if !defined(__CUDACC__)
#error "deq/sparse/cuda/csr.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../../core/bit_mask.hpp"
#include "../../core/checked_size.hpp"
#include "../../cuda/device_array.hpp"
#include "../../cuda/device_scope.hpp"
#include "../../cuda/error.hpp"
#include "../../exec/cuda.hpp"
#include "../csr.hpp"
#include "../detail/check.hpp"
#include "detail/offsets.hpp"

namespace deq {

namespace cuda {

/// A CSR matrix in device memory, with deq::csr's layout: row r = (b · heads + h) · rows + i has the
/// ascending columns col_idx[row_ptr[r], row_ptr[r + 1]).
struct device_csr {
    index_t batch = 0;                ///< Batch extent (1 = broadcast).
    index_t heads = 0;                ///< Head extent (1 = broadcast).
    index_t rows = 0;                 ///< Rows per (b, h).
    index_t cols = 0;                 ///< Columns.
    device_array<index_t> row_ptr;    ///< batch · heads · rows + 1 offsets.
    device_array<index_t> col_idx;    ///< nnz column indices.

    /// @return The number of rows, batch · heads · rows.
    index_t row_count() const { return batch * heads * rows; }
    /// @return The number of stored entries.
    index_t nnz() const { return static_cast<index_t>(col_idx.size()); }
};

/// A host copy of a device CSR matrix.
/// @param m      The device matrix.
/// @param stream The stream of the copies.
/// @return The host matrix (deq::csr).
inline csr to_host(device_csr const& m, cudaStream_t stream = nullptr) {
    csr out;
    out.batch = m.batch;
    out.heads = m.heads;
    out.rows = m.rows;
    out.cols = m.cols;
    out.row_ptr = to_host(m.row_ptr, stream);
    out.col_idx = to_host(m.col_idx, stream);
    return out;
}

}  // namespace cuda

/// to_csr() on a GPU: the CSR form of a device bit mask, equal (after cuda::to_host) to the host to_csr()
/// of the same mask.
/// @param space The CUDA space.
/// @param mask  The mask; its words are device memory.
/// @return The device CSR matrix.
/// @throws what the host to_csr() throws for a malformed view; deq::invalid_argument for host memory;
///         deq::cuda_error when the device fails.
inline cuda::device_csr to_csr(exec::cuda const& space, const_bit_mask_view mask) {
    detail::check_mask_view(mask);
    ::deq::cuda::device_scope const scope(space.device());
    cuda::device_csr out;
    out.batch = mask.batch();
    out.heads = mask.heads();
    out.rows = mask.rows();
    out.cols = mask.cols();
    index_t const n = out.row_count();
    cuda::device_array<index_t> counts(n + 1, space.device());
    out.row_ptr = cuda::device_array<index_t>(n + 1, space.device());
    if (n > 0) {
        cuda::require_device_memory("mask", mask.words(), 1);
        exec::parallel_for(space, n, detail::csr_count_kernel{mask, counts.device_data()});
    }
    index_t const nnz = detail::cuda_offsets_from_counts(space, counts.device_data(), out.row_ptr.device_data(), n);
    out.col_idx = cuda::device_array<index_t>(nnz, space.device());
    if (n > 0 && nnz > 0) {
        exec::parallel_for(space, n, detail::csr_fill_kernel{mask, out.row_ptr.device_data(), out.col_idx.device_data()});
    }
    return out;
}

/// to_bit_mask() on a GPU: the bit mask of a device CSR matrix, into device words (zeroed here).
/// @param space The CUDA space.
/// @param m     The device matrix (its row pointers and columns as to_csr() writes them).
/// @param out   The mask, of m's extents; its words are device memory.
/// @throws deq::shape_error when @p out's extents differ from @p m's; deq::cuda_error when the device fails.
inline void to_bit_mask(exec::cuda const& space, cuda::device_csr const& m, bit_mask_view out) {
    if (!detail::cuda_clear_mask_for(space, out, "csr", m.batch, m.heads, m.rows, m.cols)) return;
    ::deq::cuda::device_scope const scope(space.device());
    exec::parallel_for(space, m.row_count(), detail::csr_scatter_kernel{out, m.row_ptr.device_data(), m.col_idx.device_data()});
}

}  // namespace deq
