/// @file
/// @brief Task heads on top of the encoder, loaded by their Hugging Face names: sequence classification
/// and regression (`BertForSequenceClassification`), span extraction (`BertForQuestionAnswering`) and
/// masked language modelling (`BertForMaskedLM`).
///
/// | head | tensors | computes |
/// |---|---|---|
/// | classification_head | `classifier.{weight,bias}` [labels, H] | `pooler(h)·Wᵀ + b` (1 label = regression, e.g. STS-B) |
/// | span_head | `qa_outputs.{weight,bias}` [2, H] | start / end logits `h·Wᵀ + b` per token |
/// | mlm_head | `cls.predictions.transform.dense.*`, `cls.predictions.transform.LayerNorm.*`, `cls.predictions.decoder.weight` (or the tied word embeddings when absent), `cls.predictions.bias` (or `cls.predictions.decoder.bias`) | `LN(GELU(h·Wtᵀ + bt))·Eᵀ + b` |
///
/// Errors are deq::format_error naming the file and tensor (missing tensor, wrong shape or dtype), and
/// deq::numeric_error naming the file, tensor and index of a NaN or infinity (unless
/// deq::bert::weight_load_options::check_finite is false).
#pragma once

#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../io/safetensors.hpp"
#include "blas.hpp"
#include "config.hpp"
#include "detail/kernels.hpp"
#include "pooling.hpp"
#include "weights.hpp"

namespace deq::bert {

/// Sequence classification / regression head (`classifier` on the pooled output).
struct classification_head {
    /// `classifier`, [num_labels, hidden].
    linear_weights classifier;

    /// @return The number of outputs (1 for regression).
    index_t num_labels() const noexcept { return classifier.out_features(); }

    /// Loads `classifier.weight` / `classifier.bias` (any number of labels).
    /// @param file    The checkpoint.
    /// @param config  The model configuration (hidden size).
    /// @param options Whether to check the values for NaN and infinity.
    /// @return The head; deq::format_error naming the file and tensor when missing or malformed,
    ///         deq::numeric_error naming the file, tensor and index of a non-finite value.
    static classification_head load(io::safetensors_file const& file, bert_config const& config, weight_load_options const& options = {}) {
        index_t const labels = file.info("classifier.weight").shape.empty() ? 0 : file.info("classifier.weight").shape[0];
        if (labels < 1) throw format_error(detail::concat("deq: ", file.source(), ": tensor 'classifier.weight' has no output rows"));
        return {detail::bert_read_linear(file, "classifier", labels, config.hidden_size, options)};
    }

    /// Logits from the pooled output.
    /// @tparam T Activation type (float or double).
    /// @param pooled Pooled output ([B, hidden], see pooler_output()).
    /// @return The logits, [B, num_labels].
    template <activation T>
    tensor<T, 2> logits(tensor_view<T const, 2> pooled) const {
        tensor<T, 2> out({pooled.extent(0), num_labels()});
        linear(pooled, classifier.weight.view(), classifier.bias.view(), out.view());
        return out;
    }
};

/// Start and end logits of a span head, each [B, L].
struct span_logits {
    tensor<float, 2> start;  ///< Start logits, [B, L].
    tensor<float, 2> end;    ///< End logits, [B, L].
};

/// Span extraction head (`qa_outputs` on every token).
struct span_head {
    /// `qa_outputs`, [2, hidden].
    linear_weights qa_outputs;

    /// Loads `qa_outputs.weight` / `qa_outputs.bias`.
    /// @param file    The checkpoint.
    /// @param config  The model configuration.
    /// @param options Whether to check the values for NaN and infinity.
    /// @return The head; deq::format_error naming the file and tensor when missing or malformed,
    ///         deq::numeric_error naming the file, tensor and index of a non-finite value.
    static span_head load(io::safetensors_file const& file, bert_config const& config, weight_load_options const& options = {}) {
        return {detail::bert_read_linear(file, "qa_outputs", 2, config.hidden_size, options)};
    }

    /// Start and end logits of every token.
    /// @param hidden Last hidden state, [B, L, hidden], contiguous.
    /// @return The logits.
    /// @throws deq::shape_error for a non-contiguous or mismatched @p hidden.
    span_logits logits(tensor_view<float const, 3> hidden) const {
        index_t const batch = hidden.extent(0), length = hidden.extent(1);
        if (!hidden.is_contiguous()) detail::throw_shape_error("span_head: 'hidden' must be contiguous");
        tensor<float, 2> both({batch * length, 2});
        linear(tensor_view<float const, 2>(hidden.data(), {batch * length, hidden.extent(2)}), qa_outputs.weight.view(),
               qa_outputs.bias.view(), both.view());
        span_logits s{tensor<float, 2>({batch, length}), tensor<float, 2>({batch, length})};
        for (index_t b = 0; b < batch; ++b)
            for (index_t l = 0; l < length; ++l) {
                s.start(b, l) = both(b * length + l, 0);
                s.end(b, l) = both(b * length + l, 1);
            }
        return s;
    }
};

/// Masked language modelling head (`cls.predictions`).
struct mlm_head {
    /// `cls.predictions.transform.dense`, [hidden, hidden].
    linear_weights transform;
    /// `cls.predictions.transform.LayerNorm`.
    layer_norm_weights norm;
    /// Output embeddings, [vocab_size, hidden] (the decoder weight, tied to the word embeddings).
    tensor<float, 2> decoder;
    /// Output bias, [vocab_size].
    tensor<float, 1> bias;
    /// LayerNorm epsilon (the configuration's).
    double eps = 1e-12;

    /// Loads the head; the decoder weight falls back to @p word_embeddings (weight tying) when the file
    /// does not store `cls.predictions.decoder.weight`.
    /// @param file            The checkpoint.
    /// @param config          The model configuration.
    /// @param word_embeddings The encoder's word embeddings, [vocab_size, hidden] (checked when loaded).
    /// @param options         Whether to check the values read from @p file for NaN and infinity.
    /// @return The head; deq::format_error naming the file and tensor when missing or malformed,
    ///         deq::numeric_error naming the file, tensor and index of a non-finite value.
    static mlm_head load(io::safetensors_file const& file, bert_config const& config, tensor<float, 2> const& word_embeddings,
                         weight_load_options const& options = {}) {
        index_t const h = config.hidden_size, vocab = config.vocab_size;
        mlm_head m;
        m.transform = detail::bert_read_linear(file, "cls.predictions.transform.dense", h, h, options);
        m.norm = detail::bert_read_norm(file, "cls.predictions.transform.LayerNorm", h, options);
        if (file.contains("cls.predictions.decoder.weight")) {
            m.decoder = detail::bert_read<2>(file, "cls.predictions.decoder.weight", {vocab, h}, options);
        } else {
            if (word_embeddings.extent(0) != vocab || word_embeddings.extent(1) != h) {
                detail::throw_shape_error(detail::concat("mlm_head: 'word_embeddings' has shape ", word_embeddings.cview().shape_string(),
                                                         ", expected [", vocab, ", ", h, "]"));
            }
            m.decoder = word_embeddings;
        }
        m.bias = detail::bert_read<1>(file, file.contains("cls.predictions.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias",
                                      {vocab}, options);
        m.eps = config.layer_norm_eps;
        return m;
    }

    /// Vocabulary logits of the given token rows (e.g. the [MASK] positions).
    /// @tparam Space A host execution space (GELU and LayerNorm).
    /// @param space Execution space.
    /// @param rows  Hidden states of the tokens, [N, hidden] (rows may be strided).
    /// @return The logits, [N, vocab_size].
    template <exec::host_execution_space Space>
    tensor<float, 2> logits(Space const& space, tensor_view<float const, 2> rows) const {
        index_t const n = rows.extent(0), h = transform.out_features();
        tensor<float, 2> t({n, h});
        linear(rows, transform.weight.view(), transform.bias.view(), t.view());
        exec::parallel_for(space, n, detail::bert_gelu_kernel<float>{t.data(), h});
        exec::parallel_for(space, n, detail::bert_layer_norm_kernel<float>{t.data(), norm.weight.data(), norm.bias.data(), h, eps});
        tensor<float, 2> out({n, decoder.extent(0)});
        linear(t.cview(), decoder.view(), bias.view(), out.view());
        return out;
    }
};

}  // namespace deq::bert
