// Tests of deq/mask/precision_map.hpp: the three-level map combining a pruning and a refinement rule.
#include <doctest/doctest.h>

#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/precision_map.hpp>

#include <vector>

#include "select_test_support.hpp"
#include "support/test_util.hpp"

using deq::mask_rule;
using deq::max_granularity;
using level = deq::precision_map::level;

TEST_CASE_TEMPLATE("precision_map: levels from a pruning and a refinement rule", S, float, double) {
    // One row, five keys, key 4 padded. P̂ = (e^4, e^2, 1, 1) / 63.99 = [0.853, 0.115, 0.016, 0.016] on the
    // real keys and 0 on the padded key 4.
    auto s = deq_select_test::scores<S>(1, 1, 1, 5, {4, 2, 0, 0, 9});
    auto pad = deq_select_test::padding(1, 5, {1, 1, 1, 1, 0});
    // prune: keep P̂ > 0.01 (keys 0..3); refine: logits > 0.5 · max over the row (max 9 is the padded key:
    // threshold 4.5 -> only key 4, which is not kept) ...
    auto m = deq::make_precision_map(deq::exec::serial{}, s.cview(), pad.get(), mask_rule::probability(0.01),
                                     mask_rule::adaptive_maximum(0.5, max_granularity::row));
    CHECK(m.at(0, 0, 0, 0) == level::low);
    CHECK(m.at(0, 0, 0, 3) == level::low);
    CHECK(m.at(0, 0, 0, 4) == level::pruned);  // refined by the rule but not kept
    CHECK(m.count(level::high) == 0);
    // ... with α = 0.2 the threshold is 1.8: keys 0 and 1 are refined, key 4 stays pruned.
    m = deq::make_precision_map(deq::exec::threads{2}, s.cview(), pad.get(), mask_rule::probability(0.01),
                                mask_rule::adaptive_maximum(0.2, max_granularity::row));
    std::vector<level> const expected{level::high, level::high, level::low, level::low, level::pruned};
    for (deq::index_t j = 0; j < 5; ++j) CHECK(m.at(0, 0, 0, j) == expected[static_cast<std::size_t>(j)]);
    CHECK(m.count(level::pruned) == 1);
    CHECK(m.count(level::low) == 2);
    CHECK(m.count(level::high) == 2);
    // Sanger-only and DEQ-only special cases.
    auto sanger = deq::make_precision_map(deq::exec::serial{}, s.cview(), pad.get(), mask_rule::probability(0.1),
                                          mask_rule::keep_all());
    CHECK(sanger.refined == sanger.kept);
    CHECK(sanger.count(level::low) == 0);
    CHECK(sanger.count(level::high) == 2);  // keys 0 and 1
    auto deq_only = deq::make_precision_map(deq::exec::serial{}, s.cview(), pad.get(), mask_rule::keep_all(),
                                            mask_rule::top_k(1));
    CHECK(deq_only.count(level::pruned) == 0);
    CHECK(deq_only.count(level::high) == 1);
    CHECK(deq_only.at(0, 0, 0, 0) == level::high);
    auto none = deq::make_precision_map(deq::exec::serial{}, s.cview(), pad.get(), mask_rule::keep_none(),
                                        mask_rule::keep_all());
    CHECK(none.count(level::pruned) == 5);
    CHECK(none.refined.count() == 0);
}

TEST_CASE_TEMPLATE("precision_map: refined is the intersection on random scores", S, float, double) {
    deq::tensor<S, 4> s({2, 3, 7, 50});
    deq_test::fill_normal(s, 5, 0.0, 2.5);
    auto pad = deq_select_test::padding(2, 50, std::vector<int>(100, 1));
    for (deq::index_t j = 40; j < 50; ++j) pad.flags(1, j) = 0;
    auto const prune = mask_rule::probability(0.002);
    auto const refine = mask_rule::adaptive_maximum(0.8, max_granularity::sequence, true);
    auto const m = deq::make_precision_map(deq::exec::threads{3}, s.cview(), pad.get(), prune, refine);
    auto const kept = deq::select_elements(deq::exec::serial{}, s.cview(), pad.get(), prune);
    auto const refined_alone = deq::select_elements(deq::exec::serial{}, s.cview(), pad.get(), refine);
    CHECK(m.kept == kept);
    CHECK(m.kept.batch() == 2);
    CHECK(m.refined.cols() == 50);
    deq::index_t high = 0, low = 0;
    bool ok = true;
    for (deq::index_t b = 0; b < 2; ++b)
        for (deq::index_t h = 0; h < 3; ++h)
            for (deq::index_t i = 0; i < 7; ++i)
                for (deq::index_t j = 0; j < 50; ++j) {
                    bool const k = kept.test(b, h, i, j), r = refined_alone.test(b, h, i, j);
                    level const want = !k ? level::pruned : (r ? level::high : level::low);
                    ok = ok && m.at(b, h, i, j) == want;
                    high += want == level::high;
                    low += want == level::low;
                }
    CHECK(ok);
    CHECK(high > 0);
    CHECK(low > 0);
    CHECK(m.count(level::high) == high);
    CHECK(m.count(level::low) == low);
    CHECK(m.count(level::pruned) == 2 * 3 * 7 * 50 - high - low);
    // Non-const score views are accepted too.
    auto const m2 = deq::make_precision_map(deq::exec::serial{}, s.view(), pad.get(), prune, refine);
    CHECK(m2.refined == m.refined);
    CHECK_THROWS_AS(deq::make_precision_map(deq::exec::serial{}, s.cview(), pad.get(), prune, mask_rule{mask_rule::kind::top_k}),
                    deq::invalid_argument);
}
