/// @file
/// @brief `deq::bert::bert_model`: the BERT encoder (embeddings, self-attention through deq in any
/// deq::bert::attention_mode, feed-forward) with Hugging Face `BertModel` semantics.
///
/// Forward pass, for hidden states X [B·L, H] (row-major, one row per token):
///
///     X = LayerNorm(word[ids] + token_type[types] + position[0..L))                      (embeddings)
///     per layer:
///       Q, K, V = X·Wqᵀ + bq, X·Wkᵀ + bk, X·Wvᵀ + bv          (one linear_concat; heads split as [B, H, L, d] views)
///       C = attention(Q, K, V) in the selected mode, padded keys at -10000 (deq::attention and the
///           pipelines of deq/attention/pipelines.hpp: the library's fused kernels in every mode)
///       X1 = LayerNorm(C·Woᵀ + bo + X)
///       X = LayerNorm(GELU(X1·Wiᵀ + bi)·Wo2ᵀ + bo2 + X1)      (erf GELU, erf within 2e-7: deq::erf_vectorizable)
///
/// Attention modes (deq::bert::attention_mode): dense; a static pattern (built once per forward for the
/// batch length from the pattern's `max_position` layout, [1, 1, L, L], shared by all heads and layers as in
/// the reference); Sanger (predict Ŝ with the per-layer 4-bit predictor, keep `P̂ > θ`); DEQ (refine the
/// entries selected by the rule, predicted scores elsewhere); three-level. Predictor modes need per-layer
/// quantizer thresholds: from the checkpoint (`...quant_matmul.input_{x,y}_thresh`), set_thresholds(), or
/// deq::bert::calibrate (deq/bert/calibration.hpp).
///
/// Precision: activations and all arithmetic are float by default; `forward<double>` runs the same pass in
/// double (the weights, float32 in the checkpoint, are widened exactly; `cblas_dgemm`, std::erf), which is
/// what PyTorch's `model.double()` computes. Predictor modes are discontinuous (a 4-bit level or a kept
/// entry flips when a value crosses a rounding boundary), so two float32 implementations that differ in
/// the last bits of a projection can differ in a few mask entries; in double such flips become rare, which
/// makes the double pass the tool for checking the semantics of a mode against another implementation.
///
/// Element-wise work (embeddings, LayerNorm, GELU) and attention run on the given execution space; the
/// linear layers are split by output columns or rows across the execution space (deq::bert::linear and
/// linear_concat with a space), each part single-threaded `sgemm` calls: set the BLAS library to one thread
/// (deq::bert::set_blas_threads(1)).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../attention/attention.hpp"
#include "../attention/pipelines.hpp"
#include "../attention/options.hpp"
#include "../core/accumulator.hpp"
#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../mask/precision_map.hpp"
#include "../mask/select.hpp"
#include "../mask/static_pattern.hpp"
#include "../predict/sanger_predictor.hpp"
#include "attention_mode.hpp"
#include "blas.hpp"
#include "config.hpp"
#include "detail/kernels.hpp"
#include "inputs.hpp"
#include "layer_attention.hpp"
#include "model_sources.hpp"
#include "statistics.hpp"
#include "thresholds.hpp"
#include "weights.hpp"

namespace deq::bert {

/// Called by forward() for every layer with the layer index and the layer's projected queries and keys
/// ([B, heads, L, d] views, valid during the call), before attention (used by calibration and traces).
/// A double forward pass hands over float copies (rounded to nearest).
using qk_observer = std::function<void(index_t layer, tensor_view<float const, 4> q, tensor_view<float const, 4> k)>;

/// Options of bert_model::forward.
struct forward_options {
    /// Also return the hidden states after the embeddings and after every layer (transformers'
    /// `output_hidden_states=True`: num_hidden_layers + 1 tensors).
    bool output_hidden_states = false;
    /// Also return every layer's kept and refined masks (the trace of the mode).
    bool keep_masks = false;
    /// Policy for query rows whose every real key is pruned (deq::empty_row_policy).
    empty_row_policy empty_rows = empty_row_policy::reference;
    /// Optional per-layer observer of the projected queries and keys.
    qk_observer on_qk{};
    /// Optional runner of every layer's attention (float activations only), e.g. on a GPU; the rest
    /// of the encoder runs on forward()'s execution space.
    layer_attention_runner layer_attention{};
};

/// The masks one layer's attention used (forward_options::keep_masks).
struct layer_masks {
    /// Kept entries ([B or 1, heads or 1, L, L]); empty for dense and DEQ attention (everything kept).
    bit_mask kept;
    /// Refined (full-precision) entries ([B, heads, L, L]); empty when every kept entry is exact.
    bit_mask refined;
};

/// Result of bert_model::forward.
/// @tparam T Activation type (float or double).
template <activation T>
struct basic_forward_output {
    /// Output of the last layer, [B, L, hidden] (transformers' `last_hidden_state`).
    tensor<T, 3> last_hidden_state;
    /// With forward_options::output_hidden_states: the embeddings output and every layer's output.
    std::vector<tensor<T, 3>> hidden_states;
    /// Attention statistics of every layer.
    std::vector<layer_attention_stats> layers;
    /// With forward_options::keep_masks: every layer's masks.
    std::vector<layer_masks> masks;

    /// The layers' statistics aggregated (mean over layers, see deq/bert/statistics.hpp).
    /// @return The summary of this forward pass.
    attention_summary summary() const {
        attention_summary s;
        for (auto const& l : layers) s.add(l);
        return s;
    }
};

/// Result of the float forward pass (bert_model::forward without a type argument).
using forward_output = basic_forward_output<float>;

/// A BERT encoder with its weights and (optional) predictor thresholds.
class bert_model {
public:
    /// A model from a configuration and matching weights (shapes validated). Thresholds found in the
    /// weights (a fine-tuned checkpoint) become the model's predictor thresholds.
    /// @param config  The configuration.
    /// @param weights The weights.
    /// @param origin  Provenance of the weights, used in threshold reports and error messages.
    /// @throws deq::invalid_argument / deq::shape_error for an invalid configuration or weight shapes.
    bert_model(bert_config config, bert_weights weights, std::string origin = "weights")
        : config_(std::move(config)), weights_(std::move(weights)) {
        weights_.validate(config_);
        if (weights_.has_thresholds()) thresholds_ = predictor_thresholds::from_weights(weights_, "checkpoint " + origin);
        sources_.weights = std::move(origin);
    }

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors`.
    /// @param dir     The model folder.
    /// @param options Whether to check the weights for NaN and infinity.
    /// @return The model (sources() names both files); deq::format_error naming the file (and field or
    ///         tensor) when something is missing or malformed, deq::numeric_error naming the file, tensor
    ///         and index of a non-finite weight.
    static bert_model load(std::filesystem::path const& dir, weight_load_options const& options = {}) {
        std::filesystem::path const config_file = dir / "config.json";
        bert_config config = bert_config::load(config_file);
        std::filesystem::path const file = dir / "model.safetensors";
        bert_weights weights = bert_weights::load(file, config, options);
        bert_model model(std::move(config), std::move(weights), file.string());
        model.sources_.config = config_file.string();
        return model;
    }

    /// @return The files the model was read from (and the vocabulary checked against it).
    model_sources const& sources() const noexcept { return sources_; }
    /// Replaces the recorded file names (e.g. for parts assembled in code; deq::bert::check_vocabulary
    /// records the vocabulary).
    /// @param sources The file names.
    void set_sources(model_sources sources) { sources_ = std::move(sources); }

    /// @return The configuration.
    bert_config const& config() const noexcept { return config_; }
    /// @return The weights.
    bert_weights const& weights() const noexcept { return weights_; }
    /// @return The predictor thresholds, when known.
    std::optional<predictor_thresholds> const& thresholds() const noexcept { return thresholds_; }
    /// Sets the predictor thresholds (e.g. from calibrate() or predictor_thresholds::load()).
    /// @param t Thresholds for every layer (validated against the number of layers).
    void set_thresholds(predictor_thresholds t) {
        t.validate(config_.num_hidden_layers);
        thresholds_ = std::move(t);
    }

    /// Runs the encoder on one batch.
    /// @tparam T     Activation type: float (default) or double (reference precision, see the file
    ///               documentation).
    /// @tparam Space A host execution space (element-wise kernels and attention).
    /// @param space   Execution space.
    /// @param input   The batch (validated against the configuration).
    /// @param mode    Attention mode.
    /// @param options Hidden states, masks, empty-row policy, observer.
    /// @return The last hidden state, the per-layer statistics and what @p options asked for.
    /// @throws deq::invalid_argument for a bad batch (a token id out of range names the vocabulary
    ///         recorded in sources()) or a predictor mode without thresholds; deq::shape_error for
    ///         inconsistent input tensors; deq::numeric_error for non-finite activations.
    template <activation T = float, exec::host_execution_space Space>
    basic_forward_output<T> forward(Space const& space, model_input const& input, attention_mode const& mode,
                                    forward_options const& options = {}) const {
        input.validate(config_, sources_.vocabulary);
        if (options.layer_attention && !std::is_same_v<T, float>) {
            detail::throw_invalid_argument("layer_attention", "<runner>", "needs float activations (a double forward pass runs on the host)");
        }
        if (mode.needs_predictor() && !thresholds_) {
            detail::throw_invalid_argument("thresholds", "<none>",
                                           detail::concat("attention mode \"", mode.spec(),
                                                          "\" needs the predictor's quantizer thresholds: load a checkpoint that "
                                                          "has them, call set_thresholds() or calibrate()"));
        }
        index_t const batch = input.batch(), length = input.length(), rows = batch * length;
        index_t const hidden = config_.hidden_size, heads = config_.num_attention_heads, dim = config_.head_dim();
        index_t const inter = config_.intermediate_size;
        double const eps = config_.layer_norm_eps;
        key_padding const padding = input.padding();

        std::vector<T> x(static_cast<std::size_t>(rows * hidden)), x1(x.size()), tmp(x.size()), ctx(x.size());
        std::vector<T> qkv(static_cast<std::size_t>(rows * 3 * hidden)), mid(static_cast<std::size_t>(rows * inter));

        basic_forward_output<T> result;
        exec::parallel_for(space, rows,
                           detail::bert_embedding_kernel<T>{input.input_ids.data(), input.token_type_ids.data(),
                                                            weights_.embeddings.word.data(), weights_.embeddings.position.data(),
                                                            weights_.embeddings.token_type.data(),
                                                            weights_.embeddings.norm.weight.data(),
                                                            weights_.embeddings.norm.bias.data(), x.data(), length, hidden, eps});
        if (options.output_hidden_states) result.hidden_states.push_back(to_tensor(x, batch, length, hidden));

        bit_mask static_mask;
        if (mode.type == attention_mode::kind::static_mask) static_mask = make_static_mask(space, mode.pattern, length, 1);

        // Packed real-key bits of every sequence, for counting rows without a selected key.
        index_t const words = (length + mask_word_bits - 1) / mask_word_bits;
        std::vector<std::uint64_t> valid_words(static_cast<std::size_t>(batch * words), 0);
        for (index_t b = 0; b < batch; ++b)
            for (index_t j = 0; j < length; ++j)
                if (padding.is_valid(b, j)) valid_words[static_cast<std::size_t>(b * words + j / mask_word_bits)] |= std::uint64_t{1} << (j % mask_word_bits);
        std::vector<std::uint8_t> empty_flags(static_cast<std::size_t>(batch * heads * length));

        auto rows_view = [&](std::vector<T>& buf, index_t width) { return tensor_view<T, 2>(buf.data(), {rows, width}); };
        auto crows_view = [&](std::vector<T> const& buf, index_t width) { return tensor_view<T const, 2>(buf.data(), {rows, width}); };

        for (index_t n = 0; n < config_.num_hidden_layers; ++n) {
            layer_weights const& lw = weights_.layers[static_cast<std::size_t>(n)];
            linear_concat<Space, 3>(space, crows_view(x, hidden), {lw.query.weight.view(), lw.key.weight.view(), lw.value.weight.view()},
                                    {lw.query.bias.view(), lw.key.bias.view(), lw.value.bias.view()}, rows_view(qkv, 3 * hidden));
            std::initializer_list<index_t> const ext = {batch, heads, length, dim};
            tensor_view<T const, 4> q(qkv.data(), ext, {length * 3 * hidden, dim, 3 * hidden, 1});
            tensor_view<T const, 4> k(qkv.data() + hidden, ext, {length * 3 * hidden, dim, 3 * hidden, 1});
            tensor_view<T const, 4> v(qkv.data() + 2 * hidden, ext, {length * 3 * hidden, dim, 3 * hidden, 1});
            tensor_view<T, 4> o(ctx.data(), ext, {length * hidden, dim, hidden, 1});
            if (options.on_qk) {
                if constexpr (std::is_same_v<T, float>) {
                    options.on_qk(n, q, k);
                } else {
                    tensor<float, 4> const qf = narrow_to_float(q), kf = narrow_to_float(k);
                    options.on_qk(n, qf.cview(), kf.cview());
                }
            }

            // Every mode through the library's pipelines (fused predictor, flash kernels); the masks they
            // built come back through pipeline_masks.
            layer_masks masks;
            layer_attention_stats ls;
            pipeline_masks built;
            std::optional<predictor_config> layer_config;
            if (mode.needs_predictor()) layer_config = thresholds_->config(n);
            predictor_config const* const config = layer_config ? &*layer_config : nullptr;
            const_bit_mask_view const pattern = static_mask.empty() ? const_bit_mask_view{} : static_mask.view();
            if constexpr (std::is_same_v<T, float>) {
                if (options.layer_attention) {
                    layer_attention_call call;
                    call.layer = n;
                    call.q = q;
                    call.k = k;
                    call.v = v;
                    call.out = o;
                    call.padding = padding;
                    call.mode = &mode;
                    call.config = config;
                    call.static_mask = pattern;
                    call.empty_rows = options.empty_rows;
                    call.masks = &built;
                    ls.stats = options.layer_attention(call);
                }
            }
            if (!options.layer_attention) {
                ls.stats = run_layer_attention(space, mode, q, k, v, o, padding, pattern, config, options.empty_rows, &built);
            }
            masks.kept = std::move(built.kept);
            masks.refined = std::move(built.refined);
            if (!masks.refined.empty()) {
                exec::parallel_for(space, batch * heads * length,
                                   detail::bert_empty_row_kernel{masks.refined.view(), valid_words.data(), padding, empty_flags.data(), heads, length});
                for (std::uint8_t f : empty_flags) ls.unrefined_rows += f;
            } else {
                ls.unrefined_rows = ls.stats.empty_rows;
            }
            result.layers.push_back(ls);
            if (options.keep_masks) {
                if (mode.type == attention_mode::kind::static_mask) masks.kept = static_mask;
                result.masks.push_back(std::move(masks));
            }

            linear(space, crows_view(ctx, hidden), lw.attention_output.weight.view(), lw.attention_output.bias.view(), rows_view(tmp, hidden));
            exec::parallel_for(space, rows,
                               detail::bert_add_norm_kernel<T>{tmp.data(), x.data(), lw.attention_norm.weight.data(),
                                                               lw.attention_norm.bias.data(), x1.data(), hidden, eps});
            linear(space, crows_view(x1, hidden), lw.intermediate.weight.view(), lw.intermediate.bias.view(), rows_view(mid, inter));
            exec::parallel_for(space, rows, detail::bert_gelu_kernel<T>{mid.data(), inter});
            linear(space, crows_view(mid, inter), lw.output.weight.view(), lw.output.bias.view(), rows_view(tmp, hidden));
            exec::parallel_for(space, rows,
                               detail::bert_add_norm_kernel<T>{tmp.data(), x1.data(), lw.output_norm.weight.data(),
                                                               lw.output_norm.bias.data(), x.data(), hidden, eps});
            if (options.output_hidden_states) result.hidden_states.push_back(to_tensor(x, batch, length, hidden));
        }
        result.last_hidden_state = to_tensor(x, batch, length, hidden);
        return result;
    }

private:
    template <class T>
    static tensor<T, 3> to_tensor(std::vector<T> const& x, index_t batch, index_t length, index_t hidden) {
        tensor<T, 3> t({batch, length, hidden});
        std::copy(x.begin(), x.end(), t.data());
        return t;
    }

    static tensor<float, 4> narrow_to_float(tensor_view<double const, 4> x) {
        tensor<float, 4> t({x.extent(0), x.extent(1), x.extent(2), x.extent(3)});
        for (index_t a = 0; a < x.extent(0); ++a)
            for (index_t b = 0; b < x.extent(1); ++b)
                for (index_t c = 0; c < x.extent(2); ++c)
                    for (index_t d = 0; d < x.extent(3); ++d) t(a, b, c, d) = static_cast<float>(x(a, b, c, d));
        return t;
    }

    bert_config config_;
    bert_weights weights_;
    std::optional<predictor_thresholds> thresholds_;
    model_sources sources_;
};

}  // namespace deq::bert
