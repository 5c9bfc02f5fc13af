/// @file
/// @brief One-call attention pipelines: Sanger (predict → prune → sparse attention), DEQ (predict →
/// refine → mixed-precision attention), three-level (predict → prune + refine → attention) and static
/// sparse attention. The predictor is fused into the mask selection and the attention (no [B, H, Lq, Lk]
/// tensor of predicted scores on the fast path); each returns the call's
/// deq::attention_stats.
///
/// | pipeline | predictor | masks | attention |
/// |---|---|---|---|
/// | sanger_attention | predict_scores | kept = select(P̂ > θ) | exact scores, -10000 on pruned |
/// | deq_attention | predict_scores | refined = select(refine) | refined exact, others Ŝ |
/// | three_level_attention | predict_scores | make_precision_map(prune, refine) | both |
/// | static_sparse_attention | none | the given pattern | exact scores, -10000 outside the pattern |
#pragma once

#include "../core/accumulator.hpp"
#include "../core/bit_mask.hpp"
#include "../core/checked_size.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../mask/mask_rule.hpp"
#include "../mask/precision_map.hpp"
#include "../mask/select.hpp"
#include "../predict/sanger_predictor.hpp"
#include "attention.hpp"
#include "detail/fused_select.hpp"
#include "detail/validate.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace deq {

/// The masks a pipeline built, returned through its optional last argument (so that a caller who also
/// wants the masks, e.g. for statistics or traces, need not run the predictor twice).
struct pipeline_masks {
    /// The kept entries (Sanger, three-level); empty for DEQ.
    bit_mask kept;
    /// The refined (high-precision) entries (DEQ, three-level: a subset of `kept`); empty for Sanger.
    bit_mask refined;
};

namespace detail {

/// Validates the operands and padding of a pipeline before any work (so errors name the caller's tensors).
/// The sizes come first: the predicted scores and masks [B, H, Lq, Lk] that the pipeline allocates
/// must be countable before the (linear-time) value checks run.
template <class T, class S>
void pipeline_precheck(tensor_view<T const, 4> const& q, tensor_view<T const, 4> const& k,
                       tensor_view<T const, 4> const& v, tensor_view<T, 4> const& out, key_padding const& padding) {
    attention_check_operands(q, k, v, out);
    checked_size("the predicted scores [B, H, Lq, Lk] of a pipeline", {q.extent(0), q.extent(1), q.extent(2), k.extent(2)});
    attention_options<S> options;
    options.padding = padding;
    options.check_finite = false;  // the predictor checks q and k, the attention step q, k and v
    attention_validate(q, k, v, out, options);
}

/// The masks a pipeline selects and the attention it runs on them, with the predictor fused into both:
/// q and k are quantized once; the masks are selected from tiles of Ŝ (fused_select); the attention of
/// a mixed-precision mode computes the Ŝ of unrefined entries from the same operands (flash path) or,
/// where that path does not run, from Ŝ materialised once. Masks, statistics and outputs equal those of
/// predict_scores + select_elements / make_precision_map + attention (tests/unit/attention).
/// @tparam Space Host execution space.
/// @tparam T     Element type.
/// @tparam Level Level storage of the predictor.
template <class Space, class T, class Level>
attention_stats pipeline_run(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k, tensor_view<T const, 4> v,
                             tensor_view<T, 4> out, predictor_config const& config, mask_rule const* prune,
                             mask_rule const* refine, attention_options<accum_t<T>> options, attention_call_info const& info,
                             pipeline_masks* masks) {
    using S = accum_t<T>;
    index_t const batch = q.extent(0), heads = q.extent(1), lq = q.extent(2), lk = k.extent(2);
    predictor_operands<S, Level> const ops = make_predictor_operands<Space, T, S, Level>(space, q, k, config);
    bit_mask kept, refined;
    if (prune != nullptr) {
        kept = bit_mask(batch, heads, lq, lk);
        fused_select(space, ops, options.padding, *prune, kept.view());
        options.kept = kept.view();
    }
    if (refine != nullptr) {
        refined = bit_mask(batch, heads, lq, lk);
        fused_select(space, ops, options.padding, *refine, refined.view());
        if (!kept.empty()) exec::parallel_for(space, batch * heads * lq, select_and_rows{refined.view(), kept.view()});
        options.refined = refined.view();
    }
    attention_stats st;
    if (refine == nullptr) {
        st = impl::attention_impl<Space>::run(space, q, k, v, out, options, info);
    } else {
        bool fuse_attention = false;
        if constexpr (std::is_same_v<S, float> && std::is_same_v<Level, std::int8_t>) {
            fuse_attention = impl::fused_attention<Space>::value && flash_available<S>();
            if (fuse_attention) st = attention_compute(space, q, k, v, out, options, &ops);
        }
        if (!fuse_attention) {
            tensor<S, 4> scores({batch, heads, lq, lk});
            index_t const blocks = lq / predictor_tile_rows + (lq % predictor_tile_rows != 0 ? 1 : 0);
            exec::parallel_for(space, batch * heads * blocks, predictor_scores_kernel<S, Level>{&ops, scores.view()});
            options.predicted = scores.cview();
            st = impl::attention_impl<Space>::run(space, q, k, v, out, options, info);
        }
    }
    if (masks != nullptr) {
        masks->kept = std::move(kept);
        masks->refined = std::move(refined);
    }
    return st;
}

/// pipeline_run() with the level storage of @p config's bit width.
template <class Space, class T>
attention_stats pipeline_dispatch(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                  tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                  mask_rule const* prune, mask_rule const* refine, attention_options<accum_t<T>> const& options,
                                  attention_call_info const& info, pipeline_masks* masks) {
    if (config.bits <= 8) return pipeline_run<Space, T, std::int8_t>(space, q, k, v, out, config, prune, refine, options, info, masks);
    return pipeline_run<Space, T, std::int16_t>(space, q, k, v, out, config, prune, refine, options, info, masks);
}

}  // namespace detail

/// Sanger's dynamic sparse attention: predicts the scores with the low-bit predictor, keeps the entries
/// whose predicted probability exceeds @p theta (`P̂ > θ`, padded keys at -10000 in P̂), and computes the
/// full-precision attention with -10000 on the pruned entries (algorithm.md §5.3).
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space      Execution space.
/// @param q          Queries [B, H, Lq, d].
/// @param k          Keys [B, H, Lk, d].
/// @param v          Values [B, H, Lk, dv].
/// @param out        Output [B, H, Lq, dv].
/// @param config     Predictor thresholds and bit width.
/// @param theta      Pruning threshold θ in [0, 1] (reference: 0.02, 0.002).
/// @param padding    Key padding [B, Lk] or none.
/// @param empty_rows Policy for rows whose every real key is pruned.
/// @param masks      If not null, receives the kept mask it built.
/// @return Statistics: `density` is Sanger's `overall-sparsity` (kept fraction of the valid pairs).
/// @throws As predict_scores(), mask_rule::probability() and attention().
template <exec::host_execution_space Space, attention_element T>
attention_stats sanger_attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                 tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                 double theta, key_padding padding = {},
                                 empty_row_policy empty_rows = empty_row_policy::reference, pipeline_masks* masks = nullptr) {
    return sanger_attention(space, q, k, v, out, config, mask_rule::probability(theta), padding, empty_rows, masks);
}

/// Sanger-style dynamic sparse attention with any pruning rule: the entries @p prune selects from the
/// predicted scores are kept (Sanger: `mask_rule::probability(θ)`), the others get -10000, and the
/// attention runs on the exact scores.
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space      Execution space.
/// @param q          Queries [B, H, Lq, d].
/// @param k          Keys [B, H, Lk, d].
/// @param v          Values [B, H, Lk, dv].
/// @param out        Output [B, H, Lq, dv].
/// @param config     Predictor thresholds and bit width.
/// @param prune      Rule selecting the kept entries (e.g. parse_mask_rule("topk:32")).
/// @param padding    Key padding [B, Lk] or none.
/// @param empty_rows Policy for rows whose every real key is pruned.
/// @param masks      If not null, receives the kept mask it built.
/// @return Statistics (density = kept fraction of the valid pairs).
/// @throws As predict_scores(), select_elements() and attention().
template <exec::host_execution_space Space, attention_element T>
attention_stats sanger_attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                 tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                 mask_rule const& prune, key_padding padding = {},
                                 empty_row_policy empty_rows = empty_row_policy::reference, pipeline_masks* masks = nullptr) {
    using S = accum_t<T>;
    detail::pipeline_precheck<T, S>(q, k, v, out, padding);
    prune.validate();
    config.validate();
    attention_options<S> options;
    options.padding = padding;
    options.empty_rows = empty_rows;
    return detail::pipeline_dispatch(space, q, k, v, out, config, &prune, nullptr, options, attention_call_info{"sanger", config.bits},
                                     masks);
}

/// DEQ's element-wise mixed-precision attention: predicts the scores, selects the refined entries with
/// @p refine (e.g. `mask_rule::adaptive_maximum(0.8, max_granularity::sequence)`, the `adamax_nb80`
/// default), and computes attention with the exact score on refined entries and the predicted score
/// elsewhere; nothing is pruned (algorithm.md §5.4).
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space   Execution space.
/// @param q       Queries [B, H, Lq, d].
/// @param k       Keys [B, H, Lk, d].
/// @param v       Values [B, H, Lk, dv].
/// @param out     Output [B, H, Lq, dv].
/// @param config  Predictor thresholds and bit width.
/// @param refine  Refinement rule.
/// @param padding Key padding [B, Lk] or none.
/// @param masks   If not null, receives the refined mask it built.
/// @return Statistics: `refinement_ratio` is DEQ's logged refinement ratio.
/// @throws As predict_scores(), select_elements() and attention().
template <exec::host_execution_space Space, attention_element T>
attention_stats deq_attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                              tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                              mask_rule const& refine, key_padding padding = {}, pipeline_masks* masks = nullptr) {
    using S = accum_t<T>;
    detail::pipeline_precheck<T, S>(q, k, v, out, padding);
    refine.validate();
    config.validate();
    attention_options<S> options;
    options.padding = padding;
    return detail::pipeline_dispatch(space, q, k, v, out, config, nullptr, &refine, options, attention_call_info{"deq", config.bits},
                                     masks);
}

/// Three-level element-wise attention: predicts the scores, prunes with @p prune, refines the kept
/// entries selected by @p refine (`refined = refine ∧ kept`), and computes attention with exact scores on
/// refined entries, predicted scores on kept unrefined entries and -10000 added on pruned entries.
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space      Execution space.
/// @param q          Queries [B, H, Lq, d].
/// @param k          Keys [B, H, Lk, d].
/// @param v          Values [B, H, Lk, dv].
/// @param out        Output [B, H, Lq, dv].
/// @param config     Predictor thresholds and bit width.
/// @param prune      Rule selecting the kept entries.
/// @param refine     Rule selecting the refined entries among the kept ones.
/// @param padding    Key padding [B, Lk] or none.
/// @param empty_rows Policy for rows whose every real key is pruned.
/// @param masks      If not null, receives the kept and refined masks it built.
/// @return Statistics (density = kept fraction, refinement_ratio = high-precision fraction).
/// @throws As predict_scores(), make_precision_map() and attention().
template <exec::host_execution_space Space, attention_element T>
attention_stats three_level_attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                      tensor_view<T const, 4> v, tensor_view<T, 4> out,
                                      predictor_config const& config, mask_rule const& prune,
                                      mask_rule const& refine, key_padding padding = {},
                                      empty_row_policy empty_rows = empty_row_policy::reference, pipeline_masks* masks = nullptr) {
    using S = accum_t<T>;
    detail::pipeline_precheck<T, S>(q, k, v, out, padding);
    prune.validate();
    refine.validate();
    config.validate();
    attention_options<S> options;
    options.padding = padding;
    options.empty_rows = empty_rows;
    return detail::pipeline_dispatch(space, q, k, v, out, config, &prune, &refine, options,
                                     attention_call_info{"three_level", config.bits}, masks);
}

/// Static block-sparse attention: exact scores with -10000 on the entries outside @p pattern (e.g. a
/// Longformer or Fixed mask from make_static_mask(), [1, 1, L, L] broadcast over batch and heads).
/// @tparam Space A host execution space.
/// @tparam T     Element type.
/// @param space      Execution space.
/// @param q          Queries [B, H, Lq, d].
/// @param k          Keys [B, H, Lk, d].
/// @param v          Values [B, H, Lk, dv].
/// @param out        Output [B, H, Lq, dv].
/// @param pattern    Kept entries, [B or 1, H or 1, Lq, Lk].
/// @param padding    Key padding [B, Lk] or none.
/// @param empty_rows Policy for rows with no kept real key.
/// @return Statistics (density = the pattern's kept fraction of the valid pairs).
/// @throws As attention(); deq::invalid_argument for an empty @p pattern.
template <exec::host_execution_space Space, attention_element T>
attention_stats static_sparse_attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                        tensor_view<T const, 4> v, tensor_view<T, 4> out,
                                        const_bit_mask_view pattern, key_padding padding = {},
                                        empty_row_policy empty_rows = empty_row_policy::reference) {
    if (pattern.empty()) detail::throw_invalid_argument("pattern", "<empty>", "must be a mask (use attention() for dense)");
    attention_options<accum_t<T>> options;
    options.padding = padding;
    options.kept = pattern;
    options.empty_rows = empty_rows;
    return impl::attention_impl<Space>::run(space, q, k, v, out, options, attention_call_info{"static_sparse", 0});
}

}  // namespace deq
