/// @file
/// @brief The GPU attention kernel (internal; see deq/attention/cuda/attention.hpp): one query row per
/// warp, key tiles of 32 in shared memory, online softmax, every attention mode.
///
/// The schedule (layout, launch shape, block numbering) is in deq/attention/detail/attention_rows_schedule.hpp;
/// the entry arithmetic is the reference row kernel's (deq/attention/detail/attention_kernel.hpp).
#pragma once

#if !defined(__CUDACC__)
#error "deq/attention/cuda/detail/attention_rows.hpp is CUDA C++: compile this translation unit with nvcc"
#endif

#include <cub/warp/warp_reduce.cuh>

#include <cmath>
#include <cstdint>

#include "../../../config.hpp"
#include "../../../core/bit_mask.hpp"
#include "../../../core/padding.hpp"
#include "../../../core/tensor.hpp"
#include "../../detail/attention_kernel.hpp"
#include "../../detail/attention_rows_schedule.hpp"
#include "../../options.hpp"

namespace deq::detail {

/// The arguments of cuda_attention_rows (device views; trivially copyable).
/// @tparam T Element type.
/// @tparam S Score type.
template <class T, class S>
struct attention_rows_args {
    tensor_view<T const, 4> q;         ///< Queries [B, H, Lq, d].
    tensor_view<T const, 4> k;         ///< Keys [B, H, Lk, d].
    tensor_view<T const, 4> v;         ///< Values [B, H, Lk, dv].
    tensor_view<T, 4> out;             ///< Output [B, H, Lq, dv].
    key_padding padding;               ///< Key padding.
    const_bit_mask_view kept;          ///< Kept set or empty.
    const_bit_mask_view refined;       ///< Refined set or empty.
    tensor_view<S const, 4> predicted; ///< Ŝ (used with `refined`).
    empty_row_policy policy;           ///< Empty-row policy.
    double const* key_norm_max;        ///< Largest key norm per (b, h), or null (no skipping).
    attention_row_record* records;     ///< One record per row.
    bool tiles_shared;                 ///< Key / value tiles in shared memory (else read from global memory).
};

/// Warps per block of cuda_attention_rows at most (attention_rows_launch_shape() chooses 8, 4, 2 or 1).
inline constexpr int attention_rows_max_warps = 8;

/// The larger of two values (the reduction operator of attention_warp_max()).
struct attention_max_op {
    /// @return b if b > a, else a.
    template <class X>
    __device__ X operator()(X a, X b) const {
        return b > a ? b : a;
    }
};

/// The sum of a value over the lanes of a warp, with cub::WarpReduce, broadcast from lane 0 to every lane.
/// @param temp The warp's CUB storage (shared memory), reusable after the call.
/// @param x    The lane's value.
/// @return The sum, in every lane.
template <class X>
__device__ inline X attention_warp_sum(typename cub::WarpReduce<X>::TempStorage& temp, X x) {
    X const total = cub::WarpReduce<X>(temp).Sum(x);
    __syncwarp();  // before the storage is reused
    return __shfl_sync(0xffffffffu, total, 0);
}

/// The maximum of a value over the lanes of a warp, with cub::WarpReduce, broadcast to every lane.
/// @param temp The warp's CUB storage (shared memory), reusable after the call.
/// @param x    The lane's value.
/// @return The maximum, in every lane.
template <class X>
__device__ inline X attention_warp_max(typename cub::WarpReduce<X>::TempStorage& temp, X x) {
    X const best = cub::WarpReduce<X>(temp).Reduce(x, attention_max_op{});
    __syncwarp();  // before the storage is reused
    return __shfl_sync(0xffffffffu, best, 0);
}

/// A row's record (the host reduces the statistics and checks from them).
__device__ inline attention_row_record attention_rows_record(index_t kept_real, index_t high_real, index_t exact, int overflow) {
    attention_row_record rec;
    rec.kept_real = kept_real;
    rec.high_real = high_real;
    rec.exact_scores = exact;
    rec.overflow = overflow;
    return rec;
}

/// Dynamic shared memory of cuda_attention_rows, aligned for double scores.
__device__ inline double* attention_rows_shared_memory() {
    extern __shared__ double attention_rows_shared[];
    return attention_rows_shared;
}

/// The GPU attention kernel: blocks of attention_rows_launch::warps warps, one query row per warp
/// (see the file documentation of deq/attention/cuda/attention.hpp). Each block loops over the blocks
/// of attention_rows_blocks() in steps of the grid.
/// @tparam T Element type.
/// @tparam S Score type.
/// @param a The arguments.
template <class T, class S>
__global__ void cuda_attention_rows(attention_rows_args<T, S> a) {
    constexpr unsigned full = 0xffffffffu;
    constexpr int tile = attention_rows_tile_keys;
    // CUB's per-warp storage of the row reductions (counts, the query norm, scores)
    __shared__ typename cub::WarpReduce<index_t>::TempStorage count_storage[attention_rows_max_warps];
    __shared__ typename cub::WarpReduce<double>::TempStorage norm_storage[attention_rows_max_warps];
    __shared__ typename cub::WarpReduce<S>::TempStorage score_storage[attention_rows_max_warps];
    index_t const heads = a.q.extent(1), lq = a.q.extent(2), dim = a.q.extent(3);
    index_t const lk = a.k.extent(2), dv = a.v.extent(3);
    int const lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
    int const warps = static_cast<int>(blockDim.x) >> 5;
    attention_rows_layout const layout = attention_rows_shared_layout(warps, dim, dv, a.tiles_shared);
    S* const shared = reinterpret_cast<S*>(attention_rows_shared_memory());
    S* const k_tile = shared + layout.k_tile;
    S* const v_tile = shared + layout.v_tile;
    S* const qi = shared + layout.q_rows + static_cast<index_t>(warp) * dim;
    S* const acc = shared + layout.acc_rows + static_cast<index_t>(warp) * dv;
    S const sqrt_d = static_cast<S>(std::sqrt(static_cast<double>(dim)));
    bool const lanes_order = a.k.stride(3) == 1;
    index_t const blocks = attention_rows_blocks(a.q.extent(0) * heads, lq, warps);

    for (index_t block = blockIdx.x; block < blocks; block += gridDim.x) {
        index_t bh = 0, first = 0;
        attention_rows_block(block, lq, warps, bh, first);
        index_t const b = bh / heads, h = bh - b * heads, i = first + warp;
        bool const live = i < lq;  // warp-uniform
        std::uint64_t const* const kept_row = (!live || a.kept.empty()) ? nullptr : a.kept.row(b, h, i);
        std::uint64_t const* const ref_row = (!live || a.refined.empty()) ? nullptr : a.refined.row(b, h, i);

        // The row's counts (kept real keys, kept and refined real keys, real keys).
        index_t kept_real = 0, high_real = 0, real_keys = 0;
        if (live) {
            for (index_t j = lane; j < lk; j += 32) {
                if (!a.padding.is_valid(b, j)) continue;
                bool const kj = kept_row == nullptr || attention_bit(kept_row, j);
                bool const rj = ref_row == nullptr || attention_bit(ref_row, j);
                ++real_keys;
                kept_real += kj ? 1 : 0;
                high_real += (kj && rj) ? 1 : 0;
            }
        }
        kept_real = attention_warp_sum(count_storage[warp], kept_real);
        high_real = attention_warp_sum(count_storage[warp], high_real);
        real_keys = attention_warp_sum(count_storage[warp], real_keys);
        bool const empty = kept_real == 0;
        bool active = live;  // the row runs the softmax

        if (live && empty && a.policy != empty_row_policy::reference) {
            // zero: a zero row; uniform: the plain average of the real keys' values (of all keys if none is real)
            bool const all_keys = real_keys == 0;
            S const w = S(1) / static_cast<S>(all_keys ? lk : real_keys);
            int bad = 0;
            for (index_t t = lane; t < dv; t += 32) {
                S o = S(0);
                if (a.policy == empty_row_policy::uniform) {
                    for (index_t j = 0; j < lk; ++j)
                        if (all_keys || a.padding.is_valid(b, j)) o += w * static_cast<S>(a.v(b, h, j, t));
                }
                bad |= (o - o == S(0)) ? 0 : 1;
                a.out(b, h, i, t) = static_cast<T>(o);
            }
            bad = __any_sync(full, bad);
            if (lane == 0) a.records[bh * lq + i] = attention_rows_record(kept_real, high_real, 0, bad ? attention_overflow_output : attention_overflow_none);
            active = false;
        }

        bool may_skip = false;
        double bound = 0;
        if (active) {
            double qn = 0;
            for (index_t t = lane; t < dim; t += 32) {
                S const x = static_cast<S>(a.q(b, h, i, t));
                qi[t] = x;
                qn += static_cast<double>(x) * static_cast<double>(x);
            }
            for (index_t t = lane; t < dv; t += 32) acc[t] = S(0);
            may_skip = kept_row != nullptr && !empty && a.key_norm_max != nullptr;
            if (may_skip) bound = attention_skip_bound<S>(attention_warp_sum(norm_storage[warp], qn), a.key_norm_max[bh], dim);
        }
        __syncwarp();

        S m = S(0), l = S(0);  // running maximum (once started) and sum
        bool started = false;
        index_t exact = 0;
        for (index_t j0 = 0; j0 < lk; j0 += tile) {
            index_t const j = j0 + lane;
            bool const valid = active && j < lk;
            bool kj = true, rj = true, padded = false;
            if (valid) {
                kj = kept_row == nullptr || attention_bit(kept_row, j);
                rj = ref_row == nullptr || attention_bit(ref_row, j);
                padded = !a.padding.is_valid(b, j);
            }
            // A pruned entry that needs a dot product is skipped where the bound proves its weight 0.
            bool const skipped = valid && may_skip && !kj && rj && started && attention_skip_proved(bound, static_cast<double>(m));
            bool const need_v = valid && !skipped;
            bool const need_k = need_v && rj;
            index_t const in_tile = lk - j0 < tile ? lk - j0 : tile;
            if (a.tiles_shared) {
                // (also the barrier after the previous tile's reads)
                int const any_k = __syncthreads_or(need_k ? 1 : 0);
                int const any_v = __syncthreads_or(need_v ? 1 : 0);
                if (any_k) {
                    for (index_t e = threadIdx.x; e < in_tile * dim; e += blockDim.x) {
                        index_t const r = e / dim, t = e - r * dim;
                        k_tile[r * (dim + 1) + t] = static_cast<S>(a.k(b, h, j0 + r, t));
                    }
                }
                if (any_v) {
                    for (index_t e = threadIdx.x; e < in_tile * dv; e += blockDim.x) {
                        index_t const r = e / dv, t = e - r * dv;
                        v_tile[r * dv + t] = static_cast<S>(a.v(b, h, j0 + r, t));
                    }
                }
                __syncthreads();
            }
            if (!__any_sync(full, need_v ? 1 : 0)) continue;  // warp-uniform

            S x = S(0);
            if (need_k) {
                x = a.tiles_shared ? attention_exact_score(qi, k_tile + static_cast<index_t>(lane) * (dim + 1), 1, lanes_order, dim, sqrt_d)
                                   : attention_exact_score(qi, &a.k(b, h, j, 0), a.k.stride(3), lanes_order, dim, sqrt_d);
                ++exact;
            } else if (need_v) {
                x = a.predicted(b, h, i, j);
            }
            if (need_v) x = attention_penalised(x, kj, padded);

            // Online softmax over the tile.
            S const tile_max = attention_warp_max(score_storage[warp], need_v ? x : -INFINITY);
            S const m_new = started && m > tile_max ? m : tile_max;
            S const scale = started ? std::exp(m - m_new) : S(0);
            S const p = need_v ? std::exp(x - m_new) : S(0);
            l = l * scale + attention_warp_sum(score_storage[warp], p);
            m = m_new;
            started = true;
            for (index_t t0 = 0; t0 < dv; t0 += 32) {
                index_t const t = t0 + lane;
                S o = t < dv ? acc[t] * scale : S(0);
                for (int r = 0; r < tile; ++r) {
                    S const pr = __shfl_sync(full, p, r);
                    if (pr == S(0) || t >= dv) continue;  // pr is warp-uniform
                    S const vr = a.tiles_shared ? v_tile[static_cast<index_t>(r) * dv + t] : static_cast<S>(a.v(b, h, j0 + r, t));
                    o += pr * vr;
                }
                if (t < dv) acc[t] = o;
            }
        }

        if (active) {
            exact = attention_warp_sum(count_storage[warp], exact);
            // Finite inputs whose scores overflow give an infinite score, then a NaN sum (as on the host).
            bool const sum_ok = l - l == S(0) && l > S(0);
            int bad = 0;
            for (index_t t = lane; t < dv; t += 32) {
                S const o = acc[t] / l;
                bad |= (o - o == S(0)) ? 0 : 1;
                a.out(b, h, i, t) = static_cast<T>(o);
            }
            bad = __any_sync(full, bad);
            if (lane == 0) {
                a.records[bh * lq + i] = attention_rows_record(
                    kept_real, high_real, exact, !sum_ok ? attention_overflow_scores : (bad ? attention_overflow_output : attention_overflow_none));
            }
        }
        // the next block's rows reuse the shared memory (each warp its own rows, the block the tiles)
        if (a.tiles_shared) __syncthreads();
        else __syncwarp();
    }
}

}  // namespace deq::detail
