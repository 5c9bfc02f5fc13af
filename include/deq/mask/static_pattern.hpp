/// @file
/// @brief Static block-sparse attention patterns (Longformer, BigBird, Fixed, dense) with the
/// parameters of Sanger's and DEQ's `configs/sparse_attn/*.json`, built into a `deq::bit_mask`.
///
/// The layouts follow Sanger's `modeling_static_spattn.py` (a port of DeepSpeed's
/// `sparsity_config.py`): the block layout is built once for `max_position` tokens (512 in the
/// reference, `config.max_position_embeddings`), expanded to tokens and sliced to `[:L, :L]`.
/// Sequence lengths that are not a multiple of the block size therefore simply cut the last block,
/// and BigBird random blocks that fall beyond L are lost, exactly as in the reference.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../sparse/detail/bits.hpp"
#include "detail/splitmix.hpp"
#include "detail/static_layout.hpp"

namespace deq {

/// Description of a static (input-independent) block-sparse attention pattern.
///
/// Which fields matter depends on `type`:
/// - `dense`: every entry kept (`block` is only used to size the block layout).
/// - `longformer` (Sanger's `BSLongformerSparsityConfig`): a sliding window of `window_blocks`
///   blocks around the diagonal block, plus global blocks: block rows *and* block columns
///   `global_block_indices` (or the ranges `[global_block_indices[k], global_block_end_indices[k])`
///   when the end indices are given). Indices at or beyond the layout are ignored, as in the reference.
/// - `bigbird` (`BigBirdSparsityConfig`): `random_blocks` random block columns per block row,
///   drawn without replacement from all block columns of the `max_position` layout, a sliding
///   window of `window_blocks`, and the first `global_blocks` block rows and columns global.
/// - `fixed` (`FixedSparsityConfig`, bidirectional, one global pattern): dense windows of
///   `local_blocks` blocks on the diagonal; the last `global_blocks` blocks of every window are
///   global columns that all rows attend to (and also global rows when `horizontal_global`).
///
/// Reference quirk kept: the sliding window spans `2 * (window_blocks / 2) + 1` blocks, so an even
/// window behaves like the next odd one.
///
/// Random blocks: the reference draws them with Python's `random.sample` after HF `set_seed(42)`.
/// deq uses its own seeded generator (SplitMix64 with a partial Fisher-Yates shuffle), so the
/// BigBird layout is deterministic for a seed and identical across platforms, but it is **not**
/// bit-identical to the Python layout; only its structure and statistics agree.
struct static_pattern {
    /// The pattern family.
    enum class kind {
        dense,       ///< Every entry kept.
        longformer,  ///< Sliding window + global block rows/columns.
        bigbird,     ///< Random blocks + sliding window + leading global blocks.
        fixed        ///< Local windows + per-window global blocks.
    };

    /// Pattern family.
    kind type = kind::dense;
    /// Block size in tokens (square blocks), >= 1.
    index_t block = 16;
    /// Sequence length the layout is built for (then sliced to L); a multiple of `block` except for dense.
    index_t max_position = 512;
    /// Longformer / BigBird: `num_sliding_window_blocks`, >= 1.
    index_t window_blocks = 3;
    /// Longformer: `global_block_indices` (block indices, >= 0).
    std::vector<index_t> global_block_indices{0};
    /// Longformer: optional `global_block_end_indices` (exclusive); empty = single blocks.
    std::vector<index_t> global_block_end_indices{};
    /// BigBird: number of leading global blocks; Fixed: global blocks per local window.
    index_t global_blocks = 1;
    /// BigBird: random block columns per block row, >= 0.
    index_t random_blocks = 1;
    /// BigBird: seed of the random-block generator (the reference runs use HF `set_seed(42)`).
    std::uint64_t seed = 42;
    /// Fixed: blocks per local window, >= 1 and a multiple of `global_blocks`.
    index_t local_blocks = 4;
    /// Fixed: global blocks are also global rows (`horizontal_global_attention`); reference: false.
    bool horizontal_global = false;

    /// The dense pattern (`DenseSparsityConfig`).
    /// @param max_position Sequence length the layout is built for.
    /// @return The dense pattern.
    static static_pattern dense(index_t max_position = 512) {
        static_pattern p;
        p.type = kind::dense;
        p.max_position = max_position;
        return p;
    }

    /// Longformer with the reference defaults of `configs/sparse_attn/longformer.json`.
    /// @param block                Block size in tokens.
    /// @param window_blocks        Sliding-window width in blocks.
    /// @param global_block_indices Global block indices (rows and columns).
    /// @param max_position         Sequence length the layout is built for.
    /// @return The Longformer pattern.
    static static_pattern longformer(index_t block = 16, index_t window_blocks = 3,
                                     std::vector<index_t> global_block_indices = {0}, index_t max_position = 512) {
        static_pattern p;
        p.type = kind::longformer;
        p.block = block;
        p.window_blocks = window_blocks;
        p.global_block_indices = std::move(global_block_indices);
        p.max_position = max_position;
        return p;
    }

    /// BigBird with the reference defaults of `configs/sparse_attn/bigbird.json`.
    /// @param block         Block size in tokens.
    /// @param random_blocks Random block columns per block row.
    /// @param window_blocks Sliding-window width in blocks.
    /// @param global_blocks Leading global blocks (rows and columns).
    /// @param seed          Seed of the random-block generator.
    /// @param max_position  Sequence length the layout is built for.
    /// @return The BigBird pattern.
    static static_pattern bigbird(index_t block = 16, index_t random_blocks = 1, index_t window_blocks = 3,
                                  index_t global_blocks = 1, std::uint64_t seed = 42, index_t max_position = 512) {
        static_pattern p;
        p.type = kind::bigbird;
        p.block = block;
        p.random_blocks = random_blocks;
        p.window_blocks = window_blocks;
        p.global_blocks = global_blocks;
        p.seed = seed;
        p.max_position = max_position;
        return p;
    }

    /// Fixed with the reference defaults of `configs/sparse_attn/fixed.json`.
    /// @param block             Block size in tokens.
    /// @param local_blocks      Blocks per local window.
    /// @param global_blocks     Global blocks per local window (the last ones of the window).
    /// @param horizontal_global Whether global blocks are also global rows.
    /// @param max_position      Sequence length the layout is built for.
    /// @return The Fixed pattern.
    static static_pattern fixed(index_t block = 16, index_t local_blocks = 4, index_t global_blocks = 1,
                                bool horizontal_global = false, index_t max_position = 512) {
        static_pattern p;
        p.type = kind::fixed;
        p.block = block;
        p.local_blocks = local_blocks;
        p.global_blocks = global_blocks;
        p.horizontal_global = horizontal_global;
        p.max_position = max_position;
        return p;
    }

    /// Number of block rows (and columns) of the `max_position` layout (rounded up for dense).
    /// @return `ceil(max_position / block)`, or 0 when block < 1.
    index_t num_blocks() const { return block > 0 ? (max_position + block - 1) / block : 0; }

    /// Checks every field used by `type`; throws deq::invalid_argument naming the field and value.
    void validate() const {
        if (block < 1) detail::throw_invalid_argument("block", block, "must be >= 1");
        if (max_position < 1) detail::throw_invalid_argument("max_position", max_position, "must be >= 1");
        if (type == kind::dense) return;
        if (max_position % block != 0) {
            detail::throw_invalid_argument("max_position", max_position,
                                           detail::concat("must be a multiple of block = ", block));
        }
        index_t const n = num_blocks();
        auto check_window = [&] {
            if (window_blocks < 1 || window_blocks > n) {
                detail::throw_invalid_argument("window_blocks", window_blocks,
                                               detail::concat("must be in [1, ", n, "] (blocks in max_position)"));
            }
        };
        switch (type) {
        case kind::longformer:
            check_window();
            for (std::size_t k = 0; k < global_block_indices.size(); ++k) {
                if (global_block_indices[k] < 0) {
                    detail::throw_invalid_argument(detail::concat("global_block_indices[", k, "]"),
                                                   global_block_indices[k], "must be >= 0");
                }
            }
            if (!global_block_end_indices.empty()) {
                if (global_block_end_indices.size() != global_block_indices.size()) {
                    detail::throw_invalid_argument("global_block_end_indices.size()", global_block_end_indices.size(),
                                                   detail::concat("must equal global_block_indices.size() = ",
                                                                  global_block_indices.size()));
                }
                for (std::size_t k = 0; k < global_block_end_indices.size(); ++k) {
                    if (global_block_end_indices[k] <= global_block_indices[k]) {
                        detail::throw_invalid_argument(
                            detail::concat("global_block_end_indices[", k, "]"), global_block_end_indices[k],
                            detail::concat("must be > global_block_indices[", k, "] = ", global_block_indices[k]));
                    }
                }
            }
            break;
        case kind::bigbird:
            check_window();
            if (random_blocks < 0 || random_blocks > n) {
                detail::throw_invalid_argument("random_blocks", random_blocks, detail::concat("must be in [0, ", n, "]"));
            }
            if (global_blocks < 0 || global_blocks > n) {
                detail::throw_invalid_argument("global_blocks", global_blocks, detail::concat("must be in [0, ", n, "]"));
            }
            break;
        case kind::fixed:
            if (local_blocks < 1) detail::throw_invalid_argument("local_blocks", local_blocks, "must be >= 1");
            if (global_blocks < 1 || global_blocks > n) {
                detail::throw_invalid_argument("global_blocks", global_blocks, detail::concat("must be in [1, ", n, "]"));
            }
            if (local_blocks % global_blocks != 0) {
                detail::throw_invalid_argument("local_blocks", local_blocks,
                                               detail::concat("must be a multiple of global_blocks = ", global_blocks));
            }
            break;
        case kind::dense:
            break;
        }
    }

    /// Field-wise equality.
    /// @param a First pattern.
    /// @param b Second pattern.
    /// @return True when every field is equal.
    friend bool operator==(static_pattern const& a, static_pattern const& b) = default;

    /// Name of the family: "dense", "longformer", "bigbird" or "fixed".
    /// @return The family name.
    std::string name() const {
        switch (type) {
        case kind::longformer: return "longformer";
        case kind::bigbird: return "bigbird";
        case kind::fixed: return "fixed";
        case kind::dense: break;
        }
        return "dense";
    }

    /// Human-readable description with the parameters that matter, e.g.
    /// "longformer(block=16, window_blocks=3, global_block_indices=[0], max_position=512)".
    /// @return The description.
    std::string describe() const {
        auto list = [](std::vector<index_t> const& v) {
            std::string s = "[";
            for (std::size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
            return s + "]";
        };
        switch (type) {
        case kind::longformer:
            return detail::concat("longformer(block=", block, ", window_blocks=", window_blocks,
                                  ", global_block_indices=", list(global_block_indices),
                                  global_block_end_indices.empty()
                                      ? std::string{}
                                      : ", global_block_end_indices=" + list(global_block_end_indices),
                                  ", max_position=", max_position, ")");
        case kind::bigbird:
            return detail::concat("bigbird(block=", block, ", random_blocks=", random_blocks,
                                  ", window_blocks=", window_blocks, ", global_blocks=", global_blocks,
                                  ", seed=", seed, ", max_position=", max_position, ")");
        case kind::fixed:
            return detail::concat("fixed(block=", block, ", local_blocks=", local_blocks,
                                  ", global_blocks=", global_blocks,
                                  ", horizontal_global=", horizontal_global ? "true" : "false",
                                  ", max_position=", max_position, ")");
        case kind::dense: break;
        }
        return detail::concat("dense(max_position=", max_position, ")");
    }
};

/// Pattern for a name, case-insensitive, with the reference parameters: "dense", "longformer",
/// "bigbird", "fixed", "hugebird" (Sanger's `hugebird.json`: BigBird with block 32, 3 random, window
/// 3, 2 global), and the reference config class names "DenseSparsityConfig",
/// "BSLongformerSparsityConfig", "BigBirdSparsityConfig", "FixedSparsityConfig".
/// @param name The pattern name.
/// @throws deq::invalid_argument listing the known names when @p name is unknown.
/// @return The pattern with the reference parameters.
inline static_pattern parse_static_pattern(std::string_view name) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "dense" || lower == "densesparsityconfig") return static_pattern::dense();
    if (lower == "longformer" || lower == "bslongformer" || lower == "bslongformersparsityconfig") {
        return static_pattern::longformer();
    }
    if (lower == "bigbird" || lower == "bigbirdsparsityconfig") return static_pattern::bigbird();
    if (lower == "hugebird") return static_pattern::bigbird(32, 3, 3, 2);
    if (lower == "fixed" || lower == "fixedsparsityconfig") return static_pattern::fixed();
    detail::throw_invalid_name("pattern", name,
                               "dense, longformer, bigbird, fixed, hugebird, DenseSparsityConfig, "
                               "BSLongformerSparsityConfig, BigBirdSparsityConfig, FixedSparsityConfig "
                               "(case-insensitive)");
}

/// The block layout of @p pattern for its `max_position`, as a bit mask of shape
/// `[1, heads, num_blocks, num_blocks]` (bit (0, h, r, c) = block row r attends to block column c).
/// Deterministic patterns give the same layout for every head; BigBird draws every head's random
/// blocks in turn from one generator stream (head 0 first), as the reference loops over heads.
/// @param pattern The pattern (validated here).
/// @param heads   Number of heads, >= 1.
/// @return The block layout, `[1, heads, num_blocks, num_blocks]`.
inline bit_mask static_block_layout(static_pattern const& pattern, index_t heads = 1) {
    pattern.validate();
    if (heads < 1) detail::throw_invalid_argument("heads", heads, "must be >= 1");
    index_t const n = pattern.num_blocks();
    bit_mask layout(1, heads, n, n);
    detail::splitmix64 rng(pattern.seed);
    for (index_t h = 0; h < heads; ++h) {
        detail::block_grid g(n);
        switch (pattern.type) {
        case static_pattern::kind::dense:
            std::fill(g.cells.begin(), g.cells.end(), std::uint8_t{1});
            break;
        case static_pattern::kind::longformer:
            detail::sliding_window_layout(g, pattern.window_blocks);
            detail::longformer_global_layout(g, pattern.global_block_indices, pattern.global_block_end_indices);
            break;
        case static_pattern::kind::bigbird:
            detail::bigbird_random_layout(g, pattern.random_blocks, rng);
            detail::sliding_window_layout(g, pattern.window_blocks);
            detail::bigbird_global_layout(g, pattern.global_blocks);
            break;
        case static_pattern::kind::fixed:
            detail::fixed_local_layout(g, pattern.local_blocks);
            detail::fixed_global_layout(g, pattern.local_blocks, pattern.global_blocks, pattern.horizontal_global);
            break;
        }
        for (index_t r = 0; r < n; ++r)
            for (index_t c = 0; c < n; ++c)
                if (g.at(r, c)) layout.set(0, h, r, c);
    }
    return layout;
}

namespace detail {

/// Kernel: expands one token row (h, i) of a block layout into the token mask.
struct expand_block_layout_kernel {
    const_bit_mask_view layout;
    bit_mask_view out;
    index_t block;
    index_t length;

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const h = item / length;
        index_t const i = item % length;
        std::uint64_t const* src = layout.row(0, h, i / block);
        std::uint64_t* dst = out.row(0, h, i);
        index_t const col_blocks = (length + block - 1) / block;
        for (index_t bj = 0; bj < col_blocks; ++bj) {
            if ((src[bj / mask_word_bits] >> (bj % mask_word_bits)) & 1u) {
                index_t const end = (bj + 1) * block < length ? (bj + 1) * block : length;
                bits::set_range(dst, bj * block, end);
            }
        }
    }
};

}  // namespace detail

/// The token mask of @p pattern for sequence length @p length, shape `[1, heads, length, length]`
/// (batch extent 1 broadcasts): the `max_position` layout expanded to tokens and sliced to
/// `[:length, :length]`, as the reference does. Token rows are expanded in parallel on @p space.
/// @tparam Space A host execution space.
/// @param space   Execution space running the per-row expansion.
/// @param pattern The pattern (validated here).
/// @param length  Sequence length L, in [1, pattern.max_position].
/// @param heads   Number of heads, >= 1 (see static_block_layout for BigBird's per-head draws).
/// @return The token mask, `[1, heads, length, length]`.
template <exec::host_execution_space Space>
bit_mask make_static_mask(Space const& space, static_pattern const& pattern, index_t length, index_t heads = 1) {
    pattern.validate();
    if (length < 1 || length > pattern.max_position) {
        detail::throw_invalid_argument("length", length,
                                       detail::concat("must be in [1, max_position = ", pattern.max_position, "]"));
    }
    if (heads < 1) detail::throw_invalid_argument("heads", heads, "must be >= 1");
    bit_mask const layout = static_block_layout(pattern, heads);
    bit_mask out(1, heads, length, length);
    exec::parallel_for(space, heads * length,
                       detail::expand_block_layout_kernel{layout.view(), out.view(), pattern.block, length});
    return out;
}

}  // namespace deq
