/// @file
/// @brief Computing quantization parameters from data: per-group value ranges, abs-max thresholds,
/// and `deq::quant::calibrate`.
#pragma once

#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/accumulator.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../numeric/finite.hpp"
#include "detail/checks.hpp"
#include "granularity.hpp"
#include "params.hpp"
#include "spec.hpp"

namespace deq::quant {

/// Per-group minimum and maximum of a tensor, shaped as its group grid [batch, heads, blocks].
/// @tparam S Value type (deq::accum_t of the element type).
template <class S>
struct group_ranges {
    /// Smallest value of each group.
    tensor<S, 3> lo;
    /// Largest value of each group.
    tensor<S, 3> hi;
};

namespace detail {

/// Kernel: minimum and maximum of row r, converted to S.
template <class T, class S>
struct row_range_kernel {
    tensor_view<T const, 4> x;
    S* lo;
    S* hi;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        row_index const ri = split_row(r, x.extent(1), x.extent(2));
        S mn = static_cast<S>(x(ri.b, ri.h, ri.i, index_t{0}));
        S mx = mn;
        for (index_t t = 1; t < x.extent(3); ++t) {
            S const v = static_cast<S>(x(ri.b, ri.h, ri.i, t));
            mn = v < mn ? v : mn;
            mx = mx < v ? v : mx;
        }
        lo[r] = mn;
        hi[r] = mx;
    }
};

}  // namespace detail

/// Minimum and maximum of every group of @p x (one parallel work item per row, then a host
/// reduction over the rows of each group).
/// @tparam Space Host execution space.
/// @tparam T     Element type.
/// @param space  Execution space instance.
/// @param x      Tensor [B, H, L, d]; no zero-length dimension (deq::shape_error), finite
///               (deq::numeric_error naming @p name and the index).
/// @param groups The grouping.
/// @param name   Name of @p x in error messages.
/// @return The per-group minima (`lo`) and maxima (`hi`), each shaped as the group grid `groups.shape_for(B, H, L)`.
template <exec::host_execution_space Space, class T>
group_ranges<accum_t<T>> group_min_max(Space const& space, tensor_view<T const, 4> x, granularity const& groups,
                                       std::string_view name = "x") {
    using S = accum_t<T>;
    detail::require_nonempty(name, x);
    ::deq::detail::require_finite(name, x);
    index_t const B = x.extent(0), H = x.extent(1), L = x.extent(2);
    index_t const rows = B * H * L;
    std::vector<S> row_lo(static_cast<std::size_t>(rows)), row_hi(static_cast<std::size_t>(rows));
    exec::parallel_for(space, rows, detail::row_range_kernel<T, S>{x, row_lo.data(), row_hi.data()});

    group_shape const g = groups.shape_for(B, H, L);
    group_ranges<S> out{tensor<S, 3>({g.batch, g.heads, g.blocks}), tensor<S, 3>({g.batch, g.heads, g.blocks})};
    std::vector<bool> seen(static_cast<std::size_t>(g.count()), false);
    for (index_t r = 0; r < rows; ++r) {
        detail::row_index const ri = detail::split_row(r, H, L);
        auto const k = static_cast<std::size_t>(groups.group_of(ri.b, ri.h, ri.i, g));
        S const l = row_lo[static_cast<std::size_t>(r)];
        S const u = row_hi[static_cast<std::size_t>(r)];
        S& lo = out.lo.data()[k];
        S& hi = out.hi.data()[k];
        if (!seen[k]) {
            lo = l;
            hi = u;
            seen[k] = true;
        } else {
            lo = l < lo ? l : lo;
            hi = hi < u ? u : hi;
        }
    }
    return out;
}

/// Absolute maximum of every group of @p x (what the reference stores as threshold), shaped as the
/// group grid [batch, heads, blocks].
/// @tparam Space Host execution space.
/// @tparam T     Element type.
/// @param space  Execution space instance.
/// @param x      Tensor [B, H, L, d] (checked as in group_min_max()).
/// @param groups The grouping.
/// @param name   Name of @p x in error messages.
/// @return max(|min|, |max|) of each group, shaped as the group grid `groups.shape_for(B, H, L)`.
template <exec::host_execution_space Space, class T>
tensor<accum_t<T>, 3> group_abs_max(Space const& space, tensor_view<T const, 4> x, granularity const& groups,
                                    std::string_view name = "x") {
    using S = accum_t<T>;
    group_ranges<S> r = group_min_max(space, x, groups, name);
    for (index_t k = 0; k < r.lo.size(); ++k) {
        S const a = std::fabs(r.lo.data()[k]);
        S const b = std::fabs(r.hi.data()[k]);
        r.hi.data()[k] = a < b ? b : a;
    }
    return std::move(r.hi);
}

/// Quantization parameters for @p x as @p spec describes: symmetric scales from each group's
/// abs-max (`scale = (2^(b-1) - 1) / absmax`, the reference's dynamic scale), asymmetric scales and
/// zero points from each group's [min, max] widened to include 0. All-zero groups get scale 1
/// (see deq/quant/params.hpp).
/// @tparam Space Host execution space.
/// @tparam T     Element type.
/// @param space Execution space instance.
/// @param x     Tensor [B, H, L, d]; no zero-length dimension (deq::shape_error), finite
///              (deq::numeric_error naming @p name and the index).
/// @param spec  Scheme, bits (validated to [2, 16]) and granularity.
/// @param name  Name of @p x in error messages.
/// @return Parameters with @p spec's scheme, bit width and granularity, the group grid
///         `spec.groups.shape_for(B, H, L)` and one scale and zero point per group.
template <exec::host_execution_space Space, class T>
quant_params<accum_t<T>> calibrate(Space const& space, tensor_view<T const, 4> x, quant_spec const& spec,
                                   std::string_view name = "x") {
    using S = accum_t<T>;
    spec.validate();
    group_ranges<S> r = group_min_max(space, x, spec.groups, name);
    group_shape const g = spec.groups.shape_for(x.extent(0), x.extent(1), x.extent(2));
    quant_params<S> p{spec.kind, spec.bits, spec.groups, g, {}, {}};
    auto const n = static_cast<std::size_t>(g.count());
    p.scale.resize(n);
    p.zero_point.assign(n, 0);
    for (std::size_t k = 0; k < n; ++k) {
        S const lo = r.lo.data()[k];
        S const hi = r.hi.data()[k];
        if (spec.kind == scheme::symmetric) {
            S const a = std::fabs(lo) < std::fabs(hi) ? std::fabs(hi) : std::fabs(lo);
            p.scale[k] = detail::symmetric_group_scale(spec.bits, a);
        } else {
            detail::asymmetric_group(spec.bits, lo, hi, p.scale[k], p.zero_point[k]);
        }
    }
    return p;
}

}  // namespace deq::quant
