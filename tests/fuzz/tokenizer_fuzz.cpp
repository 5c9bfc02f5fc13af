// Fuzz target: deq::text::bert_tokenizer (normalisation, WordPiece, offsets, encode of single
// sequences and pairs, from_directory with a tokenizer_config.json).
//
// Input: 4 option bytes, then fields separated by \x1f:
//   byte 0: bit 0 lower_case, bits 1-2 strip_accents (0/3 unset, 1 false, 2 true), bit 3
//           tokenize_chinese_chars, bit 4 clean_text, bit 5 fuzzed vocabulary (first field),
//           bit 6 load with from_directory (tokenizer_config.json = last field);
//   byte 1: encode options: bits 0-1 truncation (none, longest_first, only_first, only_second),
//           bit 2 pad to max_length, bit 3 no special tokens;
//   byte 2: max_length (0..255); byte 3: max_input_chars_per_word (0..255);
//   fields: [vocab.txt if bit 5] text_a \x1f text_b [\x1f tokenizer_config.json if bit 6].
// Properties: the three tokenize functions agree, ids index the vocabulary, offsets lie inside the
// text; encode() gives equal-length id / type / mask vectors within max_length (when truncating), the
// special tokens in place and a truncation count that adds up.
#include <cstdint>
#include <optional>
#include <string>

#include <deq/text/bert_tokenizer.hpp>

#include "fuzz_support.hpp"
#include "fuzz_text.hpp"

namespace {

using deq::text::bert_tokenizer;
using deq::text::encode_options;
using deq::text::encoding;
using deq::text::token_id;

void check_encoding(bert_tokenizer const& t, encoding const& e, encode_options const& o, std::size_t real_tokens, bool pair) {
    DEQ_FUZZ_CHECK(e.input_ids.size() == e.token_type_ids.size() && e.input_ids.size() == e.attention_mask.size());
    std::size_t const added = o.add_special_tokens ? (pair ? 3 : 2) : 0;
    std::size_t const length = e.length();
    DEQ_FUZZ_CHECK(length + e.truncated == real_tokens + added);
    if (o.truncation != deq::text::truncation_strategy::none) {
        DEQ_FUZZ_CHECK(length <= o.max_length);
    } else {
        DEQ_FUZZ_CHECK(e.truncated == 0);
    }
    if (o.padding == deq::text::padding_strategy::max_length) {
        DEQ_FUZZ_CHECK(e.input_ids.size() == std::max(length, o.max_length));
    } else {
        DEQ_FUZZ_CHECK(e.input_ids.size() == length);
    }
    for (std::size_t i = 0; i < e.input_ids.size(); ++i) {
        DEQ_FUZZ_CHECK(e.input_ids[i] >= 0 && static_cast<std::size_t>(e.input_ids[i]) < t.vocabulary().size());
        DEQ_FUZZ_CHECK(e.attention_mask[i] == (i < length ? 1 : 0));
        if (i >= length) DEQ_FUZZ_CHECK(e.input_ids[i] == t.pad_id() && e.token_type_ids[i] == 0);
        DEQ_FUZZ_CHECK(e.token_type_ids[i] == 0 || (pair && e.token_type_ids[i] == 1));
    }
    if (o.add_special_tokens) {
        DEQ_FUZZ_CHECK(e.input_ids.front() == t.cls_id() && e.input_ids[length - 1] == t.sep_id());
    }
}

void exercise(bert_tokenizer const& t, std::string_view a, std::string_view b, encode_options const& o) {
    auto const ids_a = deq_fuzz::check_tokenize(t, a);
    auto const ids_b = deq_fuzz::check_tokenize(t, b);
    if (auto const e = deq_fuzz::attempt([&] { return t.encode(a, o); })) check_encoding(t, *e, o, ids_a.size(), false);
    if (auto const e = deq_fuzz::attempt([&] { return t.encode(a, b, o); })) check_encoding(t, *e, o, ids_a.size() + ids_b.size(), true);
    DEQ_FUZZ_CHECK(t.mask_id() >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    deq_fuzz::byte_reader in(data, size);
    std::uint8_t const flags = in.byte();
    std::uint8_t const enc = in.byte();
    encode_options o;
    o.truncation = static_cast<deq::text::truncation_strategy>(enc & 3u);
    o.padding = (enc & 4u) != 0 ? deq::text::padding_strategy::max_length : deq::text::padding_strategy::none;
    o.add_special_tokens = (enc & 8u) == 0;
    o.max_length = in.byte();
    deq::text::bert_tokenizer_options options;
    options.lower_case = (flags & 1u) != 0;
    switch ((flags >> 1) & 3u) {
        case 1: options.strip_accents = false; break;
        case 2: options.strip_accents = true; break;
        default: break;
    }
    options.tokenize_chinese_chars = (flags & 8u) != 0;
    options.clean_text = (flags & 16u) != 0;
    options.max_input_chars_per_word = in.byte();
    bool const fuzzed_vocab = (flags & 32u) != 0;
    bool const from_directory = (flags & 64u) != 0;

    auto const fields = deq_fuzz::split_fields(in.rest(), (fuzzed_vocab ? 3 : 2) + (from_directory ? 1 : 0));
    std::size_t next = 0;
    auto field = [&]() -> std::string_view { return next < fields.size() ? fields[next++] : std::string_view{}; };
    std::string_view const vocab_text = fuzzed_vocab ? field() : std::string_view(deq_fuzz::small_vocab_text());
    std::string_view const a = field();
    std::string_view const b = field();

    if (from_directory) {
        std::string_view const config = field();
        deq_fuzz::write_scratch_file("model/vocab.txt", vocab_text);
        auto const cfg = deq_fuzz::write_scratch_file("model/tokenizer_config.json", config);
        auto const t = deq_fuzz::attempt([&] { return bert_tokenizer::from_directory(cfg.parent_path()); });
        if (t) exercise(*t, a, b, o);
        return 0;
    }
    if (!fuzzed_vocab && options.lower_case && !options.strip_accents && options.tokenize_chinese_chars && options.clean_text &&
        options.max_input_chars_per_word == 100) {
        exercise(deq_fuzz::small_tokenizer(), a, b, o);
        return 0;
    }
    auto const vocab = deq_fuzz::attempt([&] { return deq::text::vocab::parse(vocab_text, "vocab.txt"); });
    if (!vocab) return 0;
    auto const t = deq_fuzz::attempt([&] { return bert_tokenizer(*vocab, options); });
    if (t) exercise(*t, a, b, o);
    return 0;
}
