/// @file
/// @brief The attention row kernel (internal; see deq/attention/attention.hpp): one work item per
/// query row (b, h, i), for every mode (dense, masked, mixed precision, three-level).
#pragma once

#include <cmath>
#include <cstdint>

#include "../../config.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../numeric/unfused.hpp"
#include "../options.hpp"

namespace deq::detail {

/// The additive penalty of the reference for pruned entries and padded keys.
inline constexpr double attention_penalty = -10000.0;

/// A skipped pruned entry must sit at least this far below the row maximum (after the penalty), so
/// that exp() of it is exactly 0 in float (underflow below about -103.97) and in double (below -745.2).
inline constexpr double attention_skip_margin = 800.0;

/// Per-row counts written by the kernel and reduced on the host.
struct attention_row_record {
    index_t kept_real = 0;     ///< Real keys that are kept.
    index_t high_real = 0;     ///< Real keys that are kept and refined (full precision).
    index_t exact_scores = 0;  ///< Exact dot products evaluated for this row.
    int overflow = 0;          ///< attention_overflow_none, _scores or _output (finite inputs, non-finite result).
};

/// attention_row_record::overflow: the row's result is finite.
inline constexpr int attention_overflow_none = 0;
/// attention_row_record::overflow: a score (q·k/√d, or the softmax over the scores) is not finite.
inline constexpr int attention_overflow_scores = 1;
/// attention_row_record::overflow: the weighted sum of the values is not finite.
inline constexpr int attention_overflow_output = 2;

/// The overflow status of an output row: attention_overflow_output if any of its @p n entries is
/// not finite (NaN or ±inf), else attention_overflow_none.
template <class S>
DEQ_HOST_DEVICE int attention_output_status(S const* acc, index_t n) {
    S bad = S(0);
    for (index_t t = 0; t < n; ++t) bad += acc[t] * S(0);  // NaN exactly when some acc[t] is NaN or ±inf
    return bad == S(0) ? attention_overflow_none : attention_overflow_output;
}

/// Splits a flat row index into (b, h, i).
DEQ_HOST_DEVICE inline void attention_split_row(index_t r, index_t heads, index_t rows, index_t& b, index_t& h,
                                                index_t& i) {
    index_t const per_batch = heads * rows;
    b = r / per_batch;
    index_t const rem = r - b * per_batch;
    h = rem / rows;
    i = rem - h * rows;
}

/// Bit j of a packed mask row.
DEQ_HOST_DEVICE inline bool attention_bit(std::uint64_t const* row, index_t j) {
    return ((row[j / mask_word_bits] >> (j % mask_word_bits)) & 1u) != 0;
}

/// The sum of squares of @p n doubles `x(t)` in 8 interleaved partial sums (vectorisable), for the bounds of
/// exact skipping, which allow far more rounding than any summation order makes.
/// @param n Entries.
/// @param x The entry t as a double.
/// @return The sum.
template <class F>
DEQ_HOST_DEVICE inline double attention_bound_sum_squares(index_t n, F const& x) {
    // Whole groups of 8 first, so that the partial sums stay in registers (a loop indexing part[t % 8]
    // keeps them in memory, one store-to-load chain per entry); each part adds the same entries in the
    // same order either way.
    double part[8] = {};
    index_t t = 0;
    for (; t + 8 <= n; t += 8) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#elif !defined(__CUDACC__)
#pragma GCC unroll 8
#endif
        for (int u = 0; u < 8; ++u) {
            double const v = x(t + u);
            part[u] += v * v;
        }
    }
    for (; t < n; ++t) {
        double const v = x(t);
        part[t % 8] += v * v;
    }
    return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
}

/// The exact score `q_i · k_j / sqrt(d)` of the reference kernel, in its order: with @p lanes (contiguous
/// keys), eight interleaved partial sums over whole groups of 8 (vectorisable), combined pairwise, then
/// the rest in order; otherwise one sum in order. Every product and sum is rounded on its own on every
/// target (deq/numeric/unfused.hpp), so the device computes the host's bits, which the -10000 arithmetic
/// of rows without a kept key needs.
/// @tparam S Score type.
/// @tparam K Key element type (converted to S).
/// @param qi     The query row in S.
/// @param kj     The key row.
/// @param stride Stride between the key's elements.
/// @param lanes  Whether to use the eight-lane order (the reference uses it when the keys are contiguous).
/// @param dim    Head dimension.
/// @param sqrt_d `S(sqrt(d))`.
/// @return The score.
template <class S, class K>
DEQ_HOST_DEVICE inline S attention_exact_score(S const* qi, K const* kj, index_t stride, bool lanes, index_t dim, S sqrt_d) {
    S acc = S(0);
    index_t t = 0;
    if (lanes) {
        // Eight independent partial sums (the order differs from a sequential sum only by rounding, as
        // PyTorch's matmul does).
        S lane[8] = {S(0), S(0), S(0), S(0), S(0), S(0), S(0), S(0)};
        for (; t + 8 <= dim; t += 8)
            for (int u = 0; u < 8; ++u) lane[u] = add_unfused(lane[u], multiply_unfused(qi[t + u], static_cast<S>(kj[(t + u) * stride])));
        acc = add_unfused(add_unfused(add_unfused(lane[0], lane[4]), add_unfused(lane[1], lane[5])),
                          add_unfused(add_unfused(lane[2], lane[6]), add_unfused(lane[3], lane[7])));
    }
    for (; t < dim; ++t) acc = add_unfused(acc, multiply_unfused(qi[t], static_cast<S>(kj[t * stride])));
    return acc / sqrt_d;
}

/// A score after the reference's penalties: -10000 for a pruned entry, then -10000 for a padded key
/// (two roundings, in this order).
/// @tparam S Score type.
/// @param x      The exact or predicted score.
/// @param kept   Whether the entry is kept.
/// @param padded Whether the key is padding.
/// @return The penalised score.
template <class S>
DEQ_HOST_DEVICE inline S attention_penalised(S x, bool kept, bool padded) {
    S const pen = static_cast<S>(attention_penalty);
    if (!kept) x = x + pen;
    if (padded) x = x + pen;
    return x;
}

/// The bound of exact skipping: |q_i · k_j| / sqrt(d) <= the result for every key of the head, from the
/// squared query norm and the head's largest key norm, widened for rounding in the score type.
/// @tparam S Score type.
/// @param q_norm_squared ‖q_i‖² (in double).
/// @param key_norm_max   The head's largest ‖k_j‖ (attention_key_norm_kernel).
/// @param dim            Head dimension.
/// @return The bound.
template <class S>
DEQ_HOST_DEVICE inline double attention_skip_bound(double q_norm_squared, double key_norm_max, index_t dim) {
    double const eps = sizeof(S) <= 4 ? 1.1920928955078125e-07 : 2.220446049250313e-16;  // of S
    return std::sqrt(q_norm_squared) * key_norm_max / std::sqrt(static_cast<double>(dim)) *
               (1.0 + 1e-3 + 4.0 * static_cast<double>(dim) * eps) +
           1.0;
}

/// Whether every pruned entry of a row whose scores are at most @p bound is exactly 0 after the softmax
/// when the row maximum is at least @p row_max (exp below -800 is 0 in float and double).
/// @param bound   attention_skip_bound() of the row.
/// @param row_max A score of the row after its penalties (the maximum, or a running maximum below it).
/// @return True when skipping the pruned entries is exact.
DEQ_HOST_DEVICE inline bool attention_skip_proved(double bound, double row_max) {
    return (bound + attention_penalty) - row_max < -attention_skip_margin;
}

/// Kernel: the largest L2 norm of the keys of each (b, h), in double (the bound used for exact skipping).
/// One work item per (b, h).
/// @tparam T Element type.
/// @tparam S Score type.
template <class T, class S>
struct attention_key_norm_kernel {
    tensor_view<T const, 4> k;  ///< Keys [B, H, Lk, d].
    double* out;                ///< Output [B * H].

    DEQ_HOST_DEVICE void operator()(index_t bh) const {
        index_t const heads = k.extent(1);
        index_t const b = bh / heads;
        index_t const h = bh - b * heads;
        // the square root of the largest sum (sqrt is monotonic)
        double best = 0;
        for (index_t j = 0; j < k.extent(2); ++j) {
            double const sum = attention_bound_sum_squares(k.extent(3), [&](index_t t) { return static_cast<double>(static_cast<S>(k(b, h, j, t))); });
            best = sum > best ? sum : best;
        }
        out[bh] = std::sqrt(best);
    }
};

/// The attention kernel: one work item per query row (b, h, i) of a launch of rows
/// [first_row, first_row + n). Uses a scratch slice of `Lk + dv + d` scores per work item.
/// @tparam T Element type of q, k, v and out.
/// @tparam S Score type (`accum_t<T>`).
template <class T, class S>
struct attention_row_kernel {
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
    S* scratch;                        ///< `n * (Lk + dv + d)` scores for this launch.
    attention_row_record* records;     ///< One record per row of the whole call.
    index_t first_row;                 ///< First row of this launch.

    /// Score of entry j before the penalties: exact or predicted.
    DEQ_HOST_DEVICE S raw_score(S const* qi, index_t b, index_t h, index_t i, index_t j, bool exact, S sqrt_d,
                                index_t& exact_count) const {
        if (!exact) return predicted(b, h, i, j);
        ++exact_count;
        return attention_exact_score(qi, &k(b, h, j, 0), k.stride(3), k.stride(3) == 1, q.extent(3), sqrt_d);
    }

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const heads = q.extent(1), lq = q.extent(2), dim = q.extent(3);
        index_t const lk = k.extent(2), dv = v.extent(3);
        index_t const r = first_row + item;
        index_t b = 0, h = 0, i = 0;
        attention_split_row(r, heads, lq, b, h, i);

        S* const s = scratch + item * (lk + dv + dim);
        S* const acc = s + lk;
        S* const qi = acc + dv;
        S const sqrt_d = static_cast<S>(std::sqrt(static_cast<double>(dim)));

        std::uint64_t const* const kept_row = kept.empty() ? nullptr : kept.row(b, h, i);
        std::uint64_t const* const ref_row = refined.empty() ? nullptr : refined.row(b, h, i);

        attention_row_record rec;
        index_t real_keys = 0;
        for (index_t j = 0; j < lk; ++j) {
            if (!padding.is_valid(b, j)) continue;
            ++real_keys;
            bool const kj = kept_row == nullptr || attention_bit(kept_row, j);
            bool const rj = ref_row == nullptr || attention_bit(ref_row, j);
            rec.kept_real += kj ? 1 : 0;
            rec.high_real += (kj && rj) ? 1 : 0;
        }
        bool const empty = rec.kept_real == 0;

        for (index_t t = 0; t < dv; ++t) acc[t] = S(0);

        if (empty && policy != empty_row_policy::reference) {
            if (policy == empty_row_policy::uniform) {
                bool const all_keys = real_keys == 0;
                S const w = S(1) / static_cast<S>(all_keys ? lk : real_keys);
                for (index_t j = 0; j < lk; ++j) {
                    if (!all_keys && !padding.is_valid(b, j)) continue;
                    for (index_t t = 0; t < dv; ++t) acc[t] += w * static_cast<S>(v(b, h, j, t));
                }
            }
            rec.overflow = attention_output_status(acc, dv);
            for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = static_cast<T>(acc[t]);
            records[r] = rec;
            return;
        }

        for (index_t t = 0; t < dim; ++t) qi[t] = static_cast<S>(q(b, h, i, t));

        index_t exact_scores = 0;  // counted locally (rec is written once, at the end)
        // Pass 1: every score, except (when skipping may be exact) the exact scores of pruned entries.
        bool const may_skip = kept_row != nullptr && !empty && key_norm_max != nullptr;
        bool deferred = false;
        S m = S(0);  // the row maximum, set by the first score
        bool have_max = false;
        for (index_t j = 0; j < lk; ++j) {
            bool const kj = kept_row == nullptr || attention_bit(kept_row, j);
            bool const rj = ref_row == nullptr || attention_bit(ref_row, j);
            if (may_skip && !kj && rj) {
                deferred = true;
                continue;
            }
            S const x = attention_penalised(raw_score(qi, b, h, i, j, rj, sqrt_d, exact_scores), kj, !padding.is_valid(b, j));
            s[j] = x;
            if (!have_max || x > m) m = x;
            have_max = true;
        }

        // The deferred entries are exactly zero after the softmax if their bound lies far below the max.
        bool skip = false;
        if (deferred) {
            double qn = 0;
            for (index_t t = 0; t < dim; ++t) qn += static_cast<double>(qi[t]) * static_cast<double>(qi[t]);
            skip = attention_skip_proved(attention_skip_bound<S>(qn, key_norm_max[b * heads + h], dim), static_cast<double>(m));
            if (!skip) {
                for (index_t j = 0; j < lk; ++j) {
                    if (attention_bit(kept_row, j) || !(ref_row == nullptr || attention_bit(ref_row, j))) continue;
                    S const x = attention_penalised(raw_score(qi, b, h, i, j, true, sqrt_d, exact_scores), false, !padding.is_valid(b, j));
                    s[j] = x;
                    if (x > m) m = x;
                }
            }
        }

        // Softmax (subtract the row maximum, exp, sum in key order, divide) and P·V.
        S sum = S(0);
        for (index_t j = 0; j < lk; ++j) {
            if (skip && !attention_bit(kept_row, j) && (ref_row == nullptr || attention_bit(ref_row, j))) {
                s[j] = S(0);
                continue;
            }
            S const e = std::exp(s[j] - m);
            s[j] = e;
            sum += e;
        }
        // Weights below the smallest normal number are skipped: their contribution (< 1.2e-38 · |v|
        // in float) is far below the output's rounding, and subnormal arithmetic is up to 100x slower.
        S const smallest_normal = sizeof(S) <= 4 ? S(1.17549435082228750797e-38) : S(2.2250738585072014e-308);
        index_t const vs = v.stride(3);
        S* __restrict const acc_row = acc;
        auto weight = [&](index_t j) {
            S const p = s[j] / sum;
            return p < smallest_normal ? S(0) : p;
        };
        index_t j = 0;
        if (vs == 1) {
            // Four keys per pass over the accumulator row (vectorisable over t).
            for (; j + 4 <= lk; j += 4) {
                S const p0 = weight(j), p1 = weight(j + 1), p2 = weight(j + 2), p3 = weight(j + 3);
                if (p0 == S(0) && p1 == S(0) && p2 == S(0) && p3 == S(0)) continue;
                T const* __restrict const v0 = &v(b, h, j, 0);
                T const* __restrict const v1 = &v(b, h, j + 1, 0);
                T const* __restrict const v2 = &v(b, h, j + 2, 0);
                T const* __restrict const v3 = &v(b, h, j + 3, 0);
                for (index_t t = 0; t < dv; ++t)
                    acc_row[t] += (p0 * static_cast<S>(v0[t]) + p1 * static_cast<S>(v1[t])) +
                                  (p2 * static_cast<S>(v2[t]) + p3 * static_cast<S>(v3[t]));
            }
        }
        for (; j < lk; ++j) {
            S const p = weight(j);
            if (p == S(0)) continue;
            T const* __restrict const vj = &v(b, h, j, 0);
            for (index_t t = 0; t < dv; ++t) acc_row[t] += p * static_cast<S>(vj[t * vs]);
        }
        // Finite inputs whose scores overflow S give an infinite score: the softmax sum is then NaN
        // (inf - inf), or, with every score at -inf, NaN as well. A single -inf score among finite
        // ones is its exact limit (weight 0) and passes.
        rec.overflow = (sum - sum == S(0) && sum > S(0)) ? attention_output_status(acc, dv) : attention_overflow_scores;
        for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = static_cast<T>(acc[t]);
        rec.exact_scores += exact_scores;
        records[r] = rec;
    }
};

}  // namespace deq::detail
