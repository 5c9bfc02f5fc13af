/// @file
/// @brief `deq::attention_stats`: what one attention call reports (pairs, density, refinement ratio,
/// empty rows), with the reference's definitions.
#pragma once

#include "../core/tensor.hpp"

namespace deq {

/// Statistics of one attention call. A (query, key) pair is *valid* when both tokens are real (see
/// attention_options::query_padding); counts run over batch × heads.
///
/// `density` and `refinement_ratio` follow the reference (`_eval_overall_sparsity`, `_eval_refinement`):
/// the mean over the batch of `selected_valid_b / (H · valid_pairs_per_head_b)`; sequences without a
/// valid pair are left out of the mean (both are 0 when no sequence has one). `density` is the kept
/// fraction (1.0 for dense attention), not the pruned fraction.
struct attention_stats {
    /// Valid (real query, real key) pairs over all batches and heads.
    index_t valid_pairs = 0;
    /// Valid pairs that are kept (all valid pairs when no `kept` mask is given).
    index_t kept_pairs = 0;
    /// Valid pairs computed at full precision: kept and refined (a missing mask counts as all set), so
    /// dense attention gives `valid_pairs`, Sanger gives `kept_pairs`, DEQ the refined pairs.
    index_t refined_pairs = 0;
    /// Real query rows (over heads) with no kept real key.
    index_t empty_rows = 0;
    /// Real query rows over all batches and heads.
    index_t rows = 0;
    /// Kept fraction of the valid pairs (reference formula, see above).
    double density = 0;
    /// Full-precision fraction of the valid pairs (reference formula, see above).
    double refinement_ratio = 0;
    /// Exact dot products q_i·k_j the kernel evaluated, over every row (padded ones included); smaller
    /// than B·H·Lq·Lk when refinement or exact skipping of pruned entries saved work.
    index_t exact_scores = 0;
};

}  // namespace deq
