// The encoder's vectorised row kernels (GELU, LayerNorm) and the split linear layers against
// double-precision references; a non-finite activation in dense attention.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <deq/bert/blas.hpp>
#include <deq/bert/detail/kernels.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>

#include "tiny_model.hpp"

using deq::index_t;

TEST_CASE("bert_gelu_kernel and bert_layer_norm_row against double references") {
    std::vector<float> x;
    for (int i = -20000; i <= 20000; ++i) x.push_back(static_cast<float>(i) * 6e-4f);  // [-12, 12]
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f, 1e4f, -1e4f}) x.push_back(v);
    x.resize(x.size() + 16 - x.size() % 16 + 5, 0.5f);  // a tail after the blocks of 16
    std::vector<float> y = x;
    deq::detail::bert_gelu_kernel{y.data(), static_cast<index_t>(y.size())}(0);
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        double const v = x[i];
        double const ref = v * 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
        worst = std::max(worst, std::fabs(y[i] - ref) / (1.0 + std::fabs(ref)));
    }
    CHECK(worst < 4e-7);
    CHECK(std::isnan(deq::detail::bert_gelu_kernel<float>::gelu(std::numeric_limits<float>::quiet_NaN())));

    std::mt19937_64 gen(5);
    std::normal_distribution<float> d(3.0f, 4.0f);
    for (index_t n : {1, 5, 16, 37, 384, 1024}) {
        std::vector<float> row(static_cast<std::size_t>(n)), g(row.size()), b(row.size());
        for (std::size_t i = 0; i < row.size(); ++i) {
            row[i] = d(gen);
            g[i] = 1.0f + 0.1f * d(gen);
            b[i] = 0.1f * d(gen);
        }
        double mean = 0, var = 0;
        for (float v : row) mean += v;
        mean /= double(n);
        for (float v : row) var += (v - mean) * (v - mean);
        var /= double(n);
        std::vector<double> ref(row.size());
        for (std::size_t i = 0; i < row.size(); ++i) ref[i] = (row[i] - mean) / std::sqrt(var + 1e-12) * g[i] + b[i];
        deq::detail::bert_layer_norm_row(row.data(), n, g.data(), b.data(), 1e-12);
        double err = 0;
        for (std::size_t i = 0; i < row.size(); ++i) err = std::max(err, std::fabs(row[i] - ref[i]));
        CHECK_MESSAGE(err < (n == 1 ? 1e-6 : 5e-6), "n " << n << " error " << err);
    }
}

TEST_CASE("linear and linear_concat on a space: row and column splits equal a double reference") {
    std::mt19937_64 gen(9);
    std::normal_distribution<float> d(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& v, std::size_t n) {
        v.resize(n);
        for (auto& x : v) x = d(gen);
    };
    // (rows, in, out): fewer rows than columns (column split) and more (row split), odd sizes
    for (auto const& shape : std::vector<std::array<index_t, 3>>{{5, 7, 200}, {70, 33, 96}, {130, 40, 64}, {200, 16, 48}, {64, 8, 1152}}) {
        index_t const n = shape[0], in = shape[1], out = shape[2];
        std::vector<float> x, w1, w2, b1;
        fill(x, static_cast<std::size_t>(n * in));
        fill(w1, static_cast<std::size_t>(out * in));
        fill(w2, static_cast<std::size_t>(33 * in));
        fill(b1, static_cast<std::size_t>(out));
        index_t const ld = out + 33 + 3;  // strided output rows
        auto ref = [&](index_t r, index_t c) {
            double s = 0;
            if (c < out) {
                for (index_t t = 0; t < in; ++t) s += double(x[r * in + t]) * w1[c * in + t];
                return s + b1[c];
            }
            for (index_t t = 0; t < in; ++t) s += double(x[r * in + t]) * w2[(c - out) * in + t];
            return s;
        };
        deq::tensor_view<float const, 2> xv(x.data(), {n, in});
        deq::tensor_view<float const, 2> w1v(w1.data(), {out, in}), w2v(w2.data(), {33, in});
        deq::tensor_view<float const, 1> b1v(b1.data(), {out});
        for (int threads : {1, 2, 3}) {
            deq::exec::threads const space(threads);
            std::vector<float> y(static_cast<std::size_t>(n * ld), -7.0f);
            deq::bert::linear_concat<deq::exec::threads, 2>(space, xv, {w1v, w2v}, {b1v, {}},
                                                            deq::tensor_view<float, 2>(y.data(), {n, out + 33}, {ld, 1}));
            std::vector<float> y1(static_cast<std::size_t>(n * out));
            deq::bert::linear(space, xv, w1v, b1v, deq::tensor_view<float, 2>(y1.data(), {n, out}));
            double err = 0, err1 = 0;
            bool gap_untouched = true;
            for (index_t r = 0; r < n; ++r) {
                for (index_t c = 0; c < out + 33; ++c) err = std::max(err, std::fabs(y[r * ld + c] - ref(r, c)));
                for (index_t c = 0; c < out; ++c) err1 = std::max(err1, std::fabs(y1[r * out + c] - ref(r, c)));
                for (index_t c = out + 33; c < ld; ++c) gap_untouched = gap_untouched && y[r * ld + c] == -7.0f;
            }
            CHECK_MESSAGE(err < 1e-4, n << "x" << in << "x" << out << " threads " << threads << " error " << err);
            CHECK(err1 < 1e-4);
            CHECK(gap_untouched);
        }
    }
    deq::exec::threads const space(2);
    std::vector<float> x(12), w(6), y(8);
    auto bad = [&] {
        deq::bert::linear_concat<deq::exec::threads, 1>(space, deq::tensor_view<float const, 2>(x.data(), {4, 3}),
                                                        {deq::tensor_view<float const, 2>(w.data(), {2, 3})}, {{}},
                                                        deq::tensor_view<float, 2>(y.data(), {4, 1}));
    };
    CHECK_THROWS_AS(bad(), deq::shape_error);
}

TEST_CASE("a non-finite activation in dense mode is reported as deq::attention reports it") {
    auto const c = bert_test::tiny_config();
    auto w = bert_test::tiny_weights(c);
    w.layers[1].key.weight(3, 5) = std::numeric_limits<float>::infinity();
    deq::bert::bert_model const model(c, std::move(w), "tiny");
    auto const in = bert_test::tiny_input(c, {9, 20});
    std::string a;
    try {
        (void)model.forward(deq::exec::threads{2}, in, deq::bert::attention_mode::dense());
    } catch (deq::numeric_error const& e) {
        a = e.what();
    }
    CHECK(a.find("non-finite") != std::string::npos);
    CHECK(a.find("'k'") != std::string::npos);
}

TEST_CASE("bert_simd_run: the CPU's vector tier computes GELU and LayerNorm as compiled, erf within 2e-7") {
    std::mt19937_64 gen(21);
    std::normal_distribution<float> d(0.0f, 3.0f);
    index_t const n = 389;
    std::vector<float> x(static_cast<std::size_t>(n)), g(x.size()), b(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = d(gen);
        g[i] = 1.0f + 0.1f * d(gen);
        b[i] = 0.1f * d(gen);
    }
    // the kernels' loops, run as the program was compiled and through the tier the CPU supports
    auto work = [&](std::vector<float>& gelu, std::vector<float>& norm) {
        gelu = norm = x;
        for (auto& v : gelu) v = deq::detail::bert_gelu_kernel<float>::gelu(v);
        deq::detail::bert_layer_norm_row(norm.data(), n, g.data(), b.data(), 1e-12);
    };
    std::vector<float> g0, n0, g1, n1;
    work(g0, n0);
    deq::detail::bert_simd_run([&] { work(g1, n1); });
    MESSAGE("vector tier of this CPU: " << static_cast<int>(deq::detail::bert_host_simd_tier()));
    // AVX-512F has FMA instructions: with contraction on (GCC's default for C++), a tier may fuse a*b + c,
    // so the tiers agree to rounding, not bit for bit
    auto close = [](std::vector<float> const& a, std::vector<float> const& c) {
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::fabs(a[i] - c[i]) > 1e-6f * (1.0f + std::fabs(a[i]))) return false;
        return true;
    };
    CHECK(close(g0, g1));
    CHECK(close(n0, n1));
    // erf through the tier: the accuracy bound holds there too
    std::vector<float> xs, es;
    for (int i = -800000; i <= 800000; ++i) xs.push_back(static_cast<float>(i) * 6e-6f);  // [-4.8, 4.8]
    es.resize(xs.size());
    deq::detail::bert_simd_run([&] {
        for (std::size_t i = 0; i < xs.size(); ++i) es[i] = deq::erf_vectorizable(xs[i]);
    });
    double worst = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::fabs(es[i] - std::erf(static_cast<double>(xs[i]))));
    CHECK_MESSAGE(worst <= 2e-7, "worst " << worst);
}
