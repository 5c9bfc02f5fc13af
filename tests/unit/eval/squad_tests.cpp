// deq::eval SQuAD: the official evaluate-v1.1.py metric (expected values printed by the official
// normalize_answer / f1_score / exact_match_score in Python 3.11 on the same strings), the reader's
// errors, feature windows (the `tokenizers` overflow rule of run_qa.py) and n-best span decoding.
#include <doctest/doctest.h>

#include <string>
#include <unordered_map>
#include <vector>

#include <deq/eval/squad.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using namespace deq::eval;

namespace {

// A whitespace tokenizer: every word is one token, id = 1000 + word length, with byte offsets.
struct word_tokenizer {
    std::vector<deq::text::offset_token> tokenize_with_offsets(std::string_view s) const {
        std::vector<deq::text::offset_token> out;
        std::size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && s[i] == ' ') ++i;
            std::size_t const b = i;
            while (i < s.size() && s[i] != ' ') ++i;
            if (i > b) out.push_back({static_cast<deq::text::token_id>(1000 + i - b), {b, i}});
        }
        return out;
    }
    int cls_id() const { return 101; }
    int sep_id() const { return 102; }
};

squad_example example(std::string question, std::string context) {
    squad_example e;
    e.id = "q";
    e.question = std::move(question);
    e.context = std::move(context);
    e.answers = {"x"};
    return e;
}

}  // namespace

TEST_CASE("squad_normalize_answer matches the official script") {
    CHECK(squad_normalize_answer("The Denver Broncos!") == "denver broncos");
    CHECK(squad_normalize_answer("  an  Apple, a day ") == "apple day");
    CHECK(squad_normalize_answer("theater anthem") == "theater anthem");
    CHECK(squad_normalize_answer("Th\xC3\xA9\xC3\xA2tre\xC2\xA0the\xE2\x80\x89\xC3\x89lan") == "th\xC3\xA9\xC3\xA2tre \xC3\xA9lan");
    CHECK(squad_normalize_answer("a_the the_a") == "athe thea");
    CHECK(squad_normalize_answer("THE") == "");
    CHECK(squad_normalize_answer("\xC4\xB0stanbul") == "i\xCC\x87stanbul");
    CHECK(squad_normalize_answer("x-ray (the) 'a'") == "xray");
    CHECK(squad_normalize_answer("\xC3\xA9the the2 the\xCC\x81") == "\xC3\xA9the the2 \xCC\x81");  // U+0301 is not a word character
    CHECK(squad_normalize_answer("") == "");
    CHECK_THROWS_AS(squad_normalize_answer("\xC3"), deq::invalid_argument);
}

TEST_CASE("squad_exact_match and squad_f1 match the official script") {
    CHECK(squad_exact_match("the cat sat on the mat", "a cat sat") == 0.0);
    CHECK(squad_f1("the cat sat on the mat", "a cat sat") == doctest::Approx(0.6666666666666666).epsilon(1e-15));
    CHECK(squad_exact_match("Denver Broncos", "Broncos Denver") == 0.0);
    CHECK(squad_f1("Denver Broncos", "Broncos Denver") == 1.0);
    CHECK(squad_f1("red red blue", "red blue blue") == doctest::Approx(0.6666666666666666).epsilon(1e-15));
    CHECK(squad_exact_match("the", "a") == 1.0);  // both normalise to "", which is an exact match with F1 0
    CHECK(squad_f1("the", "a") == 0.0);
    CHECK(squad_f1("", "x") == 0.0);
    CHECK(squad_exact_match("Carolina Panthers", "The Carolina Panthers.") == 1.0);
    CHECK(squad_f1("Carolina Panthers", "The Carolina Panthers.") == 1.0);
}

TEST_CASE("squad_evaluate takes the maximum over gold answers and counts unanswered questions") {
    std::vector<squad_example> ex(3);
    ex[0].id = "a";
    ex[0].answers = {"Denver Broncos", "the Broncos"};
    ex[1].id = "b";
    ex[1].answers = {"red blue blue"};
    ex[2].id = "c";
    ex[2].answers = {"x"};
    std::unordered_map<std::string, std::string> const pred{{"a", "Broncos"}, {"b", "red red blue"}, {"zzz", "ignored"}};
    auto const s = squad_evaluate(ex, pred);
    CHECK(s.questions == 3);
    CHECK(s.unanswered == 1);
    CHECK(s.exact_match == doctest::Approx(100.0 / 3));                        // "Broncos" == "the Broncos"
    CHECK(s.f1 == doctest::Approx(100.0 * (1.0 + 2.0 / 3) / 3).epsilon(1e-12));
    CHECK_THROWS_AS(squad_evaluate(std::vector<squad_example>{}, pred), deq::invalid_argument);
}

TEST_CASE("read_squad: the reader and its errors name the file and field") {
    deq_test::scratch_dir dir("squad_reader");
    auto const good = dir.write("good.json", R"({"version": "1.1", "data": [
        {"title": "T0", "paragraphs": [{"context": "Denver won.", "qas": [
            {"id": "q1", "question": "Who won?", "answers": [{"text": "Denver", "answer_start": 0}, {"text": "Denver", "answer_start": 0}]}]}]},
        {"title": "T1", "paragraphs": [{"context": "abc", "qas": []}, {"context": "xyz", "qas": [
            {"id": "q2", "question": "What?", "answers": [{"text": "xyz", "answer_start": 0}]}]}]}]})");
    auto const d = read_squad(good);
    CHECK(d.version == "1.1");
    CHECK(d.articles == 2);
    REQUIRE(d.examples.size() == 2);
    CHECK(d.examples[0].answers.size() == 2);
    CHECK(d.examples[1].title == "T1");
    CHECK(d.examples[1].article == 1);
    CHECK(d.examples[1].paragraph == 1);
    CHECK(squad_articles(d, 1, 2).size() == 1);
    CHECK(squad_articles(d, 1, 2)[0].id == "q2");
    CHECK_THROWS_AS(squad_articles(d, 0, 3), deq::invalid_argument);
    CHECK_THROWS_AS(squad_articles(d, 1, 1), deq::invalid_argument);

    auto err = [&](char const* name, std::string const& text) {
        auto const f = dir.write(name, text);
        return deq_test::message_of<deq::format_error>([&] { read_squad(f); });
    };
    std::string const head = R"({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [)";
    CHECK(err("nodata.json", R"({"version": "1.1"})").find("missing field 'data'") != std::string::npos);
    std::string const m1 = err("noans2.json", head + R"({"id": "q", "question": "?", "answers": []}]}]}]})");
    CHECK(m1.find("noans2.json") != std::string::npos);
    CHECK(m1.find("data[0].paragraphs[0].qas[0].answers") != std::string::npos);
    std::string const m2 = err("badtype.json", head + R"({"id": "q", "question": 3, "answers": [{"text": "a", "answer_start": 0}]}]}]}]})");
    CHECK(m2.find("qas[0].question") != std::string::npos);
    CHECK(m2.find("expected string") != std::string::npos);
    std::string const m3 = err("badstart.json", head + R"({"id": "q", "question": "?", "answers": [{"text": "a", "answer_start": -1}]}]}]}]})");
    CHECK(m3.find("answers[0].answer_start") != std::string::npos);
    std::string const m4 = err("dup.json", head + R"({"id": "q", "question": "?", "answers": [{"text": "a", "answer_start": 0}]},
                                                  {"id": "q", "question": "?", "answers": [{"text": "a", "answer_start": 0}]}]}]}]})");
    CHECK(m4.find("duplicate question id 'q'") != std::string::npos);
    CHECK(m4.find("qas[1].id") != std::string::npos);
    CHECK(err("syntax.json", "{\"data\": [}").find("syntax.json:1:") != std::string::npos);
    CHECK(deq_test::message_of<deq::format_error>([&] { read_squad(dir.path() / "missing.json"); }).find("missing.json") != std::string::npos);
}

TEST_CASE("make_squad_features: windows overlap by doc_stride and stop at the first that reaches the end") {
    word_tokenizer const tok;
    std::string ctx;
    for (int i = 0; i < 20; ++i) ctx += std::string(static_cast<std::size_t>(1 + i % 3), 'w') + " ";
    auto const e = example("q qq", ctx);
    squad_feature_options o;
    o.max_length = 15;  // window = 15 - 2 - 3 = 10 tokens, step 10 - 4 = 6
    o.doc_stride = 4;
    auto const f = make_squad_features(tok, e, 7, o);
    REQUIRE(f.size() == 3);  // [0, 10), [6, 16), [12, 20)
    auto const all = tok.tokenize_with_offsets(ctx);
    std::size_t const starts[] = {0, 6, 12}, stops[] = {10, 16, 20};
    for (std::size_t w = 0; w < 3; ++w) {
        CAPTURE(w);
        CHECK(f[w].example == 7);
        CHECK(f[w].window == w);
        CHECK(f[w].context_begin == 4);
        CHECK(f[w].context_end == 4 + stops[w] - starts[w]);
        CHECK(f[w].input_ids.size() == f[w].context_end + 1);
        CHECK(f[w].input_ids.size() <= 15);
        CHECK(f[w].input_ids.front() == 101);
        CHECK(f[w].input_ids[1] == 1001);
        CHECK(f[w].input_ids[2] == 1002);
        CHECK(f[w].input_ids[3] == 102);
        CHECK(f[w].input_ids.back() == 102);
        CHECK(f[w].token_type_ids[3] == 0);
        CHECK(f[w].token_type_ids[4] == 1);
        CHECK(f[w].token_type_ids.back() == 1);
        CHECK(f[w].offsets[f[w].context_begin] == all[starts[w]].range);
        CHECK(f[w].offsets[f[w].context_end - 1] == all[stops[w] - 1].range);
        CHECK_FALSE(f[w].in_context(3));
        CHECK_FALSE(f[w].in_context(f[w].context_end));
    }
    // A context that fits gives one feature; the question is cut to max_query_length.
    o.max_length = 384;
    o.doc_stride = 128;
    o.max_query_length = 1;
    auto const one = make_squad_features(tok, e, 0, o);
    REQUIRE(one.size() == 1);
    CHECK(one[0].query_truncated == 1);
    CHECK(one[0].context_begin == 3);
    CHECK(one[0].context_end == 23);
    // No room for a window longer than the stride.
    o.max_length = 9;  // 1 question token + 3 special tokens + a window of 5 = the stride
    o.doc_stride = 5;
    CHECK(deq_test::message_of<deq::invalid_argument>([&] { make_squad_features(tok, e, 0, o); }).find("max_length") != std::string::npos);
}

TEST_CASE("decode_squad: n-best candidates across windows, length limit, the 'empty' fallback") {
    word_tokenizer const tok;
    std::string const ctx = "aa bbb c dddd ee";
    auto const e = example("q", ctx);
    auto const f = make_squad_features(tok, e, 0);
    REQUIRE(f.size() == 1);  // [CLS] q [SEP] aa bbb c dddd ee [SEP]: context tokens at 3..7
    std::vector<float> start(9, 0.f), end(9, 0.f);
    start[0] = 9;  // [CLS]: outside the context, never a candidate
    end[0] = 9;
    start[4] = 4;  // bbb
    end[6] = 2;    // dddd
    end[3] = 5;    // aa: before the start, invalid with start 4
    squad_feature_logits const fl{&f[0], start, end};
    auto p = decode_squad(ctx, std::span<squad_feature_logits const>(&fl, 1));
    CHECK(p.has_candidate);
    CHECK(p.text == "bbb c dddd");
    CHECK(p.score == 6.0f);
    CHECK(p.range == deq::text::byte_range{3, 13});
    squad_decode_options o;
    o.max_answer_length = 2;  // bbb..dddd is 3 tokens: the best is now aa..aa (0 + 5), not bbb (4 + 0)
    p = decode_squad(ctx, std::span<squad_feature_logits const>(&fl, 1), o);
    CHECK(p.text == "aa");
    CHECK(p.score == 5.0f);
    o.n_best = 1;  // only [CLS] as start and end: no candidate
    p = decode_squad(ctx, std::span<squad_feature_logits const>(&fl, 1), o);
    CHECK_FALSE(p.has_candidate);
    CHECK(p.text == "empty");
    // Two windows: the better score wins whichever window it is in.
    squad_feature f2 = f[0];
    f2.window = 1;
    std::vector<float> s2(9, 0.f), e2(9, 0.f);
    s2[7] = 10;
    e2[7] = 10;
    std::vector<squad_feature_logits> two{{&f[0], start, end}, {&f2, s2, e2}};
    p = decode_squad(ctx, two);
    CHECK(p.text == "ee");
    CHECK(p.window == 1);
    std::vector<float> shortv(3, 0.f);
    squad_feature_logits const bad{&f[0], shortv, end};
    CHECK_THROWS_AS(decode_squad(ctx, std::span<squad_feature_logits const>(&bad, 1)), deq::shape_error);
    CHECK_THROWS_AS(decode_squad(ctx, std::span<squad_feature_logits const>{}), deq::invalid_argument);
}
