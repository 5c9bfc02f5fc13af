/// @file
/// @brief Arithmetic operators shared by the 16-bit floating-point types (computed in float).
#pragma once

#include <concepts>
#include <cstdint>

#include "../../config.hpp"

namespace deq::detail {

/// CRTP base giving a 16-bit floating-point type @p D (implicitly convertible from and to float,
/// with `from_bits` / `bits`) its arithmetic, in the style of `c10::Half`:
/// `D op D -> D` (computed in float, rounded once to D: exact for + - * / since float has more
/// than 2p + 2 significand bits), `D op F -> F` for floating-point F, `D op Int -> D` for integral Int,
/// unary minus by flipping the sign bit, and compound assignment. Comparisons use the built-in
/// float comparisons through the implicit conversion (NaN compares unequal).
template <class D>
struct narrow_float_ops {
    friend DEQ_HOST_DEVICE constexpr D operator+(D a, D b) noexcept { return D(static_cast<float>(a) + static_cast<float>(b)); }
    friend DEQ_HOST_DEVICE constexpr D operator-(D a, D b) noexcept { return D(static_cast<float>(a) - static_cast<float>(b)); }
    friend DEQ_HOST_DEVICE constexpr D operator*(D a, D b) noexcept { return D(static_cast<float>(a) * static_cast<float>(b)); }
    friend DEQ_HOST_DEVICE constexpr D operator/(D a, D b) noexcept { return D(static_cast<float>(a) / static_cast<float>(b)); }

    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator+(D a, F b) noexcept { return static_cast<F>(static_cast<float>(a)) + b; }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator-(D a, F b) noexcept { return static_cast<F>(static_cast<float>(a)) - b; }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator*(D a, F b) noexcept { return static_cast<F>(static_cast<float>(a)) * b; }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator/(D a, F b) noexcept { return static_cast<F>(static_cast<float>(a)) / b; }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator+(F a, D b) noexcept { return a + static_cast<F>(static_cast<float>(b)); }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator-(F a, D b) noexcept { return a - static_cast<F>(static_cast<float>(b)); }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator*(F a, D b) noexcept { return a * static_cast<F>(static_cast<float>(b)); }
    template <std::floating_point F>
    friend DEQ_HOST_DEVICE constexpr F operator/(F a, D b) noexcept { return a / static_cast<F>(static_cast<float>(b)); }

    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator+(D a, Int b) noexcept { return a + D(b); }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator-(D a, Int b) noexcept { return a - D(b); }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator*(D a, Int b) noexcept { return a * D(b); }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator/(D a, Int b) noexcept { return a / D(b); }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator+(Int a, D b) noexcept { return D(a) + b; }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator-(Int a, D b) noexcept { return D(a) - b; }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator*(Int a, D b) noexcept { return D(a) * b; }
    template <std::integral Int>
    friend DEQ_HOST_DEVICE constexpr D operator/(Int a, D b) noexcept { return D(a) / b; }

    friend DEQ_HOST_DEVICE constexpr D operator-(D a) noexcept {
        return D::from_bits(static_cast<std::uint16_t>(a.bits() ^ 0x8000u));
    }
    friend DEQ_HOST_DEVICE constexpr D operator+(D a) noexcept { return a; }

    template <class U>
    DEQ_HOST_DEVICE constexpr D& operator+=(U const& b) noexcept {
        return self() = D(self() + b);
    }
    template <class U>
    DEQ_HOST_DEVICE constexpr D& operator-=(U const& b) noexcept {
        return self() = D(self() - b);
    }
    template <class U>
    DEQ_HOST_DEVICE constexpr D& operator*=(U const& b) noexcept {
        return self() = D(self() * b);
    }
    template <class U>
    DEQ_HOST_DEVICE constexpr D& operator/=(U const& b) noexcept {
        return self() = D(self() / b);
    }

private:
    DEQ_HOST_DEVICE constexpr D& self() noexcept { return static_cast<D&>(*this); }
};

}  // namespace deq::detail
