/// @file
/// @brief `deq::bert::check_vocabulary`: checks that a tokenizer's vocabulary (vocab.txt) fits a model
/// (config.json `vocab_size`, the rows of `embeddings.word_embeddings.weight`), so that a wrong or
/// truncated vocabulary fails or warns instead of running to plausible but wrong results.
///
/// With V tokens in the vocabulary and N = `vocab_size` token embeddings:
///
/// | finding | result |
/// |---|---|
/// | a special token (`[UNK]`, `[SEP]`, `[PAD]`, `[CLS]`, `[MASK]`, or those the tokenizer options name) is missing | deq::format_error naming the vocabulary file and every missing token |
/// | V > N (ids would index past the embedding matrix) | deq::format_error naming the vocabulary, the configuration and the weights file |
/// | N − V > padding_margin (some checkpoints pad the embedding matrix, e.g. to a multiple of 64) | a warning naming the files (returned); deq::format_error with vocabulary_check_options::strict |
///
/// A check against a deq::bert::bert_model records the vocabulary file in the model's sources(), so that
/// a token id out of range in the forward pass names the vocabulary the ids came from.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../text/bert_tokenizer.hpp"
#include "../text/vocab.hpp"
#include "config.hpp"
#include "encoder.hpp"
#include "model_sources.hpp"

namespace deq::bert {

/// Options of check_vocabulary.
struct vocabulary_check_options {
    /// How many entries the vocabulary may have fewer than `vocab_size` without a warning (padding rows
    /// of the embedding matrix), >= 0.
    index_t padding_margin = 64;
    /// Make the warnings errors (deq::format_error).
    bool strict = false;
};

}  // namespace deq::bert

namespace deq::detail {

/// Where a model's token embeddings are defined, for messages: "(vocab_size in configuration 'C', rows of
/// 'embeddings.word_embeddings.weight' in weights 'W')"; an empty file name reads "the model's ...".
inline std::string bert_embedding_origin(bert::model_sources const& files) {
    auto named = [](char const* what, std::string const& file) {
        return file.empty() ? concat("the model's ", what) : concat(what, " '", file, "'");
    };
    return concat("(vocab_size in ", named("configuration", files.config), ", rows of 'embeddings.word_embeddings.weight' in ",
                  named("weights", files.weights), ")");
}

}  // namespace deq::detail

namespace deq::bert {

/// Checks a vocabulary and the tokenizer's special tokens against a model's token embeddings.
/// @param vocabulary     The vocabulary (its source() names it in messages).
/// @param tokens         The tokenizer settings naming the special tokens.
/// @param config         The model configuration (`vocab_size`).
/// @param embedding_rows Rows of the word-embedding matrix (equal to `vocab_size` for a loaded model).
/// @param files          The model's files, named in messages (empty names are described generically).
/// @param options        Padding margin and strictness.
/// @return The warnings (empty when the vocabulary fits), each a full message naming the files.
/// @throws deq::format_error naming the vocabulary file and the tokens for missing special tokens, naming
///         the vocabulary, configuration and weights files for a vocabulary larger than the embedding
///         matrix, and (with @p options.strict) for every warning; deq::shape_error when @p embedding_rows
///         differs from `vocab_size`; deq::invalid_argument for a negative padding margin.
inline std::vector<std::string> check_vocabulary(text::vocab const& vocabulary, text::bert_tokenizer_options const& tokens,
                                                 bert_config const& config, index_t embedding_rows, model_sources const& files,
                                                 vocabulary_check_options const& options = {}) {
    if (options.padding_margin < 0) detail::throw_invalid_argument("padding_margin", options.padding_margin, "must be >= 0");
    std::string const origin = detail::bert_embedding_origin(files);
    index_t const n = config.vocab_size;
    if (embedding_rows != n) {
        detail::throw_shape_error(detail::concat("the model has ", embedding_rows, " token embeddings but vocab_size = ", n, " ", origin));
    }
    std::string missing;
    for (auto const& [role, token] : {std::pair<char const*, std::string const&>{"unk_token", tokens.unk_token},
                                      {"sep_token", tokens.sep_token},
                                      {"pad_token", tokens.pad_token},
                                      {"cls_token", tokens.cls_token},
                                      {"mask_token", tokens.mask_token}}) {
        if (!vocabulary.contains(token)) missing += detail::concat(missing.empty() ? "" : ", ", "'", token, "' (", role, ")");
    }
    if (!missing.empty()) {
        throw format_error(detail::concat("deq: ", vocabulary.source(), ": the vocabulary lacks the special token(s) ", missing,
                                          " that the BERT tokenizer needs"));
    }
    auto const v = static_cast<index_t>(vocabulary.size());
    if (v > n) {
        throw format_error(detail::concat("deq: ", vocabulary.source(), ": the vocabulary has ", v, " tokens but the model has ", n,
                                          " token embeddings ", origin, ": ids >= ", n,
                                          " would index past the embedding matrix; use the vocab.txt the model was trained with"));
    }
    std::vector<std::string> warnings;
    if (n - v > options.padding_margin) {
        std::string w = detail::concat("deq: ", vocabulary.source(), ": the vocabulary has ", v, " tokens, ", n - v,
                                       " fewer than the model's ", n, " token embeddings ", origin, " and more than the ",
                                       options.padding_margin,
                                       " padding rows a checkpoint may add: it is probably not the vocabulary the model was trained with");
        if (options.strict) throw format_error(w + " (strict vocabulary check)");
        warnings.push_back(std::move(w));
    }
    return warnings;
}

/// Checks a vocabulary against @p model (see the file documentation) and records its file in the model's
/// sources(), named by the forward pass for a token id out of range.
/// @param vocabulary The vocabulary.
/// @param tokens     The tokenizer settings naming the special tokens.
/// @param model      The model; its sources().vocabulary becomes @p vocabulary's source() when the check passes.
/// @param options    Padding margin and strictness.
/// @return The warnings (empty when the vocabulary fits).
/// @throws what check_vocabulary(text::vocab const&, text::bert_tokenizer_options const&, bert_config const&, index_t, model_sources const&, vocabulary_check_options const&) throws.
inline std::vector<std::string> check_vocabulary(text::vocab const& vocabulary, text::bert_tokenizer_options const& tokens, bert_model& model,
                                                 vocabulary_check_options const& options = {}) {
    std::vector<std::string> warnings =
        check_vocabulary(vocabulary, tokens, model.config(), model.weights().embeddings.word.extent(0), model.sources(), options);
    model_sources s = model.sources();
    s.vocabulary = vocabulary.source();
    model.set_sources(std::move(s));
    return warnings;
}

/// Checks @p tokenizer's vocabulary and special tokens against @p model and records the vocabulary file
/// in the model (see check_vocabulary(text::vocab const&, text::bert_tokenizer_options const&, bert_model&, vocabulary_check_options const&)).
/// @param tokenizer The tokenizer.
/// @param model     The model.
/// @param options   Padding margin and strictness.
/// @return The warnings (empty when the vocabulary fits).
inline std::vector<std::string> check_vocabulary(text::bert_tokenizer const& tokenizer, bert_model& model,
                                                 vocabulary_check_options const& options = {}) {
    return check_vocabulary(tokenizer.vocabulary(), tokenizer.options(), model, options);
}

}  // namespace deq::bert
