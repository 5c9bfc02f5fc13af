/// @file
/// @brief `deq::accel::energy_table`: the per-operation energies the accelerator model charges.
///
/// Defaults are derived from M. Horowitz, "Computing's energy problem (and what we can do about it)",
/// ISSCC 2014 (45 nm, 0.9 V): 8-bit integer add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit multiply 0.2 pJ,
/// 32-bit multiply 3.1 pJ, 16-bit FP multiply 1.1 pJ, a 64-bit read of a 32 KB SRAM 20 pJ, a 64-bit DRAM
/// access 1.3 - 2.6 nJ. The derivation (multiplier energy scaled with the square of the width from the
/// 8-bit figure, accumulator adds interpolated) is in docs/accelerator.md; every entry is configurable.
#pragma once

#include <cmath>

#include "../core/error.hpp"

namespace deq::accel {

/// Energy of each operation the model counts, in picojoules.
struct energy_table {
    /// One high-precision (16-bit operand) multiply-accumulate: 16-bit multiply ≈ 0.2·(16/8)² = 0.8 pJ
    /// plus a 32-bit accumulate 0.1 pJ.
    double mac_high_pj = 0.9;
    /// One low-precision (4-bit operand) multiply-accumulate: 4-bit multiply ≈ 0.2·(4/8)² = 0.05 pJ plus
    /// a 16-bit accumulate ≈ 0.05 pJ.
    double mac_low_pj = 0.1;
    /// One exponential of the exp unit (shift-add log2(e), 64-entry LUT, shift): taken as one 16-bit FP
    /// multiply, 1.1 pJ (an assumption; the unit has no published energy).
    double exp_pj = 1.1;
    /// One mask comparison (threshold compare or pack-unit bit), an 8-bit add, 0.03 pJ.
    double compare_pj = 0.03;
    /// One byte read or written in on-chip SRAM: 20 pJ per 64-bit access of a 32 KB array = 2.5 pJ/B.
    double sram_pj_per_byte = 2.5;
    /// One byte moved to or from DRAM: 2.0 nJ per 64-bit access (mid-range of 1.3 - 2.6 nJ) = 250 pJ/B.
    double dram_pj_per_byte = 250.0;

    /// Checks that every entry is finite and >= 0; throws deq::invalid_argument naming the field.
    void validate() const {
        check("energy.mac_high_pj", mac_high_pj);
        check("energy.mac_low_pj", mac_low_pj);
        check("energy.exp_pj", exp_pj);
        check("energy.compare_pj", compare_pj);
        check("energy.sram_pj_per_byte", sram_pj_per_byte);
        check("energy.dram_pj_per_byte", dram_pj_per_byte);
    }

private:
    static void check(char const* name, double value) {
        if (!(std::isfinite(value) && value >= 0)) ::deq::detail::throw_invalid_argument(name, value, "must be finite and >= 0");
    }
};

}  // namespace deq::accel
