// deq::exp_vectorizable and deq::erf_vectorizable against std::exp / std::erf in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <deq/numeric/erf.hpp>
#include <deq/numeric/exp.hpp>

namespace {

// Distance of f from the exact value ref in units of the last place of the float nearest to ref
// (subnormal spacing 2^-149 below the normal range).
double ulp_error(float f, double ref) {
    float const r = static_cast<float>(ref);
    int e = 0;
    std::frexp(r == 0.0f ? std::numeric_limits<float>::min() : r, &e);
    double const ulp = std::ldexp(1.0, std::max(e - 24, -149));
    return std::fabs(static_cast<double>(f) - ref) / ulp;
}

}  // namespace

TEST_CASE("exp_vectorizable: within 2 ulp of exp over the whole float range, special values") {
    // every 61st float between -104 and 89 (about 35 million values)
    double worst = 0;
    float worst_x = 0;
    std::int64_t checked = 0;
    auto scan = [&](float lo, float hi) {  // lo, hi >= 0: x and -x
        for (std::uint32_t b = std::bit_cast<std::uint32_t>(lo); b <= std::bit_cast<std::uint32_t>(hi); b += 61) {
            float const x = std::bit_cast<float>(b);
            for (float v : {x, -x}) {
                if (v > 88.72f || v < -103.97f) continue;
                double const e = ulp_error(deq::exp_vectorizable(v), std::exp(static_cast<double>(v)));
                ++checked;
                if (e > worst) {
                    worst = e;
                    worst_x = v;
                }
            }
        }
    };
    scan(0.0f, 104.0f);
    CHECK(checked > 30000000);
    MESSAGE("exp: worst " << worst << " ulp at x = " << worst_x);
    CHECK_MESSAGE(worst <= 2.0, "worst " << worst << " ulp at x = " << worst_x);
    // the softmax inputs: differences to the row maximum, with and without the -10000 padding penalty
    double softmax_worst = 0;
    for (int i = 0; i <= 100000; ++i) {
        float const v = -20.0f * static_cast<float>(i) / 100000.0f;
        softmax_worst = std::max(softmax_worst, ulp_error(deq::exp_vectorizable(v), std::exp(static_cast<double>(v))));
    }
    CHECK(softmax_worst <= 2.0);
    CHECK(deq::exp_vectorizable(0.0f) == 1.0f);
    CHECK(deq::exp_vectorizable(-0.0f) == 1.0f);
    CHECK(deq::exp_vectorizable(-10000.0f) == 0.0f);
    CHECK(deq::exp_vectorizable(-10003.5f) == 0.0f);
    CHECK(deq::exp_vectorizable(-104.0f) == 0.0f);
    CHECK(deq::exp_vectorizable(-std::numeric_limits<float>::infinity()) == 0.0f);
    CHECK(deq::exp_vectorizable(-std::numeric_limits<float>::max()) == 0.0f);
    float const sub = deq::exp_vectorizable(-100.0f);  // subnormal result
    CHECK(sub > 0.0f);
    CHECK(sub < std::numeric_limits<float>::min());
    CHECK(ulp_error(sub, std::exp(-100.0)) <= 1.0);
    CHECK(std::isinf(deq::exp_vectorizable(89.0f)));
    CHECK(std::isinf(deq::exp_vectorizable(1e30f)));
    CHECK(std::isinf(deq::exp_vectorizable(std::numeric_limits<float>::infinity())));
    float const big = deq::exp_vectorizable(88.72f);
    CHECK(std::isfinite(big));
    CHECK(ulp_error(big, std::exp(static_cast<double>(88.72f))) <= 2.0);
    CHECK(std::isnan(deq::exp_vectorizable(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(deq::exp_vectorizable(-std::numeric_limits<float>::quiet_NaN())));
    // a loop over an array gives the same values as single calls
    std::vector<float> xs(1000), ys(1000);
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = -90.0f + 0.17f * static_cast<float>(i);
    for (std::size_t i = 0; i < xs.size(); ++i) ys[i] = deq::exp_vectorizable(xs[i]);
    int mismatches = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) mismatches += ys[i] != deq::exp_vectorizable(xs[i]);
    CHECK(mismatches == 0);
}

TEST_CASE("erf_vectorizable: within 2e-7 of erf on a dense grid and at the extremes") {
    double worst = 0;
    float worst_x = 0;
    auto check_at = [&](float x) {
        double const e = std::fabs(static_cast<double>(deq::erf_vectorizable(x)) - std::erf(static_cast<double>(x)));
        if (e > worst) {
            worst = e;
            worst_x = x;
        }
    };
    for (int i = -6000000; i <= 6000000; ++i) check_at(static_cast<float>(i) * 1e-6f);  // [-6, 6], step 1e-6
    for (int i = -10000; i <= 10000; ++i) check_at(static_cast<float>(i) * 0.01f);       // [-100, 100]
    // around the switch between the two pieces at |x| = 1, float by float
    for (float x : {1.0f, -1.0f}) {
        float lo = x, hi = x;
        for (int k = 0; k < 2000; ++k) {
            check_at(lo = std::nextafter(lo, 0.0f));
            check_at(hi = std::nextafter(hi, 2.0f * x));
        }
    }
    // tiny and subnormal arguments
    for (float x = std::numeric_limits<float>::denorm_min(); x < 1e-3f; x *= 1.7f) {
        check_at(x);
        check_at(-x);
    }
    MESSAGE("erf: worst " << worst << " at x = " << worst_x);
    CHECK_MESSAGE(worst <= 2e-7, "worst " << worst << " at x = " << worst_x);
    CHECK(deq::erf_vectorizable(0.0f) == 0.0f);
    CHECK(std::signbit(deq::erf_vectorizable(-0.0f)));
    CHECK(deq::erf_vectorizable(10.0f) == 1.0f);
    CHECK(deq::erf_vectorizable(-10.0f) == -1.0f);
    CHECK(deq::erf_vectorizable(std::numeric_limits<float>::max()) == 1.0f);
    CHECK(deq::erf_vectorizable(-std::numeric_limits<float>::max()) == -1.0f);
    CHECK(deq::erf_vectorizable(std::numeric_limits<float>::infinity()) == 1.0f);
    CHECK(deq::erf_vectorizable(-std::numeric_limits<float>::infinity()) == -1.0f);
    CHECK(std::isnan(deq::erf_vectorizable(std::numeric_limits<float>::quiet_NaN())));
    // odd function
    for (float x : {0.1f, 0.5f, 0.999f, 1.0f, 1.5f, 3.0f}) CHECK(deq::erf_vectorizable(-x) == -deq::erf_vectorizable(x));
}
