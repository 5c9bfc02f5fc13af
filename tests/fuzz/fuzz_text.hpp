// Text fixtures of the fuzz targets that tokenize (tokenizer, squad, cloth): a small fixed BERT
// vocabulary and checks of tokenizer results. Needs deq::text (utf8proc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <deq/text/bert_tokenizer.hpp>
#include <deq/text/vocab.hpp>

#include "fuzz_support.hpp"

namespace deq_fuzz {

/// A small vocab.txt: the special tokens, some words and pieces, punctuation, digits, the letters
/// (as words and as ## pieces, so that most lower-case text tokenizes to known pieces) and a few
/// non-ASCII characters.
inline std::string const& small_vocab_text() {
    static std::string const text = [] {
        std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
        for (char const* w : {"the", "a", "an", "of", "is", "what", "who", "capital", "city", "paris", "france", "play", "##ing",
                              "##ed", "un", "##aff", "##able", "_", ".", ",", "?", "!", "'", "\"", "(", ")", "-", "\xc3\xa9",
                              "##\xc3\xa9", "\xe6\x97\xa5", "\xe6\x9c\xac", "\xce\xb1", "##\xce\xb1"}) {
            v += w;
            v += '\n';
        }
        for (char c = '0'; c <= '9'; ++c) v += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
        for (char c = 'b'; c <= 'z'; ++c) v += std::string(1, c) + "\n";
        for (char c = 'a'; c <= 'z'; ++c) v += "##" + std::string(1, c) + "\n";
        return v;
    }();
    return text;
}

/// The BERT tokenizer (default options) over small_vocab_text().
inline deq::text::bert_tokenizer const& small_tokenizer() {
    static deq::text::bert_tokenizer const tokenizer(deq::text::vocab::parse(small_vocab_text(), "small-vocab.txt"));
    return tokenizer;
}

/// Checks tokenize() / tokenize_with_offsets() / tokenize_to_strings() of @p text against each other
/// (or that all three reject it). @return The ids (empty when rejected).
inline std::vector<deq::text::token_id> check_tokenize(deq::text::bert_tokenizer const& t, std::string_view text) {
    auto const ids = attempt([&] { return t.tokenize(text); });
    auto const with_offsets = attempt([&] { return t.tokenize_with_offsets(text); });
    auto const strings = attempt([&] { return t.tokenize_to_strings(text); });
    DEQ_FUZZ_CHECK(ids.has_value() == with_offsets.has_value() && ids.has_value() == strings.has_value());
    if (!ids) return {};
    DEQ_FUZZ_CHECK(ids->size() == with_offsets->size() && ids->size() == strings->size());
    for (std::size_t i = 0; i < ids->size(); ++i) {
        deq::text::token_id const id = (*ids)[i];
        DEQ_FUZZ_CHECK(id >= 0 && static_cast<std::size_t>(id) < t.vocabulary().size());
        DEQ_FUZZ_CHECK((*with_offsets)[i].id == id);
        DEQ_FUZZ_CHECK((*strings)[i] == t.vocabulary().token(id));
        deq::text::byte_range const r = (*with_offsets)[i].range;
        DEQ_FUZZ_CHECK_MSG(r.begin < r.end && r.end <= text.size(),
                           "token " + std::to_string(i) + " has offsets [" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ")");
    }
    return *ids;
}

}  // namespace deq_fuzz
