/// @file
/// @brief `deq::precision_map`: the three-level element-wise precision map (pruned / low-bit / high
/// precision) that combines a Sanger pruning rule with a DEQ refinement rule.
///
/// `kept = select(prune)` and `refined = select(refine) AND kept`, both over the same predicted scores
/// (see deq/mask/select.hpp). Kept but unrefined entries use the low-bit predicted score, refined
/// entries the full-precision score, and the rest are pruned (-10000 penalty).
#pragma once

#include <concepts>
#include <cstdint>
#include <type_traits>

#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "detail/select_kernels.hpp"
#include "mask_rule.hpp"
#include "select.hpp"

namespace deq {

/// Three-level element-wise precision map over [B, H, Lq, Lk]; `refined` is a subset of `kept`.
struct precision_map {
    /// Entries that are not pruned.
    bit_mask kept;
    /// Entries computed at high precision (a subset of `kept`).
    bit_mask refined;

    /// The precision of one entry.
    enum class level : std::uint8_t {
        pruned = 0,  ///< Not kept.
        low = 1,     ///< Kept, score from the low-bit predictor.
        high = 2     ///< Kept and refined, full-precision score.
    };

    /// The level of entry (b, h, i, j).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Query index.
    /// @param j Key index.
    /// @return pruned, low or high.
    level at(index_t b, index_t h, index_t i, index_t j) const {
        if (!kept.test(b, h, i, j)) return level::pruned;
        return refined.test(b, h, i, j) ? level::high : level::low;
    }

    /// Number of stored entries at level @p l (padded positions included).
    /// @param l The level.
    /// @return The count over all [B, H, Lq, Lk] entries.
    index_t count(level l) const {
        index_t const total = kept.batch() * kept.heads() * kept.rows() * kept.cols();
        switch (l) {
            case level::pruned: return total - kept.count();
            case level::low: return kept.count() - refined.count();
            case level::high: return refined.count();
        }
        return 0;
    }
};

/// Builds a precision map: `kept = select(prune)`, `refined = select(refine) AND kept`.
/// @tparam Space A host execution space.
/// @tparam S     Score type (float or double).
/// @param space   Execution space.
/// @param scores  Predicted scores Ŝ, [B, H, Lq, Lk].
/// @param padding Key padding or none.
/// @param prune   Rule selecting the kept entries (e.g. mask_rule::probability(0.002)).
/// @param refine  Rule selecting the refined entries (e.g. mask_rule::adaptive_maximum(0.8, ...)).
/// @return The map, with masks of exactly [B, H, Lq, Lk].
/// @throws As select_elements().
template <exec::host_execution_space Space, std::floating_point S>
precision_map make_precision_map(Space const& space, tensor_view<S const, 4> scores, key_padding padding,
                                 mask_rule const& prune, mask_rule const& refine) {
    prune.validate();
    refine.validate();
    precision_map map{select_elements(space, scores, padding, prune), select_elements(space, scores, padding, refine)};
    index_t const rows = map.kept.batch() * map.kept.heads() * map.kept.rows();
    exec::parallel_for(space, rows, detail::select_and_rows{map.refined.view(), map.kept.view()});
    return map;
}

/// Convenience overload of make_precision_map() for a view of non-const scores.
/// @tparam Space A host execution space.
/// @tparam S     Score type.
/// @param space   Execution space.
/// @param scores  Predicted scores, [B, H, Lq, Lk].
/// @param padding Key padding or none.
/// @param prune   Rule selecting the kept entries.
/// @param refine  Rule selecting the refined entries.
/// @return The map.
template <exec::host_execution_space Space, std::floating_point S>
    requires(!std::is_const_v<S>)
precision_map make_precision_map(Space const& space, tensor_view<S, 4> scores, key_padding padding,
                                 mask_rule const& prune, mask_rule const& refine) {
    return make_precision_map(space, tensor_view<S const, 4>(scores), padding, prune, refine);
}

}  // namespace deq
