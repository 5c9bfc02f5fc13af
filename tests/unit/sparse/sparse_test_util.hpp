// Helpers shared by the sparse-format tests: random masks and mask pictures.
#pragma once

#include <deq/core/bit_mask.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sparse_test {

using deq::index_t;

/// A mask with every bit set with probability @p p (seeded), plus forced empty and full rows when
/// the shape has room: row 0 of every (b, h) empty, row 1 full.
inline deq::bit_mask random_mask(index_t batch, index_t heads, index_t rows, index_t cols, double p,
                                 std::uint64_t seed, bool force_edge_rows = true) {
    deq::bit_mask m(batch, heads, rows, cols);
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (index_t b = 0; b < batch; ++b)
        for (index_t h = 0; h < heads; ++h)
            for (index_t i = 0; i < rows; ++i)
                for (index_t j = 0; j < cols; ++j) {
                    bool v = u(gen) < p;
                    if (force_edge_rows && rows > 2 && i == 0) v = false;
                    if (force_edge_rows && rows > 2 && i == 1) v = true;
                    if (v) m.set(b, h, i, j);
                }
    return m;
}

/// A [1, 1, rows.size(), cols] mask from rows of '0' / '1'.
inline deq::bit_mask mask_from(std::vector<std::string> const& rows) {
    index_t const cols = rows.empty() ? 0 : static_cast<index_t>(rows[0].size());
    deq::bit_mask m(1, 1, static_cast<index_t>(rows.size()), cols);
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = 0; j < rows[i].size(); ++j)
            if (rows[i][j] == '1') m.set(0, 0, static_cast<index_t>(i), static_cast<index_t>(j));
    return m;
}

/// The shapes every round-trip test covers: L = 1, empty dims, cols not a multiple of 64, broadcasts.
struct shape {
    index_t batch, heads, rows, cols;
};
inline std::vector<shape> const& edge_shapes() {
    static std::vector<shape> const shapes = {{1, 1, 1, 1},  {1, 1, 0, 5},   {1, 1, 4, 0},  {2, 3, 5, 70},
                                              {1, 2, 17, 64}, {2, 1, 9, 130}, {1, 1, 33, 1}, {3, 2, 7, 200}};
    return shapes;
}

}  // namespace sparse_test
