/// @file
/// @brief `deq::text::wordpiece`: WordPiece sub-word splitting (greedy longest-match-first), as in
/// BERT and the Hugging Face `tokenizers` WordPiece model.
///
/// A word longer than max_input_chars_per_word characters (code points) becomes the unknown token.
/// Otherwise the longest vocabulary entry that starts the word is taken, then the longest entry
/// (with the continuing-subword prefix "##") that starts the rest, and so on; if some rest has no
/// matching entry, the whole word becomes the unknown token.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "vocab.hpp"

namespace deq::text {

/// Options of the WordPiece model.
struct wordpiece_options {
    /// The token standing for words that cannot be split (must be in the vocabulary).
    std::string unk_token = "[UNK]";
    /// Prefix of pieces that continue a word.
    std::string continuing_subword_prefix = "##";
    /// Longer words (in code points) become unk_token without being split.
    std::size_t max_input_chars_per_word = 100;
};

/// The WordPiece model over a shared vocabulary.
class wordpiece {
public:
    /// A model splitting words with the tokens of @p vocabulary.
    /// @param vocabulary The vocabulary (shared, not copied; must not be null).
    /// @param options    Unknown token, continuation prefix, word length limit.
    explicit wordpiece(std::shared_ptr<vocab const> vocabulary, wordpiece_options options = {})
        : vocab_(std::move(vocabulary)), options_(std::move(options)) {
        if (!vocab_) detail::throw_invalid_argument("vocabulary", "null", "must point to a vocabulary");
        unk_id_ = vocab_->id(options_.unk_token);
    }

    /// @return The vocabulary.
    vocab const& vocabulary() const noexcept { return *vocab_; }
    /// @return The options.
    wordpiece_options const& options() const noexcept { return options_; }
    /// @return The id of the unknown token.
    token_id unk_id() const noexcept { return unk_id_; }

    /// Appends the ids of the pieces of @p word (valid UTF-8 without whitespace) to @p ids.
    /// @param word The word.
    /// @param ids  Destination.
    void tokenize(std::string_view word, std::vector<token_id>& ids) const {
        std::vector<std::size_t> bounds;  // byte offset of every character start, plus the end
        for (std::size_t i = 0; i < word.size(); ++i) {
            if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
        }
        bounds.push_back(word.size());
        std::size_t const chars = bounds.size() - 1;
        if (chars == 0) return;
        if (chars > options_.max_input_chars_per_word) {
            ids.push_back(unk_id_);
            return;
        }
        std::size_t const first = ids.size();
        std::string candidate;
        std::size_t start = 0;
        while (start < chars) {
            std::size_t end = chars;
            bool found = false;
            while (end > start) {
                candidate.clear();
                if (start > 0) candidate += options_.continuing_subword_prefix;
                candidate.append(word.substr(bounds[start], bounds[end] - bounds[start]));
                if (auto const id = vocab_->find(candidate)) {
                    ids.push_back(*id);
                    found = true;
                    break;
                }
                --end;
            }
            if (!found) {
                ids.resize(first);
                ids.push_back(unk_id_);
                return;
            }
            start = end;
        }
    }

    /// Appends the ids of the pieces of @p word to @p ids (as tokenize()) and, for every piece, the
    /// half-open range of code-point indices of @p word it covers to @p spans (the whole word for the
    /// unknown token).
    /// @param word  The word (valid UTF-8 without whitespace).
    /// @param ids   Destination of the ids.
    /// @param spans Destination of the `{first, last + 1}` code-point ranges, one per id.
    void tokenize_spans(std::string_view word, std::vector<token_id>& ids, std::vector<std::pair<std::size_t, std::size_t>>& spans) const {
        std::vector<std::size_t> bounds;
        for (std::size_t i = 0; i < word.size(); ++i) {
            if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
        }
        bounds.push_back(word.size());
        std::size_t const chars = bounds.size() - 1;
        if (chars == 0) return;
        if (chars > options_.max_input_chars_per_word) {
            ids.push_back(unk_id_);
            spans.emplace_back(0, chars);
            return;
        }
        std::size_t const first = ids.size();
        std::size_t const first_span = spans.size();
        std::string candidate;
        std::size_t start = 0;
        while (start < chars) {
            std::size_t end = chars;
            bool found = false;
            while (end > start) {
                candidate.clear();
                if (start > 0) candidate += options_.continuing_subword_prefix;
                candidate.append(word.substr(bounds[start], bounds[end] - bounds[start]));
                if (auto const id = vocab_->find(candidate)) {
                    ids.push_back(*id);
                    spans.emplace_back(start, end);
                    found = true;
                    break;
                }
                --end;
            }
            if (!found) {
                ids.resize(first);
                spans.resize(first_span);
                ids.push_back(unk_id_);
                spans.emplace_back(0, chars);
                return;
            }
            start = end;
        }
    }

    /// The pieces of @p word as ids.
    /// @param word The word.
    /// @return The ids.
    std::vector<token_id> tokenize(std::string_view word) const {
        std::vector<token_id> ids;
        tokenize(word, ids);
        return ids;
    }

private:
    std::shared_ptr<vocab const> vocab_;
    wordpiece_options options_;
    token_id unk_id_ = 0;
};

}  // namespace deq::text
