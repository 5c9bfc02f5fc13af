/// @file
/// @brief Overflow-checked size arithmetic: the one place where deq multiplies extents.
///
/// Every object that holds or derives a size (tensors, views, bit masks, sparse formats, scratch
/// buffers of the pipelines) computes it with these helpers, so that extents whose product does not
/// fit `deq::index_t` (2^63 - 1) end in a deq::shape_error naming the object and its extents instead
/// of signed-overflow undefined behaviour. The rule is the same everywhere: each extent is >= 0 and
/// the product of the **non-zero** extents fits (a zero extent does not make [0, 2^62, 2^62]
/// acceptable: its strides and any derived count would still overflow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "error.hpp"

namespace deq {

/// Signed index type used for every extent, stride and offset.
using index_t = std::int64_t;

namespace detail {

/// Formats @p extents as "[a, b, c]".
inline std::string extents_string(std::span<index_t const> extents) {
    std::string s = "[";
    for (std::size_t r = 0; r < extents.size(); ++r) {
        if (r) s += ", ";
        s += std::to_string(extents[r]);
    }
    return s + "]";
}

/// Throws deq::shape_error: the extents of @p what multiply past the range of index_t.
/// @param what    The object or quantity (e.g. "tensor", "'scores' of predict_scores").
/// @param extents Its extents.
[[noreturn]] inline void throw_size_overflow(std::string_view what, std::span<index_t const> extents) {
    throw shape_error(concat("deq: size overflow: ", what, " with extents ", extents_string(extents),
                             " has more elements than index_t can count (2^63 - 1)"));
}

/// @p a * @p b for non-negative operands, or false when the product does not fit index_t.
/// @param a   First factor (>= 0).
/// @param b   Second factor (>= 0).
/// @param out The product when it fits.
/// @return True when the product fits.
constexpr bool mul_fits(index_t a, index_t b, index_t& out) noexcept {
    if (a != 0 && b > std::numeric_limits<index_t>::max() / a) return false;
    out = a * b;
    return true;
}

/// Whether @p extents describe a countable array: every extent >= 0 and the product of the non-zero
/// extents fits index_t (the rule of checked_size(), without throwing).
/// @param extents The extents.
/// @param size    The element count (0 when any extent is 0) when the extents fit.
/// @return True when the extents fit.
constexpr bool extents_fit(std::span<index_t const> extents, index_t& size) noexcept {
    index_t nonzero = 1;
    bool any_zero = false;
    for (index_t e : extents) {
        if (e < 0) return false;
        if (e == 0) {
            any_zero = true;
        } else if (!mul_fits(nonzero, e, nonzero)) {
            return false;
        }
    }
    size = any_zero ? 0 : nonzero;
    return true;
}

/// The number of elements of an array with @p extents: checks that each extent is >= 0 and that the
/// product of the non-zero extents fits index_t.
/// @param what    Names the object in the error message.
/// @param extents The extents, outermost first.
/// @return The product of all extents (0 when any extent is 0).
/// @throws deq::shape_error naming @p what and the extents for a negative extent or an overflow.
constexpr index_t checked_size(std::string_view what, std::span<index_t const> extents) {
    index_t size = 0;
    if (extents_fit(extents, size)) return size;
    for (std::size_t r = 0; r < extents.size(); ++r) {
        if (extents[r] < 0) {
            throw shape_error(concat("deq: invalid shape: ", what, " with extents ", extents_string(extents),
                                     " has a negative extent in dimension ", r));
        }
    }
    throw_size_overflow(what, extents);
}

/// checked_size() for an initializer list of extents.
/// @param what    Names the object in the error message.
/// @param extents The extents, outermost first.
/// @return The product of the extents.
constexpr index_t checked_size(std::string_view what, std::initializer_list<index_t> extents) {
    return checked_size(what, std::span<index_t const>(extents.begin(), extents.size()));
}

/// The number of bytes of @p count elements of @p element_size bytes, checked against the largest
/// allocation a pointer difference can span.
/// @param what         Names the object in the error message.
/// @param count        Element count (>= 0, e.g. from checked_size()).
/// @param element_size Bytes per element (>= 1).
/// @return count * element_size as std::size_t.
/// @throws deq::shape_error naming @p what when the byte count exceeds PTRDIFF_MAX.
inline std::size_t checked_bytes(std::string_view what, index_t count, std::size_t element_size) {
    auto const limit = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    if (count < 0 || static_cast<std::size_t>(count) > limit / element_size) {
        throw shape_error(concat("deq: size overflow: ", what, " of ", count, " elements of ", element_size,
                                 " bytes exceeds the largest possible allocation"));
    }
    return static_cast<std::size_t>(count) * element_size;
}

/// The largest offset (in elements) that a strided array reaches, sum over r of
/// |stride_r| * (extent_r - 1), checked against index_t; 0 for an empty array.
/// @param what    Names the object in the error message.
/// @param extents The extents (each >= 0).
/// @param strides The strides.
/// @return The largest absolute offset from the first element.
/// @throws deq::shape_error naming @p what when an offset does not fit index_t.
constexpr index_t checked_span(std::string_view what, std::span<index_t const> extents, std::span<index_t const> strides) {
    for (index_t e : extents) {
        if (e == 0) return 0;
    }
    index_t reach = 0;
    for (std::size_t r = 0; r < extents.size(); ++r) {
        index_t const s = strides[r];
        if (s == std::numeric_limits<index_t>::min()) {
            if (extents[r] == 1) continue;
            throw shape_error(concat("deq: size overflow: ", what, " stride ", s, " in dimension ", r, " cannot be negated"));
        }
        index_t term = 0;
        if (!mul_fits(s < 0 ? -s : s, extents[r] - 1, term) || reach > std::numeric_limits<index_t>::max() - term) {
            throw shape_error(concat("deq: size overflow: ", what, " with extents ", extents_string(extents), " and strides ",
                                     extents_string(strides), " reaches offsets beyond index_t (2^63 - 1)"));
        }
        reach += term;
    }
    return reach;
}

}  // namespace detail
}  // namespace deq
