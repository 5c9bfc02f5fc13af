/// @file
/// @brief Rounding and clamping exactly as the reference (PyTorch) does them.
#pragma once

#include <cmath>

#include "../config.hpp"

namespace deq {

/// Rounds to the nearest integer, ties to even (the semantics of `torch.round` and of
/// `std::nearbyint` under the default rounding mode), independent of the current FP environment.
/// @tparam Float `float` or `double`.
/// @param x Value to round; NaN and infinities are returned unchanged.
/// @return The nearest integer value, ties to even.
template <class Float>
DEQ_HOST_DEVICE inline Float round_half_even(Float x) {
    if (!std::isfinite(x)) return x;
    Float const r = std::floor(x);
    Float const diff = x - r;
    if (diff > Float(0.5)) return r + Float(1);
    if (diff < Float(0.5)) return r;
    // Exactly halfway: pick the even neighbour.
    return std::fmod(r, Float(2)) == Float(0) ? r : r + Float(1);
}

/// Clamps @p x to [lo, hi].
/// @tparam T Ordered type.
/// @param x  Value.
/// @param lo Lower bound.
/// @param hi Upper bound.
/// @return @p x limited to [lo, hi].
template <class T>
DEQ_HOST_DEVICE constexpr T clamp_to(T x, T lo, T hi) {
    return x < lo ? lo : (hi < x ? hi : x);
}

}  // namespace deq
