// deq::bert::bert_weights: loading by Hugging Face names (prefixed and not), shape checks, quantizer
// thresholds; deq::bert::predictor_thresholds JSON round trip.
#include <doctest/doctest.h>

#include <string>

#include <deq/bert/encoder.hpp>
#include <deq/bert/thresholds.hpp>
#include <deq/bert/weights.hpp>

#include "tiny_model.hpp"
#include "support/scratch.hpp"
#include "support/test_util.hpp"

using namespace bert_test;

namespace {

void check_same(deq::tensor<float, 2> const& a, deq::tensor<float, 2> const& b) {
    REQUIRE(a.extent(0) == b.extent(0));
    REQUIRE(a.extent(1) == b.extent(1));
    CHECK(a.storage() == b.storage());
}

std::string error_of(auto&& f) {
    try {
        f();
    } catch (deq::format_error const& e) {
        return e.what();
    }
    FAIL("expected deq::format_error");
    return {};
}

}  // namespace

TEST_CASE("bert_weights loads unprefixed (BertModel) and bert.-prefixed (task model) names") {
    auto const c = tiny_config();
    auto const w = tiny_weights(c);
    for (std::string prefix : {"", "bert."}) {
        for (bool old_names : {false, true}) {
            auto const loaded = deq::bert::bert_weights::load(to_file(to_writer(w, prefix, old_names)), c);
            CHECK(loaded.prefix == prefix);
            check_same(loaded.embeddings.word, w.embeddings.word);
            check_same(loaded.embeddings.position, w.embeddings.position);
            REQUIRE(loaded.layers.size() == 2);
            check_same(loaded.layers[1].intermediate.weight, w.layers[1].intermediate.weight);
            check_same(loaded.layers[0].key.weight, w.layers[0].key.weight);
            CHECK(loaded.layers[1].output_norm.bias.storage() == w.layers[1].output_norm.bias.storage());
            CHECK(loaded.layers[0].attention_norm.weight.storage() == w.layers[0].attention_norm.weight.storage());
            REQUIRE(loaded.pooler.has_value());
            check_same(loaded.pooler->weight, w.pooler->weight);
            CHECK_FALSE(loaded.has_thresholds());
            loaded.validate(c);
        }
    }
}

TEST_CASE("bert_weights: a missing tensor or a wrong shape names the file and the tensor") {
    auto const c = tiny_config();
    auto w = tiny_weights(c);
    auto msg = error_of([&] {
        deq::io::safetensors_writer out = to_writer(w, "");
        auto bytes = out.serialize();
        deq::bert::bert_weights::load(deq::io::safetensors_file::from_bytes(bytes, "m.safetensors"), [&] {
            auto bigger = c;
            bigger.num_hidden_layers = 3;
            return bigger;
        }());
    });
    CHECK(msg.find("m.safetensors") != std::string::npos);
    CHECK(msg.find("encoder.layer.2.attention.self.query.weight") != std::string::npos);

    msg = error_of([&] {
        auto wider = c;
        wider.intermediate_size = 32;
        deq::bert::bert_weights::load(to_file(to_writer(w, "bert."), "x.safetensors"), wider);
    });
    CHECK(msg.find("x.safetensors") != std::string::npos);
    CHECK(msg.find("bert.encoder.layer.0.intermediate.dense.weight") != std::string::npos);
    CHECK(msg.find("[24, 16]") != std::string::npos);

    msg = error_of([&] {
        deq::io::safetensors_writer out;
        out.add("classifier.weight", w.pooler->weight);
        deq::bert::bert_weights::load(to_file(out, "head.safetensors"), c);
    });
    CHECK(msg.find("head.safetensors") != std::string::npos);
    CHECK(msg.find("embeddings.word_embeddings.weight") != std::string::npos);

    CHECK_THROWS_AS(deq::bert::bert_weights::load(std::filesystem::path("/nonexistent/model.safetensors"), c), deq::format_error);

    // validate() for weights built in code
    auto broken = w;
    broken.layers[1].value.bias = deq::tensor<float, 1>({3});
    CHECK_THROWS_WITH_AS(broken.validate(c), doctest::Contains("encoder.layer.1.attention.self.value.bias"), deq::shape_error);
}

TEST_CASE("bert_weights reads the reference's quantizer thresholds ([1] and [] shapes)") {
    auto const c = tiny_config();
    auto w = tiny_weights(c);
    w.layers[0].thresholds = deq::bert::quantizer_thresholds{0.5f, 0.75f};
    w.layers[1].thresholds = deq::bert::quantizer_thresholds{0.625f, 0.25f};
    auto const loaded = deq::bert::bert_weights::load(to_file(to_writer(w, "bert.")), c);
    REQUIRE(loaded.has_thresholds());
    CHECK(loaded.layers[0].thresholds->input_x_thresh == 0.5f);
    CHECK(loaded.layers[0].thresholds->input_y_thresh == 0.75f);
    CHECK(loaded.layers[1].thresholds->input_x_thresh == 0.625f);
    CHECK(loaded.layers[1].thresholds->input_y_thresh == 0.25f);
    auto const t = deq::bert::predictor_thresholds::from_weights(loaded, "ckpt");
    CHECK(t.config(1).threshold_q == 0.625);
    CHECK(t.config(1).threshold_k == 0.25);
    CHECK(t.config(1).bits == 4);

    // only one layer has them
    auto partial = w;
    partial.layers[1].thresholds.reset();
    auto msg = error_of([&] { deq::bert::bert_weights::load(to_file(to_writer(partial, "")), c); });
    CHECK(msg.find("encoder.layer.1.attention.self.quant_matmul.input_x_thresh") != std::string::npos);

    // x without y
    deq::io::safetensors_writer out = to_writer(tiny_weights(c), "");
    float const x = 0.5f;
    out.add("encoder.layer.0.attention.self.quant_matmul.input_x_thresh", deq::tensor_view<float const, 1>(&x, {1}));
    msg = error_of([&] { deq::bert::bert_weights::load(to_file(out), c); });
    CHECK(msg.find("encoder.layer.0.attention.self.quant_matmul.input_y_thresh") != std::string::npos);

    // a threshold of 0 (never calibrated)
    auto zero = w;
    zero.layers[0].thresholds->input_y_thresh = 0.0f;
    msg = error_of([&] { deq::bert::bert_weights::load(to_file(to_writer(zero, "")), c); });
    CHECK(msg.find("input_y_thresh") != std::string::npos);
    CHECK(msg.find("> 0") != std::string::npos);
}

TEST_CASE("predictor_thresholds: JSON round trip and malformed files") {
    deq::bert::predictor_thresholds t;
    t.origin = "unit test";
    t.steps = 3;
    t.layers = {{0.61234567f, 0.7f}, {1.0f / 3.0f, 0.0999999f}};
    t.validate(2);
    CHECK_THROWS_WITH_AS(t.validate(3), doctest::Contains("num_hidden_layers"), deq::invalid_argument);
    CHECK_THROWS_AS(t.config(2), deq::invalid_argument);

    deq_test::scratch_dir dir("bert_thresholds");
    auto const file = dir.path() / "thresholds.json";
    t.save(file);
    auto const back = deq::bert::predictor_thresholds::load(file);
    REQUIRE(back.layers.size() == 2);
    for (std::size_t l = 0; l < 2; ++l) {
        CHECK(back.layers[l].input_x_thresh == t.layers[l].input_x_thresh);  // bit-exact
        CHECK(back.layers[l].input_y_thresh == t.layers[l].input_y_thresh);
    }
    CHECK(back.bits == 4);
    CHECK(back.steps == 3);
    CHECK(back.origin == "unit test");

    auto expect = [&](std::string const& text, std::string const& needle) {
        auto const f = dir.write("bad.json", text);
        auto const msg = error_of([&] { deq::bert::predictor_thresholds::load(f); });
        CHECK_MESSAGE(msg.find("bad.json") != std::string::npos, msg);
        CHECK_MESSAGE(msg.find(needle) != std::string::npos, msg);
    };
    expect(R"({"format": "other", "version": 1, "bits": 4, "layers": [{"input_x_thresh": 1, "input_y_thresh": 1}]})", "format");
    expect(R"({"format": "deq-bert-predictor-thresholds", "version": 2, "bits": 4, "layers": []})", "version");
    expect(R"({"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 12, "layers": []})", "bits");
    expect(R"({"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 4, "layers": []})", "layers");
    expect(R"({"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 4, "layers": [{"input_x_thresh": 1}]})",
           "input_y_thresh");
    expect(R"({"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 4,
              "layers": [{"input_x_thresh": -1, "input_y_thresh": 1}]})", "input_x_thresh");
    expect("{", "bad.json");
    CHECK_THROWS_AS(deq::bert::predictor_thresholds::load(dir.path() / "missing.json"), deq::format_error);
}

TEST_CASE("predictor_thresholds: a thresholds file that does not fit the model names the file and both layer counts") {
    deq_test::scratch_dir dir("bert_thresholds_layers");
    deq::bert::predictor_thresholds t;
    t.layers = {{0.5f, 0.5f}, {0.25f, 0.75f}, {1.0f, 1.0f}};
    auto const file = dir.path() / "three_layers.json";
    t.save(file);
    auto const loaded = deq::bert::predictor_thresholds::load(file);
    CHECK(loaded.source == file.string());
    auto const c = tiny_config();
    deq::bert::bert_model model(c, tiny_weights(c));
    std::string const msg = deq_test::message_of<deq::invalid_argument>([&] { model.set_thresholds(loaded); });
    INFO(msg);
    CHECK(msg.find("'" + file.string() + "'") != std::string::npos);
    CHECK(msg.find("= 3: must equal the model's num_hidden_layers = 2") != std::string::npos);
    CHECK(msg.find("lists 3 layers") != std::string::npos);
    CHECK_FALSE(model.thresholds().has_value());
    // Thresholds built in code name no file.
    CHECK_THROWS_WITH_AS(t.validate(2), "deq: invalid argument 'predictor_thresholds.layers.size()' = 3: must equal the model's num_hidden_layers = 2",
                         deq::invalid_argument);

    // Every other error of the loader names the file too (missing, unreadable JSON, fields of the wrong type).
    auto expect = [&](std::string const& text, std::string const& needle) {
        auto const f = dir.write("bad.json", text);
        std::string const m = error_of([&] { deq::bert::predictor_thresholds::load(f); });
        CHECK_MESSAGE(m.find("deq: " + f.string()) == 0, m);
        CHECK_MESSAGE(m.find(needle) != std::string::npos, m);
    };
    std::string const head = R"({"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 4, )";
    expect(head + R"("origin": 3, "layers": [{"input_x_thresh": 1, "input_y_thresh": 1}]})", "origin");
    expect(head + R"("steps": "many", "layers": [{"input_x_thresh": 1, "input_y_thresh": 1}]})", "steps");
    expect(head + R"("decay": [], "layers": [{"input_x_thresh": 1, "input_y_thresh": 1}]})", "decay");
    expect(head + R"("layers": {"input_x_thresh": 1}})", "layers");
    expect(head + R"("layers": [1.5]})", "layers");
    expect(head + R"("layers": [{"input_x_thresh": "x", "input_y_thresh": 1}]})", "input_x_thresh");
    expect(head + R"("layers": [{"input_x_thresh": 1e39, "input_y_thresh": 1}]})", "input_x_thresh");
    expect("[]", "expected a JSON object");
    std::string const missing = error_of([&] { deq::bert::predictor_thresholds::load(dir.path() / "missing.json"); });
    CHECK_MESSAGE(missing.find((dir.path() / "missing.json").string()) != std::string::npos, missing);
}

TEST_CASE("bert_model::load reads a model folder and names the missing file") {
    auto const c = tiny_config();
    auto w = tiny_weights(c);
    w.layers[0].thresholds = deq::bert::quantizer_thresholds{0.5f, 0.5f};
    w.layers[1].thresholds = deq::bert::quantizer_thresholds{0.25f, 0.75f};
    deq_test::scratch_dir dir("bert_model_dir");
    dir.write("config.json", R"({"vocab_size": 23, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 24, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 64,
        "type_vocab_size": 2})");
    std::string msg = error_of([&] { deq::bert::bert_model::load(dir.path()); });
    CHECK(msg.find("model.safetensors") != std::string::npos);
    to_writer(w, "bert.").write(dir.path() / "model.safetensors");
    auto const model = deq::bert::bert_model::load(dir.path());
    CHECK(model.config().intermediate_size == 24);
    CHECK(deq::bert::bert_config::load(dir.path()).hidden_size == 16);  // a folder works as well as the file
    REQUIRE(model.thresholds().has_value());
    CHECK(model.thresholds()->layers[1].input_y_thresh == 0.75f);
    CHECK(model.thresholds()->origin.find("model.safetensors") != std::string::npos);
    std::filesystem::remove(dir.path() / "config.json");
    msg = error_of([&] { deq::bert::bert_model::load(dir.path()); });
    CHECK(msg.find("config.json") != std::string::npos);
}
