/// @file
/// @brief `deq::quant::quantize`, `dequantize` and `fake_quantize` of [B, H, L, d] tensors with
/// per-group parameters (one parallel work item per row).
///
/// Arithmetic is in the scale type S = `deq::accum_t<T>` (float for float and the 16-bit types,
/// double for double): `q = clamp(round_half_even(S(x) * scale) [+ zero_point])`,
/// `x' = S(q - zero_point) / scale`. For float with per-tensor symmetric parameters this is exactly
/// the reference `quantize` / `dequantize` / `_fake_quantize` of `quant_utils.py` (given the
/// reference's scale; see deq/quant/params.hpp).
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/accumulator.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../numeric/finite.hpp"
#include "../numeric/int_b.hpp"
#include "detail/checks.hpp"
#include "params.hpp"

namespace deq::quant {

/// A type quantized levels can be stored in: a standard integer type other than bool, or a deq::int_b.
/// @tparam L Candidate type.
template <class L>
concept level_type = (std::integral<L> && !std::same_as<std::remove_cv_t<L>, bool>) || int_b_type<L>;

namespace detail {

/// Throws deq::invalid_argument unless every level of @p p fits @p Level.
template <class Level, class S>
void require_levels_fit(quant_params<S> const& p, std::string_view name) {
    using L = std::remove_cv_t<Level>;
    std::int32_t const need_lo = p.level_min();
    std::int32_t const need_hi = p.level_max();
    bool fits = false;
    if constexpr (int_b_type<L>) {
        fits = need_lo >= L::min_value && need_hi <= L::max_value;
    } else {
        fits = std::in_range<L>(need_lo) && std::in_range<L>(need_hi);
    }
    if (!fits) {
        ::deq::detail::throw_invalid_argument(
            "bits", p.bits,
            ::deq::detail::concat(to_string(p.kind), " levels [", need_lo, ", ", need_hi,
                                  "] do not fit the element type of '", name, "' (range [",
                                  +std::numeric_limits<L>::lowest(), ", ", +std::numeric_limits<L>::max(), "])"));
    }
}

/// Converts a level to the storage type.
template <class L>
DEQ_HOST_DEVICE constexpr L to_level(std::int32_t q) noexcept {
    if constexpr (int_b_type<L>) {
        return L(q);
    } else {
        return static_cast<L>(q);
    }
}

/// Kernel: quantizes row r of x into q.
template <class T, class L, class S>
struct quantize_kernel {
    tensor_view<T const, 4> x;
    tensor_view<L, 4> q;
    quant_params_view<S> p;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        row_index const ri = split_row(r, x.extent(1), x.extent(2));
        index_t const g = p.groups.group_of(ri.b, ri.h, ri.i, p.shape);
        for (index_t t = 0; t < x.extent(3); ++t) {
            q(ri.b, ri.h, ri.i, t) = to_level<L>(p.quantize(static_cast<S>(x(ri.b, ri.h, ri.i, t)), g));
        }
    }
};

/// Kernel: dequantizes row r of q into out.
template <class L, class T, class S>
struct dequantize_kernel {
    tensor_view<L const, 4> q;
    tensor_view<T, 4> out;
    quant_params_view<S> p;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        row_index const ri = split_row(r, q.extent(1), q.extent(2));
        index_t const g = p.groups.group_of(ri.b, ri.h, ri.i, p.shape);
        for (index_t t = 0; t < q.extent(3); ++t) {
            auto const level = static_cast<std::int32_t>(q(ri.b, ri.h, ri.i, t));
            out(ri.b, ri.h, ri.i, t) = static_cast<T>(p.dequantize(level, g));
        }
    }
};

/// Kernel: quantizes and dequantizes row r of x into out.
template <class T, class S>
struct fake_quantize_kernel {
    tensor_view<T const, 4> x;
    tensor_view<T, 4> out;
    quant_params_view<S> p;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        row_index const ri = split_row(r, x.extent(1), x.extent(2));
        index_t const g = p.groups.group_of(ri.b, ri.h, ri.i, p.shape);
        for (index_t t = 0; t < x.extent(3); ++t) {
            std::int32_t const level = p.quantize(static_cast<S>(x(ri.b, ri.h, ri.i, t)), g);
            out(ri.b, ri.h, ri.i, t) = static_cast<T>(p.dequantize(level, g));
        }
    }
};

/// Throws deq::invalid_argument naming `name[b, h, i, t]` for the first level outside [lo, hi].
template <class L>
void require_levels_in_range(std::string_view name, tensor_view<L const, 4> const& q, std::int32_t lo, std::int32_t hi) {
    for (index_t b = 0; b < q.extent(0); ++b) {
        for (index_t h = 0; h < q.extent(1); ++h) {
            for (index_t i = 0; i < q.extent(2); ++i) {
                for (index_t t = 0; t < q.extent(3); ++t) {
                    auto const v = static_cast<std::int64_t>(q(b, h, i, t));
                    if (v < lo || v > hi) {
                        ::deq::detail::throw_invalid_argument(
                            ::deq::detail::concat(name, "[", b, ", ", h, ", ", i, ", ", t, "]"), v,
                            ::deq::detail::concat("must be in [", lo, ", ", hi, "]"));
                    }
                }
            }
        }
    }
}

}  // namespace detail

/// Quantizes @p x into integer levels @p q with parameters @p params.
/// @tparam Space Host execution space (the inputs are validated on the host before dispatch).
/// @tparam T     Element type of @p x.
/// @tparam Level Level storage type (a standard integer or deq::int_b wide enough for every level
///               of @p params; deq::invalid_argument naming `bits` otherwise).
/// @param space  Execution space instance.
/// @param x      Tensor [B, H, L, d]; no zero-length dimension (deq::shape_error); finite
///               (deq::numeric_error naming @p name and the index).
/// @param params Parameters; validated, and their group grid must be the one their granularity
///               gives @p x (deq::shape_error otherwise).
/// @param q      Output levels, same shape as @p x (deq::shape_error otherwise).
/// @param name   Name of @p x in error messages.
template <exec::host_execution_space Space, class T, level_type Level>
void quantize(Space const& space, tensor_view<T const, 4> x, quant_params<accum_t<T>> const& params,
              tensor_view<Level, 4> q, std::string_view name = "x") {
    params.validate();
    detail::require_nonempty(name, x);
    detail::require_same_shape(name, x, "q", q);
    detail::require_grid(name, x, params.groups, params.shape);
    detail::require_levels_fit<Level>(params, "q");
    ::deq::detail::require_finite(name, x);
    index_t const rows = x.extent(0) * x.extent(1) * x.extent(2);
    exec::parallel_for(space, rows, detail::quantize_kernel<T, Level, accum_t<T>>{x, q, params.view()});
}

/// Dequantizes integer levels @p q into @p out: `(q - zero_point) / scale`.
/// @tparam Space Host execution space (the inputs are validated on the host before dispatch).
/// @tparam Level Level storage type.
/// @tparam T     Element type of @p out.
/// @param space  Execution space instance.
/// @param q      Levels [B, H, L, d]; no zero-length dimension (deq::shape_error); every level in
///               [params.level_min(), params.level_max()] (deq::invalid_argument naming `q[b, h, i, t]`).
/// @param params Parameters (validated; group grid checked as in quantize()).
/// @param out    Output, same shape as @p q (deq::shape_error otherwise).
template <exec::host_execution_space Space, level_type Level, class T>
void dequantize(Space const& space, tensor_view<Level const, 4> q, quant_params<accum_t<T>> const& params,
                tensor_view<T, 4> out) {
    params.validate();
    detail::require_nonempty("q", q);
    detail::require_same_shape("q", q, "out", out);
    detail::require_grid("q", q, params.groups, params.shape);
    detail::require_levels_in_range("q", q, params.level_min(), params.level_max());
    index_t const rows = q.extent(0) * q.extent(1) * q.extent(2);
    exec::parallel_for(space, rows, detail::dequantize_kernel<Level, T, accum_t<T>>{q, out, params.view()});
}

/// Quantizes and dequantizes @p x into @p out in one pass (the reference's fake quantization).
/// @tparam Space Host execution space (the inputs are validated on the host before dispatch).
/// @tparam T     Element type.
/// @param space  Execution space instance.
/// @param x      Tensor [B, H, L, d]; no zero-length dimension (deq::shape_error); finite
///               (deq::numeric_error naming @p name and the index).
/// @param params Parameters (validated; group grid checked as in quantize()).
/// @param out    Output, same shape as @p x (deq::shape_error otherwise); may alias @p x exactly.
/// @param name   Name of @p x in error messages.
template <exec::host_execution_space Space, class T>
void fake_quantize(Space const& space, tensor_view<T const, 4> x, quant_params<accum_t<T>> const& params,
                   tensor_view<T, 4> out, std::string_view name = "x") {
    params.validate();
    detail::require_nonempty(name, x);
    detail::require_same_shape(name, x, "out", out);
    detail::require_grid(name, x, params.groups, params.shape);
    ::deq::detail::require_finite(name, x);
    index_t const rows = x.extent(0) * x.extent(1) * x.extent(2);
    exec::parallel_for(space, rows, detail::fake_quantize_kernel<T, accum_t<T>>{x, out, params.view()});
}

}  // namespace deq::quant
