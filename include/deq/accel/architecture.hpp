/// @file
/// @brief `deq::accel::architecture`: the configurable parameters of the modelled attention
/// accelerators (dense output-stationary systolic array, Sanger, DEQ v1 / v2 / v3, and the reference
/// Sanger cost model), with validation and the default configurations.
///
/// The designs and every assumption behind them are described in docs/accelerator.md.
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "datapath.hpp"
#include "energy.hpp"

namespace deq::accel {

/// The modelled accelerator designs.
enum class design {
    dense_systolic,   ///< Dense output-stationary systolic array (the baseline).
    sanger,           ///< Sanger: 4-bit dense predictor array + pack & split + score-stationary sparse array.
    deq_v1,           ///< DEQ v1: one multi-precision array (fused 4-bit PEs), rows in lock-step.
    deq_v2,           ///< DEQ v2: v1 with decoupled PE rows.
    deq_v3,           ///< DEQ v3: v2 with the next head's 4-bit pass overlapping the refinement.
    sanger_reference  ///< The reference cost model (bench_sanger.py / bench_sanger_v2.py).
};

/// Which formula the sanger_reference design evaluates (algorithm.md §1.5).
enum class reference_formula {
    bench_sanger,    ///< `bench_sanger.py`: throughput model.
    bench_sanger_v2  ///< `bench_sanger_v2.py`: tile/sub-row model.
};

/// Name of a design ("dense", "sanger", "deq_v1", "deq_v2", "deq_v3", "sanger_reference").
/// @param d The design.
/// @return Its name (a string literal), "invalid" outside the enumeration.
inline char const* to_string(design d) {
    switch (d) {
        case design::dense_systolic: return "dense";
        case design::sanger: return "sanger";
        case design::deq_v1: return "deq_v1";
        case design::deq_v2: return "deq_v2";
        case design::deq_v3: return "deq_v3";
        case design::sanger_reference: return "sanger_reference";
    }
    return "invalid";
}

/// Parses a design name (see to_string(design)).
/// @param name The name.
/// @return The design.
/// @throws deq::invalid_argument for an unknown name.
inline design parse_design(std::string_view name) {
    for (design d : {design::dense_systolic, design::sanger, design::deq_v1, design::deq_v2, design::deq_v3,
                     design::sanger_reference}) {
        if (name == to_string(d)) return d;
    }
    ::deq::detail::throw_invalid_name("design", name, "dense, sanger, deq_v1, deq_v2, deq_v3, sanger_reference");
}

/// Parameters of one accelerator. Defaults are Sanger's (64 x 16 PEs, 1 GHz, 16-bit operands,
/// 128 GB/s, algorithm.md §1.5 - §1.6); use the factories for each design's defaults.
struct architecture {
    /// The design.
    design kind = design::sanger;
    /// PE rows of the main array (one query row per PE row in the score-stationary designs).
    index_t rows = 64;
    /// PEs per row of the main array (Sanger's `pe_n`: the most non-zeros of a row per segment).
    index_t cols = 16;
    /// Clock frequency in GHz.
    double frequency_ghz = 1.0;
    /// DRAM bandwidth in GB/s (10^9 bytes per second).
    double dram_bandwidth_gbs = 128.0;
    /// Width of the high-precision operands q, k, v (and of the probabilities on the SpMM path).
    int operand_bits = 16;
    /// Width of the low-precision operands (the predictor's levels; the DEQ array's sub-multipliers).
    int low_bits = 4;
    /// Width of the predictor's integer accumulators (must hold qmax² · d).
    int predictor_accumulator_bits = 16;
    /// Rows of Sanger's dense low-bit predictor array.
    index_t predictor_rows = 64;
    /// Columns of Sanger's dense low-bit predictor array.
    index_t predictor_cols = 64;
    /// Sanger's input ports per segment window (columns per window of the pack & split format).
    index_t window = 64;
    /// Exp units (exp evaluations per cycle) of the softmax path outside the PEs (one per PE row).
    index_t exp_units = 64;
    /// Cycles of the in-PE exp step of a Sanger segment (between its SDDMM and SpMM phases).
    index_t exp_latency = 1;
    /// DEQ: 4-bit passes per head (2: one for the maxima the adaptive rule needs, one that produces Ŝ
    /// for selection and for the unrefined scores; 1 if Ŝ could be buffered).
    index_t predict_passes = 2;
    /// Process only real tokens (rows and columns of padded tokens are skipped); false computes the padded
    /// length like the reference cost model's seq_len.
    bool skip_padding = true;
    /// Sanger: all-zero segments (windows without a kept entry) cost no sparse-array cycles.
    bool skip_empty_segments = true;
    /// sanger_reference: which formula.
    reference_formula formula = reference_formula::bench_sanger;
    /// sanger_reference: the hidden size of the layer (BERT-base 768).
    index_t reference_hidden = 768;
    /// sanger_reference: use the `no_skip` load-balance variant (default: the skip variant).
    bool reference_no_skip = false;
    /// Per-operation energies.
    energy_table energy{};
    /// Fixed-point formats and the arithmetic of the written outputs.
    datapath_numerics numerics{};

    /// Low-precision multiply-accumulates one fused PE performs per cycle: `(operand_bits / low_bits)²`.
    /// @return The fusion factor (16 for 16-bit operands and 4-bit sub-multipliers).
    index_t fusion() const {
        index_t const f = operand_bits / low_bits;
        return f * f;
    }

    /// The largest value of every integer hardware parameter (PE rows and columns, window, exponential
    /// units and latency, hidden size): 2^20, so that the cost model's products of a parameter with the
    /// workload's extents stay exact in index_t.
    static constexpr index_t max_parameter = index_t{1} << 20;

    /// Checks every parameter; throws deq::invalid_argument naming the parameter and its value.
    void validate() const {
        if (to_string(kind) == std::string_view("invalid")) {
            ::deq::detail::throw_invalid_argument("architecture.kind", static_cast<int>(kind), "is not a design");
        }
        require_count("architecture.rows", rows, 1, "PE rows");
        require_count("architecture.cols", cols, 1, "PEs per row");
        if (!(std::isfinite(frequency_ghz) && frequency_ghz > 0)) {
            ::deq::detail::throw_invalid_argument("architecture.frequency_ghz", frequency_ghz, "must be finite and > 0");
        }
        if (!(std::isfinite(dram_bandwidth_gbs) && dram_bandwidth_gbs > 0)) {
            ::deq::detail::throw_invalid_argument("architecture.dram_bandwidth_gbs", dram_bandwidth_gbs, "must be finite and > 0");
        }
        if (operand_bits < 2 || operand_bits > 32) {
            ::deq::detail::throw_invalid_argument("architecture.operand_bits", operand_bits, "must be in [2, 32]");
        }
        if (low_bits < 2 || low_bits > operand_bits) {
            ::deq::detail::throw_invalid_argument("architecture.low_bits", low_bits,
                                           ::deq::detail::concat("must be in [2, operand_bits = ", operand_bits, "]"));
        }
        bool const fused = kind == design::deq_v1 || kind == design::deq_v2 || kind == design::deq_v3;
        if (fused && operand_bits % low_bits != 0) {
            ::deq::detail::throw_invalid_argument("architecture.low_bits", low_bits,
                                           ::deq::detail::concat("must divide operand_bits = ", operand_bits,
                                                          ": the multi-precision PE fuses low_bits sub-multipliers"));
        }
        if (predictor_accumulator_bits < 2 * low_bits || predictor_accumulator_bits > 64) {
            ::deq::detail::throw_invalid_argument("architecture.predictor_accumulator_bits", predictor_accumulator_bits,
                                           ::deq::detail::concat("must be in [2 * low_bits = ", 2 * low_bits,
                                                          ", 64] (it must at least hold one product)"));
        }
        require_count("architecture.predictor_rows", predictor_rows, 1, "predictor PE rows");
        require_count("architecture.predictor_cols", predictor_cols, 1, "predictor PE columns");
        require_count("architecture.window", window, 1, "columns per window");
        require_count("architecture.exp_units", exp_units, 1, "exponential units");
        require_count("architecture.exp_latency", exp_latency, 0, "cycles");
        if (predict_passes < 1 || predict_passes > 2) {
            ::deq::detail::throw_invalid_argument("architecture.predict_passes", predict_passes, "must be 1 or 2");
        }
        require_count("architecture.reference_hidden", reference_hidden, 1, "hidden size");
        if (formula != reference_formula::bench_sanger && formula != reference_formula::bench_sanger_v2) {
            ::deq::detail::throw_invalid_argument("architecture.formula", static_cast<int>(formula), "is not a reference_formula");
        }
        energy.validate();
        numerics.validate(operand_bits);
    }

private:
    static void require_count(char const* name, index_t value, index_t lo, char const* what) {
        if (value < lo || value > max_parameter) {
            ::deq::detail::throw_invalid_argument(name, value, ::deq::detail::concat("must be in [", lo, ", 2^20] (", what, ")"));
        }
    }

public:

    /// The dense output-stationary baseline: 64 x 16 16-bit PEs (Sanger's MAC count), 1 GHz, 128 GB/s.
    /// @return The configuration.
    static architecture dense() {
        architecture a;
        a.kind = design::dense_systolic;
        return a;
    }
    /// Sanger: 64 x 16 PEs, pe_n = 16, 64-port windows, a 64 x 64 4-bit predictor array, 1 GHz, 128 GB/s.
    /// @return The configuration.
    static architecture sanger() { return architecture{}; }
    /// DEQ version @p version (1, 2 or 3): one 64 x 16 array of 16-bit PEs built from 4 x 4 4-bit
    /// sub-multipliers, 1 GHz, 128 GB/s.
    /// @param version 1, 2 or 3.
    /// @return The configuration.
    /// @throws deq::invalid_argument for another version.
    static architecture deq(int version) {
        architecture a;
        if (version == 1) a.kind = design::deq_v1;
        else if (version == 2) a.kind = design::deq_v2;
        else if (version == 3) a.kind = design::deq_v3;
        else ::deq::detail::throw_invalid_argument("version", version, "must be 1, 2 or 3");
        return a;
    }
    /// The reference Sanger cost model (algorithm.md §1.5).
    /// @param f Which formula.
    /// @return The configuration.
    static architecture reference(reference_formula f = reference_formula::bench_sanger) {
        architecture a;
        a.kind = design::sanger_reference;
        a.formula = f;
        a.skip_padding = false;
        return a;
    }
    /// The default configuration of a design.
    /// @param d The design.
    /// @return dense(), sanger(), deq(1..3) or reference().
    static architecture of(design d) {
        switch (d) {
            case design::dense_systolic: return dense();
            case design::sanger: return sanger();
            case design::deq_v1: return deq(1);
            case design::deq_v2: return deq(2);
            case design::deq_v3: return deq(3);
            case design::sanger_reference: return reference();
        }
        ::deq::detail::throw_invalid_argument("design", static_cast<int>(d), "is not a design");
    }
};

}  // namespace deq::accel
