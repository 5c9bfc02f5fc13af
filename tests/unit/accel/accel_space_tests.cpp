// deq::exec::accelerator: the same pipeline calls as on deq::exec::serial, the same outputs and
// statistics, a cost report shared across copies; the predictor's integer datapath bit for bit; the
// fixed-point datapath within its documented error bound; the exp unit.
#include <doctest/doctest.h>

#include <deq/accel/datapath.hpp>
#include <deq/accel/predictor_array.hpp>
#include <deq/attention/attention.hpp>
#include <deq/attention/pipelines.hpp>
#include <deq/exec/accelerator.hpp>
#include <deq/exec/serial.hpp>
#include <deq/mask/mask_rule.hpp>
#include <deq/mask/static_pattern.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "accel_test_util.hpp"
#include "support/test_util.hpp"

namespace {

using deq::index_t;
using deq::accel::architecture;
using deq::accel::design;

struct problem {
    deq::tensor<float, 4> q, k, v;
    deq::tensor<std::uint8_t, 2> valid;
    problem(index_t B, index_t H, index_t L, index_t d, std::uint64_t seed)
        : q({B, H, L, d}), k({B, H, L, d}), v({B, H, L, d}), valid({B, L}, 1) {
        deq_test::fill_normal(q, seed, 0.0, 1.0);
        deq_test::fill_normal(k, seed + 1, 0.0, 1.0);
        deq_test::fill_normal(v, seed + 2, 0.0, 1.0);
        for (index_t b = 1; b < B; ++b)
            for (index_t j = L - 3 * b; j < L; ++j) valid(b, j) = 0;   // sequence b has 3·b padded tokens
    }
    deq::key_padding padding() const { return {valid.cview()}; }
};

bool same(deq::tensor<float, 4> const& a, deq::tensor<float, 4> const& b) {
    return a.storage().size() == b.storage().size() &&
           std::memcmp(a.data(), b.data(), a.storage().size() * sizeof(float)) == 0;
}

bool same_stats(deq::attention_stats const& a, deq::attention_stats const& b) {
    return a.valid_pairs == b.valid_pairs && a.kept_pairs == b.kept_pairs && a.refined_pairs == b.refined_pairs &&
           a.empty_rows == b.empty_rows && a.rows == b.rows && a.density == b.density &&
           a.refinement_ratio == b.refinement_ratio && a.exact_scores == b.exact_scores;
}

// Runs the five entry points on @p space; returns outputs and statistics.
template <class Space>
std::vector<std::pair<deq::tensor<float, 4>, deq::attention_stats>> run_all(Space const& space, problem const& p) {
    std::vector<std::pair<deq::tensor<float, 4>, deq::attention_stats>> res;
    auto const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
    index_t const L = p.q.extent(2);
    auto out = [&] { return deq::tensor<float, 4>({p.q.extent(0), p.q.extent(1), L, p.v.extent(3)}); };
    {
        auto o = out();
        deq::attention_options<float> opt;
        opt.padding = p.padding();
        auto st = deq::attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), opt);
        res.emplace_back(std::move(o), st);
    }
    {
        auto o = out();
        auto st = deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), cfg, 0.02, p.padding());
        res.emplace_back(std::move(o), st);
    }
    {
        auto o = out();
        auto st = deq::deq_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), cfg,
                                     deq::parse_mask_rule("adamax_nb80"), p.padding());
        res.emplace_back(std::move(o), st);
    }
    {
        auto o = out();
        auto st = deq::three_level_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), cfg,
                                             deq::mask_rule::probability(0.002), deq::parse_mask_rule("adamax_nb80"),
                                             p.padding());
        res.emplace_back(std::move(o), st);
    }
    {
        auto o = out();
        deq::bit_mask pattern(1, 1, L, L);
        for (index_t i = 0; i < L; ++i)
            for (index_t j = 0; j < L; ++j)
                if (std::abs(i - j) <= 2 || j == 0) pattern.set(0, 0, i, j);
        auto st = deq::static_sparse_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), pattern.view(),
                                               p.padding());
        res.emplace_back(std::move(o), st);
    }
    return res;
}

}  // namespace

TEST_CASE("the accelerator space is a host execution space") {
    static_assert(deq::exec::host_execution_space<deq::exec::accelerator>);
    CHECK(std::string(deq::exec::name_of<deq::exec::accelerator>()) == "accelerator");
}

TEST_CASE("every pipeline gives the serial space's outputs and statistics on every design, and is costed") {
    problem const p(2, 3, 20, 8, 11);
    auto const ref = run_all(deq::exec::serial{}, p);
    for (design d : {design::dense_systolic, design::sanger, design::deq_v1, design::deq_v2, design::deq_v3}) {
        CAPTURE(deq::accel::to_string(d));
        deq::exec::accelerator const space(architecture::of(d));
        auto const got = run_all(space, p);
        REQUIRE(got.size() == ref.size());
        for (std::size_t c = 0; c < got.size(); ++c) {
            CAPTURE(c);
            CHECK(same(got[c].first, ref[c].first));
            CHECK(same_stats(got[c].second, ref[c].second));
        }
        auto const r = space.report();
        CHECK(r.calls == 5);
        CHECK(r.head_instances == 5 * 2 * 3);
        CHECK(r.cycles > 0);
        CHECK(r.utilization() <= 1.0);
        CHECK(r.energy_total_pj() > 0);
        // The three predictor pipelines added the low-bit MACs of the predictor, the others did not.
        CHECK(r.macs_low > 0);
    }
}

TEST_CASE("the report is shared by copies of the space and cleared by reset()") {
    problem const p(1, 2, 16, 8, 5);
    deq::exec::accelerator const space(architecture::deq(3));
    deq::exec::accelerator const copy = space;
    deq::tensor<float, 4> o({1, 2, 16, 8});
    auto const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
    deq::deq_attention(copy, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), cfg, deq::parse_mask_rule("adamax_nb80"));
    auto const once = space.report();
    CHECK(once.calls == 1);
    CHECK(once.cycles > 0);
    CHECK(once.cycles_of(deq::accel::stage::predict) > 0);
    CHECK(once.cycles_of(deq::accel::stage::refine) > 0);
    deq::deq_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), cfg, deq::parse_mask_rule("adamax_nb80"));
    CHECK(copy.report().calls == 2);
    CHECK(copy.report().cycles == doctest::Approx(2 * once.cycles));
    copy.reset();
    CHECK(space.report().calls == 0);
    CHECK(space.report().cycles == 0);
}

TEST_CASE("the space rejects impossible configurations at construction") {
    architecture a = architecture::sanger();
    a.rows = 0;
    CHECK(deq_test::message_of<deq::invalid_argument>([&] { deq::exec::accelerator s(a); }).find("architecture.rows") !=
          std::string::npos);
    // A pipeline whose predictor is wider than the datapath's low bits.
    problem const p(1, 1, 8, 4, 3);
    deq::exec::accelerator const space(architecture::sanger());
    auto cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview(), 8);
    deq::tensor<float, 4> o({1, 1, 8, 4});
    CHECK(deq_test::message_of<deq::invalid_argument>([&] {
              deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view(), cfg, 0.02);
          }).find("predictor_config.bits") != std::string::npos);
}

// ------------------------------------------------------------------------------------ predictor datapath

TEST_CASE("systolic_matmul: a hand-checked 4x4 product in K + R + C - 2 cycles") {
    // A = [[1,2,3,4],[0,1,0,1],[-7,7,-7,7],[1,1,1,1]], B = identity rows and a ones row.
    std::vector<int> const a = {1, 2, 3, 4, 0, 1, 0, 1, -7, 7, -7, 7, 1, 1, 1, 1};
    std::vector<int> const b = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1};
    auto const r = deq::accel::systolic_matmul(a, b, 4, 4, 4, 4, 4, 4, 16);
    std::vector<std::int64_t> const expected = {1, 2, 3, 10, 0, 1, 0, 2, -7, 7, -7, 0, 1, 1, 1, 4};
    CHECK(r.out == expected);
    CHECK(r.cycles == 4 + 4 + 4 - 2);
    CHECK(r.macs == 64);
    // An 8-bit accumulator overflows on 16 products of 7·7.
    std::vector<int> const big(16 * 1, 7);
    CHECK_THROWS_AS(deq::accel::systolic_matmul(big, big, 1, 1, 16, 4, 4, 4, 8), deq::numeric_error);
    // Operands outside the 4-bit symmetric range are rejected.
    CHECK_THROWS_AS(deq::accel::systolic_matmul({8}, {1}, 1, 1, 1, 1, 1, 4, 16), deq::invalid_argument);
}

TEST_CASE("the predictor array's 4-bit products with integer accumulation equal deq::predict_scores bit for bit") {
    for (index_t d : {8, 32, 64}) {
        problem const p(2, 2, 13, d, 40 + static_cast<std::uint64_t>(d));
        auto const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
        auto const host = deq::predict_scores(deq::exec::serial{}, p.q.cview(), p.k.cview(), cfg);
        architecture a = architecture::sanger();
        a.predictor_rows = 4;   // several tiles
        a.predictor_cols = 8;
        auto const hw = deq::accel::predict_scores_on_array(a, p.q.cview(), p.k.cview(), cfg);
        CAPTURE(d);
        REQUIRE(hw.storage().size() == host.storage().size());
        CHECK(std::memcmp(hw.data(), host.data(), host.storage().size() * sizeof(float)) == 0);
    }
    // An accumulator that cannot hold 49 · 64 = 3136 (13 bits) is a configuration error.
    problem const p(1, 1, 4, 64, 9);
    auto const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
    architecture a = architecture::sanger();
    a.predictor_accumulator_bits = 12;
    CHECK(deq_test::message_of<deq::invalid_argument>([&] {
              deq::accel::predict_scores_on_array(a, p.q.cview(), p.k.cview(), cfg);
          }).find("predictor_accumulator_bits") != std::string::npos);
}

// ------------------------------------------------------------------------------------ exp unit

TEST_CASE("exp unit: exact mode rounds exp; Sanger's LUT mode is within 5 % for x in [-8, 0]") {
    int const point = 16;
    deq::accel::exp_unit const exact(point, deq::accel::exp_method::exact);
    deq::accel::exp_unit const lut(point, deq::accel::exp_method::sanger_lut, 6);
    CHECK(exact(0) == (std::int64_t{1} << point));
    CHECK(lut(0) == (std::int64_t{1} << point));
    CHECK(exact(-(std::int64_t{1} << point)) == deq::accel::to_fixed(std::exp(-1.0), point));
    double worst = 0;
    for (std::int64_t x = 0; x >= -(std::int64_t{8} << point); x -= 977) {
        double const e = std::exp(std::ldexp(static_cast<double>(x), -point));
        double const got = std::ldexp(static_cast<double>(lut(x)), -point);
        worst = std::fmax(worst, std::fabs(got - e) / e);
    }
    CHECK(worst < 0.05);
    CHECK(worst > 0.001);   // it is an approximation (log2 e ≈ 1.4375)
    CHECK_THROWS_AS(exact(1), deq::invalid_argument);
}

// ------------------------------------------------------------------------------------ fixed-point datapath

TEST_CASE("fixed-point datapath: outputs within the documented bound of the host float kernels") {
    problem const p(2, 2, 24, 16, 77);
    auto const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
    auto const host = run_all(deq::exec::serial{}, p);
    for (auto method : {deq::accel::exp_method::exact, deq::accel::exp_method::sanger_lut}) {
        architecture a = architecture::sanger();
        a.numerics.mode = deq::accel::numerics_mode::fixed_point;
        a.numerics.exp = method;
        deq::exec::accelerator const space(a);
        auto const got = run_all(space, p);
        // Bounds (docs/accelerator.md): exact exp 1e-3 · max|v|, Sanger's LUT exp 1e-2 · max|v| (measured here:
        // 3.0e-4 and 2.2e-3 · max|v|).
        double const vmax = deq_test::max_abs(p.v);
        double const bound = (method == deq::accel::exp_method::exact ? 1e-3 : 1e-2) * vmax;
        for (std::size_t c = 0; c < got.size(); ++c) {
            double err = 0;
            for (std::size_t x = 0; x < got[c].first.storage().size(); ++x)
                err = std::fmax(err, std::fabs(static_cast<double>(got[c].first.storage()[x]) - host[c].first.storage()[x]));
            CAPTURE(c);
            CAPTURE(static_cast<int>(method));
            CHECK(err <= bound);
            CHECK(same_stats(got[c].second, host[c].second));
        }
        (void)cfg;
    }
}

TEST_CASE("fixed-point datapath: values outside the formats are errors, not clamped") {
    problem p(1, 1, 6, 4, 8);
    p.q(0, 0, 2, 1) = 40.0f;   // Q5.10 in 16 bits holds [-32, 32)
    architecture a = architecture::dense();
    a.numerics.mode = deq::accel::numerics_mode::fixed_point;
    deq::exec::accelerator const space(a);
    deq::tensor<float, 4> o({1, 1, 6, 4});
    std::string const msg = deq_test::message_of<deq::numeric_error>(
        [&] { deq::attention(space, p.q.cview(), p.k.cview(), p.v.cview(), o.view()); });
    CHECK(msg.find("'q' at [0, 0, 2, 1]") != std::string::npos);
    a.numerics.accumulator_bits = 24;
    deq::exec::accelerator const narrow(a);
    p.q(0, 0, 2, 1) = 1.0f;
    CHECK(deq_test::message_of<deq::invalid_argument>([&] {
              deq::attention(narrow, p.q.cview(), p.k.cview(), p.v.cview(), o.view());
          }).find("numerics.accumulator_bits") != std::string::npos);
}
