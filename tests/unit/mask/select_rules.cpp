// Tests of deq/mask/select.hpp on hand-made score matrices: every rule, padding, granularities,
// strict vs non-strict comparisons at exact ties, top-k and cumulative-probability edge cases, errors.
#include <doctest/doctest.h>

#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/select.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "select_test_support.hpp"

using deq::mask_rule;
using deq::max_granularity;
using deq_select_test::bits;
using deq_select_test::message_of;
using deq_select_test::padding;
using deq_select_test::scores;
using V = std::vector<int>;

namespace {

template <class S>
V run(deq::tensor<S, 4> const& s, deq::key_padding pad, mask_rule const& rule) {
    auto a = deq::select_elements(deq::exec::serial{}, s.cview(), pad, rule);
    auto b = deq::select_elements(deq::exec::threads{3}, s.cview(), pad, rule);
    CHECK(a == b);
    return bits(a);
}

V complement(V v) {
    for (int& x : v) x = 1 - x;
    return v;
}

}  // namespace

TEST_CASE_TEMPLATE("select: all and none", S, float, double) {
    auto s = scores<S>(1, 1, 2, 70, std::vector<double>(140, 0.5));
    auto all = deq::select_elements(deq::exec::serial{}, s.cview(), {}, mask_rule::keep_all());
    CHECK(all.count() == 140);
    CHECK(all.words()[1] == (std::uint64_t{1} << 6) - 1);  // tail bits beyond column 70 stay zero
    CHECK(deq::select_elements(deq::exec::serial{}, s.cview(), {}, mask_rule::keep_none()).count() == 0);
    // Every bit of `out` is overwritten.
    deq::bit_mask out(1, 1, 2, 70, true);
    deq::select_elements(deq::exec::threads{2}, s.cview(), {}, mask_rule::keep_none(), out.view());
    CHECK(out.count() == 0);
}

TEST_CASE_TEMPLATE("select: probability threshold is strict, its inverse is not", S, float, double) {
    // Four equal scores: P̂ = 0.25 exactly.
    auto s = scores<S>(1, 1, 1, 4, {1.5, 1.5, 1.5, 1.5});
    CHECK(run(s, {}, mask_rule::probability(0.25)) == V{0, 0, 0, 0});
    CHECK(run(s, {}, mask_rule::inverse_probability(0.25)) == V{1, 1, 1, 1});
    CHECK(run(s, {}, mask_rule::probability(0.24)) == V{1, 1, 1, 1});
    CHECK(run(s, {}, mask_rule::inverse_probability(0.24)) == V{0, 0, 0, 0});
    // θ = 1 selects nothing (the reference's θ = 20 ablation), θ = 0 everything with P̂ > 0.
    CHECK(run(s, {}, mask_rule::probability(1)) == V{0, 0, 0, 0});
    CHECK(run(s, {}, mask_rule::probability(0)) == V{1, 1, 1, 1});
    // A dominant score: P̂ = [1/(1+e^-10), e^-10/(1+e^-10), ~0, ~0].
    auto t = scores<S>(1, 1, 1, 4, {10, 0, -200, -300});
    CHECK(run(t, {}, mask_rule::probability(0.001)) == V{1, 0, 0, 0});
    CHECK(run(t, {}, mask_rule::probability(4e-5)) == V{1, 1, 0, 0});
    CHECK(run(t, {}, mask_rule::probability(5e-5)) == V{1, 0, 0, 0});
    CHECK(run(t, {}, mask_rule::inverse_probability(0.001)) == V{0, 1, 1, 1});
}

TEST_CASE_TEMPLATE("select: probability rules with padded keys", S, float, double) {
    // Sample 0: key 3 padded -> P̂ = 1/3 on keys 0..2 and 0 on key 3 (exp(-10000) underflows).
    // Sample 1: every key padded -> the -10000 cancels and P̂ = 1/4 everywhere (reference behaviour).
    auto s = scores<S>(2, 1, 1, 4, {0, 0, 0, 0, 2, 2, 2, 2});
    auto pad = padding(2, 4, {1, 1, 1, 0, 0, 0, 0, 0});
    CHECK(run(s, pad.get(), mask_rule::probability(0.3)) == V{1, 1, 1, 0, 0, 0, 0, 0});
    CHECK(run(s, pad.get(), mask_rule::probability(0.2)) == V{1, 1, 1, 0, 1, 1, 1, 1});
    CHECK(run(s, pad.get(), mask_rule::inverse_probability(0.3)) == V{0, 0, 0, 1, 1, 1, 1, 1});
    // Without padding the same scores give 1/4 in sample 0.
    CHECK(run(s, {}, mask_rule::probability(0.3)) == V{0, 0, 0, 0, 0, 0, 0, 0});
    // A padded key with a huge raw score still gets (almost) no probability.
    auto u = scores<S>(1, 1, 1, 3, {0, 1, 5000});
    auto pad1 = padding(1, 3, {1, 1, 0});
    CHECK(run(u, pad1.get(), mask_rule::probability(0.25)) == V{1, 1, 0});
}

TEST_CASE_TEMPLATE("select: adaptive maximum granularities on logits", S, float, double) {
    // [B=1, H=2, Lq=2, Lk=2]; α = 0.5.
    //   head 0: [4, 2], [1, 0.5]       head 1: [8, 3], [2, 1]
    auto s = scores<S>(1, 2, 2, 2, {4, 2, 1, 0.5, 8, 3, 2, 1});
    // row: thresholds 2, 0.5, 4, 1 -> the first entry of every row (x == threshold is not selected)
    V const row{1, 0, 1, 0, 1, 0, 1, 0};
    // head: thresholds 2 (head 0) and 4 (head 1)
    V const head{1, 0, 0, 0, 1, 0, 0, 0};
    // sequence: threshold 4 for every head (4 > 4 is false)
    V const seq{0, 0, 0, 0, 1, 0, 0, 0};
    CHECK(run(s, {}, mask_rule::adaptive_maximum(0.5, max_granularity::row)) == row);
    CHECK(run(s, {}, mask_rule::adaptive_maximum(0.5, max_granularity::head)) == head);
    CHECK(run(s, {}, mask_rule::adaptive_maximum(0.5, max_granularity::sequence)) == seq);
    // The inverse rules (X <= α·m) are the exact complements, ties included.
    CHECK(run(s, {}, mask_rule::inverse_adaptive_maximum(0.5, max_granularity::row, true)) == complement(row));
    CHECK(run(s, {}, mask_rule::inverse_adaptive_maximum(0.5, max_granularity::head, true)) == complement(head));
    CHECK(run(s, {}, mask_rule::inverse_adaptive_maximum(0.5, max_granularity::sequence, true)) == complement(seq));
    // α = 1 selects nothing (X > max is impossible); α = 0 selects every positive logit.
    CHECK(run(s, {}, mask_rule::adaptive_maximum(1, max_granularity::row)) == V{0, 0, 0, 0, 0, 0, 0, 0});
    CHECK(run(s, {}, mask_rule::adaptive_maximum(0, max_granularity::row)) == V{1, 1, 1, 1, 1, 1, 1, 1});
}

TEST_CASE_TEMPLATE("select: adaptive maximum maxima are per sample for the sequence granularity", S, float, double) {
    // Two samples: the maximum of sample 1 (100) must not affect sample 0.
    auto s = scores<S>(2, 1, 1, 3, {4, 3, 1, 100, 60, 40});
    CHECK(run(s, {}, mask_rule::adaptive_maximum(0.5, max_granularity::sequence)) == V{1, 1, 0, 1, 1, 0});
    // Negative logits: m = -2, α·m = -1, nothing exceeds it; the inverse takes everything.
    auto n = scores<S>(1, 1, 1, 3, {-2, -3, -4});
    CHECK(run(n, {}, mask_rule::adaptive_maximum(0.5, max_granularity::row)) == V{0, 0, 0});
    CHECK(run(n, {}, mask_rule::inverse_adaptive_maximum(0.5, max_granularity::row, true)) == V{1, 1, 1});
}

TEST_CASE_TEMPLATE("select: adaptive maximum on logits ignores padding, on probabilities does not", S, float, double) {
    auto s = scores<S>(1, 1, 1, 3, {1, 2, 10});
    auto pad = padding(1, 3, {1, 1, 0});
    // Logits: the padded key's raw score 10 sets the maximum (threshold 5) and is itself selected.
    CHECK(run(s, pad.get(), mask_rule::adaptive_maximum(0.5, max_granularity::row, true)) == V{0, 0, 1});
    // Probabilities: P̂ = [0.269, 0.731, 0] -> threshold 0.366.
    CHECK(run(s, pad.get(), mask_rule::adaptive_maximum(0.5, max_granularity::row, false)) == V{0, 1, 0});
    CHECK(run(s, pad.get(), mask_rule::inverse_adaptive_maximum(0.5, max_granularity::row, false)) == V{1, 0, 1});
}

TEST_CASE_TEMPLATE("select: adaptive maximum granularities on probabilities", S, float, double) {
    // [B=1, H=2, Lq=2, Lk=2]
    //   head 0: row [0, 0] -> P̂ [0.5, 0.5]; row [0, -100] -> P̂ [1, ~4e-44]
    //   head 1: rows [0, 0] -> P̂ [0.5, 0.5]
    auto s = scores<S>(1, 2, 2, 2, {0, 0, 0, -100, 0, 0, 0, 0});
    double const alpha = 0.6;
    CHECK(run(s, {}, mask_rule::adaptive_maximum(alpha, max_granularity::row, false)) == V{1, 1, 1, 0, 1, 1, 1, 1});
    CHECK(run(s, {}, mask_rule::adaptive_maximum(alpha, max_granularity::head, false)) == V{0, 0, 1, 0, 1, 1, 1, 1});
    CHECK(run(s, {}, mask_rule::adaptive_maximum(alpha, max_granularity::sequence, false)) == V{0, 0, 1, 0, 0, 0, 0, 0});
    // Exact tie: α = 0.5, m = 1 (head 0), P̂ = 0.5 is not selected; the inverse selects it.
    CHECK(run(s, {}, mask_rule::adaptive_maximum(0.5, max_granularity::head, false)) == V{0, 0, 1, 0, 1, 1, 1, 1});
    CHECK(run(s, {}, mask_rule::inverse_adaptive_maximum(0.5, max_granularity::head, false)) == V{1, 1, 0, 1, 0, 0, 0, 0});
}

TEST_CASE_TEMPLATE("select: top-k ranks real keys, ties to the lower index", S, float, double) {
    auto s = scores<S>(1, 1, 1, 5, {1, 3, 3, 2, 50});
    auto pad = padding(1, 5, {1, 1, 1, 1, 0});
    CHECK(run(s, pad.get(), mask_rule::top_k(1)) == V{0, 1, 0, 0, 0});
    CHECK(run(s, pad.get(), mask_rule::top_k(2)) == V{0, 1, 1, 0, 0});
    CHECK(run(s, pad.get(), mask_rule::top_k(3)) == V{0, 1, 1, 1, 0});
    CHECK(run(s, pad.get(), mask_rule::top_k(4)) == V{1, 1, 1, 1, 0});
    CHECK(run(s, pad.get(), mask_rule::top_k(100)) == V{1, 1, 1, 1, 0});  // k >= real keys: all real keys
    // Without padding key 4 is the largest.
    CHECK(run(s, {}, mask_rule::top_k(1)) == V{0, 0, 0, 0, 1});
    // All equal: the lowest indices win.
    auto e = scores<S>(1, 1, 2, 4, {7, 7, 7, 7, 0, 0, 0, 0});
    CHECK(run(e, {}, mask_rule::top_k(2)) == V{1, 1, 0, 0, 1, 1, 0, 0});
    // Padded keys are never selected even when they hold all the probability mass, and a row without
    // real keys selects nothing.
    auto p = scores<S>(2, 1, 1, 3, {0, 20000, 20000, 1, 2, 3});
    auto pad2 = padding(2, 3, {1, 0, 0, 0, 0, 0});
    CHECK(run(p, pad2.get(), mask_rule::top_k(2)) == V{1, 0, 0, 0, 0, 0});
}

TEST_CASE_TEMPLATE("select: cumulative probability keeps the shortest prefix with enough mass", S, float, double) {
    // Eight equal keys: P̂ = 0.125 exactly, so prefix sums are exact.
    auto e = scores<S>(1, 1, 1, 8, std::vector<double>(8, 0.25));
    CHECK(run(e, {}, mask_rule::cumulative_probability(0.375)) == V{1, 1, 1, 0, 0, 0, 0, 0});  // 3 · 0.125 >= 0.375
    CHECK(run(e, {}, mask_rule::cumulative_probability(0.376)) == V{1, 1, 1, 1, 0, 0, 0, 0});
    CHECK(run(e, {}, mask_rule::cumulative_probability(0.1)) == V{1, 0, 0, 0, 0, 0, 0, 0});
    CHECK(run(e, {}, mask_rule::cumulative_probability(1)) == V{1, 1, 1, 1, 1, 1, 1, 1});
    // Distinct values: P̂ ≈ [0.644, 0.087, 0.237, 0.032]; order 0, 2, 1, 3.
    auto s = scores<S>(1, 1, 1, 4, {3, 1, 2, 0});
    CHECK(run(s, {}, mask_rule::cumulative_probability(0.6)) == V{1, 0, 0, 0});
    CHECK(run(s, {}, mask_rule::cumulative_probability(0.7)) == V{1, 0, 1, 0});
    CHECK(run(s, {}, mask_rule::cumulative_probability(0.9)) == V{1, 1, 1, 0});
    CHECK(run(s, {}, mask_rule::cumulative_probability(0.99)) == V{1, 1, 1, 1});
    // Padded keys are skipped; if the real keys cannot reach p, all real keys are selected.
    auto p = scores<S>(1, 1, 1, 3, {0, 20000, 20000});
    auto pad = padding(1, 3, {1, 0, 0});
    CHECK(run(p, pad.get(), mask_rule::cumulative_probability(0.5)) == V{1, 0, 0});
    auto q = scores<S>(1, 1, 1, 4, {0, 0, 0, 0});
    auto pad4 = padding(1, 4, {1, 1, 0, 1});
    CHECK(run(q, pad4.get(), mask_rule::cumulative_probability(0.5)) == V{1, 1, 0, 0});  // 1/3 + 1/3 >= 0.5
}

TEST_CASE_TEMPLATE("select: rows wider than one mask word", S, float, double) {
    // 130 keys: three words per row. Key j gets score j/10; top-3 is {127, 128, 129}.
    std::vector<double> v(130);
    for (std::size_t j = 0; j < v.size(); ++j) v[j] = static_cast<double>(j) / 10.0;
    auto s = scores<S>(1, 1, 1, 130, v);
    auto m = deq::select_elements(deq::exec::serial{}, s.cview(), {}, mask_rule::top_k(3));
    CHECK(m.count() == 3);
    CHECK(m.test(0, 0, 0, 127));
    CHECK(m.test(0, 0, 0, 128));
    CHECK(m.test(0, 0, 0, 129));
    auto a = deq::select_elements(deq::exec::serial{}, s.cview(), {}, mask_rule::adaptive_maximum(0.5, max_granularity::row));
    CHECK(a.count() == 65);  // j/10 > 0.5 * 12.9 for j = 65..129
    CHECK_FALSE(a.test(0, 0, 0, 64));
    CHECK(a.test(0, 0, 0, 65));
    CHECK(a.test(0, 0, 0, 129));
}

TEST_CASE_TEMPLATE("select: bad inputs", S, float, double) {
    deq::exec::serial const serial;
    auto s = scores<S>(1, 2, 3, 4, std::vector<double>(24, 0.0));
    deq::bit_mask out(1, 2, 3, 4);
    CHECK_NOTHROW(deq::select_elements(serial, s.cview(), {}, mask_rule::probability(0.1), out.view()));
    deq::bit_mask wrong(1, 2, 3, 5), broadcast(1, 1, 3, 4);
    CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), {}, mask_rule::probability(0.1), wrong.view()),
                    deq::shape_error);
    CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), {}, mask_rule::keep_all(), broadcast.view()),
                    deq::shape_error);
    CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), {}, mask_rule::keep_all(), deq::bit_mask_view{}),
                    deq::shape_error);
    auto pad = padding(1, 3, {1, 1, 1});
    CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), pad.get(), mask_rule::top_k(1), out.view()),
                    deq::shape_error);
    mask_rule bad = mask_rule::probability(0.5);
    bad.value = 2;
    CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), {}, bad, out.view()), deq::invalid_argument);
    deq::tensor<S, 4> empty({1, 2, 0, 4});
    CHECK_THROWS_AS(deq::select_elements(serial, empty.cview(), {}, mask_rule::keep_all()), deq::shape_error);
    // Non-finite scores name the tensor and the index, for every rule that reads scores.
    s(0, 1, 2, 3) = std::numeric_limits<S>::quiet_NaN();
    for (auto const& rule : {mask_rule::probability(0.1), mask_rule::inverse_probability(0.1),
                             mask_rule::adaptive_maximum(0.5, max_granularity::sequence),
                             mask_rule::adaptive_maximum(0.5, max_granularity::head, false), mask_rule::top_k(2),
                             mask_rule::cumulative_probability(0.5)}) {
        CAPTURE(rule.describe());
        auto const msg = message_of([&] { deq::select_elements(deq::exec::threads{2}, s.cview(), {}, rule, out.view()); });
        CHECK(msg.find("'scores'") != std::string::npos);
        CHECK(msg.find("[0, 1, 2, 3]") != std::string::npos);
        CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), {}, rule, out.view()), deq::numeric_error);
    }
    s(0, 1, 2, 3) = -std::numeric_limits<S>::infinity();
    CHECK_THROWS_AS(deq::select_elements(serial, s.cview(), {}, mask_rule::top_k(1), out.view()), deq::numeric_error);
}
