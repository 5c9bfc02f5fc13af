/// @file
/// @brief Sanger's pack & split format on deq::exec::cuda: `deq::cuda::device_pack_split`,
/// to_pack_split() of a device bit mask (the host's segment functor counts the segments of every row
/// group, a CUB exclusive scan gives the group pointers, the same functor fills segments, offsets and
/// gaps) and back to a mask, with the host's layout and results (deq/sparse/pack_split.hpp).
#pragma once

#if !defined(__CUDACC__)
#error "deq/sparse/cuda/pack_split.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/system/system_error.h>

#include <cstddef>
#include <cstdint>

#include "../../core/bit_mask.hpp"
#include "../../core/checked_size.hpp"
#include "../../cuda/device_array.hpp"
#include "../../cuda/device_scope.hpp"
#include "../../cuda/error.hpp"
#include "../../exec/cuda.hpp"
#include "../detail/check.hpp"
#include "../pack_split.hpp"
#include "detail/offsets.hpp"

namespace deq {

namespace cuda {

/// A pack & split matrix in device memory, with deq::pack_split's layout.
struct device_pack_split {
    index_t batch = 0;                     ///< Batch extent (1 = broadcast).
    index_t heads = 0;                     ///< Head extent (1 = broadcast).
    index_t rows = 0;                      ///< Rows per (b, h).
    index_t cols = 0;                      ///< Columns.
    pack_split_params params;              ///< Height, window and slots per row.
    device_array<index_t> group_ptr;       ///< Row-group offsets into `segments`.
    device_array<pack_split_segment> segments;  ///< Segments.
    device_array<std::int32_t> offsets;    ///< Column offsets per slot (the empty slot where unused).
    device_array<std::int32_t> gaps;       ///< Gaps between consecutive offsets.

    /// @return Row groups per (b, h), ceil(rows / height).
    index_t groups() const { return rows / params.height + (rows % params.height != 0 ? 1 : 0); }
    /// @return batch · heads · groups().
    index_t group_count() const { return batch * heads * groups(); }
    /// @return The number of segments.
    index_t segment_count() const { return static_cast<index_t>(segments.size()); }
};

/// A host copy of a device pack & split matrix.
/// @param m      The device matrix.
/// @param stream The stream of the copies.
/// @return The host matrix (deq::pack_split).
inline pack_split to_host(device_pack_split const& m, cudaStream_t stream = nullptr) {
    pack_split out;
    out.batch = m.batch;
    out.heads = m.heads;
    out.rows = m.rows;
    out.cols = m.cols;
    out.params = m.params;
    out.group_ptr = to_host(m.group_ptr, stream);
    out.segments = to_host(m.segments, stream);
    out.offsets = to_host(m.offsets, stream);
    out.gaps = to_host(m.gaps, stream);
    return out;
}

}  // namespace cuda

/// to_pack_split() on a GPU: the pack & split form of a device bit mask, equal (after cuda::to_host) to
/// the host to_pack_split().
/// @param space  The CUDA space.
/// @param mask   The mask; its words are device memory.
/// @param params Height, window and slots per row (validated).
/// @return The device matrix.
/// @throws what the host to_pack_split() throws; deq::invalid_argument for host memory; deq::cuda_error
///         when the device fails.
inline cuda::device_pack_split to_pack_split(exec::cuda const& space, const_bit_mask_view mask, pack_split_params const& params = {}) {
    params.validate();
    detail::check_mask_view(mask);
    ::deq::cuda::device_scope const scope(space.device());
    cuda::device_pack_split out;
    out.batch = mask.batch();
    out.heads = mask.heads();
    out.rows = mask.rows();
    out.cols = mask.cols();
    out.params = params;
    index_t const n = out.group_count();
    index_t const groups = out.groups() > 0 ? out.groups() : 1;
    cuda::device_array<index_t> counters(detail::checked_size("pack_split counters", {n, params.height}), space.device());
    cuda::device_array<index_t> counts(n + 1, space.device());
    out.group_ptr = cuda::device_array<index_t>(n + 1, space.device());
    if (n > 0) {
        cuda::require_device_memory("mask", mask.words(), 1);
        exec::parallel_for(space, n,
                           detail::pack_split_kernel<false>{mask, params.height, params.window, params.pe_n, groups, counters.device_data(),
                                                            counts.device_data(), nullptr, nullptr, nullptr});
    }
    index_t const segments = detail::cuda_offsets_from_counts(space, counts.device_data(), out.group_ptr.device_data(), n);
    out.segments = cuda::device_array<pack_split_segment>(segments, space.device());
    index_t const slots = detail::checked_size("pack_split slots [segments, height, pe_n]", {segments, params.height, params.pe_n});
    out.offsets = cuda::device_array<std::int32_t>(slots, space.device());
    out.gaps = cuda::device_array<std::int32_t>(slots, space.device());
    if (slots > 0) {
        // the host's initial values: every slot empty, every gap 0
        try {
            thrust::fill_n(thrust::cuda::par.on(space.stream()), out.offsets.device_data(), slots, static_cast<std::int32_t>(params.window));
        } catch (thrust::system_error const& e) {  // a deq::cuda_error naming the call, as for every runtime failure
            detail::cuda_check(static_cast<cudaError_t>(e.code().value()), "thrust::fill_n (pack_split offsets)");
            throw;
        }
        detail::cuda_check(cudaMemsetAsync(out.gaps.device_data(), 0, static_cast<std::size_t>(slots) * sizeof(std::int32_t), space.stream()),
                           "cudaMemsetAsync (pack_split gaps)");
        exec::parallel_for(space, n,
                           detail::pack_split_kernel<true>{mask, params.height, params.window, params.pe_n, groups, counters.device_data(),
                                                           out.group_ptr.device_data(), out.segments.device_data(), out.offsets.device_data(),
                                                           out.gaps.device_data()});
    }
    return out;
}

/// to_bit_mask() on a GPU: the bit mask of a device pack & split matrix, into device words (zeroed here).
/// @param space The CUDA space.
/// @param m     The device matrix (as to_pack_split() writes it).
/// @param out   The mask, of m's extents; its words are device memory.
/// @throws deq::shape_error when @p out's extents differ from @p m's; deq::cuda_error when the device fails.
inline void to_bit_mask(exec::cuda const& space, cuda::device_pack_split const& m, bit_mask_view out) {
    if (!detail::cuda_clear_mask_for(space, out, "pack_split", m.batch, m.heads, m.rows, m.cols)) return;
    ::deq::cuda::device_scope const scope(space.device());
    index_t const groups = m.groups() > 0 ? m.groups() : 1;
    exec::parallel_for(space, m.group_count(),
                       detail::pack_split_scatter_kernel{out, m.params.height, m.params.pe_n, groups, static_cast<std::int32_t>(m.params.window),
                                                         m.group_ptr.device_data(), m.segments.device_data(), m.offsets.device_data()});
}

}  // namespace deq
