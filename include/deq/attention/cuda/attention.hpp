/// @file
/// @brief attention() on deq::exec::cuda: every attention mode (dense, masked sparse, DEQ mixed
/// precision, three-level, padding, every empty-row policy) on a GPU, with the host's semantics.
///
/// The same validation and messages as the host attention() (deq/attention/attention.hpp), then one
/// flash-style kernel (deq/attention/cuda/detail/attention_rows.hpp): a block of warps, one query row per
/// warp, walks the keys in tiles of 32 that the block loads into shared memory once for all its rows, with
/// an online softmax; a lane computes one entry of the tile. Each entry is the reference's own arithmetic
/// (detail::attention_exact_score(): the host's order and rounding, never contracted into FMAs; the
/// predicted Ŝ where the entry is not refined; -10000 for a pruned entry, then for a padded key), so the
/// scores carry the host's bits, which the rows without a kept key need; the softmax and P·V differ from
/// the host's only by rounding (online rescaling, the device's exp), within 1e-5 relative in float.
/// Pruned entries are skipped with the host's proof (detail::attention_skip_proved() against the running
/// maximum), and a tile that no row of the block needs is never loaded.
///
/// Every tensor, mask and padding view must address device memory; the statistics are reduced on the
/// host from per-row records (the same as the host's, except attention_stats::exact_scores, which
/// counts the dot products this kernel evaluated).
#pragma once

#if !defined(__CUDACC__)
#error "deq/attention/cuda/attention.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../../core/accumulator.hpp"
#include "../../core/checked_size.hpp"
#include "../../core/error.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../cuda/device_array.hpp"
#include "../../cuda/device_scope.hpp"
#include "../../cuda/padding_to_host.hpp"
#include "../../exec/cuda.hpp"
#include "../../numeric/bfloat16.hpp"
#include "../../numeric/finite.hpp"
#include "../../numeric/float16.hpp"
#include "../attention.hpp"
#include "../detail/attention_kernel.hpp"
#include "../detail/validate.hpp"
#include "../options.hpp"
#include "../stats.hpp"
#include "../detail/attention_rows_schedule.hpp"
#include "detail/attention_rows.hpp"

namespace deq {

namespace detail {

/// Kernel: the first non-finite element of every row (a, b, c) of a 4-d tensor, or -1, in the score type.
/// One work item per row.
/// @tparam T Element type.
/// @tparam S Score type.
template <class T, class S>
struct attention_finite_rows {
    tensor_view<T const, 4> x;  ///< The tensor (device memory).
    index_t* status;            ///< One entry per row.

    DEQ_HOST_DEVICE void operator()(index_t r) const {
        index_t a = 0, b = 0, c = 0;
        attention_split_row(r, x.extent(1), x.extent(2), a, b, c);
        index_t bad = -1;
        for (index_t t = 0; t < x.extent(3) && bad < 0; ++t)
            if (!is_finite_value(static_cast<S>(x(a, b, c, t)))) bad = t;
        status[r] = bad;
    }
};

/// Kernel: the largest sum of squares of the keys of each (b, h), in double, as the host's
/// attention_key_norm_kernel computes each one (attention_bound_sum_squares), one work item per key; the
/// maximum by atomicMax on the bits (non-negative doubles order as their bits). @p best must start at 0.
/// @tparam T Element type.
/// @tparam S Score type.
template <class T, class S>
struct cuda_key_sum_squares_max {
    tensor_view<T const, 4> k;  ///< Keys [B, H, Lk, d] (device memory).
    double* best;               ///< Output [B * H]: the largest sum of squares.

    __device__ void operator()(index_t item) const {
        index_t const lk = k.extent(2), bh = item / lk, j = item - bh * lk;
        index_t const b = bh / k.extent(1), h = bh - b * k.extent(1);
        double const sum = attention_bound_sum_squares(k.extent(3), [&](index_t t) { return static_cast<double>(static_cast<S>(k(b, h, j, t))); });
        atomicMax(reinterpret_cast<unsigned long long*>(best + bh), static_cast<unsigned long long>(__double_as_longlong(sum)));
    }
};

/// Kernel: x[i] = sqrt(x[i]) (the key norms from their largest sums of squares, as on the host).
struct cuda_sqrt_in_place {
    double* x;  ///< Values (device memory).

    __device__ void operator()(index_t i) const { x[i] = sqrt(x[i]); }
};

/// The host's check of finite values (attention_check_finite()) on a device tensor: the same message
/// for the same first element.
/// @tparam S Score type.
/// @tparam T Element type.
/// @param space The CUDA space.
/// @param name  Tensor name.
/// @param x     Device tensor.
template <class S, class T>
void cuda_attention_check_finite(exec::cuda const& space, char const* name, tensor_view<T const, 4> x) {
    index_t const rows = checked_size("attention rows", {x.extent(0), x.extent(1), x.extent(2)});
    cuda::device_array<index_t> status(rows, space.device());
    exec::parallel_for(space, rows, attention_finite_rows<T, S>{x, status.device_data()});
    std::vector<index_t> const host = cuda::to_host(status, space.stream());
    for (std::size_t r = 0; r < host.size(); ++r) {
        if (host[r] < 0) continue;
        index_t a = 0, b = 0, c = 0;
        attention_split_row(static_cast<index_t>(r), x.extent(1), x.extent(2), a, b, c);
        throw_non_finite_element(name, static_cast<double>(static_cast<S>(cuda::copy_element_to_host(&x(a, b, c, host[r])))), a, b, c,
                                 host[r]);
    }
}

/// attention() on the device (arguments validated, device memory checked).
template <class T, class S>
attention_stats cuda_attention_compute(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                       tensor_view<T const, 4> v, tensor_view<T, 4> out, attention_options<S> const& options) {
    index_t const batch = q.extent(0), heads = q.extent(1), lq = q.extent(2), dim = q.extent(3);
    index_t const lk = k.extent(2), dv = v.extent(3);
    index_t const total_rows = checked_size("attention rows", {batch, heads, lq});
    if (options.check_finite) {
        cuda_attention_check_finite<S>(space, "q", q);
        cuda_attention_check_finite<S>(space, "k", k);
        cuda_attention_check_finite<S>(space, "v", v);
        if (!options.refined.empty() && options.predicted.data() != nullptr) cuda_attention_check_finite<S>(space, "predicted", options.predicted);
    }
    cuda::device_array<double> key_norms;
    if (options.skip_pruned && !options.kept.empty()) {
        // one thread per key (the host's functor loops over a head's keys in one work item)
        key_norms = cuda::device_array<double>(batch * heads, space.device());
        cuda_check(cudaMemsetAsync(key_norms.device_data(), 0, static_cast<std::size_t>(batch * heads) * sizeof(double), space.stream()),
                   "cudaMemsetAsync (key norms)");
        exec::parallel_for(space, checked_size("attention keys", {batch, heads, lk}), cuda_key_sum_squares_max<T, S>{k, key_norms.device_data()});
        exec::parallel_for(space, batch * heads, cuda_sqrt_in_place{key_norms.device_data()});
    }

    int optin = 0;
    cuda_check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, space.device()),
               "cudaDeviceGetAttribute(cudaDevAttrMaxSharedMemoryPerBlockOptin)");
    cudaFuncAttributes kernel_attributes{};
    cuda_check(cudaFuncGetAttributes(&kernel_attributes, cuda_attention_rows<T, S>), "cudaFuncGetAttributes (the attention kernel)");
    // the dynamic shared memory may use what the kernel's static storage (CUB's) leaves of the opt-in limit
    std::size_t const dynamic_limit =
        static_cast<std::size_t>(optin) > kernel_attributes.sharedSizeBytes ? static_cast<std::size_t>(optin) - kernel_attributes.sharedSizeBytes : 0;
    attention_rows_launch const launch = attention_rows_launch_shape(dim, dv, sizeof(S), dynamic_limit);
    if (launch.warps == 0) {
        throw_invalid_argument("q", q.shape_string(),
                               concat("has a head dimension whose rows (d + dv = ", dim + dv, " scores) do not fit in the ", dynamic_limit,
                                      " bytes of shared memory a block of this device has left for them"));
    }
    cuda_check(cudaFuncSetAttribute(cuda_attention_rows<T, S>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(launch.bytes)),
               "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize)");

    cuda::device_array<attention_row_record> records(total_rows, space.device());
    attention_rows_args<T, S> args{q,
                                   k,
                                   v,
                                   out,
                                   options.padding,
                                   options.kept,
                                   options.refined,
                                   options.predicted,
                                   options.empty_rows,
                                   key_norms.size() == 0 ? nullptr : key_norms.device_data(),
                                   records.device_data(),
                                   launch.tiles_shared};
    index_t const blocks = attention_rows_blocks(batch * heads, lq, launch.warps);
    unsigned const grid = static_cast<unsigned>(std::min<index_t>(blocks, index_t{1} << 30));
    cuda_attention_rows<T, S><<<grid, static_cast<unsigned>(launch.warps * 32), launch.bytes, space.stream()>>>(args);
    cuda_check(cudaGetLastError(), "kernel launch (deq::attention on exec::cuda)");
    cuda_check(cudaStreamSynchronize(space.stream()), "cudaStreamSynchronize (after deq::attention on exec::cuda)");

    std::vector<attention_row_record> const host_records = cuda::to_host(records, space.stream());
    if (options.check_finite) attention_check_overflow<S>(host_records, heads, lq);
    std::vector<std::uint8_t> padding_bytes, query_bytes;
    attention_options<S> host_options;
    host_options.padding = cuda::padding_to_host(options.padding, padding_bytes, space.stream());
    host_options.query_padding = cuda::padding_to_host(options.query_padding, query_bytes, space.stream());
    return attention_reduce_stats(host_records, batch, heads, lq, lk, host_options);
}

}  // namespace detail

/// Element types of attention() on a GPU: float and double, and the 16-bit types float16 and bfloat16
/// (scores and softmax in float, the output rounded once to the 16-bit type).
/// @tparam T Candidate element type.
template <class T>
concept cuda_attention_element =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

/// attention() on a GPU: the same arguments, checks and messages as the host attention()
/// (deq/attention/attention.hpp), with every tensor, mask and padding in device memory; masks equal and
/// outputs within 1e-5 relative of the host's in float (see the file documentation); 16-bit inputs are
/// computed in float and rounded once, as on the host.
/// @tparam T Element type: float, double, float16 or bfloat16 (scores in `accum_t<T>`).
/// @param space   The CUDA space (device and stream).
/// @param q       Queries [B, H, Lq, d], device memory.
/// @param k       Keys [B, H, Lk, d], device memory.
/// @param v       Values [B, H, Lk, dv], device memory.
/// @param out     Output [B, H, Lq, dv], device memory; must not overlap the inputs.
/// @param options Padding, masks, predicted scores (all in device memory), empty-row policy and checks.
/// @return The call's statistics (attention_stats::exact_scores counts this kernel's dot products).
/// @throws everything the host attention() throws, deq::invalid_argument when an argument is host
///         memory or the head dimensions do not fit the device's shared memory, and deq::cuda_error
///         when the device fails.
template <class T>
    requires(cuda_attention_element<T>)
attention_stats attention(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k, tensor_view<T const, 4> v,
                          tensor_view<T, 4> out, attention_options<accum_t<T>> const& options = {}) {
    detail::attention_validate_arguments(q, k, v, out, options);
    cuda::require_device_memory("q", q.data(), 1);  // non-empty: checked above
    cuda::require_device_memory("k", k.data(), 1);
    cuda::require_device_memory("v", v.data(), 1);
    cuda::require_device_memory("out", out.data(), 1);
    if (!options.padding.none()) cuda::require_device_memory("padding", options.padding.valid.data(), 1);
    if (!options.query_padding.none()) cuda::require_device_memory("query_padding", options.query_padding.valid.data(), 1);
    if (!options.kept.empty()) cuda::require_device_memory("kept", options.kept.words(), 1);
    if (!options.refined.empty()) cuda::require_device_memory("refined", options.refined.words(), 1);
    if (options.predicted.data() != nullptr) cuda::require_device_memory("predicted", options.predicted.data(), 1);
    ::deq::cuda::device_scope const scope(space.device());
    return detail::cuda_attention_compute(space, q, k, v, out, options);
}

/// Convenience overload of the GPU attention() for views of non-const q, k and/or v.
/// @tparam Q Element type of the q view.
/// @tparam K Element type of the k view.
/// @tparam V Element type of the v view.
/// @tparam T Element type of the output (a cuda_attention_element).
/// @param space   The CUDA space.
/// @param q       Queries, device memory.
/// @param k       Keys, device memory.
/// @param v       Values, device memory.
/// @param out     Output, device memory.
/// @param options Options (device memory).
/// @return The call's statistics.
template <class Q, class K, class V, class T>
    requires(cuda_attention_element<T> && std::same_as<std::remove_const_t<Q>, T> &&
             std::same_as<std::remove_const_t<K>, T> && std::same_as<std::remove_const_t<V>, T> &&
             !(std::is_const_v<Q> && std::is_const_v<K> && std::is_const_v<V>))
attention_stats attention(exec::cuda const& space, tensor_view<Q, 4> q, tensor_view<K, 4> k, tensor_view<V, 4> v, tensor_view<T, 4> out,
                          attention_options<accum_t<T>> const& options = {}) {
    return attention(space, tensor_view<T const, 4>(q), tensor_view<T const, 4>(k), tensor_view<T const, 4>(v), out, options);
}

}  // namespace deq
