// Non-finite checkpoint weights are reported where they are loaded (bert_weights::load, the task heads,
// bert_model::load), naming the file, the tensor and the index of the first non-finite element, unless
// deq::bert::weight_load_options::check_finite is false.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <deq/bert/encoder.hpp>
#include <deq/bert/heads.hpp>
#include <deq/bert/weights.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"
#include "tiny_model.hpp"

using bert_test::index_t;
using deq_test::message_of;

namespace {

float const nan_value = std::numeric_limits<float>::quiet_NaN();
float const inf_value = std::numeric_limits<float>::infinity();

// The numeric_error of loading @p w (written with @p prefix) as "m.safetensors".
std::string load_error(deq::bert::bert_weights const& w, std::string const& prefix = "", bool old_names = false) {
    auto const file = bert_test::to_file(bert_test::to_writer(w, prefix, old_names), "m.safetensors");
    return message_of<deq::numeric_error>([&] { (void)deq::bert::bert_weights::load(file, bert_test::tiny_config()); });
}

}  // namespace

TEST_CASE("bert_weights::load reports a non-finite weight with the file, the tensor and the index") {
    auto const c = bert_test::tiny_config();
    struct case_t {
        char const* tensor;
        std::function<void(deq::bert::bert_weights&)> poison;
        char const* index;
    };
    std::vector<case_t> const cases = {
        {"embeddings.LayerNorm.weight", [](auto& w) { w.embeddings.norm.weight(3) = nan_value; }, "non-finite value nan in tensor 'embeddings.LayerNorm.weight' at index [3] (element 3 of 16)"},
        {"encoder.layer.1.attention.self.query.weight", [](auto& w) { w.layers[1].query.weight(2, 5) = inf_value; }, "non-finite value inf in tensor 'encoder.layer.1.attention.self.query.weight' at index [2, 5] (element 37 of 256)"},
        {"encoder.layer.0.output.dense.bias", [](auto& w) { w.layers[0].output.bias(15) = -inf_value; }, "non-finite value -inf in tensor 'encoder.layer.0.output.dense.bias' at index [15]"},
        {"embeddings.word_embeddings.weight", [](auto& w) { w.embeddings.word(22, 15) = nan_value; }, "at index [22, 15] (element 367 of 368)"},
        {"pooler.dense.weight", [](auto& w) { w.pooler->weight(0, 0) = nan_value; }, "tensor 'pooler.dense.weight' at index [0, 0]"},
    };
    for (auto const& t : cases) {
        auto w = bert_test::tiny_weights(c);
        t.poison(w);
        std::string const msg = load_error(w);
        INFO(msg);
        CHECK(msg.find("deq: m.safetensors: ") == 0);
        CHECK(msg.find(t.index) != std::string::npos);
    }
    // The prefixed name and the old LayerNorm names are the ones reported; the first of two bad values is.
    auto w = bert_test::tiny_weights(c);
    w.embeddings.norm.weight(9) = nan_value;
    w.embeddings.norm.weight(4) = inf_value;
    CHECK(load_error(w, "bert.").find("tensor 'bert.embeddings.LayerNorm.weight' at index [4]") != std::string::npos);
    CHECK(load_error(w, "", true).find("tensor 'embeddings.LayerNorm.gamma' at index [4]") != std::string::npos);

    // check_finite = false skips the check: the value is loaded as it is.
    auto const file = bert_test::to_file(bert_test::to_writer(w, ""), "m.safetensors");
    auto const loaded = deq::bert::bert_weights::load(file, c, {.check_finite = false});
    CHECK(std::isnan(loaded.embeddings.norm.weight(9)));
}

TEST_CASE("bert_first_non_finite finds the first NaN or infinity inside and after whole blocks") {
    std::vector<float> x(3000, 1.5f);
    auto first = [&] { return deq::detail::bert_first_non_finite(x.data(), static_cast<index_t>(x.size())); };
    CHECK(first() == 3000);
    for (index_t at : {0, 5, 1023, 1024, 2047, 2500, 2999}) {
        x.assign(3000, -2.0f);
        x[static_cast<std::size_t>(at)] = at % 2 ? nan_value : -inf_value;
        if (at + 7 < 3000) x[static_cast<std::size_t>(at + 7)] = nan_value;  // a later one is not reported
        CHECK(first() == at);
    }
    x.assign(3000, std::numeric_limits<float>::max());
    x[100] = std::numeric_limits<float>::denorm_min();
    CHECK(first() == 3000);  // the largest and the subnormal values are finite
    CHECK(deq::detail::bert_first_non_finite(x.data(), 0) == 0);
}

TEST_CASE("task heads report a non-finite weight at load, naming the file, the tensor and the index") {
    auto const c = bert_test::tiny_config();
    std::mt19937_64 gen(3);
    auto heads = bert_test::random_heads(c, gen);
    heads.classifier.weight(1, 4) = nan_value;
    heads.qa.bias(1) = inf_value;
    heads.mlm_bias(7) = -inf_value;
    deq::io::safetensors_writer out;
    bert_test::add_heads(out, heads);
    auto const file = bert_test::to_file(out, "heads.safetensors");
    auto const word = bert_test::tiny_weights(c).embeddings.word;

    std::string msg = message_of<deq::numeric_error>([&] { (void)deq::bert::classification_head::load(file, c); });
    CHECK_MESSAGE(msg == "deq: heads.safetensors: non-finite value nan in tensor 'classifier.weight' at index [1, 4] (element 20 of 48)", msg);
    msg = message_of<deq::numeric_error>([&] { (void)deq::bert::span_head::load(file, c); });
    CHECK_MESSAGE(msg.find("heads.safetensors: non-finite value inf in tensor 'qa_outputs.bias' at index [1]") != std::string::npos, msg);
    msg = message_of<deq::numeric_error>([&] { (void)deq::bert::mlm_head::load(file, c, word); });
    CHECK_MESSAGE(msg.find("heads.safetensors: non-finite value -inf in tensor 'cls.predictions.bias' at index [7]") != std::string::npos, msg);

    deq::bert::weight_load_options const unchecked{.check_finite = false};
    CHECK(std::isnan(deq::bert::classification_head::load(file, c, unchecked).classifier.weight(1, 4)));
    CHECK(std::isinf(deq::bert::span_head::load(file, c, unchecked).qa_outputs.bias(1)));
    CHECK(std::isinf(deq::bert::mlm_head::load(file, c, word, unchecked).bias(7)));
}

TEST_CASE("bert_model::load reports a non-finite weight of model.safetensors at load time, not in the forward pass") {
    auto const c = bert_test::tiny_config();
    auto w = bert_test::tiny_weights(c);
    w.embeddings.norm.weight(0) = nan_value;
    deq_test::scratch_dir dir("finite_model");
    dir.write("config.json", R"({"vocab_size": 23, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 24, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 64,
        "type_vocab_size": 2})");
    bert_test::to_writer(w, "").write(dir.path() / "model.safetensors");
    std::string const msg = message_of<deq::numeric_error>([&] { (void)deq::bert::bert_model::load(dir.path()); });
    CHECK_MESSAGE(msg == "deq: " + (dir.path() / "model.safetensors").string() +
                             ": non-finite value nan in tensor 'embeddings.LayerNorm.weight' at index [0] (element 0 of 16)",
                  msg);
    // Without the check the model loads, and the NaN only surfaces as non-finite activations.
    auto const model = deq::bert::bert_model::load(dir.path(), {.check_finite = false});
    CHECK(std::isnan(model.weights().embeddings.norm.weight(0)));
}
