// Fuzz target: CLOTH (deq::eval::parse_cloth, read_cloth_split, make_cloth_inputs, cloth_choose,
// cloth_accuracy) with a small fixed vocabulary.
// Input: one CLOTH passage JSON file. Properties: parsing returns a passage or throws
// deq::format_error; read_cloth_split of a folder holding the file reads it or lists it as skipped;
// for several window lengths the inputs are [CLS] tokens [SEP] within max_length, every question is
// scored in exactly one window at a [MASK]; choices are options 0..3 and accuracy is in [0, 1].
#include <cstdint>
#include <string>
#include <vector>

#include <deq/eval/cloth.hpp>
#include <deq/io/json.hpp>

#include "fuzz_support.hpp"
#include "fuzz_text.hpp"

namespace {

using deq::eval::cloth_passage;

void check_inputs(cloth_passage const& p, std::size_t max_length) {
    auto const& t = deq_fuzz::small_tokenizer();
    deq::eval::cloth_input_options o;
    o.max_length = max_length;
    auto const in = deq_fuzz::attempt([&] { return deq::eval::make_cloth_inputs(t, p, o); });
    if (!in) return;
    DEQ_FUZZ_CHECK(max_length >= 4 && in->option_ids.size() == p.options.size());
    std::vector<int> seen(p.answers.size(), 0);
    std::vector<float> logits(t.vocabulary().size());
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7);
    std::vector<int> predictions(p.answers.size(), -1);
    for (auto const& w : in->windows) {
        DEQ_FUZZ_CHECK(w.input_ids.size() <= max_length && w.input_ids.size() >= 2);
        DEQ_FUZZ_CHECK(w.input_ids.front() == t.cls_id() && w.input_ids.back() == t.sep_id());
        DEQ_FUZZ_CHECK(!w.positions.empty() && w.positions.size() == w.questions.size());
        for (std::size_t k = 0; k < w.positions.size(); ++k) {
            DEQ_FUZZ_CHECK(w.positions[k] > 0 && w.positions[k] + 1 < w.input_ids.size());
            DEQ_FUZZ_CHECK(w.input_ids[w.positions[k]] == t.mask_id());
            std::size_t const q = w.questions[k];
            DEQ_FUZZ_CHECK(q < seen.size());
            ++seen[q];
            int const choice = deq::eval::cloth_choose(logits, in->option_ids[q]);
            DEQ_FUZZ_CHECK(choice >= 0 && choice < 4);
            predictions[q] = choice;
        }
    }
    for (int s : seen) DEQ_FUZZ_CHECK(s == 1);
    double const acc = deq::eval::cloth_accuracy(predictions, p.answers);
    DEQ_FUZZ_CHECK(acc >= 0.0 && acc <= 1.0);
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::cloth_choose({}, in->option_ids[0]); }));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text = deq_fuzz::as_text(data, size);
    auto const doc = deq_fuzz::attempt([&] { return deq::io::json::parse(text, "high0.json"); });
    auto const p = doc ? deq_fuzz::attempt([&] { return deq::eval::parse_cloth(*doc); }) : std::nullopt;

    // The same bytes as the only file of a split folder.
    auto const file = deq_fuzz::write_scratch_file("cloth/valid/high/high0.json", text);
    auto const split = deq::eval::read_cloth_split(file.parent_path().parent_path().parent_path(), "valid");
    DEQ_FUZZ_CHECK(split.files == 1 && split.passages.size() + split.skipped.size() == 1);
    DEQ_FUZZ_CHECK(split.passages.size() == (p ? 1u : 0u));
    if (!p) return 0;

    DEQ_FUZZ_CHECK(!p->answers.empty() && p->answers.size() == p->options.size());
    for (int a : p->answers) DEQ_FUZZ_CHECK(a >= 0 && a < 4);
    DEQ_FUZZ_CHECK(split.passages[0].article == p->article && split.passages[0].answers == p->answers);
    for (std::size_t max_length : {std::size_t{3}, std::size_t{4}, std::size_t{7}, std::size_t{16}, std::size_t{512}}) {
        check_inputs(*p, max_length);
    }
    deq::eval::cloth_input_options bad_blank;
    bad_blank.blank = "two words";
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::make_cloth_inputs(deq_fuzz::small_tokenizer(), *p, bad_blank); }));
    return 0;
}
