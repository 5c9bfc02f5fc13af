/// @file
/// @brief `deq::is_finite_value` for every element type, and the host check that rejects NaN/Inf
/// in a tensor with a deq::numeric_error naming the tensor and the index.
#pragma once

#include <cmath>
#include <string>
#include <string_view>
#include <type_traits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace deq {

/// Whether @p x is finite: integers always are; floating-point values (float, double, and the
/// 16-bit types through their exact conversion to float) unless NaN or infinite.
/// @tparam T Element type.
/// @param x Value.
/// @return True if @p x is neither NaN nor infinite (always true for integral types).
template <class T>
DEQ_HOST_DEVICE inline bool is_finite_value(T const& x) {
    if constexpr (std::is_integral_v<T>) {
        return true;
    } else if constexpr (std::is_floating_point_v<T>) {
        return std::isfinite(x);
    } else {
        return std::isfinite(static_cast<float>(x));
    }
}

namespace detail {

/// Formats a multi-index as "[i0, i1, ...]".
template <int Rank>
std::string index_string(index_t const (&idx)[Rank]) {
    std::string s = "[";
    for (int r = 0; r < Rank; ++r) {
        if (r) s += ", ";
        s += std::to_string(idx[r]);
    }
    return s + "]";
}

/// Throws the deq::numeric_error of a non-finite element, naming the tensor, the value and the index
/// (the message of every deq check of finite inputs, on every execution space).
/// @param name  Tensor name.
/// @param value The element.
/// @param index Its index, as index_string() writes it.
[[noreturn]] inline void throw_non_finite(std::string_view name, double value, std::string const& index) {
    throw numeric_error(concat("deq: non-finite value ", value, " in '", name, "' at index ", index));
}

/// throw_non_finite() for the element [a, b, c, d] of a 4-d tensor.
/// @param name  Tensor name.
/// @param value The element.
/// @param a     Index 0.
/// @param b     Index 1.
/// @param c     Index 2.
/// @param d     Index 3.
[[noreturn]] inline void throw_non_finite_element(std::string_view name, double value, index_t a, index_t b, index_t c, index_t d) {
    index_t const idx[4] = {a, b, c, d};
    throw_non_finite(name, value, index_string<4>(idx));
}

/// Throws deq::numeric_error naming tensor @p name, the index and the value of the first (in
/// row-major order) NaN or infinite element of @p x. Host only.
template <class T, int Rank>
void require_finite(std::string_view name, tensor_view<T, Rank> const& x) {
    index_t const n = x.size();
    index_t idx[Rank] = {};
    for (index_t flat = 0; flat < n; ++flat) {
        index_t off = 0;
        for (int r = 0; r < Rank; ++r) off += idx[r] * x.stride(r);
        auto const& v = x.data()[off];
        if (!is_finite_value(v)) {
            throw_non_finite(name, static_cast<double>(v), index_string<Rank>(idx));
        }
        for (int r = Rank - 1; r >= 0; --r) {
            if (++idx[r] < x.extent(r)) break;
            idx[r] = 0;
        }
    }
}

}  // namespace detail
}  // namespace deq
