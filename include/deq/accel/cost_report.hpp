/// @file
/// @brief `deq::accel::cost_report`: what the accelerator model reports for one or more attention
/// calls (busy cycles per stage, total cycles, operations, PE utilization, SRAM / DRAM bytes, energy).
#pragma once

#include <array>
#include <cstddef>

namespace deq::accel {

/// The stages the model accounts for.
enum class stage {
    predict,     ///< Low-bit score prediction (Sanger's predictor array; DEQ's 4-bit passes).
    mask,        ///< Mask generation and Sanger's pack & split.
    score,       ///< High-precision scores (dense QKᵀ, Sanger's SDDMM).
    softmax,     ///< Exponentials and row sums.
    av,          ///< P·V (dense GEMM or Sanger's SpMM).
    refine,      ///< DEQ's high-precision recomputation of the refined scores.
    memory,      ///< DRAM transfers (overlapped with compute; the excess stalls).
    projection   ///< Linear projections (sanger_reference only, as the reference formulas count them).
};

/// Number of stages.
inline constexpr std::size_t stage_count = 8;

/// Name of a stage.
/// @param s The stage.
/// @return "predict", "mask", "score", "softmax", "av", "refine", "memory" or "projection".
inline char const* to_string(stage s) {
    switch (s) {
        case stage::predict: return "predict";
        case stage::mask: return "mask";
        case stage::score: return "score";
        case stage::softmax: return "softmax";
        case stage::av: return "av";
        case stage::refine: return "refine";
        case stage::memory: return "memory";
        case stage::projection: return "projection";
    }
    return "invalid";
}

/// Energy components of a report.
enum class energy_part { mac_high, mac_low, exp, compare, sram, dram };

/// Number of energy components.
inline constexpr std::size_t energy_part_count = 6;

/// Name of an energy component.
/// @param p The component.
/// @return "mac_high", "mac_low", "exp", "compare", "sram" or "dram".
inline char const* to_string(energy_part p) {
    switch (p) {
        case energy_part::mac_high: return "mac_high";
        case energy_part::mac_low: return "mac_low";
        case energy_part::exp: return "exp";
        case energy_part::compare: return "compare";
        case energy_part::sram: return "sram";
        case energy_part::dram: return "dram";
    }
    return "invalid";
}

/// The cost of one or more attention calls on one architecture. Stages of a pipelined design
/// overlap, so the busy cycles of the stages may add up to more than `cycles`; `cycles` is the
/// critical path (including DRAM stalls).
struct cost_report {
    /// Busy cycles of each stage (index with `static_cast<std::size_t>(stage)`).
    std::array<double, stage_count> stage_cycles{};
    /// Total cycles (critical path).
    double cycles = 0;
    /// Seconds at the architecture's clock.
    double seconds = 0;
    /// High-precision multiply-accumulates.
    double macs_high = 0;
    /// Low-precision multiply-accumulates.
    double macs_low = 0;
    /// Exponentials.
    double exps = 0;
    /// Mask comparisons and pack-unit bit operations.
    double compares = 0;
    /// Useful PE-cycles in high-precision PE equivalents (a fused PE does `fusion()` low-bit MACs per cycle).
    double busy_pe_cycles = 0;
    /// Available PE-cycles: PEs (high-precision equivalents, all arrays) × cycles.
    double available_pe_cycles = 0;
    /// Bytes read and written in on-chip SRAM.
    double sram_bytes = 0;
    /// Bytes moved to and from DRAM.
    double dram_bytes = 0;
    /// Energy per component in pJ (index with `static_cast<std::size_t>(energy_part)`).
    std::array<double, energy_part_count> energy_pj{};
    /// Attention calls accumulated.
    std::size_t calls = 0;
    /// (sequence, head) instances accumulated.
    std::size_t head_instances = 0;

    /// Busy cycles of stage @p s.
    /// @param s The stage.
    /// @return The cycles.
    double cycles_of(stage s) const { return stage_cycles[static_cast<std::size_t>(s)]; }
    /// Total energy in pJ.
    /// @return The sum of the components.
    double energy_total_pj() const {
        double e = 0;
        for (double x : energy_pj) e += x;
        return e;
    }
    /// PE utilization: busy over available PE-cycles (0 when nothing ran); at most 1.
    /// @return The utilization.
    double utilization() const { return available_pe_cycles > 0 ? busy_pe_cycles / available_pe_cycles : 0.0; }

    /// Adds another report (of the same architecture).
    /// @param o The other report.
    /// @return `*this`.
    cost_report& operator+=(cost_report const& o) {
        for (std::size_t i = 0; i < stage_count; ++i) stage_cycles[i] += o.stage_cycles[i];
        for (std::size_t i = 0; i < energy_part_count; ++i) energy_pj[i] += o.energy_pj[i];
        cycles += o.cycles;
        seconds += o.seconds;
        macs_high += o.macs_high;
        macs_low += o.macs_low;
        exps += o.exps;
        compares += o.compares;
        busy_pe_cycles += o.busy_pe_cycles;
        available_pe_cycles += o.available_pe_cycles;
        sram_bytes += o.sram_bytes;
        dram_bytes += o.dram_bytes;
        calls += o.calls;
        head_instances += o.head_instances;
        return *this;
    }
};

}  // namespace deq::accel
