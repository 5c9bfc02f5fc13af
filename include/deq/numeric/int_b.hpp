/// @file
/// @brief `deq::int_b<Bits, Signed>`: signed and unsigned integers of 2..8 and 16 bits as types.
///
/// A bit width is a type, never a bare `int` template parameter of the public API (in the style of
/// `cutlass::integer_subbyte<Bits, Signed>`). One `int_b` value is stored unpacked in the smallest
/// standard integer that holds it (`storage_type`); deq/numeric/packed.hpp stores many of them densely.
/// Aliases: `deq::int2b_t` ... `deq::int8b_t`, `deq::int16b_t` and `deq::uint2b_t` ... `deq::uint16b_t`
/// (the `b` keeps them apart from the `<cstdint>` names).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "sizeof_bits.hpp"

namespace deq {

/// An integer of @p Bits bits, two's complement when @p Signed.
///
/// The value range is [`min_value`, `max_value`]: [-2^(Bits-1), 2^(Bits-1)-1] when signed and
/// [0, 2^Bits - 1] when unsigned. A default-constructed value is 0. The class is trivially copyable
/// and usable as a tensor element and inside kernels.
/// @tparam Bits   Width in bits: 2..8 or 16.
/// @tparam Signed Whether the encoding is two's complement (true) or unsigned (false).
template <int Bits, bool Signed = true>
class int_b {
    static_assert((Bits >= 2 && Bits <= 8) || Bits == 16, "deq::int_b supports 2..8 and 16 bits");

public:
    /// The standard integer one value is stored in when unpacked (int8_t/uint8_t up to 8 bits,
    /// int16_t/uint16_t for 16 bits).
    using storage_type = std::conditional_t<(Bits <= 8), std::conditional_t<Signed, std::int8_t, std::uint8_t>,
                                            std::conditional_t<Signed, std::int16_t, std::uint16_t>>;

    /// Width in bits.
    static constexpr int bits = Bits;
    /// Whether the encoding is two's complement.
    static constexpr bool is_signed = Signed;
    /// Smallest representable value.
    static constexpr std::int32_t min_value = Signed ? -(std::int32_t{1} << (Bits - 1)) : 0;
    /// Largest representable value.
    static constexpr std::int32_t max_value =
        Signed ? (std::int32_t{1} << (Bits - 1)) - 1 : (std::int32_t{1} << Bits) - 1;
    /// Mask selecting the @p Bits low bits of an encoding.
    static constexpr std::uint32_t encoding_mask = (std::uint32_t{1} << Bits) - 1u;

    /// The value 0.
    constexpr int_b() = default;

    /// Converts @p v modulo 2^Bits (keeps the @p Bits low bits of its two's complement encoding, as
    /// a conversion to a narrower standard integer does). Use checked() to reject out-of-range values
    /// or saturate() to clamp them.
    /// @param v Value.
    DEQ_HOST_DEVICE explicit constexpr int_b(std::int32_t v) noexcept : storage_(decode(static_cast<std::uint32_t>(v))) {}

    /// Whether @p v lies in [min_value, max_value].
    /// @param v Value.
    /// @return True if min_value <= @p v <= max_value, false otherwise.
    DEQ_HOST_DEVICE static constexpr bool in_range(std::int64_t v) noexcept { return v >= min_value && v <= max_value; }

    /// Converts @p v, throwing deq::invalid_argument (naming @p name and the value) when it is
    /// outside [min_value, max_value]. Host only.
    /// @param v    Value.
    /// @param name Argument name used in the error message.
    /// @return The int_b holding the value @p v.
    static int_b checked(std::int64_t v, char const* name = "value") {
        if (!in_range(v)) {
            detail::throw_invalid_argument(name, v,
                                           detail::concat("must be in [", min_value, ", ", max_value, "] for ",
                                                          Signed ? "int" : "uint", Bits, "b_t"));
        }
        return int_b(static_cast<std::int32_t>(v));
    }

    /// Converts @p v, clamping it to [min_value, max_value].
    /// @param v Value.
    /// @return The int_b holding @p v clamped to [min_value, max_value].
    DEQ_HOST_DEVICE static constexpr int_b saturate(std::int64_t v) noexcept {
        return int_b(static_cast<std::int32_t>(v < min_value ? min_value : (v > max_value ? max_value : v)));
    }

    /// The value whose @p Bits-bit encoding is the low @p Bits bits of @p encoding (higher bits are ignored).
    /// @param encoding Encoding, two's complement when signed.
    /// @return The int_b whose encoding is the low @p Bits bits of @p encoding.
    DEQ_HOST_DEVICE static constexpr int_b from_encoding(std::uint32_t encoding) noexcept {
        int_b r;
        r.storage_ = decode(encoding);
        return r;
    }

    /// The @p Bits-bit encoding of the value (two's complement when signed), in the low bits.
    /// @return The encoding in bits [0, Bits); the higher bits are zero.
    DEQ_HOST_DEVICE constexpr std::uint32_t encoding() const noexcept {
        return static_cast<std::uint32_t>(static_cast<std::int32_t>(storage_)) & encoding_mask;
    }

    /// The value as a 32-bit integer.
    /// @return The value, in [min_value, max_value].
    DEQ_HOST_DEVICE constexpr std::int32_t value() const noexcept { return storage_; }

    /// The value as a 32-bit integer (implicit, so int_b values take part in integer arithmetic).
    /// @return The value, in [min_value, max_value] (same as value()).
    DEQ_HOST_DEVICE constexpr operator std::int32_t() const noexcept { return storage_; }

    /// The stored representation.
    /// @return The value as storage_type (the same number, not the packed encoding).
    DEQ_HOST_DEVICE constexpr storage_type storage() const noexcept { return storage_; }

    /// Equality of values.
    /// @param a Left operand.
    /// @param b Right operand.
    friend constexpr bool operator==(int_b a, int_b b) noexcept = default;

private:
    DEQ_HOST_DEVICE static constexpr storage_type decode(std::uint32_t encoding) noexcept {
        std::uint32_t const u = encoding & encoding_mask;
        if constexpr (Signed) {
            bool const negative = ((u >> (Bits - 1)) & 1u) != 0;
            std::int32_t const v = negative ? static_cast<std::int32_t>(u) - (std::int32_t{1} << Bits)
                                            : static_cast<std::int32_t>(u);
            return static_cast<storage_type>(v);
        } else {
            return static_cast<storage_type>(u);
        }
    }

    storage_type storage_ = 0;
};

/// Whether @p T is a specialisation of deq::int_b.
/// @tparam T Candidate type.
template <class T>
struct is_int_b : std::false_type {};

/// deq::int_b specialisations are.
/// @tparam Bits   Width in bits.
/// @tparam Signed Signedness.
template <int Bits, bool Signed>
struct is_int_b<int_b<Bits, Signed>> : std::true_type {};

/// Shorthand for `is_int_b<std::remove_cv_t<T>>::value`.
/// @tparam T Candidate type.
template <class T>
inline constexpr bool is_int_b_v = is_int_b<std::remove_cv_t<T>>::value;

/// A (possibly cv-qualified) deq::int_b type.
/// @tparam T Candidate type.
template <class T>
concept int_b_type = is_int_b_v<T>;

/// `sizeof_bits` of an int_b: its logical width @p Bits.
/// @tparam Bits   Width in bits.
/// @tparam Signed Signedness.
template <int Bits, bool Signed>
struct sizeof_bits<int_b<Bits, Signed>> : std::integral_constant<int, Bits> {};

/// Signed 2-bit integer, values [-2, 1].
using int2b_t = int_b<2, true>;
/// Signed 3-bit integer, values [-4, 3].
using int3b_t = int_b<3, true>;
/// Signed 4-bit integer, values [-8, 7].
using int4b_t = int_b<4, true>;
/// Signed 5-bit integer, values [-16, 15].
using int5b_t = int_b<5, true>;
/// Signed 6-bit integer, values [-32, 31].
using int6b_t = int_b<6, true>;
/// Signed 7-bit integer, values [-64, 63].
using int7b_t = int_b<7, true>;
/// Signed 8-bit integer, values [-128, 127].
using int8b_t = int_b<8, true>;
/// Signed 16-bit integer, values [-32768, 32767].
using int16b_t = int_b<16, true>;
/// Unsigned 2-bit integer, values [0, 3].
using uint2b_t = int_b<2, false>;
/// Unsigned 3-bit integer, values [0, 7].
using uint3b_t = int_b<3, false>;
/// Unsigned 4-bit integer, values [0, 15].
using uint4b_t = int_b<4, false>;
/// Unsigned 5-bit integer, values [0, 31].
using uint5b_t = int_b<5, false>;
/// Unsigned 6-bit integer, values [0, 63].
using uint6b_t = int_b<6, false>;
/// Unsigned 7-bit integer, values [0, 127].
using uint7b_t = int_b<7, false>;
/// Unsigned 8-bit integer, values [0, 255].
using uint8b_t = int_b<8, false>;
/// Unsigned 16-bit integer, values [0, 65535].
using uint16b_t = int_b<16, false>;

/// Name of an int_b type, e.g. "int4b_t" or "uint16b_t".
/// @tparam Format An int_b type.
/// @return The alias name of @p Format: "int" or "uint", the bit width, then "b_t".
template <int_b_type Format>
std::string format_name() {
    return detail::concat(Format::is_signed ? "int" : "uint", Format::bits, "b_t");
}

}  // namespace deq

namespace std {
/// `std::numeric_limits` for deq::int_b: an exact integer type with the int_b's range.
/// @tparam Bits   Width in bits.
/// @tparam Signed Signedness.
template <int Bits, bool Signed>
class numeric_limits<deq::int_b<Bits, Signed>> {
    using type = deq::int_b<Bits, Signed>;

public:
    /// True: this specialisation is meaningful.
    static constexpr bool is_specialized = true;
    /// Whether the type is signed.
    static constexpr bool is_signed = Signed;
    /// True.
    static constexpr bool is_integer = true;
    /// True.
    static constexpr bool is_exact = true;
    /// False.
    static constexpr bool has_infinity = false;
    /// False.
    static constexpr bool has_quiet_NaN = false;
    /// False.
    static constexpr bool has_signaling_NaN = false;
    /// True.
    static constexpr bool is_bounded = true;
    /// False: out-of-range conversions wrap only through the explicit constructor.
    static constexpr bool is_modulo = false;
    /// 2.
    static constexpr int radix = 2;
    /// Number of non-sign bits.
    static constexpr int digits = Signed ? Bits - 1 : Bits;
    /// Decimal digits representable without change: floor(digits * log10(2)).
    static constexpr int digits10 = digits * 301 / 1000;
    /// Smallest value.
    /// @return `int_b(min_value)`: -2^(Bits-1) when signed, 0 when unsigned.
    DEQ_HOST_DEVICE static constexpr type min() noexcept { return type(type::min_value); }
    /// Smallest value.
    /// @return `int_b(min_value)`, the same as min() (integers have no values below it).
    DEQ_HOST_DEVICE static constexpr type lowest() noexcept { return type(type::min_value); }
    /// Largest value.
    /// @return `int_b(max_value)`: 2^(Bits-1) - 1 when signed, 2^Bits - 1 when unsigned.
    DEQ_HOST_DEVICE static constexpr type max() noexcept { return type(type::max_value); }
};
}  // namespace std
