/// @file
/// @brief `deq::exp_vectorizable`: single-precision exp written so that loops calling it vectorise
/// (no branches, no library call, no errno), for the softmax and GELU of the BERT encoder.
///
/// Method (Cephes `expf`): n = round(x·log₂e) by adding and subtracting 1.5·2²³, r = x − n·ln2 in two
/// parts (Cody–Waite), exp(r) ≈ 1 + r + r²·P(r) with a degree-5 polynomial, then scaled by 2ⁿ as the
/// product of two powers of two built from their bits (so results in the subnormal range round once and
/// exp(88.7) does not overflow the scale). Accuracy: within 2 ulp of the correctly rounded exp for every
/// float (tests/unit/numeric); exp(x) = +0 for x < −103.98 (including −inf), +inf for x > 88.73
/// (including +inf), NaN for NaN.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "../config.hpp"
#include "detail/bit_select.hpp"

namespace deq {

namespace detail {

/// `a · b + c` with one rounding (std::fma on the host, `__fmaf_rn` on CUDA devices).
/// @param a First factor.
/// @param b Second factor.
/// @param c Addend.
/// @return The fused result.
DEQ_HOST_DEVICE inline float fused_multiply_add(float a, float b, float c) noexcept {
#if DEQ_DEVICE_PASS
    return __fmaf_rn(a, b, c);
#else
    return std::fma(a, b, c);
#endif
}

/// The bits of a float (host and device).
/// @param x The value.
/// @return Its IEEE bits.
DEQ_HOST_DEVICE inline std::uint32_t float_bits(float x) noexcept {
#if DEQ_DEVICE_PASS
    return __float_as_uint(x);
#else
    return std::bit_cast<std::uint32_t>(x);
#endif
}

/// The float of given bits (host and device).
/// @param b IEEE bits.
/// @return The value.
DEQ_HOST_DEVICE inline float bits_float(std::uint32_t b) noexcept {
#if DEQ_DEVICE_PASS
    return __uint_as_float(b);
#else
    return std::bit_cast<float>(b);
#endif
}

/// `p · 2^n` as the product of two powers of two built from their bits (both normal for n in
/// [-151, 129], so results in the subnormal range round once): the last step of the exponentials below.
/// @param p The polynomial's value on the reduced argument.
/// @param n The power of two.
/// @return p · 2^n.
DEQ_HOST_DEVICE inline float exp_scale(float p, std::int32_t n) noexcept {
    std::int32_t const n1 = n >> 1;
    std::int32_t const n2 = n - n1;
    float const s1 = bits_float(static_cast<std::uint32_t>(n1 + 127) << 23);
    float const s2 = bits_float(static_cast<std::uint32_t>(n2 + 127) << 23);
    return p * s1 * s2;
}

}  // namespace detail

/// exp(@p x) in float without a library call; see the file documentation for the method and accuracy.
/// Loops over arrays that call it vectorise with GCC and Clang without -ffast-math (at -O3; at -O2 GCC 12
/// vectorises only loops of a fixed trip count, e.g. an inner loop over 16 elements).
/// @param x The argument.
/// @return exp(x), within 2 ulp; 0 below −103.98, +inf above 88.73, NaN for NaN.
inline float exp_vectorizable(float x) noexcept {
    // Clamp into the range where the scaling below is exact; comparisons with NaN are false, so NaN
    // passes through. exp(-104) underflows to +0 and exp(89) overflows to +inf like the true values.
    x = detail::bit_select(x < -104.0f, -104.0f, x);
    x = detail::bit_select(x > 89.0f, 89.0f, x);
    constexpr float magic = 12582912.0f;  // 1.5 * 2^23: t's last bits hold round(x * log2(e))
    float const t = x * 1.44269504088896341f + magic;
    float const n = t - magic;
    // n as an integer from the bits of t (unsigned arithmetic: a NaN's bits give a harmless value)
    auto const ni = static_cast<std::int32_t>(std::bit_cast<std::uint32_t>(t) - std::bit_cast<std::uint32_t>(magic));
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float const z = r * r;
    float const p =
        ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r +
          5.0000001201e-1f) *
             z +
         r) +
        1.0f;
    return detail::exp_scale(p, ni);
}


/// exp(@p x) in float with the polynomial of exp_vectorizable() evaluated with fused multiply-adds
/// (`std::fma`): every operation is an IEEE single-rounding operation that no compiler setting can
/// contract or reorder, so a SIMD version with the same fused operations (deq/arch/softmax_avx512.hpp,
/// softmax_avx2.hpp) gives the same bits. It is the exponential of the predicted softmax P̂ of
/// deq::select_elements, whose masks must not depend on the instruction set. Within 2 ulp of the
/// correctly rounded exp; +0 below -103.97, +inf above 88.73.
/// @param x The argument (not NaN).
/// @return exp(x).
DEQ_HOST_DEVICE inline float exp_fused(float x) noexcept {
    using detail::fused_multiply_add;
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    constexpr float magic = 12582912.0f;  // 1.5 * 2^23: t's last bits hold round(x * log2(e))
    float const t = fused_multiply_add(x, 1.44269504088896341f, magic);
    float const n = t - magic;
    auto const ni = static_cast<std::int32_t>(detail::float_bits(t) - detail::float_bits(magic));
    float r = fused_multiply_add(n, -0.693359375f, x);
    r = fused_multiply_add(n, 2.12194440e-4f, r);
    float const z = r * r;
    float p = fused_multiply_add(1.9875691500e-4f, r, 1.3981999507e-3f);
    p = fused_multiply_add(p, r, 8.3334519073e-3f);
    p = fused_multiply_add(p, r, 4.1665795894e-2f);
    p = fused_multiply_add(p, r, 1.6666665459e-1f);
    p = fused_multiply_add(p, r, 5.0000001201e-1f);
    p = fused_multiply_add(p, z, r);
    p = p + 1.0f;
    return detail::exp_scale(p, ni);
}

}  // namespace deq
