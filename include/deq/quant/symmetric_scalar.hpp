/// @file
/// @brief Scalar symmetric quantization exactly as the reference `quant_utils.py` does it.
///
/// `scale = (1 / threshold) * (2^(bits-1) - 1)` (PyTorch's evaluation order); `q = clamp(round_half_even(x * scale), -qmax, qmax)`;
/// `x' = q / scale`. All arithmetic in the given floating-point type (float for the reference).
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "../numeric/rounding.hpp"
#include "../numeric/unfused.hpp"

namespace deq::quant {

/// Largest symmetric quantized magnitude for @p bits bits: 2^(bits-1) - 1 (7 for 4 bits).
/// @param bits Bit width, 2..16.
/// @return 2^(bits-1) - 1.
DEQ_HOST_DEVICE constexpr std::int32_t max_symmetric_level(int bits) { return (std::int32_t{1} << (bits - 1)) - 1; }

/// Symmetric scale `(2^(bits-1) - 1) / threshold`, rounded exactly as PyTorch evaluates the
/// reference's `calc_max_quant_value(bits) / threshold_tensor`: `Tensor.__rtruediv__` computes
/// `threshold.reciprocal() * qmax`, two roundings in `Float` (a plain division differs by one ulp for
/// about a quarter of the thresholds).
/// @tparam Float Arithmetic type.
/// @param bits      Bit width, 2..16.
/// @param threshold Clipping threshold (> 0).
/// @return The scale.
template <class Float>
DEQ_HOST_DEVICE constexpr Float symmetric_scale(int bits, Float threshold) {
    Float const reciprocal = Float(1) / threshold;
    return reciprocal * static_cast<Float>(max_symmetric_level(bits));
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
    // the product rounded on its own (no fused x·scale - floor(x·scale) on the device)
    return static_cast<std::int32_t>(clamp_to(round_half_even(::deq::detail::multiply_unfused(x, scale)), -qmax, qmax));
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
