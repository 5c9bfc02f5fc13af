/// @file
/// @brief Products and sums that stay separately rounded on every target.
///
/// nvcc contracts `a * b + c` into one fused multiply-add in device code by default (`-fmad=true`),
/// also across an inlined call. Where deq's results must keep the host's bits on the device (the
/// predictor's norms and levels), the arithmetic goes through these functions: on the device they are
/// the round-to-nearest intrinsics, which are never contracted; on the host they are the plain operations.
#pragma once

#include <type_traits>

#include "../config.hpp"

namespace deq::detail {

/// RN(a · b), never fused with a later addition (other types: `a * b` as it is).
/// @tparam F An arithmetic type (float and double are the ones nvcc contracts).
/// @param a A factor.
/// @param b A factor.
/// @return The rounded product, of the type of `a * b`.
template <class F>
DEQ_HOST_DEVICE inline auto multiply_unfused(F a, F b) {
#if DEQ_DEVICE_PASS
    if constexpr (std::is_same_v<F, float>) return __fmul_rn(a, b);
    else if constexpr (std::is_same_v<F, double>) return __dmul_rn(a, b);
    else return a * b;
#else
    return a * b;
#endif
}

/// RN(a + b), never fused with an earlier product (other types: `a + b` as it is).
/// @tparam F An arithmetic type.
/// @param a A term.
/// @param b A term.
/// @return The rounded sum, of the type of `a + b`.
template <class F>
DEQ_HOST_DEVICE inline auto add_unfused(F a, F b) {
#if DEQ_DEVICE_PASS
    if constexpr (std::is_same_v<F, float>) return __fadd_rn(a, b);
    else if constexpr (std::is_same_v<F, double>) return __dadd_rn(a, b);
    else return a + b;
#else
    return a + b;
#endif
}

/// RN(s + RN(a · a)): the product rounded, then the sum.
/// @param s The running sum.
/// @param a The term.
/// @return The new sum.
DEQ_HOST_DEVICE inline double add_square_unfused(double s, double a) {
#if DEQ_DEVICE_PASS
    return __dadd_rn(s, __dmul_rn(a, a));
#else
    return s + a * a;
#endif
}

}  // namespace deq::detail
