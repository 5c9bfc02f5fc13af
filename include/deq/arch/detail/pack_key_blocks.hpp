/// @file
/// @brief Packing of key levels into blocks of keys × groups of head-dimension entries, the layout the
/// integer dot-product tiles of deq/arch/predictor_avx2.hpp and predictor_avx512.hpp read (internal).
#pragma once

#include <cstdint>

#include "../../core/tensor.hpp"

namespace deq::arch::detail {

/// Packs @p keys rows of signed levels into blocks of @p KeyBlock keys: block b holds, for each group
/// g of @p Group head-dimension entries, the block's keys one after another,
/// `out[(b * groups + g) * KeyBlock * Group + Group * key + t] = encode(level)`. Entries past @p dim
/// and keys past @p keys in the last block are encoded as level 0.
/// @tparam KeyBlock Keys per block.
/// @tparam Group    Head-dimension entries per group.
/// @param levels Key levels, [keys][ld].
/// @param keys   Number of keys.
/// @param dim    Head dimension.
/// @param ld     Row stride of @p levels (>= dim, a multiple of Group).
/// @param out    ceil(keys / KeyBlock) * (ld / Group) * KeyBlock * Group entries.
/// @param encode Maps a level (int) to the stored entry (e.g. the identity, or a bias to unsigned).
template <index_t KeyBlock, index_t Group, class Out, class Encode>
void pack_key_blocks(std::int8_t const* levels, index_t keys, index_t dim, index_t ld, Out* out, Encode encode) {
    index_t const groups = ld / Group;
    index_t const blocks = keys / KeyBlock + (keys % KeyBlock != 0 ? 1 : 0);
    for (index_t b = 0; b < blocks; ++b) {
        for (index_t g = 0; g < groups; ++g) {
            Out* dst = out + (b * groups + g) * KeyBlock * Group;
            for (index_t key = 0; key < KeyBlock; ++key) {
                index_t const j = b * KeyBlock + key;
                for (index_t t = 0; t < Group; ++t) {
                    index_t const col = g * Group + t;
                    int const level = (j < keys && col < dim) ? levels[j * ld + col] : 0;
                    dst[key * Group + t] = encode(level);
                }
            }
        }
    }
}

}  // namespace deq::arch::detail
