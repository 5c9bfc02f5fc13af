/// @file
/// @brief `deq::bert::bert_weights`: the parameters of a BERT encoder, loaded from a safetensors file
/// by their Hugging Face names.
///
/// Tensor names (PREFIX is `bert.` for task models such as `BertForSequenceClassification`, empty for a
/// bare `BertModel` such as sentence-transformers' all-MiniLM-L6-v2; detected from the word embeddings):
///
/// | tensor | shape |
/// |---|---|
/// | PREFIX`embeddings.word_embeddings.weight` | [vocab_size, hidden] |
/// | PREFIX`embeddings.position_embeddings.weight` | [max_position_embeddings, hidden] |
/// | PREFIX`embeddings.token_type_embeddings.weight` | [type_vocab_size, hidden] |
/// | PREFIX`embeddings.LayerNorm.{weight,bias}` | [hidden] |
/// | PREFIX`encoder.layer.N.attention.self.{query,key,value}.{weight,bias}` | [hidden, hidden], [hidden] |
/// | PREFIX`encoder.layer.N.attention.output.dense.{weight,bias}` | [hidden, hidden], [hidden] |
/// | PREFIX`encoder.layer.N.attention.output.LayerNorm.{weight,bias}` | [hidden] |
/// | PREFIX`encoder.layer.N.intermediate.dense.{weight,bias}` | [intermediate, hidden], [intermediate] |
/// | PREFIX`encoder.layer.N.output.dense.{weight,bias}` | [hidden, intermediate], [hidden] |
/// | PREFIX`encoder.layer.N.output.LayerNorm.{weight,bias}` | [hidden] |
/// | PREFIX`pooler.dense.{weight,bias}` (optional) | [hidden, hidden], [hidden] |
/// | PREFIX`encoder.layer.N.attention.self.quant_matmul.input_{x,y}_thresh` (optional) | [] or [1] |
///
/// Linear weights are stored `[out, in]` as PyTorch's `nn.Linear` does. LayerNorm parameters written by
/// old TensorFlow conversions as `LayerNorm.gamma` / `LayerNorm.beta` are accepted too. Any float dtype
/// (F32, F16, BF16, F64) is converted to float. The quantizer thresholds are the buffers of the Sanger /
/// DEQ reference's `QuantizedMatMul` (fine-tuned checkpoints); they are optional, but when one layer has
/// them every layer must have both. Other tensors (task heads, `position_ids`) are ignored here.
/// Errors are deq::format_error naming the file and the tensor.
///
/// Every tensor read is checked for NaN and infinity (deq::numeric_error naming the file, the tensor and
/// the index of the first non-finite element), so that a corrupt checkpoint is reported where it is
/// loaded rather than as a non-finite activation in the forward pass. The check reads each value once
/// more after the conversion to float; deq::bert::weight_load_options::check_finite = false skips it.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/safetensors.hpp"
#include "config.hpp"

namespace deq::bert {

/// Options of loading weights from a checkpoint (bert_weights::load and the task heads' `load`).
struct weight_load_options {
    /// Check every loaded value for NaN and infinity (deq::numeric_error naming the file, the tensor and
    /// the index of the first non-finite element). One extra pass over the weights: about 5 ms for the
    /// 22.7 M parameters of all-MiniLM-L6-v2 in an optimised build (-O2 / -O3; about 12 % of loading the
    /// weights from an opened file), about 50 ms unoptimised; false skips it.
    bool check_finite = true;
};

/// Parameters of one `nn.Linear`: `y = x · weightᵀ + bias`.
struct linear_weights {
    /// Weight, [out_features, in_features].
    tensor<float, 2> weight;
    /// Bias, [out_features].
    tensor<float, 1> bias;
    /// @return The number of output features.
    index_t out_features() const noexcept { return weight.extent(0); }
    /// @return The number of input features.
    index_t in_features() const noexcept { return weight.extent(1); }
};

/// Parameters of one `nn.LayerNorm` over the last dimension.
struct layer_norm_weights {
    /// Scale (`weight`, formerly `gamma`), [features].
    tensor<float, 1> weight;
    /// Shift (`bias`, formerly `beta`), [features].
    tensor<float, 1> bias;
};

/// The reference quantizer's per-layer thresholds (`QuantizedMatMul.input_x_thresh` for the normalised
/// queries and `input_y_thresh` for the normalised keys).
struct quantizer_thresholds {
    /// Threshold of the L2-normalised queries (`input_x_thresh`), finite and > 0.
    float input_x_thresh = 0;
    /// Threshold of the L2-normalised keys (`input_y_thresh`), finite and > 0.
    float input_y_thresh = 0;
};

/// Parameters of one encoder layer (`BertLayer`).
struct layer_weights {
    linear_weights query;              ///< `attention.self.query`, [hidden, hidden].
    linear_weights key;                ///< `attention.self.key`, [hidden, hidden].
    linear_weights value;              ///< `attention.self.value`, [hidden, hidden].
    linear_weights attention_output;   ///< `attention.output.dense`, [hidden, hidden].
    layer_norm_weights attention_norm; ///< `attention.output.LayerNorm`.
    linear_weights intermediate;       ///< `intermediate.dense`, [intermediate, hidden].
    linear_weights output;             ///< `output.dense`, [hidden, intermediate].
    layer_norm_weights output_norm;    ///< `output.LayerNorm`.
    /// The checkpoint's quantizer thresholds, when it has them.
    std::optional<quantizer_thresholds> thresholds;
};

/// Parameters of the embeddings (`BertEmbeddings`).
struct embedding_weights {
    tensor<float, 2> word;        ///< Word embeddings, [vocab_size, hidden].
    tensor<float, 2> position;    ///< Position embeddings, [max_position_embeddings, hidden].
    tensor<float, 2> token_type;  ///< Token-type embeddings, [type_vocab_size, hidden].
    layer_norm_weights norm;      ///< `embeddings.LayerNorm`.
};

}  // namespace deq::bert

namespace deq::detail {

/// Index of the first NaN or infinity in @p data[0, n), or @p n when every value is finite. Tests blocks
/// of a fixed size with a branch-free test of the exponent bits (vectorised by the compiler) and
/// searches a block only when it holds a non-finite value.
inline index_t bert_first_non_finite(float const* data, index_t n) {
    constexpr index_t block = 1024;
    constexpr std::uint32_t exponent = 0x7f800000u;
    auto search = [&](index_t first, index_t last) {
        for (index_t i = first; i < last; ++i)
            if (!std::isfinite(data[i])) return i;
        return last;
    };
    index_t start = 0;
    for (; start + block <= n; start += block) {
        std::uint32_t bad = 0;
        for (index_t i = 0; i < block; ++i) bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(data[start + i]) & exponent) == exponent);
        if (bad != 0) return search(start, start + block);
    }
    return search(start, n);
}

/// Throws deq::numeric_error naming the file, tensor @p name and the index of its first non-finite element.
template <int Rank>
void bert_require_finite(io::safetensors_file const& file, std::string_view name, tensor<float, Rank> const& t) {
    index_t const n = t.size(), at = bert_first_non_finite(t.data(), n);
    if (at == n) return;
    index_t rest = at, index[Rank > 0 ? Rank : 1] = {};
    for (int r = Rank - 1; r >= 0; --r) {
        index[r] = rest % t.extent(r);
        rest /= t.extent(r);
    }
    std::string where = "[";
    for (int r = 0; r < Rank; ++r) where += concat(r ? ", " : "", index[r]);
    throw numeric_error(concat("deq: ", file.source(), ": non-finite value ", static_cast<double>(t.data()[at]), " in tensor '", name,
                               "' at index ", where, "] (element ", at, " of ", n, ")"));
}

/// Reads float tensor @p name with the given shape (format_error naming the file and tensor otherwise),
/// and with @p options.check_finite checks its values (numeric_error naming the file, tensor and index).
template <int Rank>
tensor<float, Rank> bert_read(io::safetensors_file const& file, std::string const& name, std::initializer_list<index_t> shape,
                              bert::weight_load_options const& options) {
    tensor<float, Rank> t = file.get_float<Rank>(name, shape);
    if (options.check_finite) bert_require_finite(file, name, t);
    return t;
}

/// Reads a linear layer `<base>.weight` [out, in] and `<base>.bias` [out].
inline bert::linear_weights bert_read_linear(io::safetensors_file const& file, std::string const& base, index_t out, index_t in,
                                             bert::weight_load_options const& options) {
    return {bert_read<2>(file, base + ".weight", {out, in}, options), bert_read<1>(file, base + ".bias", {out}, options)};
}

/// Reads a LayerNorm `<base>.weight` / `.bias` (or the old `.gamma` / `.beta`), each [features].
inline bert::layer_norm_weights bert_read_norm(io::safetensors_file const& file, std::string const& base, index_t features,
                                               bert::weight_load_options const& options) {
    bool const old = !file.contains(base + ".weight") && file.contains(base + ".gamma");
    return {bert_read<1>(file, base + (old ? ".gamma" : ".weight"), {features}, options),
            bert_read<1>(file, base + (old ? ".beta" : ".bias"), {features}, options)};
}

/// Reads one quantizer threshold scalar and checks that it is finite and > 0.
inline float bert_read_threshold(io::safetensors_file const& file, std::string const& name) {
    float const t = file.get_scalar<float>(name);
    if (!(std::isfinite(t) && t > 0.0f)) {
        throw format_error(concat("deq: ", file.source(), ": tensor '", name, "' = ", t,
                                  " must be finite and > 0 (was the quantizer ever calibrated?)"));
    }
    return t;
}

}  // namespace deq::detail

namespace deq::bert {

/// Every parameter of a BERT encoder (embeddings, layers, optional pooler), in float.
struct bert_weights {
    /// Embedding tables and their LayerNorm.
    embedding_weights embeddings;
    /// One entry per encoder layer.
    std::vector<layer_weights> layers;
    /// `pooler.dense` ([hidden, hidden]), when the checkpoint has a pooler.
    std::optional<linear_weights> pooler;
    /// The name prefix found in the file: "bert." or "" (task heads live outside it).
    std::string prefix;

    /// Whether every layer carries quantizer thresholds from the checkpoint.
    /// @return True when the checkpoint had `input_x_thresh` / `input_y_thresh` for every layer.
    bool has_thresholds() const {
        if (layers.empty()) return false;
        for (auto const& l : layers)
            if (!l.thresholds) return false;
        return true;
    }

    /// Detects the name prefix of a BERT checkpoint: "bert." when it has
    /// `bert.embeddings.word_embeddings.weight`, "" when it has `embeddings.word_embeddings.weight`.
    /// @param file The safetensors file.
    /// @return The prefix; deq::format_error naming the file when neither tensor exists.
    static std::string detect_prefix(io::safetensors_file const& file) {
        if (file.contains("bert.embeddings.word_embeddings.weight")) return "bert.";
        if (file.contains("embeddings.word_embeddings.weight")) return "";
        throw format_error(detail::concat("deq: ", file.source(),
                                          ": not a BERT checkpoint: no tensor 'bert.embeddings.word_embeddings.weight' "
                                          "or 'embeddings.word_embeddings.weight'"));
    }

    /// Loads the parameters of @p config's geometry from an opened safetensors file (see the file
    /// documentation for the names and shapes).
    /// @param file    The safetensors file.
    /// @param config  The model configuration (validated).
    /// @param options Whether to check the values for NaN and infinity.
    /// @return The weights; deq::format_error naming the file and tensor for a missing tensor, a wrong
    ///         shape or dtype, an incomplete set of quantizer thresholds or a threshold that is not > 0;
    ///         deq::numeric_error naming the file, the tensor and the index of the first non-finite value.
    static bert_weights load(io::safetensors_file const& file, bert_config const& config, weight_load_options const& options = {}) {
        config.validate();
        bert_weights w;
        w.prefix = detect_prefix(file);
        std::string const& p = w.prefix;
        index_t const h = config.hidden_size, inter = config.intermediate_size;
        auto const& o = options;
        w.embeddings.word = detail::bert_read<2>(file, p + "embeddings.word_embeddings.weight", {config.vocab_size, h}, o);
        w.embeddings.position =
            detail::bert_read<2>(file, p + "embeddings.position_embeddings.weight", {config.max_position_embeddings, h}, o);
        w.embeddings.token_type =
            detail::bert_read<2>(file, p + "embeddings.token_type_embeddings.weight", {config.type_vocab_size, h}, o);
        w.embeddings.norm = detail::bert_read_norm(file, p + "embeddings.LayerNorm", h, o);
        std::string first_with, first_without;
        for (index_t n = 0; n < config.num_hidden_layers; ++n) {
            std::string const base = p + "encoder.layer." + std::to_string(n) + ".";
            layer_weights l;
            l.query = detail::bert_read_linear(file, base + "attention.self.query", h, h, o);
            l.key = detail::bert_read_linear(file, base + "attention.self.key", h, h, o);
            l.value = detail::bert_read_linear(file, base + "attention.self.value", h, h, o);
            l.attention_output = detail::bert_read_linear(file, base + "attention.output.dense", h, h, o);
            l.attention_norm = detail::bert_read_norm(file, base + "attention.output.LayerNorm", h, o);
            l.intermediate = detail::bert_read_linear(file, base + "intermediate.dense", inter, h, o);
            l.output = detail::bert_read_linear(file, base + "output.dense", h, inter, o);
            l.output_norm = detail::bert_read_norm(file, base + "output.LayerNorm", h, o);
            std::string const tx = base + "attention.self.quant_matmul.input_x_thresh";
            std::string const ty = base + "attention.self.quant_matmul.input_y_thresh";
            bool const hx = file.contains(tx), hy = file.contains(ty);
            if (hx != hy) {
                throw format_error(detail::concat("deq: ", file.source(), ": tensor '", hx ? ty : tx, "' is missing (its partner '",
                                                  hx ? tx : ty, "' is present)"));
            }
            if (hx) {
                l.thresholds = quantizer_thresholds{detail::bert_read_threshold(file, tx), detail::bert_read_threshold(file, ty)};
                if (first_with.empty()) first_with = tx;
            } else if (first_without.empty()) {
                first_without = tx;
            }
            w.layers.push_back(std::move(l));
        }
        if (!first_with.empty() && !first_without.empty()) {
            throw format_error(detail::concat("deq: ", file.source(), ": tensor '", first_without,
                                              "' is missing: quantizer thresholds must be given for every layer or none (found '",
                                              first_with, "')"));
        }
        if (file.contains(p + "pooler.dense.weight") || file.contains(p + "pooler.dense.bias")) {
            w.pooler = detail::bert_read_linear(file, p + "pooler.dense", h, h, o);
        }
        return w;
    }

    /// Opens @p file and loads the weights (see load(io::safetensors_file const&, bert_config const&, weight_load_options const&)).
    /// @param file    Path of the .safetensors file.
    /// @param config  The model configuration.
    /// @param options Whether to check the values for NaN and infinity.
    /// @return The weights; deq::format_error naming the file (and tensor) when it is missing or malformed,
    ///         deq::numeric_error naming the file, tensor and index of a non-finite value.
    static bert_weights load(std::filesystem::path const& file, bert_config const& config, weight_load_options const& options = {}) {
        return load(io::safetensors_file::open(file), config, options);
    }

    /// Checks every shape against @p config (weights built in code rather than loaded).
    /// @param config The configuration.
    /// @throws deq::shape_error naming the parameter, its shape and the expected one.
    void validate(bert_config const& config) const {
        config.validate();
        index_t const h = config.hidden_size, inter = config.intermediate_size;
        auto check2 = [](std::string const& name, tensor<float, 2> const& t, index_t r, index_t c) {
            if (t.extent(0) != r || t.extent(1) != c) {
                detail::throw_shape_error(detail::concat("'", name, "' has shape ", t.cview().shape_string(), ", expected [", r, ", ", c, "]"));
            }
        };
        auto check1 = [](std::string const& name, tensor<float, 1> const& t, index_t n) {
            if (t.extent(0) != n) {
                detail::throw_shape_error(detail::concat("'", name, "' has shape ", t.cview().shape_string(), ", expected [", n, "]"));
            }
        };
        auto linear = [&](std::string const& name, linear_weights const& l, index_t out, index_t in) {
            check2(name + ".weight", l.weight, out, in);
            check1(name + ".bias", l.bias, out);
        };
        auto norm = [&](std::string const& name, layer_norm_weights const& n) {
            check1(name + ".weight", n.weight, h);
            check1(name + ".bias", n.bias, h);
        };
        check2("embeddings.word_embeddings.weight", embeddings.word, config.vocab_size, h);
        check2("embeddings.position_embeddings.weight", embeddings.position, config.max_position_embeddings, h);
        check2("embeddings.token_type_embeddings.weight", embeddings.token_type, config.type_vocab_size, h);
        norm("embeddings.LayerNorm", embeddings.norm);
        if (static_cast<index_t>(layers.size()) != config.num_hidden_layers) {
            detail::throw_shape_error(detail::concat("the weights have ", layers.size(), " layers, the configuration ",
                                                     config.num_hidden_layers));
        }
        for (std::size_t n = 0; n < layers.size(); ++n) {
            std::string const base = "encoder.layer." + std::to_string(n) + ".";
            layer_weights const& l = layers[n];
            linear(base + "attention.self.query", l.query, h, h);
            linear(base + "attention.self.key", l.key, h, h);
            linear(base + "attention.self.value", l.value, h, h);
            linear(base + "attention.output.dense", l.attention_output, h, h);
            norm(base + "attention.output.LayerNorm", l.attention_norm);
            linear(base + "intermediate.dense", l.intermediate, inter, h);
            linear(base + "output.dense", l.output, h, inter);
            norm(base + "output.LayerNorm", l.output_norm);
            if (l.thresholds) {
                for (float t : {l.thresholds->input_x_thresh, l.thresholds->input_y_thresh}) {
                    if (!(std::isfinite(t) && t > 0.0f)) {
                        detail::throw_invalid_argument(base + "attention.self.quant_matmul thresholds", t, "must be finite and > 0");
                    }
                }
            }
        }
        if (pooler) linear("pooler.dense", *pooler, h, h);
    }
};

}  // namespace deq::bert
