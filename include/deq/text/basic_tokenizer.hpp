/// @file
/// @brief `deq::text::basic_tokenizer`: BERT's text normalisation and pre-tokenisation (the step
/// before WordPiece), identical to the Hugging Face `tokenizers` BertNormalizer + BertPreTokenizer
/// that transformers' BertTokenizer uses. Needs utf8proc (link the deq::text target).
///
/// Steps, on the whole text:
/// 1. never_split tokens (the special tokens) are cut out of the raw text first, leftmost-longest
///    match, and passed through unchanged;
/// 2. clean text: U+0000, U+FFFD and control characters (Cc, Cf, Co except TAB/LF/CR) are removed,
///    whitespace (TAB, LF, CR, White_Space) becomes a space;
/// 3. CJK ideographs are surrounded by spaces;
/// 4. accent stripping (default: when lower-casing): canonical decomposition (NFD), then removal of
///    non-spacing marks (Mn);
/// 5. lower-casing (full Unicode mapping, character by character);
/// 6. split at whitespace (removed) and around every punctuation character (kept as a token).
/// See detail/unicode.hpp for the exact character classes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/detail/utf8.hpp"
#include "detail/unicode.hpp"
#include "offsets.hpp"

namespace deq::text {

/// Options of basic_tokenizer (the BertNormalizer settings of a tokenizer_config.json).
struct basic_tokenizer_options {
    /// Lower-case the text (uncased models).
    bool lower_case = true;
    /// Strip accents (NFD + drop Mn); std::nullopt follows lower_case, as in BERT.
    std::optional<bool> strip_accents = std::nullopt;
    /// Put spaces around CJK ideographs.
    bool tokenize_chinese_chars = true;
    /// Remove control characters and normalise whitespace.
    bool clean_text = true;
    /// Tokens cut out of the raw text before normalisation and kept whole (the special tokens).
    std::vector<std::string> never_split = {};
};

/// One pre-token: a word or punctuation character to be split by WordPiece, or a never_split token.
struct basic_token {
    std::string text;          ///< UTF-8 text of the token.
    bool never_split = false;  ///< True for a never_split (special) token taken verbatim from the input.
};

/// A pre-token with the origin of each of its code points (basic_tokenizer::tokenize_aligned).
struct aligned_token {
    std::string text;               ///< UTF-8 text of the token (normalised, as basic_token::text).
    bool never_split = false;       ///< True for a never_split (special) token taken verbatim from the input.
    std::vector<byte_range> chars;  ///< For every code point of text: the bytes of the original character it came from.
};

/// BERT's basic tokenizer: normalisation and whitespace/punctuation pre-tokenisation.
class basic_tokenizer {
public:
    /// A tokenizer with the given options.
    /// @param options Normalisation settings and never_split tokens (empty strings are rejected).
    explicit basic_tokenizer(basic_tokenizer_options options = {}) : options_(std::move(options)) {
        for (auto const& t : options_.never_split) {
            if (t.empty()) detail::throw_invalid_argument("never_split", "\"\"", "tokens must not be empty");
            if (detail::find_invalid_utf8(t) != std::string_view::npos) {
                detail::throw_invalid_argument("never_split", t, "tokens must be valid UTF-8");
            }
        }
    }

    /// @return The options.
    basic_tokenizer_options const& options() const noexcept { return options_; }

    /// Normalises @p text (steps 2-5, no never_split handling).
    /// @param text UTF-8 text; invalid UTF-8 throws deq::invalid_argument naming the byte offset.
    /// @return The normalised UTF-8 text.
    std::string normalize(std::string_view text) const {
        std::u32string const n = normalize_u32(decode(text, 0));
        std::string out;
        for (char32_t c : n) detail::encode_utf8(c, out);
        return out;
    }

    /// Splits @p text into pre-tokens (all steps).
    /// @param text UTF-8 text; invalid UTF-8 throws deq::invalid_argument naming the byte offset.
    /// @return The pre-tokens in order.
    std::vector<basic_token> tokenize(std::string_view text) const {
        std::vector<basic_token> out;
        tokenize(text, out);
        return out;
    }

    /// Appends the pre-tokens of @p text to @p out.
    /// @param text UTF-8 text; invalid UTF-8 throws deq::invalid_argument naming the byte offset.
    /// @param out  Destination.
    void tokenize(std::string_view text, std::vector<basic_token>& out) const {
        std::size_t segment = 0;  // start of the text not yet processed
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t const len = special_at(text, pos);
            if (len == 0) {
                ++pos;
                continue;
            }
            split_words(text.substr(segment, pos - segment), segment, out);
            out.push_back({std::string(text.substr(pos, len)), true});
            pos += len;
            segment = pos;
        }
        split_words(text.substr(segment), segment, out);
    }

    /// Splits @p text into pre-tokens exactly as tokenize() does, and records for every code point of
    /// every pre-token the byte range of the original character that produced it (a character expanded
    /// by lower-casing or canonical decomposition gives all its code points the same range; removed
    /// characters produce nothing).
    /// @param text UTF-8 text; invalid UTF-8 throws deq::invalid_argument naming the byte offset.
    /// @return The pre-tokens in order, with their character origins.
    std::vector<aligned_token> tokenize_aligned(std::string_view text) const {
        std::vector<aligned_token> out;
        std::size_t segment = 0;
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t const len = special_at(text, pos);
            if (len == 0) {
                ++pos;
                continue;
            }
            split_words_aligned(text.substr(segment, pos - segment), segment, out);
            aligned_token t{std::string(text.substr(pos, len)), true, {}};
            std::size_t p = pos;
            while (p < pos + len) {
                std::size_t const at = p;
                detail::decode_utf8(text, p);
                t.chars.push_back({at, p});
            }
            out.push_back(std::move(t));
            pos += len;
            segment = pos;
        }
        split_words_aligned(text.substr(segment), segment, out);
        return out;
    }

private:
    // A normalised code point and the bytes of the original character it came from.
    struct aligned_char {
        char32_t c;
        byte_range from;
    };

    // normalize_u32 with the origin of every output code point; produces the same code points.
    std::vector<aligned_char> normalize_aligned(std::string_view text, std::size_t offset) const {
        std::vector<aligned_char> a;
        a.reserve(text.size());
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t const at = pos;
            char32_t c = detail::decode_utf8(text, pos);
            if (c == detail::utf8_invalid) {
                detail::throw_invalid_argument("text", detail::concat("<", text.size() + offset, " bytes>"),
                                               detail::concat("must be valid UTF-8 (invalid byte at offset ", offset + at, ")"));
            }
            byte_range const from{offset + at, offset + pos};
            if (options_.clean_text) {
                if (c == 0 || c == 0xFFFD || detail::is_bert_control(c)) continue;
                if (detail::is_bert_whitespace(c)) c = U' ';
            }
            if (options_.tokenize_chinese_chars && detail::is_cjk_ideograph(c)) {
                a.push_back({U' ', from});
                a.push_back({c, from});
                a.push_back({U' ', from});
            } else {
                a.push_back({c, from});
            }
        }
        if (options_.strip_accents.value_or(options_.lower_case)) {
            // NFD of every character (append_nfd on one character), then the canonical ordering of
            // every run of non-starters across characters, as append_nfd does on the whole text.
            std::vector<aligned_char> d;
            d.reserve(a.size());
            std::u32string one, buf;
            for (auto const& x : a) {
                one.assign(1, x.c);
                buf.clear();
                detail::append_nfd(one, buf);
                for (char32_t c : buf) d.push_back({c, x.from});
            }
            std::size_t i = 0;
            while (i < d.size()) {
                if (detail::combining_class(d[i].c) == 0) {
                    ++i;
                    continue;
                }
                std::size_t j = i;
                while (j < d.size() && detail::combining_class(d[j].c) != 0) ++j;
                if (j - i > 1) {
                    std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                                     [](aligned_char const& x, aligned_char const& y) { return detail::combining_class(x.c) < detail::combining_class(y.c); });
                }
                i = j;
            }
            a.clear();
            for (auto const& x : d) {
                if (!detail::is_nonspacing_mark(x.c)) a.push_back(x);
            }
        }
        if (options_.lower_case) {
            std::vector<aligned_char> l;
            l.reserve(a.size());
            std::u32string buf;
            for (auto const& x : a) {
                buf.clear();
                detail::append_lowercase(x.c, buf);
                for (char32_t c : buf) l.push_back({c, x.from});
            }
            a = std::move(l);
        }
        return a;
    }

    void split_words_aligned(std::string_view text, std::size_t offset, std::vector<aligned_token>& out) const {
        if (text.empty()) return;
        std::vector<aligned_char> const n = normalize_aligned(text, offset);
        aligned_token word;
        auto flush = [&] {
            if (!word.text.empty()) out.push_back(std::move(word));
            word = aligned_token{};
        };
        for (auto const& x : n) {
            if (detail::is_bert_whitespace(x.c)) {
                flush();
            } else if (detail::is_bert_punctuation(x.c)) {
                flush();
                detail::encode_utf8(x.c, word.text);
                word.chars.push_back(x.from);
                flush();
            } else {
                detail::encode_utf8(x.c, word.text);
                word.chars.push_back(x.from);
            }
        }
        flush();
    }

    // Length of the longest never_split token starting at byte @p pos (0 when none). Matches only
    // start at character boundaries (tokens are valid UTF-8, so a match cannot start mid-character).
    std::size_t special_at(std::string_view text, std::size_t pos) const {
        std::size_t best = 0;
        for (auto const& t : options_.never_split) {
            if (t.size() > best && text.substr(pos, t.size()) == t) best = t.size();
        }
        return best;
    }

    static std::u32string decode(std::string_view text, std::size_t offset) {
        std::u32string out;
        out.reserve(text.size());
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t const at = pos;
            char32_t const c = detail::decode_utf8(text, pos);
            if (c == detail::utf8_invalid) {
                detail::throw_invalid_argument("text", detail::concat("<", text.size() + offset, " bytes>"),
                                               detail::concat("must be valid UTF-8 (invalid byte at offset ", offset + at, ")"));
            }
            out += c;
        }
        return out;
    }

    std::u32string normalize_u32(std::u32string const& in) const {
        std::u32string a;
        a.reserve(in.size());
        for (char32_t c : in) {
            if (options_.clean_text) {
                if (c == 0 || c == 0xFFFD || detail::is_bert_control(c)) continue;
                if (detail::is_bert_whitespace(c)) c = U' ';
            }
            if (options_.tokenize_chinese_chars && detail::is_cjk_ideograph(c)) {
                a += U' ';
                a += c;
                a += U' ';
            } else {
                a += c;
            }
        }
        if (options_.strip_accents.value_or(options_.lower_case)) {
            std::u32string d;
            d.reserve(a.size());
            detail::append_nfd(a, d);
            a.clear();
            for (char32_t c : d) {
                if (!detail::is_nonspacing_mark(c)) a += c;
            }
        }
        if (options_.lower_case) {
            std::u32string l;
            l.reserve(a.size());
            for (char32_t c : a) detail::append_lowercase(c, l);
            a = std::move(l);
        }
        return a;
    }

    void split_words(std::string_view text, std::size_t offset, std::vector<basic_token>& out) const {
        if (text.empty()) return;
        std::u32string const n = normalize_u32(decode(text, offset));
        std::string word;
        auto flush = [&] {
            if (!word.empty()) out.push_back({std::move(word), false});
            word.clear();
        };
        for (char32_t c : n) {
            if (detail::is_bert_whitespace(c)) {
                flush();
            } else if (detail::is_bert_punctuation(c)) {
                flush();
                detail::encode_utf8(c, word);
                flush();
            } else {
                detail::encode_utf8(c, word);
            }
        }
        flush();
    }

    basic_tokenizer_options options_;
};

}  // namespace deq::text
