/// @file
/// @brief `deq::bert::load_model_folder` / `load_classifier_folder`: a Hugging Face model folder's model
/// and tokenizer, loaded together and checked against each other (deq::bert::check_vocabulary).
///
/// The folder holds `config.json`, `model.safetensors`, `vocab.txt` and optionally
/// `tokenizer_config.json`. The weights are checked for NaN and infinity unless
/// model_load_options::weights says otherwise; the vocabulary is checked against the token embeddings
/// before the tokenizer is built, so a missing special token is reported with every missing token and
/// the vocabulary file. Warnings (a vocabulary much smaller than `vocab_size`) are returned for the
/// caller to print and report; model_load_options::vocabulary.strict makes them errors.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "../text/bert_tokenizer.hpp"
#include "../text/vocab.hpp"
#include "encoder.hpp"
#include "finetuned.hpp"
#include "vocabulary_check.hpp"
#include "weights.hpp"

namespace deq::bert {

/// Options of load_model_folder and load_classifier_folder.
struct model_load_options {
    /// How the weights are read (check_finite).
    weight_load_options weights;
    /// How the vocabulary is checked against the model (padding margin, strict).
    vocabulary_check_options vocabulary;
};

/// A model with the tokenizer of its folder and the warnings of the vocabulary check.
/// @tparam Model deq::bert::bert_model or deq::bert::sequence_classifier.
template <class Model>
struct loaded_model {
    /// The model; its encoder's sources() name config.json, model.safetensors and vocab.txt.
    Model model;
    /// The tokenizer (vocab.txt and tokenizer_config.json).
    text::bert_tokenizer tokenizer;
    /// The warnings of check_vocabulary (empty when the vocabulary fits the model).
    std::vector<std::string> warnings;
};

}  // namespace deq::bert

namespace deq::detail {

/// The tokenizer of @p dir, its vocabulary checked against @p model (and recorded in it) before the
/// tokenizer is built; the warnings go to @p warnings.
inline text::bert_tokenizer bert_folder_tokenizer(std::filesystem::path const& dir, bert::bert_model& model,
                                                  bert::vocabulary_check_options const& options, std::vector<std::string>& warnings) {
    text::bert_tokenizer_options tokens = text::bert_tokenizer::load_options(dir);
    text::vocab vocabulary = text::vocab::load(dir / "vocab.txt");
    warnings = bert::check_vocabulary(vocabulary, tokens, model, options);
    return text::bert_tokenizer(std::move(vocabulary), std::move(tokens));
}

}  // namespace deq::detail

namespace deq::bert {

/// Loads a BERT encoder folder (bert_model::load) and its tokenizer, and checks one against the other.
/// @param dir     The model folder.
/// @param options Weight and vocabulary checks.
/// @return The model, tokenizer and warnings.
/// @throws what bert_model::load, text::bert_tokenizer::load_options, text::vocab::load and
///         check_vocabulary throw (each naming the file).
inline loaded_model<bert_model> load_model_folder(std::filesystem::path const& dir, model_load_options const& options = {}) {
    bert_model model = bert_model::load(dir, options.weights);
    std::vector<std::string> warnings;
    text::bert_tokenizer tokenizer = detail::bert_folder_tokenizer(dir, model, options.vocabulary, warnings);
    return {std::move(model), std::move(tokenizer), std::move(warnings)};
}

/// Loads a fine-tuned sequence classifier folder (sequence_classifier::load) and its tokenizer, and
/// checks one against the other.
/// @param dir     The model folder.
/// @param options Weight and vocabulary checks.
/// @return The classifier, tokenizer and warnings.
/// @throws what sequence_classifier::load, text::bert_tokenizer::load_options, text::vocab::load and
///         check_vocabulary throw (each naming the file).
inline loaded_model<sequence_classifier> load_classifier_folder(std::filesystem::path const& dir, model_load_options const& options = {}) {
    sequence_classifier classifier = sequence_classifier::load(dir, options.weights);
    std::vector<std::string> warnings;
    text::bert_tokenizer tokenizer = detail::bert_folder_tokenizer(dir, classifier.model(), options.vocabulary, warnings);
    return {std::move(classifier), std::move(tokenizer), std::move(warnings)};
}

}  // namespace deq::bert
