/// @file
/// @brief The reference Sanger cost model (`bench_sanger.py`, `bench_sanger_v2.py` of hatsu3/Sanger;
/// algorithm.md §1.5): latency of one BERT attention layer at batch 1 from the mask density, the PE
/// load balance and the sequence length, with the array parameters taken from an architecture (the
/// defaults are the reference's constants).
#pragma once

#include <algorithm>
#include <cmath>

#include "../core/error.hpp"
#include "architecture.hpp"

namespace deq::accel {

/// Latency of one layer split into the reference formulas' terms, in seconds.
struct reference_latency {
    /// Linear projections: Q, K, V (stage 1) and the output projection.
    double projection = 0;
    /// Q·Kᵀ term (bench_sanger: its share of stage 2; v2: the `Qt x Kt` pipeline term).
    double score = 0;
    /// P·V term (bench_sanger: its share of stage 2; v2: the `St x Vt` term).
    double av = 0;
    /// The reference's total.
    double total = 0;
};

namespace detail {

inline void reference_check(double density, double load_balance, double seq_len) {
    if (!(std::isfinite(density) && density > 0 && density <= 1)) {
        ::deq::detail::throw_invalid_argument("density", density, "must be in (0, 1]");
    }
    if (!(std::isfinite(load_balance) && load_balance > 0 && load_balance <= 1)) {
        ::deq::detail::throw_invalid_argument("load_balance", load_balance, "must be in (0, 1]");
    }
    if (!(std::isfinite(seq_len) && seq_len >= 1)) ::deq::detail::throw_invalid_argument("seq_len", seq_len, "must be >= 1");
}

}  // namespace detail

/// `bench_sanger.py`: stage 1 (Q, K, V projections, `3·L·H²·2` ops) runs at `rows·cols·f·2` GOPS;
/// stage 2 (`2·L²·H·2 + L·H²·2` ops) at that rate `/ density · load_balance`.
/// @param arch         Array size (rows × cols), frequency and `reference_hidden` (H).
/// @param density      Kept fraction, (0, 1].
/// @param load_balance PE utilization of pack & split, (0, 1].
/// @param seq_len      Sequence length L.
/// @return The latency terms in seconds.
/// @throws deq::invalid_argument for values outside their ranges.
inline reference_latency bench_sanger_latency(architecture const& arch, double density, double load_balance,
                                              double seq_len) {
    detail::reference_check(density, load_balance, seq_len);
    double const hidden = static_cast<double>(arch.reference_hidden), L = seq_len;
    double const gops1 = static_cast<double>(arch.rows * arch.cols) * arch.frequency_ghz * 2.0;
    double const gops2 = gops1 / density * load_balance;
    reference_latency r;
    double const linear = L * hidden * hidden * 2.0 * 3.0 / 1e9 / gops1;
    double const qk = L * L * hidden * 2.0 / 1e9 / gops2;
    double const pv = L * L * hidden * 2.0 / 1e9 / gops2;
    double const out_proj = L * hidden * hidden * 2.0 / 1e9 / gops2;
    r.projection = linear + out_proj;
    r.score = qk;
    r.av = pv;
    r.total = linear + (qk + pv + out_proj);
    return r;
}

/// `bench_sanger_v2.py`: 64 × 64 tiles (TH = rows, TW = window), `cols` PEs per row, sub-rows after
/// pack & split `density / load_balance / (cols / window) · L`, per tile `(H + TW) + (subrows + TW)`
/// cycles repeated `L / TW` times and then `subrows / TH` times, slowed by `TW · bytes · f / bandwidth`
/// when that exceeds 1; plus the linear terms.
/// @param arch         Array, window, operand width, frequency, bandwidth and `reference_hidden` (H).
/// @param density      Kept fraction, (0, 1].
/// @param load_balance PE utilization of pack & split, (0, 1].
/// @param seq_len      Sequence length L.
/// @return The latency terms in seconds.
/// @throws deq::invalid_argument for values outside their ranges.
inline reference_latency bench_sanger_v2_latency(architecture const& arch, double density, double load_balance,
                                                 double seq_len) {
    detail::reference_check(density, load_balance, seq_len);
    double const th = static_cast<double>(arch.rows), tw = static_cast<double>(arch.window);
    double const pe_per_row = static_cast<double>(arch.cols);
    double const bytes = static_cast<double>((arch.operand_bits + 7) / 8);
    double const freq = arch.frequency_ghz * 1e9;
    double const hidden = static_cast<double>(arch.reference_hidden), L = seq_len;
    double const subrows = density / load_balance / (pe_per_row / tw) * L;
    double const linear_gops = th * pe_per_row * arch.frequency_ghz * 2.0;
    double const proj_gops = linear_gops / density * load_balance;
    double const lat_linear = L * hidden * hidden * 2.0 * 3.0 / 1e9 / linear_gops;
    double const lat_project = L * hidden * hidden * 2.0 / 1e9 / proj_gops;
    double const qk = hidden + tw, sv = subrows + tw;
    double const required_bw = tw * bytes * freq / 1e9;
    double const coeff = required_bw < arch.dram_bandwidth_gbs ? 1.0 : required_bw / arch.dram_bandwidth_gbs;
    double const repeat = (L / tw) * coeff * (subrows / th);
    reference_latency r;
    r.projection = lat_linear + lat_project;
    r.score = qk * repeat / freq;
    r.av = sv * repeat / freq;
    r.total = lat_linear + (qk + sv) * repeat / freq + lat_project;
    return r;
}

/// The formula selected by `arch.formula`.
/// @param arch         The architecture (sanger_reference or any other: only its parameters are used).
/// @param density      Kept fraction, (0, 1].
/// @param load_balance PE utilization, (0, 1].
/// @param seq_len      Sequence length L.
/// @return The latency terms in seconds.
inline reference_latency reference_layer_latency(architecture const& arch, double density, double load_balance,
                                                 double seq_len) {
    return arch.formula == reference_formula::bench_sanger_v2 ? bench_sanger_v2_latency(arch, density, load_balance, seq_len)
                                                              : bench_sanger_latency(arch, density, load_balance, seq_len);
}

}  // namespace deq::accel
