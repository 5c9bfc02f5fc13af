/// @file
/// @brief `deq::detail::bit_select`: a branch-free float select (internal; used by the vectorisable
/// exp and erf in deq/numeric/exp.hpp and deq/numeric/erf.hpp).
#pragma once

#include <bit>
#include <cstdint>

namespace deq::detail {

/// `c ? a : b` through a bit mask, so that the compiler keeps it a straight-line select (a `?:` on
/// floats can become a branch, which stops GCC from vectorising the loop around it).
/// @param c The condition.
/// @param a Value for true.
/// @param b Value for false.
/// @return @p a when @p c, else @p b (bit for bit).
inline float bit_select(bool c, float a, float b) noexcept {
    std::uint32_t const m = 0u - static_cast<std::uint32_t>(c);
    return std::bit_cast<float>((std::bit_cast<std::uint32_t>(a) & m) | (std::bit_cast<std::uint32_t>(b) & ~m));
}

}  // namespace deq::detail
