// Independent check of deq::select_elements: a naive double-precision re-implementation of every rule
// (written from the reference formulas, with std::sort and plain loops) on random predicted scores,
// plus execution-space independence and the complement property of the inverse rules.
#include <doctest/doctest.h>

#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/select.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "select_test_support.hpp"
#include "support/test_util.hpp"

using deq::index_t;
using deq::mask_rule;
using deq::max_granularity;

namespace {

// Decision of the naive reference for one entry: selected or not, or "too close to call".
enum class naive_bit { off, on, undecided };

struct naive_mask {
    std::vector<naive_bit> bits;  // [B, H, Lq, Lk] row-major
};

template <class S>
naive_mask naive_select(deq::tensor<S, 4> const& scores, std::vector<int> const& valid, mask_rule const& rule,
                        double tol) {
    index_t const B = scores.extent(0), H = scores.extent(1), Lq = scores.extent(2), Lk = scores.extent(3);
    std::size_t const n = static_cast<std::size_t>(scores.size());
    std::vector<double> raw(n), prob(n);
    for (std::size_t o = 0; o < n; ++o) raw[o] = static_cast<double>(scores.data()[o]);
    auto is_real = [&](index_t b, index_t j) { return valid[static_cast<std::size_t>(b * Lk + j)] != 0; };
    for (index_t b = 0; b < B; ++b)
        for (index_t r = 0; r < H * Lq; ++r) {
            std::size_t const base = static_cast<std::size_t>((b * H * Lq + r) * Lk);
            std::vector<double> x(static_cast<std::size_t>(Lk));
            for (index_t j = 0; j < Lk; ++j) x[static_cast<std::size_t>(j)] = raw[base + static_cast<std::size_t>(j)] + (is_real(b, j) ? 0.0 : -10000.0);
            double const m = *std::max_element(x.begin(), x.end());
            double sum = 0;
            for (double& v : x) sum += (v = std::exp(v - m));
            for (index_t j = 0; j < Lk; ++j) prob[base + static_cast<std::size_t>(j)] = x[static_cast<std::size_t>(j)] / sum;
        }
    naive_mask out{std::vector<naive_bit>(n, naive_bit::off)};
    auto decide = [](double value, double threshold, bool greater, double margin) {
        if (std::fabs(value - threshold) < margin) return naive_bit::undecided;
        return ((value > threshold) == greater) ? naive_bit::on : naive_bit::off;
    };
    using kind = mask_rule::kind;
    switch (rule.type) {
        case kind::probability_threshold:
        case kind::inverse_probability_threshold:
            for (std::size_t o = 0; o < n; ++o)
                out.bits[o] = decide(prob[o], rule.value, rule.type == kind::probability_threshold, tol);
            break;
        case kind::adaptive_maximum:
        case kind::inverse_adaptive_maximum: {
            std::vector<double> const& x = rule.before_softmax ? raw : prob;
            std::size_t const group = static_cast<std::size_t>(
                rule.granularity == max_granularity::sequence ? H * Lq * Lk
                : rule.granularity == max_granularity::head   ? Lq * Lk
                                                              : Lk);
            for (std::size_t g = 0; g < n; g += group) {
                double const m = *std::max_element(x.begin() + static_cast<std::ptrdiff_t>(g),
                                                   x.begin() + static_cast<std::ptrdiff_t>(g + group));
                double const t = rule.value * m;
                for (std::size_t o = g; o < g + group; ++o)
                    out.bits[o] = decide(x[o], t, rule.type == kind::adaptive_maximum, tol * std::fmax(1.0, std::fabs(m)));
            }
            break;
        }
        case kind::top_k:
        case kind::cumulative_probability:
            for (index_t b = 0; b < B; ++b)
                for (index_t r = 0; r < H * Lq; ++r) {
                    std::size_t const base = static_cast<std::size_t>((b * H * Lq + r) * Lk);
                    std::vector<index_t> keys;
                    for (index_t j = 0; j < Lk; ++j)
                        if (is_real(b, j)) keys.push_back(j);
                    auto p = [&](index_t j) { return prob[base + static_cast<std::size_t>(j)]; };
                    std::stable_sort(keys.begin(), keys.end(), [&](index_t a, index_t c) { return p(a) > p(c); });
                    std::size_t take = keys.size();
                    bool undecided = false;
                    if (rule.type == kind::top_k) {
                        take = std::min<std::size_t>(keys.size(), static_cast<std::size_t>(rule.k));
                        if (take < keys.size() && std::fabs(p(keys[take - 1]) - p(keys[take])) < tol) undecided = true;
                    } else {
                        double cum = 0;
                        for (std::size_t t = 0; t < keys.size(); ++t) {
                            cum += p(keys[t]);
                            if (std::fabs(cum - rule.value) < tol) undecided = true;
                            if (t + 1 < keys.size() && std::fabs(p(keys[t]) - p(keys[t + 1])) < tol) undecided = true;
                            if (cum >= rule.value) {
                                take = t + 1;
                                break;
                            }
                        }
                    }
                    for (std::size_t t = 0; t < take; ++t) out.bits[base + static_cast<std::size_t>(keys[t])] = naive_bit::on;
                    if (undecided)
                        for (index_t j = 0; j < Lk; ++j) out.bits[base + static_cast<std::size_t>(j)] = naive_bit::undecided;
                }
            break;
        case kind::all:
            std::fill(out.bits.begin(), out.bits.end(), naive_bit::on);
            break;
        case kind::none: break;
    }
    return out;
}

std::vector<mask_rule> all_rules() {
    std::vector<mask_rule> rules = {mask_rule::keep_all(),
                                    mask_rule::keep_none(),
                                    mask_rule::probability(0.02),
                                    mask_rule::probability(0.002),
                                    mask_rule::probability(0.2),
                                    mask_rule::inverse_probability(0.02),
                                    mask_rule::top_k(1),
                                    mask_rule::top_k(5),
                                    mask_rule::top_k(64),
                                    mask_rule::cumulative_probability(0.5),
                                    mask_rule::cumulative_probability(0.9),
                                    mask_rule::cumulative_probability(0.99)};
    for (double alpha : {0.3, 0.8})
        for (auto g : {max_granularity::sequence, max_granularity::head, max_granularity::row})
            for (bool before : {true, false}) {
                rules.push_back(mask_rule::adaptive_maximum(alpha, g, before));
                rules.push_back(mask_rule::inverse_adaptive_maximum(alpha, g, before));
            }
    return rules;
}

}  // namespace

TEST_CASE_TEMPLATE("select: every rule matches a naive double re-implementation on predicted scores", T, float, double,
                   deq::float16) {
    using S = deq::accum_t<T>;
    index_t const B = 3, H = 2, Lq = 11, Lk = 37, d = 16;
    deq::tensor<T, 4> q({B, H, Lq, d}), k({B, H, Lk, d});
    deq_test::fill_normal(q, 7, 0.0, 2.0);
    deq_test::fill_normal(k, 8, 0.3, 1.5);
    auto const config = deq::calibrate_predictor(q.cview(), k.cview(), 4);
    auto const scores = deq::predict_scores(deq::exec::serial{}, q.cview(), k.cview(), config);
    // Sample 0: no padding; sample 1: last 7 keys padded; sample 2: keys 3..5 and 30.. padded.
    std::vector<int> valid(static_cast<std::size_t>(B * Lk), 1);
    for (index_t j = 30; j < Lk; ++j) valid[static_cast<std::size_t>(Lk + j)] = 0;
    for (index_t j : {3, 4, 5, 30, 31, 32, 33, 34, 35, 36}) valid[static_cast<std::size_t>(2 * Lk + j)] = 0;
    auto pad = deq_select_test::padding(B, Lk, valid);
    double const tol = std::is_same_v<S, float> ? 1e-5 : 1e-12;
    for (auto const& rule : all_rules()) {
        CAPTURE(rule.describe());
        auto const got = deq::select_elements(deq::exec::serial{}, scores.cview(), pad.get(), rule);
        auto const threaded = deq::select_elements(deq::exec::threads{3}, scores.cview(), pad.get(), rule);
        CHECK(got == threaded);
        auto const bits = deq_select_test::bits(got);
        auto const ref = naive_select(scores, valid, rule, tol);
        std::size_t mismatches = 0, undecided = 0, selected = 0;
        for (std::size_t o = 0; o < bits.size(); ++o) {
            if (ref.bits[o] == naive_bit::undecided) {
                ++undecided;
                continue;
            }
            selected += static_cast<std::size_t>(bits[o]);
            if ((ref.bits[o] == naive_bit::on) != (bits[o] == 1)) ++mismatches;
        }
        CHECK(mismatches == 0);
        CHECK(undecided <= bits.size() / 20);
        if (rule.type != mask_rule::kind::none) CHECK(selected > 0);
    }
}

TEST_CASE_TEMPLATE("select: inverse rules are the complements of the direct rules", S, float, double) {
    deq::tensor<S, 4> scores({2, 3, 9, 21});
    deq_test::fill_normal(scores, 99, 0.0, 3.0);
    auto pad = deq_select_test::padding(2, 21, std::vector<int>(42, 1));
    pad.flags(1, 20) = 0;
    pad.flags(1, 19) = 0;
    deq::exec::threads const threads{2};
    for (double theta : {0.0, 0.01, 0.05, 0.5, 1.0}) {
        auto const a = deq::select_elements(threads, scores.cview(), pad.get(), mask_rule::probability(theta));
        auto const b = deq::select_elements(threads, scores.cview(), pad.get(), mask_rule::inverse_probability(theta));
        CHECK(a.count() + b.count() == scores.size());
        CHECK(deq_select_test::bits(a) != deq_select_test::bits(b));
        bool disjoint = true;
        for (std::size_t w = 0; w < a.words().size(); ++w) disjoint = disjoint && (a.words()[w] & b.words()[w]) == 0;
        CHECK(disjoint);
    }
    for (double alpha : {0.0, 0.4, 0.9, 1.0})
        for (auto g : {max_granularity::sequence, max_granularity::head, max_granularity::row})
            for (bool before : {true, false}) {
                auto const a = deq::select_elements(threads, scores.cview(), pad.get(),
                                                    mask_rule::adaptive_maximum(alpha, g, before));
                auto const b = deq::select_elements(threads, scores.cview(), pad.get(),
                                                    mask_rule::inverse_adaptive_maximum(alpha, g, before));
                CHECK(a.count() + b.count() == scores.size());
                bool disjoint = true;
                for (std::size_t w = 0; w < a.words().size(); ++w) disjoint = disjoint && (a.words()[w] & b.words()[w]) == 0;
                CHECK(disjoint);
            }
}
