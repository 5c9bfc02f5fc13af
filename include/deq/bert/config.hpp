/// @file
/// @brief `deq::bert::bert_config`: the geometry of a Hugging Face BERT encoder, read from its
/// `config.json`.
///
/// Read fields (all required unless noted): `vocab_size`, `hidden_size`, `num_hidden_layers`,
/// `num_attention_heads`, `intermediate_size`, `hidden_act` (must be `"gelu"`, the exact erf GELU of
/// transformers), `layer_norm_eps`, `max_position_embeddings`, `type_vocab_size`; optional
/// `position_embedding_type` (must be `"absolute"` when present) and `pad_token_id`. Other fields
/// (dropout rates, architectures, ...) are ignored. Errors name the file and the field.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "../core/checked_size.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/json.hpp"

namespace deq::bert {

/// Geometry and numerical settings of a BERT encoder (the fields of Hugging Face's `BertConfig`
/// that the forward pass uses). Defaults are those of `bert-base-uncased`.
struct bert_config {
    /// Number of token ids (rows of the word-embedding table), >= 1.
    index_t vocab_size = 30522;
    /// Width of the hidden states, >= 1 and a multiple of num_attention_heads.
    index_t hidden_size = 768;
    /// Number of encoder layers, >= 1.
    index_t num_hidden_layers = 12;
    /// Number of attention heads per layer, >= 1.
    index_t num_attention_heads = 12;
    /// Width of the feed-forward layer, >= 1.
    index_t intermediate_size = 3072;
    /// Activation of the feed-forward layer; only "gelu" (exact, erf-based) is supported.
    std::string hidden_act = "gelu";
    /// Epsilon of every LayerNorm, finite and > 0.
    double layer_norm_eps = 1e-12;
    /// Number of position embeddings: the longest sequence the model accepts, >= 1.
    index_t max_position_embeddings = 512;
    /// Number of token-type (segment) embeddings, >= 1.
    index_t type_vocab_size = 2;
    /// Id of the padding token (informational; the forward pass uses the attention mask).
    index_t pad_token_id = 0;

    /// Size of one attention head, `hidden_size / num_attention_heads`.
    /// @return The head dimension d.
    index_t head_dim() const noexcept { return num_attention_heads > 0 ? hidden_size / num_attention_heads : 0; }

    /// Checks every field; throws deq::invalid_argument naming the field and its value.
    void validate() const {
        auto positive = [](char const* name, index_t v) {
            if (v < 1) detail::throw_invalid_argument(name, v, "must be >= 1");
        };
        positive("vocab_size", vocab_size);
        positive("hidden_size", hidden_size);
        positive("num_hidden_layers", num_hidden_layers);
        positive("num_attention_heads", num_attention_heads);
        positive("intermediate_size", intermediate_size);
        positive("max_position_embeddings", max_position_embeddings);
        positive("type_vocab_size", type_vocab_size);
        if (hidden_size % num_attention_heads != 0) {
            detail::throw_invalid_argument("hidden_size", hidden_size,
                                           detail::concat("must be a multiple of num_attention_heads = ", num_attention_heads));
        }
        if (hidden_act != "gelu") {
            detail::throw_invalid_argument("hidden_act", "\"" + hidden_act + "\"", "must be \"gelu\" (exact erf GELU)");
        }
        if (!(std::isfinite(layer_norm_eps) && layer_norm_eps > 0)) {
            detail::throw_invalid_argument("layer_norm_eps", layer_norm_eps, "must be finite and > 0");
        }
        if (pad_token_id < 0 || pad_token_id >= vocab_size) {
            detail::throw_invalid_argument("pad_token_id", pad_token_id, detail::concat("must be in [0, vocab_size = ", vocab_size, ")"));
        }
        // The weight matrices these extents describe must be countable (the forward pass multiplies them).
        detail::checked_size("bert_config embeddings [vocab_size, hidden_size]", {vocab_size, hidden_size});
        detail::checked_size("bert_config positions [max_position_embeddings, hidden_size]", {max_position_embeddings, hidden_size});
        detail::checked_size("bert_config feed-forward [intermediate_size, hidden_size]", {intermediate_size, hidden_size});
        detail::checked_size("bert_config query-key-value [3, hidden_size, hidden_size]", {3, hidden_size, hidden_size});
    }

    /// Reads a configuration from a parsed `config.json` object (see the file documentation for the
    /// fields). Throws deq::format_error naming the source file and the field for a missing field, a
    /// wrong type or an unsupported / out-of-range value.
    /// @param doc The parsed document (its source names the file in errors).
    /// @return The validated configuration.
    static bert_config from_json(io::json const& doc) {
        if (!doc.is_object()) doc.fail(detail::concat("expected a JSON object, got ", doc.type_name()));
        constexpr std::int64_t big = std::int64_t{1} << 40;
        bert_config c;
        c.vocab_size = doc.at("vocab_size").as_int(1, big);
        c.hidden_size = doc.at("hidden_size").as_int(1, big);
        c.num_hidden_layers = doc.at("num_hidden_layers").as_int(1, 1 << 16);
        c.num_attention_heads = doc.at("num_attention_heads").as_int(1, 1 << 16);
        c.intermediate_size = doc.at("intermediate_size").as_int(1, big);
        c.max_position_embeddings = doc.at("max_position_embeddings").as_int(1, 1 << 24);
        c.type_vocab_size = doc.at("type_vocab_size").as_int(1, 1 << 16);
        io::json const& act = doc.at("hidden_act");
        c.hidden_act = act.as_string();
        if (c.hidden_act != "gelu") {
            act.fail(detail::concat("unsupported activation \"", c.hidden_act, "\" (only \"gelu\", the exact erf GELU, is supported)"));
        }
        io::json const& eps = doc.at("layer_norm_eps");
        c.layer_norm_eps = eps.as_double();
        if (!(c.layer_norm_eps > 0)) eps.fail(detail::concat("must be > 0, got ", eps.dump()));
        if (io::json const* pos = doc.find("position_embedding_type"); pos != nullptr && !pos->is_null()) {
            if (pos->as_string() != "absolute") {
                pos->fail(detail::concat("unsupported position embedding type \"", pos->as_string(), "\" (only \"absolute\")"));
            }
        }
        if (io::json const* pad = doc.find("pad_token_id"); pad != nullptr && !pad->is_null()) {
            c.pad_token_id = pad->as_int(0, c.vocab_size - 1);
        }
        for (auto const& [field, rows] : {std::pair<char const*, index_t>{"vocab_size", c.vocab_size},
                                          {"intermediate_size", c.intermediate_size}}) {
            index_t elements = 0;
            std::array<index_t, 2> const extents{rows, c.hidden_size};
            if (!detail::extents_fit(extents, elements)) {
                doc.at(field).fail(detail::concat(field, " x hidden_size = ", rows, " x ", c.hidden_size,
                                                  " elements do not fit a 64-bit count"));
            }
        }
        if (c.hidden_size % c.num_attention_heads != 0) {
            doc.at("hidden_size").fail(detail::concat("hidden_size = ", c.hidden_size, " is not a multiple of num_attention_heads = ",
                                                      c.num_attention_heads));
        }
        c.validate();
        return c;
    }

    /// Reads `config.json` (a file, or a model folder holding one).
    /// @param path The file or the model folder.
    /// @return The validated configuration; deq::format_error naming the file (and field) when it is
    ///         missing or malformed.
    static bert_config load(std::filesystem::path const& path) {
        std::error_code ec;
        std::filesystem::path const file = std::filesystem::is_directory(path, ec) ? path / "config.json" : path;
        return from_json(io::json::parse_file(file));
    }
};

}  // namespace deq::bert
