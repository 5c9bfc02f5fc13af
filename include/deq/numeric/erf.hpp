/// @file
/// @brief `deq::erf_vectorizable`: single-precision erf written so that loops calling it vectorise
/// (no branches, no library call), for the exact (erf) GELU of the BERT encoder.
///
/// Method: both pieces are computed and one is selected (so the loop has no branch):
/// - |x| < 1: erf(x) = x·Q(x²), Q a degree-6 polynomial fitted (weighted minimax) to erf(x)/x on [0, 1];
/// - |x| ≥ 1: erf(x) = sign(x)·(1 − exp(−x²)·t·P(t)) with t = 1/(1 + 0.71·|x|) and P of degree 3 fitted
///   to erfc(a)·exp(a²)/t on [1, 4.5], the exponential from deq::exp_vectorizable; |x| is clamped to 9
///   there (erf rounds to ±1 in float from 3.92 on), so that no intermediate result is subnormal, which
///   would cost a microcode assist per element on x86.
///
/// Accuracy: |erf_vectorizable(x) − erf(x)| ≤ 2e-7 for every float x (tests/unit/numeric checks a dense
/// grid against std::erf in double); ±inf give ±1 and NaN gives NaN.
#pragma once

#include "exp.hpp"

namespace deq {

/// erf(@p x) in float without a library call; see the file documentation for the method and accuracy.
/// Loops over arrays that call it vectorise with GCC and Clang without -ffast-math (at -O3; at -O2 GCC 12
/// vectorises only loops of a fixed trip count, e.g. an inner loop over 16 elements).
/// @param x The argument.
/// @return erf(x) within 2e-7 absolute; ±1 for ±inf, NaN for NaN.
inline float erf_vectorizable(float x) noexcept {
    float const a = detail::bit_select(x < 0.0f, -x, x);
    // |x| < 1 (evaluated on 0 elsewhere, so that no piece overflows or underflows: a subnormal or
    // underflowing result costs a microcode assist on x86)
    float const xs = detail::bit_select(a < 1.0f, x, 0.0f);
    float const s = xs * xs;
    float const q = (((((7.647175516467541e-05f * s - 7.942374213598669e-04f) * s + 5.179751664400101e-03f) * s -
                       2.684859186410904e-02f) *
                          s +
                      1.1283430457115173e-01f) *
                         s -
                     3.761260509490967e-01f) *
                        s +
                    1.1283791065216064f;
    float const inner = xs * q;
    // |x| >= 1: erfc(a) = exp(-a^2) * t * P(t), a clamped to 9 (erfc(9) = 4e-37: erf is 1 in float from
    // 3.92 on; the clamp keeps the product normal)
    float const ab = detail::bit_select(a > 9.0f, 9.0f, a);
    float const t = 1.0f / (1.0f + 0.71f * ab);
    float const p = (((-0.29330846667289734f * t + 0.5490065217018127f) * t + 0.33261123299598694f) * t + 0.40756529569625854f) * t;
    float const outer = 1.0f - exp_vectorizable(-(ab * ab)) * p;
    float const signed_outer = detail::bit_select(x < 0.0f, -outer, outer);
    return detail::bit_select(a < 1.0f, inner, signed_outer);
}

}  // namespace deq
