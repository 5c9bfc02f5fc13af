// Tests of deq/predict/sanger_predictor.hpp: hand-computed predictions, rounding ties, clamping,
// zero-norm rows, calibration, errors, execution-space independence, and a naive double-precision
// re-implementation of the reference formula (dequantized matmul) on random inputs.
#include <doctest/doctest.h>

#include <deq/arch/isa.hpp>
#include <deq/arch/predictor_avx512.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/test_util.hpp"

namespace {

template <class T>
deq::tensor<T, 4> make4(deq::index_t b, deq::index_t h, deq::index_t l, deq::index_t d, std::vector<double> const& v) {
    deq::tensor<T, 4> t({b, h, l, d});
    REQUIRE(static_cast<deq::index_t>(v.size()) == t.size());
    for (std::size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<T>(v[i]);
    return t;
}

template <class T>
deq::tensor<deq::accum_t<T>, 4> predict(deq::tensor<T, 4> const& q, deq::tensor<T, 4> const& k,
                                        deq::predictor_config const& c) {
    return deq::predict_scores(deq::exec::serial{}, q.cview(), k.cview(), c);
}

std::string message_of(auto&& f) {
    try {
        f();
    } catch (deq::error const& e) {
        return e.what();
    }
    return "<no exception>";
}

// Naive reference in double: the reference's formula, dequantized matmul, std::nearbyint rounding.
// Rows whose quantization is within `tie_window` of a rounding tie are reported as ambiguous.
struct naive_result {
    std::vector<double> scores;
    std::vector<bool> ambiguous;  // per score entry
};

template <class T>
naive_result naive_predict(deq::tensor<T, 4> const& q, deq::tensor<T, 4> const& k, double tq, double tk, int bits,
                           double tie_window) {
    deq::index_t const B = q.extent(0), H = q.extent(1), Lq = q.extent(2), Lk = k.extent(2), d = q.extent(3);
    double const qmax = std::pow(2.0, bits - 1) - 1;
    double const sx = qmax / tq, sy = qmax / tk;
    auto quant_rows = [&](deq::tensor<T, 4> const& x, double s, std::vector<double>& deq_vals, std::vector<double>& norms,
                          std::vector<bool>& amb) {
        deq::index_t const rows = x.extent(0) * x.extent(1) * x.extent(2);
        deq_vals.assign(static_cast<std::size_t>(rows * d), 0.0);
        norms.assign(static_cast<std::size_t>(rows), 0.0);
        amb.assign(static_cast<std::size_t>(rows), false);
        for (deq::index_t r = 0; r < rows; ++r) {
            double ss = 0;
            for (deq::index_t t = 0; t < d; ++t) {
                double const v = static_cast<double>(x.data()[r * d + t]);
                ss += v * v;
            }
            double const n = std::sqrt(ss);
            norms[static_cast<std::size_t>(r)] = n;
            for (deq::index_t t = 0; t < d; ++t) {
                double const v = static_cast<double>(x.data()[r * d + t]);
                double const scaled = n == 0 ? 0 : v / n * s;
                double const frac = scaled - std::floor(scaled);
                if (std::fabs(frac - 0.5) < tie_window * (1 + std::fabs(scaled))) amb[static_cast<std::size_t>(r)] = true;
                double const level = std::fmin(qmax, std::fmax(-qmax, std::nearbyint(scaled)));
                deq_vals[static_cast<std::size_t>(r * d + t)] = level / s;
            }
        }
    };
    std::vector<double> qd, kd, qn, kn;
    std::vector<bool> qa, ka;
    quant_rows(q, sx, qd, qn, qa);
    quant_rows(k, sy, kd, kn, ka);
    naive_result res;
    res.scores.assign(static_cast<std::size_t>(B * H * Lq * Lk), 0.0);
    res.ambiguous.assign(res.scores.size(), false);
    for (deq::index_t b = 0; b < B; ++b)
        for (deq::index_t h = 0; h < H; ++h)
            for (deq::index_t i = 0; i < Lq; ++i)
                for (deq::index_t j = 0; j < Lk; ++j) {
                    std::size_t const qi = static_cast<std::size_t>((b * H + h) * Lq + i);
                    std::size_t const kj = static_cast<std::size_t>((b * H + h) * Lk + j);
                    double dot = 0;
                    for (deq::index_t t = 0; t < d; ++t) dot += qd[qi * d + t] * kd[kj * d + t];
                    std::size_t const o = static_cast<std::size_t>(((b * H + h) * Lq + i) * Lk + j);
                    res.scores[o] = dot * qn[qi] * kn[kj] / std::sqrt(static_cast<double>(d));
                    res.ambiguous[o] = qa[qi] || ka[kj];
                }
    return res;
}

}  // namespace

TEST_CASE_TEMPLATE("predictor: hand-computed scores, ties to even and zero-norm rows", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    // q0 = (1,1,1,1): unit 0.5 each, 0.5*7 = 3.5 -> 4 (tie to even); norm 2.
    // q1 = (-2,2,-2,-2): unit (-0.5,0.5,-0.5,-0.5) -> (-4,4,-4,-4); norm 4.
    // q2 = 0: zero norm -> row of zeros.
    auto q = make4<T>(1, 1, 3, 4, {1, 1, 1, 1, -2, 2, -2, -2, 0, 0, 0, 0});
    // k0 = (2,0,0,0) -> (7,0,0,0), norm 2; k1 = (0,0,3,4): unit (0,0,0.6,0.8) -> (0,0,4,6), norm 5; k2 = 0.
    auto k = make4<T>(1, 1, 3, 4, {2, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0});
    auto s = predict(q, k, {1.0, 1.0, 4});
    // S = dot / 49 * (qn*kn) / 2
    CHECK(s(0, 0, 0, 0) == doctest::Approx(8.0 / 7.0).epsilon(1e-6));      // 28/49*4/2
    CHECK(s(0, 0, 0, 1) == doctest::Approx(200.0 / 49.0).epsilon(1e-6));   // 40/49*10/2
    CHECK(s(0, 0, 1, 0) == doctest::Approx(-16.0 / 7.0).epsilon(1e-6));    // -28/49*8/2
    CHECK(s(0, 0, 1, 1) == doctest::Approx(-400.0 / 49.0).epsilon(1e-6));  // -40/49*20/2
    // The same values, evaluated in the score type in the documented order.
    CHECK(s(0, 0, 0, 1) == S(40) / S(49) * (S(2) * S(5)) / S(2));
    CHECK(s(0, 0, 1, 0) == S(-28) / S(49) * (S(4) * S(2)) / S(2));
    // Zero-norm k column and zero-norm q row: exactly 0 (the reference would give NaN).
    for (deq::index_t i = 0; i < 3; ++i) CHECK(s(0, 0, i, 2) == S(0));
    for (deq::index_t j = 0; j < 3; ++j) CHECK(s(0, 0, 2, j) == S(0));
}

TEST_CASE_TEMPLATE("predictor: thresholds change scales, rounding ties and clamping", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    auto q = make4<T>(1, 1, 1, 4, {1, 1, 1, 1});  // unit 0.5 each, norm 2
    auto k = make4<T>(1, 1, 1, 4, {1, 0, 0, 0});  // unit (1,0,0,0) -> (7,0,0,0) at threshold 1, norm 1
    REQUIRE(S(7) / S(1.4) == S(5));               // threshold 1.4 gives scale exactly 5
    // 0.5*5 = 2.5 -> 2 (tie to even): dot 14, S = 14/35 * 2 / 2 = 0.4
    CHECK(predict(q, k, {1.4, 1.0, 4})(0, 0, 0, 0) == doctest::Approx(0.4).epsilon(1e-6));
    // 0.5*7 = 3.5 -> 4: S = 28/49 = 4/7
    CHECK(predict(q, k, {1.0, 1.0, 4})(0, 0, 0, 0) == doctest::Approx(4.0 / 7.0).epsilon(1e-6));
    // threshold 0.25: 0.5*28 = 14 -> clamped to 7: S = 49/(28*7) = 0.25
    CHECK(predict(q, k, {0.25, 1.0, 4})(0, 0, 0, 0) == doctest::Approx(0.25).epsilon(1e-6));
    // 2 bits, threshold 1: 0.5*1 = 0.5 -> 0 (tie to even): the whole row predicts 0
    CHECK(predict(q, k, {1.0, 1.0, 2})(0, 0, 0, 0) == S(0));
    // 2 bits: 1.5 -> 2 -> clamped to 1 at threshold 1/3
    CHECK(predict(q, k, {1.0 / 3.0, 1.0, 2})(0, 0, 0, 0) == doctest::Approx(1.0 / 3.0).epsilon(1e-6));
    // 16 bits: 0.5*32767 = 16383.5 -> 16384; S = 16384*32767/32767^2 = 16384/32767 (int64 accumulation)
    CHECK(predict(q, k, {1.0, 1.0, 16})(0, 0, 0, 0) == doctest::Approx(16384.0 / 32767.0).epsilon(1e-6));
    // 8 bits: 0.5*127 = 63.5 -> 64 (even); S = 64*127/127^2 = 64/127
    CHECK(predict(q, k, {1.0, 1.0, 8})(0, 0, 0, 0) == doctest::Approx(64.0 / 127.0).epsilon(1e-6));
}

TEST_CASE("predictor: dot products that overflow int32 are accumulated in int64") {
    deq::index_t const d = 140000;  // 127^2 * d > 2^31 - 1
    deq::tensor<float, 4> q({1, 1, 1, d}, 1.0f), k({1, 1, 1, d}, 1.0f);
    auto s = predict(q, k, {1e-3, 1e-3, 8});  // every level clamps to 127
    double const sx = 127.0 / 1e-3;
    double const expected = 127.0 * 127.0 * static_cast<double>(d) / (sx * sx) * static_cast<double>(d) /
                            std::sqrt(static_cast<double>(d));
    CHECK(s(0, 0, 0, 0) > 0.0f);
    CHECK(s(0, 0, 0, 0) == doctest::Approx(expected).epsilon(1e-5));
}

TEST_CASE_TEMPLATE("predictor: calibration is the abs-max of the normalised rows", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    auto q = make4<T>(1, 2, 1, 4, {3, 4, 0, 0, 1, 1, 1, 1});   // unit rows (0.6,0.8,0,0) and 0.5's
    auto k = make4<T>(1, 2, 1, 4, {0, 0, 0, 0, 0, 0, 0, 0});   // all zero -> threshold 1
    auto c = deq::calibrate_predictor(q.cview(), k.cview(), 6);
    CHECK(c.threshold_q == static_cast<double>(S(4) / S(5)));
    CHECK(c.threshold_k == 1.0);
    CHECK(c.bits == 6);
    // Predicting with the calibrated threshold maps the largest unit element to the top level exactly.
    auto k2 = make4<T>(1, 2, 1, 4, {0, 1, 0, 0, 0, 1, 0, 0});
    auto c2 = deq::calibrate_predictor(q.cview(), k2.cview(), 4);
    CHECK(c2.threshold_k == 1.0);
    auto s = predict(q, k2, c2);
    // q0 levels: 0.6/0.8*7 = 5.25 -> 5 and 7; k level 7 on column 1: dot 49 -> S = 49/(sx*7) * 5 * 1 / 2
    double const sx = 7.0 / c2.threshold_q;
    CHECK(s(0, 0, 0, 0) == doctest::Approx(49.0 / (sx * 7.0) * 5.0 / 2.0).epsilon(1e-6));
    CHECK_THROWS_AS(deq::calibrate_predictor(q.cview(), k.cview(), 9), deq::invalid_argument);
    q(0, 1, 0, 2) = T(std::numeric_limits<float>::quiet_NaN());
    auto const msg = message_of([&] { deq::calibrate_predictor(q.cview(), k.cview()); });
    CHECK(msg.find("'q'") != std::string::npos);
    CHECK(msg.find("[0, 1, 0, 2]") != std::string::npos);
    CHECK_THROWS_AS(deq::calibrate_predictor(q.cview(), k.cview()), deq::numeric_error);
}

TEST_CASE("predictor: config validation names the field and value") {
    CHECK_NOTHROW(deq::predictor_config{0.5, 0.5, 4}.validate());
    for (int bits : {2, 3, 5, 8, 16}) CHECK_NOTHROW(deq::predictor_config{1, 1, bits}.validate());
    for (int bits : {-1, 0, 1, 9, 12, 15, 17, 32}) {
        deq::predictor_config c{1, 1, bits};
        CHECK_THROWS_AS(c.validate(), deq::invalid_argument);
        auto const msg = message_of([&] { c.validate(); });
        CHECK(msg.find("bits") != std::string::npos);
        CHECK(msg.find(std::to_string(bits)) != std::string::npos);
    }
    double const inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    for (double t : {0.0, -1.0, inf, -inf, nan}) {
        deq::predictor_config cq{t, 1, 4}, ck{1, t, 4};
        CHECK_THROWS_AS(cq.validate(), deq::invalid_argument);
        CHECK_THROWS_AS(ck.validate(), deq::invalid_argument);
        CHECK(message_of([&] { cq.validate(); }).find("threshold_q") != std::string::npos);
        CHECK(message_of([&] { ck.validate(); }).find("threshold_k") != std::string::npos);
    }
    CHECK(message_of([] { deq::predictor_config{-2.5, 1, 4}.validate(); }).find("-2.5") != std::string::npos);
    CHECK(message_of([] { deq::predictor_config{}.validate(); }).find("threshold_q") != std::string::npos);
}

TEST_CASE_TEMPLATE("predictor: shape, value and threshold errors", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::exec::serial const serial;
    deq::tensor<T, 4> q({1, 2, 3, 4}, T(1)), k({1, 2, 5, 4}, T(1));
    deq::tensor<S, 4> s({1, 2, 3, 5});
    deq::predictor_config const c{1, 1, 4};
    CHECK_NOTHROW(deq::predict_scores(serial, q.cview(), k.cview(), c, s.view()));
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k.cview(), deq::predictor_config{0, 1, 4}, s.view()),
                    deq::invalid_argument);
    deq::tensor<T, 4> k_bad_d({1, 2, 5, 3}, T(1)), k_bad_h({1, 1, 5, 4}, T(1)), k_bad_b({2, 2, 5, 4}, T(1));
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k_bad_d.cview(), c, s.view()), deq::shape_error);
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k_bad_h.cview(), c, s.view()), deq::shape_error);
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k_bad_b.cview(), c, s.view()), deq::shape_error);
    deq::tensor<S, 4> s_bad({1, 2, 3, 4});
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k.cview(), c, s_bad.view()), deq::shape_error);
    CHECK(message_of([&] { deq::predict_scores(serial, q.cview(), k.cview(), c, s_bad.view()); }).find("'scores'") !=
          std::string::npos);
    deq::tensor<T, 4> q_empty({1, 2, 0, 4}), k_zero_d({1, 2, 5, 0});
    deq::tensor<S, 4> s_empty({1, 2, 0, 5});
    CHECK_THROWS_AS(deq::predict_scores(serial, q_empty.cview(), k.cview(), c, s_empty.view()), deq::shape_error);
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k_zero_d.cview(), c), deq::shape_error);

    q(0, 1, 2, 3) = T(std::numeric_limits<float>::quiet_NaN());
    auto msg = message_of([&] { deq::predict_scores(serial, q.cview(), k.cview(), c, s.view()); });
    CHECK(msg.find("'q'") != std::string::npos);
    CHECK(msg.find("[0, 1, 2, 3]") != std::string::npos);
    CHECK_THROWS_AS(deq::predict_scores(deq::exec::threads{2}, q.cview(), k.cview(), c, s.view()), deq::numeric_error);
    q(0, 1, 2, 3) = T(1);
    k(0, 0, 4, 1) = T(-std::numeric_limits<float>::infinity());
    msg = message_of([&] { deq::predict_scores(serial, q.cview(), k.cview(), c, s.view()); });
    CHECK(msg.find("'k'") != std::string::npos);
    CHECK(msg.find("[0, 0, 4, 1]") != std::string::npos);
    CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k.cview(), c, s.view()), deq::numeric_error);

    if constexpr (std::is_same_v<S, float>) {
        // Finite double thresholds that do not survive the conversion to the float score type.
        k(0, 0, 4, 1) = T(1);
        CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k.cview(), deq::predictor_config{1e-60, 1, 4}, s.view()),
                        deq::invalid_argument);
        CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k.cview(), deq::predictor_config{1, 1e300, 4}, s.view()),
                        deq::invalid_argument);
        CHECK_THROWS_AS(deq::predict_scores(serial, q.cview(), k.cview(), deq::predictor_config{1e-20, 1e-20, 4}, s.view()),
                        deq::invalid_argument);
    }
}

TEST_CASE("predictor: overflowing norms are reported, not turned into NaN") {
    deq::tensor<float, 4> q({1, 1, 1, 2}, 3e38f), k({1, 1, 1, 2}, 1.0f);
    // The norm of q (4.2e38) overflows float.
    CHECK_THROWS_AS(predict(q, k, {1, 1, 4}), deq::numeric_error);
    deq::tensor<float, 4> q2({1, 1, 1, 2}, 1e20f), k2({1, 1, 1, 2}, 1e20f);
    // Norms are finite but their product (2e40) is not.
    CHECK_THROWS_AS(predict(q2, k2, {1, 1, 4}), deq::numeric_error);
    // Tiny values whose squares underflow float still normalise correctly (double accumulation).
    deq::tensor<float, 4> q3({1, 1, 1, 2}, 1e-30f), k3({1, 1, 1, 2}, 1.0f);
    CHECK(predict(q3, k3, {1, 1, 4})(0, 0, 0, 0) == doctest::Approx(1e-30 * std::sqrt(2.0) * std::sqrt(2.0) *
                                                                       (5.0 * 5.0 * 2.0 / 49.0) / std::sqrt(2.0))
                                                         .epsilon(1e-5));
}

TEST_CASE("predictor: a predicted score that overflows is reported, not returned as inf") {
    // Fuzz finding (tests/fuzz/corpus/attention_pipelines/steps_predicted_score_overflow): the norms'
    // product 3.4e38 * 0.9375 is finite, but with threshold_q = 2 the unit row 1 rounds to level 4
    // (4 / 3.5 = 1.14), and the score 1.14 * 3.2e38 overflows float.
    deq::tensor<float, 4> q({1, 1, 1, 1}, std::numeric_limits<float>::max()), k({1, 1, 2, 1});
    k.data()[0] = 0.46875f;
    k.data()[1] = 0.9375f;
    std::string const message = deq_test::message_of<deq::numeric_error>([&] { predict(q, k, {2, 1, 4}); });
    CHECK_MESSAGE(message.find("predicted score [0, 0, 0, 1]") != std::string::npos, message);
    CHECK_MESSAGE(message.find("overflows the score type") != std::string::npos, message);
    // The same rows with a threshold that does not lengthen them give finite scores.
    auto const s = predict(q, k, {1, 1, 4});
    CHECK(std::isfinite(s(0, 0, 0, 0)));
    CHECK(std::isfinite(s(0, 0, 0, 1)));
}

TEST_CASE_TEMPLATE("predictor: serial and threads agree bit for bit; strided outputs", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> q({2, 3, 17, 8}), k({2, 3, 13, 8});
    deq_test::fill_normal(q, 11);
    deq_test::fill_normal(k, 12);
    deq::predictor_config const c = deq::calibrate_predictor(q.cview(), k.cview(), 4);
    auto a = deq::predict_scores(deq::exec::serial{}, q.cview(), k.cview(), c);
    auto b = deq::predict_scores(deq::exec::threads{3}, q.cview(), k.cview(), c);
    CHECK(a.storage() == b.storage());
    // Write into a transposed (strided) view [B, H, Lq, Lk] whose storage is [B, H, Lk, Lq].
    deq::tensor<S, 4> store({2, 3, 13, 17});
    deq::tensor_view<S, 4> tv(store.data(), {2, 3, 17, 13}, {3 * 13 * 17, 13 * 17, 1, 17});
    deq::predict_scores(deq::exec::threads{2}, q.view(), k.cview(), c, tv);
    bool same = true;
    for (deq::index_t b0 = 0; b0 < 2; ++b0)
        for (deq::index_t h = 0; h < 3; ++h)
            for (deq::index_t i = 0; i < 17; ++i)
                for (deq::index_t j = 0; j < 13; ++j) same = same && store(b0, h, j, i) == a(b0, h, i, j);
    CHECK(same);
}

TEST_CASE_TEMPLATE("predictor: matches a naive double re-implementation of the reference", T, float, double,
                   deq::float16) {
    using S = deq::accum_t<T>;
    for (int bits : {2, 4, 8, 16}) {
        CAPTURE(bits);
        deq::tensor<T, 4> q({2, 2, 19, 16}), k({2, 2, 23, 16});
        deq_test::fill_normal(q, 100 + static_cast<std::uint64_t>(bits), 0.1, 1.5);
        deq_test::fill_normal(k, 200 + static_cast<std::uint64_t>(bits), -0.2, 0.7);
        // thresholds below the abs-max so that clamping happens too
        deq::predictor_config const cal = deq::calibrate_predictor(q.cview(), k.cview(), bits);
        deq::predictor_config const c{cal.threshold_q * 0.8, cal.threshold_k * 0.9, bits};
        auto s = predict(q, k, c);
        // Near a rounding tie of q̂·s the float and double quantizations may pick different levels; such
        // rows are skipped. With 16 bits in float every row is within float rounding of some tie, so
        // nothing is skipped and the tolerance covers one-level flips instead.
        bool const float16bits = std::is_same_v<S, float> && bits == 16;
        double const window = std::is_same_v<S, float> ? (float16bits ? 0.0 : 1e-5) : 1e-12;
        // The naive version uses the thresholds as the predictor sees them (rounded to S).
        auto ref = naive_predict(q, k, static_cast<double>(static_cast<S>(c.threshold_q)),
                                 static_cast<double>(static_cast<S>(c.threshold_k)), bits, window);
        double maxref = 0;
        for (double v : ref.scores) maxref = std::fmax(maxref, std::fabs(v));
        double worst = 0;
        std::size_t skipped = 0;
        for (std::size_t o = 0; o < ref.scores.size(); ++o) {
            if (ref.ambiguous[o]) {
                ++skipped;
                continue;
            }
            worst = std::fmax(worst, std::fabs(static_cast<double>(s.data()[o]) - ref.scores[o]));
        }
        CHECK(skipped < ref.scores.size() / 20);
        CHECK(worst <= (float16bits ? 1e-4 : (std::is_same_v<S, float> ? 1e-6 : 1e-13)) * maxref);
    }
}

// Every instruction-set tier computes the same integer dot products and rescales them in the same
// order: Ŝ is bit-identical on the portable, AVX2 and AVX-512 paths (those this CPU has), for head
// dimensions around the tiers' groups of 4 and blocks of 8 / 16 keys, every bit width, and padding of
// the key blocks.
TEST_CASE_TEMPLATE("predictor: every ISA tier gives Ŝ bit for bit", T, float, double, deq::float16) {
    std::vector<deq::arch::isa> tiers{deq::arch::isa::portable};
    if (deq::arch::detected_isa() >= deq::arch::isa::avx2) tiers.push_back(deq::arch::isa::avx2);
    if (deq::arch::detected_isa() >= deq::arch::isa::avx512) tiers.push_back(deq::arch::isa::avx512);
    MESSAGE("tiers tested: ", tiers.size(), " (widest ", deq::arch::to_string(deq::arch::detected_isa()), ")");
    std::uint64_t seed = 500;
    for (deq::index_t d : {1, 3, 4, 7, 32, 33, 64, 80, 128, 130}) {
        for (deq::index_t lk : {1, 8, 15, 16, 17, 40, 300}) {
            for (int bits : {2, 4, 8, 16}) {
                CAPTURE(d);
                CAPTURE(lk);
                CAPTURE(bits);
                deq::tensor<T, 4> q({1, 2, 11, d}), k({1, 2, lk, d});
                deq_test::fill_normal(q, ++seed, 0.2, 1.1);
                deq_test::fill_normal(k, ++seed, -0.1, 0.9);
                if (lk > 2) {
                    for (deq::index_t t = 0; t < d; ++t) k(0, 1, 2, t) = T(0);  // a zero-norm key
                }
                deq::predictor_config cfg = deq::calibrate_predictor(q.cview(), k.cview(), bits);
                cfg.threshold_q *= 0.7;  // clamp some levels
                std::vector<deq::tensor<deq::accum_t<T>, 4>> results;
                for (auto tier : tiers) {
                    deq::arch::scoped_isa_limit const limit(tier);
                    results.push_back(deq::predict_scores(deq::exec::threads{2}, q.cview(), k.cview(), cfg));
                }
                for (std::size_t t = 1; t < results.size(); ++t) {
                    CHECK_MESSAGE(results[t].storage() == results[0].storage(), deq::arch::to_string(tiers[t]));
                }
            }
        }
    }
}

TEST_CASE("predictor: the SIMD tiers' reciprocal rescaling keeps Ŝ bit for bit for any scale product") {
    // The SIMD tiers replace the division by sx·sy with a checked reciprocal form where it is exact for
    // every possible dot product; 300 random scale products at 4 bits (where it applies) against the
    // portable division. Under DEQ_ISA=portable (or an old CPU) there is no SIMD tier to check.
    if (deq::arch::active_isa() < deq::arch::isa::avx2) return;
    deq::tensor<float, 4> q({1, 1, 9, 64}), k({1, 1, 40, 64});
    deq_test::fill_normal(q, 610, 0.1, 1.0);
    deq_test::fill_normal(k, 611, -0.2, 1.0);
    std::uint64_t state = 612;
    int reciprocal_used = 0;
    for (int trial = 0; trial < 300; ++trial) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        double const u = static_cast<double>(state >> 11) / 9007199254740992.0;  // [0, 1)
        deq::predictor_config cfg;
        cfg.bits = 4;
        cfg.threshold_q = 0.05 + u;
        cfg.threshold_k = 0.3 + 0.7 * u * u;
        auto const ops = deq::detail::make_predictor_operands<deq::exec::serial, float, float, std::int8_t>(
            deq::exec::serial{}, q.cview(), k.cview(), cfg);
        reciprocal_used += ops.reciprocal != 0.0f ? 1 : 0;
        deq::tensor<float, 4> fast = deq::predict_scores(deq::exec::serial{}, q.cview(), k.cview(), cfg), portable;
        {
            deq::arch::scoped_isa_limit const limit(deq::arch::isa::portable);
            portable = deq::predict_scores(deq::exec::serial{}, q.cview(), k.cview(), cfg);
        }
        CAPTURE(trial);
        CHECK(fast.storage() == portable.storage());
    }
    MESSAGE("reciprocal rescaling used in ", reciprocal_used, " of 300 calls");
    CHECK(reciprocal_used > 0);
}

TEST_CASE("predictor: the ISA tier can be limited, never widened past the CPU") {
    using deq::arch::isa;
    CHECK(deq::arch::parse_isa("avx2") == isa::avx2);
    CHECK(deq_test::message_of<deq::invalid_argument>([] { (void)deq::arch::parse_isa("sse9", "DEQ_ISA"); }).find("'DEQ_ISA'") !=
          std::string::npos);
    {
        deq::arch::scoped_isa_limit const limit(isa::portable);
        CHECK(deq::arch::active_isa() == isa::portable);
    }
    if (std::getenv("DEQ_ISA") == nullptr) CHECK(deq::arch::active_isa() == deq::arch::detected_isa());
    if (deq::arch::detected_isa() != isa::avx512) {
        CHECK_THROWS_AS(deq::arch::limit_isa(isa::avx512), deq::invalid_argument);
    }
}

TEST_CASE("predictor: row norms are bit-identical on every tier, 8 rows at a time, for strided rows and any magnitude") {
    // Each norm must be the correctly rounded sqrt of the double sum of squares in entry order (what the
    // portable loop computes). Entries spread over 40 binades; 21 rows per head (blocks of 8 rows cross
    // heads and end short), a row of zeros, and a strided view.
    deq::index_t const B = 2, H = 3, L = 21, d = 37;
    deq::tensor<float, 4> storage({B, L, H, d});  // [B, L, H, d] storage, viewed as [B, H, L, d]
    std::uint64_t state = 12345;
    for (deq::index_t n = 0; n < storage.size(); ++n) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        double const u = static_cast<double>(state >> 11) / 9007199254740992.0;
        double const sign = (state >> 7) & 1 ? -1.0 : 1.0;
        storage.data()[n] = static_cast<float>(sign * std::ldexp(0.5 + u, static_cast<int>((state >> 20) % 40) - 20));
    }
    for (deq::index_t t = 0; t < d; ++t) storage(1, 4, 2, t) = 0.0f;  // (b = 1, h = 2, i = 4): zero norm
    deq::tensor_view<float const, 4> const x(storage.data(), {B, H, L, d}, {L * H * d, d, H * d, 1});
    deq::predictor_config cfg = deq::calibrate_predictor(x, x, 4);
    std::vector<std::vector<float>> norms;
    for (auto tier : {deq::arch::isa::portable, deq::arch::isa::avx2, deq::arch::isa::avx512}) {
        deq::arch::scoped_isa_limit const limit(tier);
        auto const o = deq::detail::make_predictor_operands<deq::exec::threads, float, float, std::int8_t>(deq::exec::threads{2}, x, x, cfg);
        norms.push_back(o.q_norms);
        CHECK(o.k_norms == o.q_norms);
    }
    // The portable norms are the correctly rounded sqrt of the sum in file order.
    for (deq::index_t b = 0; b < B; ++b)
        for (deq::index_t h = 0; h < H; ++h)
            for (deq::index_t i = 0; i < L; ++i) {
                double sum = 0;
                for (deq::index_t t = 0; t < d; ++t) sum += static_cast<double>(x(b, h, i, t)) * static_cast<double>(x(b, h, i, t));
                CHECK(norms[0][static_cast<std::size_t>((b * H + h) * L + i)] == static_cast<float>(std::sqrt(sum)));
            }
    CHECK(norms[1] == norms[0]);
    CHECK(norms[2] == norms[0]);
    // A non-finite entry is still named, wherever it sits in its block of 8 rows.
    storage(0, 5, 1, 11) = std::numeric_limits<float>::quiet_NaN();
    std::string const msg = deq_test::message_of<deq::numeric_error>([&] { (void)deq::predict_scores(deq::exec::serial{}, x, x, cfg); });
    CHECK(msg.find("q") != std::string::npos);
    CHECK(msg.find("[0, 1, 5, 11]") != std::string::npos);
}

#if DEQ_ARCH_X86
TEST_CASE("predictor: dividing by sqrt(d) as fma(y, hi, y * lo) is exact wherever it is used") {
    // predictor_sqrt_d_split() verifies the replacement over every float significand; this checks the claim
    // that the result then holds for every exponent too (random y over the whole range, values next to the
    // smallest |y| that takes the fast path, zeros), against the IEEE division.
    if (deq::arch::detected_isa() != deq::arch::isa::avx512) return;
    std::mt19937 gen(77);
    std::uniform_int_distribution<std::uint32_t> any_bits(0, 0x7F7FFFFFu);  // positive finite floats
    deq::index_t used = 0;
    for (deq::index_t d : {2, 3, 5, 6, 7, 10, 12, 24, 32, 48, 80, 96, 100, 384}) {
        deq::detail::predictor_operands<float, std::int8_t> o;
        o.tier = deq::arch::isa::avx512;
        o.sqrt_d = static_cast<float>(std::sqrt(static_cast<double>(d)));
        auto const [hi, lo] = deq::detail::predictor_sqrt_d_split(o);
        CAPTURE(d);
        if (hi == 0.0f) continue;  // not exact for this d: the rescaling divides
        ++used;
        CHECK(hi == 1.0f / o.sqrt_d);
        // rows of "dot products" 1 with norms chosen so that y = qn * kn_j is the value under test
        std::vector<float> kn, expected;
        float const small = deq::arch::avx512::constant_quotient_min(lo);
        for (int n = 0; n < 4000; ++n) {
            std::uint32_t b = any_bits(gen);
            float y;
            std::memcpy(&y, &b, sizeof(y));
            kn.push_back(n % 2 == 0 ? y : -y);
        }
        for (float y : {small, std::nextafter(small, 0.0f), std::nextafter(small, 1.0f), 0.0f, -0.0f, 1.0f, 3.0e38f, 1.0e-38f,
                        std::numeric_limits<float>::denorm_min()})
            kn.push_back(y);
        std::vector<std::int32_t> dots(kn.size(), 1);
        std::vector<float> out(kn.size());
        deq::arch::avx512::rescale_row(dots.data(), 1.0f, kn.data(), 1.0f, 0.0f, o.sqrt_d, static_cast<deq::index_t>(kn.size()), out.data(), hi, lo);
        deq::index_t mismatches = 0;
        for (std::size_t n = 0; n < kn.size(); ++n) {
            float const want = kn[n] / o.sqrt_d;
            if (std::memcmp(&want, &out[n], sizeof(float)) != 0) {
                ++mismatches;
                MESSAGE("y = ", kn[n], " want ", want, " got ", out[n]);
            }
        }
        CHECK(mismatches == 0);
    }
    MESSAGE("dims with the division-free path: ", used);
    CHECK(used > 0);
}
#endif
