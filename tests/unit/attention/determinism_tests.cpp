// Determinism: every pipeline's outputs, masks and statistics are bit-identical across repeated runs
// and across the host execution spaces (serial, threads with 1, 2 and 3 workers, the accelerator model),
// on shapes whose rows do not split evenly over the workers, with padding and fully pruned rows.
// No reduction may depend on how the work was scheduled.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <deq/attention/pipelines.hpp>
#include <deq/exec/accelerator.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/mask_rule.hpp>
#include <deq/mask/precision_map.hpp>
#include <deq/mask/select.hpp>
#include <deq/mask/static_pattern.hpp>
#include <deq/predict/sanger_predictor.hpp>
#include <deq/sparse/csr.hpp>
#include <deq/sparse/load_balance.hpp>
#include <deq/sparse/pack_split.hpp>
#include <deq/sparse/statistics.hpp>

#include "attention_test_util.hpp"

using deq::index_t;
using attn_test::problem;

namespace {

/// The bytes of a run: every output element, mask word and statistic, appended in order.
struct fingerprint {
    std::vector<unsigned char> bytes;

    template <class T>
    void add(T const& value) {
        unsigned char raw[sizeof(T)];
        std::memcpy(raw, &value, sizeof(T));
        bytes.insert(bytes.end(), raw, raw + sizeof(T));
    }
    template <class T, int R>
    void add(deq::tensor<T, R> const& t) {
        for (index_t i = 0; i < t.size(); ++i) add(t.data()[i]);
    }
    void add(deq::bit_mask const& m) {
        for (auto w : m.words()) add(w);
    }
    void add(deq::attention_stats const& s) {
        add(s.valid_pairs);
        add(s.kept_pairs);
        add(s.refined_pairs);
        add(s.empty_rows);
        add(s.rows);
        add(s.density);
        add(s.refinement_ratio);
        add(s.exact_scores);
    }
};

/// Runs @p run on every host space, three times on the threaded ones, and checks that all runs give
/// the bytes of the first serial run.
template <class Run>
void check_deterministic(char const* what, Run run) {
    INFO(std::string(what));
    fingerprint const reference = run(deq::exec::serial{});
    REQUIRE(!reference.bytes.empty());
    CHECK(run(deq::exec::serial{}).bytes == reference.bytes);
    for (int workers : {1, 2, 3}) {
        deq::exec::threads const space(workers);
        for (int repeat = 0; repeat < 3; ++repeat) {
            INFO("threads(" << workers << "), run " << repeat);
            CHECK(run(space).bytes == reference.bytes);
        }
    }
    CHECK(run(deq::exec::accelerator{}).bytes == reference.bytes);
}

/// An uneven problem: 13 query rows over 3 heads (39 rows per sequence), keys 17 with padding, head
/// dimension 12, values 5, so that no worker count splits the rows evenly.
template <class T>
problem<T> uneven_problem(std::uint64_t seed) {
    problem<T> p(2, 3, 13, 17, 12, 5, seed, 1.7);
    p.pad({17, 9});
    return p;
}

}  // namespace

TEST_CASE_TEMPLATE("determinism: attention pipelines across spaces and repeated runs", T, float, double, deq::float16) {
    problem<T> const p = uneven_problem<T>(901);
    deq::predictor_config const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
    // A large threshold prunes whole rows (empty rows under every policy).
    for (double theta : {0.02, 0.3}) {
        for (auto policy : {deq::empty_row_policy::reference, deq::empty_row_policy::uniform, deq::empty_row_policy::zero}) {
            check_deterministic("sanger_attention", [&](auto const& space) {
                deq::tensor<T, 4> out({2, 3, 13, 5});
                fingerprint f;
                f.add(deq::sanger_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), out.view(), cfg, theta, p.padding,
                                            policy));
                f.add(out);
                return f;
            });
        }
    }
    for (char const* rule : {"adamax_nb80", "adamax_nh80", "adamax_ns80", "adamax_b80", "refine_2e-2", "topk:3", "cumprob:0.9"}) {
        check_deterministic(rule, [&](auto const& space) {
            deq::tensor<T, 4> out({2, 3, 13, 5});
            fingerprint f;
            f.add(deq::deq_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), out.view(), cfg, deq::parse_mask_rule(rule),
                                     p.padding));
            f.add(out);
            return f;
        });
    }
    check_deterministic("three_level_attention", [&](auto const& space) {
        deq::tensor<T, 4> out({2, 3, 13, 5});
        fingerprint f;
        f.add(deq::three_level_attention(space, p.q.cview(), p.k.cview(), p.v.cview(), out.view(), cfg,
                                         deq::parse_mask_rule("sanger:0.05"), deq::parse_mask_rule("adamax_nb80"), p.padding));
        f.add(out);
        return f;
    });
    check_deterministic("dense attention", [&](auto const& space) {
        deq::tensor<T, 4> out({2, 3, 13, 5});
        deq::attention_options<deq::accum_t<T>> o;
        o.padding = p.padding;
        fingerprint f;
        f.add(deq::attention(space, p.q.cview(), p.k.cview(), p.v.cview(), out.view(), o));
        f.add(out);
        return f;
    });
}

TEST_CASE("determinism: static sparse attention, predictor, selection, precision maps and sparse formats") {
    problem<float> const p = uneven_problem<float>(902);
    problem<float> const self(2, 3, 17, 17, 12, 5, 903, 1.3);
    deq::predictor_config const cfg = deq::calibrate_predictor(p.q.cview(), p.k.cview());
    check_deterministic("static_sparse_attention", [&](auto const& space) {
        deq::bit_mask const pattern = deq::make_static_mask(space, deq::static_pattern::longformer(4, 1, {0}, 32), 17, 3);
        deq::tensor<float, 4> out({2, 3, 17, 5});
        fingerprint f;
        f.add(pattern);
        f.add(deq::static_sparse_attention(space, self.q.cview(), self.k.cview(), self.v.cview(), out.view(), pattern.view(),
                                           p.padding));
        f.add(out);
        return f;
    });
    check_deterministic("predict_scores, select_elements, make_precision_map", [&](auto const& space) {
        deq::tensor<float, 4> scores({2, 3, 13, 17});
        deq::predict_scores(space, p.q.cview(), p.k.cview(), cfg, scores.view());
        fingerprint f;
        f.add(scores);
        for (char const* rule : {"sanger:0.02", "adamax_nb80", "adamax_nh70", "adamax_ns90", "adamax_h50", "invadamax:0.5",
                                 "topk:4", "cumprob:0.8", "invprob:0.01"}) {
            f.add(deq::select_elements(space, scores.cview(), p.padding, deq::parse_mask_rule(rule)));
        }
        deq::precision_map const map = deq::make_precision_map(space, scores.cview(), p.padding, deq::parse_mask_rule("sanger:0.01"),
                                                               deq::parse_mask_rule("adamax_nb80"));
        f.add(map.kept);
        f.add(map.refined);
        return f;
    });
    deq::predictor_config const self_cfg = deq::calibrate_predictor(self.q.cview(), self.k.cview());
    check_deterministic("sparse formats and statistics", [&](auto const& space) {
        deq::tensor<float, 4> scores({2, 3, 17, 17});
        deq::predict_scores(space, self.q.cview(), self.k.cview(), self_cfg, scores.view());
        deq::bit_mask const kept = deq::select_elements(space, scores.cview(), p.padding, deq::parse_mask_rule("sanger:0.02"));
        fingerprint f;
        deq::csr const c = deq::to_csr(space, kept.view());
        for (auto x : c.row_ptr) f.add(x);
        for (auto x : c.col_idx) f.add(x);
        deq::mask_statistics const st = deq::compute_mask_statistics(space, kept.view(), p.padding);
        f.add(st.density);
        f.add(st.kept_valid_pairs);
        f.add(st.rows);
        f.add(st.valid_pairs);
        f.add(st.empty_rows);
        f.add(deq::to_bit_mask(space, c));
        return f;
    });
}
