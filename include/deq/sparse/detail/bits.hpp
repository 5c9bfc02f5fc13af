/// @file
/// @brief Internal bit-manipulation helpers shared by the sparse-format converters (kernel-safe).
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "../../config.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/tensor.hpp"

namespace deq::detail::bits {

/// Number of set bits of @p x.
DEQ_HOST_DEVICE constexpr index_t popcount(std::uint64_t x) {
#if DEQ_DEVICE_PASS
    return __popcll(x);
#else
    return std::popcount(x);
#endif
}

/// Index of the lowest set bit of @p x (x must not be zero).
DEQ_HOST_DEVICE constexpr index_t lowest(std::uint64_t x) {
#if DEQ_DEVICE_PASS
    return __ffsll(static_cast<long long>(x)) - 1;
#else
    return std::countr_zero(x);
#endif
}

/// A word whose @p n lowest bits are set, n in [0, 64].
DEQ_HOST_DEVICE constexpr std::uint64_t low_mask(index_t n) {
    return n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
}

/// Bits [pos, pos + n) of a packed LSB-first bit string, n in [0, 64]; the caller guarantees
/// that those bits lie inside the storage.
DEQ_HOST_DEVICE constexpr std::uint64_t read(std::uint64_t const* words, index_t pos, index_t n) {
    if (n <= 0) return 0;
    index_t const w = pos / 64;
    index_t const s = pos % 64;
    std::uint64_t v = words[w] >> s;
    if (s + n > 64) v |= words[w + 1] << (64 - s);
    return v & low_mask(n);
}

/// ORs the @p n low bits of @p value into bits [pos, pos + n) of a packed bit string, n in [0, 64].
DEQ_HOST_DEVICE constexpr void write_or(std::uint64_t* words, index_t pos, index_t n, std::uint64_t value) {
    if (n <= 0) return;
    value &= low_mask(n);
    index_t const w = pos / 64;
    index_t const s = pos % 64;
    words[w] |= value << s;
    if (s + n > 64) words[w + 1] |= value >> (64 - s);
}

/// Sets bits [begin, end) of a packed bit string.
DEQ_HOST_DEVICE constexpr void set_range(std::uint64_t* words, index_t begin, index_t end) {
    while (begin < end) {
        index_t const n = (end - begin) < 64 - begin % 64 ? (end - begin) : 64 - begin % 64;
        write_or(words, begin, n, ~std::uint64_t{0});
        begin += n;
    }
}

/// True when any bit in [begin, end) of a packed bit string is set.
DEQ_HOST_DEVICE constexpr bool any_in_range(std::uint64_t const* words, index_t begin, index_t end) {
    while (begin < end) {
        index_t const n = (end - begin) < 64 - begin % 64 ? (end - begin) : 64 - begin % 64;
        if (read(words, begin, n) != 0) return true;
        begin += n;
    }
    return false;
}

/// Number of set bits in [begin, end) of a packed bit string.
DEQ_HOST_DEVICE constexpr index_t count_range(std::uint64_t const* words, index_t begin, index_t end) {
    index_t total = 0;
    while (begin < end) {
        index_t const n = (end - begin) < 64 - begin % 64 ? (end - begin) : 64 - begin % 64;
        total += popcount(read(words, begin, n));
        begin += n;
    }
    return total;
}

/// Turns per-item counts (with one trailing slot) into offsets: v[i] becomes the sum of the
/// counts before i, and v.back() the total (host only).
inline void exclusive_scan(std::vector<index_t>& v) {
    index_t run = 0;
    for (auto& x : v) {
        index_t const c = x;
        x = run;
        run += c;
    }
}

}  // namespace deq::detail::bits
