/// @file
/// @brief The schedule of the GPU attention kernel (internal; deq/attention/cuda/attention.hpp): its
/// shared-memory layout, launch shape and block numbering, in host-and-device code that the host tests
/// cover.
///
/// A block runs `warps` query rows of one (b, h), one row per warp, over key tiles of
/// attention_rows_tile_keys keys. Its shared memory holds, in scores of the score type: the key tile
/// (attention_rows_tile_keys rows of d + 1 scores, the padding keeping the lanes' rows in distinct
/// banks) and the value tile (attention_rows_tile_keys rows of dv), when they fit; then each warp's query
/// row (d) and output accumulator (dv).
#pragma once

#include <cstddef>
#include <initializer_list>

#include "../../config.hpp"
#include "../../core/tensor.hpp"

namespace deq::detail {

/// Keys per tile of the GPU attention kernel: one per lane of a warp.
inline constexpr int attention_rows_tile_keys = 32;

/// Shared-memory scores of one block.
/// @param warps        Warps (query rows) per block.
/// @param dim          Head dimension of q and k.
/// @param dv           Head dimension of v.
/// @param tiles_shared Whether the key and value tiles are in shared memory.
/// @return The number of scores.
DEQ_HOST_DEVICE constexpr index_t attention_rows_shared_scores(int warps, index_t dim, index_t dv, bool tiles_shared) {
    index_t const tiles = tiles_shared ? attention_rows_tile_keys * ((dim + 1) + dv) : 0;
    return tiles + static_cast<index_t>(warps) * (dim + dv);
}

/// Offset (in scores) of the key tile, the value tile, the query rows and the accumulators.
struct attention_rows_layout {
    index_t k_tile = 0;   ///< Key tile [tile][d + 1] (when tiles are shared).
    index_t v_tile = 0;   ///< Value tile [tile][dv] (when tiles are shared).
    index_t q_rows = 0;   ///< Query rows [warps][d].
    index_t acc_rows = 0; ///< Accumulators [warps][dv].
};

/// The shared-memory layout of a block.
/// @param warps        Warps per block.
/// @param dim          Head dimension of q and k.
/// @param dv           Head dimension of v.
/// @param tiles_shared Whether the tiles are in shared memory.
/// @return The offsets.
DEQ_HOST_DEVICE constexpr attention_rows_layout attention_rows_shared_layout(int warps, index_t dim, index_t dv, bool tiles_shared) {
    attention_rows_layout l;
    l.k_tile = 0;
    l.v_tile = tiles_shared ? attention_rows_tile_keys * (dim + 1) : 0;
    l.q_rows = tiles_shared ? l.v_tile + attention_rows_tile_keys * dv : 0;
    l.acc_rows = l.q_rows + static_cast<index_t>(warps) * dim;
    return l;
}

/// The launch shape of the GPU attention kernel.
struct attention_rows_launch {
    int warps = 0;             ///< Warps (query rows) per block; 0: not even one row fits.
    bool tiles_shared = false; ///< Whether the key / value tiles are in shared memory.
    std::size_t bytes = 0;     ///< Dynamic shared memory per block.
};

/// Chooses the launch shape: tiles in shared memory with the most warps (8, 4, 2, 1) that fit in
/// @p max_bytes, else the most warps without the tiles (keys and values then read from global memory).
/// @param dim        Head dimension of q and k.
/// @param dv         Head dimension of v.
/// @param score_size Bytes per score.
/// @param max_bytes  Shared memory a block may use.
/// @return The shape (warps 0 when even one row does not fit).
inline attention_rows_launch attention_rows_launch_shape(index_t dim, index_t dv, std::size_t score_size, std::size_t max_bytes) {
    for (bool const tiles : {true, false}) {
        for (int const w : {8, 4, 2, 1}) {
            std::size_t const bytes = static_cast<std::size_t>(attention_rows_shared_scores(w, dim, dv, tiles)) * score_size;
            if (bytes <= max_bytes) return {w, tiles, bytes};
        }
    }
    return {};
}

/// Blocks of a launch: `heads_total` (b, h) pairs, each with ceil(lq / warps) blocks of rows.
/// @param heads_total B · H.
/// @param lq          Query rows.
/// @param warps       Rows per block.
/// @return The number of blocks.
DEQ_HOST_DEVICE constexpr index_t attention_rows_blocks(index_t heads_total, index_t lq, int warps) {
    return heads_total * ((lq + warps - 1) / warps);
}

/// The (b · H + h) pair and the first query row of block @p block.
/// @param block Block number, in [0, attention_rows_blocks()).
/// @param lq    Query rows.
/// @param warps Rows per block.
/// @param bh    Output: b · H + h.
/// @param first Output: the block's first query row.
DEQ_HOST_DEVICE inline void attention_rows_block(index_t block, index_t lq, int warps, index_t& bh, index_t& first) {
    index_t const per_head = (lq + warps - 1) / warps;
    bh = block / per_head;
    first = (block - bh * per_head) * warps;
}

}  // namespace deq::detail
