/// @file
/// @brief `deq::bfloat16`: the 16-bit "brain" floating-point format as a tensor element type.
///
/// bfloat16 is the upper half of an IEEE binary32: 1 sign bit, 8 exponent bits (bias 127), 7
/// fraction bits. Conversions from float and double round to nearest, ties to even, directly from
/// the source value, with correct subnormals, overflow to infinity and NaN (quiet NaN 0x7FC0 with
/// the source's sign). Conversion to float is exact. Arithmetic is done in float and rounded once
/// to bfloat16; mixed expressions follow `c10::BFloat16`: `bfloat16 op float -> float`,
/// `bfloat16 op double -> double`, `bfloat16 op int -> bfloat16`.
/// Everything is `constexpr` and usable in host and device code.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>

#include "../config.hpp"
#include "detail/ieee_convert.hpp"
#include "detail/narrow_float_ops.hpp"

namespace deq {

/// bfloat16: 1 sign bit, 8 exponent bits (bias 127), 7 fraction bits; the range of float with
/// 8 significant bits (largest finite value 0x1.FEp127 ~ 3.39e38, epsilon 2^-7).
class bfloat16 : public detail::narrow_float_ops<bfloat16> {
public:
    /// Positive zero.
    constexpr bfloat16() noexcept = default;

    /// Rounds @p f to the nearest bfloat16, ties to even.
    /// @param f Value.
    DEQ_HOST_DEVICE constexpr bfloat16(float f) noexcept
        : bits_(detail::ieee_narrow<std::uint16_t, 8, 7, std::uint32_t, 8, 23>(
              detail::bit_cast_value<std::uint32_t>(f))) {}

    /// Rounds @p d to the nearest bfloat16, ties to even, in one step (not through float).
    /// @param d Value.
    DEQ_HOST_DEVICE constexpr bfloat16(double d) noexcept
        : bits_(detail::ieee_narrow<std::uint16_t, 8, 7, std::uint64_t, 11, 52>(
              detail::bit_cast_value<std::uint64_t>(d))) {}

    /// Rounds the integer @p i to the nearest bfloat16, ties to even (through double: exact for
    /// integers up to 2^53 in magnitude).
    /// @tparam Int Integral type.
    /// @param i Value.
    template <std::integral Int>
    DEQ_HOST_DEVICE constexpr bfloat16(Int i) noexcept : bfloat16(static_cast<double>(i)) {}

    /// The bfloat16 with encoding @p bits.
    /// @param bits bfloat16 encoding (the upper 16 bits of the binary32 encoding).
    /// @return The bfloat16 whose encoding is @p bits.
    DEQ_HOST_DEVICE static constexpr bfloat16 from_bits(std::uint16_t bits) noexcept {
        bfloat16 h;
        h.bits_ = bits;
        return h;
    }

    /// The bfloat16 encoding (the upper 16 bits of the binary32 encoding).
    /// @return The 16-bit encoding (sign bit 15, exponent bits 14..7, fraction bits 6..0).
    DEQ_HOST_DEVICE constexpr std::uint16_t bits() const noexcept { return bits_; }

    /// The exact value as float.
    /// @return The value of this bfloat16 as float (exact: every bfloat16 value is a float value).
    DEQ_HOST_DEVICE constexpr operator float() const noexcept {
        return detail::bit_cast_value<float>(static_cast<std::uint32_t>(bits_) << 16);
    }

private:
    std::uint16_t bits_ = 0;
};

/// Whether @p x is NaN.
/// @param x Value.
/// @return True if @p x is a NaN (quiet or signaling), false otherwise.
DEQ_HOST_DEVICE constexpr bool isnan(bfloat16 x) noexcept { return (x.bits() & 0x7FFFu) > 0x7F80u; }
/// Whether @p x is positive or negative infinity.
/// @param x Value.
/// @return True if @p x is positive or negative infinity, false otherwise.
DEQ_HOST_DEVICE constexpr bool isinf(bfloat16 x) noexcept { return (x.bits() & 0x7FFFu) == 0x7F80u; }
/// Whether @p x is neither NaN nor infinite.
/// @param x Value.
/// @return True if @p x is zero, subnormal or normal; false for infinities and NaNs.
DEQ_HOST_DEVICE constexpr bool isfinite(bfloat16 x) noexcept { return (x.bits() & 0x7F80u) != 0x7F80u; }
/// Whether the sign bit of @p x is set.
/// @param x Value.
/// @return True if the sign bit of @p x is set (also for -0 and negative NaNs), false otherwise.
DEQ_HOST_DEVICE constexpr bool signbit(bfloat16 x) noexcept { return (x.bits() & 0x8000u) != 0; }
/// Absolute value (clears the sign bit).
/// @param x Value.
/// @return @p x with the sign bit cleared (a NaN stays a NaN).
DEQ_HOST_DEVICE constexpr bfloat16 abs(bfloat16 x) noexcept {
    return bfloat16::from_bits(static_cast<std::uint16_t>(x.bits() & 0x7FFFu));
}

}  // namespace deq

namespace std {

/// `std::numeric_limits` for deq::bfloat16 (8 significand bits, float's exponent range).
template <>
class numeric_limits<deq::bfloat16> {
public:
    /// True.
    static constexpr bool is_specialized = true;
    /// True.
    static constexpr bool is_signed = true;
    /// False.
    static constexpr bool is_integer = false;
    /// False.
    static constexpr bool is_exact = false;
    /// True.
    static constexpr bool has_infinity = true;
    /// True.
    static constexpr bool has_quiet_NaN = true;
    /// True.
    static constexpr bool has_signaling_NaN = true;
    /// Subnormal numbers are supported.
    static constexpr float_denorm_style has_denorm = denorm_present;
    /// False.
    static constexpr bool has_denorm_loss = false;
    /// Round to nearest, ties to even.
    static constexpr float_round_style round_style = round_to_nearest;
    /// True.
    static constexpr bool is_iec559 = true;
    /// True.
    static constexpr bool is_bounded = true;
    /// False.
    static constexpr bool is_modulo = false;
    /// Significand bits including the implicit bit.
    static constexpr int digits = 8;
    /// Decimal digits that survive a round trip through the type.
    static constexpr int digits10 = 2;
    /// Decimal digits needed to round-trip every value.
    static constexpr int max_digits10 = 4;
    /// 2.
    static constexpr int radix = 2;
    /// One more than the smallest normal exponent.
    static constexpr int min_exponent = -125;
    /// Smallest power of ten that is a normal value.
    static constexpr int min_exponent10 = -37;
    /// One more than the largest exponent.
    static constexpr int max_exponent = 128;
    /// Largest power of ten that is finite.
    static constexpr int max_exponent10 = 38;
    /// False.
    static constexpr bool traps = false;
    /// False.
    static constexpr bool tinyness_before = false;

    /// Smallest positive normal value, 2^-126.
    /// @return 2^-126 (encoding 0x0080).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 min() noexcept { return deq::bfloat16::from_bits(0x0080); }
    /// Most negative finite value, -0x1.FEp127.
    /// @return -0x1.FEp127, about -3.39e38 (encoding 0xFF7F).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 lowest() noexcept { return deq::bfloat16::from_bits(0xFF7F); }
    /// Largest finite value, 0x1.FEp127.
    /// @return 0x1.FEp127, about 3.39e38 (encoding 0x7F7F).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 max() noexcept { return deq::bfloat16::from_bits(0x7F7F); }
    /// Distance from 1 to the next value, 2^-7.
    /// @return 2^-7 (encoding 0x3C00).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 epsilon() noexcept { return deq::bfloat16::from_bits(0x3C00); }
    /// Largest rounding error in ulps, 0.5.
    /// @return 0.5 (encoding 0x3F00).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 round_error() noexcept { return deq::bfloat16::from_bits(0x3F00); }
    /// Positive infinity.
    /// @return Positive infinity (encoding 0x7F80).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 infinity() noexcept { return deq::bfloat16::from_bits(0x7F80); }
    /// Canonical quiet NaN.
    /// @return The canonical positive quiet NaN (encoding 0x7FC0).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 quiet_NaN() noexcept { return deq::bfloat16::from_bits(0x7FC0); }
    /// A signaling NaN.
    /// @return A positive signaling NaN (encoding 0x7FA0).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 signaling_NaN() noexcept { return deq::bfloat16::from_bits(0x7FA0); }
    /// Smallest positive subnormal value, 2^-133.
    /// @return 2^-133 (encoding 0x0001).
    DEQ_HOST_DEVICE static constexpr deq::bfloat16 denorm_min() noexcept { return deq::bfloat16::from_bits(0x0001); }
};

}  // namespace std
