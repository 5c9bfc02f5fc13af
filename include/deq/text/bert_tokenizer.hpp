/// @file
/// @brief `deq::text::bert_tokenizer`: the complete BERT tokenizer (basic tokenizer + WordPiece +
/// special tokens, truncation and padding), producing the same input_ids / token_type_ids /
/// attention_mask as transformers' BertTokenizer (the `tokenizers`-backed one, transformers >= 5;
/// BertTokenizerFast before). Needs utf8proc (link the deq::text target).
///
/// Sequences: `[CLS] A [SEP]` (type ids 0) and `[CLS] A [SEP] B [SEP]` (A and its [SEP] type 0,
/// B and its [SEP] type 1). Truncation (to max_length, special tokens included) follows the
/// `tokenizers` rules: `longest_first` gives both sequences min(len, max(own share)) so that the
/// shorter keeps all its tokens if it can, otherwise the budget is split in half (the longer
/// sequence gets the odd token); `only_first` / `only_second` cut one sequence and fail when it is
/// too short. Padding to max_length appends [PAD] with type id 0 and attention mask 0. An empty
/// second text still makes a pair, as in transformers' batched call (the one run_glue.py makes);
/// its single-example call `tokenizer(a, "")` drops an empty second text.
///
/// transformers' slow tokenizer (BertTokenizerLegacy in transformers 5, BertTokenizer before) gives
/// the same ids on all the GLUE dev rows, but differs on rare input: it lower-cases a word-final
/// capital sigma to 'ς', removes unassigned code points (the fast one, and deq, keep them, so the
/// word becomes [UNK]) and uses Python's Unicode tables instead of those described in
/// detail/hf_unicode_compat.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/json.hpp"
#include "basic_tokenizer.hpp"
#include "offsets.hpp"
#include "vocab.hpp"
#include "wordpiece.hpp"

namespace deq::text {

/// How encode() shortens inputs longer than max_length.
enum class truncation_strategy {
    none,           ///< Never truncate.
    longest_first,  ///< Take tokens from the longer sequence first (transformers' `truncation=True`).
    only_first,     ///< Truncate the first sequence only.
    only_second     ///< Truncate the second sequence only.
};

/// How encode() lengthens inputs shorter than max_length.
enum class padding_strategy {
    none,       ///< No padding.
    max_length  ///< Pad to max_length (transformers' `padding="max_length"`).
};

/// Options of bert_tokenizer::encode.
struct encode_options {
    /// Length limit for truncation and target length for padding, special tokens included.
    std::size_t max_length = 512;
    /// Truncation rule.
    truncation_strategy truncation = truncation_strategy::longest_first;
    /// Padding rule.
    padding_strategy padding = padding_strategy::none;
    /// Add [CLS] / [SEP].
    bool add_special_tokens = true;
};

/// The model inputs of one example.
struct encoding {
    std::vector<token_id> input_ids;          ///< Token ids.
    std::vector<token_id> token_type_ids;     ///< Segment ids (0 for the first sequence, 1 for the second).
    std::vector<std::uint8_t> attention_mask; ///< 1 for real tokens, 0 for padding.
    std::size_t truncated = 0;                ///< Number of tokens removed by truncation.

    /// @return The number of real (non-padding) tokens.
    std::size_t length() const noexcept { return static_cast<std::size_t>(std::count(attention_mask.begin(), attention_mask.end(), 1)); }
};

/// Settings of a BERT tokenizer (the fields of tokenizer_config.json).
struct bert_tokenizer_options {
    /// Lower-case the text (uncased models).
    bool lower_case = true;
    /// Strip accents; std::nullopt follows lower_case.
    std::optional<bool> strip_accents = std::nullopt;
    /// Put spaces around CJK ideographs.
    bool tokenize_chinese_chars = true;
    /// Remove control characters and normalise whitespace.
    bool clean_text = true;
    std::string unk_token = "[UNK]";   ///< Unknown token.
    std::string sep_token = "[SEP]";   ///< Separator token.
    std::string pad_token = "[PAD]";   ///< Padding token.
    std::string cls_token = "[CLS]";   ///< Classification token.
    std::string mask_token = "[MASK]"; ///< Mask token (masked language modelling).
    /// Longer words (code points) become the unknown token.
    std::size_t max_input_chars_per_word = 100;
    /// Prefix of continuation pieces.
    std::string continuing_subword_prefix = "##";
};

/// The BERT WordPiece tokenizer.
class bert_tokenizer {
public:
    /// A tokenizer over @p vocabulary.
    /// @param vocabulary The vocabulary; the five special tokens must be in it (deq::invalid_argument
    ///                   naming the token otherwise).
    /// @param options    Normalisation and special-token settings.
    explicit bert_tokenizer(vocab vocabulary, bert_tokenizer_options options = {})
        : vocab_(std::make_shared<vocab const>(std::move(vocabulary))),
          options_(std::move(options)),
          basic_(basic_tokenizer_options{options_.lower_case, options_.strip_accents, options_.tokenize_chinese_chars, options_.clean_text,
                                         {options_.unk_token, options_.sep_token, options_.pad_token, options_.cls_token, options_.mask_token}}),
          wordpiece_(vocab_, wordpiece_options{options_.unk_token, options_.continuing_subword_prefix, options_.max_input_chars_per_word}) {
        cls_ = vocab_->id(options_.cls_token);
        sep_ = vocab_->id(options_.sep_token);
        pad_ = vocab_->id(options_.pad_token);
        vocab_->id(options_.mask_token);
    }

    /// Reads the settings of a Hugging Face model folder's tokenizer: tokenizer_config.json when present
    /// (do_lower_case, strip_accents, tokenize_chinese_chars and the special tokens, given as strings or
    /// as {"content": ...} objects; other fields are ignored), the defaults otherwise.
    /// @param dir The model folder.
    /// @return The options; deq::format_error naming the file (and field) when malformed.
    static bert_tokenizer_options load_options(std::filesystem::path const& dir) {
        bert_tokenizer_options o;
        std::filesystem::path const cfg_path = dir / "tokenizer_config.json";
        std::error_code ec;
        if (!std::filesystem::exists(cfg_path, ec)) return o;
        io::json const cfg = io::json::parse_file(cfg_path);
        if (!cfg.is_object()) cfg.fail(detail::concat("expected an object, got ", cfg.type_name()));
        o.lower_case = cfg.value<bool>("do_lower_case", true);
        if (io::json const* s = cfg.find("strip_accents"); s != nullptr && !s->is_null()) o.strip_accents = s->as_bool();
        o.tokenize_chinese_chars = cfg.value<bool>("tokenize_chinese_chars", true);
        auto special = [&](char const* key, std::string& out) {
            io::json const* v = cfg.find(key);
            if (v == nullptr || v->is_null()) return;
            out = v->is_object() ? v->at("content").as_string() : v->as_string();
        };
        special("unk_token", o.unk_token);
        special("sep_token", o.sep_token);
        special("pad_token", o.pad_token);
        special("cls_token", o.cls_token);
        special("mask_token", o.mask_token);
        return o;
    }

    /// Loads the tokenizer of a Hugging Face model folder: vocab.txt, and the settings of
    /// tokenizer_config.json when present (see load_options()).
    /// @param dir The model folder.
    /// @return The tokenizer; deq::format_error naming the file (and field) when malformed.
    static bert_tokenizer from_directory(std::filesystem::path const& dir) {
        bert_tokenizer_options o = load_options(dir);
        return bert_tokenizer(vocab::load(dir / "vocab.txt"), std::move(o));
    }

    /// @return The vocabulary.
    vocab const& vocabulary() const noexcept { return *vocab_; }
    /// @return The options.
    bert_tokenizer_options const& options() const noexcept { return options_; }
    /// @return The id of [CLS].
    token_id cls_id() const noexcept { return cls_; }
    /// @return The id of [SEP].
    token_id sep_id() const noexcept { return sep_; }
    /// @return The id of [PAD].
    token_id pad_id() const noexcept { return pad_; }
    /// @return The id of [UNK].
    token_id unk_id() const noexcept { return wordpiece_.unk_id(); }

    /// The WordPiece ids of @p text, without added special tokens (special tokens typed in the
    /// text are recognised and kept).
    /// @param text UTF-8 text (invalid UTF-8 throws deq::invalid_argument).
    /// @return The ids.
    std::vector<token_id> tokenize(std::string_view text) const {
        std::vector<token_id> ids;
        for (auto const& t : basic_.tokenize(text)) {
            if (t.never_split) {
                ids.push_back(vocab_->id(t.text));
            } else {
                wordpiece_.tokenize(t.text, ids);
            }
        }
        return ids;
    }

    /// The WordPiece ids of @p text (the same ids as tokenize()) with the byte range of the original
    /// text each token came from: transformers' `offset_mapping` of the fast tokenizer, in bytes (see
    /// deq/text/offsets.hpp). A special token typed in the text maps to its own bytes; an unknown word
    /// to the whole word.
    /// @param text UTF-8 text (invalid UTF-8 throws deq::invalid_argument).
    /// @return The tokens with their offsets.
    std::vector<offset_token> tokenize_with_offsets(std::string_view text) const {
        std::vector<offset_token> out;
        std::vector<token_id> ids;
        std::vector<std::pair<std::size_t, std::size_t>> spans;
        for (auto const& t : basic_.tokenize_aligned(text)) {
            if (t.never_split) {
                out.push_back({vocab_->id(t.text), {t.chars.front().begin, t.chars.back().end}});
                continue;
            }
            ids.clear();
            spans.clear();
            wordpiece_.tokenize_spans(t.text, ids, spans);
            for (std::size_t i = 0; i < ids.size(); ++i) {
                byte_range r{t.chars[spans[i].first].begin, t.chars[spans[i].first].end};
                for (std::size_t c = spans[i].first; c < spans[i].second; ++c) {
                    r.begin = std::min(r.begin, t.chars[c].begin);
                    r.end = std::max(r.end, t.chars[c].end);
                }
                out.push_back({ids[i], r});
            }
        }
        return out;
    }

    /// @return The id of [MASK].
    token_id mask_id() const { return vocab_->id(options_.mask_token); }

    /// The WordPiece tokens of @p text as strings (see tokenize()).
    /// @param text UTF-8 text.
    /// @return The tokens, e.g. {"un", "##aff", "##able"}.
    std::vector<std::string> tokenize_to_strings(std::string_view text) const {
        std::vector<std::string> out;
        for (token_id id : tokenize(text)) out.push_back(vocab_->token(id));
        return out;
    }

    /// Encodes one sequence: [CLS] A [SEP], truncated and padded as @p options say.
    /// @param text    UTF-8 text.
    /// @param options Length, truncation, padding, special tokens.
    /// @return The encoding.
    encoding encode(std::string_view text, encode_options const& options = {}) const {
        return assemble(tokenize(text), std::nullopt, options);
    }

    /// Encodes a sequence pair: [CLS] A [SEP] B [SEP].
    /// @param first   UTF-8 text of A.
    /// @param second  UTF-8 text of B.
    /// @param options Length, truncation, padding, special tokens.
    /// @return The encoding.
    encoding encode(std::string_view first, std::string_view second, encode_options const& options = {}) const {
        return assemble(tokenize(first), tokenize(second), options);
    }

private:
    encoding assemble(std::vector<token_id> a, std::optional<std::vector<token_id>> b, encode_options const& o) const {
        std::size_t const added = o.add_special_tokens ? (b ? 3 : 2) : 0;
        encoding e;
        if (o.truncation != truncation_strategy::none) {
            if (o.max_length < added) {
                detail::throw_invalid_argument("max_length", o.max_length,
                                               detail::concat("must be at least ", added, " (the special tokens of a ", b ? "pair" : "single sequence", ")"));
            }
            e.truncated = truncate(a, b, o.max_length - added, o.truncation);
        }
        std::size_t const total = a.size() + (b ? b->size() : 0) + added;
        e.input_ids.reserve(std::max(total, o.max_length));
        auto push = [&](token_id id, token_id type) {
            e.input_ids.push_back(id);
            e.token_type_ids.push_back(type);
            e.attention_mask.push_back(1);
        };
        if (o.add_special_tokens) push(cls_, 0);
        for (token_id id : a) push(id, 0);
        if (o.add_special_tokens) push(sep_, 0);
        if (b) {
            for (token_id id : *b) push(id, 1);
            if (o.add_special_tokens) push(sep_, 1);
        }
        if (o.padding == padding_strategy::max_length) {
            while (e.input_ids.size() < o.max_length) {
                e.input_ids.push_back(pad_);
                e.token_type_ids.push_back(0);
                e.attention_mask.push_back(0);
            }
        }
        return e;
    }

    // Shortens a (and b) to at most @p budget tokens in total; returns the number removed.
    static std::size_t truncate(std::vector<token_id>& a, std::optional<std::vector<token_id>>& b, std::size_t budget,
                                truncation_strategy strategy) {
        std::size_t const na = a.size();
        std::size_t const nb = b ? b->size() : 0;
        if (na + nb <= budget) return 0;
        std::size_t const to_remove = na + nb - budget;
        if (!b) {
            if (strategy == truncation_strategy::only_second) {
                detail::throw_invalid_argument("truncation", "only_second", "needs a second sequence");
            }
            a.resize(budget);
            return to_remove;
        }
        switch (strategy) {
            case truncation_strategy::longest_first: {
                // The `tokenizers` rule (utils/truncation.rs): with n1 <= n2, the shorter keeps n1
                // tokens and the longer max(n1, budget - n1); if that is still too long, the budget is
                // split in half and the longer sequence gets the odd token.
                bool const swap = na > nb;
                std::size_t n1 = swap ? nb : na;
                std::size_t n2 = swap ? na : nb;
                n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
                if (n1 + n2 > budget) {
                    n1 = budget / 2;
                    n2 = n1 + budget % 2;
                }
                if (swap) std::swap(n1, n2);
                a.resize(std::min(a.size(), n1));
                b->resize(std::min(b->size(), n2));
                break;
            }
            case truncation_strategy::only_first:
            case truncation_strategy::only_second: {
                bool const first = strategy == truncation_strategy::only_first;
                std::vector<token_id>& target = first ? a : *b;
                if (target.size() <= to_remove) {
                    detail::throw_invalid_argument("truncation", first ? "only_first" : "only_second",
                                                   detail::concat("cannot remove ", to_remove, " tokens from a sequence of ", target.size()));
                }
                target.resize(target.size() - to_remove);
                break;
            }
            case truncation_strategy::none: break;
        }
        return na + nb - a.size() - b->size();
    }

    std::shared_ptr<vocab const> vocab_;
    bert_tokenizer_options options_;
    basic_tokenizer basic_;
    wordpiece wordpiece_;
    token_id cls_ = 0;
    token_id sep_ = 0;
    token_id pad_ = 0;
};

}  // namespace deq::text
