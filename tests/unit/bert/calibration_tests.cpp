// deq::bert::calibrate: the reference's EMA calibration of the predictor thresholds, checked against the
// abs-max of the normalised q and k rows computed by the naive forward (tiny_model.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <deq/bert/calibration.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>

#include "tiny_model.hpp"

using namespace bert_test;

namespace {

/// abs-max over all rows (padding included) and heads of the L2-normalised projection @p which of layer @p layer.
double naive_absmax(deq::bert::bert_config const& c, deq::bert::bert_weights const& w, deq::bert::model_input const& in,
                    std::size_t layer, bool keys) {
    auto const states = naive_forward(c, w, in);
    auto const& lw = w.layers[layer];
    double m = 0;
    deq::index_t const d = c.head_dim();
    for (auto const& row : states[layer]) {
        std::vector<double> const p = naive_linear(row, keys ? lw.key : lw.query);
        for (deq::index_t h = 0; h < c.num_attention_heads; ++h) {
            double n = 0;
            for (deq::index_t t = 0; t < d; ++t) n += p[static_cast<std::size_t>(h * d + t)] * p[static_cast<std::size_t>(h * d + t)];
            n = std::sqrt(n);
            for (deq::index_t t = 0; t < d; ++t) m = std::max(m, std::fabs(p[static_cast<std::size_t>(h * d + t)]) / n);
        }
    }
    return m;
}

}  // namespace

TEST_CASE("calibrate: first batch sets the abs-max, later batches move it with EMA 0.9999") {
    auto const c = tiny_config();
    auto const w = tiny_weights(c);
    deq::bert::bert_model const model(c, w);
    std::vector<deq::bert::model_input> batches{tiny_input(c, {12, 30, 5}, 1), tiny_input(c, {8, 9}, 2)};
    deq::bert::calibration_options o;
    o.origin = "two tiny batches";
    auto const t = deq::bert::calibrate(deq::exec::serial{}, model, batches, o);
    REQUIRE(t.layers.size() == 2);
    CHECK(t.steps == 2);
    CHECK(t.bits == 4);
    CHECK(t.origin == "two tiny batches");
    for (std::size_t l = 0; l < 2; ++l) {
        for (bool keys : {false, true}) {
            float const m1 = static_cast<float>(naive_absmax(c, w, batches[0], l, keys));
            float const m2 = static_cast<float>(naive_absmax(c, w, batches[1], l, keys));
            float const expected = m1 - static_cast<float>(1.0 - 0.9999) * (m1 - m2);
            float const got = keys ? t.layers[l].input_y_thresh : t.layers[l].input_x_thresh;
            CHECK(got == doctest::Approx(expected).epsilon(1e-5));
            CHECK(got <= 1.0f);
            CHECK(got > 0.25f);  // a unit vector of 4 elements has an element >= 1/2
        }
    }
    // one batch: exactly that batch's abs-max; threads give the same thresholds
    auto const one = deq::bert::calibrate(deq::exec::threads{2}, model, std::vector<deq::bert::model_input>{batches[1]});
    CHECK(one.steps == 1);
    CHECK(one.layers[1].input_x_thresh == doctest::Approx(naive_absmax(c, w, batches[1], 1, false)).epsilon(1e-5));
    auto const one_serial = deq::bert::calibrate(deq::exec::serial{}, model, std::vector<deq::bert::model_input>{batches[1]});
    CHECK(one.layers[0].input_y_thresh == one_serial.layers[0].input_y_thresh);

    // the thresholds make the predictor modes usable
    auto m2 = model;
    m2.set_thresholds(t);
    auto const out = m2.forward(deq::exec::serial{}, batches[0], deq::bert::parse_attention_mode("deq:adamax_nb80"));
    CHECK(out.summary().refinement_ratio() > 0.0);

    CHECK_THROWS_AS(deq::bert::calibrate(deq::exec::serial{}, model, std::vector<deq::bert::model_input>{}), deq::invalid_argument);

    // from tokenized sequences: batches of 2 in order, padded to their longest = calibrate() on those batches
    struct sequence {
        std::vector<std::int32_t> input_ids, token_type_ids, attention_mask;
    };
    std::vector<sequence> seqs;
    for (index_t b = 0; b < 3; ++b) {
        index_t const len = batches[0].attention_mask.extent(1);
        sequence s;
        for (index_t l = 0; l < len && batches[0].attention_mask(b, l); ++l) {
            s.input_ids.push_back(batches[0].input_ids(b, l));
            s.token_type_ids.push_back(batches[0].token_type_ids(b, l));
            s.attention_mask.push_back(1);
        }
        seqs.push_back(s);
    }
    auto const from_seqs = deq::bert::calibrate_encodings(deq::exec::serial{}, model, seqs, 2, 0, o);
    std::vector<deq::bert::model_input> by_hand{deq::bert::model_input::from_encodings(std::span<sequence const>(seqs).first(2)),
                                                deq::bert::model_input::from_encodings(std::span<sequence const>(seqs).subspan(2))};
    auto const expected = deq::bert::calibrate(deq::exec::serial{}, model, by_hand, o);
    CHECK(from_seqs.steps == 2);
    for (std::size_t l = 0; l < 2; ++l) {
        CHECK(from_seqs.layers[l].input_x_thresh == expected.layers[l].input_x_thresh);
        CHECK(from_seqs.layers[l].input_y_thresh == expected.layers[l].input_y_thresh);
    }
    CHECK_THROWS_AS(deq::bert::calibrate_encodings(deq::exec::serial{}, model, seqs, 0, 0, o), deq::invalid_argument);
    CHECK_THROWS_AS(deq::bert::calibrate_encodings(deq::exec::serial{}, model, std::vector<sequence>{}, 2, 0, o), deq::invalid_argument);
    o.bits = 1;
    CHECK_THROWS_AS(deq::bert::calibrate(deq::exec::serial{}, model, batches, o), deq::invalid_argument);
}
