// The accelerator cost model: hand-checked small cases for every design, the reference Sanger cost
// model's test vectors, invariants as property tests, and configuration errors.
#include <doctest/doctest.h>

#include <deq/accel/architecture.hpp>
#include <deq/accel/cost_model.hpp>
#include <deq/accel/reference_model.hpp>
#include <deq/core/error.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "accel_test_util.hpp"
#include "support/test_util.hpp"

namespace {

using deq::index_t;
using deq::accel::architecture;
using deq::accel::design;
using deq::accel::evaluate;
using deq::accel::stage;
using namespace accel_test;

}  // namespace

// ------------------------------------------------------------------------------------ hand-checked

TEST_CASE("dense 4x4 array, L = 4, d = dv = 4: QK^T 4 + 6 skew, softmax 16 / 4, PV 4 + 6") {
    auto const a = tiny(design::dense_systolic);
    auto const r = evaluate(a, workload(1, 1, 4, 4, 4, {}, {}, 0));
    CHECK(r.cycles_of(stage::score) == 10);
    CHECK(r.cycles_of(stage::softmax) == 4);
    CHECK(r.cycles_of(stage::av) == 10);
    CHECK(r.cycles == 24);
    CHECK(r.macs_high == 128);
    CHECK(r.exps == 16);
    CHECK(r.dram_bytes == 128);                    // (4·4 q + 4·4 k + 4·4 v + 4·4 out) · 2 B
    CHECK(r.cycles_of(stage::memory) == 1);        // 128 B at 128 B/cycle
    CHECK(r.utilization() == doctest::Approx(128.0 / (16.0 * 24.0)));
    CHECK(r.seconds == doctest::Approx(24e-9));
    // A 4-bit predictor on the dense array: a full-width GEMM (10) plus 16 exp/compares on 4 units (4).
    auto const p = evaluate(a, workload(1, 1, 4, 4, 4, {}, {}, 4));
    CHECK(p.cycles_of(stage::predict) == 10);
    CHECK(p.cycles_of(stage::mask) == 4);
    CHECK(p.cycles == 38);
}

TEST_CASE("sanger 4x4: one pack & split segment costs d + exp + dv + pe_n cycles, pipelined behind pack") {
    auto const a = tiny(design::sanger);
    auto const kept = mask_from({"1100", "0110", "0011", "1001"});
    auto const r = evaluate(a, workload(1, 1, 4, 4, 4, kept.view(), {}, 0));
    CHECK(r.cycles_of(stage::mask) == 4);                         // pack: one column per cycle
    CHECK(r.cycles_of(stage::score) == 4);                        // one segment: SDDMM over d
    CHECK(r.cycles_of(stage::softmax) == 1);                      // in-PE exp
    CHECK(r.cycles_of(stage::av) == 8);                           // SpMM over dv + pe_n skew
    CHECK(r.cycles == 17);                                        // pack (4) then the segment (13)
    CHECK(r.macs_high == 8 * 8);                                  // 8 kept entries × (d + dv)
    // With the 4-bit predictor (4x4 array: 4 + 6 cycles) in front.
    auto const p = evaluate(a, workload(1, 1, 4, 4, 4, kept.view(), {}, 4));
    CHECK(p.cycles_of(stage::predict) == 10);
    CHECK(p.cycles == 27);
    CHECK(p.macs_low == 64);
    // Two row blocks of 4: the flow shop overlaps block 1's prediction with block 0's pack & sparse stage.
    auto const kept8 = mask_from({"11000000", "01100000", "00110000", "10010000", "00001100", "00000110", "00000011",
                                  "00001001"});
    auto a8 = a;
    auto const r8 = evaluate(a8, workload(1, 1, 8, 4, 4, kept8.view(), {}, 4));
    // predict 4 tiles of max(4,4) + 6 = 14 per block; pack 8; one non-empty segment per block (13).
    CHECK(r8.cycles_of(stage::predict) == 28);
    CHECK(r8.cycles == 14 + 14 + 8 + 13);
    // An empty window costs nothing; a full row with pe_n = 2 splits a 4-column window into 2 segments.
    auto a2 = a;
    a2.cols = 2;
    auto const full = mask_from({"1111", "0000", "0000", "0000"});
    auto const r2 = evaluate(a2, workload(1, 1, 4, 4, 4, full.view(), {}, 0));
    CHECK(r2.cycles_of(stage::score) == 2 * 4);
    CHECK(r2.cycles == 4 + 2 * (4 + 1 + 4 + 2));
}

TEST_CASE("DEQ 4x4, L = 8: fused 4-bit passes, lock-step (v1) vs decoupled rows (v2) vs overlap (v3)") {
    // Row 0 refines keys 0..3, row 5 refines keys 4..7: one pass of d = 4 cycles each.
    auto const refined = mask_from({"11110000", "00000000", "00000000", "00000000", "00000000", "00001111", "00000000",
                                    "00000000"});
    deq::bit_mask refined2(1, 2, 8, 8);
    for (index_t h = 0; h < 2; ++h)
        for (index_t i = 0; i < 8; ++i)
            for (index_t j = 0; j < 8; ++j)
                if (refined.test(0, 0, i, j)) refined2.set(0, h, i, j);
    auto const v1 = evaluate(tiny(design::deq_v1), workload(1, 1, 8, 4, 4, {}, refined.view(), 4));
    auto const v2 = evaluate(tiny(design::deq_v2), workload(1, 1, 8, 4, 4, {}, refined.view(), 4));
    // 4-bit pass: 2·2 tiles of max(ceil(4/16), 4) = 4 cycles + 6 skew = 22, two passes.
    CHECK(v1.cycles_of(stage::predict) == 44);
    CHECK(v1.cycles_of(stage::refine) == 8);   // blocks {0..3} and {4..7} each wait for their longest row
    CHECK(v2.cycles_of(stage::refine) == 4);   // PE row 0 runs rows 0, 4; PE row 1 runs rows 1, 5
    CHECK(v1.cycles_of(stage::softmax) == 16);
    CHECK(v1.cycles_of(stage::av) == 22);      // 2 tiles of max(8, 4) + 6
    CHECK(v1.cycles == 90);
    CHECK(v2.cycles == 86);
    CHECK(v1.macs_high == 8 * 4 + 64 * 4);     // refined scores + dense PV
    CHECK(v1.macs_low == 2 * 64 * 4);
    // Two heads: v3 hides part of head 1's 4-bit passes in the 4·4 − 8 = 8 idle PE-row cycles of head 0's
    // refinement, i.e. 8 / 4 = 2 array cycles.
    auto const v2h = evaluate(tiny(design::deq_v2), workload(1, 2, 8, 4, 4, {}, refined2.view(), 4));
    auto const v3h = evaluate(tiny(design::deq_v3), workload(1, 2, 8, 4, 4, {}, refined2.view(), 4));
    CHECK(v2h.cycles == 172);
    CHECK(v3h.cycles == 170);
}

TEST_CASE("padding: only real tokens are processed by default; skip_padding = false computes the padded length") {
    deq::tensor<std::uint8_t, 2> valid({1, 8}, 0);
    for (index_t j = 0; j < 4; ++j) valid(0, j) = 1;
    auto w = workload(1, 1, 8, 4, 4, {}, {}, 0);
    w.padding = deq::key_padding{valid.cview()};
    auto a = tiny(design::dense_systolic);
    CHECK(evaluate(a, w).cycles == 24);   // the 4-token case above
    a.skip_padding = false;
    CHECK(evaluate(a, w).cycles > 24);
}

// ------------------------------------------------------------------------------------ reference model

TEST_CASE("the reference Sanger cost model reproduces bench_sanger.py / bench_sanger_v2.py (algorithm.md §1.5)") {
    struct vec {
        double density, lb, L, v1_ms, v2_ms;
    };
    vec const vectors[] = {{0.1, 0.8, 512, 0.9708, 0.9585},
                           {0.2, 0.7, 512, 1.0813, 1.0773},
                           {0.27, 0.75, 128, 0.2566, 0.2539},
                           {1.0, 1.0, 512, 1.5729, 1.9333}};
    architecture const a = architecture::reference();
    for (auto const& t : vectors) {
        CAPTURE(t.density);
        CAPTURE(t.L);
        double const v1 = deq::accel::bench_sanger_latency(a, t.density, t.lb, t.L).total * 1e3;
        double const v2 = deq::accel::bench_sanger_v2_latency(a, t.density, t.lb, t.L).total * 1e3;
        CHECK(std::fabs(v1 - t.v1_ms) / t.v1_ms < 0.01);
        CHECK(std::fabs(v2 - t.v2_ms) / t.v2_ms < 0.01);
        CHECK(v1 == doctest::Approx(t.v1_ms).epsilon(1e-4));   // in fact to the 4 printed digits
        CHECK(v2 == doctest::Approx(t.v2_ms).epsilon(1e-4));
    }
}

TEST_CASE("the reference mode measures density and load balance on the call's mask") {
    // 64 x 64, every row keeps 16 keys in its 64-port vector: density 0.25, one full segment per row (lb 1).
    deq::bit_mask kept(1, 1, 64, 64);
    for (index_t i = 0; i < 64; ++i)
        for (index_t j = 0; j < 16; ++j) kept.set(0, 0, i, (i + j * 4) % 64);
    for (auto f : {deq::accel::reference_formula::bench_sanger, deq::accel::reference_formula::bench_sanger_v2}) {
        architecture const a = architecture::reference(f);
        auto const r = evaluate(a, workload(1, 1, 64, 64, 64, kept.view(), {}, 0));
        double const expected = deq::accel::reference_layer_latency(a, 0.25, 1.0, 64).total;
        CHECK(r.seconds == doctest::Approx(expected).epsilon(1e-12));
        CHECK(r.cycles == doctest::Approx(expected * 1e9));
    }
    // A length that is not a multiple of the 64 ports is rejected (the reference metric needs it).
    deq::bit_mask odd(1, 1, 10, 10, true);
    CHECK(deq_test::message_of<deq::invalid_argument>([&] {
              evaluate(architecture::reference(), workload(1, 1, 10, 4, 4, odd.view(), {}, 0));
          }).find("num_ports") != std::string::npos);
}

// ------------------------------------------------------------------------------------ properties

TEST_CASE("properties: cycles >= work / PEs, utilization <= 1, v2 <= v1, v3 <= v2, sparser never slower") {
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        index_t const L = 8 + static_cast<index_t>(seed * 7 % 41);
        index_t const d = seed % 2 == 0 ? 8 : 5, H = 1 + static_cast<index_t>(seed % 3);
        double const p = 0.05 + 0.07 * static_cast<double>(seed % 6);
        auto const m = random_mask(1, H, L, L, p, seed);
        auto const sparser = thin(m, 0.4, seed + 100);
        CAPTURE(seed);
        CAPTURE(L);
        for (int pred : {0, 4}) {
            for (design dz : {design::dense_systolic, design::sanger, design::deq_v1, design::deq_v2, design::deq_v3}) {
                CAPTURE(deq::accel::to_string(dz));
                auto const a = tiny(dz);
                bool const is_deq = dz == design::deq_v1 || dz == design::deq_v2 || dz == design::deq_v3;
                auto const w = is_deq ? workload(1, H, L, d, d, {}, m.view(), pred) : workload(1, H, L, d, d, m.view(), {}, pred);
                auto const ws = is_deq ? workload(1, H, L, d, d, {}, sparser.view(), pred)
                                       : workload(1, H, L, d, d, sparser.view(), {}, pred);
                auto const r = evaluate(a, w);
                auto const rs = evaluate(a, ws);
                double const pes = static_cast<double>(a.rows * a.cols);
                double const low_rate = dz == design::sanger ? static_cast<double>(a.predictor_rows * a.predictor_cols)
                                                             : (is_deq ? pes * static_cast<double>(a.fusion()) : pes);
                CHECK(r.cycles >= r.macs_high / pes);
                CHECK(r.cycles >= r.macs_low / low_rate);
                CHECK(r.utilization() <= 1.0 + 1e-12);
                CHECK(r.utilization() > 0.0);
                if (dz != design::dense_systolic) CHECK(rs.cycles <= r.cycles);
                if (dz == design::dense_systolic) CHECK(rs.cycles == r.cycles);
                CHECK(r.energy_total_pj() > 0);
            }
            auto const w = workload(1, H, L, d, d, {}, m.view(), pred);
            double const c1 = evaluate(tiny(design::deq_v1), w).cycles;
            double const c2 = evaluate(tiny(design::deq_v2), w).cycles;
            double const c3 = evaluate(tiny(design::deq_v3), w).cycles;
            CHECK(c2 <= c1);
            CHECK(c3 <= c2);
        }
    }
}

TEST_CASE("energy is the operation counts times the table") {
    auto a = tiny(design::dense_systolic);
    a.energy.mac_high_pj = 2;
    a.energy.exp_pj = 3;
    a.energy.sram_pj_per_byte = 0;
    a.energy.dram_pj_per_byte = 1;
    auto const r = evaluate(a, workload(1, 1, 4, 4, 4, {}, {}, 0));
    CHECK(r.energy_total_pj() == doctest::Approx(128 * 2 + 16 * 3 + 128 * 1));
}

// ------------------------------------------------------------------------------------ errors

TEST_CASE("impossible configurations throw deq::invalid_argument naming the parameter") {
    auto msg = [](architecture a) { return deq_test::message_of<deq::invalid_argument>([&] { a.validate(); }); };
    architecture a = architecture::sanger();
    a.rows = 0;
    CHECK(msg(a).find("architecture.rows") != std::string::npos);
    a = architecture::dense();
    a.cols = 0;
    CHECK(msg(a).find("architecture.cols") != std::string::npos);
    a = architecture::sanger();
    a.dram_bandwidth_gbs = 0;
    CHECK(msg(a).find("dram_bandwidth_gbs") != std::string::npos);
    a.dram_bandwidth_gbs = -5;
    CHECK(msg(a).find("dram_bandwidth_gbs") != std::string::npos);
    a = architecture::sanger();
    a.frequency_ghz = std::nan("");
    CHECK(msg(a).find("frequency_ghz") != std::string::npos);
    a = architecture::deq(2);
    a.low_bits = 6;   // 16-bit PEs cannot be fused from 6-bit multipliers
    CHECK(msg(a).find("low_bits") != std::string::npos);
    a = architecture::sanger();
    a.low_bits = 20;  // wider than the 16-bit datapath
    CHECK(msg(a).find("low_bits") != std::string::npos);
    a = architecture::sanger();
    a.numerics.operand_frac_bits = 16;
    CHECK(msg(a).find("operand_frac_bits") != std::string::npos);
    a = architecture::sanger();
    a.energy.dram_pj_per_byte = -1;
    CHECK(msg(a).find("energy.dram_pj_per_byte") != std::string::npos);
    CHECK(deq_test::message_of<deq::invalid_argument>([] { architecture::deq(4); }).find("version") != std::string::npos);
    CHECK(deq_test::message_of<deq::invalid_argument>([] { deq::accel::parse_design("tpu"); }).find("design") !=
          std::string::npos);
    CHECK(deq::accel::parse_design("deq_v3") == design::deq_v3);
    // A predictor wider than the datapath's low-bit width.
    CHECK(deq_test::message_of<deq::invalid_argument>([] {
              evaluate(architecture::sanger(), workload(1, 1, 4, 4, 4, {}, {}, 8));
          }).find("predictor_config.bits") != std::string::npos);
    // Reference formulas reject out-of-range inputs.
    CHECK_THROWS_AS(deq::accel::bench_sanger_latency(architecture::reference(), 0.0, 0.8, 512), deq::invalid_argument);
}

TEST_CASE("masks whose shape does not match the call are rejected, naming the mask") {
    deq::bit_mask m(1, 1, 4, 5);
    auto const w = workload(1, 1, 4, 4, 4, m.view(), {}, 0);
    CHECK(deq_test::message_of<deq::shape_error>([&] { evaluate(architecture::sanger(), w); }).find("'kept'") !=
          std::string::npos);
    deq::bit_mask r(2, 3, 4, 4);
    auto const w2 = workload(1, 1, 4, 4, 4, {}, r.view(), 0);
    CHECK(deq_test::message_of<deq::shape_error>([&] { evaluate(architecture::deq(1), w2); }).find("'refined'") !=
          std::string::npos);
}

TEST_CASE("extents and hardware parameters whose products overflow are rejected before the cost model runs") {
    // Hardware parameters are bounded (2^20), so their products with the workload's extents fit.
    architecture a = architecture::sanger();
    a.rows = index_t{1} << 40;
    CHECK(deq_test::message_of<deq::invalid_argument>([&] { a.validate(); }).find("architecture.rows") != std::string::npos);
    a = architecture::deq(3);
    a.exp_latency = index_t{1} << 62;
    CHECK(deq_test::message_of<deq::invalid_argument>([&] { a.validate(); }).find("architecture.exp_latency") != std::string::npos);
    a = architecture::dense();
    a.window = std::numeric_limits<index_t>::max();
    CHECK_THROWS_AS(a.validate(), deq::invalid_argument);
    // Workload extents whose score matrix (or an operand) does not fit index_t.
    index_t const big = index_t{1} << 32;
    auto const scores = deq_test::message_of<deq::shape_error>([&] { evaluate(architecture::sanger(), workload(1, 1, big, 4, 4, {}, {}, 0)); });
    CHECK(scores.find("size overflow") != std::string::npos);
    CHECK(scores.find("[batch, heads, lq, lk]") != std::string::npos);
    CHECK_THROWS_AS(evaluate(architecture::dense(), workload(big, big, 1, 4, 4, {}, {}, 0)), deq::shape_error);
    CHECK(deq_test::message_of<deq::shape_error>([&] { evaluate(architecture::dense(), workload(1, 1, 4, index_t{1} << 30, 4, {}, {}, 0)); })
              .find("head dimensions") != std::string::npos);
}
