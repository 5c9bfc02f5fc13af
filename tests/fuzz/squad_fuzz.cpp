// Fuzz target: SQuAD v1.1 (deq::eval::parse_squad, squad_articles, make_squad_features,
// decode_squad, the EM / F1 metric and squad_evaluate) with a small fixed vocabulary.
// Input: a SQuAD JSON document. Properties: parsing returns a dataset or throws deq::format_error;
// features are [CLS] question [SEP] window [SEP] within max_length and their windows cover the
// context; decoded answers are substrings of the context at their offsets; EM and F1 are in [0, 1]
// and the scores in [0, 100].
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <deq/eval/squad.hpp>
#include <deq/io/json.hpp>

#include "fuzz_support.hpp"
#include "fuzz_text.hpp"

namespace {

using deq::eval::squad_example;
using deq::eval::squad_feature;

void check_features(std::vector<squad_feature> const& features, squad_example const& e, deq::eval::squad_feature_options const& o) {
    auto const& t = deq_fuzz::small_tokenizer();
    DEQ_FUZZ_CHECK(!features.empty());
    std::size_t const context_tokens = t.tokenize_with_offsets(e.context).size();
    for (std::size_t w = 0; w < features.size(); ++w) {
        squad_feature const& f = features[w];
        std::size_t const n = f.input_ids.size();
        DEQ_FUZZ_CHECK(f.window == w && n <= o.max_length && f.token_type_ids.size() == n && f.offsets.size() == n);
        DEQ_FUZZ_CHECK(f.input_ids.front() == t.cls_id() && f.input_ids.back() == t.sep_id());
        DEQ_FUZZ_CHECK(f.context_begin >= 2 && f.context_begin <= f.context_end && f.context_end + 1 == n);
        DEQ_FUZZ_CHECK(f.input_ids[f.context_begin - 1] == t.sep_id());
        for (std::size_t i = 0; i < n; ++i) {
            DEQ_FUZZ_CHECK(f.token_type_ids[i] == (i < f.context_begin ? 0 : 1));
            DEQ_FUZZ_CHECK(f.offsets[i].end <= e.context.size() && f.offsets[i].begin <= f.offsets[i].end);
        }
    }
    // The first window starts at the first context token, the last one ends at the last.
    DEQ_FUZZ_CHECK(features.back().context_end - features.back().context_begin <= context_tokens);
    if (context_tokens > 0 && features.size() == 1) {
        DEQ_FUZZ_CHECK(features[0].context_end - features[0].context_begin == context_tokens);
    }
}

// Deterministic logits: a different pattern per feature, with ties.
std::vector<float> fake_logits(std::size_t n, std::size_t salt) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 7 + salt * 3) % 5) - 2.0f;
    return v;
}

std::string predict(squad_example const& e, std::vector<squad_feature> const& features) {
    std::vector<std::vector<float>> starts, ends;
    std::vector<deq::eval::squad_feature_logits> logits;
    for (std::size_t k = 0; k < features.size(); ++k) {
        starts.push_back(fake_logits(features[k].input_ids.size(), k));
        ends.push_back(fake_logits(features[k].input_ids.size(), k + 1));
    }
    for (std::size_t k = 0; k < features.size(); ++k) logits.push_back({&features[k], starts[k], ends[k]});
    deq::eval::squad_prediction const p = deq::eval::decode_squad(e.context, logits, {5, 4});
    if (p.has_candidate) {
        DEQ_FUZZ_CHECK(p.range.begin <= p.range.end && p.range.end <= e.context.size());
        DEQ_FUZZ_CHECK(p.text == e.context.substr(p.range.begin, p.range.size()) && p.window < features.size());
    } else {
        DEQ_FUZZ_CHECK(p.text == "empty");
    }
    // Logits of the wrong length are a shape error.
    std::vector<deq::eval::squad_feature_logits> bad = logits;
    bad[0].end = bad[0].end.first(bad[0].end.size() - 1);
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::decode_squad(e.context, bad); }));
    return p.text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const doc = deq_fuzz::attempt([&] { return deq::io::json::parse(deq_fuzz::as_text(data, size), "dev-v1.1.json"); });
    if (!doc) return 0;
    auto const d = deq_fuzz::attempt([&] { return deq::eval::parse_squad(*doc); });
    if (!d) return 0;
    DEQ_FUZZ_CHECK(!d->examples.empty() && d->source == "dev-v1.1.json");
    for (squad_example const& e : d->examples) {
        DEQ_FUZZ_CHECK(!e.answers.empty() && e.answers.size() == e.answer_starts.size() && e.article < d->articles);
    }
    DEQ_FUZZ_CHECK(deq::eval::squad_articles(*d, 0, d->articles).size() == d->examples.size());
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::squad_articles(*d, 0, d->articles + 1); }));
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::squad_articles(*d, d->articles, d->articles); }));

    // Small lengths, varied with the input (doc_stride 0 included), and the defaults below.
    std::size_t const h = size * 2654435761u;
    deq::eval::squad_feature_options const small{8 + h % 29, (h >> 5) % 9, (h >> 9) % 10};
    std::unordered_map<std::string, std::string> predictions;
    std::size_t const count = std::min<std::size_t>(d->examples.size(), 4);
    for (std::size_t i = 0; i < count; ++i) {
        squad_example const& e = d->examples[i];
        auto const features = deq_fuzz::attempt([&] { return deq::eval::make_squad_features(deq_fuzz::small_tokenizer(), e, i, small); });
        if (features) {
            check_features(*features, e, small);
            std::string const answer = predict(e, *features);
            predictions[e.id] = answer;
            for (std::string const& gold : e.answers) {
                auto const em = deq_fuzz::attempt([&] { return deq::eval::squad_exact_match(answer, gold); });
                auto const f1 = deq_fuzz::attempt([&] { return deq::eval::squad_f1(answer, gold); });
                DEQ_FUZZ_CHECK(em.has_value() == f1.has_value());
                if (em) {
                    DEQ_FUZZ_CHECK((*em == 0.0 || *em == 1.0) && *f1 >= 0.0 && *f1 <= 1.0);
                    if (*em == 1.0) DEQ_FUZZ_CHECK(*f1 == 1.0 || deq::eval::squad_normalize_answer(gold).empty());
                }
                if (auto const self = deq_fuzz::attempt([&] { return deq::eval::squad_exact_match(gold, gold); })) DEQ_FUZZ_CHECK(*self == 1.0);
                (void)deq_fuzz::attempt([&] { return deq::eval::squad_normalize_answer(gold); });
            }
        }
    }
    auto const features = deq_fuzz::attempt([&] { return deq::eval::make_squad_features(deq_fuzz::small_tokenizer(), d->examples[0], 0); });
    if (features) check_features(*features, d->examples[0], {});
    auto const score = deq_fuzz::attempt([&] { return deq::eval::squad_evaluate(d->examples, predictions); });
    if (score) {
        DEQ_FUZZ_CHECK(score->questions == d->examples.size() && score->unanswered <= score->questions);
        DEQ_FUZZ_CHECK(score->exact_match >= 0 && score->exact_match <= 100 && score->f1 >= 0 && score->f1 <= 100);
    }
    return 0;
}
