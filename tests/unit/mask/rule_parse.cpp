// Tests of deq/mask/mask_rule.hpp: factories, validation, describe/spec and parse_mask_rule.
#include <doctest/doctest.h>

#include <deq/mask/mask_rule.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "select_test_support.hpp"

using deq::mask_rule;
using deq::max_granularity;
using deq_select_test::message_of;

TEST_CASE("mask_rule: factories set the documented fields") {
    auto const p = mask_rule::probability(0.02);
    CHECK(p.type == mask_rule::kind::probability_threshold);
    CHECK(p.value == 0.02);
    auto const a = mask_rule::adaptive_maximum(0.8, max_granularity::head);
    CHECK(a.type == mask_rule::kind::adaptive_maximum);
    CHECK(a.granularity == max_granularity::head);
    CHECK(a.before_softmax);
    auto const ia = mask_rule::inverse_adaptive_maximum(0.5, max_granularity::row);
    CHECK(ia.type == mask_rule::kind::inverse_adaptive_maximum);
    CHECK_FALSE(ia.before_softmax);
    CHECK(mask_rule::top_k(16).k == 16);
    CHECK(mask_rule::cumulative_probability(0.95).value == 0.95);
    CHECK(mask_rule::keep_all().type == mask_rule::kind::all);
    CHECK(mask_rule::keep_none().type == mask_rule::kind::none);
    CHECK(mask_rule{}.type == mask_rule::kind::all);
    CHECK(mask_rule::probability(0.5).uses_probabilities());
    CHECK_FALSE(a.uses_probabilities());
    CHECK(ia.uses_probabilities());
    CHECK_FALSE(mask_rule::keep_all().uses_probabilities());
}

TEST_CASE("mask_rule: validation names the parameter and value") {
    double const nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_NOTHROW(mask_rule::probability(0));
    CHECK_NOTHROW(mask_rule::probability(1));
    CHECK_NOTHROW(mask_rule::inverse_probability(0.3));
    for (double t : {-0.01, 1.01, 20.0, nan}) {
        CHECK_THROWS_AS(mask_rule::probability(t), deq::invalid_argument);
        CHECK_THROWS_AS(mask_rule::inverse_probability(t), deq::invalid_argument);
        CHECK_THROWS_AS(mask_rule::adaptive_maximum(t, max_granularity::row), deq::invalid_argument);
        CHECK_THROWS_AS(mask_rule::inverse_adaptive_maximum(t, max_granularity::row), deq::invalid_argument);
    }
    CHECK(message_of([] { mask_rule::probability(1.5); }).find("'theta' = 1.5") != std::string::npos);
    CHECK(message_of([] { mask_rule::adaptive_maximum(-0.5, max_granularity::head); }).find("'alpha' = -0.5") !=
          std::string::npos);
    CHECK_NOTHROW(mask_rule::adaptive_maximum(0, max_granularity::sequence));
    CHECK_NOTHROW(mask_rule::adaptive_maximum(1, max_granularity::sequence));
    CHECK_THROWS_AS(mask_rule::top_k(0), deq::invalid_argument);
    CHECK_THROWS_AS(mask_rule::top_k(-3), deq::invalid_argument);
    CHECK(message_of([] { mask_rule::top_k(0); }).find("'k' = 0") != std::string::npos);
    CHECK_NOTHROW(mask_rule::cumulative_probability(1));
    for (double p : {0.0, -0.5, 1.0000001, nan}) CHECK_THROWS_AS(mask_rule::cumulative_probability(p), deq::invalid_argument);
    CHECK(message_of([] { mask_rule::cumulative_probability(0); }).find("'p' = 0") != std::string::npos);
    // Hand-built rules with bad enumerators.
    mask_rule bad = mask_rule::adaptive_maximum(0.5, max_granularity::row);
    bad.granularity = static_cast<max_granularity>(7);
    CHECK_THROWS_AS(bad.validate(), deq::invalid_argument);
    mask_rule bad_kind;
    bad_kind.type = static_cast<mask_rule::kind>(42);
    CHECK(message_of([&] { bad_kind.validate(); }).find("'kind' = 42") != std::string::npos);
}

TEST_CASE("mask_rule: describe and spec texts") {
    CHECK(mask_rule::adaptive_maximum(0.8, max_granularity::sequence).describe() ==
          "adamax(alpha=0.8, sequence, before_softmax)");
    CHECK(mask_rule::inverse_adaptive_maximum(0.5, max_granularity::head).describe() ==
          "inverse_adamax(alpha=0.5, head, after_softmax)");
    CHECK(mask_rule::probability(0.02).describe() == "probability(theta=0.02)");
    CHECK(mask_rule::inverse_probability(0.002).describe() == "inverse_probability(theta=0.002)");
    CHECK(mask_rule::top_k(16).describe() == "top_k(k=16)");
    CHECK(mask_rule::cumulative_probability(0.95).describe() == "cumulative_probability(p=0.95)");
    CHECK(mask_rule::keep_all().describe() == "all");
    CHECK(mask_rule::keep_none().describe() == "none");
    CHECK(mask_rule::adaptive_maximum(0.8, max_granularity::row, false).spec() == "adamax:0.8:row:probs");
    CHECK(mask_rule::probability(0.02).spec() == "prob:0.02");
    CHECK(mask_rule::top_k(3).spec() == "topk:3");
    CHECK(std::string(deq::to_string(max_granularity::head)) == "head");
}

TEST_CASE("mask_rule: parse_mask_rule round-trips every kind") {
    std::vector<mask_rule> const rules = {
        mask_rule::keep_all(),
        mask_rule::keep_none(),
        mask_rule::probability(0.02),
        mask_rule::probability(1.0 / 3.0),
        mask_rule::inverse_probability(0.002),
        mask_rule::adaptive_maximum(0.8, max_granularity::sequence, true),
        mask_rule::adaptive_maximum(0.7, max_granularity::head, false),
        mask_rule::adaptive_maximum(0.123456789012345, max_granularity::row, true),
        mask_rule::inverse_adaptive_maximum(0.5, max_granularity::row, false),
        mask_rule::inverse_adaptive_maximum(0.9, max_granularity::sequence, true),
        mask_rule::top_k(1),
        mask_rule::top_k(4096),
        mask_rule::cumulative_probability(0.95),
        mask_rule::cumulative_probability(1),
    };
    for (auto const& r : rules) {
        CAPTURE(r.spec());
        CHECK(deq::parse_mask_rule(r.spec()) == r);
    }
}

TEST_CASE("mask_rule: parse_mask_rule grammar, defaults and aliases") {
    using deq::parse_mask_rule;
    CHECK(parse_mask_rule("sanger:0.02") == mask_rule::probability(0.02));
    CHECK(parse_mask_rule("prob:2e-3") == mask_rule::probability(0.002));
    CHECK(parse_mask_rule("  Prob:0.5 ") == mask_rule::probability(0.5));
    CHECK(parse_mask_rule("invprob:0.02") == mask_rule::inverse_probability(0.02));
    CHECK(parse_mask_rule("adamax:0.8") == mask_rule::adaptive_maximum(0.8, max_granularity::sequence, true));
    CHECK(parse_mask_rule("adamax:0.8:head") == mask_rule::adaptive_maximum(0.8, max_granularity::head, true));
    CHECK(parse_mask_rule("adamax:0.8:probs") == mask_rule::adaptive_maximum(0.8, max_granularity::sequence, false));
    CHECK(parse_mask_rule("adamax:0.8:probs:row") == mask_rule::adaptive_maximum(0.8, max_granularity::row, false));
    CHECK(parse_mask_rule("invadamax:0.5") ==
          mask_rule::inverse_adaptive_maximum(0.5, max_granularity::sequence, false));
    CHECK(parse_mask_rule("invadamax:0.5:head:logits") ==
          mask_rule::inverse_adaptive_maximum(0.5, max_granularity::head, true));
    CHECK(parse_mask_rule("topk:16") == mask_rule::top_k(16));
    CHECK(parse_mask_rule("cumprob:0.95") == mask_rule::cumulative_probability(0.95));
    CHECK(parse_mask_rule("ALL") == mask_rule::keep_all());
    CHECK(parse_mask_rule("none") == mask_rule::keep_none());
}

TEST_CASE("mask_rule: parse_mask_rule accepts the reference config names") {
    using deq::parse_mask_rule;
    CHECK(parse_mask_rule("adamax_nb80") == mask_rule::adaptive_maximum(0.8, max_granularity::sequence, true));
    CHECK(parse_mask_rule("adamax_nh80") == mask_rule::adaptive_maximum(0.8, max_granularity::head, true));
    CHECK(parse_mask_rule("adamax_ns70") == mask_rule::adaptive_maximum(0.7, max_granularity::row, true));
    CHECK(parse_mask_rule("adamax_nb90") == mask_rule::adaptive_maximum(0.9, max_granularity::sequence, true));
    CHECK(parse_mask_rule("adamax_b80") == mask_rule::adaptive_maximum(0.8, max_granularity::sequence, false));
    CHECK(parse_mask_rule("adamax_h50") == mask_rule::adaptive_maximum(0.5, max_granularity::head, false));
    CHECK(parse_mask_rule("adamax_s80") == mask_rule::adaptive_maximum(0.8, max_granularity::row, false));
    CHECK(parse_mask_rule("refine_2e-2") == mask_rule::probability(0.02));
    CHECK(parse_mask_rule("refine_8e-1") == mask_rule::probability(0.8));
    CHECK(parse_mask_rule("refine_inv_2e-3") == mask_rule::inverse_probability(0.002));
    CHECK(parse_mask_rule("sanger_2e-3") == mask_rule::probability(0.002));
    // The all-low-precision ablation: θ = 20 selects nothing, the same as θ = 1 here.
    CHECK(parse_mask_rule("refine_2e1") == mask_rule::probability(1));
    CHECK(parse_mask_rule("bert_base_adamax_nb80") == mask_rule::adaptive_maximum(0.8, max_granularity::sequence, true));
    CHECK(parse_mask_rule("gpt2_sanger_2e-2") == mask_rule::probability(0.02));
    CHECK(parse_mask_rule("bart_base_refine_2e-1") == mask_rule::probability(0.2));
}

TEST_CASE("mask_rule: parse_mask_rule rejects unknown or malformed text") {
    using deq::parse_mask_rule;
    for (char const* bad : {"", "foo", "prob", "prob:", "prob:0.1:0.2", "all:1", "adamax", "adamax:0.8:foo",
                            "adamax:0.8:head:row", "adamax:0.8:logits:probs", "adamax:0.8:head:logits:x", "topk",
                            "adamax_nx80", "adamax_nb", "adamax_nb8a", "refine_", "refine_abc", "sanger", "prob:+0.5",
                            "cumprob", "topk:3:4"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_mask_rule(bad), deq::invalid_argument);
    }
    auto const msg = message_of([] { parse_mask_rule("otsu_batch"); });
    CHECK(msg.find("otsu_batch") != std::string::npos);
    CHECK(msg.find("adamax:ALPHA") != std::string::npos);  // lists the grammar
    CHECK(message_of([] { parse_mask_rule("prob:abc"); }).find("'theta'") != std::string::npos);
    CHECK(message_of([] { parse_mask_rule("prob:1.5"); }).find("'theta' = 1.5") != std::string::npos);
    CHECK(message_of([] { parse_mask_rule("adamax:2"); }).find("'alpha' = 2") != std::string::npos);
    CHECK(message_of([] { parse_mask_rule("topk:0"); }).find("'k' = 0") != std::string::npos);
    CHECK(message_of([] { parse_mask_rule("topk:1.5"); }).find("'k'") != std::string::npos);
    CHECK(message_of([] { parse_mask_rule("cumprob:0"); }).find("'p' = 0") != std::string::npos);
    CHECK_THROWS_AS(parse_mask_rule("cumprob:nan"), deq::invalid_argument);
    CHECK_THROWS_AS(parse_mask_rule("prob:inf"), deq::invalid_argument);
    CHECK_THROWS_AS(parse_mask_rule("refine_inv_-1"), deq::invalid_argument);
}
