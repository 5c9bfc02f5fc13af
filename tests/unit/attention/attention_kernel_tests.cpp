// Attention kernel: hand-computed cases, dense vs a naive double reference, padding, execution spaces,
// exact skipping of pruned entries, broadcast masks.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <deq/attention/attention.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/numeric/float16.hpp>

#include "attention_test_util.hpp"

using deq::index_t;
using attn_test::problem;

#define ATTN_TYPES float, double, deq::float16

TEST_CASE_TEMPLATE("attention: hand-computed L=2, d=1", T, ATTN_TYPES) {
    // q = [1, 2], k = [1, -1], v = [1, 3]: row i has scores [q_i, -q_i].
    deq::tensor<T, 4> q({1, 1, 2, 1}), k({1, 1, 2, 1}), v({1, 1, 2, 1}), out({1, 1, 2, 1});
    q(0, 0, 0, 0) = T(1.0f);
    q(0, 0, 1, 0) = T(2.0f);
    k(0, 0, 0, 0) = T(1.0f);
    k(0, 0, 1, 0) = T(-1.0f);
    v(0, 0, 0, 0) = T(1.0f);
    v(0, 0, 1, 0) = T(3.0f);
    auto const st = deq::attention(deq::exec::serial{}, q.cview(), k.cview(), v.cview(), out.view());
    for (int i = 0; i < 2; ++i) {
        double const a = i + 1.0;
        double const p0 = 1.0 / (1.0 + std::exp(-2.0 * a));  // softmax([a, -a])[0]
        double const want = p0 * 1.0 + (1.0 - p0) * 3.0;
        CHECK(static_cast<double>(out(0, 0, i, 0)) == doctest::Approx(want).epsilon(attn_test::tolerance<T>()));
    }
    // row 0: 1.2384058440442351, row 1: 1.0359724199241250
    CHECK(static_cast<double>(out(0, 0, 0, 0)) == doctest::Approx(1.2384058440442351).epsilon(attn_test::tolerance<T>()));
    CHECK(static_cast<double>(out(0, 0, 1, 0)) == doctest::Approx(1.0359724199241250).epsilon(attn_test::tolerance<T>()));
    CHECK(st.valid_pairs == 4);
    CHECK(st.kept_pairs == 4);
    CHECK(st.refined_pairs == 4);
    CHECK(st.rows == 2);
    CHECK(st.empty_rows == 0);
    CHECK(st.density == 1.0);
    CHECK(st.refinement_ratio == 1.0);
    CHECK(st.exact_scores == 4);
}

TEST_CASE_TEMPLATE("attention: dense matches a naive double reference (Lq != Lk, dv != d, padding)", T, ATTN_TYPES) {
    problem<T> p(2, 3, 5, 9, 7, 4, 11);
    p.pad({9, 4});
    deq::attention_options<deq::accum_t<T>> opt;
    opt.padding = p.padding;
    auto const st = deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p)) < attn_test::tolerance<T>());
    // Lq != Lk: every query is real; valid pairs = H * Lq * real keys.
    CHECK(st.valid_pairs == 3 * 5 * 9 + 3 * 5 * 4);
    CHECK(st.rows == 2 * 3 * 5);
    CHECK(st.density == 1.0);
}

TEST_CASE_TEMPLATE("attention: dense with arbitrary head dimensions and lengths", T, float, double) {
    for (index_t d : {1, 3, 64, 80}) {
        for (index_t L : {1, 7, 33}) {
            problem<T> p(1, 2, L, L, d, d == 1 ? 2 : d, static_cast<std::uint64_t>(d * 100 + L));
            deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view());
            CAPTURE(d);
            CAPTURE(L);
            CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p)) < attn_test::tolerance<T>());
        }
    }
}

TEST_CASE_TEMPLATE("attention: padded keys get exactly zero weight", T, ATTN_TYPES) {
    problem<T> p(1, 2, 6, 6, 8, 5, 21);
    p.pad({4});
    deq::attention_options<deq::accum_t<T>> opt;
    opt.padding = p.padding;
    deq::attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), opt);
    // Changing padded values does not change a bit of the output.
    problem<T> p2 = p;
    for (index_t h = 0; h < 2; ++h)
        for (index_t j = 4; j < 6; ++j)
            for (index_t t = 0; t < 5; ++t) p2.v(0, h, j, t) = T(1000.0f);
    deq::attention(deq::exec::serial{}, p2.q.cview(), p2.k.cview(), p2.v.cview(), p2.out.view(), opt);
    CHECK(attn_test::bitwise_equal(p.out, p2.out));
    // ... and equals attention over the 4 real keys only, bit for bit.
    deq::tensor<T, 4> k4({1, 2, 4, 8}), v4({1, 2, 4, 5}), out4({1, 2, 6, 5});
    for (index_t h = 0; h < 2; ++h)
        for (index_t j = 0; j < 4; ++j) {
            for (index_t t = 0; t < 8; ++t) k4(0, h, j, t) = p.k(0, h, j, t);
            for (index_t t = 0; t < 5; ++t) v4(0, h, j, t) = p.v(0, h, j, t);
        }
    deq::attention(deq::exec::serial{}, p.q.cview(), k4.cview(), v4.cview(), out4.view());
    CHECK(attn_test::bitwise_equal(p.out, out4));
}

TEST_CASE_TEMPLATE("attention: serial and threads give identical results in every mode", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p(2, 3, 17, 17, 16, 8, 31, 2.0);
    p.pad({17, 9});
    deq::bit_mask const kept = attn_test::random_mask(2, 3, 17, 17, 0.3, 5);
    deq::bit_mask const refined = attn_test::random_mask(2, 3, 17, 17, 0.5, 6);
    deq::tensor<S, 4> pred({2, 3, 17, 17});
    deq_test::fill_normal(pred, 7);
    for (int mode = 0; mode < 4; ++mode) {
        deq::attention_options<S> opt;
        opt.padding = p.padding;
        if (mode & 1) opt.kept = kept.view();
        if (mode & 2) {
            opt.refined = refined.view();
            opt.predicted = pred.cview();
        }
        problem<T> a = p, b = p;
        auto const s1 = deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), opt);
        auto const s2 = deq::attention(deq::exec::threads{3}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), opt);
        CAPTURE(mode);
        CHECK(attn_test::bitwise_equal(a.out, b.out));
        CHECK(s1.kept_pairs == s2.kept_pairs);
        CHECK(s1.refined_pairs == s2.refined_pairs);
        CHECK(s1.empty_rows == s2.empty_rows);
        CHECK(s1.exact_scores == s2.exact_scores);
        CHECK(s1.density == s2.density);
    }
}

TEST_CASE("attention: the -10000 penalty underflows exp to exactly zero") {
    // The claim exact skipping rests on: exp(x) is exactly 0 in float below about -103.97 and in double
    // below about -745.13, and a pruned score sits near -10000 below a kept one.
    CHECK(std::exp(-104.0f) == 0.0f);
    CHECK(std::exp(-103.0f) > 0.0f);
    CHECK(std::exp(-746.0) == 0.0);
    CHECK(std::exp(-745.0) > 0.0);
    float const kept = 3.5f, pruned = 40.0f + static_cast<float>(deq::detail::attention_penalty);
    CHECK(std::exp(pruned - kept) == 0.0f);
    CHECK(std::exp(static_cast<double>(pruned) - kept) == 0.0);
    // the margin the kernel requires below the row maximum before it skips a pruned entry
    CHECK(std::exp(-deq::detail::attention_skip_margin) == 0.0);
    CHECK(std::exp(-static_cast<float>(deq::detail::attention_skip_margin)) == 0.0f);
}

TEST_CASE_TEMPLATE("attention: exact skipping of pruned entries is bit-identical and saves dot products", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    // 200 keys (four tiles of the flash kernel, the last one partial); the kept entries lie in the first
    // 64 keys, so the skipping of both kernels (per entry in the reference kernel, per tile of 64 keys
    // in the flash kernel) saves more than half of the dot products.
    index_t const lk = 200;
    problem<T> p(2, 2, 24, lk, 16, 8, 41, 1.5);
    p.pad({lk, 130});
    deq::bit_mask kept = attn_test::random_mask(2, 2, 24, lk, 0.25, 9);
    for (index_t b = 0; b < 2; ++b)
        for (index_t h = 0; h < 2; ++h)
            for (index_t i = 0; i < 24; ++i) {
                for (index_t j = 64; j < lk; ++j) kept.set(b, h, i, j, false);
                kept.set(b, h, i, i % 13, true);  // a kept real key in every row
            }
    deq::attention_options<S> opt;
    opt.padding = p.padding;
    opt.kept = kept.view();
    problem<T> a = p, b = p;
    opt.skip_pruned = true;
    auto const s1 = deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), opt);
    opt.skip_pruned = false;
    auto const s2 = deq::attention(deq::exec::serial{}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), opt);
    CHECK(attn_test::bitwise_equal(a.out, b.out));
    CHECK(s2.exact_scores == 2 * 2 * 24 * lk);
    CHECK(s1.exact_scores < s2.exact_scores / 2);
    CHECK(s1.empty_rows == 0);
    // The result is the masked softmax over the kept real keys (pruned entries contribute exactly 0).
    attn_test::naive_masks m;
    m.kept = [&](index_t bb, index_t h, index_t i, index_t j) { return kept.test(bb, h, i, j); };
    CHECK(attn_test::max_rel_error(a.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
}

TEST_CASE_TEMPLATE("attention: pruned entries that dominate the row are computed, not skipped", T, float, double) {
    using S = deq::accum_t<T>;
    // One pruned key has a score of about 2e4, so s - 10000 still dominates the kept entries: skipping it
    // would be wrong; the bound check must refuse to skip.
    problem<T> p(1, 1, 3, 4, 2, 2, 51, 0.1);
    for (index_t i = 0; i < 3; ++i) {
        p.q(0, 0, i, 0) = T(200.0);
        p.q(0, 0, i, 1) = T(0.0);
    }
    p.k(0, 0, 3, 0) = T(141.5);  // 200 * 141.5 / sqrt(2) ≈ 20011
    p.k(0, 0, 3, 1) = T(0.0);
    deq::bit_mask kept(1, 1, 3, 4, true);
    for (index_t i = 0; i < 3; ++i) kept.set(0, 0, i, 3, false);
    deq::attention_options<S> opt;
    opt.kept = kept.view();
    problem<T> a = p, b = p;
    auto const s1 = deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), opt);
    opt.skip_pruned = false;
    deq::attention(deq::exec::serial{}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), opt);
    CHECK(attn_test::bitwise_equal(a.out, b.out));
    CHECK(s1.exact_scores == 12);
    // The pruned key wins the softmax: the output is its value.
    for (index_t i = 0; i < 3; ++i)
        for (index_t t = 0; t < 2; ++t)
            CHECK(static_cast<double>(a.out(0, 0, i, t)) == doctest::Approx(static_cast<double>(p.v(0, 0, 3, t))));
}

TEST_CASE_TEMPLATE("attention: a broadcast [1,1,L,L] mask equals its expanded [B,H,L,L] copy", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p(2, 3, 12, 12, 8, 8, 61);
    p.pad({12, 7});
    deq::bit_mask const shared = attn_test::random_mask(1, 1, 12, 12, 0.4, 3);
    deq::bit_mask full(2, 3, 12, 12);
    for (index_t b = 0; b < 2; ++b)
        for (index_t h = 0; h < 3; ++h)
            for (index_t i = 0; i < 12; ++i)
                for (index_t j = 0; j < 12; ++j) full.set(b, h, i, j, shared.test(0, 0, i, j));
    deq::attention_options<S> opt;
    opt.padding = p.padding;
    problem<T> a = p, b = p;
    opt.kept = shared.view();
    auto const s1 = deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), opt);
    opt.kept = full.view();
    auto const s2 = deq::attention(deq::exec::serial{}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), opt);
    CHECK(attn_test::bitwise_equal(a.out, b.out));
    CHECK(s1.kept_pairs == s2.kept_pairs);
    CHECK(s1.empty_rows == s2.empty_rows);
    CHECK(s1.density == s2.density);
}

TEST_CASE_TEMPLATE("attention: non-const views and strided inputs", T, float, double) {
    problem<T> p(1, 2, 5, 6, 4, 3, 71);
    problem<T> a = p;
    deq::attention(deq::exec::serial{}, a.q.view(), a.k.view(), a.v.view(), a.out.view());
    // A strided q: the same values stored in a [B, H, Lq, 2d] buffer, every other element.
    deq::tensor<T, 4> wide({1, 2, 5, 8});
    for (index_t h = 0; h < 2; ++h)
        for (index_t i = 0; i < 5; ++i)
            for (index_t t = 0; t < 4; ++t) wide(0, h, i, 2 * t) = p.q(0, h, i, t);
    deq::tensor_view<T const, 4> qs(wide.data(), {1, 2, 5, 4}, {80, 40, 8, 2});
    problem<T> b = p;
    deq::attention(deq::exec::serial{}, qs, b.k.cview(), b.v.cview(), b.out.view());
    CHECK(attn_test::bitwise_equal(a.out, b.out));
    CHECK(attn_test::max_rel_error(a.out, attn_test::naive_attention(p)) < attn_test::tolerance<T>());
}
