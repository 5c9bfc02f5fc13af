/// @file
/// @brief Scalar symmetric quantization exactly as the reference `quant_utils.py` does it.
///
/// `scale = (2^(bits-1) - 1) / threshold`; `q = clamp(round_half_even(x * scale), -qmax, qmax)`;
/// `x' = q / scale`. All arithmetic in the given floating-point type (float for the reference).
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "../numeric/rounding.hpp"

namespace deq::quant {

/// Largest symmetric quantized magnitude for @p bits bits: 2^(bits-1) - 1 (7 for 4 bits).
/// @param bits Bit width, 2..16.
/// @return 2^(bits-1) - 1.
DEQ_HOST_DEVICE constexpr std::int32_t max_symmetric_level(int bits) { return (std::int32_t{1} << (bits - 1)) - 1; }

/// Symmetric scale `(2^(bits-1) - 1) / threshold`.
/// @tparam Float Arithmetic type.
/// @param bits      Bit width, 2..16.
/// @param threshold Clipping threshold (> 0).
/// @return The scale.
template <class Float>
DEQ_HOST_DEVICE constexpr Float symmetric_scale(int bits, Float threshold) {
    return static_cast<Float>(max_symmetric_level(bits)) / threshold;
}

/// Quantizes @p x: `clamp(round_half_even(x * scale), -qmax, qmax)` as an integer level.
/// @tparam Float Arithmetic type.
/// @param x     Value.
/// @param scale Scale from symmetric_scale().
/// @param bits  Bit width, 2..16.
/// @return The integer level in [-qmax, qmax].
template <class Float>
DEQ_HOST_DEVICE inline std::int32_t quantize_symmetric(Float x, Float scale, int bits) {
    Float const qmax = static_cast<Float>(max_symmetric_level(bits));
    return static_cast<std::int32_t>(clamp_to(round_half_even(x * scale), -qmax, qmax));
}

/// Dequantizes a level: `q / scale`.
/// @tparam Float Arithmetic type.
/// @param q     Integer level.
/// @param scale Scale from symmetric_scale().
/// @return The dequantized value.
template <class Float>
DEQ_HOST_DEVICE constexpr Float dequantize_symmetric(std::int32_t q, Float scale) {
    return static_cast<Float>(q) / scale;
}

}  // namespace deq::quant
