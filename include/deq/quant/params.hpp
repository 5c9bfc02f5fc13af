/// @file
/// @brief `deq::quant::quant_params`: the scales and zero points of a quantized tensor, one per
/// group, and their construction from clipping thresholds or value ranges.
///
/// **Scales** are levels per unit (see deq::quant::scheme). For a group:
/// - symmetric with threshold t > 0: `scale = symmetric_scale(b, t)` = `(S(1) / t) * S(2^(b-1) - 1)`
///   in the scale type S (deq/quant/symmetric_scalar.hpp): PyTorch evaluates the reference's
///   `get_scale` (`qmax / thresh` with thresh a float32 tensor) as `thresh.reciprocal() * qmax`,
///   two roundings, and deq does the same, so quantize / dequantize reproduce the reference bit for bit;
/// - asymmetric with range [lo, hi]: the range is widened to include 0, [lo', hi'] =
///   [min(lo, 0), max(hi, 0)], `scale = S(2^b - 1) / (hi' - lo')` and
///   `zero_point = clamp(round_half_even(-lo' * scale), 0, 2^b - 1)`, so 0 is exactly representable.
///
/// **Degenerate groups** give finite results: a group whose threshold (symmetric) or widened range
/// (asymmetric) is 0 — all its values are 0 — gets `scale = 1` and `zero_point = 0`, so every
/// element quantizes to level 0 and dequantizes to exactly 0. A scale that would overflow S (a
/// threshold or range below about (2^(b-1) - 1) / max(S), i.e. subnormal) is set to the largest
/// finite S; a range hi' - lo' that overflows S is computed as (hi'/2 - lo'/2) with half the levels.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../numeric/rounding.hpp"
#include "bit_width.hpp"
#include "granularity.hpp"
#include "scheme.hpp"
#include "symmetric_scalar.hpp"

namespace deq::quant {

/// The part of deq::quant::quant_params that kernels use: raw pointers to the per-group scales and
/// zero points plus the grouping. Trivially copyable; valid while the quant_params lives.
/// @tparam S Scale type (float or double).
template <std::floating_point S>
struct quant_params_view {
    /// The scheme.
    scheme kind = scheme::symmetric;
    /// Bit width.
    int bits = 4;
    /// The grouping.
    granularity groups{};
    /// The group grid.
    group_shape shape{};
    /// One scale per group (levels per unit).
    S const* scale = nullptr;
    /// One zero point per group (all 0 for symmetric).
    std::int32_t const* zero_point = nullptr;

    /// Quantizes @p x with the scale and zero point of group @p g:
    /// symmetric `clamp(round_half_even(x * scale), -qmax, qmax)` (deq::quant::quantize_symmetric),
    /// asymmetric `clamp(round_half_even(x * scale) + zero_point, 0, 2^b - 1)`. @p x must be finite.
    /// @param x Value.
    /// @param g Flat group index.
    /// @return The level: in [-(2^(b-1) - 1), 2^(b-1) - 1] for symmetric, in [0, 2^b - 1] for asymmetric.
    DEQ_HOST_DEVICE std::int32_t quantize(S x, index_t g) const {
        if (kind == scheme::symmetric) return quantize_symmetric(x, scale[g], bits);
        S const r = round_half_even(x * scale[g]) + static_cast<S>(zero_point[g]);
        return static_cast<std::int32_t>(clamp_to(r, S(0), static_cast<S>(level_max(scheme::asymmetric, bits))));
    }

    /// Dequantizes level @p q of group @p g: `(q - zero_point) / scale`.
    /// @param q Level.
    /// @param g Flat group index.
    /// @return `(q - zero_point[g]) / scale[g]`, computed in S.
    DEQ_HOST_DEVICE S dequantize(std::int32_t q, index_t g) const {
        return dequantize_symmetric(q - zero_point[g], scale[g]);
    }
};

/// Scales and zero points of a quantized [B, H, L, d] tensor: one per group of the group grid
/// `shape` (row-major: batch, heads, blocks).
/// @tparam S Scale type: `deq::accum_t<T>` of the element type T (float for float and the 16-bit
///           types, double for double).
template <std::floating_point S>
struct quant_params {
    /// The scheme.
    scheme kind = scheme::symmetric;
    /// Bit width in [2, 16].
    int bits = 4;
    /// The grouping.
    granularity groups{};
    /// The group grid (must equal `groups.shape_for(B, H, L)` of the tensor it is applied to).
    group_shape shape{};
    /// One scale per group (levels per unit, finite and > 0).
    std::vector<S> scale;
    /// One zero point per group: 0 for symmetric, in [0, 2^bits - 1] for asymmetric.
    std::vector<std::int32_t> zero_point;

    /// Number of groups.
    /// @return `shape.count()`.
    index_t group_count() const noexcept { return shape.count(); }
    /// Smallest level.
    /// @return `quant::level_min(kind, bits)`: -(2^(bits-1) - 1) for symmetric, 0 for asymmetric.
    std::int32_t level_min() const noexcept { return quant::level_min(kind, bits); }
    /// Largest level.
    /// @return `quant::level_max(kind, bits)`: 2^(bits-1) - 1 for symmetric, 2^bits - 1 for asymmetric.
    std::int32_t level_max() const noexcept { return quant::level_max(kind, bits); }

    /// Checks consistency: bits in [2, 16], one scale and zero point per group, scales finite and
    /// > 0, zero points 0 (symmetric) or in [0, 2^bits - 1] (asymmetric). Throws
    /// deq::invalid_argument naming the field (e.g. `scale[3]`) and the value.
    void validate() const {
        validate_bits(bits);
        if (static_cast<index_t>(scale.size()) != group_count()) {
            ::deq::detail::throw_invalid_argument("scale.size()", scale.size(),
                                                  ::deq::detail::concat("must equal the group count ", group_count(),
                                                                        " of the group grid ", shape.to_string()));
        }
        if (static_cast<index_t>(zero_point.size()) != group_count()) {
            ::deq::detail::throw_invalid_argument("zero_point.size()", zero_point.size(),
                                                  ::deq::detail::concat("must equal the group count ", group_count(),
                                                                        " of the group grid ", shape.to_string()));
        }
        for (std::size_t g = 0; g < scale.size(); ++g) {
            if (!(std::isfinite(scale[g]) && scale[g] > 0)) {
                ::deq::detail::throw_invalid_argument(::deq::detail::concat("scale[", g, "]"), scale[g],
                                                      "must be finite and > 0");
            }
            std::int32_t const lo = kind == scheme::symmetric ? 0 : level_min();
            std::int32_t const hi = kind == scheme::symmetric ? 0 : level_max();
            if (zero_point[g] < lo || zero_point[g] > hi) {
                ::deq::detail::throw_invalid_argument(::deq::detail::concat("zero_point[", g, "]"), zero_point[g],
                                                      ::deq::detail::concat("must be in [", lo, ", ", hi, "] for ",
                                                                            to_string(kind), " quantization"));
            }
        }
    }

    /// Kernel view (valid while this object lives and is not modified).
    /// @return A quant_params_view with this object's scheme, bits, grouping and grid, pointing into
    ///         `scale` and `zero_point`.
    quant_params_view<S> view() const noexcept {
        return quant_params_view<S>{kind, bits, groups, shape, scale.data(), zero_point.data()};
    }
};

namespace detail {

/// Symmetric scale of a group with threshold @p t >= 0 (degenerate cases as documented in params.hpp).
template <std::floating_point S>
S symmetric_group_scale(int bits, S t) {
    if (t == S(0)) return S(1);
    S const s = symmetric_scale(bits, t);
    return std::isfinite(s) ? s : std::numeric_limits<S>::max();
}

/// Asymmetric scale and zero point of a group with value range [lo, hi] (finite, lo <= hi).
template <std::floating_point S>
void asymmetric_group(int bits, S lo, S hi, S& scale, std::int32_t& zero_point) {
    S const lo0 = lo < S(0) ? lo : S(0);
    S const hi0 = hi > S(0) ? hi : S(0);
    S const levels = static_cast<S>(level_max(scheme::asymmetric, bits));
    S range = hi0 - lo0;
    if (range == S(0)) {
        scale = S(1);
        zero_point = 0;
        return;
    }
    S s = std::isfinite(range) ? levels / range : (levels * S(0.5)) / (hi0 * S(0.5) - lo0 * S(0.5));
    if (!std::isfinite(s)) s = std::numeric_limits<S>::max();
    scale = s;
    zero_point = static_cast<std::int32_t>(clamp_to(round_half_even(-lo0 * s), S(0), levels));
}

/// Checks that a per-group parameter grid of extents @p e fits granularity @p g.
inline group_shape grid_for(granularity const& g, index_t e0, index_t e1, index_t e2, char const* name) {
    group_shape const s{e0, e1, e2};
    bool ok = e0 >= 1 && e1 >= 1 && e2 >= 1;
    if (g.type() == granularity::kind::tensor) ok = ok && s == group_shape{1, 1, 1};
    if (g.type() == granularity::kind::head) ok = ok && e2 == 1;
    if (!ok) {
        ::deq::detail::throw_shape_error(::deq::detail::concat("'", name, "' grid ", s.to_string(), " is not a ",
                                                               g.describe(), " group grid (per_tensor: [1, 1, 1], ",
                                                               "per_head: [B, H, 1], otherwise all extents >= 1)"));
    }
    return s;
}

}  // namespace detail

/// Symmetric per-tensor parameters from the clipping threshold @p threshold:
/// `scale = symmetric_scale(bits, threshold)` = `(S(1) / threshold) * S(2^(bits-1) - 1)`.
/// @tparam S Scale type.
/// @param bits      Bit width in [2, 16] (deq::invalid_argument otherwise).
/// @param threshold Clipping threshold, finite and > 0 (deq::invalid_argument naming `threshold` otherwise).
/// @return Per-tensor symmetric parameters: group grid {1, 1, 1}, one scale, zero point 0.
template <std::floating_point S>
quant_params<S> symmetric_params(int bits, S threshold) {
    validate_bits(bits);
    if (!(std::isfinite(threshold) && threshold > S(0))) {
        ::deq::detail::throw_invalid_argument("threshold", threshold, "must be finite and > 0");
    }
    return quant_params<S>{scheme::symmetric, bits, granularity::per_tensor(), group_shape{},
                           {detail::symmetric_group_scale(bits, threshold)}, {0}};
}

/// Symmetric parameters with one clipping threshold per group.
/// @tparam S Scale type.
/// @param bits       Bit width in [2, 16].
/// @param groups     The grouping.
/// @param thresholds Thresholds shaped as the group grid [batch, heads, blocks] of the tensor they
///                   will be applied to; each finite and > 0 (deq::invalid_argument naming
///                   `thresholds[b, h, k]` otherwise).
/// @return Symmetric parameters with grouping @p groups, the grid of @p thresholds as group grid, one
///         scale per threshold (row-major) and all zero points 0.
template <std::floating_point S>
quant_params<S> symmetric_params(int bits, granularity const& groups, tensor_view<S const, 3> thresholds) {
    validate_bits(bits);
    group_shape const shape =
        detail::grid_for(groups, thresholds.extent(0), thresholds.extent(1), thresholds.extent(2), "thresholds");
    quant_params<S> p{scheme::symmetric, bits, groups, shape, {}, {}};
    p.scale.reserve(static_cast<std::size_t>(shape.count()));
    for (index_t b = 0; b < shape.batch; ++b) {
        for (index_t h = 0; h < shape.heads; ++h) {
            for (index_t k = 0; k < shape.blocks; ++k) {
                S const t = thresholds(b, h, k);
                if (!(std::isfinite(t) && t > S(0))) {
                    ::deq::detail::throw_invalid_argument(::deq::detail::concat("thresholds[", b, ", ", h, ", ", k, "]"),
                                                          t, "must be finite and > 0");
                }
                p.scale.push_back(detail::symmetric_group_scale(bits, t));
            }
        }
    }
    p.zero_point.assign(p.scale.size(), 0);
    return p;
}

/// Asymmetric per-tensor parameters for values in [@p lo, @p hi] (widened to include 0).
/// @tparam S Scale type.
/// @param bits Bit width in [2, 16].
/// @param lo   Lower end, finite.
/// @param hi   Upper end, finite and >= lo (deq::invalid_argument naming `lo`/`hi` otherwise).
/// @return Per-tensor asymmetric parameters: group grid {1, 1, 1}, one scale and one zero point.
template <std::floating_point S>
quant_params<S> asymmetric_params(int bits, S lo, S hi) {
    validate_bits(bits);
    if (!std::isfinite(lo)) ::deq::detail::throw_invalid_argument("lo", lo, "must be finite");
    if (!(std::isfinite(hi) && hi >= lo)) {
        ::deq::detail::throw_invalid_argument("hi", hi, ::deq::detail::concat("must be finite and >= lo = ", lo));
    }
    quant_params<S> p{scheme::asymmetric, bits, granularity::per_tensor(), group_shape{}, {S(0)}, {0}};
    detail::asymmetric_group(bits, lo, hi, p.scale[0], p.zero_point[0]);
    return p;
}

/// Asymmetric parameters with one value range per group.
/// @tparam S Scale type.
/// @param bits   Bit width in [2, 16].
/// @param groups The grouping.
/// @param lo     Lower ends shaped as the group grid [batch, heads, blocks]; finite.
/// @param hi     Upper ends, same shape as @p lo (deq::shape_error otherwise); finite and >= lo.
/// @return Asymmetric parameters with grouping @p groups, the grid of @p lo as group grid and one scale
///         and zero point per group (row-major).
template <std::floating_point S>
quant_params<S> asymmetric_params(int bits, granularity const& groups, tensor_view<S const, 3> lo,
                                  tensor_view<S const, 3> hi) {
    validate_bits(bits);
    group_shape const shape = detail::grid_for(groups, lo.extent(0), lo.extent(1), lo.extent(2), "lo");
    if (!(group_shape{hi.extent(0), hi.extent(1), hi.extent(2)} == shape)) {
        ::deq::detail::throw_shape_error(
            ::deq::detail::concat("'hi' ", hi.shape_string(), " does not match 'lo' ", lo.shape_string()));
    }
    quant_params<S> p{scheme::asymmetric, bits, groups, shape, {}, {}};
    p.scale.resize(static_cast<std::size_t>(shape.count()));
    p.zero_point.resize(static_cast<std::size_t>(shape.count()));
    std::size_t g = 0;
    for (index_t b = 0; b < shape.batch; ++b) {
        for (index_t h = 0; h < shape.heads; ++h) {
            for (index_t k = 0; k < shape.blocks; ++k, ++g) {
                S const l = lo(b, h, k);
                S const u = hi(b, h, k);
                if (!std::isfinite(l)) {
                    ::deq::detail::throw_invalid_argument(::deq::detail::concat("lo[", b, ", ", h, ", ", k, "]"), l,
                                                          "must be finite");
                }
                if (!(std::isfinite(u) && u >= l)) {
                    ::deq::detail::throw_invalid_argument(::deq::detail::concat("hi[", b, ", ", h, ", ", k, "]"), u,
                                                          ::deq::detail::concat("must be finite and >= lo = ", l));
                }
                detail::asymmetric_group(bits, l, u, p.scale[g], p.zero_point[g]);
            }
        }
    }
    return p;
}

}  // namespace deq::quant
