/// @file
/// @brief Little-endian loads and stores of fixed-width values in byte buffers, independent of the
/// host's byte order and alignment.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace deq::detail {

/// Reads the @p N-byte little-endian unsigned integer at @p p.
template <std::size_t N>
constexpr auto load_le_bits(std::byte const* p) noexcept {
    static_assert(N == 1 || N == 2 || N == 4 || N == 8, "load_le_bits: 1, 2, 4 or 8 bytes");
    using U = std::conditional_t<N == 1, std::uint8_t,
                                 std::conditional_t<N == 2, std::uint16_t, std::conditional_t<N == 4, std::uint32_t, std::uint64_t>>>;
    U v = 0;
    for (std::size_t i = 0; i < N; ++i) v = static_cast<U>(v | (static_cast<U>(static_cast<std::uint8_t>(p[i])) << (8 * i)));
    return v;
}

/// Reads the little-endian value of type @p T (integral or floating point) at @p p.
template <class T>
T load_le(std::byte const* p) noexcept {
    static_assert(std::is_arithmetic_v<T>, "load_le: arithmetic types only");
    auto const bits = load_le_bits<sizeof(T)>(p);
    return std::bit_cast<T>(bits);
}

/// Writes @p value (integral or floating point) to @p p in little-endian byte order.
template <class T>
void store_le(std::byte* p, T value) noexcept {
    static_assert(std::is_arithmetic_v<T>, "store_le: arithmetic types only");
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    if constexpr (std::endian::native == std::endian::big) {
        for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::byte>(raw[sizeof(T) - 1 - i]);
    } else {
        for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::byte>(raw[i]);
    }
}

}  // namespace deq::detail
