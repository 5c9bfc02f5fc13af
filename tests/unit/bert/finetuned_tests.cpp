// deq::bert::sequence_classifier: loading an exported fine-tuned checkpoint (config.json "deq" section, classifier
// head, thresholds read by the names config.json lists), logits against a naive double-precision forward, and
// the errors that name the field or tensor for inconsistent checkpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include <deq/bert/finetuned.hpp>
#include <deq/bert/model_folder.hpp>
#include <deq/exec/serial.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"
#include "tiny_model.hpp"

using bert_test::index_t;
using deq_test::message_of;

namespace {

std::string replace(std::string s, std::string const& from, std::string const& to) {
    std::size_t const p = s.find(from);
    REQUIRE_MESSAGE(p != std::string::npos, from);
    return s.replace(p, from.size(), to);
}

// config.json of the tiny model with a 3-class head in mode deq:adamax_nb80 and thresholds under custom names.
std::string const config_json = R"({
  "vocab_size": 23, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 24,
  "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "type_vocab_size": 2,
  "num_labels": 3, "problem_type": "single_label_classification", "id2label": {"0": "a", "2": "c", "1": "b"},
  "finetuning_task": "mnli",
  "deq": {"attention_mode": "deq:adamax:0.8:sequence:logits", "max_seq_length": 32, "train_padding": "batch",
          "eval_padding": "none", "task": "rte",
          "threshold_tensors": ["t.encoder.layer.0.q.input_x_thresh", "t.encoder.layer.0.q.input_y_thresh",
                                "t.encoder.layer.1.q.input_y_thresh", "t.encoder.layer.1.q.input_x_thresh"]}
})";

struct tiny_checkpoint {
    deq::bert::bert_weights weights;
    deq::bert::linear_weights classifier;
};

// @p edit, when given, changes the weights before they are written.
tiny_checkpoint write_checkpoint(deq_test::scratch_dir const& dir, std::string const& config, index_t labels = 3,
                                 bool thresholds = true, std::function<void(tiny_checkpoint&)> const& edit = {}) {
    auto const c = bert_test::tiny_config();
    std::mt19937_64 gen(11);
    tiny_checkpoint t{bert_test::tiny_weights(c, 5), bert_test::random_linear(labels, c.hidden_size, gen)};
    if (edit) edit(t);
    auto w = bert_test::to_writer(t.weights, "bert.");
    w.add("classifier.weight", t.classifier.weight);
    w.add("classifier.bias", t.classifier.bias);
    if (thresholds) {
        w.add_scalar("t.encoder.layer.0.q.input_x_thresh", 0.5f);
        w.add_scalar("t.encoder.layer.0.q.input_y_thresh", 0.625f);
        w.add_scalar("t.encoder.layer.1.q.input_x_thresh", 0.75f);
        w.add_scalar("t.encoder.layer.1.q.input_y_thresh", 0.875f);
    }
    w.write(dir.path() / "model.safetensors");
    dir.write("config.json", config);
    return t;
}

}  // namespace

TEST_CASE("sequence_classifier: loads the head, the deq section and the thresholds named in config.json") {
    deq_test::scratch_dir dir("finetuned");
    auto const ck = write_checkpoint(dir, config_json);
    auto const clf = deq::bert::sequence_classifier::load(dir.path());
    auto const& s = clf.settings();
    CHECK(s.has_deq_section);
    CHECK(s.num_labels == 3);
    CHECK_FALSE(s.is_regression());
    CHECK(s.id2label == std::vector<std::string>{"a", "b", "c"});
    CHECK(s.attention_mode_text == "deq:adamax:0.8:sequence:logits");
    CHECK(s.mode.type == deq::bert::attention_mode::kind::deq);
    CHECK(s.max_seq_length == 32);
    CHECK(s.eval_padding == "none");
    CHECK(s.task == "rte");
    REQUIRE(clf.model().thresholds().has_value());
    auto const& t = *clf.model().thresholds();
    REQUIRE(t.layers.size() == 2);
    CHECK(t.layers[0].input_x_thresh == 0.5f);
    CHECK(t.layers[0].input_y_thresh == 0.625f);
    CHECK(t.layers[1].input_x_thresh == 0.75f);  // listed after its y partner: matched by name, not position
    CHECK(t.layers[1].input_y_thresh == 0.875f);
    CHECK(t.origin.find("deq.threshold_tensors") != std::string::npos);

    // Dense logits = classifier(tanh(pooler(h[CLS]))) of a naive double-precision forward.
    auto const c = bert_test::tiny_config();
    auto const in = bert_test::tiny_input(c, {7, 4});
    auto const logits = clf.logits(deq::exec::serial{}, in, deq::bert::attention_mode::dense());
    auto const states = bert_test::naive_forward(c, ck.weights, in);
    REQUIRE(logits.extent(0) == 2);
    REQUIRE(logits.extent(1) == 3);
    auto const max_error = [&](auto const& got) {
        double err = 0;
        for (index_t b = 0; b < 2; ++b) {
            auto const& cls = states.back()[static_cast<std::size_t>(b * in.length())];
            std::vector<double> pooled = bert_test::naive_linear(cls, *ck.weights.pooler);
            for (double& v : pooled) v = std::tanh(v);
            auto const expect = bert_test::naive_linear(pooled, ck.classifier);
            for (index_t k = 0; k < 3; ++k) err = std::max(err, std::fabs(static_cast<double>(got(b, k)) - expect[static_cast<std::size_t>(k)]));
        }
        return err;
    };
    CHECK(max_error(logits) < 1e-4);
    // In double precision the same logits agree with the naive double computation to rounding.
    double const err64 = max_error(clf.logits<double>(deq::exec::serial{}, in, deq::bert::attention_mode::dense()));
    CHECK_MESSAGE(err64 < 1e-12, "double logits max error " << err64);
    // The checkpoint's own (predictor) mode runs with the loaded thresholds.
    deq::bert::forward_output out;
    auto const deq_logits = clf.logits(deq::exec::serial{}, in, s.mode, {}, &out);
    CHECK(deq_logits.extent(1) == 3);
    CHECK(out.layers.size() == 2);
}

TEST_CASE("sequence_classifier: a plain BertForSequenceClassification folder loads in dense mode; regression head") {
    deq_test::scratch_dir dir("finetuned_plain");
    std::string cfg = config_json.substr(0, config_json.find(",\n  \"deq\"")) + "\n}";
    cfg = replace(cfg, R"("num_labels": 3, "problem_type": "single_label_classification", "id2label": {"0": "a", "2": "c", "1": "b"},)",
                  R"("num_labels": 1,)");
    write_checkpoint(dir, cfg, 1, false);
    auto const clf = deq::bert::sequence_classifier::load(dir.path());
    CHECK_FALSE(clf.settings().has_deq_section);
    CHECK(clf.settings().is_regression());
    CHECK(clf.settings().mode.type == deq::bert::attention_mode::kind::dense);
    CHECK(clf.settings().task == "mnli");
    CHECK(clf.settings().id2label == std::vector<std::string>{"LABEL_0"});
    CHECK_FALSE(clf.model().thresholds().has_value());
}

TEST_CASE("sequence_classifier: inconsistent checkpoints are errors naming the field or tensor") {
    deq_test::scratch_dir dir("finetuned_bad");
    auto expect = [&](std::string const& config, index_t labels, bool thresholds, std::string const& needle) {
        write_checkpoint(dir, config, labels, thresholds);
        std::string const msg = message_of<deq::format_error>([&] { deq::bert::sequence_classifier::load(dir.path()); });
        INFO(msg);
        CHECK(msg.find(needle) != std::string::npos);
    };
    expect(config_json, 2, true, "tensor 'classifier.weight' has 2 rows but");
    expect(replace(config_json, R"("problem_type": "single_label_classification")", R"("problem_type": "regression")"), 3, true,
           "field 'problem_type'");
    expect(replace(config_json, R"("problem_type": "single_label_classification")", R"("problem_type": "multi_label_classification")"), 3,
           true, "field 'problem_type'");
    expect(replace(config_json, R"("2": "c")", R"("5": "c")"), 3, true, "field 'id2label'");
    // An empty id2label without num_labels would be a head of zero labels (a fuzz finding).
    expect(replace(config_json, R"("num_labels": 3, "problem_type": "single_label_classification", "id2label": {"0": "a", "2": "c", "1": "b"},)",
                   R"("id2label": {},)"),
           3, true, "field 'id2label': has no entries");
    expect(replace(config_json, R"("eval_padding": "none")", R"("eval_padding": "longest")"), 3, true, "field 'deq.eval_padding'");
    expect(replace(config_json, R"("max_seq_length": 32)", R"("max_seq_length": 65)"), 3, true, "field 'deq.max_seq_length'");
    expect(replace(config_json, R"("attention_mode": "deq:adamax:0.8:sequence:logits")", R"("attention_mode": "deq:sometimes")"), 3, true,
           "field 'deq.attention_mode'");
    expect(replace(config_json, R"("t.encoder.layer.0.q.input_x_thresh", )", ""), 3, true, "field 'deq.threshold_tensors'");
    expect(replace(config_json, R"("t.encoder.layer.1.q.input_x_thresh")", R"("t.encoder.layer.0.q.input_x_thresh")"), 3, true,
           "a second time");
    expect(replace(config_json, R"("t.encoder.layer.1.q.input_x_thresh")", R"("t.encoder.layer.7.q.input_x_thresh")"), 3, true,
           "deq.threshold_tensors[3]");
    expect(config_json, 3, false, "t.encoder.layer.0.q.input_x_thresh");
    std::string no_names = config_json.substr(0, config_json.find(",\n          \"threshold_tensors\"")) + "}\n}";
    expect(no_names, 3, true, "'threshold_tensors' is missing or empty");
}

TEST_CASE("sequence_classifier::load reports a non-finite weight of the encoder or the classifier at load time") {
    deq_test::scratch_dir dir("finetuned_nan");
    std::string const file = (dir.path() / "model.safetensors").string();
    float const nan = std::numeric_limits<float>::quiet_NaN();
    write_checkpoint(dir, config_json, 3, true, [&](tiny_checkpoint& t) { t.classifier.weight(2, 9) = nan; });
    std::string msg = message_of<deq::numeric_error>([&] { (void)deq::bert::sequence_classifier::load(dir.path()); });
    CHECK_MESSAGE(msg == "deq: " + file + ": non-finite value nan in tensor 'classifier.weight' at index [2, 9] (element 41 of 48)", msg);
    CHECK(std::isnan(deq::bert::sequence_classifier::load(dir.path(), {.check_finite = false}).head().classifier.weight(2, 9)));
    write_checkpoint(dir, config_json, 3, true, [&](tiny_checkpoint& t) { t.weights.layers[0].query.weight(1, 2) = -std::numeric_limits<float>::infinity(); });
    msg = message_of<deq::numeric_error>([&] { (void)deq::bert::sequence_classifier::load(dir.path()); });
    CHECK_MESSAGE(msg.find(file + ": non-finite value -inf in tensor 'bert.encoder.layer.0.attention.self.query.weight' at index [1, 2]") !=
                      std::string::npos,
                  msg);
}

TEST_CASE("load_classifier_folder checks the vocabulary of a fine-tuned folder against its encoder") {
    deq_test::scratch_dir dir("finetuned_vocab");
    write_checkpoint(dir, config_json);
    dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
    auto loaded = deq::bert::load_classifier_folder(dir.path());
    CHECK(loaded.warnings.empty());  // 6 of 23: within the default padding margin
    CHECK(loaded.model.model().sources().vocabulary == (dir.path() / "vocab.txt").string());
    CHECK(loaded.model.model().sources().config == (dir.path() / "config.json").string());
    CHECK(loaded.tokenizer.tokenize("hello") == std::vector<deq::text::token_id>{5});
    deq::bert::model_load_options o;
    o.vocabulary.padding_margin = 4;
    CHECK(deq::bert::load_classifier_folder(dir.path(), o).warnings.size() == 1);
    o.vocabulary.strict = true;
    CHECK_THROWS_WITH_AS((void)deq::bert::load_classifier_folder(dir.path(), o), doctest::Contains("17 fewer"), deq::format_error);
}
