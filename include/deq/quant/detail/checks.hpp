/// @file
/// @brief Host-side argument checks shared by the quantizer entry points.
#pragma once

#include <string_view>

#include "../../core/error.hpp"
#include "../../core/tensor.hpp"
#include "../granularity.hpp"

namespace deq::quant::detail {

/// Throws deq::shape_error unless every extent of @p x is at least 1.
template <class T, int Rank>
void require_nonempty(std::string_view name, tensor_view<T, Rank> const& x) {
    for (int r = 0; r < Rank; ++r) {
        if (x.extent(r) < 1) {
            ::deq::detail::throw_shape_error(::deq::detail::concat("'", name, "' ", x.shape_string(),
                                                                   " has a zero-length dimension ", r));
        }
    }
}

/// Throws deq::shape_error unless @p a and @p b have the same extents.
template <class A, class B, int Rank>
void require_same_shape(std::string_view name_a, tensor_view<A, Rank> const& a, std::string_view name_b,
                        tensor_view<B, Rank> const& b) {
    for (int r = 0; r < Rank; ++r) {
        if (a.extent(r) != b.extent(r)) {
            ::deq::detail::throw_shape_error(::deq::detail::concat("'", name_b, "' ", b.shape_string(),
                                                                   " does not match '", name_a, "' ", a.shape_string()));
        }
    }
}

/// Throws deq::shape_error unless @p params_shape is the group grid that @p groups gives the
/// [B, H, L, d] tensor @p x.
template <class T>
void require_grid(std::string_view name, tensor_view<T, 4> const& x, granularity const& groups,
                  group_shape const& params_shape) {
    group_shape const need = groups.shape_for(x.extent(0), x.extent(1), x.extent(2));
    if (!(need == params_shape)) {
        ::deq::detail::throw_shape_error(::deq::detail::concat(
            "quantization parameters with group grid ", params_shape.to_string(), " (", groups.describe(),
            ") do not fit '", name, "' ", x.shape_string(), ", which needs ", need.to_string()));
    }
}

/// Decomposes flat row index @p r of a [B, H, L, d] tensor into (b, h, i).
struct row_index {
    index_t b, h, i;
};

/// (b, h, i) of row @p r when there are @p heads heads and @p rows rows per head.
DEQ_HOST_DEVICE constexpr row_index split_row(index_t r, index_t heads, index_t rows) noexcept {
    return row_index{r / (heads * rows), (r / rows) % heads, r % rows};
}

}  // namespace deq::quant::detail
