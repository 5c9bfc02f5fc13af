// deq::eval CLOTH: the passage reader and its errors, [MASK] inputs with windows for long passages,
// option choice by the first word-piece's logit, accuracy.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include <deq/eval/cloth.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using namespace deq::eval;

namespace {

// Whitespace tokenizer: "_" -> 1035, a word of n letters -> 2000 + n, an option "x y" -> its words.
struct word_tokenizer {
    std::vector<deq::text::token_id> tokenize(std::string_view s) const {
        std::vector<deq::text::token_id> out;
        std::size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && s[i] == ' ') ++i;
            std::size_t const b = i;
            while (i < s.size() && s[i] != ' ') ++i;
            if (i == b) continue;
            out.push_back(s.substr(b, i - b) == "_" ? 1035 : static_cast<deq::text::token_id>(2000 + i - b));
        }
        return out;
    }
    int cls_id() const { return 101; }
    int sep_id() const { return 102; }
    int mask_id() const { return 103; }
};

cloth_passage passage(std::string article, std::size_t blanks) {
    cloth_passage p;
    p.file = "mem.json";
    p.article = std::move(article);
    for (std::size_t i = 0; i < blanks; ++i) {
        p.options.push_back({"a", "bb", "ccc dd", "eeee"});
        p.answers.push_back(static_cast<int>(i % 4));
    }
    return p;
}

}  // namespace

TEST_CASE("read_cloth_file and read_cloth_split: fields, and errors naming the file and field") {
    deq_test::scratch_dir dir("cloth_reader");
    std::filesystem::create_directories(dir.path() / "valid" / "high");
    std::filesystem::create_directories(dir.path() / "valid" / "middle");
    dir.write("valid/high/h1.json", R"({"article": "I _ it .", "options": [["a", "b", "c", "d"]], "answers": ["C"], "source": "s"})");
    dir.write("valid/middle/m1.json", R"({"article": "x _ _", "options": [["a", "b", "c", "d"], ["e", "f", "g", "h"]], "answers": ["A", "D"]})");
    dir.write("valid/middle/m2.json", R"({"article": "x _", "options": [["a", "b", "c"]], "answers": ["A"]})");
    dir.write("valid/middle/notes.txt", "ignored");
    auto const s = read_cloth_split(dir.path(), "valid");
    CHECK(s.files == 3);
    REQUIRE(s.passages.size() == 2);
    CHECK(s.passages[0].answers == std::vector<int>{2});
    CHECK(s.passages[0].source == "s");
    CHECK(s.passages[1].answers == std::vector<int>{0, 3});
    CHECK(s.passages[1].options[1][2] == "g");
    REQUIRE(s.skipped.size() == 1);
    CHECK(s.skipped[0].file.find("m2.json") != std::string::npos);
    CHECK(s.skipped[0].reason.find("field 'options[0]': expected 4 options, got 3") != std::string::npos);

    auto err = [&](char const* name, std::string const& text) {
        auto const f = dir.write(name, text);
        return deq_test::message_of<deq::format_error>([&] { read_cloth_file(f); });
    };
    std::string const m1 = err("letter.json", R"({"article": "_", "options": [["a", "b", "c", "d"]], "answers": ["E"]})");
    CHECK(m1.find("letter.json") != std::string::npos);
    CHECK(m1.find("field 'answers[0]'") != std::string::npos);
    CHECK(err("count.json", R"({"article": "_", "options": [["a", "b", "c", "d"]], "answers": ["A", "B"]})").find("has 2 answers but 'options' has 1") !=
          std::string::npos);
    CHECK(err("noart.json", R"({"options": [], "answers": []})").find("missing field 'article'") != std::string::npos);
    CHECK(err("type.json", R"({"article": "_", "options": [["a", 1, "c", "d"]], "answers": ["A"]})").find("options[0][1]") != std::string::npos);
    CHECK(err("empty.json", R"({"article": "x", "options": [], "answers": []})").find("no question") != std::string::npos);
    CHECK_THROWS_AS(read_cloth_split(dir.path(), "train"), deq::format_error);
}

TEST_CASE("make_cloth_inputs: [MASK] at the blanks, first word-pieces, blank count check") {
    word_tokenizer const tok;
    auto const p = passage("I _ it very _ .", 2);
    auto const in = make_cloth_inputs(tok, p);
    REQUIRE(in.windows.size() == 1);
    CHECK(in.article_tokens == 6);
    CHECK(in.windows[0].input_ids == std::vector<deq::text::token_id>{101, 2001, 103, 2002, 2004, 103, 2001, 102});
    CHECK(in.windows[0].positions == std::vector<std::size_t>{2, 5});
    CHECK(in.windows[0].questions == std::vector<std::size_t>{0, 1});
    CHECK(in.option_ids[0] == std::array<deq::text::token_id, 4>{2001, 2002, 2003, 2004});  // "ccc dd" -> first piece "ccc"
    auto const bad = passage("only one _ here", 2);
    std::string const m = deq_test::message_of<deq::format_error>([&] { make_cloth_inputs(tok, bad); });
    CHECK(m.find("mem.json") != std::string::npos);
    CHECK(m.find("has 1 blanks '_' but the passage has 2 questions") != std::string::npos);
    auto empty_opt = passage("_", 1);
    empty_opt.options[0][3] = "   ";
    CHECK(deq_test::message_of<deq::format_error>([&] { make_cloth_inputs(tok, empty_opt); }).find("options[0][3]") != std::string::npos);
}

TEST_CASE("make_cloth_inputs: long passages are split into half-overlapping windows, each blank scored once") {
    word_tokenizer const tok;
    // 30 tokens, max_length 12 -> windows of 10 starting at 0, 5, 10, 15, 20 (the last ends at 30).
    std::string art;
    std::vector<std::size_t> blanks = {0, 4, 7, 12, 29};
    for (std::size_t i = 0; i < 30; ++i) art += (std::find(blanks.begin(), blanks.end(), i) != blanks.end() ? "_ " : "w ");
    auto const p = passage(art, blanks.size());
    cloth_input_options o;
    o.max_length = 12;
    auto const in = make_cloth_inputs(tok, p, o);
    std::vector<int> seen(blanks.size(), 0);
    for (auto const& w : in.windows) {
        CHECK(w.input_ids.size() == 12);
        CHECK(w.input_ids.front() == 101);
        CHECK(w.input_ids.back() == 102);
        for (std::size_t k = 0; k < w.positions.size(); ++k) {
            CHECK(w.input_ids[w.positions[k]] == 103);
            ++seen[w.questions[k]];
        }
    }
    CHECK(seen == std::vector<int>(blanks.size(), 1));
    // Blank 7: windows [0,10) (context min(7, 2) = 2) and [5,15) (min(2, 7) = 2): tie -> the earlier window;
    // blank 12: [5,15) gives min(7, 2) = 2, [10,20) gives min(2, 7) = 2 -> [5,15).
    REQUIRE(in.windows.size() == 3);  // [0,10), [5,15), [20,30); [10,20) and [15,25) score no blank and are dropped
    CHECK(in.windows[0].questions == std::vector<std::size_t>{0, 1, 2});
    CHECK(in.windows[1].questions == std::vector<std::size_t>{3});
    CHECK(in.windows[2].questions == std::vector<std::size_t>{4});
    CHECK(in.windows[2].positions == std::vector<std::size_t>{10});
    o.max_length = 3;
    CHECK_THROWS_AS(make_cloth_inputs(tok, p, o), deq::invalid_argument);
}

TEST_CASE("cloth_choose and cloth_accuracy") {
    std::vector<float> logits(10, 0.f);
    logits[3] = 2.f;
    logits[5] = 2.f;
    logits[7] = 1.f;
    CHECK(cloth_choose(logits, {7, 5, 3, 1}) == 1);  // tie between 5 and 3: the earlier option
    CHECK(cloth_choose(logits, {1, 2, 4, 7}) == 3);
    CHECK_THROWS_AS(cloth_choose(logits, {1, 2, 10, 7}), deq::invalid_argument);
    std::vector<int> const pred{0, 1, 2, 3}, gold{0, 1, 3, 3};
    CHECK(cloth_accuracy(pred, gold) == 0.75);
    CHECK_THROWS_AS(cloth_accuracy(pred, std::vector<int>{0}), deq::shape_error);
    CHECK_THROWS_AS(cloth_accuracy(std::vector<int>{}, std::vector<int>{}), deq::invalid_argument);
}
