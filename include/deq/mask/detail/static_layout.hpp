/// @file
/// @brief Internal block-layout builders for the static sparsity patterns: a line-by-line port of
/// Sanger's `modeling_static_spattn.py` (itself derived from DeepSpeed's `sparsity_config.py`).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../core/tensor.hpp"
#include "splitmix.hpp"

namespace deq::detail {

/// A square block layout of one head: `n × n` flags, row-major.
struct block_grid {
    index_t n = 0;
    std::vector<std::uint8_t> cells;

    explicit block_grid(index_t blocks) : n(blocks), cells(static_cast<std::size_t>(blocks * blocks), 0) {}
    std::uint8_t& at(index_t r, index_t c) { return cells[static_cast<std::size_t>(r * n + c)]; }
    void set_rows(index_t r0, index_t r1) {
        for (index_t r = std::max<index_t>(r0, 0); r < std::min(r1, n); ++r)
            for (index_t c = 0; c < n; ++c) at(r, c) = 1;
    }
    void set_cols(index_t c0, index_t c1, index_t first_row = 0) {
        for (index_t r = first_row; r < n; ++r)
            for (index_t c = std::max<index_t>(c0, 0); c < std::min(c1, n); ++c) at(r, c) = 1;
    }
};

/// `set_sliding_window_layout`: block row r attends to blocks [r - w, r + w] with w = window / 2.
inline void sliding_window_layout(block_grid& g, index_t window_blocks) {
    index_t const w = window_blocks / 2;
    for (index_t row = 0; row < g.n; ++row) {
        index_t const start = std::max<index_t>(0, row - w);
        index_t const end = std::min(row + w + 1, g.n);
        for (index_t c = start; c < end; ++c) g.at(row, c) = 1;
    }
}

/// Longformer `set_global_layout`: global block rows and columns (indices beyond the layout are ignored).
inline void longformer_global_layout(block_grid& g, std::vector<index_t> const& starts, std::vector<index_t> const& ends) {
    if (ends.empty()) {
        for (index_t idx : starts) {
            if (idx < g.n) {
                g.set_rows(idx, idx + 1);
                g.set_cols(idx, idx + 1);
            }
        }
    } else {
        for (std::size_t k = 0; k < starts.size(); ++k) {
            if (starts[k] < g.n) {
                index_t const end = std::min(ends[k], g.n);
                g.set_rows(starts[k], end);
                g.set_cols(starts[k], end);
            }
        }
    }
}

/// BigBird `set_random_layout`: per block row, `k` distinct random block columns out of all of them.
inline void bigbird_random_layout(block_grid& g, index_t k, splitmix64& rng) {
    for (index_t row = 0; row < g.n; ++row) {
        for (index_t c : rng.sample(g.n, k)) g.at(row, c) = 1;
    }
}

/// BigBird `set_global_layout_itc`: the first `global_blocks` block rows and columns are global.
inline void bigbird_global_layout(block_grid& g, index_t global_blocks) {
    g.set_rows(0, global_blocks);
    g.set_cols(0, global_blocks);
}

/// Fixed `set_local_layout` (bidirectional): dense blocks of `local_blocks` windows on the diagonal.
inline void fixed_local_layout(block_grid& g, index_t local_blocks) {
    for (index_t i = 0; i < g.n; i += local_blocks) {
        index_t const end = std::min(i + local_blocks, g.n);
        for (index_t row = i; row < end; ++row)
            for (index_t col = i; col < end; ++col) g.at(row, col) = 1;
    }
}

/// Fixed `set_global_layout` (bidirectional, one global pattern, head pattern index 0): the last
/// `global_blocks` blocks of each local window are global columns (and rows when @p horizontal);
/// a short last window uses `min(end + first_global, n - global_blocks)` as DeepSpeed does.
inline void fixed_global_layout(block_grid& g, index_t local_blocks, index_t global_blocks, bool horizontal) {
    index_t const first_global = local_blocks - global_blocks;
    index_t end = g.n - (g.n % local_blocks);
    for (index_t i = first_global; i < end; i += local_blocks) {
        g.set_cols(i, i + global_blocks);
        if (horizontal) g.set_rows(i, i + global_blocks);
    }
    if (end < g.n) {
        index_t const start = std::min(end + first_global, g.n - global_blocks);
        end = start + global_blocks;
        g.set_cols(start, end);
        if (horizontal) g.set_rows(start, end);
    }
}

}  // namespace deq::detail
