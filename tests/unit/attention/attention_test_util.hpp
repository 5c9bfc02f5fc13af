// Helpers for the attention unit tests: an independent naive attention in double, tolerances per
// element type, random inputs and exception-message checks.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <deq/core/bit_mask.hpp>
#include <deq/core/padding.hpp>
#include <deq/core/tensor.hpp>
#include <deq/numeric/float16.hpp>

#include "support/test_util.hpp"

namespace attn_test {

using deq::index_t;

/// Relative tolerance (to the largest |output|) of the comparison with the double reference.
template <class T>
double tolerance() {
    if constexpr (std::is_same_v<T, double>) return 1e-12;
    else if constexpr (std::is_same_v<T, float>) return 2e-6;
    else return 2e-3;  // 16-bit output rounding
}

/// Inputs of one attention problem.
template <class T>
struct problem {
    deq::tensor<T, 4> q, k, v, out;
    std::vector<std::uint8_t> valid_storage;
    deq::key_padding padding{};

    problem(index_t B, index_t H, index_t Lq, index_t Lk, index_t d, index_t dv, std::uint64_t seed, double scale = 1.0)
        : q({B, H, Lq, d}), k({B, H, Lk, d}), v({B, H, Lk, dv}), out({B, H, Lq, dv}) {
        deq_test::fill_normal(q, seed, 0.0, scale);
        deq_test::fill_normal(k, seed + 1, 0.0, scale);
        deq_test::fill_normal(v, seed + 2);
    }

    /// Key padding with the given number of real tokens per sequence.
    void pad(std::initializer_list<index_t> lengths) {
        index_t const B = k.extent(0), L = k.extent(2);
        valid_storage.assign(static_cast<std::size_t>(B * L), 0);
        index_t b = 0;
        for (index_t n : lengths) {
            for (index_t j = 0; j < n; ++j) valid_storage[static_cast<std::size_t>(b * L + j)] = 1;
            ++b;
        }
        padding = deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid_storage.data(), {B, L})};
    }
};

/// Which score an entry uses in the naive reference.
struct naive_masks {
    std::function<bool(index_t, index_t, index_t, index_t)> kept;     // null = all kept
    std::function<bool(index_t, index_t, index_t, index_t)> refined;  // null = all exact
    std::function<double(index_t, index_t, index_t, index_t)> predicted;
};

/// Naive attention in double with the mathematical meaning of the -10000 penalties (a padded key and a
/// pruned entry each carry one): only the keys with the fewest penalties in their row take part, as
/// exp(-10000) = 0. In a row with no kept real key, that is the softmax of the unpenalised scores over
/// the real keys (plus any kept padded key), the exact-arithmetic limit of the reference.
template <class T>
std::vector<double> naive_attention(problem<T> const& p, naive_masks const& m = {}) {
    index_t const B = p.q.extent(0), H = p.q.extent(1), Lq = p.q.extent(2), d = p.q.extent(3);
    index_t const Lk = p.k.extent(2), dv = p.v.extent(3);
    std::vector<double> out(static_cast<std::size_t>(B * H * Lq * dv), 0.0);
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < Lq; ++i) {
                std::vector<double> s(static_cast<std::size_t>(Lk));
                std::vector<int> penalties(static_cast<std::size_t>(Lk), 0);
                int fewest = 2;
                for (index_t j = 0; j < Lk; ++j) {
                    bool const real = p.padding.is_valid(b, j);
                    bool const kept = !m.kept || m.kept(b, h, i, j);
                    bool const exact = !m.refined || m.refined(b, h, i, j);
                    double x = 0;
                    if (exact) {
                        for (index_t t = 0; t < d; ++t)
                            x += static_cast<double>(p.q(b, h, i, t)) * static_cast<double>(p.k(b, h, j, t));
                        x /= std::sqrt(static_cast<double>(d));
                    } else {
                        x = m.predicted(b, h, i, j);
                    }
                    s[static_cast<std::size_t>(j)] = x;
                    int const c = (real ? 0 : 1) + (kept ? 0 : 1);
                    penalties[static_cast<std::size_t>(j)] = c;
                    fewest = c < fewest ? c : fewest;
                }
                std::vector<int> use(static_cast<std::size_t>(Lk), 0);
                for (index_t j = 0; j < Lk; ++j) use[static_cast<std::size_t>(j)] = penalties[static_cast<std::size_t>(j)] == fewest;
                double mx = -std::numeric_limits<double>::infinity();
                for (index_t j = 0; j < Lk; ++j)
                    if (use[static_cast<std::size_t>(j)]) mx = std::fmax(mx, s[static_cast<std::size_t>(j)]);
                double sum = 0;
                for (index_t j = 0; j < Lk; ++j)
                    if (use[static_cast<std::size_t>(j)]) sum += std::exp(s[static_cast<std::size_t>(j)] - mx);
                for (index_t j = 0; j < Lk; ++j) {
                    if (!use[static_cast<std::size_t>(j)]) continue;
                    double const w = std::exp(s[static_cast<std::size_t>(j)] - mx) / sum;
                    for (index_t t = 0; t < dv; ++t)
                        out[static_cast<std::size_t>(((b * H + h) * Lq + i) * dv + t)] +=
                            w * static_cast<double>(p.v(b, h, j, t));
                }
            }
    return out;
}

/// Largest |a - b| relative to the largest |b|.
template <class T>
double max_rel_error(deq::tensor<T, 4> const& got, std::vector<double> const& want) {
    double err = 0, mag = 0;
    for (std::size_t n = 0; n < want.size(); ++n) {
        err = std::fmax(err, std::fabs(static_cast<double>(got.storage()[n]) - want[n]));
        mag = std::fmax(mag, std::fabs(want[n]));
    }
    return mag > 0 ? err / mag : err;
}

/// True when the two tensors hold bit-identical values.
template <class T>
bool bitwise_equal(deq::tensor<T, 4> const& a, deq::tensor<T, 4> const& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t n = 0; n < a.storage().size(); ++n) {
        if (!(static_cast<double>(a.storage()[n]) == static_cast<double>(b.storage()[n]))) return false;
        if (std::signbit(static_cast<double>(a.storage()[n])) != std::signbit(static_cast<double>(b.storage()[n])))
            return false;
    }
    return true;
}

/// Runs @p f and checks that it throws E with a message containing every one of @p parts.
template <class E, class F>
void check_throws(F&& f, std::initializer_list<char const*> parts) {
    bool thrown = false;
    try {
        f();
    } catch (E const& e) {
        thrown = true;
        std::string const what = e.what();
        for (char const* part : parts) {
            INFO("message: " << what);
            CHECK(what.find(part) != std::string::npos);
        }
    }
    CHECK(thrown);
}

/// A random mask with the given probability of a set bit.
inline deq::bit_mask random_mask(index_t B, index_t H, index_t L, index_t Lk, double density, std::uint64_t seed) {
    deq::bit_mask m(B, H, L, Lk);
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t j = 0; j < Lk; ++j) m.set(b, h, i, j, u(gen) < density);
    return m;
}

}  // namespace attn_test
