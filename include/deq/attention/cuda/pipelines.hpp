/// @file
/// @brief The attention pipelines on deq::exec::cuda: Sanger, DEQ, three-level and static sparse
/// attention on a GPU, with the host's masks and statistics.
///
/// Each pipeline is the composition the host pipelines are tested against (deq/attention/pipelines.hpp):
/// predict_scores() (deq/predict/cuda/predict_scores.hpp: the host's Ŝ bits), select_elements()
/// (deq/mask/cuda/select_elements.hpp: the host's mask bits), the refined mask intersected with the kept
/// one, then attention() (deq/attention/cuda/attention.hpp). The masks are therefore bit-identical to the
/// host's, and the outputs agree to rounding (1e-5 relative). Unlike the host pipelines, which select
/// from tiles of Ŝ, this first device version materialises Ŝ [B, H, Lq, Lk] in device memory for the call.
/// Float, float16 and bfloat16 inputs (scores in float: the device mask rules run on float scores).
#pragma once

#if !defined(__CUDACC__)
#error "deq/attention/cuda/pipelines.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cstdint>
#include <optional>
#include <type_traits>
#include <span>
#include <utility>

#include "../../core/bit_mask.hpp"
#include "../../core/checked_size.hpp"
#include "../../core/error.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../cuda/device_array.hpp"
#include "../../cuda/device_scope.hpp"
#include "../../exec/cuda.hpp"
#include "../../mask/cuda/select_elements.hpp"
#include "../../mask/mask_rule.hpp"
#include "../../mask/select.hpp"
#include "../../numeric/bfloat16.hpp"
#include "../../numeric/float16.hpp"
#include "../../predict/cuda/predict_scores.hpp"
#include "../../predict/sanger_predictor.hpp"
#include "../options.hpp"
#include "../pipelines.hpp"
#include "../stats.hpp"
#include "attention.hpp"

namespace deq {

namespace detail {

/// A device mask [B, H, Lq, Lk]: its words in device memory and a view of them.
struct cuda_mask {
    cuda::device_array<std::uint64_t> words;  ///< The words (zeroed by the selection that fills them).
    bit_mask_view view;                       ///< A view of them.

    /// Allocates the words of a [batch, heads, rows, cols] mask on the space's device.
    cuda_mask(exec::cuda const& space, index_t batch, index_t heads, index_t rows, index_t cols)
        : words(checked_size("mask words", {batch, heads, rows, mask_words_per_row(cols)}), space.device()),
          view(words.device_data(), batch, heads, rows, cols) {}

    /// A host copy.
    /// @param stream The stream of the copy.
    /// @return The mask.
    bit_mask to_host(cudaStream_t stream) const {
        bit_mask m(view.batch(), view.heads(), view.rows(), view.cols());
        cuda::copy_to_host(words, std::span<std::uint64_t>(m.view().words(), m.words().size()), stream);
        return m;
    }
};

/// The device pipeline: Ŝ, the masks, then attention (arguments validated by the caller).
/// @tparam T A cuda_pipeline_element.
/// @param space   The CUDA space.
/// @param q       Queries, device memory.
/// @param k       Keys, device memory.
/// @param v       Values, device memory.
/// @param out     Output, device memory.
/// @param config  Predictor configuration (validated).
/// @param prune   Pruning rule or null.
/// @param refine  Refinement rule or null.
/// @param options Padding and empty-row policy.
/// @param masks   If not null, receives host copies of the masks.
/// @return The statistics.
template <class T>
attention_stats cuda_pipeline_run(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k, tensor_view<T const, 4> v,
                                  tensor_view<T, 4> out, predictor_config const& config, mask_rule const* prune, mask_rule const* refine,
                                  attention_options<float> options, pipeline_masks* masks) {
    index_t const batch = q.extent(0), heads = q.extent(1), lq = q.extent(2), lk = k.extent(2);
    ::deq::cuda::device_scope const scope(space.device());
    cuda::device_array<float> scores(checked_size("the predicted scores [B, H, Lq, Lk] of a pipeline", {batch, heads, lq, lk}),
                                     space.device());
    tensor_view<float, 4> const s(scores.device_data(), {batch, heads, lq, lk});
    predict_scores(space, q, k, config, s);
    tensor_view<float const, 4> const cs(s);
    std::optional<cuda_mask> kept, refined;
    if (prune != nullptr) {
        kept.emplace(space, batch, heads, lq, lk);
        select_elements(space, cs, options.padding, *prune, kept->view);
        options.kept = kept->view;
    }
    if (refine != nullptr) {
        refined.emplace(space, batch, heads, lq, lk);
        select_elements(space, cs, options.padding, *refine, refined->view);
        if (kept) exec::parallel_for(space, batch * heads * lq, select_and_rows{refined->view, kept->view});
        options.refined = refined->view;
        options.predicted = cs;
    }
    attention_stats const st = attention(space, q, k, v, out, options);
    if (masks != nullptr) {
        masks->kept = kept ? kept->to_host(space.stream()) : bit_mask{};
        masks->refined = refined ? refined->to_host(space.stream()) : bit_mask{};
    }
    return st;
}

}  // namespace detail

/// Element types of the pipelines on a GPU: float, float16 and bfloat16 (scores in float).
/// @tparam T Candidate element type.
template <class T>
concept cuda_pipeline_element = std::is_same_v<T, float> || std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

/// sanger_attention() on a GPU with any pruning rule (see the host version).
/// @tparam T Element type (a cuda_pipeline_element).
/// @param space      The CUDA space.
/// @param q          Queries, device memory.
/// @param k          Keys, device memory.
/// @param v          Values, device memory.
/// @param out        Output, device memory.
/// @param config     Predictor thresholds and bit width.
/// @param prune      Rule selecting the kept entries.
/// @param padding    Key padding (device memory) or none.
/// @param empty_rows Policy for rows whose every real key is pruned.
/// @param masks      If not null, receives a host copy of the kept mask.
/// @return The statistics.
/// @throws As the host version; deq::invalid_argument for host memory; deq::cuda_error when the device fails.
template <cuda_pipeline_element T>
attention_stats sanger_attention(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                 tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                        mask_rule const& prune, key_padding padding = {},
                                        empty_row_policy empty_rows = empty_row_policy::reference, pipeline_masks* masks = nullptr) {
    detail::pipeline_precheck<T, float>(q, k, v, out, padding);
    prune.validate();
    config.validate();
    attention_options<float> options;
    options.padding = padding;
    options.empty_rows = empty_rows;
    return detail::cuda_pipeline_run(space, q, k, v, out, config, &prune, nullptr, options, masks);
}

/// sanger_attention() on a GPU with the probability rule `P̂ > θ` (see the host version).
/// @tparam T Element type (a cuda_pipeline_element).
/// @param space      The CUDA space.
/// @param q          Queries [B, H, Lq, d], device memory.
/// @param k          Keys [B, H, Lk, d], device memory.
/// @param v          Values [B, H, Lk, dv], device memory.
/// @param out        Output [B, H, Lq, dv], device memory.
/// @param config     Predictor thresholds and bit width.
/// @param theta      Pruning threshold θ in [0, 1].
/// @param padding    Key padding [B, Lk] (device memory) or none.
/// @param empty_rows Policy for rows whose every real key is pruned.
/// @param masks      If not null, receives a host copy of the kept mask.
/// @return The statistics.
/// @throws As the host version; deq::invalid_argument for host memory; deq::cuda_error when the device fails.
template <cuda_pipeline_element T>
attention_stats sanger_attention(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                 tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                        double theta, key_padding padding = {},
                                        empty_row_policy empty_rows = empty_row_policy::reference, pipeline_masks* masks = nullptr) {
    return sanger_attention(space, q, k, v, out, config, mask_rule::probability(theta), padding, empty_rows, masks);
}

/// deq_attention() on a GPU: DEQ's element-wise mixed precision (see the host version).
/// @tparam T Element type (a cuda_pipeline_element).
/// @param space   The CUDA space.
/// @param q       Queries, device memory.
/// @param k       Keys, device memory.
/// @param v       Values, device memory.
/// @param out     Output, device memory.
/// @param config  Predictor thresholds and bit width.
/// @param refine  Refinement rule (e.g. the `adamax_nb80` default).
/// @param padding Key padding (device memory) or none.
/// @param masks   If not null, receives a host copy of the refined mask.
/// @return The statistics.
/// @throws As the host version; deq::invalid_argument for host memory; deq::cuda_error when the device fails.
template <cuda_pipeline_element T>
attention_stats deq_attention(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                     tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                     mask_rule const& refine, key_padding padding = {}, pipeline_masks* masks = nullptr) {
    detail::pipeline_precheck<T, float>(q, k, v, out, padding);
    refine.validate();
    config.validate();
    attention_options<float> options;
    options.padding = padding;
    return detail::cuda_pipeline_run(space, q, k, v, out, config, nullptr, &refine, options, masks);
}

/// three_level_attention() on a GPU (see the host version).
/// @tparam T Element type (a cuda_pipeline_element).
/// @param space      The CUDA space.
/// @param q          Queries, device memory.
/// @param k          Keys, device memory.
/// @param v          Values, device memory.
/// @param out        Output, device memory.
/// @param config     Predictor thresholds and bit width.
/// @param prune      Rule selecting the kept entries.
/// @param refine     Rule selecting the refined entries among the kept ones.
/// @param padding    Key padding (device memory) or none.
/// @param empty_rows Policy for rows whose every real key is pruned.
/// @param masks      If not null, receives host copies of the kept and refined masks.
/// @return The statistics.
/// @throws As the host version; deq::invalid_argument for host memory; deq::cuda_error when the device fails.
template <cuda_pipeline_element T>
attention_stats three_level_attention(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                             tensor_view<T const, 4> v, tensor_view<T, 4> out, predictor_config const& config,
                                             mask_rule const& prune, mask_rule const& refine, key_padding padding = {},
                                             empty_row_policy empty_rows = empty_row_policy::reference, pipeline_masks* masks = nullptr) {
    detail::pipeline_precheck<T, float>(q, k, v, out, padding);
    prune.validate();
    refine.validate();
    config.validate();
    attention_options<float> options;
    options.padding = padding;
    options.empty_rows = empty_rows;
    return detail::cuda_pipeline_run(space, q, k, v, out, config, &prune, &refine, options, masks);
}

/// static_sparse_attention() on a GPU: exact scores with -10000 outside @p pattern (see the host version).
/// @tparam T Element type (a cuda_pipeline_element).
/// @param space      The CUDA space.
/// @param q          Queries, device memory.
/// @param k          Keys, device memory.
/// @param v          Values, device memory.
/// @param out        Output, device memory.
/// @param pattern    Kept entries [B or 1, H or 1, Lq, Lk]; its words are device memory.
/// @param padding    Key padding (device memory) or none.
/// @param empty_rows Policy for rows with no kept real key.
/// @return The statistics.
/// @throws As the host version; deq::invalid_argument for host memory; deq::cuda_error when the device fails.
template <cuda_pipeline_element T>
attention_stats static_sparse_attention(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                               tensor_view<T const, 4> v, tensor_view<T, 4> out, const_bit_mask_view pattern,
                                               key_padding padding = {}, empty_row_policy empty_rows = empty_row_policy::reference) {
    if (pattern.empty()) detail::throw_invalid_argument("pattern", "<empty>", "must be a mask (use attention() for dense)");
    attention_options<float> options;
    options.padding = padding;
    options.kept = pattern;
    options.empty_rows = empty_rows;
    return attention(space, q, k, v, out, options);
}

}  // namespace deq
