// Pipelines: each equals the composition of predictor, mask selection and attention, and rejects bad
// parameters before doing any work.
#include <doctest/doctest.h>

#include <deq/arch/isa.hpp>
#include <deq/attention/pipelines.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/static_pattern.hpp>
#include <deq/numeric/float16.hpp>

#include "attention_test_util.hpp"

using deq::index_t;
using attn_test::check_throws;
using attn_test::problem;

#define ATTN_TYPES float, double, deq::float16

namespace {

template <class T>
problem<T> pipeline_problem(std::uint64_t seed) {
    problem<T> p(2, 3, 20, 20, 16, 8, seed, 1.5);
    p.pad({20, 13});
    return p;
}

template <class T>
deq::predictor_config config_for(problem<T> const& p) {
    return deq::calibrate_predictor(p.q.cview(), p.k.cview());
}

}  // namespace

TEST_CASE_TEMPLATE("sanger_attention = predict + probability threshold + masked attention", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    deq::exec::threads const space{2};
    problem<T> p = pipeline_problem<T>(201), manual = p;
    auto const cfg = config_for(p);
    auto const st = deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), cfg, 0.02,
                                          p.padding);

    auto const scores = deq::predict_scores(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), cfg);
    deq::bit_mask const kept =
        deq::select_elements(deq::exec::serial{}, scores.cview(), manual.padding, deq::mask_rule::probability(0.02));
    deq::attention_options<S> opt;
    opt.padding = manual.padding;
    opt.kept = kept.view();
    auto const st2 = deq::attention(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), manual.v.cview(),
                                    manual.out.view(), opt);
    CHECK(attn_test::bitwise_equal(p.out, manual.out));
    CHECK(st.kept_pairs == st2.kept_pairs);
    CHECK(st.density == st2.density);
    CHECK(st.density > 0.05);
    CHECK(st.density < 0.9);
    CHECK(st.exact_scores == st2.exact_scores);  // skipping of pruned entries: attention_kernel_tests

    // Independent check of the attention part against the naive double reference with the same mask.
    attn_test::naive_masks m;
    m.kept = [&](index_t b, index_t h, index_t i, index_t j) { return kept.test(b, h, i, j); };
    if (st.empty_rows == 0) CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
}

TEST_CASE_TEMPLATE("sanger_attention with theta = 0 equals dense attention", T, float, double) {
    problem<T> p = pipeline_problem<T>(202), dense = p;
    deq::sanger_attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), config_for(p), 0.0,
                          p.padding);
    deq::attention_options<deq::accum_t<T>> opt;
    opt.padding = dense.padding;
    deq::attention(deq::exec::serial{}, dense.q.cview(), dense.k.cview(), dense.v.cview(), dense.out.view(), opt);
    CHECK(attn_test::bitwise_equal(p.out, dense.out));
}

TEST_CASE_TEMPLATE("deq_attention = predict + refinement rule + mixed-precision attention", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p = pipeline_problem<T>(203), manual = p;
    auto const cfg = config_for(p);
    auto const rule = deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::row, true);
    auto const st =
        deq::deq_attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), cfg, rule, p.padding);

    auto const scores = deq::predict_scores(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), cfg);
    deq::bit_mask const refined = deq::select_elements(deq::exec::serial{}, scores.cview(), manual.padding, rule);
    deq::attention_options<S> opt;
    opt.padding = manual.padding;
    opt.refined = refined.view();
    opt.predicted = scores.cview();
    auto const st2 = deq::attention(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), manual.v.cview(),
                                    manual.out.view(), opt);
    CHECK(attn_test::bitwise_equal(p.out, manual.out));
    CHECK(st.refined_pairs == st2.refined_pairs);
    CHECK(st.refinement_ratio == st2.refinement_ratio);
    CHECK(st.refinement_ratio > 0.0);
    CHECK(st.refinement_ratio < 0.5);
    CHECK(st.density == 1.0);

    attn_test::naive_masks m;
    m.refined = [&](index_t b, index_t h, index_t i, index_t j) { return refined.test(b, h, i, j); };
    m.predicted = [&](index_t b, index_t h, index_t i, index_t j) { return static_cast<double>(scores(b, h, i, j)); };
    CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
}

TEST_CASE_TEMPLATE("three_level_attention = predict + precision map + attention", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p = pipeline_problem<T>(204), manual = p;
    auto const cfg = config_for(p);
    auto const prune = deq::mask_rule::probability(0.002);
    auto const refine = deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::row, true);
    auto const st = deq::three_level_attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(),
                                               cfg, prune, refine, p.padding);

    auto const scores = deq::predict_scores(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), cfg);
    auto const map = deq::make_precision_map(deq::exec::serial{}, scores.cview(), manual.padding, prune, refine);
    deq::attention_options<S> opt;
    opt.padding = manual.padding;
    opt.kept = map.kept.view();
    opt.refined = map.refined.view();
    opt.predicted = scores.cview();
    auto const st2 = deq::attention(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), manual.v.cview(),
                                    manual.out.view(), opt);
    CHECK(attn_test::bitwise_equal(p.out, manual.out));
    CHECK(st.kept_pairs == st2.kept_pairs);
    CHECK(st.refined_pairs == st2.refined_pairs);
    CHECK(st.refined_pairs <= st.kept_pairs);
    CHECK(st.density < 1.0);
}

TEST_CASE_TEMPLATE("static_sparse_attention with a Longformer pattern", T, ATTN_TYPES) {
    using S = deq::accum_t<T>;
    problem<T> p(2, 2, 40, 40, 8, 8, 205);
    p.pad({40, 23});
    problem<T> manual = p;
    deq::bit_mask const pattern =
        deq::make_static_mask(deq::exec::serial{}, deq::parse_static_pattern("longformer"), 40);
    auto const st = deq::static_sparse_attention(deq::exec::serial{}, p.q.cview(), p.k.cview(), p.v.cview(),
                                                 p.out.view(), pattern.view(), p.padding);
    deq::attention_options<S> opt;
    opt.padding = manual.padding;
    opt.kept = pattern.view();
    deq::attention(deq::exec::serial{}, manual.q.cview(), manual.k.cview(), manual.v.cview(), manual.out.view(), opt);
    CHECK(attn_test::bitwise_equal(p.out, manual.out));
    // density: kept fraction of the valid pairs, per sequence, averaged
    double per_seq[2] = {0, 0};
    index_t const len[2] = {40, 23};
    for (int b = 0; b < 2; ++b) {
        index_t kept = 0;
        for (index_t i = 0; i < len[b]; ++i)
            for (index_t j = 0; j < len[b]; ++j) kept += pattern.test(0, 0, i, j) ? 1 : 0;
        per_seq[b] = static_cast<double>(kept) / static_cast<double>(len[b] * len[b]);
    }
    CHECK(st.density == doctest::Approx((per_seq[0] + per_seq[1]) / 2));
    CHECK(st.empty_rows == 0);
    attn_test::naive_masks m;
    m.kept = [&](index_t, index_t, index_t i, index_t j) { return pattern.test(0, 0, i, j); };
    CHECK(attn_test::max_rel_error(p.out, attn_test::naive_attention(p, m)) < attn_test::tolerance<T>());
}

TEST_CASE("pipelines reject bad parameters before any work") {
    deq::exec::serial const space;
    problem<float> p = pipeline_problem<float>(206);
    auto const cfg = config_for(p);
    check_throws<deq::invalid_argument>(
        [&] { deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), cfg, 1.5, p.padding); },
        {"theta", "1.5"});
    deq::predictor_config bad = cfg;
    bad.threshold_q = 0;
    check_throws<deq::invalid_argument>(
        [&] { deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), bad, 0.02, p.padding); },
        {"threshold_q", "0"});
    bad = cfg;
    bad.bits = 17;
    check_throws<deq::invalid_argument>(
        [&] {
            deq::deq_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), bad,
                               deq::mask_rule::keep_all(), p.padding);
        },
        {"bits", "17"});
    deq::mask_rule broken = deq::mask_rule::top_k(4);
    broken.k = 0;
    check_throws<deq::invalid_argument>(
        [&] {
            deq::three_level_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), cfg,
                                       deq::mask_rule::probability(0.02), broken, p.padding);
        },
        {"'k'", "0"});
    deq::tensor<float, 4> bad_v({2, 3, 19, 8});
    check_throws<deq::shape_error>(
        [&] { deq::sanger_attention(space, p.q.cview(), p.k.cview(), bad_v.cview(), p.out.view(), cfg, 0.02, p.padding); },
        {"'v'", "[2, 3, 19, 8]"});
    check_throws<deq::invalid_argument>(
        [&] {
            deq::static_sparse_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(),
                                         deq::const_bit_mask_view{}, p.padding);
        },
        {"'pattern'"});
    p.q(1, 1, 1, 1) = std::numeric_limits<float>::quiet_NaN();
    check_throws<deq::numeric_error>(
        [&] { deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), cfg, 0.02, p.padding); },
        {"'q'", "[1, 1, 1, 1]"});
}

TEST_CASE("pipelines: [B, H, Lq, Lk] that does not fit index_t is a shape_error before any work") {
    // Broadcast views (stride 0) give huge but countable q, k, v over one small buffer; the scores and
    // masks the pipelines would allocate, 2^33 x 2^33 per head, do not fit.
    deq::exec::serial const space;
    std::vector<float> one(4, 0.5f);
    index_t const L = index_t{1} << 33;
    deq::tensor_view<float const, 4> q(one.data(), {1, 1, L, 4}, {0, 0, 0, 1});
    deq::tensor_view<float, 4> out(one.data(), {1, 1, L, 4}, {0, 0, 0, 1});
    deq::predictor_config const cfg{1.0, 1.0, 4};
    std::vector<char const*> const parts{"size overflow", "[1, 1, 8589934592, 8589934592]"};
    auto const expect = [&](auto&& f) {
        std::string const msg = deq_test::message_of<deq::shape_error>(f);
        INFO(msg);
        for (char const* part : parts) CHECK(msg.find(part) != std::string::npos);
    };
    expect([&] { deq::sanger_attention(space, q, q, q, out, cfg, 0.02); });
    expect([&] { deq::deq_attention(space, q, q, q, out, cfg, deq::parse_mask_rule("adamax_nb80")); });
    expect([&] {
        deq::three_level_attention(space, q, q, q, out, cfg, deq::parse_mask_rule("sanger:0.02"),
                                   deq::parse_mask_rule("adamax_nb80"));
    });
    // Nor can masks of that size.
    CHECK_THROWS_AS(deq::bit_mask(1, 1, L, L), deq::shape_error);
}

// The pipelines fuse the predictor into the mask selection and the attention; the masks they return
// must be bit-identical to select_elements / make_precision_map on predict_scores, and the outputs
// equal the composition (bit for bit: the same kernels see the same masks and scores), on every tier.
TEST_CASE_TEMPLATE("pipelines: fused masks equal select_elements on predict_scores, every tier", T, float, double) {
    using S = deq::accum_t<T>;
    std::vector<deq::arch::isa> tiers{deq::arch::isa::portable};
    if (deq::arch::detected_isa() >= deq::arch::isa::avx2) tiers.push_back(deq::arch::isa::avx2);
    if (deq::arch::detected_isa() >= deq::arch::isa::avx512) tiers.push_back(deq::arch::isa::avx512);
    std::uint64_t seed = 1300;
    for (index_t lk : {9, 255, 257}) {
        for (int bits : {4, 8, 16}) {
            CAPTURE(lk);
            CAPTURE(bits);
            problem<T> p(2, 2, 11, lk, 32, 16, ++seed, 1.4);
            p.pad({lk, lk / 2 + 1});
            deq::predictor_config const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview(), bits);
            for (auto tier : tiers) {
                deq::arch::scoped_isa_limit const limit(tier);
                auto const scores = deq::predict_scores(deq::exec::serial{}, p.q.cview(), p.k.cview(), cfg);
                for (char const* rule : {"sanger:0.02", "topk:3", "adamax_nh80"}) {
                    deq::pipeline_masks masks;
                    problem<T> a = p;
                    deq::sanger_attention(deq::exec::threads{2}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), cfg,
                                          deq::parse_mask_rule(rule), a.padding, deq::empty_row_policy::reference, &masks);
                    CHECK(masks.kept == deq::select_elements(deq::exec::serial{}, scores.cview(), p.padding, deq::parse_mask_rule(rule)));
                    CHECK(masks.refined.empty());
                }
                for (char const* rule : {"adamax_nb80", "adamax_s80", "refine_2e-2"}) {
                    deq::pipeline_masks masks;
                    problem<T> a = p, b = p;
                    auto const st = deq::deq_attention(deq::exec::threads{2}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), cfg,
                                                       deq::parse_mask_rule(rule), a.padding, &masks);
                    deq::bit_mask const want = deq::select_elements(deq::exec::serial{}, scores.cview(), p.padding, deq::parse_mask_rule(rule));
                    CHECK(masks.refined == want);
                    deq::attention_options<S> o;
                    o.padding = b.padding;
                    o.refined = want.view();
                    o.predicted = scores.cview();
                    auto const st2 = deq::attention(deq::exec::serial{}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), o);
                    CHECK(attn_test::bitwise_equal(a.out, b.out));
                    CHECK(st.refinement_ratio == st2.refinement_ratio);
                }
                deq::pipeline_masks masks;
                problem<T> a = p;
                deq::three_level_attention(deq::exec::threads{2}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), cfg,
                                           deq::parse_mask_rule("sanger:0.002"), deq::parse_mask_rule("adamax_nb80"), a.padding,
                                           deq::empty_row_policy::reference, &masks);
                deq::precision_map const map = deq::make_precision_map(deq::exec::serial{}, scores.cview(), p.padding,
                                                                       deq::parse_mask_rule("sanger:0.002"),
                                                                       deq::parse_mask_rule("adamax_nb80"));
                CHECK(masks.kept == map.kept);
                CHECK(masks.refined == map.refined);
            }
        }
    }
}

TEST_CASE("pipelines: the selection pass on raw scores skips chunks without changing a bit (long rows, inverse rules)") {
    // 700 keys: three chunks of 256; the maximum of a sequence in the first chunk makes most chunks skippable.
    problem<float> p(1, 2, 9, 700, 16, 8, 1501, 1.3);
    for (index_t h = 0; h < 2; ++h)
        for (index_t t = 0; t < 16; ++t) p.k(0, h, 3, t) = p.q(0, h, 0, t) * 3.0f;  // one dominant entry
    deq::predictor_config const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview(), 4);
    auto const scores = deq::predict_scores(deq::exec::serial{}, p.q.cview(), p.k.cview(), cfg);
    for (char const* rule : {"adamax_nb80", "adamax_nh70", "invadamax:0.3:sequence:logits", "invadamax:0.9:head:logits"}) {
        CAPTURE(rule);
        deq::pipeline_masks masks;
        problem<float> a = p;
        deq::deq_attention(deq::exec::threads{2}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), cfg, deq::parse_mask_rule(rule),
                           {}, &masks);
        CHECK(masks.refined == deq::select_elements(deq::exec::serial{}, scores.cview(), {}, deq::parse_mask_rule(rule)));
    }
}
