/// @file
/// @brief `deq::quant::scheme`: symmetric or asymmetric (zero-point) quantization.
#pragma once

namespace deq::quant {

/// How real values map to integer levels.
///
/// Both schemes use `scale` as *levels per unit* (the convention of the reference
/// `quant_utils.py`, the inverse of `torch.quantize_per_tensor`'s scale): a value x goes to
/// `round_half_even(x * scale)` (plus the zero point) and a level q comes back as `q / scale`
/// (after subtracting the zero point).
enum class scheme {
    /// Levels in [-(2^(b-1) - 1), 2^(b-1) - 1] ([-7, 7] at 4 bits; -2^(b-1) is unused), zero point 0,
    /// `scale = (2^(b-1) - 1) / threshold` with threshold = abs-max (Sanger's `sym` quantizer).
    symmetric,
    /// Levels in [0, 2^b - 1] with a per-group zero point:
    /// `q = clamp(round_half_even(x * scale) + zero_point, 0, 2^b - 1)`, `x' = (q - zero_point) / scale`,
    /// `scale = (2^b - 1) / (hi - lo)` over the range [lo, hi] = [min(min x, 0), max(max x, 0)].
    asymmetric
};

/// "symmetric" or "asymmetric".
/// @param s Scheme.
/// @return "symmetric" or "asymmetric" (a string literal).
constexpr char const* to_string(scheme s) noexcept { return s == scheme::symmetric ? "symmetric" : "asymmetric"; }

}  // namespace deq::quant
