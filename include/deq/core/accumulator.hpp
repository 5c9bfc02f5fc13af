/// @file
/// @brief `deq::accum_t<T>`: the arithmetic type used to accumulate products of elements of type T.
#pragma once

namespace deq {

/// Accumulator type for element type @p T: `double` for `double`, `float` for everything else
/// (`float`, 16-bit floating-point types). Scores, softmax and outputs are computed in it.
/// @tparam T Element type.
template <class T>
struct accumulator {
    /// The accumulator type.
    using type = float;
};

/// Accumulator of `double`.
template <>
struct accumulator<double> {
    /// The accumulator type.
    using type = double;
};

/// Shorthand for `typename accumulator<T>::type`.
/// @tparam T Element type.
template <class T>
using accum_t = typename accumulator<T>::type;

}  // namespace deq
