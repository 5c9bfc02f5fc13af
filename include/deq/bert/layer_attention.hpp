/// @file
/// @brief `deq::bert::run_layer_attention`: one encoder layer's attention in its mode, on any execution
/// space that has the attention calls (the host spaces, deq::exec::cuda with deq/attention/cuda/).
#pragma once

#include <functional>

#include "../attention/options.hpp"
#include "../attention/pipelines.hpp"
#include "../attention/stats.hpp"
#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../predict/sanger_predictor.hpp"
#include "attention_mode.hpp"

namespace deq::bert {

/// One layer's attention, handed to forward_options::layer_attention: the layer's projected q, k, v and
/// its output (host views, [B, heads, L, d], valid during the call), the mode and what it needs.
struct layer_attention_call {
    index_t layer = 0;                                          ///< Layer index.
    tensor_view<float const, 4> q{};                            ///< Queries.
    tensor_view<float const, 4> k{};                            ///< Keys.
    tensor_view<float const, 4> v{};                            ///< Values.
    tensor_view<float, 4> out{};                                ///< Output (the context layer, written by the runner).
    key_padding padding{};                                      ///< Key padding of the batch.
    attention_mode const* mode = nullptr;                       ///< The attention mode.
    predictor_config const* config = nullptr;                   ///< The layer's predictor thresholds (predictor modes), else null.
    const_bit_mask_view static_mask{};                          ///< The static pattern (static_mask mode), else empty.
    empty_row_policy empty_rows = empty_row_policy::reference;  ///< Policy for rows with no kept real key.
    pipeline_masks* masks = nullptr;                            ///< Receives the masks the mode built (host bit masks).
};

/// Runs one layer's attention in place of the host pipelines (e.g. deq::bert::cuda_layer_attention(),
/// on a GPU) and returns its statistics; it must give the host's semantics.
using layer_attention_runner = std::function<attention_stats(layer_attention_call const& call)>;

/// One layer's attention in @p mode on @p space: attention(), static_sparse_attention(),
/// sanger_attention(), deq_attention() or three_level_attention() (found by argument-dependent lookup,
/// so the device overloads of deq/attention/cuda/ serve a CUDA space).
/// @tparam Space Execution space.
/// @tparam T     Element type.
/// @param space       Execution space.
/// @param mode        The mode.
/// @param q           Queries [B, H, L, d] (memory of @p space).
/// @param k           Keys.
/// @param v           Values.
/// @param out         Output.
/// @param padding     Key padding (memory of @p space) or none.
/// @param static_mask The static pattern (static_mask mode; memory of @p space).
/// @param config      The predictor thresholds (predictor modes), else null.
/// @param empty_rows  Policy for rows with no kept real key.
/// @param masks       Receives the masks the mode built, or null.
/// @return The statistics.
/// @throws deq::invalid_argument when a predictor mode has no @p config or a static mode no pattern;
///         what the mode's call throws.
template <class Space, class T>
attention_stats run_layer_attention(Space const& space, attention_mode const& mode, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                    tensor_view<T const, 4> v, tensor_view<T, 4> out, key_padding padding,
                                    const_bit_mask_view static_mask, predictor_config const* config, empty_row_policy empty_rows,
                                    pipeline_masks* masks) {
    if (mode.needs_predictor() && config == nullptr) detail::throw_invalid_argument("config", "<null>", "is required by a predictor mode");
    switch (mode.type) {
        case attention_mode::kind::dense: {
            attention_options<accum_t<T>> dense;
            dense.padding = padding;
            dense.empty_rows = empty_rows;
            return attention(space, q, k, v, out, dense);
        }
        case attention_mode::kind::static_mask:
            return static_sparse_attention(space, q, k, v, out, static_mask, padding, empty_rows);
        case attention_mode::kind::sanger:
            return sanger_attention(space, q, k, v, out, *config, mode.prune, padding, empty_rows, masks);
        case attention_mode::kind::deq:
            return deq_attention(space, q, k, v, out, *config, mode.refine, padding, masks);
        case attention_mode::kind::three_level:
            return three_level_attention(space, q, k, v, out, *config, mode.prune, mode.refine, padding, empty_rows, masks);
    }
    detail::throw_invalid_argument("mode", static_cast<int>(mode.type), "is not an attention mode");
}

}  // namespace deq::bert
