/// @file
/// @brief `deq::bert::layer_attention_stats` (one attention call of one layer) and
/// `deq::bert::attention_summary` (their aggregate over layers and batches, averaged as the reference does).
///
/// The reference logs one row per attention call (one layer of one batch) and its `ratio_avg.py` averages
/// the column over all rows: the summary's density and refinement ratio are therefore the **mean over
/// calls** of each call's value (deq::attention_stats::density, itself the reference's per-call mean over
/// sequences). Row counts are sums: `empty_rows` counts real query rows (per head) with no kept real key
/// (every entry pruned), `unrefined_rows` real query rows with no full-precision real key (the
/// reference DEQ log's `num_mask_empty_rows`; for masks without refinement it equals `empty_rows`).
#pragma once

#include "../attention/stats.hpp"
#include "../core/tensor.hpp"

namespace deq::bert {

/// Statistics of one layer's attention call.
struct layer_attention_stats {
    /// The deq attention statistics of the call.
    attention_stats stats;
    /// Real query rows (over heads) with no full-precision real key (refined, or kept when the mode has
    /// no refinement). Equals stats.empty_rows for dense, static and Sanger attention.
    index_t unrefined_rows = 0;
};

/// Aggregate of attention calls (layers × batches), with the reference's averaging.
struct attention_summary {
    /// Number of calls added.
    index_t calls = 0;
    /// Sum over calls of the per-call density.
    double density_sum = 0;
    /// Sum over calls of the per-call refinement ratio.
    double refinement_sum = 0;
    /// Real query rows over all calls and heads.
    index_t rows = 0;
    /// Rows with no kept real key.
    index_t empty_rows = 0;
    /// Rows with no full-precision real key.
    index_t unrefined_rows = 0;
    /// Valid (real, real) pairs over all calls and heads.
    index_t valid_pairs = 0;
    /// Valid pairs kept.
    index_t kept_pairs = 0;
    /// Valid pairs computed at full precision.
    index_t refined_pairs = 0;

    /// Adds one call.
    /// @param s The call's statistics.
    void add(layer_attention_stats const& s) {
        ++calls;
        density_sum += s.stats.density;
        refinement_sum += s.stats.refinement_ratio;
        rows += s.stats.rows;
        empty_rows += s.stats.empty_rows;
        unrefined_rows += s.unrefined_rows;
        valid_pairs += s.stats.valid_pairs;
        kept_pairs += s.stats.kept_pairs;
        refined_pairs += s.stats.refined_pairs;
    }
    /// Adds every call of another summary.
    /// @param o The other summary.
    void merge(attention_summary const& o) {
        calls += o.calls;
        density_sum += o.density_sum;
        refinement_sum += o.refinement_sum;
        rows += o.rows;
        empty_rows += o.empty_rows;
        unrefined_rows += o.unrefined_rows;
        valid_pairs += o.valid_pairs;
        kept_pairs += o.kept_pairs;
        refined_pairs += o.refined_pairs;
    }
    /// @return Mean over calls of the kept fraction of valid pairs (0 without calls).
    double density() const noexcept { return calls > 0 ? density_sum / static_cast<double>(calls) : 0.0; }
    /// @return Mean over calls of the full-precision fraction of valid pairs (0 without calls).
    double refinement_ratio() const noexcept { return calls > 0 ? refinement_sum / static_cast<double>(calls) : 0.0; }
    /// @return empty_rows / rows (0 without rows).
    double empty_row_fraction() const noexcept { return rows > 0 ? static_cast<double>(empty_rows) / static_cast<double>(rows) : 0.0; }
    /// @return unrefined_rows / rows (0 without rows).
    double unrefined_row_fraction() const noexcept {
        return rows > 0 ? static_cast<double>(unrefined_rows) / static_cast<double>(rows) : 0.0;
    }
};

}  // namespace deq::bert
