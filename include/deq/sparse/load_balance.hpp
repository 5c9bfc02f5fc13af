/// @file
/// @brief Sanger's PE-utilization ("load balance") metric `_eval_load_balance`, its CSV log row,
/// and the same utilization measured on a `deq::pack_split` segmentation.
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
#include "pack_split.hpp"
#include "statistics.hpp"

namespace deq {

/// What the `no_skip` variant of the load-balance metric adds to the segment count.
enum class no_skip_term {
    /// What the reference code adds (exact reproduction, the default): its `num_skips =
    /// skip_mask.sum()` with `skip_mask = num_nonzero.ne(0)` counts the NON-empty vectors.
    nonempty_vectors,
    /// What the reference's comments intend: one (empty) time slot per skipped all-zero vector.
    empty_vectors
};

/// Parameters of the load-balance metric (the reference's keyword arguments).
struct load_balance_options {
    /// Columns per vector (`num_ports`, 64 in the reference); the mask's column count must be a multiple.
    index_t num_ports = 64;
    /// PEs per row (`num_pes`; logged for 32 and 16).
    index_t num_pes = 16;
    /// Add a term to the denominator instead of skipping all-zero vectors (`no_skip=True`).
    bool no_skip = false;
    /// The term `no_skip` adds; `nonempty_vectors` reproduces the reference code exactly.
    no_skip_term term = no_skip_term::nonempty_vectors;

    /// Checks the fields; throws deq::invalid_argument naming the field and value.
    void validate() const {
        if (num_ports < 1) detail::throw_invalid_argument("num_ports", num_ports, "must be >= 1");
        if (num_pes < 1) detail::throw_invalid_argument("num_pes", num_pes, "must be >= 1");
    }
};

/// Result of the load-balance metric, with the counts it is made of.
struct load_balance_result {
    /// PE utilization: `(Σ floor(nnz/num_pes) + Σ frac(nnz/num_pes)) / (Σ ceil(nnz/num_pes) [+ term])`
    /// over the non-empty vectors, i.e. `(nonzeros / num_pes) / (segments [+ term])`, where the
    /// no_skip term is `vectors - skipped` (reference) or `skipped` (see no_skip_term). When the
    /// denominator is 0 (every vector empty, or no vector at all; NaN in the reference) it is 0.
    double utilization = 0;
    /// Vectors considered: those not entirely covered by padding.
    index_t vectors = 0;
    /// All-zero vectors among them (the "skips").
    index_t skipped = 0;
    /// Mask bits in the non-skipped vectors (raw bits: padded keys inside a kept vector count).
    index_t nonzeros = 0;
    /// Full segments, `Σ floor(nnz / num_pes)`.
    index_t full_segments = 0;
    /// All segments, `Σ ceil(nnz / num_pes)`.
    index_t segments = 0;
};

namespace detail {

/// Per-row partial sums of the load-balance metric.
struct load_balance_partial {
    index_t vectors = 0, skipped = 0, nonzeros = 0, full_segments = 0, segments = 0;
};

/// Kernel over effective (b, h, i) rows: the row's vectors of `num_ports` columns.
struct load_balance_kernel {
    const_bit_mask_view mask;
    key_padding padding;
    std::uint8_t const* window_valid;  // [batch, cols / num_ports]: any real key in the window
    index_t heads, num_ports, num_pes;
    load_balance_partial* out;

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const i = item % mask.rows();
        index_t const h = (item / mask.rows()) % heads;
        index_t const b = item / (mask.rows() * heads);
        load_balance_partial p;
        if (padding.is_valid(b, i)) {
            index_t const windows = mask.cols() / num_ports;
            std::uint64_t const* row = mask.row(b, h, i);
            for (index_t w = 0; w < windows; ++w) {
                if (window_valid != nullptr && !window_valid[b * windows + w]) continue;
                ++p.vectors;
                index_t const nnz = bits::count_range(row, w * num_ports, (w + 1) * num_ports);
                if (nnz == 0) {
                    ++p.skipped;
                    continue;
                }
                p.nonzeros += nnz;
                p.full_segments += nnz / num_pes;
                p.segments += (nnz + num_pes - 1) / num_pes;
            }
        }
        out[item] = p;
    }
};

}  // namespace detail

/// Sanger's `_eval_load_balance(mask, valid, num_ports, num_pes, no_skip)`: every mask row is cut
/// into `cols / num_ports` vectors; vectors whose validity entries `valid(b,i)·valid(b,j)` are all 0
/// are dropped; all-zero vectors are skipped; each remaining vector of nnz bits needs
/// `ceil(nnz / num_pes)` segments, of which `floor(nnz / num_pes)` are full. With `no_skip` the
/// reference adds the number of non-empty vectors to the denominator (a quirk of its code, kept by
/// default; see no_skip_term). Rows are processed in parallel on @p space and reduced on the host.
/// deq computes the ratio exactly in double (the reference sums float32 fractions, which differs by
/// float32 rounding only).
/// @tparam Space A host execution space.
/// @param space   Execution space running the per-row kernel.
/// @param mask    The mask, `[B or 1, H, L, L]` with padding, any `[B, H, rows, cols]` without.
/// @param padding Token validity `[B, L]` shared by queries and keys; empty = no padding.
/// @param options num_ports, num_pes and no_skip.
/// @throws deq::invalid_argument when `cols % num_ports != 0`, deq::shape_error when the padding does not fit.
/// @return The utilization and the counts it is made of.
template <exec::host_execution_space Space>
load_balance_result eval_load_balance(Space const& space, const_bit_mask_view mask, key_padding padding,
                                      load_balance_options const& options) {
    options.validate();
    detail::check_mask_view(mask);
    if (mask.cols() % options.num_ports != 0) {
        detail::throw_invalid_argument("num_ports", options.num_ports,
                                       detail::concat("must divide the mask's column count ", mask.cols()));
    }
    index_t const batch = detail::padded_batch(mask, padding);
    index_t const heads = mask.heads();
    index_t const windows = mask.cols() / options.num_ports;
    std::vector<std::uint8_t> window_valid;
    if (!padding.none()) {
        window_valid.assign(static_cast<std::size_t>(batch * windows), 0);
        for (index_t b = 0; b < batch; ++b)
            for (index_t j = 0; j < mask.cols(); ++j)
                if (padding.is_valid(b, j)) window_valid[static_cast<std::size_t>(b * windows + j / options.num_ports)] = 1;
    }
    index_t const n = batch * heads * mask.rows();
    std::vector<detail::load_balance_partial> partial(static_cast<std::size_t>(n));
    if (n > 0) {
        exec::parallel_for(space, n,
                           detail::load_balance_kernel{mask, padding, window_valid.empty() ? nullptr : window_valid.data(),
                                                       heads, options.num_ports, options.num_pes, partial.data()});
    }
    load_balance_result r;
    for (auto const& p : partial) {
        r.vectors += p.vectors;
        r.skipped += p.skipped;
        r.nonzeros += p.nonzeros;
        r.full_segments += p.full_segments;
        r.segments += p.segments;
    }
    index_t const term = options.term == no_skip_term::nonempty_vectors ? r.vectors - r.skipped : r.skipped;
    index_t const denominator = r.segments + (options.no_skip ? term : 0);
    r.utilization = denominator > 0 ? static_cast<double>(r.nonzeros) / static_cast<double>(options.num_pes) /
                                          static_cast<double>(denominator)
                                    : 0.0;
    return r;
}

/// One row of Sanger's `load_balance.csv`: columns `50%-no-skip, 50%-skip, 25%-no-skip, 25%-skip,
/// overall-sparsity` (32 and 16 PEs of 64 ports; the last one is the density).
struct load_balance_log {
    /// Utilization with 32 PEs, all-zero vectors counted.
    double pes32_no_skip = 0;
    /// Utilization with 32 PEs, all-zero vectors skipped.
    double pes32_skip = 0;
    /// Utilization with 16 PEs, all-zero vectors counted.
    double pes16_no_skip = 0;
    /// Utilization with 16 PEs, all-zero vectors skipped.
    double pes16_skip = 0;
    /// `_eval_overall_sparsity` (the kept fraction of valid pairs).
    double overall_sparsity = 0;
};

/// Computes the reference's logged row (`gen_sparsity_mask` with `LOG_LOAD_BALANCE`), 64 ports,
/// with the reference's exact no_skip term.
/// @tparam Space A host execution space.
/// @param space   Execution space running the per-row kernels.
/// @param mask    The mask.
/// @param padding Token validity shared by queries and keys; empty = no padding.
/// @return The five logged values.
template <exec::host_execution_space Space>
load_balance_log sanger_load_balance_log(Space const& space, const_bit_mask_view mask, key_padding padding = {}) {
    load_balance_log log;
    log.pes32_no_skip = eval_load_balance(space, mask, padding, {64, 32, true, no_skip_term::nonempty_vectors}).utilization;
    log.pes32_skip = eval_load_balance(space, mask, padding, {64, 32, false, no_skip_term::nonempty_vectors}).utilization;
    log.pes16_no_skip = eval_load_balance(space, mask, padding, {64, 16, true, no_skip_term::nonempty_vectors}).utilization;
    log.pes16_skip = eval_load_balance(space, mask, padding, {64, 16, false, no_skip_term::nonempty_vectors}).utilization;
    log.overall_sparsity = compute_mask_statistics(space, mask, padding).density;
    return log;
}

/// PE utilization of an actual pack & split segmentation: occupied slots divided by the slots the
/// counted segments provide, `nnz / (pe_n · Σ_segments rows_in_group)`; with @p no_skip false,
/// segments without any non-zero (all-zero windows) are not counted, with @p no_skip true each costs
/// its slots. For `height == 1` and `window == num_ports` this equals `eval_load_balance` without
/// padding (skip mode, and no_skip mode with `no_skip_term::empty_vectors`); larger heights measure
/// the cost of packing rows that share segment boundaries. 0 when nothing is counted.
/// @param m       The segmentation.
/// @param no_skip Count empty segments too.
/// @return The utilization in [0, 1].
inline double pack_split_utilization(pack_split const& m, bool no_skip) {
    index_t slots = 0;
    index_t nnz = 0;
    for (index_t g = 0; g < m.group_count(); ++g) {
        index_t const r0 = (g % m.groups()) * m.params.height;
        index_t const nr = m.rows - r0 < m.params.height ? m.rows - r0 : m.params.height;
        for (index_t s = m.group_ptr[static_cast<std::size_t>(g)]; s < m.group_ptr[static_cast<std::size_t>(g + 1)]; ++s) {
            auto const& seg = m.segments[static_cast<std::size_t>(s)];
            if (seg.nnz == 0 && !no_skip) continue;
            slots += nr * m.params.pe_n;
            nnz += seg.nnz;
        }
    }
    return slots > 0 ? static_cast<double>(nnz) / static_cast<double>(slots) : 0.0;
}

}  // namespace deq
