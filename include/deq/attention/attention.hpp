/// @file
/// @brief `deq::attention`: reference-correct attention for every mode (dense, masked sparse, DEQ mixed
/// precision, three-level) with one kernel definition run through an execution space.
///
/// The arithmetic reproduces the reference (`BertSelfAttention.forward` of Sanger / DEQ) in the score
/// type `S = accum_t<T>` (float for float and 16-bit inputs, double for double), in this order:
///
///     s_ij = dot(q_i, k_j) / S(sqrt(d))          (exact score, summed over the head dimension in order)
///     s_ij = refined_ij ? s_ij : Ŝ_ij            (DEQ mixed precision; only with a `refined` mask)
///     s_ij = s_ij + (kept_ij ? 0 : -10000)       (Sanger / static / pruning; only with a `kept` mask)
///     s_ij = s_ij + (padded_j ? -10000 : 0)      (key padding)
///     P_ij = exp(s_ij - max_j s_ij) / Σ_j exp(s_ij - max_j s_ij)     (sum in key order)
///     o_i  = Σ_j P_ij v_j                          (in key order), converted once to T
///
/// Rows with no kept real key follow attention_options::empty_rows (see deq/attention/options.hpp for
/// why the reference's own arithmetic is not uniform in float32).
///
/// **Exact sparse skipping.** In a row that has a kept real key, the exact score of a pruned entry is
/// needed only to be multiplied by exp(≈ -10000) = 0. The kernel skips those dot products when a bound
/// (‖q_i‖ · max_j ‖k_j‖ / √d, with a safety factor) proves that the entry ends at least 800 below the
/// row maximum, where exp() is exactly 0 in float and double; otherwise it computes them. The outputs
/// are therefore bit-identical with and without skipping (attention_options::skip_pruned). Rows without
/// a kept real key are always computed with the full penalty arithmetic under the reference policy.
#pragma once

#include <algorithm>
#include <concepts>
#include <type_traits>
#include <vector>

#include "../core/accumulator.hpp"
#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "detail/attention_kernel.hpp"
#include "detail/flash_attention.hpp"
#include "detail/validate.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace deq {

/// Element types the attention kernel accepts: convertible to and from their accumulator type.
/// @tparam T Candidate element type (float, double, deq::float16, ...).
template <class T>
concept attention_element = std::floating_point<accum_t<T>> && requires(T t, accum_t<T> s) {
    { static_cast<accum_t<T>>(t) };
    { static_cast<T>(s) };
};

namespace detail {

/// Largest number of scratch scores one launch allocates (rows are processed in launches of at most
/// this many scores of scratch; normally a single launch).
inline constexpr index_t attention_scratch_budget = index_t{1} << 22;

/// Throws deq::numeric_error for the first row whose result overflowed the score type although the
/// inputs were finite (attention_row_record::overflow), naming the row.
template <class S>
void attention_check_overflow(std::vector<attention_row_record> const& records, index_t heads, index_t lq) {
    for (std::size_t r = 0; r < records.size(); ++r) {
        if (records[r].overflow == attention_overflow_none) continue;
        index_t b = 0, h = 0, i = 0;
        attention_split_row(static_cast<index_t>(r), heads, lq, b, h, i);
        char const* const type = sizeof(S) <= 4 ? "float" : "double";
        if (records[r].overflow == attention_overflow_scores) {
            throw numeric_error(concat("deq: attention scores of row [", b, ", ", h, ", ", i, "] overflow the score type (",
                                       type, "): q and k are finite but q·k/sqrt(d) is not; scale q or k down"));
        }
        throw numeric_error(concat("deq: attention output of row [", b, ", ", h, ", ", i, "] overflows the score type (",
                                   type, "): the weighted sum of the finite values 'v' is not finite"));
    }
}

/// Reduces the per-row records into attention_stats.
template <class S>
attention_stats attention_reduce_stats(std::vector<attention_row_record> const& records, index_t batch, index_t heads,
                                       index_t lq, index_t lk, attention_options<S> const& options) {
    key_padding const& qpad = !options.query_padding.none() ? options.query_padding
                              : (lq == lk ? options.padding : key_padding{});
    attention_stats st;
    double density_sum = 0, refine_sum = 0;
    index_t sequences = 0;
    for (index_t b = 0; b < batch; ++b) {
        index_t nk = 0, nq = 0;
        for (index_t j = 0; j < lk; ++j) nk += options.padding.is_valid(b, j) ? 1 : 0;
        for (index_t i = 0; i < lq; ++i) nq += qpad.is_valid(b, i) ? 1 : 0;
        index_t kept_b = 0, high_b = 0;
        for (index_t h = 0; h < heads; ++h) {
            for (index_t i = 0; i < lq; ++i) {
                attention_row_record const& rec = records[static_cast<std::size_t>((b * heads + h) * lq + i)];
                st.exact_scores += rec.exact_scores;
                if (!qpad.is_valid(b, i)) continue;
                ++st.rows;
                kept_b += rec.kept_real;
                high_b += rec.high_real;
                if (rec.kept_real == 0) ++st.empty_rows;
            }
        }
        index_t const valid_b = heads * nq * nk;
        st.valid_pairs += valid_b;
        st.kept_pairs += kept_b;
        st.refined_pairs += high_b;
        if (valid_b > 0) {
            density_sum += static_cast<double>(kept_b) / static_cast<double>(valid_b);
            refine_sum += static_cast<double>(high_b) / static_cast<double>(valid_b);
            ++sequences;
        }
    }
    if (sequences > 0) {
        st.density = density_sum / static_cast<double>(sequences);
        st.refinement_ratio = refine_sum / static_cast<double>(sequences);
    }
    return st;
}

}  // namespace detail

/// Which public entry point an attention computation comes from, passed to the dispatch point
/// deq::impl::attention_impl (an execution space that models hardware, such as
/// deq::exec::accelerator, uses it to cost the call; the generic implementation ignores it).
struct attention_call_info {
    /// The entry point: "attention" (a direct call), "sanger", "deq", "three_level" or "static_sparse".
    char const* pipeline = "attention";
    /// Bit width of the low-bit score predictor that ran on the same space for this call (the
    /// pipelines set it); 0 when no predictor ran.
    int predictor_bits = 0;
};

namespace detail {

/// The generic attention computation behind attention() (see its documentation): validates, runs the
/// row kernel through @p space and reduces the statistics.
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space   Execution space.
/// @param q       Queries [B, H, Lq, d].
/// @param k       Keys [B, H, Lk, d].
/// @param v       Values [B, H, Lk, dv].
/// @param out     Output [B, H, Lq, dv].
/// @param options Padding, masks, predicted scores, empty-row policy and checks.
/// @return The call's statistics.
/// @param fused    Quantized q and k of a pipeline that lets the kernel compute the predicted scores of
///                 unrefined entries itself (then `options.predicted` is empty), or null.
template <class Space, class T>
attention_stats attention_compute(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                  tensor_view<T const, 4> v, tensor_view<T, 4> out,
                                  attention_options<accum_t<T>> const& options,
                                  predictor_operands<accum_t<T>, std::int8_t> const* fused = nullptr) {
    using S = accum_t<T>;
    detail::attention_validate(q, k, v, out, options, fused != nullptr);
    index_t const batch = q.extent(0), heads = q.extent(1), lq = q.extent(2), dim = q.extent(3);
    index_t const lk = k.extent(2), dv = v.extent(3);
    index_t const total_rows = batch * heads * lq;

    std::vector<detail::attention_row_record> records(static_cast<std::size_t>(total_rows));
    if (flash_applies<T, S>(options) || fused != nullptr) {
#if DEQ_ARCH_X86
        if constexpr (std::is_same_v<S, float>) {
            flash_attention(space, q, k, v, out, options, records, fused);
            if (options.check_finite) detail::attention_check_overflow<S>(records, heads, lq);
            return detail::attention_reduce_stats(records, batch, heads, lq, lk, options);
        }
#endif
        if (fused != nullptr) throw_invalid_argument("fused", "<operands>", "need the flash attention path (internal error)");
    }
    std::vector<double> key_norms;
    if (options.skip_pruned && !options.kept.empty()) {
        key_norms.assign(static_cast<std::size_t>(batch * heads), 0.0);
        exec::parallel_for(space, batch * heads, detail::attention_key_norm_kernel<T, S>{k, key_norms.data()});
    }
    index_t const row_len = lk + dv + dim;
    index_t const per_launch = std::clamp<index_t>(detail::attention_scratch_budget / row_len, 1, total_rows);
    std::vector<S> scratch(static_cast<std::size_t>(per_launch * row_len));
    for (index_t first = 0; first < total_rows; first += per_launch) {
        index_t const n = std::min(per_launch, total_rows - first);
        detail::attention_row_kernel<T, S> kernel{q,
                                                  k,
                                                  v,
                                                  out,
                                                  options.padding,
                                                  options.kept,
                                                  options.refined,
                                                  options.predicted,
                                                  options.empty_rows,
                                                  key_norms.empty() ? nullptr : key_norms.data(),
                                                  scratch.data(),
                                                  records.data(),
                                                  first};
        exec::parallel_for(space, n, kernel);
    }
    // The inputs were checked finite, so a non-finite row is an overflow; without the check the
    // caller vouched for the inputs and non-finite inputs give unspecified results.
    if (options.check_finite) detail::attention_check_overflow<S>(records, heads, lq);
    return detail::attention_reduce_stats(records, batch, heads, lq, lk, options);
}

}  // namespace detail

namespace impl {

/// Dispatch point of attention() and of the pipelines' attention step, in the style of
/// deq::exec::backend: the primary template runs the generic computation (detail::attention_compute);
/// an execution space may specialise it to run or observe the computation its own way (the
/// accelerator model runs the same computation and adds its cost).
/// @tparam Space Execution-space type.
template <class Space>
struct attention_impl {
    /// Runs the attention computation.
    /// @tparam T Element type.
    /// @param space   Execution space.
    /// @param q       Queries [B, H, Lq, d].
    /// @param k       Keys [B, H, Lk, d].
    /// @param v       Values [B, H, Lk, dv].
    /// @param out     Output [B, H, Lq, dv].
    /// @param options Padding, masks, predicted scores, empty-row policy and checks.
    /// @param info    The calling entry point (unused by the generic implementation).
    /// @return The call's statistics.
    template <class T>
    static attention_stats run(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                               tensor_view<T const, 4> v, tensor_view<T, 4> out,
                               attention_options<accum_t<T>> const& options, attention_call_info const& info) {
        (void)info;
        return detail::attention_compute(space, q, k, v, out, options);
    }
};

/// Whether the fused pipelines may run the mixed-precision attention directly on the predictor's
/// quantized operands (computing the Ŝ of unrefined entries inside the kernel) instead of going through
/// attention_impl with materialised predicted scores. True by default; a space whose attention_impl
/// must observe every call (deq::exec::accelerator) sets it to false.
/// @tparam Space Execution-space type.
template <class Space>
struct fused_attention : std::true_type {};

}  // namespace impl

/// Computes attention `out = softmax(scores) · v` with the reference's score arithmetic for every mode
/// selected by @p options (see the file documentation and deq::attention_options).
///
/// One work item per query row (b, h, i) runs the same kernel on every execution space; each row uses a
/// preallocated scratch slice of `Lk + dv + d` scores. Results do not depend on the execution space.
/// @tparam Space A host execution space (the function allocates host scratch buffers).
/// @tparam T     Element type (float, double, deq::float16, ...); scores are computed in `accum_t<T>`.
/// @param space   Execution space.
/// @param q       Queries [B, H, Lq, d].
/// @param k       Keys [B, H, Lk, d] (not transposed).
/// @param v       Values [B, H, Lk, dv] (dv may differ from d).
/// @param out     Output [B, H, Lq, dv], written through a conversion from `accum_t<T>`; must not overlap
///                the inputs.
/// @param options Padding, masks, predicted scores, empty-row policy and checks.
/// @return The call's statistics (pairs, density, refinement ratio, empty rows).
/// @throws deq::shape_error for mismatched or zero extents (naming the tensor and both shapes) or masks
///         of the wrong shape; deq::invalid_argument when `refined` is given without `predicted` or the
///         policy is invalid; deq::numeric_error for NaN/Inf in q, k, v or the used predicted scores
///         (naming the tensor and the index) when `check_finite` is set, and for finite inputs whose
///         scores or outputs overflow the score type (naming the row).
template <exec::host_execution_space Space, attention_element T>
attention_stats attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                          tensor_view<T const, 4> v, tensor_view<T, 4> out,
                          attention_options<accum_t<T>> const& options = {}) {
    return impl::attention_impl<Space>::run(space, q, k, v, out, options, attention_call_info{});
}

/// Dense attention with key padding only (no options to spell out): attention() with
/// `options.padding = padding`.
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space   Execution space.
/// @param q       Queries [B, H, Lq, d].
/// @param k       Keys [B, H, Lk, d].
/// @param v       Values [B, H, Lk, dv].
/// @param out     Output [B, H, Lq, dv].
/// @param padding Key padding [B, Lk] (e.g. deq::padding_mask(hf_mask).padding()).
/// @return The call's statistics.
template <exec::host_execution_space Space, attention_element T>
attention_stats attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k, tensor_view<T const, 4> v,
                          tensor_view<T, 4> out, key_padding padding) {
    attention_options<accum_t<T>> options;
    options.padding = padding;
    return attention(space, q, k, v, out, options);
}

/// Convenience overload of attention() for views of non-const q, k and/or v.
/// @tparam Space A host execution space.
/// @tparam Q     Element type of the q view (T or T const).
/// @tparam K     Element type of the k view (T or T const).
/// @tparam V     Element type of the v view (T or T const).
/// @tparam T     Element type of the output.
/// @param space   Execution space.
/// @param q       Queries [B, H, Lq, d].
/// @param k       Keys [B, H, Lk, d].
/// @param v       Values [B, H, Lk, dv].
/// @param out     Output [B, H, Lq, dv].
/// @param options Padding, masks, predicted scores, empty-row policy and checks.
/// @return The call's statistics.
template <exec::host_execution_space Space, class Q, class K, class V, attention_element T>
    requires(std::same_as<std::remove_const_t<Q>, T> && std::same_as<std::remove_const_t<K>, T> &&
             std::same_as<std::remove_const_t<V>, T> &&
             !(std::is_const_v<Q> && std::is_const_v<K> && std::is_const_v<V>))
attention_stats attention(Space const& space, tensor_view<Q, 4> q, tensor_view<K, 4> k, tensor_view<V, 4> v,
                          tensor_view<T, 4> out, attention_options<accum_t<T>> const& options = {}) {
    return attention(space, tensor_view<T const, 4>(q), tensor_view<T const, 4>(k), tensor_view<T const, 4>(v), out,
                     options);
}

}  // namespace deq
