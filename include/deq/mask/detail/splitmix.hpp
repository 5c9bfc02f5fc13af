/// @file
/// @brief Internal seeded generator (SplitMix64) used for BigBird's random blocks.
///
/// The sequence depends only on the seed (no standard-library distribution is involved, whose
/// output is implementation defined), so a layout is identical on every platform and compiler.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "../../core/tensor.hpp"

namespace deq::detail {

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, full period, good statistical quality.
class splitmix64 {
public:
    /// Generator seeded with @p seed.
    explicit splitmix64(std::uint64_t seed) : state_(seed) {}

    /// Next 64 random bits.
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    /// Uniform integer in [0, n), n >= 1, without modulo bias (rejection sampling).
    std::uint64_t below(std::uint64_t n) {
        std::uint64_t const threshold = (0 - n) % n;  // 2^64 mod n
        for (;;) {
            std::uint64_t const r = next();
            if (r >= threshold) return r % n;
        }
    }

    /// Draws @p k distinct values from [0, n) (partial Fisher-Yates shuffle of 0..n-1), in draw order.
    std::vector<index_t> sample(index_t n, index_t k) {
        std::vector<index_t> pool(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i) pool[static_cast<std::size_t>(i)] = i;
        for (index_t t = 0; t < k; ++t) {
            auto const j = t + static_cast<index_t>(below(static_cast<std::uint64_t>(n - t)));
            std::swap(pool[static_cast<std::size_t>(t)], pool[static_cast<std::size_t>(j)]);
        }
        pool.resize(static_cast<std::size_t>(k));
        return pool;
    }

private:
    std::uint64_t state_;
};

}  // namespace deq::detail
