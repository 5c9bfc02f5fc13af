/// @file
/// @brief Bit-exact conversions between IEEE-754 binary formats (round to nearest, ties to even),
/// shared by deq::float16 and deq::bfloat16.
#pragma once

#include <cstdint>

#include "../../config.hpp"

namespace deq::detail {

/// `std::bit_cast` usable in host and device code (GCC >= 11, Clang, nvcc >= 11.7).
template <class To, class From>
DEQ_HOST_DEVICE constexpr To bit_cast_value(From const& from) noexcept {
    static_assert(sizeof(To) == sizeof(From), "bit_cast_value needs equally sized types");
    return __builtin_bit_cast(To, from);
}

/// Rounds an IEEE binary value with @p SrcExp exponent and @p SrcMan fraction bits (encoding in
/// @p SrcBits) to the narrower format with @p DstExp / @p DstMan bits, round to nearest, ties to even.
/// Handles signed zeros, subnormals (of both formats), overflow to infinity (values >= the midpoint
/// between the largest finite value and the next power of two), infinities and NaN (returned as the
/// canonical quiet NaN of the destination with the source's sign).
template <class DstBits, int DstExp, int DstMan, class SrcBits, int SrcExp, int SrcMan>
DEQ_HOST_DEVICE constexpr DstBits ieee_narrow(SrcBits src) noexcept {
    static_assert(SrcMan > DstMan && SrcExp >= DstExp, "ieee_narrow converts to a narrower format");
    constexpr int src_total = 1 + SrcExp + SrcMan;
    constexpr int dst_total = 1 + DstExp + DstMan;
    constexpr SrcBits src_exp_all = (SrcBits{1} << SrcExp) - 1;
    constexpr SrcBits src_man_mask = (SrcBits{1} << SrcMan) - 1;
    constexpr int src_bias = (1 << (SrcExp - 1)) - 1;
    constexpr int dst_bias = (1 << (DstExp - 1)) - 1;
    constexpr std::uint32_t dst_exp_all = (std::uint32_t{1} << DstExp) - 1;
    constexpr std::uint32_t dst_inf = dst_exp_all << DstMan;
    constexpr std::uint32_t dst_quiet_nan = dst_inf | (std::uint32_t{1} << (DstMan - 1));

    std::uint32_t const sign = static_cast<std::uint32_t>(src >> (src_total - 1)) << (dst_total - 1);
    SrcBits const exp_field = (src >> SrcMan) & src_exp_all;
    SrcBits const man = src & src_man_mask;

    if (exp_field == src_exp_all) {
        return static_cast<DstBits>(sign | (man != 0 ? dst_quiet_nan : dst_inf));
    }
    if (exp_field == 0 && man == 0) return static_cast<DstBits>(sign);

    // value = sig * 2^(e - SrcMan), sig including the implicit bit for normal numbers.
    int const e = exp_field == 0 ? 1 - src_bias : static_cast<int>(exp_field) - src_bias;
    SrcBits const sig = exp_field == 0 ? man : (man | (SrcBits{1} << SrcMan));
    int const dst_e = e + dst_bias;  // biased destination exponent if the result is normal
    if (dst_e >= static_cast<int>(dst_exp_all)) return static_cast<DstBits>(sign | dst_inf);

    // Number of low bits of sig that fall below the destination's last fraction bit.
    int shift = SrcMan - DstMan + (dst_e < 1 ? 1 - dst_e : 0);
    if (shift > SrcMan + 2) shift = SrcMan + 2;  // everything is below half an ulp: rounds to zero
    SrcBits rounded = sig >> shift;
    SrcBits const rem = sig & ((SrcBits{1} << shift) - 1);
    SrcBits const half = SrcBits{1} << (shift - 1);
    if (rem > half || (rem == half && (rounded & 1) != 0)) ++rounded;

    // Normal: adding the significand (with its implicit bit) to (dst_e - 1) << DstMan yields the
    // encoding, and a carry out of the fraction correctly bumps the exponent (up to infinity).
    // Subnormal: the significand is the encoding (a carry gives the smallest normal number).
    std::uint32_t const magnitude =
        dst_e >= 1 ? (static_cast<std::uint32_t>(dst_e - 1) << DstMan) + static_cast<std::uint32_t>(rounded)
                   : static_cast<std::uint32_t>(rounded);
    return static_cast<DstBits>(sign | (magnitude >= dst_inf ? dst_inf : magnitude));
}

/// IEEE binary32 encoding of an IEEE binary16 value (exact).
DEQ_HOST_DEVICE constexpr std::uint32_t half_to_float_bits(std::uint16_t h) noexcept {
    std::uint32_t const sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t const exp_field = (h >> 10) & 0x1Fu;
    std::uint32_t man = h & 0x3FFu;
    if (exp_field == 0x1Fu) return sign | 0x7F800000u | (man << 13);
    if (exp_field != 0) return sign | ((exp_field + 112u) << 23) | (man << 13);
    if (man == 0) return sign;
    // Subnormal half: man * 2^-24. Normalise so that bit 10 is the implicit bit.
    std::uint32_t exp32 = 113u;  // exponent field of 2^-14
    while ((man & 0x400u) == 0) {
        man <<= 1;
        --exp32;
    }
    return sign | (exp32 << 23) | ((man & 0x3FFu) << 13);
}

}  // namespace deq::detail
