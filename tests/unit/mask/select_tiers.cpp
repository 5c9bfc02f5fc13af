// The predicted softmax and every selection rule give the same bits on every instruction-set tier
// (portable, AVX2, AVX-512 where the CPU has them): the masks do not depend on the machine.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <deq/arch/isa.hpp>
#include <deq/arch/softmax_avx512.hpp>
#include <deq/core/padding.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/detail/softmax_row.hpp>
#include <deq/mask/mask_rule.hpp>
#include <deq/mask/select.hpp>
#include <deq/numeric/exp.hpp>

#include "support/test_util.hpp"

using deq::index_t;

namespace {

std::vector<deq::arch::isa> tiers() {
    std::vector<deq::arch::isa> t{deq::arch::isa::portable};
    if (deq::arch::detected_isa() >= deq::arch::isa::avx2) t.push_back(deq::arch::isa::avx2);
    if (deq::arch::detected_isa() >= deq::arch::isa::avx512) t.push_back(deq::arch::isa::avx512);
    return t;
}

bool same_bits(std::vector<float> const& a, std::vector<float> const& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

#if DEQ_ARCH_X86
/// exp_estimate_ps() and exp_fused_ps() of 16 floats.
DEQ_TARGET_AVX512 void store_estimates(float const* x, float* estimate, float* fused) {
    __m512 const v = _mm512_loadu_ps(x);
    _mm512_storeu_ps(estimate, deq::arch::avx512::exp_estimate_ps(v));
    _mm512_storeu_ps(fused, deq::arch::avx512::exp_fused_ps(v));
}
#endif

}  // namespace

TEST_CASE("exp_fused: within 2 ulp of exp and the reference for its SIMD twins") {
    // Against the correctly rounded exp (double, rounded once) on a dense sweep of [-104, 89].
    double worst = 0;
    for (double x = -103.9; x < 88.7; x += 0.00173) {
        float const xf = static_cast<float>(x);
        float const got = deq::exp_fused(xf);
        double const want = std::exp(static_cast<double>(xf));
        if (want < 1.17549435e-38) continue;  // subnormal results: relative ulps are meaningless
        float const wf = static_cast<float>(want);
        double const ulp = std::nextafter(wf, INFINITY) - wf;
        worst = std::fmax(worst, std::fabs(static_cast<double>(got) - want) / ulp);
    }
    CHECK(worst <= 2.0);
    CHECK(deq::exp_fused(0.0f) == 1.0f);
    CHECK(deq::exp_fused(-200.0f) == 0.0f);
    CHECK(std::isinf(deq::exp_fused(100.0f)));
}

TEST_CASE("softmax rows: bit for bit on every tier, with padding and every tail length") {
    std::mt19937_64 gen(42);
    std::normal_distribution<float> dist(0.0f, 3.0f);
    auto const all = tiers();
    MESSAGE("tiers: ", all.size());
    for (index_t n : {1, 2, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 500}) {
        for (int trial = 0; trial < 8; ++trial) {
            std::vector<float> row(static_cast<std::size_t>(n));
            for (auto& x : row) x = dist(gen) * (trial % 3 == 0 ? 10.0f : 1.0f);
            if (trial == 5) row.assign(row.size(), 1.25f);  // ties everywhere
            std::vector<std::uint64_t> padded(static_cast<std::size_t>(n / 64 + 1), 0);
            bool const with_padding = trial % 2 == 1;
            for (index_t j = 0; j < n; ++j)
                if (with_padding && (j * 7 + trial) % 5 == 0) padded[static_cast<std::size_t>(j / 64)] |= std::uint64_t{1} << (j % 64);
            std::vector<float> ref = row;
            deq::detail::softmax_row_portable(ref.data(), n, with_padding ? padded.data() : nullptr);
            for (auto tier : all) {
                std::vector<float> got = row;
                deq::detail::softmax_row(got.data(), n, with_padding ? padded.data() : nullptr, tier);
                CAPTURE(n);
                CAPTURE(trial);
                CHECK_MESSAGE(same_bits(got, ref), deq::arch::to_string(tier));
            }
            double sum = 0;
            for (float p : ref) sum += p;
            CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
        }
    }
}

TEST_CASE("softmax threshold rows: P̂ > t without dividing gives the bits of divide-then-compare") {
    std::mt19937_64 gen(43);
    std::normal_distribution<float> dist(0.0f, 3.0f);
    auto const all = tiers();
    auto const expected = [](std::vector<float> const& p, float t, bool inverse) {
        std::vector<std::uint64_t> words(p.size() / 64 + 1, 0);
        for (std::size_t j = 0; j < p.size(); ++j) {
            if (inverse ? p[j] <= t : p[j] > t) words[j / 64] |= std::uint64_t{1} << (j % 64);
        }
        return words;
    };
    for (index_t n : {1, 5, 16, 31, 64, 97, 300}) {
        for (int trial = 0; trial < 4; ++trial) {
            std::vector<float> row(static_cast<std::size_t>(n));
            for (auto& x : row) x = dist(gen) * (trial == 0 ? 12.0f : 1.0f);
            std::vector<std::uint64_t> padded(static_cast<std::size_t>(n / 64 + 1), 0);
            if (trial % 2 == 1) padded[0] = 0x5555555555555555ULL;
            std::uint64_t const* pad = trial % 2 == 1 ? padded.data() : nullptr;
            std::vector<float> p = row;
            deq::detail::softmax_row_portable(p.data(), n, pad);
            // Thresholds on and next to the probabilities themselves (the rounding boundaries), and
            // special values.
            std::vector<float> thresholds{0.0f, -0.0f, -1.0f, 1.0f, 1.5f, 0.02f, 0.002f, std::numeric_limits<float>::denorm_min(),
                                          std::numeric_limits<float>::min()};
            for (index_t j = 0; j < n; j += std::max<index_t>(1, n / 7)) {
                float const v = p[static_cast<std::size_t>(j)];
                thresholds.insert(thresholds.end(), {v, std::nextafter(v, 2.0f), std::nextafter(v, -1.0f)});
            }
            for (float t : thresholds) {
                for (bool inverse : {false, true}) {
                    for (auto tier : all) {
                        std::vector<float> x = row;
                        std::vector<std::uint64_t> words(static_cast<std::size_t>(n / 64 + 1), 0);
                        CHECK(deq::detail::softmax_threshold_row_checked(x.data(), n, pad, inverse, t, words.data(), tier) == -1);
                        CAPTURE(n);
                        CAPTURE(t);
                        CAPTURE(inverse);
                        CHECK_MESSAGE(words == expected(p, t, inverse), deq::arch::to_string(tier));
                    }
                }
            }
        }
    }
#if DEQ_ARCH_X86
    if (deq::arch::detected_isa() == deq::arch::isa::avx512) {
        // Exact ties e / sum = (t + t⁺) / 2, possible with subnormal quotients: round half to even.
        float const tiny = std::numeric_limits<float>::denorm_min();
        struct tie_case {
            float e, sum, t;
        };
        for (tie_case c : {tie_case{tiny, 2.0f, 0.0f}, tie_case{3 * tiny, 2.0f, tiny}, tie_case{5 * tiny, 2.0f, 2 * tiny},
                           tie_case{7 * tiny, 2.0f, 3 * tiny}, tie_case{tiny, 2.0f, -0.0f}}) {
            for (bool inverse : {false, true}) {
                std::uint64_t word = 0;
                deq::arch::avx512::quotient_threshold_row(&c.e, 1, c.sum, c.t, inverse, &word);
                float const quotient = c.e / c.sum;
                bool const want = inverse ? quotient <= c.t : quotient > c.t;
                CAPTURE(c.e);
                CAPTURE(c.t);
                CHECK(word == (want ? 1u : 0u));
            }
        }
    }
#endif
}

#if DEQ_ARCH_X86
TEST_CASE("softmax threshold rows: the AVX-512 rows decided from a bound on the sum give the exact bits, or decline") {
    if (deq::arch::detected_isa() < deq::arch::isa::avx512) {
        MESSAGE("no AVX-512 on this CPU: the estimated rows do not run");
        return;
    }
    namespace avx = deq::arch::avx512;
    // The estimate's error bound, on every 509th float in [-150, 0] and at both ends; with DEQ_EXHAUSTIVE=1
    // in the environment, on every float of that range (docs/benchmarks.md: 2^-18.4 at most).
    {
        std::uint64_t const stride = std::getenv("DEQ_EXHAUSTIVE") != nullptr ? 1 : 509;
        float const lowest = -150.0f;
        std::uint32_t low_bits;
        std::memcpy(&low_bits, &lowest, sizeof(low_bits));
        double worst = 0;
        alignas(64) float xs[16], est[16], ref[16];
        for (std::uint64_t bits = 0x80000000u; bits <= low_bits; bits += stride * 16) {
            for (int l = 0; l < 16; ++l) {
                auto const v = static_cast<std::uint32_t>(std::min<std::uint64_t>(bits + stride * static_cast<unsigned>(l), low_bits));
                std::memcpy(&xs[l], &v, sizeof(v));
            }
            xs[0] = bits == 0x80000000u ? 0.0f : xs[0];
            xs[15] = bits == 0x80000000u ? -150.0f : xs[15];
            store_estimates(xs, est, ref);
            for (int l = 0; l < 16; ++l) {
                double const e = ref[l], g = est[l];
                REQUIRE(std::fabs(g - e) <= avx::exp_estimate_relative_error * e + avx::exp_estimate_absolute_error);
                if (e >= 1.17549435e-38) worst = std::fmax(worst, std::fabs(g - e) / e);
            }
        }
        MESSAGE("exp estimate: worst relative error ", worst);
        CHECK(worst < 0x1p-17);
    }
    std::mt19937_64 gen(44);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    auto const expected = [](std::vector<float> const& p, float t, bool inverse) {
        std::vector<std::uint64_t> words(p.size() / 64 + 1, 0);
        for (std::size_t j = 0; j < p.size(); ++j) {
            if (inverse ? p[j] <= t : p[j] > t) words[j / 64] |= std::uint64_t{1} << (j % 64);
        }
        return words;
    };
    int rows = 0, decided = 0, on_threshold = 0, declined_on_threshold = 0;
    int skipping_rows = 0;
    for (index_t n : {1, 3, 16, 45, 384, 512, 2048, 5000}) {
        for (int trial = 0; trial < 7; ++trial) {
            float const sigma = trial % 3 == 0 ? 1.0f : trial % 3 == 1 ? 3.0f : 10.0f;
            std::vector<float> row(static_cast<std::size_t>(n));
            for (auto& x : row) x = sigma * dist(gen);
            if (trial == 4) row.assign(row.size(), 0.75f);                   // flat: every P̂ = 1 / n
            if (trial == 5 && n > 4) row[static_cast<std::size_t>(n / 2)] += 30.0f;  // one dominant key
            if (trial == 6) {  // local attention: scores fall with the distance to key n / 3
                for (index_t j = 0; j < n; ++j) row[static_cast<std::size_t>(j)] = 0.3f * dist(gen) - 0.2f * static_cast<float>(std::abs(j - n / 3));
            }
            float const m = *std::max_element(row.begin(), row.end());
            // maxima of chunks of 256 entries, as the fused selection supplies them
            index_t const chunk = 256;
            std::vector<float> chunk_max;
            for (index_t j0 = 0; j0 < n; j0 += chunk)
                chunk_max.push_back(*std::max_element(row.begin() + j0, row.begin() + std::min(n, j0 + chunk)));
            if (std::any_of(chunk_max.begin(), chunk_max.end(), [&](float c) { return c - m < -24.0f; })) ++skipping_rows;
            std::vector<float> p = row;
            deq::detail::softmax_row_portable(p.data(), n, nullptr);
            std::vector<float> generic{0.02f, 0.002f, 1e-4f, 0.3f, 0.9f, 0x1p-60f};
            for (float t : generic) {
                for (bool inverse : {false, true}) {
                    std::vector<std::uint64_t> words(static_cast<std::size_t>(n / 64 + 1), 0);
                    ++rows;
                    CAPTURE(n);
                    CAPTURE(trial);
                    CAPTURE(t);
                    if (avx::softmax_threshold_row_estimated(row.data(), n, m, t, inverse, words.data())) {
                        ++decided;
                        CHECK(words == expected(p, t, inverse));
                    }
                    std::vector<std::uint64_t> chunked(static_cast<std::size_t>(n / 64 + 1), 0);
                    if (avx::softmax_threshold_row_estimated(row.data(), n, m, t, inverse, chunked.data(), chunk_max.data(), chunk)) {
                        CHECK(chunked == expected(p, t, inverse));
                    }
                    // the dispatching row with the maximum supplied, which declines to the exact rows
                    std::vector<float> x = row;
                    std::vector<std::uint64_t> all(static_cast<std::size_t>(n / 64 + 1), 0);
                    CHECK(avx::softmax_threshold_row_checked(x.data(), n, nullptr, -10000.0f, t, inverse, all.data(), &m) == -1);
                    CHECK(all == expected(p, t, inverse));
                    x = row;
                    all.assign(all.size(), 0);
                    CHECK(avx::softmax_threshold_row_checked(x.data(), n, nullptr, -10000.0f, t, inverse, all.data(), &m, chunk_max.data(),
                                                             chunk) == -1);
                    CHECK(all == expected(p, t, inverse));
                }
            }
            // Thresholds equal to a probability: the quotient sits on the threshold, so the row must
            // decline (and the exact rows decide it).
            for (index_t j = 0; j < n; j += std::max<index_t>(1, n / 5)) {
                float const t = p[static_cast<std::size_t>(j)];
                if (!avx::softmax_threshold_estimable(t)) continue;
                std::vector<std::uint64_t> words(static_cast<std::size_t>(n / 64 + 1), 0);
                ++on_threshold;
                if (!avx::softmax_threshold_row_estimated(row.data(), n, m, t, false, words.data())) ++declined_on_threshold;
                std::vector<std::uint64_t> chunked(static_cast<std::size_t>(n / 64 + 1), 0);
                CHECK_FALSE(avx::softmax_threshold_row_estimated(row.data(), n, m, t, false, chunked.data(), chunk_max.data(), chunk));
                std::vector<float> x = row;
                std::vector<std::uint64_t> all(static_cast<std::size_t>(n / 64 + 1), 0);
                CHECK(avx::softmax_threshold_row_checked(x.data(), n, nullptr, -10000.0f, t, false, all.data(), &m) == -1);
                CHECK(all == expected(p, t, false));
            }
        }
    }
    MESSAGE("estimated rows decided: ", decided, " of ", rows, "; declined on a threshold: ", declined_on_threshold, " of ", on_threshold,
            "; rows with skipped chunks: ", skipping_rows);
    CHECK(skipping_rows >= 3);
    CHECK(decided * 10 >= rows * 9);           // the bound decides almost every generic row
    CHECK(declined_on_threshold == on_threshold);  // and never a row with a quotient on the threshold
}
#endif

TEST_CASE("softmax threshold rows: the first score that is not finite is reported on every tier, with no bit set") {
    auto const all = tiers();
    for (index_t n : {1, 17, 40, 130}) {
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
            for (index_t at : {index_t{0}, n / 2, n - 1}) {
                std::vector<std::uint64_t> padded(static_cast<std::size_t>(n / 64 + 1), 0x3ULL);
                for (auto tier : all) {
                    std::vector<float> x(static_cast<std::size_t>(n), 0.5f);
                    x[static_cast<std::size_t>(at)] = bad;
                    if (at + 1 < n) x[static_cast<std::size_t>(n - 1)] = std::numeric_limits<float>::quiet_NaN();  // a later one
                    std::vector<std::uint64_t> words(static_cast<std::size_t>(n / 64 + 1), 0);
                    CAPTURE(n);
                    CAPTURE(at);
                    CHECK(deq::detail::softmax_threshold_row_checked(x.data(), n, padded.data(), false, 0.001f, words.data(), tier) == at);
                    for (std::uint64_t w : words) CHECK(w == 0);
                }
            }
        }
    }
}

TEST_CASE("select_elements: every rule gives the same mask on every tier") {
    index_t const B = 2, H = 3, L = 45, Lk = 70;
    deq::tensor<float, 4> scores({B, H, L, Lk});
    deq_test::fill_normal(scores, 77, 0.0, 2.0);
    for (index_t j = 0; j < Lk; j += 9) scores(0, 1, 4, j) = 0.5f;  // ties
    std::vector<std::uint8_t> valid(static_cast<std::size_t>(B * Lk), 1);
    for (index_t j = 50; j < Lk; ++j) valid[static_cast<std::size_t>(Lk + j)] = 0;
    deq::key_padding const padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {B, Lk})};
    for (char const* rule : {"sanger:0.02", "sanger:0.002", "invprob:0.01", "adamax_nb80", "adamax_nh70", "adamax_ns90", "adamax_b80",
                             "adamax_h50", "adamax_s80", "invadamax:0.5", "topk:5", "cumprob:0.9"}) {
        CAPTURE(rule);
        std::vector<deq::bit_mask> masks;
        for (auto tier : tiers()) {
            deq::arch::scoped_isa_limit const limit(tier);
            masks.push_back(deq::select_elements(deq::exec::threads{2}, scores.cview(), padding, deq::parse_mask_rule(rule)));
        }
        for (std::size_t t = 1; t < masks.size(); ++t) CHECK(masks[t] == masks[0]);
    }
}
