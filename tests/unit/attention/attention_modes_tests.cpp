// Attention modes: fully pruned rows under each policy, DEQ mixed precision, three-level, statistics.
#include <doctest/doctest.h>

#include <cmath>

#include <deq/attention/attention.hpp>
#include <deq/exec/serial.hpp>
#include <deq/numeric/float16.hpp>

#include "attention_test_util.hpp"

using deq::index_t;
using attn_test::problem;

#define ATTN_TYPES float, double, deq::float16

namespace {

/// Inputs on a 1/64 grid, so q·k/2 (d = 4) is exact in float and double but not on the 2^-10 grid of
/// floats near 10000: the reference's fully pruned rows then round visibly.
template <class T>
problem<T> grid_problem(std::uint64_t seed) {
    problem<T> p(1, 2, 3, 6, 4, 3, seed, 1.5);
    for (auto* t : {&p.q, &p.k})
        for (auto& x : t->storage()) x = T(static_cast<float>(std::round(static_cast<double>(x) * 64.0) / 64.0));
    return p;
}

/// Expected output of a row whose every real key is pruned, reproducing the float32 or float64
/// arithmetic of the reference: weights softmax_j(fl(s_j - 10000)) over the real keys.
template <class T>
std::vector<double> pruned_row_reference(problem<T> const& p, index_t h, index_t i) {
    using S = deq::accum_t<T>;
    index_t const Lk = p.k.extent(2), d = p.q.extent(3), dv = p.v.extent(3);
    std::vector<double> z;
    double mx = -1e300;
    for (index_t j = 0; j < Lk; ++j) {
        double s = 0;
        for (index_t t = 0; t < d; ++t) s += static_cast<double>(p.q(0, h, i, t)) * static_cast<double>(p.k(0, h, j, t));
        s /= std::sqrt(static_cast<double>(d));  // exact: grid inputs, d = 4
        double const r = static_cast<double>(static_cast<S>(static_cast<S>(s) + static_cast<S>(-10000.0)));
        z.push_back(r);
        if (p.padding.is_valid(0, j)) mx = std::fmax(mx, r);
    }
    double sum = 0;
    for (index_t j = 0; j < Lk; ++j)
        if (p.padding.is_valid(0, j)) sum += std::exp(z[static_cast<std::size_t>(j)] - mx);
    std::vector<double> o(static_cast<std::size_t>(dv), 0.0);
    for (index_t j = 0; j < Lk; ++j) {
        if (!p.padding.is_valid(0, j)) continue;
        double const w = std::exp(z[static_cast<std::size_t>(j)] - mx) / sum;
        for (index_t t = 0; t < dv; ++t) o[static_cast<std::size_t>(t)] += w * static_cast<double>(p.v(0, h, j, t));
    }
    return o;
}

}  // namespace

TEST_CASE_TEMPLATE("attention: fully pruned rows under each empty-row policy", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p = grid_problem<T>(81);
    p.pad({5});
    // Row 1 of head 0 and row 2 of head 1 keep nothing; the other rows keep every key.
    deq::bit_mask kept(1, 2, 3, 6, true);
    for (index_t j = 0; j < 6; ++j) {
        kept.set(0, 0, 1, j, false);
        kept.set(0, 1, 2, j, false);
    }
    deq::attention_options<S> opt;
    opt.padding = p.padding;
    opt.kept = kept.view();
    std::vector<double> const dense = attn_test::naive_attention(p);
    auto dense_at = [&](index_t h, index_t i, index_t t) { return dense[static_cast<std::size_t>((h * 3 + i) * 3 + t)]; };
    double const tol = std::is_same_v<T, deq::float16> ? 2e-3 : (std::is_same_v<T, double> ? 1e-12 : 1e-5);

    SUBCASE("reference") {
        auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
        CHECK(st.empty_rows == 2);
        for (auto [h, i] : {std::pair<index_t, index_t>{0, 1}, {1, 2}}) {
            std::vector<double> const want = pruned_row_reference(p, h, i);
            double max_from_uniform = 0, max_from_dense = 0;
            for (index_t t = 0; t < 3; ++t) {
                double mean = 0;
                for (index_t j = 0; j < 5; ++j) mean += static_cast<double>(p.v(0, h, j, t)) / 5.0;
                CHECK(static_cast<double>(p.out(0, h, i, t)) == doctest::Approx(want[static_cast<std::size_t>(t)]).epsilon(tol));
                max_from_uniform = std::fmax(max_from_uniform, std::fabs(want[static_cast<std::size_t>(t)] - mean));
                max_from_dense = std::fmax(max_from_dense, std::fabs(want[static_cast<std::size_t>(t)] - dense_at(h, i, t)));
            }
            // Not uniform: the -10000 cancels (up to rounding), leaving a dense-like row over the real keys.
            CHECK(max_from_uniform > 0.05);
            CHECK(max_from_dense < 1e-2);
            if constexpr (std::is_same_v<T, double>) {
                CHECK(max_from_dense < 1e-9);
            } else {
                CHECK(max_from_dense > 1e-6);  // float32 rounding of s - 10000 is visible
            }
        }
        // Rows with kept keys are the dense rows.
        CHECK(static_cast<double>(p.out(0, 0, 0, 0)) == doctest::Approx(dense_at(0, 0, 0)).epsilon(tol));
    }
    SUBCASE("uniform") {
        opt.empty_rows = deq::empty_row_policy::uniform;
        auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
        CHECK(st.empty_rows == 2);
        for (auto [h, i] : {std::pair<index_t, index_t>{0, 1}, {1, 2}})
            for (index_t t = 0; t < 3; ++t) {
                double mean = 0;
                for (index_t j = 0; j < 5; ++j) mean += static_cast<double>(p.v(0, h, j, t));
                mean /= 5.0;
                CHECK(static_cast<double>(p.out(0, h, i, t)) == doctest::Approx(mean).epsilon(tol));
            }
        CHECK(static_cast<double>(p.out(0, 1, 1, 2)) == doctest::Approx(dense_at(1, 1, 2)).epsilon(tol));
    }
    SUBCASE("zero") {
        opt.empty_rows = deq::empty_row_policy::zero;
        auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
        CHECK(st.empty_rows == 2);
        for (index_t t = 0; t < 3; ++t) {
            CHECK(static_cast<double>(p.out(0, 0, 1, t)) == 0.0);
            CHECK(static_cast<double>(p.out(0, 1, 2, t)) == 0.0);
        }
        CHECK(static_cast<double>(p.out(0, 0, 2, 1)) == doctest::Approx(dense_at(0, 2, 1)).epsilon(tol));
    }
}

TEST_CASE_TEMPLATE("attention: a row with no real key at all", T, float, double) {
    using S = deq::accum_t<T>;
    // Lq != Lk and a key sequence that is entirely padding: every score carries -10000.
    problem<T> p(1, 1, 2, 3, 2, 2, 91);
    p.pad({0});
    deq::attention_options<S> opt;
    opt.padding = p.padding;
    auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    CHECK(st.empty_rows == 2);
    CHECK(st.valid_pairs == 0);
    CHECK(st.density == 0.0);
    for (index_t t = 0; t < 2; ++t) {
        double const o = static_cast<double>(p.out(0, 0, 0, t));
        CHECK(std::isfinite(o));
    }
    opt.empty_rows = deq::empty_row_policy::uniform;  // uniform over all keys when none is real
    deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    for (index_t t = 0; t < 2; ++t) {
        double const mean = (static_cast<double>(p.v(0, 0, 0, t)) + static_cast<double>(p.v(0, 0, 1, t)) +
                             static_cast<double>(p.v(0, 0, 2, t))) / 3.0;
        CHECK(static_cast<double>(p.out(0, 0, 1, t)) == doctest::Approx(mean).epsilon(1e-6));
    }
}

TEST_CASE_TEMPLATE("attention: DEQ mixed precision", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p(2, 2, 9, 9, 8, 5, 101);
    p.pad({9, 6});
    deq::tensor<S, 4> pred({2, 2, 9, 9});
    deq_test::fill_normal(pred, 102);
    deq::attention_options<S> opt;
    opt.padding = p.padding;
    opt.predicted = pred.cview();

    SUBCASE("all refined equals dense, bit for bit") {
        deq::bit_mask const all(2, 2, 9, 9, true);
        opt.refined = all.view();
        problem<T> a = p;
        auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
        deq::attention_options<S> dense;
        dense.padding = p.padding;
        deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), dense);
        CHECK(attn_test::bitwise_equal(p.out, a.out));
        CHECK(st.refinement_ratio == 1.0);
        CHECK(st.refined_pairs == st.valid_pairs);
    }
    SUBCASE("none refined equals softmax(predicted + pad) V") {
        deq::bit_mask const none(2, 2, 9, 9, false);
        opt.refined = none.view();
        auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
        attn_test::naive_masks m;
        m.refined = [](index_t, index_t, index_t, index_t) { return false; };
        m.predicted = [&](index_t b, index_t h, index_t i, index_t j) { return static_cast<double>(pred(b, h, i, j)); };
        CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
        CHECK(st.refinement_ratio == 0.0);
        CHECK(st.refined_pairs == 0);
        CHECK(st.density == 1.0);
        CHECK(st.exact_scores == 0);
    }
    SUBCASE("a random refined set mixes exact and predicted scores") {
        deq::bit_mask const refined = attn_test::random_mask(2, 2, 9, 9, 0.4, 103);
        opt.refined = refined.view();
        auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
        attn_test::naive_masks m;
        m.refined = [&](index_t b, index_t h, index_t i, index_t j) { return refined.test(b, h, i, j); };
        m.predicted = [&](index_t b, index_t h, index_t i, index_t j) { return static_cast<double>(pred(b, h, i, j)); };
        CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
        // Every refined entry's exact score is computed (the flash kernel computes whole tiles of 64 keys).
        CHECK(st.exact_scores >= refined.count());
        CHECK(st.exact_scores <= refined.batch() * refined.heads() * refined.rows() * refined.cols());
        CHECK(st.refinement_ratio > 0.2);
        CHECK(st.refinement_ratio < 0.6);
    }
}

TEST_CASE_TEMPLATE("attention: three-level (pruned / predicted / exact)", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p(2, 2, 16, 16, 8, 4, 111, 1.5);
    p.pad({16, 10});
    deq::tensor<S, 4> pred({2, 2, 16, 16});
    deq_test::fill_normal(pred, 112);
    deq::bit_mask kept = attn_test::random_mask(2, 2, 16, 16, 0.4, 113);
    for (index_t b = 0; b < 2; ++b)
        for (index_t h = 0; h < 2; ++h)
            for (index_t i = 0; i < 16; ++i) kept.set(b, h, i, 0, true);  // every row keeps a real key
    deq::bit_mask refined = attn_test::random_mask(2, 2, 16, 16, 0.5, 114);
    deq::attention_options<S> opt;
    opt.padding = p.padding;
    opt.kept = kept.view();
    opt.refined = refined.view();
    opt.predicted = pred.cview();
    auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    attn_test::naive_masks m;
    m.kept = [&](index_t b, index_t h, index_t i, index_t j) { return kept.test(b, h, i, j); };
    m.refined = [&](index_t b, index_t h, index_t i, index_t j) { return refined.test(b, h, i, j); };
    m.predicted = [&](index_t b, index_t h, index_t i, index_t j) { return static_cast<double>(pred(b, h, i, j)); };
    CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
    CHECK(st.empty_rows == 0);
    // Exact dot products only where refined and kept (pruned entries are skipped exactly).
    index_t exact_kept = 0;
    for (index_t b = 0; b < 2; ++b)
        for (index_t h = 0; h < 2; ++h)
            for (index_t i = 0; i < 16; ++i)
                for (index_t j = 0; j < 16; ++j) exact_kept += (kept.test(b, h, i, j) && refined.test(b, h, i, j)) ? 1 : 0;
    CHECK(st.exact_scores >= exact_kept);  // whole tiles in the flash kernel
}

TEST_CASE_TEMPLATE("attention: statistics follow the reference formulas", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p(2, 2, 4, 4, 3, 2, 121);
    p.pad({4, 2});
    deq::bit_mask lower(1, 1, 4, 4);  // kept: j <= i
    deq::bit_mask diag(1, 1, 4, 4);   // refined: j == i
    for (index_t i = 0; i < 4; ++i) {
        for (index_t j = 0; j <= i; ++j) lower.set(0, 0, i, j);
        diag.set(0, 0, i, i);
    }
    deq::tensor<S, 4> pred({2, 2, 4, 4}, S(0));
    deq::attention_options<S> opt;
    opt.padding = p.padding;

    auto const dense = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    CHECK(dense.valid_pairs == 2 * 16 + 2 * 4);
    CHECK(dense.kept_pairs == 40);
    CHECK(dense.refined_pairs == 40);
    CHECK(dense.rows == 2 * 4 + 2 * 2);
    CHECK(dense.empty_rows == 0);
    CHECK(dense.density == 1.0);
    CHECK(dense.refinement_ratio == 1.0);

    opt.kept = lower.view();
    auto const sanger = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    // sequence 0: 10 of 16 per head; sequence 1 (2 real tokens): 3 of 4 per head.
    CHECK(sanger.kept_pairs == 2 * 10 + 2 * 3);
    CHECK(sanger.refined_pairs == 26);
    CHECK(sanger.density == doctest::Approx((10.0 / 16 + 3.0 / 4) / 2));
    CHECK(sanger.refinement_ratio == doctest::Approx(sanger.density));

    opt.refined = diag.view();
    opt.predicted = pred.cview();
    auto const three = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    CHECK(three.kept_pairs == 26);
    CHECK(three.refined_pairs == 2 * 4 + 2 * 2);
    CHECK(three.refinement_ratio == doctest::Approx((4.0 / 16 + 2.0 / 4) / 2));

    // Row 1 keeps only key 3, which is padding in sequence 1: one empty real row per head there.
    deq::bit_mask odd = lower;
    odd.set(0, 0, 1, 0, false);
    odd.set(0, 0, 1, 1, false);
    odd.set(0, 0, 1, 3, true);
    opt.kept = odd.view();
    opt.refined = {};
    auto const empty = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    CHECK(empty.empty_rows == 2);
    CHECK(empty.kept_pairs == 2 * (10 - 2 + 1) + 2 * 1);

    // Explicit query padding: only the first query of each sequence is real.
    std::vector<std::uint8_t> qv = {1, 0, 0, 0, 1, 0, 0, 0};
    opt.kept = {};
    opt.query_padding = deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(qv.data(), {2, 4})};
    auto const qpad = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    CHECK(qpad.rows == 4);
    CHECK(qpad.valid_pairs == 2 * 4 + 2 * 2);
}
