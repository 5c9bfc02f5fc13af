/// @file
/// @brief `deq::float16`: IEEE-754 binary16 ("half") as a tensor element type.
///
/// Conversions from float and double round to nearest, ties to even, directly from the source
/// value (no double rounding through float), with correct subnormals, signed zeros, overflow to
/// infinity and NaN (the canonical quiet NaN 0x7E00 with the source's sign, as PyTorch's CPU
/// conversion). Conversion to float is exact. Arithmetic is done in float and rounded once to
/// float16 (see deq::detail::narrow_float_ops); mixed expressions follow `c10::Half`:
/// `float16 op float -> float`, `float16 op double -> double`, `float16 op int -> float16`.
/// Everything is `constexpr` and usable in host and device code.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>

#include "../config.hpp"
#include "detail/ieee_convert.hpp"
#include "detail/narrow_float_ops.hpp"

namespace deq {

/// IEEE-754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits; largest finite
/// value 65504, smallest normal 2^-14, smallest subnormal 2^-24.
class float16 : public detail::narrow_float_ops<float16> {
public:
    /// Positive zero.
    constexpr float16() noexcept = default;

    /// Rounds @p f to the nearest float16, ties to even.
    /// @param f Value.
    DEQ_HOST_DEVICE constexpr float16(float f) noexcept
        : bits_(detail::ieee_narrow<std::uint16_t, 5, 10, std::uint32_t, 8, 23>(
              detail::bit_cast_value<std::uint32_t>(f))) {}

    /// Rounds @p d to the nearest float16, ties to even, in one step (not through float).
    /// @param d Value.
    DEQ_HOST_DEVICE constexpr float16(double d) noexcept
        : bits_(detail::ieee_narrow<std::uint16_t, 5, 10, std::uint64_t, 11, 52>(
              detail::bit_cast_value<std::uint64_t>(d))) {}

    /// Rounds the integer @p i to the nearest float16, ties to even (through double: exact for
    /// integers up to 2^53 in magnitude; beyond +-65519 the result is infinite).
    /// @tparam Int Integral type.
    /// @param i Value.
    template <std::integral Int>
    DEQ_HOST_DEVICE constexpr float16(Int i) noexcept : float16(static_cast<double>(i)) {}

    /// The float16 with encoding @p bits.
    /// @param bits IEEE binary16 encoding.
    /// @return The float16 whose encoding is @p bits.
    DEQ_HOST_DEVICE static constexpr float16 from_bits(std::uint16_t bits) noexcept {
        float16 h;
        h.bits_ = bits;
        return h;
    }

    /// The IEEE binary16 encoding.
    /// @return The 16-bit encoding (sign bit 15, exponent bits 14..10, fraction bits 9..0).
    DEQ_HOST_DEVICE constexpr std::uint16_t bits() const noexcept { return bits_; }

    /// The exact value as float.
    /// @return The value of this float16 as float (exact: every float16 value is a float value).
    DEQ_HOST_DEVICE constexpr operator float() const noexcept {
        return detail::bit_cast_value<float>(detail::half_to_float_bits(bits_));
    }

private:
    std::uint16_t bits_ = 0;
};

/// Whether @p x is NaN.
/// @param x Value.
/// @return True if @p x is a NaN (quiet or signaling), false otherwise.
DEQ_HOST_DEVICE constexpr bool isnan(float16 x) noexcept { return (x.bits() & 0x7FFFu) > 0x7C00u; }
/// Whether @p x is positive or negative infinity.
/// @param x Value.
/// @return True if @p x is positive or negative infinity, false otherwise.
DEQ_HOST_DEVICE constexpr bool isinf(float16 x) noexcept { return (x.bits() & 0x7FFFu) == 0x7C00u; }
/// Whether @p x is neither NaN nor infinite.
/// @param x Value.
/// @return True if @p x is zero, subnormal or normal; false for infinities and NaNs.
DEQ_HOST_DEVICE constexpr bool isfinite(float16 x) noexcept { return (x.bits() & 0x7C00u) != 0x7C00u; }
/// Whether the sign bit of @p x is set.
/// @param x Value.
/// @return True if the sign bit of @p x is set (also for -0 and negative NaNs), false otherwise.
DEQ_HOST_DEVICE constexpr bool signbit(float16 x) noexcept { return (x.bits() & 0x8000u) != 0; }
/// Absolute value (clears the sign bit).
/// @param x Value.
/// @return @p x with the sign bit cleared (a NaN stays a NaN).
DEQ_HOST_DEVICE constexpr float16 abs(float16 x) noexcept {
    return float16::from_bits(static_cast<std::uint16_t>(x.bits() & 0x7FFFu));
}

}  // namespace deq

namespace std {

/// `std::numeric_limits` for deq::float16 (IEEE binary16).
template <>
class numeric_limits<deq::float16> {
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
    static constexpr int digits = 11;
    /// Decimal digits that survive a round trip through the type.
    static constexpr int digits10 = 3;
    /// Decimal digits needed to round-trip every value.
    static constexpr int max_digits10 = 5;
    /// 2.
    static constexpr int radix = 2;
    /// One more than the smallest normal exponent.
    static constexpr int min_exponent = -13;
    /// Smallest power of ten that is a normal value.
    static constexpr int min_exponent10 = -4;
    /// One more than the largest exponent.
    static constexpr int max_exponent = 16;
    /// Largest power of ten that is finite.
    static constexpr int max_exponent10 = 4;
    /// False.
    static constexpr bool traps = false;
    /// False.
    static constexpr bool tinyness_before = false;

    /// Smallest positive normal value, 2^-14.
    /// @return 2^-14 (encoding 0x0400).
    DEQ_HOST_DEVICE static constexpr deq::float16 min() noexcept { return deq::float16::from_bits(0x0400); }
    /// Most negative finite value, -65504.
    /// @return -65504 (encoding 0xFBFF).
    DEQ_HOST_DEVICE static constexpr deq::float16 lowest() noexcept { return deq::float16::from_bits(0xFBFF); }
    /// Largest finite value, 65504.
    /// @return 65504 (encoding 0x7BFF).
    DEQ_HOST_DEVICE static constexpr deq::float16 max() noexcept { return deq::float16::from_bits(0x7BFF); }
    /// Distance from 1 to the next value, 2^-10.
    /// @return 2^-10 (encoding 0x1400).
    DEQ_HOST_DEVICE static constexpr deq::float16 epsilon() noexcept { return deq::float16::from_bits(0x1400); }
    /// Largest rounding error in ulps, 0.5.
    /// @return 0.5 (encoding 0x3800).
    DEQ_HOST_DEVICE static constexpr deq::float16 round_error() noexcept { return deq::float16::from_bits(0x3800); }
    /// Positive infinity.
    /// @return Positive infinity (encoding 0x7C00).
    DEQ_HOST_DEVICE static constexpr deq::float16 infinity() noexcept { return deq::float16::from_bits(0x7C00); }
    /// Canonical quiet NaN.
    /// @return The canonical positive quiet NaN (encoding 0x7E00).
    DEQ_HOST_DEVICE static constexpr deq::float16 quiet_NaN() noexcept { return deq::float16::from_bits(0x7E00); }
    /// A signaling NaN.
    /// @return A positive signaling NaN (encoding 0x7D00).
    DEQ_HOST_DEVICE static constexpr deq::float16 signaling_NaN() noexcept { return deq::float16::from_bits(0x7D00); }
    /// Smallest positive subnormal value, 2^-24.
    /// @return 2^-24 (encoding 0x0001).
    DEQ_HOST_DEVICE static constexpr deq::float16 denorm_min() noexcept { return deq::float16::from_bits(0x0001); }
};

}  // namespace std
