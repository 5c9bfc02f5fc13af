#include <doctest/doctest.h>

#include <deq/core/accumulator.hpp>
#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/quant/calibrate.hpp>
#include <deq/quant/params.hpp>
#include <deq/quant/quantize.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "support/test_util.hpp"
#include "support/type_names.hpp"

using deq::index_t;
using deq::quant::granularity;
using deq::quant::scheme;

namespace {

struct reference_case {
    int bits;
    std::uint32_t threshold;
    std::uint32_t scale;
    std::int32_t q[48];
    std::uint32_t dequant[48];
};

// The reference quant_utils.py run with torch: see gen_reference_table.py.
#include "reference_table.inc"

// A [1, 1, 1, n] tensor holding @p values.
template <class T>
deq::tensor<T, 4> row_of(std::vector<double> const& values) {
    deq::tensor<T, 4> t({1, 1, 1, static_cast<index_t>(values.size())});
    for (std::size_t i = 0; i < values.size(); ++i) t.data()[i] = static_cast<T>(values[i]);
    return t;
}

// Straightforward reference: groups by explicit keys, std::nearbyint (default FE_TONEAREST) for rounding.
template <class T>
struct naive_result {
    std::vector<std::int32_t> q;
    std::vector<deq::accum_t<T>> dq;
};

template <class T>
naive_result<T> naive_quantize(deq::tensor<T, 4> const& x, scheme kind, int bits, granularity g) {
    using S = deq::accum_t<T>;
    index_t const B = x.extent(0), H = x.extent(1), L = x.extent(2), D = x.extent(3);
    auto key = [&](index_t b, index_t h, index_t i) {
        switch (g.type()) {
            case granularity::kind::tensor: return std::tuple<index_t, index_t, index_t>{0, 0, 0};
            case granularity::kind::head: return std::tuple<index_t, index_t, index_t>{b, h, 0};
            case granularity::kind::row: return std::tuple<index_t, index_t, index_t>{b, h, i};
            case granularity::kind::block: return std::tuple<index_t, index_t, index_t>{b, h, i / g.block_size()};
        }
        return std::tuple<index_t, index_t, index_t>{0, 0, 0};
    };
    std::map<std::tuple<index_t, index_t, index_t>, std::pair<S, S>> range;  // min, max
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t t = 0; t < D; ++t) {
                    S const v = static_cast<S>(x(b, h, i, t));
                    auto [it, fresh] = range.try_emplace(key(b, h, i), v, v);
                    if (!fresh) {
                        it->second.first = std::fmin(it->second.first, v);
                        it->second.second = std::fmax(it->second.second, v);
                    }
                }
    naive_result<T> r;
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t t = 0; t < D; ++t) {
                    auto const [mn, mx] = range.at(key(b, h, i));
                    S const v = static_cast<S>(x(b, h, i, t));
                    S scale;
                    S zp = 0;
                    S qlo, qhi;
                    if (kind == scheme::symmetric) {
                        S const absmax = std::fmax(std::fabs(mn), std::fabs(mx));
                        qhi = static_cast<S>((1 << (bits - 1)) - 1);
                        qlo = -qhi;
                        scale = absmax == 0 ? S(1) : (S(1) / absmax) * qhi;  // PyTorch order: reciprocal, then * qmax
                    } else {
                        S const lo = std::fmin(mn, S(0)), hi = std::fmax(mx, S(0));
                        qlo = 0;
                        qhi = static_cast<S>((1 << bits) - 1);
                        scale = hi == lo ? S(1) : qhi / (hi - lo);
                        zp = hi == lo ? S(0) : std::fmin(std::fmax(std::nearbyint(-lo * scale), S(0)), qhi);
                    }
                    S const q = std::fmin(std::fmax(std::nearbyint(v * scale) + zp, qlo), qhi);
                    r.q.push_back(static_cast<std::int32_t>(q));
                    r.dq.push_back((q - zp) / scale);
                }
    return r;
}

template <class E>
std::string message_of(E const& fn) {
    try {
        fn();
    } catch (deq::error const& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE_TEMPLATE("symmetric 4-bit quantization by hand: ties to even and clamping", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    // threshold 7 at 4 bits: scale = 7 / 7 = 1, so the level is round_half_even(x) clamped to [-7, 7].
    auto x = row_of<T>({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 7.4, 7.5, 8.0, -100.0, 0.0, 0.49, -3.51});
    auto const p = deq::quant::symmetric_params<S>(4, S(7));
    CHECK(p.scale[0] == S(1));
    deq::tensor<std::int32_t, 4> q({1, 1, 1, x.extent(3)});
    deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q.view());
    std::vector<std::int32_t> const expected = {0, 2, 2, 0, -2, -2, 4, 7, 7, 7, -7, 0, 0, -4};
    CHECK(q.storage() == expected);
    deq::tensor<T, 4> back({1, 1, 1, x.extent(3)});
    deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, back.view());
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(static_cast<S>(back.data()[i]) == S(expected[i]));

    // threshold 2: scale = 3.5; 1 -> 3.5 -> 4 (tie to even), 0.2 -> 0.7 -> 1, -3/7 -> -1.5 -> -2.
    auto y = row_of<T>({1.0, 0.25, -0.25, 2.0, 10.0});
    auto const p2 = deq::quant::symmetric_params<S>(4, S(2));
    CHECK(p2.scale[0] == S(3.5));
    deq::tensor<std::int8_t, 4> q2({1, 1, 1, 5});
    deq::quant::quantize(deq::exec::serial{}, y.cview(), p2, q2.view());
    // 0.25 * 3.5 = 0.875 -> 1; 2 * 3.5 = 7; 10 -> clamp 7.
    std::vector<std::int8_t> const expected2 = {4, 1, -1, 7, 7};
    CHECK(q2.storage() == expected2);
    deq::tensor<T, 4> back2({1, 1, 1, 5});
    deq::quant::dequantize(deq::exec::serial{}, q2.cview(), p2, back2.view());
    CHECK(static_cast<S>(back2.data()[0]) == static_cast<S>(static_cast<T>(S(4) / S(3.5))));
}

TEST_CASE("per-tensor symmetric float path reproduces the reference quant_utils.py (torch) bit for bit") {
    std::vector<double> xs;
    for (std::uint32_t b : ref_x) xs.push_back(std::bit_cast<float>(b));
    auto x = row_of<float>(xs);
    for (auto const& c : ref_cases) {
        CAPTURE(c.bits);
        float const thresh = std::bit_cast<float>(c.threshold);
        CAPTURE(thresh);
        float const qmax = static_cast<float>(deq::quant::max_symmetric_level(c.bits));
        float const torch_scale = std::bit_cast<float>(c.scale);
        // The reference's scale: PyTorch evaluates `qmax / thresh_tensor` as `thresh.reciprocal() * qmax`.
        CHECK(torch_scale == (1.0f / thresh) * qmax);
        // deq's per-tensor scale is symmetric_scale() of symmetric_scalar.hpp, evaluated in the same
        // order, so it equals the reference's bit for bit (a plain division is one ulp off for ~25% of
        // thresholds, e.g. 1.7 at 4 bits).
        auto p = deq::quant::symmetric_params<float>(c.bits, thresh);
        CHECK(p.scale[0] == deq::quant::symmetric_scale(c.bits, thresh));
        CHECK(std::bit_cast<std::uint32_t>(p.scale[0]) == c.scale);
        // With the reference's scale, quantize / dequantize / fake_quantize are the reference's
        // mul-round-clamp and div, exactly.
        p.scale[0] = torch_scale;
        deq::tensor<std::int32_t, 4> q({1, 1, 1, 48});
        deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q.view());
        deq::tensor<float, 4> fake({1, 1, 1, 48}), deq_back({1, 1, 1, 48});
        deq::quant::fake_quantize(deq::exec::serial{}, x.cview(), p, fake.view());
        deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, deq_back.view());
        int mismatches = 0;
        for (int i = 0; i < 48; ++i) {
            mismatches += q.data()[i] != c.q[i];
            // Exact equality (the reference writes -0 where deq writes +0; they compare equal).
            mismatches += fake.data()[i] != std::bit_cast<float>(c.dequant[i]);
            mismatches += deq_back.data()[i] != std::bit_cast<float>(c.dequant[i]);
            mismatches += deq::quant::quantize_symmetric(x.data()[i], torch_scale, c.bits) != c.q[i];
        }
        CHECK(mismatches == 0);
    }
}

TEST_CASE_TEMPLATE("calibrated per-tensor/head/row/block scales match a straightforward loop", T, float, double,
                   deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> x({2, 3, 5, 8});
    deq_test::fill_normal(x, 42, 0.1, 1.3);
    x(1, 2, 3, 4) = T(0.0);
    granularity const kinds[] = {granularity::per_tensor(), granularity::per_head(), granularity::per_row(),
                                 granularity::per_block(2), granularity::per_block(5)};
    for (scheme kind : {scheme::symmetric, scheme::asymmetric}) {
        for (int bits : {2, 3, 4, 8, 16}) {
            for (auto const& g : kinds) {
                CAPTURE(bits);
                CAPTURE(g.describe());
                CAPTURE(deq::quant::to_string(kind));
                deq::quant::quant_spec const spec{kind, bits, g};
                auto const p = deq::quant::calibrate(deq::exec::threads{2}, x.cview(), spec);
                CHECK(p.group_count() == g.shape_for(2, 3, 5).count());
                deq::tensor<std::int32_t, 4> q({2, 3, 5, 8});
                deq::quant::quantize(deq::exec::threads{3}, x.cview(), p, q.view());
                deq::tensor<S, 4> dq({2, 3, 5, 8});
                deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, dq.view());
                auto const ref = naive_quantize(x, kind, bits, g);
                CHECK(q.storage() == ref.q);
                CHECK(dq.storage() == ref.dq);
                // Levels within the scheme's range, error bounded by half a step inside the range.
                for (std::int32_t v : q.storage()) {
                    REQUIRE(v >= p.level_min());
                    REQUIRE(v <= p.level_max());
                }
            }
        }
    }
}

TEST_CASE_TEMPLATE("fake_quantize equals dequantize(quantize) and serial equals threads", T, float, double,
                   deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> x({2, 2, 6, 5});
    deq_test::fill_normal(x, 7);
    for (auto kind : {scheme::symmetric, scheme::asymmetric}) {
        deq::quant::quant_spec const spec{kind, 5, granularity::per_block(4)};
        auto const p = deq::quant::calibrate(deq::exec::serial{}, x.cview(), spec);
        auto const pt = deq::quant::calibrate(deq::exec::threads{4}, x.cview(), spec);
        CHECK(p.scale == pt.scale);
        CHECK(p.zero_point == pt.zero_point);
        deq::tensor<std::int16_t, 4> q({2, 2, 6, 5});
        deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q.view());
        deq::tensor<T, 4> a({2, 2, 6, 5}), b({2, 2, 6, 5});
        deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, a.view());
        deq::quant::fake_quantize(deq::exec::threads{3}, x.cview(), p, b.view());
        bool same = true;
        for (index_t i = 0; i < a.size(); ++i) same = same && static_cast<S>(a.data()[i]) == static_cast<S>(b.data()[i]);
        CHECK(same);
        // In-place fake quantization.
        deq::tensor<T, 4> c = x;
        deq::quant::fake_quantize(deq::exec::serial{}, c.cview(), p, c.view());
        for (index_t i = 0; i < a.size(); ++i) same = same && static_cast<S>(a.data()[i]) == static_cast<S>(c.data()[i]);
        CHECK(same);
    }
}

TEST_CASE_TEMPLATE("asymmetric quantization by hand", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    // 2 bits, range [-1, 2]: scale = 3 / 3 = 1, zero point = round(1) = 1, levels [0, 3].
    auto x = row_of<T>({-1.0, 0.0, 0.5, 1.5, 2.0, 1.0, -0.5});
    auto const p = deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::asymmetric, 2, granularity::per_tensor()});
    CHECK(p.scale[0] == S(1));
    CHECK(p.zero_point[0] == 1);
    deq::tensor<std::uint8_t, 4> q({1, 1, 1, 7});
    deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q.view());
    // round_half_even(x) + 1: -1 -> 0, 0 -> 1, 0.5 -> 0 + 1, 1.5 -> 2 + 1, 2 -> 3, 1 -> 2, -0.5 -> 0 + 1.
    std::vector<std::uint8_t> const expected = {0, 1, 1, 3, 3, 2, 1};
    CHECK(q.storage() == expected);
    deq::tensor<T, 4> back({1, 1, 1, 7});
    deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, back.view());
    CHECK(static_cast<S>(back.data()[0]) == S(-1));
    CHECK(static_cast<S>(back.data()[1]) == S(0));  // 0 is exact
    CHECK(static_cast<S>(back.data()[4]) == S(2));
    // Given range [-1, 2] and values outside it: clamped to levels 0 and 3.
    auto const pr = deq::quant::asymmetric_params<S>(2, S(-1), S(2));
    CHECK(pr.zero_point[0] == 1);
    auto z = row_of<T>({5.0, -3.0, 2.5, -1.5});
    deq::tensor<std::int32_t, 4> qz({1, 1, 1, 4});
    deq::quant::quantize(deq::exec::serial{}, z.cview(), pr, qz.view());
    std::vector<std::int32_t> const expected_z = {3, 0, 3, 0};  // 2.5 -> 2 + 1; -1.5 -> -2 + 1 -> clamp 0
    CHECK(qz.storage() == expected_z);

    // All positive values: the range is widened to [0, 3], so 4 bits give scale 5 and zero point 0.
    auto y = row_of<T>({2.0, 3.0, 2.5});
    auto const py = deq::quant::asymmetric_params<S>(4, S(2), S(3));
    CHECK(py.scale[0] == S(5));
    CHECK(py.zero_point[0] == 0);
    deq::tensor<deq::uint4b_t, 4> qy({1, 1, 1, 3});
    deq::quant::quantize(deq::exec::serial{}, y.cview(), py, qy.view());
    CHECK(qy.data()[0].value() == 10);
    CHECK(qy.data()[1].value() == 15);
    CHECK(qy.data()[2].value() == 12);  // 12.5 -> 12 (tie to even)
    // All negative values: [-4, 0] at 3 bits: scale 7/4, zero point 7.
    auto const pn = deq::quant::asymmetric_params<S>(3, S(-4), S(-1));
    CHECK(pn.scale[0] == S(1.75));
    CHECK(pn.zero_point[0] == 7);
}

TEST_CASE_TEMPLATE("all-zero groups give scale 1 and exact zeros, never NaN or Inf", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> x({1, 2, 3, 4});  // zeros
    x(0, 1, 2, 1) = T(1.5);             // one non-zero row in head 1
    for (auto kind : {scheme::symmetric, scheme::asymmetric}) {
        auto const p = deq::quant::calibrate(deq::exec::serial{}, x.cview(), {kind, 4, granularity::per_row()});
        CHECK(p.scale[0] == S(1));
        CHECK(p.zero_point[0] == 0);
        deq::tensor<T, 4> out({1, 2, 3, 4}, T(9.0));
        deq::quant::fake_quantize(deq::exec::serial{}, x.cview(), p, out.view());
        for (index_t i = 0; i < out.size(); ++i) {
            S const v = static_cast<S>(out.data()[i]);
            REQUIRE(std::isfinite(v));
            if (i != 1 * 12 + 2 * 4 + 1) REQUIRE(v == S(0));
        }
        // abs-max / max maps onto the top level; with the reference's scale (reciprocal, then * qmax)
        // dequantizing gives 1.5 within rounding (PyTorch: 1.4999998807907104 in float32).
        CHECK(std::fabs(static_cast<double>(out(0, 1, 2, 1)) - 1.5) <=
              4.0 * static_cast<double>(std::numeric_limits<T>::epsilon()));
        auto const pt = deq::quant::calibrate(deq::exec::serial{}, deq::tensor<T, 4>({1, 1, 2, 2}).cview(),
                                              {kind, 8, granularity::per_tensor()});
        CHECK(pt.scale[0] == S(1));
    }
    // Subnormal thresholds: the scale is clamped to the largest finite value instead of overflowing.
    S const tiny = std::numeric_limits<S>::denorm_min();
    auto const ps = deq::quant::symmetric_params<S>(8, tiny);
    CHECK(ps.scale[0] == std::numeric_limits<S>::max());
    auto const pa = deq::quant::asymmetric_params<S>(8, S(0), tiny);
    CHECK(std::isfinite(pa.scale[0]));
    // A range that overflows S still gives a finite, positive scale.
    S const huge = std::numeric_limits<S>::max();
    auto const ph = deq::quant::asymmetric_params<S>(8, -huge, huge);
    CHECK(std::isfinite(ph.scale[0]));
    CHECK(ph.scale[0] > S(0));
    CHECK(ph.zero_point[0] == 128);  // round(127.5) = 128 (tie to even)
}

TEST_CASE_TEMPLATE("per-group thresholds and ranges given by the caller", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> x({1, 2, 3, 2});
    deq_test::fill_normal(x, 5);
    // Per head: thresholds [1, 2, 1].
    deq::tensor<S, 3> th({1, 2, 1});
    th(0, 0, 0) = S(1);
    th(0, 1, 0) = S(0.5);
    auto const p = deq::quant::symmetric_params(4, granularity::per_head(), th.cview());
    CHECK(p.scale[0] == S(7));
    CHECK(p.scale[1] == S(14));
    deq::tensor<std::int32_t, 4> q({1, 2, 3, 2});
    deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q.view());
    for (index_t h = 0; h < 2; ++h)
        for (index_t i = 0; i < 3; ++i)
            for (index_t t = 0; t < 2; ++t) {
                S const v = std::nearbyint(static_cast<S>(x(0, h, i, t)) * p.scale[static_cast<std::size_t>(h)]);
                REQUIRE(q(0, h, i, t) == static_cast<std::int32_t>(std::fmin(std::fmax(v, S(-7)), S(7))));
            }
    // Asymmetric per row.
    deq::tensor<S, 3> lo({1, 2, 3}, S(-1)), hi({1, 2, 3}, S(3));
    auto const pa = deq::quant::asymmetric_params(8, granularity::per_row(), lo.cview(), hi.cview());
    CHECK(pa.group_count() == 6);
    CHECK(pa.scale[5] == S(255) / S(4));
    CHECK(pa.zero_point[5] == 64);  // round(63.75)
}

TEST_CASE("bad thresholds, ranges and parameters are rejected naming the argument") {
    CHECK(message_of([] { (void)deq::quant::symmetric_params(4, 0.0f); }).find("'threshold' = 0") != std::string::npos);
    CHECK(message_of([] { (void)deq::quant::symmetric_params(4, -1.5f); }).find("'threshold' = -1.5") != std::string::npos);
    CHECK(message_of([] { (void)deq::quant::symmetric_params(4, std::nanf("")); }).find("'threshold' = nan") !=
          std::string::npos);
    CHECK_THROWS_AS((void)deq::quant::symmetric_params(4, std::numeric_limits<double>::infinity()), deq::invalid_argument);
    CHECK(message_of([] { (void)deq::quant::symmetric_params(1, 1.0f); }).find("'bits' = 1") != std::string::npos);
    CHECK(message_of([] { (void)deq::quant::symmetric_params(17, 1.0f); }).find("'bits' = 17") != std::string::npos);
    CHECK(message_of([] { (void)deq::quant::asymmetric_params(4, 2.0f, 1.0f); }).find("'hi' = 1") != std::string::npos);
    CHECK(message_of([] { (void)deq::quant::asymmetric_params(4, -std::numeric_limits<float>::infinity(), 1.0f); })
              .find("'lo'") != std::string::npos);
    CHECK_THROWS_AS((void)deq::quant::asymmetric_params(0, 0.0f, 1.0f), deq::invalid_argument);

    deq::tensor<float, 3> th({1, 2, 1}, 1.0f);
    th(0, 1, 0) = 0.0f;
    CHECK(message_of([&] { (void)deq::quant::symmetric_params(4, granularity::per_head(), th.cview()); })
              .find("'thresholds[0, 1, 0]' = 0") != std::string::npos);
    deq::tensor<float, 3> th3({1, 2, 3}, 1.0f);  // not a per-head grid
    CHECK_THROWS_AS((void)deq::quant::symmetric_params(4, granularity::per_head(), th3.cview()), deq::shape_error);
    CHECK_THROWS_AS((void)deq::quant::symmetric_params(4, granularity::per_tensor(), th3.cview()), deq::shape_error);
    deq::tensor<float, 3> lo({1, 2, 3}, 0.0f), hi({1, 2, 2}, 1.0f);
    CHECK_THROWS_AS((void)deq::quant::asymmetric_params(4, granularity::per_row(), lo.cview(), hi.cview()),
                    deq::shape_error);

    auto p = deq::quant::symmetric_params(4, 1.0f);
    p.scale[0] = -2.0f;
    CHECK(message_of([&] { p.validate(); }).find("'scale[0]' = -2") != std::string::npos);
    p.scale[0] = 1.0f;
    p.zero_point[0] = 3;
    CHECK(message_of([&] { p.validate(); }).find("'zero_point[0]' = 3") != std::string::npos);
    p.zero_point[0] = 0;
    p.scale.push_back(1.0f);
    CHECK_THROWS_AS(p.validate(), deq::invalid_argument);
}

TEST_CASE_TEMPLATE("quantize rejects NaN/Inf, shape mismatches and narrow level types", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> x({2, 2, 3, 4});
    deq_test::fill_normal(x, 3);
    auto const p = deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::symmetric, 4, granularity::per_head()});
    deq::tensor<std::int32_t, 4> q({2, 2, 3, 4});

    // NaN / Inf in the input: numeric_error naming the tensor and the index.
    deq::tensor<T, 4> bad = x;
    bad(1, 0, 2, 3) = T(std::numeric_limits<float>::quiet_NaN());
    std::string msg = message_of([&] { deq::quant::quantize(deq::exec::serial{}, bad.cview(), p, q.view(), "keys"); });
    CHECK(msg.find("'keys'") != std::string::npos);
    CHECK(msg.find("[1, 0, 2, 3]") != std::string::npos);
    CHECK_THROWS_AS(deq::quant::quantize(deq::exec::serial{}, bad.cview(), p, q.view()), deq::numeric_error);
    bad(1, 0, 2, 3) = T(-std::numeric_limits<float>::infinity());
    CHECK_THROWS_AS(deq::quant::fake_quantize(deq::exec::serial{}, bad.cview(), p, bad.view()), deq::numeric_error);
    CHECK_THROWS_AS((void)deq::quant::calibrate(deq::exec::serial{}, bad.cview(), {}), deq::numeric_error);

    // Output shape differs from the input.
    deq::tensor<std::int32_t, 4> q_wrong({2, 2, 3, 5});
    CHECK_THROWS_AS(deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q_wrong.view()), deq::shape_error);
    deq::tensor<T, 4> out_wrong({2, 2, 4, 4});
    CHECK_THROWS_AS(deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, out_wrong.view()), deq::shape_error);
    CHECK_THROWS_AS(deq::quant::fake_quantize(deq::exec::serial{}, x.cview(), p, out_wrong.view()), deq::shape_error);

    // Parameters calibrated for another shape (per-head grid [2, 2, 1] applied to [1, 2, 3, 4] / [2, 3, 3, 4]).
    deq::tensor<T, 4> other({1, 2, 3, 4});
    deq::tensor<std::int32_t, 4> q_other({1, 2, 3, 4});
    msg = message_of([&] { deq::quant::quantize(deq::exec::serial{}, other.cview(), p, q_other.view()); });
    CHECK(msg.find("[2, 2, 1]") != std::string::npos);
    CHECK(msg.find("[1, 2, 1]") != std::string::npos);
    deq::tensor<T, 4> transposed({2, 2, 3, 4});
    auto const p_row = deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::symmetric, 4, granularity::per_row()});
    deq::tensor<T, 4> longer({2, 2, 4, 4});
    deq::tensor<std::int32_t, 4> q_longer({2, 2, 4, 4});
    CHECK_THROWS_AS(deq::quant::quantize(deq::exec::serial{}, longer.cview(), p_row, q_longer.view()), deq::shape_error);

    // Zero-length dimensions.
    deq::tensor<T, 4> empty({2, 0, 3, 4});
    deq::tensor<std::int32_t, 4> q_empty({2, 0, 3, 4});
    CHECK_THROWS_AS(deq::quant::quantize(deq::exec::serial{}, empty.cview(), p, q_empty.view()), deq::shape_error);
    CHECK_THROWS_AS((void)deq::quant::calibrate(deq::exec::serial{}, empty.cview(), {}), deq::shape_error);

    // 16-bit levels do not fit int8_t; 8-bit asymmetric levels do not fit int8_t either.
    auto const p16 = deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::symmetric, 16, granularity::per_tensor()});
    deq::tensor<std::int8_t, 4> q8({2, 2, 3, 4});
    msg = message_of([&] { deq::quant::quantize(deq::exec::serial{}, x.cview(), p16, q8.view()); });
    CHECK(msg.find("'bits' = 16") != std::string::npos);
    auto const pa8 = deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::asymmetric, 8, granularity::per_tensor()});
    CHECK_THROWS_AS(deq::quant::quantize(deq::exec::serial{}, x.cview(), pa8, q8.view()), deq::invalid_argument);
    deq::tensor<std::uint8_t, 4> qu8({2, 2, 3, 4});
    CHECK_NOTHROW(deq::quant::quantize(deq::exec::serial{}, x.cview(), pa8, qu8.view()));
    deq::tensor<deq::int4b_t, 4> q4({2, 2, 3, 4});
    CHECK_THROWS_AS(deq::quant::quantize(deq::exec::serial{}, x.cview(), p16, q4.view()), deq::invalid_argument);
    CHECK_NOTHROW(deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q4.view()));

    // Levels outside the scheme's range cannot be dequantized.
    deq::quant::quantize(deq::exec::serial{}, x.cview(), p, q.view());
    q(0, 1, 2, 3) = 8;
    deq::tensor<T, 4> out({2, 2, 3, 4});
    msg = message_of([&] { deq::quant::dequantize(deq::exec::serial{}, q.cview(), p, out.view()); });
    CHECK(msg.find("'q[0, 1, 2, 3]' = 8") != std::string::npos);

    // Invalid bits in a spec.
    CHECK_THROWS_AS((void)deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::symmetric, 1, granularity::per_tensor()}),
                    deq::invalid_argument);
    CHECK_THROWS_AS((void)deq::quant::calibrate(deq::exec::serial{}, x.cview(), {scheme::asymmetric, 17, granularity::per_row()}),
                    deq::invalid_argument);
    (void)S{};
}
