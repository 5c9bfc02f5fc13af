/// @file
/// @brief Bit widths of quantized levels: run-time validation to [2, 16], the level range of each
/// scheme, and the compile-time formats (deq::int_b) that hold them.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../numeric/int_b.hpp"
#include "scheme.hpp"

namespace deq::quant {

/// Smallest supported bit width.
inline constexpr int min_bits = 2;
/// Largest supported bit width.
inline constexpr int max_bits = 16;

/// Throws deq::invalid_argument naming `bits` and its value unless @p bits is in [2, 16].
/// @param bits Bit width.
inline void validate_bits(int bits) { ::deq::detail::require_in_range("bits", bits, min_bits, max_bits); }

/// Smallest quantized level of @p s at @p bits bits: -(2^(bits-1) - 1) for symmetric, 0 for asymmetric.
/// @param s    Scheme.
/// @param bits Bit width in [2, 16].
/// @return -(2^(bits-1) - 1) for scheme::symmetric, 0 for scheme::asymmetric.
DEQ_HOST_DEVICE constexpr std::int32_t level_min(scheme s, int bits) noexcept {
    return s == scheme::symmetric ? -((std::int32_t{1} << (bits - 1)) - 1) : 0;
}

/// Largest quantized level of @p s at @p bits bits: 2^(bits-1) - 1 for symmetric, 2^bits - 1 for asymmetric.
/// @param s    Scheme.
/// @param bits Bit width in [2, 16].
/// @return 2^(bits-1) - 1 for scheme::symmetric, 2^bits - 1 for scheme::asymmetric.
DEQ_HOST_DEVICE constexpr std::int32_t level_max(scheme s, int bits) noexcept {
    return s == scheme::symmetric ? (std::int32_t{1} << (bits - 1)) - 1 : (std::int32_t{1} << bits) - 1;
}

/// The scheme a compile-time format implies: signed int_b formats hold symmetric levels, unsigned
/// ones asymmetric levels (every level of the scheme fits the format).
/// @tparam Format An int_b type.
template <int_b_type Format>
inline constexpr scheme scheme_of = std::remove_cv_t<Format>::is_signed ? scheme::symmetric : scheme::asymmetric;

}  // namespace deq::quant
