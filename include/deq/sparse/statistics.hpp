/// @file
/// @brief `deq::mask_statistics`: density (kept fraction of valid pairs, with the reference's
/// exact averaging), valid/kept pair counts and empty rows of an attention mask.
#pragma once

#include <cstdint>
#include <vector>

#include "../config.hpp"
#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "detail/bits.hpp"
#include "detail/check.hpp"

namespace deq {

/// Statistics of an attention mask over the valid (query, key) pairs, i.e. pairs where both tokens
/// are real (self-attention: queries and keys share one `key_padding`).
struct mask_statistics {
    /// Number of valid pairs over every (batch, head): `Σ_b H · (Σ_j valid(b, j))²`, or
    /// `B · H · rows · cols` without padding.
    index_t valid_pairs = 0;
    /// Number of valid pairs that the mask keeps, `Σ mask · valid`.
    index_t kept_valid_pairs = 0;
    /// The reference's `_eval_overall_sparsity` (which is the KEPT fraction, i.e. the density):
    /// the mean over sequences b of `Σ_{h,i,j} mask·valid / (H · Σ_{i,j} valid)`. Sequences without
    /// any valid pair (NaN in the reference) are left out of the mean; with none left it is 0.
    double density = 0;
    /// Real query rows (b, h, i) that keep no real key.
    index_t empty_rows = 0;
    /// Real query rows (b, h, i) counted.
    index_t rows = 0;
};

namespace detail {

/// Kernel over effective (b, h, i) rows: kept valid keys of the row, or -1 for a padded query row.
struct mask_statistics_kernel {
    const_bit_mask_view mask;
    key_padding padding;
    index_t heads;
    index_t* kept;

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const i = item % mask.rows();
        index_t const h = (item / mask.rows()) % heads;
        index_t const b = item / (mask.rows() * heads);
        if (!padding.is_valid(b, i)) {
            kept[item] = -1;
            return;
        }
        std::uint64_t const* row = mask.row(b, h, i);
        index_t n = 0;
        for (index_t w = 0; w < mask.words_per_row(); ++w) {
            if (padding.none()) {
                n += bits::popcount(row[w]);
            } else {
                for (std::uint64_t x = row[w]; x != 0; x &= x - 1) {
                    n += padding.is_valid(b, w * mask_word_bits + bits::lowest(x)) ? 1 : 0;
                }
            }
        }
        kept[item] = n;
    }
};

}  // namespace detail

/// Computes the statistics of @p mask (rows counted in parallel on @p space, then reduced on the host).
/// A mask batch extent of 1 broadcasts over the padding's batch; the head count is the mask's stored
/// head extent (a head-broadcast mask counts once, which leaves the density unchanged).
/// @tparam Space A host execution space.
/// @param space   Execution space running the per-row kernel.
/// @param mask    The mask, `[B or 1, H, L, L]` with padding, any `[B, H, rows, cols]` without.
/// @param padding Token validity `[B, L]` shared by queries and keys; empty = no padding.
/// @throws deq::shape_error when the padding does not fit the mask.
/// @return The statistics.
template <exec::host_execution_space Space>
mask_statistics compute_mask_statistics(Space const& space, const_bit_mask_view mask, key_padding padding = {}) {
    detail::check_mask_view(mask);
    index_t const batch = detail::padded_batch(mask, padding);
    index_t const heads = mask.heads();
    index_t const per_batch = heads * mask.rows();
    std::vector<index_t> kept(static_cast<std::size_t>(batch * per_batch), 0);
    if (mask.rows() > 0) {
        exec::parallel_for(space, batch * per_batch,
                           detail::mask_statistics_kernel{mask, padding, heads, kept.data()});
    }
    mask_statistics s;
    double density_sum = 0;
    index_t sequences = 0;
    for (index_t b = 0; b < batch; ++b) {
        index_t valid_keys = mask.cols();
        if (!padding.none()) {
            valid_keys = 0;
            for (index_t j = 0; j < mask.cols(); ++j) valid_keys += padding.is_valid(b, j) ? 1 : 0;
        }
        index_t const valid_rows = padding.none() ? mask.rows() : valid_keys;
        index_t const valid_pairs = heads * valid_rows * valid_keys;
        index_t kept_pairs = 0;
        for (index_t k = b * per_batch; k < (b + 1) * per_batch; ++k) {
            index_t const n = kept[static_cast<std::size_t>(k)];
            if (n < 0) continue;
            kept_pairs += n;
            ++s.rows;
            if (n == 0) ++s.empty_rows;
        }
        s.valid_pairs += valid_pairs;
        s.kept_valid_pairs += kept_pairs;
        if (valid_pairs > 0) {
            density_sum += static_cast<double>(kept_pairs) / static_cast<double>(valid_pairs);
            ++sequences;
        }
    }
    s.density = sequences > 0 ? density_sum / static_cast<double>(sequences) : 0.0;
    return s;
}

}  // namespace deq
