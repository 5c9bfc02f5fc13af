// The whole attention stack (predictor, mask rules, static patterns, every attention mode) run
// through deq::exec::kokkos<Kokkos::DefaultHostExecutionSpace> gives bit-identical results to
// deq::exec::serial: one kernel definition, dispatched through the execution-space argument.
#include <doctest/doctest.h>

#include <Kokkos_Core.hpp>

#include <cstdint>

#include <deq/attention/pipelines.hpp>
#include <deq/exec/kokkos.hpp>
#include <deq/exec/serial.hpp>
#include <deq/mask/mask_rule.hpp>
#include <deq/mask/static_pattern.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include "support/test_util.hpp"

namespace {

struct inputs {
    deq::tensor<float, 4> q{{2, 3, 40, 16}}, k{{2, 3, 40, 16}}, v{{2, 3, 40, 16}};
    deq::tensor<std::uint8_t, 2> valid{{2, 40}, 1};
    inputs() {
        deq_test::fill_normal(q, 11, 0.0, 1.5);
        deq_test::fill_normal(k, 12, 0.0, 1.5);
        deq_test::fill_normal(v, 13);
        for (deq::index_t j = 29; j < 40; ++j) valid(1, j) = 0;
    }
    deq::key_padding padding() const { return {valid.cview()}; }
};

template <class Space>
void check_same(Space const& space) {
    inputs in;
    deq::exec::serial const serial;
    auto const cfg = deq::calibrate_predictor<float>(in.q.cview(), in.k.cview(), 4);

    auto const scores_serial = deq::predict_scores(serial, in.q.cview(), in.k.cview(), cfg);
    auto const scores_kokkos = deq::predict_scores(space, in.q.cview(), in.k.cview(), cfg);
    CHECK(scores_serial.storage() == scores_kokkos.storage());

    for (char const* spec : {"sanger:0.02", "adamax_nb80", "adamax_ns80", "adamax_h50", "topk:5", "cumprob:0.9"}) {
        CAPTURE(spec);
        auto const rule = deq::parse_mask_rule(spec);
        auto const a = deq::select_elements(serial, scores_serial.cview(), in.padding(), rule);
        auto const b = deq::select_elements(space, scores_serial.cview(), in.padding(), rule);
        CHECK(a == b);
    }

    deq::tensor<float, 4> out_serial(in.q), out_kokkos(in.q);
    auto const s1 = deq::sanger_attention(serial, in.q.cview(), in.k.cview(), in.v.cview(), out_serial.view(), cfg, 0.02,
                                          in.padding());
    auto const s2 = deq::sanger_attention(space, in.q.cview(), in.k.cview(), in.v.cview(), out_kokkos.view(), cfg, 0.02,
                                          in.padding());
    CHECK(out_serial.storage() == out_kokkos.storage());
    CHECK(s1.density == s2.density);
    CHECK(s1.empty_rows == s2.empty_rows);
    CHECK(s1.density < 1.0);

    auto const rule = deq::parse_mask_rule("adamax_nb80");
    auto const d1 = deq::deq_attention(serial, in.q.cview(), in.k.cview(), in.v.cview(), out_serial.view(), cfg, rule,
                                       in.padding());
    auto const d2 = deq::deq_attention(space, in.q.cview(), in.k.cview(), in.v.cview(), out_kokkos.view(), cfg, rule,
                                       in.padding());
    CHECK(out_serial.storage() == out_kokkos.storage());
    CHECK(d1.refinement_ratio == d2.refinement_ratio);
    CHECK(d1.refinement_ratio > 0.0);
    CHECK(d1.refinement_ratio < 1.0);

    auto const pattern = deq::make_static_mask(serial, deq::parse_static_pattern("longformer"), 40);
    CHECK(pattern == deq::make_static_mask(space, deq::parse_static_pattern("longformer"), 40));
    deq::static_sparse_attention(serial, in.q.cview(), in.k.cview(), in.v.cview(), out_serial.view(), pattern.view(),
                                 in.padding());
    deq::static_sparse_attention(space, in.q.cview(), in.k.cview(), in.v.cview(), out_kokkos.view(), pattern.view(),
                                 in.padding());
    CHECK(out_serial.storage() == out_kokkos.storage());

    deq::three_level_attention(serial, in.q.cview(), in.k.cview(), in.v.cview(), out_serial.view(), cfg,
                               deq::mask_rule::probability(0.002), rule, in.padding());
    deq::three_level_attention(space, in.q.cview(), in.k.cview(), in.v.cview(), out_kokkos.view(), cfg,
                               deq::mask_rule::probability(0.002), rule, in.padding());
    CHECK(out_serial.storage() == out_kokkos.storage());
}

}  // namespace

TEST_CASE("predictor, mask rules, static patterns and attention through Kokkos match the serial space") {
    check_same(deq::exec::kokkos<Kokkos::DefaultHostExecutionSpace>{Kokkos::DefaultHostExecutionSpace{}});
}
