/// @file
/// @brief `deq::accel::evaluate`: the cost (cycles per stage, operations, PE utilization, SRAM and
/// DRAM bytes, energy) of one attention call on one modelled architecture.
///
/// Summary of the designs (details and every assumption in docs/accelerator.md). For each
/// (sequence, head) with n processed query rows, m processed keys, head dims d and dv:
/// - **dense**: output-stationary `rows × cols` array; QKᵀ, softmax on `exp_units` exp units, P·V in
///   sequence (plus, when a predictor ran, the predictor as a full-width GEMM and its exp/compare).
/// - **sanger**: per block of `rows` query rows, a three-stage pipeline: the 4-bit predictor array
///   (`predictor_rows × predictor_cols`, exp unit per row), the comparator + Pack unit (one mask column
///   per cycle), and the sparse array, which spends `d + exp_latency + dv + cols` cycles per non-empty
///   pack & split segment (SDDMM, in-PE exp, SpMM with the row's partial-sum skew).
/// - **deq_v1 / v2 / v3**: one `rows × cols` array of 16-bit PEs fused from `(operand_bits/low_bits)²`
///   4-bit multipliers: `predict_passes` 4-bit passes, the refinement (each PE row computes `cols`
///   refined scores of one query row per d cycles), softmax, dense P·V. v1 advances the refinement in
///   lock-step blocks of `rows` query rows; v2 lets each PE row run its own queue of query rows
///   (i ≡ p mod rows); v3 additionally hides the next head's 4-bit passes in the PE rows left idle by
///   the current head's refinement.
/// - **sanger_reference**: the reference formulas (deq/accel/reference_model.hpp) for the call's
///   density and load balance, per sequence.
///
/// DRAM traffic (q, k, v read once, output written once, 16-bit) overlaps compute over the call; the
/// call takes `max(compute, DRAM transfer)` cycles.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../exec/serial.hpp"
#include "../sparse/load_balance.hpp"
#include "../sparse/statistics.hpp"
#include "architecture.hpp"
#include "cost_report.hpp"
#include "detail/design_costs.hpp"
#include "detail/head_work.hpp"
#include "reference_model.hpp"
#include "workload.hpp"

namespace deq::accel {

namespace detail {

/// Fills the energy of @p r from its operation and byte counts.
inline void apply_energy(energy_table const& e, cost_report& r) {
    r.energy_pj[static_cast<std::size_t>(energy_part::mac_high)] = r.macs_high * e.mac_high_pj;
    r.energy_pj[static_cast<std::size_t>(energy_part::mac_low)] = r.macs_low * e.mac_low_pj;
    r.energy_pj[static_cast<std::size_t>(energy_part::exp)] = r.exps * e.exp_pj;
    r.energy_pj[static_cast<std::size_t>(energy_part::compare)] = r.compares * e.compare_pj;
    r.energy_pj[static_cast<std::size_t>(energy_part::sram)] = r.sram_bytes * e.sram_pj_per_byte;
    r.energy_pj[static_cast<std::size_t>(energy_part::dram)] = r.dram_bytes * e.dram_pj_per_byte;
}

/// The reference cost model for a workload: per sequence, the reference formula at the sequence's
/// density and load balance (`_eval_overall_sparsity`, `_eval_load_balance` with `window` ports and
/// `cols` PEs), length `lk`.
inline cost_report evaluate_reference(architecture const& a, attention_workload const& w) {
    cost_report r;
    for (index_t b = 0; b < w.batch; ++b) {
        double density = 1.0, balance = 1.0;
        key_padding pad{};
        if (!w.padding.none()) {
            pad.valid = tensor_view<std::uint8_t const, 2>(&w.padding.valid(b, 0), {1, w.lk},
                                                           {w.padding.valid.stride(0), w.padding.valid.stride(1)});
        }
        bit_mask full;
        const_bit_mask_view mask = w.kept;
        if (mask.empty()) {
            full = bit_mask(1, 1, w.lq, w.lk, true);
            mask = full.view();
        }
        index_t const mb = mask.batch() == 1 ? 0 : b;
        const_bit_mask_view one(mask.row(mb, 0, 0), 1, mask.heads(), mask.rows(), mask.cols());
        mask_statistics const st = compute_mask_statistics(exec::serial{}, one, pad);
        density = st.density;
        load_balance_options lo;
        lo.num_ports = a.window;
        lo.num_pes = a.cols;
        lo.no_skip = a.reference_no_skip;
        balance = eval_load_balance(exec::serial{}, one, pad, lo).utilization;
        if (!(density > 0) || !(balance > 0)) {
            ::deq::detail::throw_invalid_argument(
                "kept", density, "the reference cost model needs a mask with a kept valid entry in every sequence");
        }
        reference_latency const lat = reference_layer_latency(a, density, balance, static_cast<double>(w.lk));
        double const f = a.frequency_ghz * 1e9;
        add_stage(r, stage::projection, lat.projection * f);
        add_stage(r, stage::score, lat.score * f);
        add_stage(r, stage::av, lat.av * f);
        r.cycles += lat.total * f;
        double const L = static_cast<double>(w.lk), H = static_cast<double>(a.reference_hidden);
        double const macs = 4.0 * L * H * H + density * 2.0 * L * L * H;
        r.macs_high += macs;
        r.busy_pe_cycles += macs;
        r.head_instances += static_cast<std::size_t>(w.heads);
    }
    r.available_pe_cycles = static_cast<double>(a.rows * a.cols) * r.cycles;
    return r;
}

}  // namespace detail

/// The cost of one attention call (see the file documentation for the model).
/// @param arch The architecture (validated here).
/// @param w    The call (validated here).
/// @return The call's cost report (`calls` = 1).
/// @throws deq::invalid_argument for a bad architecture, a predictor wider than the architecture's
///         `low_bits`, or (sanger_reference) a length that is not a multiple of `window` or a sequence
///         with no kept valid entry; deq::shape_error for masks or padding that do not fit.
inline cost_report evaluate(architecture const& arch, attention_workload const& w) {
    arch.validate();
    w.validate();
    if (w.predictor_bits > arch.low_bits) {
        ::deq::detail::throw_invalid_argument("predictor_config.bits", w.predictor_bits,
                                              ::deq::detail::concat("exceeds the datapath's low_bits = ", arch.low_bits));
    }
    cost_report r;
    if (arch.kind == design::sanger_reference) {
        r = detail::evaluate_reference(arch, w);
    } else {
        bool const predictor = w.predictor_bits > 0;
        bool const sanger = arch.kind == design::sanger;
        std::vector<std::array<double, 3>> items;
        double compute = 0, prev_idle = 0, dram = 0;
        for (index_t b = 0; b < w.batch; ++b) {
            index_t m = 0;
            std::vector<std::uint64_t> const cols = detail::processed_columns(w, b, arch.skip_padding, m);
            for (index_t h = 0; h < w.heads; ++h) {
                detail::head_work const hw = detail::extract_head(w, b, h, arch.skip_padding, cols, m, sanger);
                dram += detail::head_dram_bytes(arch, hw.n, hw.m, w.dim, w.dv);
                ++r.head_instances;
                switch (arch.kind) {
                    case design::dense_systolic: compute += detail::dense_head(arch, hw, w.dim, w.dv, predictor, r); break;
                    case design::sanger: detail::sanger_head(arch, hw, w.dim, w.dv, predictor, items, r); break;
                    default: {
                        detail::deq_phases const p = detail::deq_head(arch, hw, w.dim, w.dv, predictor, r);
                        double exposed_predict = p.predict;
                        if (arch.kind == design::deq_v3) {
                            double const hidden = std::min(p.predict, prev_idle / static_cast<double>(arch.rows));
                            exposed_predict -= hidden;
                            prev_idle = static_cast<double>(arch.rows) * p.refine - p.refine_row_work;
                        }
                        compute += exposed_predict + p.refine + p.softmax + p.av;
                        break;
                    }
                }
            }
        }
        if (sanger) compute = detail::flow_shop(items);
        r.dram_bytes = dram;
        double const dram_cycles = dram / (arch.dram_bandwidth_gbs / arch.frequency_ghz);
        detail::add_stage(r, stage::memory, dram_cycles);
        r.cycles = std::max(compute, dram_cycles);
        double pes = static_cast<double>(arch.rows * arch.cols);
        if (sanger) {
            double const fusion = std::pow(static_cast<double>(arch.operand_bits) / static_cast<double>(arch.low_bits), 2.0);
            pes += static_cast<double>(arch.predictor_rows * arch.predictor_cols) / fusion;
        }
        r.available_pe_cycles = pes * r.cycles;
    }
    r.seconds = r.cycles / (arch.frequency_ghz * 1e9);
    r.calls = 1;
    detail::apply_energy(arch.energy, r);
    return r;
}

}  // namespace deq::accel
