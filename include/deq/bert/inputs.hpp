/// @file
/// @brief `deq::bert::model_input`: one padded batch of token ids, token-type ids and attention mask
/// (the tensors a Hugging Face tokenizer returns), and its construction from tokenizer encodings.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "config.hpp"

namespace deq::bert {

/// A tokenizer output with `input_ids`, `token_type_ids` and `attention_mask` sequences of equal length
/// (e.g. deq::text::encoding).
/// @tparam E Candidate type.
template <class E>
concept encoding_like = requires(E const& e) {
    { e.input_ids.size() } -> std::convertible_to<std::size_t>;
    { e.token_type_ids.size() } -> std::convertible_to<std::size_t>;
    { e.attention_mask.size() } -> std::convertible_to<std::size_t>;
    { static_cast<std::int64_t>(e.input_ids[0]) };
    { static_cast<std::int64_t>(e.token_type_ids[0]) };
    { static_cast<std::int64_t>(e.attention_mask[0]) };
};

/// One batch of model inputs, all [batch, length] (row-major).
struct model_input {
    /// Token ids.
    tensor<std::int32_t, 2> input_ids;
    /// Segment ids (0 for the first sentence, 1 for the second).
    tensor<std::int32_t, 2> token_type_ids;
    /// 1 for real tokens, 0 for padding.
    tensor<std::uint8_t, 2> attention_mask;

    /// @return The number of sequences.
    index_t batch() const noexcept { return input_ids.extent(0); }
    /// @return The padded sequence length.
    index_t length() const noexcept { return input_ids.extent(1); }
    /// @return The attention mask as deq key padding.
    key_padding padding() const { return key_padding{attention_mask.view()}; }

    /// Builds a batch from tokenizer outputs, padding every sequence to the longest one with
    /// @p pad_id (type id 0, mask 0), as transformers' `padding=True` does.
    /// @tparam E A type satisfying encoding_like.
    /// @param encodings The sequences (at least one, none empty).
    /// @param pad_id    Id of the padding token.
    /// @return The batch.
    /// @throws deq::invalid_argument for an empty list, an empty sequence or sequences whose three
    ///         fields differ in length.
    template <encoding_like E>
    static model_input from_encodings(std::span<E const> encodings, std::int32_t pad_id = 0) {
        if (encodings.empty()) detail::throw_invalid_argument("encodings", "<empty>", "must hold at least one sequence");
        std::size_t longest = 0;
        for (std::size_t b = 0; b < encodings.size(); ++b) {
            E const& e = encodings[b];
            if (e.input_ids.size() == 0) {
                detail::throw_invalid_argument(detail::concat("encodings[", b, "].input_ids"), "<empty>", "must hold at least one token");
            }
            if (e.token_type_ids.size() != e.input_ids.size() || e.attention_mask.size() != e.input_ids.size()) {
                detail::throw_invalid_argument(detail::concat("encodings[", b, "]"), e.input_ids.size(),
                                               detail::concat("input_ids, token_type_ids (", e.token_type_ids.size(),
                                                              ") and attention_mask (", e.attention_mask.size(),
                                                              ") must have the same length"));
            }
            longest = std::max<std::size_t>(longest, e.input_ids.size());
        }
        index_t const batch = static_cast<index_t>(encodings.size()), length = static_cast<index_t>(longest);
        model_input in;
        in.input_ids = tensor<std::int32_t, 2>({batch, length}, pad_id);
        in.token_type_ids = tensor<std::int32_t, 2>({batch, length}, 0);
        in.attention_mask = tensor<std::uint8_t, 2>({batch, length}, 0);
        for (index_t b = 0; b < batch; ++b) {
            E const& e = encodings[static_cast<std::size_t>(b)];
            for (std::size_t j = 0; j < e.input_ids.size(); ++j) {
                index_t const l = static_cast<index_t>(j);
                in.input_ids(b, l) = static_cast<std::int32_t>(e.input_ids[j]);
                in.token_type_ids(b, l) = static_cast<std::int32_t>(e.token_type_ids[j]);
                in.attention_mask(b, l) = static_cast<std::uint8_t>(e.attention_mask[j] != 0 ? 1 : 0);
            }
        }
        return in;
    }

    /// from_encodings() for a vector.
    /// @tparam E A type satisfying encoding_like.
    /// @param encodings The sequences.
    /// @param pad_id    Id of the padding token.
    /// @return The batch.
    template <encoding_like E>
    static model_input from_encodings(std::vector<E> const& encodings, std::int32_t pad_id = 0) {
        return from_encodings(std::span<E const>(encodings), pad_id);
    }

    /// Checks the batch against a model configuration.
    /// @param config     The model configuration.
    /// @param vocabulary The vocabulary file the token ids come from (named in the error for an id out of
    ///                   range; empty when unknown).
    /// @throws deq::shape_error when the three tensors differ in shape or are empty, deq::invalid_argument
    ///         naming the position and value for a token id outside [0, vocab_size) (and @p vocabulary),
    ///         a type id outside [0, type_vocab_size), a mask value other than 0/1, or a length above
    ///         max_position_embeddings.
    void validate(bert_config const& config, std::string_view vocabulary = {}) const {
        index_t const b = batch(), l = length();
        if (b == 0 || l == 0) {
            detail::throw_shape_error(detail::concat("'input_ids' has shape [", b, ", ", l, "]: no extent may be zero"));
        }
        auto same = [&](char const* name, index_t e0, index_t e1) {
            if (e0 != b || e1 != l) {
                detail::throw_shape_error(detail::concat("'", name, "' has shape [", e0, ", ", e1, "], 'input_ids' [", b, ", ", l, "]"));
            }
        };
        same("token_type_ids", token_type_ids.extent(0), token_type_ids.extent(1));
        same("attention_mask", attention_mask.extent(0), attention_mask.extent(1));
        if (l > config.max_position_embeddings) {
            detail::throw_invalid_argument("length", l,
                                           detail::concat("must be <= max_position_embeddings = ", config.max_position_embeddings));
        }
        for (index_t i = 0; i < b; ++i)
            for (index_t j = 0; j < l; ++j) {
                std::int32_t const id = input_ids(i, j), tt = token_type_ids(i, j);
                if (id < 0 || id >= config.vocab_size) {
                    detail::throw_invalid_argument(
                        detail::concat("input_ids[", i, ", ", j, "]"), id,
                        detail::concat("must be in [0, vocab_size = ", config.vocab_size, ")",
                                       vocabulary.empty() ? std::string()
                                                          : detail::concat(" (ids of the vocabulary '", vocabulary, "' checked against the model)")));
                }
                if (tt < 0 || tt >= config.type_vocab_size) {
                    detail::throw_invalid_argument(detail::concat("token_type_ids[", i, ", ", j, "]"), tt,
                                                   detail::concat("must be in [0, type_vocab_size = ", config.type_vocab_size, ")"));
                }
                if (attention_mask(i, j) > 1) {
                    detail::throw_invalid_argument(detail::concat("attention_mask[", i, ", ", j, "]"), int(attention_mask(i, j)),
                                                   "must be 0 or 1");
                }
            }
    }
};

}  // namespace deq::bert
