/// @file
/// @brief Cycle, operation and traffic accounting of each modelled design (internal; the model is
/// described in docs/accelerator.md and used through deq::accel::evaluate).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "../../core/tensor.hpp"
#include "../../exec/serial.hpp"
#include "../../sparse/pack_split.hpp"
#include "../architecture.hpp"
#include "../cost_report.hpp"
#include "head_work.hpp"

namespace deq::accel::detail {

/// Ceiling division of non-negative integers.
inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

/// Cost of one matrix product on an output-stationary array.
struct gemm_cost {
    /// Cycles.
    double cycles = 0;
    /// Operand bytes read from SRAM.
    double sram_read_bytes = 0;
};

/// `M × N` outputs with reduction `K` on an output-stationary `R × C` array whose PEs reduce
/// @p per_cycle terms per cycle: `ceil(M/R)·ceil(N/C)` tiles of `max(ceil(K/per_cycle), C)` cycles
/// (operand streaming, or draining the C outputs of a row when that is longer; tiles overlap their
/// drain with the next tile) plus one fill/drain skew `R + C − 2`.
/// @param M, N, K       Product extents.
/// @param R, C          Array rows and columns.
/// @param per_cycle     Reduction terms per PE per cycle.
/// @param operand_bytes Bytes per operand.
/// @return Cycles and SRAM reads (`R·K + C·K` operands per tile).
inline gemm_cost os_gemm(index_t M, index_t N, index_t K, index_t R, index_t C, index_t per_cycle, double operand_bytes) {
    gemm_cost g;
    if (M <= 0 || N <= 0 || K <= 0) return g;
    double const tiles = static_cast<double>(ceil_div(M, R) * ceil_div(N, C));
    g.cycles = tiles * static_cast<double>(std::max(ceil_div(K, per_cycle), C)) + static_cast<double>(R + C - 2);
    g.sram_read_bytes = tiles * static_cast<double>((R + C) * K) * operand_bytes;
    return g;
}

/// Makespan of a permutation flow shop: items pass stages 0..S-1 in order, each stage serves one item
/// at a time, in item order.
template <std::size_t S>
double flow_shop(std::vector<std::array<double, S>> const& items) {
    std::array<double, S> finish{};
    for (auto const& it : items) {
        double prev = 0;
        for (std::size_t s = 0; s < S; ++s) {
            double const start = std::max(prev, finish[s]);
            finish[s] = start + it[s];
            prev = finish[s];
        }
    }
    return items.empty() ? 0.0 : finish[S - 1];
}

/// Adds @p cycles to stage @p s.
inline void add_stage(cost_report& r, stage s, double cycles) { r.stage_cycles[static_cast<std::size_t>(s)] += cycles; }

/// Bytes per operand of @p bits.
inline double operand_bytes(int bits) { return static_cast<double>(bits) / 8.0; }

/// DRAM bytes of one head: q, k, v read once and the output written once, high-precision operands.
inline double head_dram_bytes(architecture const& a, index_t n, index_t m, index_t d, index_t dv) {
    return static_cast<double>(n * d + m * d + m * dv + n * dv) * operand_bytes(a.operand_bits);
}

/// Dense output-stationary array: (predictor as full-width GEMM + exp/compare), QKᵀ, softmax, P·V in sequence.
inline double dense_head(architecture const& a, head_work const& hw, index_t d, index_t dv, bool predictor,
                         cost_report& r) {
    double const ob = operand_bytes(a.operand_bits);
    double const nm = static_cast<double>(hw.n * hw.m);
    double total = 0;
    if (predictor) {
        gemm_cost const p = os_gemm(hw.n, hw.m, d, a.rows, a.cols, 1, operand_bytes(a.low_bits));
        double const mask = static_cast<double>(ceil_div(hw.n * hw.m, a.exp_units));
        add_stage(r, stage::predict, p.cycles);
        add_stage(r, stage::mask, mask);
        total += p.cycles + mask;
        r.macs_low += nm * static_cast<double>(d);
        r.busy_pe_cycles += nm * static_cast<double>(d);  // a low-bit MAC occupies a full PE here
        r.exps += nm;
        r.compares += nm;
        r.sram_bytes += p.sram_read_bytes + nm * ob + nm / 8.0;
    }
    gemm_cost const s = os_gemm(hw.n, hw.m, d, a.rows, a.cols, 1, ob);
    double const sm = static_cast<double>(ceil_div(hw.n * hw.m, a.exp_units));
    gemm_cost const pv = os_gemm(hw.n, dv, hw.m, a.rows, a.cols, 1, ob);
    add_stage(r, stage::score, s.cycles);
    add_stage(r, stage::softmax, sm);
    add_stage(r, stage::av, pv.cycles);
    total += s.cycles + sm + pv.cycles;
    r.macs_high += nm * static_cast<double>(d + dv);
    r.busy_pe_cycles += nm * static_cast<double>(d + dv);
    r.exps += nm;
    r.sram_bytes += s.sram_read_bytes + nm * ob       // S written
                    + 2.0 * nm * ob                   // softmax reads S, writes P
                    + pv.sram_read_bytes + static_cast<double>(hw.n * dv) * ob;
    return total;
}

/// Sanger: the flow-shop items (predict, mask + pack, sparse array) of one head, one per block of `rows`
/// query rows, appended to @p items.
inline void sanger_head(architecture const& a, head_work const& hw, index_t d, index_t dv, bool predictor,
                        std::vector<std::array<double, 3>>& items, cost_report& r) {
    double const ob = operand_bytes(a.operand_bits), lb = operand_bytes(a.low_bits);
    double const nm = static_cast<double>(hw.n * hw.m);
    if (hw.n == 0 || hw.m == 0) return;
    pack_split_params params;
    params.height = a.rows;
    params.window = a.window;
    params.pe_n = a.cols;
    pack_split const ps = to_pack_split(exec::serial{}, hw.compact.view(), params);
    index_t const groups = ps.groups();
    double const seg_cycles = static_cast<double>(d + a.exp_latency + dv + a.cols);
    for (index_t g = 0; g < groups; ++g) {
        index_t const nr = std::min(a.rows, hw.n - g * a.rows);
        std::array<double, 3> item{};
        if (predictor) {
            gemm_cost const p = os_gemm(nr, hw.m, d, a.predictor_rows, a.predictor_cols, 1, lb);
            item[0] = p.cycles;
            r.sram_bytes += p.sram_read_bytes;
        }
        item[1] = static_cast<double>(hw.m);  // compare + pack: one mask column per cycle
        double segs = 0;
        for (index_t s = ps.group_ptr[static_cast<std::size_t>(g)]; s < ps.group_ptr[static_cast<std::size_t>(g + 1)]; ++s) {
            pack_split_segment const& seg = ps.segments[static_cast<std::size_t>(s)];
            if (seg.nnz == 0 && a.skip_empty_segments) continue;
            segs += 1;
            double const width = static_cast<double>(seg.col_end - seg.col_begin);
            r.sram_bytes += (static_cast<double>(nr * d) + width * static_cast<double>(d + dv)) * ob +
                            2.0 * static_cast<double>(nr * dv) * ob;
        }
        item[2] = segs * seg_cycles;
        add_stage(r, stage::predict, item[0]);
        add_stage(r, stage::mask, item[1]);
        add_stage(r, stage::score, segs * static_cast<double>(d));
        add_stage(r, stage::softmax, segs * static_cast<double>(a.exp_latency));
        add_stage(r, stage::av, segs * static_cast<double>(dv + a.cols));
        items.push_back(item);
    }
    double const nnz = static_cast<double>(hw.kept_total());
    double const fusion = std::pow(operand_bytes(a.operand_bits) / operand_bytes(a.low_bits), 2.0);
    r.macs_high += nnz * static_cast<double>(d + dv);
    r.busy_pe_cycles += nnz * static_cast<double>(d + dv);
    r.exps += nnz;
    r.compares += nm;
    r.sram_bytes += nm / 8.0 + static_cast<double>(hw.n * dv) * ob;
    if (predictor) {
        r.macs_low += nm * static_cast<double>(d);
        r.busy_pe_cycles += nm * static_cast<double>(d) / fusion;
        r.exps += nm;
        r.compares += nm;
    }
}

/// DEQ: per-head phase cycles.
struct deq_phases {
    /// 4-bit passes (all of them).
    double predict = 0;
    /// Refinement with the design's row schedule.
    double refine = 0;
    /// Sum of the rows' refinement work, in PE-row cycles.
    double refine_row_work = 0;
    /// Softmax.
    double softmax = 0;
    /// Dense P·V.
    double av = 0;
};

/// DEQ: the phases of one head (v1 lock-step blocks, v2 / v3 decoupled rows) and its operations.
inline deq_phases deq_head(architecture const& a, head_work const& hw, index_t d, index_t dv, bool predictor,
                           cost_report& r) {
    deq_phases p;
    double const ob = operand_bytes(a.operand_bits), lb = operand_bytes(a.low_bits);
    double const nm = static_cast<double>(hw.n * hw.m);
    index_t const fusion = a.fusion();
    if (predictor) {
        gemm_cost const g = os_gemm(hw.n, hw.m, d, a.rows, a.cols, fusion, lb);
        double const passes = static_cast<double>(a.predict_passes);
        p.predict = passes * g.cycles;
        r.macs_low += passes * nm * static_cast<double>(d);
        r.busy_pe_cycles += passes * nm * static_cast<double>(d) / static_cast<double>(fusion);
        r.compares += nm;
        r.sram_bytes += passes * g.sram_read_bytes + 2.0 * nm * ob;  // Ŝ written once, read once
    }
    // Refinement: PE row p takes query row i (p = i mod rows); a row with r_i entries needs
    // ceil(r_i / cols) passes of d cycles (score-stationary, cols PEs each computing one score).
    std::vector<double> work(static_cast<std::size_t>(hw.n));
    for (index_t i = 0; i < hw.n; ++i) {
        index_t const ri = hw.high[static_cast<std::size_t>(i)];
        work[static_cast<std::size_t>(i)] = static_cast<double>(ceil_div(ri, a.cols) * d);
        p.refine_row_work += work[static_cast<std::size_t>(i)];
        r.sram_bytes += static_cast<double>(ceil_div(ri, a.cols)) * static_cast<double>((a.cols + 1) * d) * ob;
    }
    if (a.kind == design::deq_v1) {
        for (index_t b0 = 0; b0 < hw.n; b0 += a.rows) {
            double mx = 0;
            for (index_t i = b0; i < std::min(hw.n, b0 + a.rows); ++i) mx = std::max(mx, work[static_cast<std::size_t>(i)]);
            p.refine += mx;
        }
    } else {
        std::vector<double> per_row(static_cast<std::size_t>(a.rows), 0.0);
        for (index_t i = 0; i < hw.n; ++i) per_row[static_cast<std::size_t>(i % a.rows)] += work[static_cast<std::size_t>(i)];
        p.refine = per_row.empty() ? 0.0 : *std::max_element(per_row.begin(), per_row.end());
    }
    double const high = static_cast<double>(hw.high_total()), kept = static_cast<double>(hw.kept_total());
    p.softmax = static_cast<double>(ceil_div(hw.kept_total(), a.exp_units));
    gemm_cost const pv = os_gemm(hw.n, dv, hw.m, a.rows, a.cols, 1, ob);
    p.av = pv.cycles;
    r.macs_high += high * static_cast<double>(d) + nm * static_cast<double>(dv);
    r.busy_pe_cycles += high * static_cast<double>(d) + nm * static_cast<double>(dv);
    r.exps += kept;
    r.sram_bytes += 2.0 * nm * ob + pv.sram_read_bytes + static_cast<double>(hw.n * dv) * ob;
    add_stage(r, stage::predict, p.predict);
    add_stage(r, stage::refine, p.refine);
    add_stage(r, stage::softmax, p.softmax);
    add_stage(r, stage::av, p.av);
    return p;
}

}  // namespace deq::accel::detail
