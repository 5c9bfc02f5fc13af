/// @file
/// @brief `deq::sizeof_bits<T>`: the number of bits one value of an element type occupies.
///
/// In the style of `cute::sizeof_bits`: ordinary types occupy `8 * sizeof(T)` bits, the sub-byte
/// integer types of deq/numeric/int_b.hpp specialise the trait with their logical width (4 for
/// `deq::int4b_t`). cv-qualifiers are ignored.
#pragma once

#include <climits>
#include <type_traits>

namespace deq {

/// Number of bits one value of @p T occupies: `CHAR_BIT * sizeof(T)` unless specialised (sub-byte
/// integer types report their logical width).
/// @tparam T Element type (cv-qualifiers are ignored).
template <class T>
struct sizeof_bits : std::integral_constant<int, static_cast<int>(CHAR_BIT * sizeof(T))> {};

/// `sizeof_bits` of a const-qualified type: that of the unqualified type.
/// @tparam T Element type.
template <class T>
struct sizeof_bits<T const> : sizeof_bits<T> {};

/// `sizeof_bits` of a volatile-qualified type: that of the unqualified type.
/// @tparam T Element type.
template <class T>
struct sizeof_bits<T volatile> : sizeof_bits<T> {};

/// `sizeof_bits` of a const volatile-qualified type: that of the unqualified type.
/// @tparam T Element type.
template <class T>
struct sizeof_bits<T const volatile> : sizeof_bits<T> {};

/// Shorthand for `sizeof_bits<T>::value`.
/// @tparam T Element type.
template <class T>
inline constexpr int sizeof_bits_v = sizeof_bits<T>::value;

}  // namespace deq
