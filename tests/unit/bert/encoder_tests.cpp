// deq::bert::bert_model::forward against an independent double-precision forward (tiny_model.hpp), in
// dense and masked modes, on the serial and threads spaces; mode properties; bad input.
#include <doctest/doctest.h>

#include <cstring>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <deq/bert/encoder.hpp>
#include <deq/bert/layer_attention.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>

#include "tiny_model.hpp"

using namespace bert_test;
using deq::bert::attention_mode;
using deq::bert::parse_attention_mode;

namespace {

deq::bert::bert_model tiny_model(bool thresholds = true) {
    auto const c = tiny_config();
    auto w = tiny_weights(c);
    if (thresholds) {
        w.layers[0].thresholds = deq::bert::quantizer_thresholds{0.7f, 0.8f};
        w.layers[1].thresholds = deq::bert::quantizer_thresholds{0.75f, 0.65f};
    }
    return deq::bert::bert_model(c, std::move(w), "tiny");
}

bool same(deq::tensor<float, 3> const& a, deq::tensor<float, 3> const& b) { return a.storage() == b.storage(); }

}  // namespace

TEST_CASE("bert_model dense forward matches an independent double-precision BERT (every layer)") {
    auto const model = tiny_model();
    auto const in = tiny_input(model.config(), {9, 20, 14});
    auto const naive = naive_forward(model.config(), model.weights(), in);
    deq::bert::forward_options o;
    o.output_hidden_states = true;
    auto const out = model.forward(deq::exec::serial{}, in, attention_mode::dense(), o);
    REQUIRE(out.hidden_states.size() == 3);
    for (std::size_t n = 0; n < out.hidden_states.size(); ++n) {
        double const err = max_diff(out.hidden_states[n], naive[n]);
        CHECK_MESSAGE(err < 2e-5, "hidden state " << n << " max error " << err);
    }
    CHECK(same(out.last_hidden_state, out.hidden_states.back()));
    CHECK(out.last_hidden_state.extent(0) == 3);
    CHECK(out.last_hidden_state.extent(1) == 20);
    CHECK(out.last_hidden_state.extent(2) == 16);
    REQUIRE(out.layers.size() == 2);
    auto const s = out.summary();
    CHECK(s.calls == 2);
    CHECK(s.density() == 1.0);
    CHECK(s.refinement_ratio() == 1.0);
    CHECK(s.empty_rows == 0);
    CHECK(s.unrefined_rows == 0);
    // valid pairs: heads * (9² + 20² + 14²) per layer
    CHECK(s.valid_pairs == 2 * 4 * (81 + 400 + 196));
    CHECK(s.rows == 2 * 4 * (9 + 20 + 14));

    // real tokens do not depend on the padding of the batch: sequence 0 alone gives the same rows
    auto const alone = model.forward(deq::exec::serial{}, tiny_input(model.config(), {9}), attention_mode::dense());
    double diff = 0;
    for (deq::index_t l = 0; l < 9; ++l)
        for (deq::index_t t = 0; t < 16; ++t) diff = std::max(diff, double(std::fabs(alone.last_hidden_state(0, l, t) - out.last_hidden_state(0, l, t))));
    CHECK(diff < 1e-5);
}

TEST_CASE("bert_model::forward<double>: the naive double-precision BERT to rounding, in dense and masked modes") {
    auto const model = tiny_model();
    auto const in = tiny_input(model.config(), {9, 20, 14});
    deq::bert::forward_options o;
    o.output_hidden_states = true;
    o.keep_masks = true;
    auto const naive = naive_forward(model.config(), model.weights(), in);
    for (auto const& space_name : {"serial", "threads"}) {
        CAPTURE(space_name);
        auto const out = std::string(space_name) == "serial" ? model.forward<double>(deq::exec::serial{}, in, attention_mode::dense(), o)
                                                             : model.forward<double>(deq::exec::threads{3}, in, attention_mode::dense(), o);
        REQUIRE(out.hidden_states.size() == 3);
        for (std::size_t n = 0; n < out.hidden_states.size(); ++n) {
            double const err = max_diff(out.hidden_states[n], naive[n]);
            CHECK_MESSAGE(err < 1e-12, "hidden state " << n << " max error " << err);
        }
        CHECK(out.summary().density() == 1.0);
    }
    // Sanger in double: the naive forward with the returned kept masks; the statistics match the float pass
    // (on this model no decision sits within float rounding of its threshold)
    auto const s = model.forward<double>(deq::exec::serial{}, in, parse_attention_mode("sanger:0.05"), o);
    auto const s32 = model.forward(deq::exec::serial{}, in, parse_attention_mode("sanger:0.05"));
    CHECK(s.summary().density() < 1.0);
    CHECK(s.summary().density() == doctest::Approx(s32.summary().density()).epsilon(1e-12));
    auto kept = [&](deq::index_t layer, deq::index_t b, deq::index_t h, deq::index_t i, deq::index_t j) {
        return s.masks[static_cast<std::size_t>(layer)].kept.test(b, h, i, j);
    };
    double const err = max_diff(s.last_hidden_state, naive_forward(model.config(), model.weights(), in, kept).back());
    CHECK_MESSAGE(err < 1e-12, "max error " << err);
    // DEQ in double: refining everything is the dense pass; the adamax rule refines a fraction
    auto const all = model.forward<double>(deq::exec::serial{}, in, attention_mode::deq(deq::mask_rule::keep_all()));
    CHECK(max_diff(all.last_hidden_state, naive.back()) < 1e-12);
    auto const d = model.forward<double>(deq::exec::serial{}, in, parse_attention_mode("deq:adamax_nb80"));
    CHECK(d.summary().refinement_ratio() > 0.0);
    CHECK(d.summary().refinement_ratio() < 1.0);
    // the observer sees float copies of q and k
    deq::bert::forward_options seen;
    deq::index_t calls = 0;
    seen.on_qk = [&](deq::index_t, deq::tensor_view<float const, 4> q, deq::tensor_view<float const, 4> k) {
        ++calls;
        CHECK(q.extent(3) == model.config().head_dim());
        CHECK(k.extent(2) == 20);
    };
    (void)model.forward<double>(deq::exec::serial{}, in, attention_mode::dense(), seen);
    CHECK(calls == 2);
}

TEST_CASE("bert_model static pattern forward matches the naive forward with the same pattern") {
    auto const model = tiny_model();
    auto const in = tiny_input(model.config(), {30, 17});
    // Longformer with 4-token blocks, window 3, global block 0, built for 64 positions.
    auto const mode = attention_mode::static_sparse(deq::static_pattern::longformer(4, 3, {0}, 64));
    auto kept = [](deq::index_t, deq::index_t, deq::index_t, deq::index_t i, deq::index_t j) {
        deq::index_t const bi = i / 4, bj = j / 4;
        return (bi > bj ? bi - bj : bj - bi) <= 1 || bi == 0 || bj == 0;
    };
    auto const naive = naive_forward(model.config(), model.weights(), in, kept);
    deq::bert::forward_options o;
    o.keep_masks = true;
    auto const out = model.forward(deq::exec::serial{}, in, mode, o);
    double const err = max_diff(out.last_hidden_state, naive.back());
    CHECK_MESSAGE(err < 2e-5, "max error " << err);
    // and it differs from dense
    auto const dense = naive_forward(model.config(), model.weights(), in);
    CHECK(max_diff(out.last_hidden_state, dense.back()) > 1e-3);
    // density: kept valid pairs / valid pairs, mean over sequences
    auto density = [&](deq::index_t n) {
        double k = 0;
        for (deq::index_t i = 0; i < n; ++i)
            for (deq::index_t j = 0; j < n; ++j) k += kept(0, 0, 0, i, j) ? 1 : 0;
        return k / double(n * n);
    };
    CHECK(out.summary().density() == doctest::Approx((density(30) + density(17)) / 2).epsilon(1e-12));
    REQUIRE(out.masks.size() == 2);
    CHECK(out.masks[0].kept.rows() == 30);
    CHECK(out.masks[0].refined.empty());
}

TEST_CASE("bert_model predictor modes: identities, statistics and the naive forward with the modes' masks") {
    auto const model = tiny_model();
    auto const in = tiny_input(model.config(), {25, 12, 19});
    deq::exec::serial const serial;
    auto const dense = model.forward(serial, in, attention_mode::dense());

    // refining everything is dense attention (deq's kernel), bit for bit; so is three-level with all/all
    CHECK(same(model.forward(serial, in, attention_mode::deq(deq::mask_rule::keep_all())).last_hidden_state, dense.last_hidden_state));
    CHECK(same(model.forward(serial, in, attention_mode::three_level(deq::mask_rule::keep_all(), deq::mask_rule::keep_all()))
                   .last_hidden_state,
               dense.last_hidden_state));

    // refining nothing: every score is the 4-bit estimate
    auto const none = model.forward(serial, in, attention_mode::deq(deq::mask_rule::keep_none()));
    CHECK(none.summary().refinement_ratio() == 0.0);
    CHECK(none.summary().density() == 1.0);
    CHECK(none.summary().unrefined_rows == none.summary().rows);
    CHECK(none.summary().empty_rows == 0);
    CHECK_FALSE(same(none.last_hidden_state, dense.last_hidden_state));

    // DEQ adamax: some refined, fewer than all; unrefined rows counted from the refined mask
    deq::bert::forward_options o;
    o.keep_masks = true;
    auto const d = model.forward(serial, in, parse_attention_mode("deq:adamax_nb80"), o);
    CHECK(d.summary().refinement_ratio() > 0.0);
    CHECK(d.summary().refinement_ratio() < 1.0);
    REQUIRE(d.masks.size() == 2);
    deq::index_t unrefined = 0;
    for (deq::index_t layer = 0; layer < 2; ++layer) {
        auto const& r = d.masks[static_cast<std::size_t>(layer)].refined;
        REQUIRE(!r.empty());
        for (deq::index_t b = 0; b < 3; ++b)
            for (deq::index_t h = 0; h < 4; ++h)
                for (deq::index_t i = 0; i < 25; ++i) {
                    if (!in.attention_mask(b, i)) continue;
                    bool any = false;
                    for (deq::index_t j = 0; j < 25; ++j) any = any || (in.attention_mask(b, j) && r.test(b, h, i, j));
                    unrefined += any ? 0 : 1;
                }
    }
    CHECK(d.summary().unrefined_rows == unrefined);
    CHECK(d.layers[0].unrefined_rows + d.layers[1].unrefined_rows == unrefined);

    // Sanger: the naive forward with the returned kept masks gives the same hidden states
    auto const s = model.forward(serial, in, parse_attention_mode("sanger:0.05"), o);
    CHECK(s.summary().density() < 1.0);
    CHECK(s.summary().density() > 0.0);
    CHECK(s.summary().refinement_ratio() == doctest::Approx(s.summary().density()));
    CHECK(s.summary().unrefined_rows == s.summary().empty_rows);
    auto kept = [&](deq::index_t layer, deq::index_t b, deq::index_t h, deq::index_t i, deq::index_t j) {
        return s.masks[static_cast<std::size_t>(layer)].kept.test(b, h, i, j);
    };
    double const err = max_diff(s.last_hidden_state, naive_forward(model.config(), model.weights(), in, kept).back());
    CHECK_MESSAGE(err < 2e-5, "max error " << err);

    // summary = mean over layer calls
    CHECK(s.summary().density() == doctest::Approx((s.layers[0].stats.density + s.layers[1].stats.density) / 2));

    // three-level: the first layer prunes exactly as Sanger does (later layers see different inputs);
    // refinement ratio <= density
    auto const t = model.forward(serial, in, parse_attention_mode("three:sanger:0.05+adamax_nb80"));
    CHECK(t.layers[0].stats.density == s.layers[0].stats.density);
    CHECK(t.layers[0].stats.empty_rows == s.layers[0].stats.empty_rows);
    CHECK(t.summary().refinement_ratio() <= t.summary().density());
}

// The linear layers split their work into parts that depend on the shapes only, and every kernel works
// per row, so the encoder is bit-identical on every space, thread count and repeated run.
TEST_CASE("bert_model: serial and threads spaces agree bit for bit in every mode") {
    auto const model = tiny_model();
    auto const in = tiny_input(model.config(), {33, 7, 21});
    auto same_bits = [](deq::tensor<float, 3> const& a, deq::tensor<float, 3> const& b) {
        return a.storage().size() == b.storage().size() &&
               std::memcmp(a.data(), b.data(), a.storage().size() * sizeof(float)) == 0;
    };
    for (char const* m : {"dense", "longformer", "bigbird", "fixed", "sanger:0.02", "deq:adamax_nb80", "deq:adamax_ns80",
                          "deq:refine_2e-2", "three:sanger:0.002+adamax_nb80"}) {
        auto const mode = parse_attention_mode(m);
        auto const a = model.forward(deq::exec::serial{}, in, mode);
        for (int workers : {1, 2, 3}) {
            deq::exec::threads const space(workers);
            for (int repeat = 0; repeat < 2; ++repeat) {
                auto const b = model.forward(space, in, mode);
                CHECK_MESSAGE(same_bits(a.last_hidden_state, b.last_hidden_state), m, " on threads(", workers, ")");
                CHECK(a.summary().density() == b.summary().density());
                CHECK(a.summary().refinement_ratio() == b.summary().refinement_ratio());
                CHECK(a.summary().unrefined_rows == b.summary().unrefined_rows);
            }
        }
    }
}

TEST_CASE("bert_model: bad input and predictor modes without thresholds") {
    auto const model = tiny_model(false);
    CHECK_FALSE(model.thresholds().has_value());
    deq::exec::serial const serial;
    auto in = tiny_input(model.config(), {5, 3});
    CHECK_THROWS_WITH_AS(model.forward(serial, in, parse_attention_mode("sanger:0.02")), doctest::Contains("thresholds"),
                         deq::invalid_argument);
    model.forward(serial, in, parse_attention_mode("longformer"));  // static modes need none

    auto bad = in;
    bad.input_ids(1, 2) = 23;
    CHECK_THROWS_WITH_AS(model.forward(serial, bad, attention_mode::dense()), doctest::Contains("input_ids[1, 2]"), deq::invalid_argument);
    bad = in;
    bad.token_type_ids(0, 0) = 2;
    CHECK_THROWS_WITH_AS(model.forward(serial, bad, attention_mode::dense()), doctest::Contains("token_type_ids[0, 0]"),
                         deq::invalid_argument);
    bad = in;
    bad.attention_mask(0, 4) = 3;
    CHECK_THROWS_WITH_AS(model.forward(serial, bad, attention_mode::dense()), doctest::Contains("attention_mask[0, 4]"),
                         deq::invalid_argument);
    bad = in;
    bad.attention_mask = deq::tensor<std::uint8_t, 2>({2, 4}, 1);
    CHECK_THROWS_AS(model.forward(serial, bad, attention_mode::dense()), deq::shape_error);
    auto const too_long = tiny_input(model.config(), {65});
    CHECK_THROWS_WITH_AS(model.forward(serial, too_long, attention_mode::dense()), doctest::Contains("max_position_embeddings"),
                         deq::invalid_argument);
    CHECK_THROWS_AS(model.forward(serial, deq::bert::model_input{}, attention_mode::dense()), deq::shape_error);

    auto m2 = tiny_model(false);
    deq::bert::predictor_thresholds t;
    t.layers = {{0.5f, 0.5f}};
    CHECK_THROWS_AS(m2.set_thresholds(t), deq::invalid_argument);
    t.layers.push_back({0.5f, 0.5f});
    m2.set_thresholds(t);
    CHECK(m2.forward(serial, in, parse_attention_mode("sanger:0.02")).summary().calls == 2);
}

TEST_CASE("model_input::from_encodings pads to the longest sequence") {
    struct enc {
        std::vector<int> input_ids, token_type_ids;
        std::vector<std::uint8_t> attention_mask;
    };
    std::vector<enc> e{{{101, 7, 102}, {0, 0, 0}, {1, 1, 1}}, {{101, 5, 6, 102, 9, 102}, {0, 0, 0, 0, 1, 1}, {1, 1, 1, 1, 1, 1}}};
    auto const in = deq::bert::model_input::from_encodings(e, 0);
    CHECK(in.batch() == 2);
    CHECK(in.length() == 6);
    CHECK(in.input_ids(0, 2) == 102);
    CHECK(in.input_ids(0, 3) == 0);
    CHECK(in.attention_mask(0, 3) == 0);
    CHECK(in.attention_mask(0, 2) == 1);
    CHECK(in.token_type_ids(1, 4) == 1);
    CHECK(in.input_ids(1, 5) == 102);
    CHECK(in.padding().is_valid(1, 5));
    CHECK_FALSE(in.padding().is_valid(0, 5));
    CHECK_THROWS_AS(deq::bert::model_input::from_encodings(std::vector<enc>{}), deq::invalid_argument);
    CHECK_THROWS_WITH_AS(deq::bert::model_input::from_encodings(std::vector<enc>{{{}, {}, {}}}), doctest::Contains("encodings[0]"),
                         deq::invalid_argument);
    CHECK_THROWS_AS(deq::bert::model_input::from_encodings(std::vector<enc>{{{1, 2}, {0}, {1, 1}}}), deq::invalid_argument);
}


TEST_CASE("forward_options::layer_attention: a runner gets each layer's q, k, v, mode, thresholds and pattern, and its outputs are used") {
    // A runner that computes the attention on contiguous copies through run_layer_attention (as the CUDA
    // runner does on device copies): the forward pass must equal the built-in one, masks included.
    auto const model = tiny_model();
    auto const in = tiny_input(model.config(), {9, 20, 14});
    deq::exec::serial const serial;
    for (char const* spec : {"dense", "longformer", "sanger:0.05", "deq:adamax_nb80", "three:sanger:0.05+adamax_nb80"}) {
        CAPTURE(spec);
        auto const mode = parse_attention_mode(spec);
        std::vector<deq::index_t> layers_seen;
        deq::bert::forward_options o;
        o.keep_masks = true;
        o.layer_attention = [&](deq::bert::layer_attention_call const& call) {
            layers_seen.push_back(call.layer);
            CHECK(call.mode == &mode);
            CHECK((call.config != nullptr) == mode.needs_predictor());
            CHECK(call.static_mask.empty() == (mode.type != attention_mode::kind::static_mask));
            auto const copy = [](deq::tensor_view<float const, 4> x) {
                deq::tensor<float, 4> t({x.extent(0), x.extent(1), x.extent(2), x.extent(3)});
                for (deq::index_t a = 0; a < x.extent(0); ++a)
                    for (deq::index_t b = 0; b < x.extent(1); ++b)
                        for (deq::index_t c = 0; c < x.extent(2); ++c)
                            for (deq::index_t d = 0; d < x.extent(3); ++d) t(a, b, c, d) = x(a, b, c, d);
                return t;
            };
            auto const q = copy(call.q), k = copy(call.k), v = copy(call.v);
            deq::tensor<float, 4> out({call.out.extent(0), call.out.extent(1), call.out.extent(2), call.out.extent(3)});
            auto const st = deq::bert::run_layer_attention(serial, *call.mode, q.cview(), k.cview(), v.cview(), out.view(), call.padding,
                                                           call.static_mask, call.config, call.empty_rows, call.masks);
            for (deq::index_t a = 0; a < out.extent(0); ++a)
                for (deq::index_t b = 0; b < out.extent(1); ++b)
                    for (deq::index_t c = 0; c < out.extent(2); ++c)
                        for (deq::index_t d = 0; d < out.extent(3); ++d) call.out(a, b, c, d) = out(a, b, c, d);
            return st;
        };
        deq::bert::forward_options plain;
        plain.keep_masks = true;
        auto const expected = model.forward(serial, in, mode, plain);
        auto const got = model.forward(serial, in, mode, o);
        CHECK(layers_seen == std::vector<deq::index_t>{0, 1});
        double diff = 0;
        for (std::size_t e = 0; e < got.last_hidden_state.storage().size(); ++e)
            diff = std::max(diff, double(std::fabs(got.last_hidden_state.storage()[e] - expected.last_hidden_state.storage()[e])));
        CHECK(diff < 1e-6);
        REQUIRE(got.masks.size() == expected.masks.size());
        for (std::size_t n = 0; n < got.masks.size(); ++n) {
            CHECK(got.masks[n].kept == expected.masks[n].kept);
            CHECK(got.masks[n].refined == expected.masks[n].refined);
        }
        auto const gs = got.summary(), es = expected.summary();
        CHECK(gs.valid_pairs == es.valid_pairs);
        CHECK(gs.kept_pairs == es.kept_pairs);
        CHECK(gs.refined_pairs == es.refined_pairs);
        CHECK(gs.empty_rows == es.empty_rows);
        CHECK(gs.unrefined_rows == es.unrefined_rows);
    }
    // a runner needs float activations
    deq::bert::forward_options o;
    o.layer_attention = [](deq::bert::layer_attention_call const&) { return deq::attention_stats{}; };
    CHECK_THROWS_WITH_AS((void)model.forward<double>(serial, in, attention_mode::dense(), o), doctest::Contains("needs float activations"),
                         deq::invalid_argument);
}
