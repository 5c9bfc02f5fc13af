/// @file
/// @brief `deq::bert::sequence_classifier`: a fine-tuned BERT sequence classifier / regressor as
/// exported by python/deq_train/export.py, with its task head and attention mode
/// (`deq::bert::finetuned_config`).
///
/// The model folder holds `config.json`, `model.safetensors` (`bert.*` encoder and pooler,
/// `classifier.{weight,bias}`, and in predictor modes the per-layer quantizer thresholds) and `vocab.txt`.
/// Besides the BERT geometry (deq::bert::bert_config), config.json gives:
///
/// | field | meaning | check |
/// |---|---|---|
/// | `num_labels` | outputs of the head | >= 1, equals the rows of `classifier.weight` |
/// | `problem_type` | `regression` or `single_label_classification` | regression iff num_labels = 1 (optional: derived from num_labels) |
/// | `id2label` | `{"0": name, ...}` | keys exactly 0..num_labels-1 (optional) |
/// | `deq.attention_mode` | the mode trained with (deq::bert::parse_attention_mode text) | parses |
/// | `deq.max_seq_length` | tokenizer length limit | in [1, max_position_embeddings] (default 128) |
/// | `deq.train_padding` | `batch` or `max_length` | (default `batch`) |
/// | `deq.eval_padding` | `none` (one example at a time), `batch` or `max_length` | (default `none`) |
/// | `deq.threshold_tensors` | names of the quantizer threshold tensors | 2 per layer, `...layer.N...input_x_thresh` / `input_y_thresh`, each present, finite and > 0; required (non-empty) for predictor modes |
/// | `deq.task` | the GLUE task (optional) | |
///
/// Thresholds are read by the names listed in `deq.threshold_tensors` (not by assumed names). A folder
/// without a `deq` section (a plain Hugging Face `BertForSequenceClassification`) loads in dense mode.
/// Every inconsistency is a deq::format_error naming the file and the field or tensor.
#pragma once

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "attention_mode.hpp"
#include "config.hpp"
#include "encoder.hpp"
#include "heads.hpp"
#include "pooling.hpp"
#include "thresholds.hpp"
#include "weights.hpp"

namespace deq::bert {

/// The task head and deq settings of a fine-tuned checkpoint's config.json (see the file documentation).
struct finetuned_config {
    /// Number of outputs (1 = regression).
    index_t num_labels = 2;
    /// `regression` or `single_label_classification`.
    std::string problem_type = "single_label_classification";
    /// Label names by class index (num_labels entries; "LABEL_k" when config.json has none).
    std::vector<std::string> id2label;
    /// The attention mode text of `deq.attention_mode` ("dense" without a deq section).
    std::string attention_mode_text = "dense";
    /// The parsed attention mode.
    attention_mode mode = attention_mode::dense();
    /// Tokenizer length limit (`deq.max_seq_length`).
    index_t max_seq_length = 128;
    /// Training padding (`deq.train_padding`): "batch" or "max_length".
    std::string train_padding = "batch";
    /// Evaluation padding (`deq.eval_padding`): "none", "batch" or "max_length".
    std::string eval_padding = "none";
    /// The quantizer threshold tensor names (`deq.threshold_tensors`), 2 per layer or none.
    std::vector<std::string> threshold_tensors;
    /// The task (`deq.task`, else `finetuning_task`, else empty).
    std::string task;
    /// Whether config.json has a `deq` section.
    bool has_deq_section = false;

    /// @return True for a regression head (one output).
    bool is_regression() const noexcept { return problem_type == "regression"; }

    /// Reads the fields from a parsed config.json.
    /// @param doc    The document (its source names the file in errors).
    /// @param config The model geometry read from the same document.
    /// @return The settings; deq::format_error naming the file and field for a wrong type, an
    ///         unknown value or an inconsistency (see the file documentation).
    static finetuned_config from_json(io::json const& doc, bert_config const& config) {
        finetuned_config c;
        io::json const* labels = doc.find("num_labels");
        io::json const* id2label = doc.find("id2label");
        if (labels != nullptr && !labels->is_null()) {
            c.num_labels = labels->as_int(1, 1 << 20);
        } else if (id2label != nullptr && !id2label->is_null()) {
            c.num_labels = static_cast<index_t>(id2label->size());
            if (c.num_labels < 1) id2label->fail("has no entries (and there is no num_labels): a head needs at least one label");
        }
        if (id2label != nullptr && !id2label->is_null()) {
            if (static_cast<index_t>(id2label->size()) != c.num_labels) {
                id2label->fail(detail::concat("has ", id2label->size(), " entries, num_labels = ", c.num_labels));
            }
            c.id2label.assign(static_cast<std::size_t>(c.num_labels), std::string());
            std::vector<bool> seen(static_cast<std::size_t>(c.num_labels), false);
            for (auto const& m : id2label->as_object()) {
                index_t k = -1;
                auto const r = std::from_chars(m.key.data(), m.key.data() + m.key.size(), k);
                if (r.ec != std::errc{} || r.ptr != m.key.data() + m.key.size() || k < 0 || k >= c.num_labels ||
                    seen[static_cast<std::size_t>(k)]) {
                    id2label->fail(detail::concat("key \"", m.key, "\" is not a class index in [0, ", c.num_labels, ") (or repeats)"));
                }
                seen[static_cast<std::size_t>(k)] = true;
                c.id2label[static_cast<std::size_t>(k)] = m.value.as_string();
            }
        } else {
            for (index_t k = 0; k < c.num_labels; ++k) c.id2label.push_back(detail::concat("LABEL_", k));
        }
        c.problem_type = c.num_labels == 1 ? "regression" : "single_label_classification";
        if (io::json const* p = doc.find("problem_type"); p != nullptr && !p->is_null()) {
            std::string const& t = p->as_string();
            if (t != "regression" && t != "single_label_classification") {
                p->fail(detail::concat("\"", t, "\" is not supported (regression or single_label_classification)"));
            }
            if ((t == "regression") != (c.num_labels == 1)) {
                p->fail(detail::concat("\"", t, "\" is inconsistent with num_labels = ", c.num_labels,
                                       " (regression has exactly one output)"));
            }
            c.problem_type = t;
        }
        c.task = doc.value<std::string>("finetuning_task", "");
        io::json const* deq = doc.find("deq");
        if (deq == nullptr || deq->is_null()) return c;
        if (!deq->is_object()) deq->fail(detail::concat("expected an object, got ", deq->type_name()));
        c.has_deq_section = true;
        io::json const& mode = deq->at("attention_mode");
        c.attention_mode_text = mode.as_string();
        try {
            c.mode = parse_attention_mode(c.attention_mode_text);
        } catch (invalid_argument const& e) {
            mode.fail(e.what());
        }
        if (io::json const* t = deq->find("task"); t != nullptr && !t->is_null()) c.task = t->as_string();
        if (io::json const* m = deq->find("max_seq_length"); m != nullptr && !m->is_null()) {
            c.max_seq_length = m->as_int(1, config.max_position_embeddings);
        }
        auto choice = [&](char const* key, std::string fallback, std::initializer_list<char const*> allowed) {
            io::json const* v = deq->find(key);
            if (v == nullptr || v->is_null()) return fallback;
            std::string const& s = v->as_string();
            std::string list;
            for (char const* a : allowed) {
                if (s == a) return s;
                list += detail::concat(list.empty() ? "" : ", ", a);
            }
            v->fail(detail::concat("\"", s, "\" is not one of ", list));
        };
        c.train_padding = choice("train_padding", "batch", {"batch", "max_length"});
        c.eval_padding = choice("eval_padding", "none", {"none", "batch", "max_length"});
        if (io::json const* names = deq->find("threshold_tensors"); names != nullptr && !names->is_null()) {
            for (io::json const& n : names->as_array()) c.threshold_tensors.push_back(n.as_string());
            if (!c.threshold_tensors.empty() && static_cast<index_t>(c.threshold_tensors.size()) != 2 * config.num_hidden_layers) {
                names->fail(detail::concat("lists ", c.threshold_tensors.size(), " tensors, expected 2 per layer = ",
                                           2 * config.num_hidden_layers));
            }
        }
        if (c.mode.needs_predictor() && c.threshold_tensors.empty()) {
            deq->fail(detail::concat("attention mode \"", c.attention_mode_text,
                                     "\" runs the predictor but field 'threshold_tensors' is missing or empty"));
        }
        return c;
    }
};

}  // namespace deq::bert

namespace deq::detail {

/// Layer index and operand (0 = input_x_thresh, 1 = input_y_thresh) of a threshold tensor name
/// `...encoder.layer.N.<...>input_{x,y}_thresh`; false when the name does not have that form.
inline bool finetuned_threshold_slot(std::string_view name, index_t& layer, int& operand) {
    constexpr std::string_view x = "input_x_thresh", y = "input_y_thresh", key = "encoder.layer.";
    if (name.ends_with(x)) {
        operand = 0;
    } else if (name.ends_with(y)) {
        operand = 1;
    } else {
        return false;
    }
    std::size_t const at = name.find(key);
    if (at == std::string_view::npos) return false;
    char const* first = name.data() + at + key.size();
    char const* last = name.data() + name.size();
    auto const r = std::from_chars(first, last, layer);
    return r.ec == std::errc{} && r.ptr != last && *r.ptr == '.';
}

}  // namespace deq::detail

namespace deq::bert {

/// A fine-tuned sequence classification / regression model: encoder, pooler, `classifier` head and the
/// settings of its config.json.
class sequence_classifier {
public:
    /// Loads an exported model folder (see the file documentation).
    /// @param dir     The folder holding config.json and model.safetensors.
    /// @param options Whether to check the encoder's and the head's weights for NaN and infinity.
    /// @return The model with its thresholds (predictor modes) set from the checkpoint tensors named in
    ///         `deq.threshold_tensors`; deq::format_error naming the file and field / tensor otherwise
    ///         (missing pooler, head rows != num_labels, a threshold name that is not of the form
    ///         `...encoder.layer.N....input_{x,y}_thresh`, a layer without both thresholds, ...);
    ///         deq::numeric_error naming the file, tensor and index of a non-finite weight.
    static sequence_classifier load(std::filesystem::path const& dir, weight_load_options const& options = {}) {
        std::filesystem::path const config_file = dir / "config.json";
        io::json const doc = io::json::parse_file(config_file);
        bert_config config = bert_config::from_json(doc);
        finetuned_config fc = finetuned_config::from_json(doc, config);
        std::filesystem::path const weights_file = dir / "model.safetensors";
        io::safetensors_file const file = io::safetensors_file::open(weights_file);
        bert_weights weights = bert_weights::load(file, config, options);
        if (!weights.pooler) {
            throw format_error(detail::concat("deq: ", file.source(), ": tensor '", weights.prefix,
                                              "pooler.dense.weight' is missing (sequence classification uses the pooler)"));
        }
        classification_head head = classification_head::load(file, config, options);
        if (head.num_labels() != fc.num_labels) {
            throw format_error(detail::concat("deq: ", file.source(), ": tensor 'classifier.weight' has ", head.num_labels(),
                                              " rows but ", config_file.string(), " says num_labels = ", fc.num_labels));
        }
        std::optional<predictor_thresholds> thresholds;
        if (!fc.threshold_tensors.empty()) {
            predictor_thresholds t;
            t.origin = detail::concat("checkpoint ", weights_file.string(), " (deq.threshold_tensors)");
            t.layers.assign(static_cast<std::size_t>(config.num_hidden_layers), quantizer_thresholds{});
            std::vector<int> seen(static_cast<std::size_t>(config.num_hidden_layers) * 2, 0);
            for (std::size_t i = 0; i < fc.threshold_tensors.size(); ++i) {
                std::string const& name = fc.threshold_tensors[i];
                index_t layer = -1;
                int operand = 0;
                if (!detail::finetuned_threshold_slot(name, layer, operand) || layer < 0 || layer >= config.num_hidden_layers) {
                    throw format_error(detail::concat("deq: ", config_file.string(), ": field 'deq.threshold_tensors[", i, "]' = \"", name,
                                                      "\" is not '...encoder.layer.N....input_x_thresh' or '...input_y_thresh' with N in [0, ",
                                                      config.num_hidden_layers, ")"));
                }
                int& s = seen[static_cast<std::size_t>(layer * 2 + operand)];
                if (s != 0) {
                    throw format_error(detail::concat("deq: ", config_file.string(), ": field 'deq.threshold_tensors[", i, "]' = \"", name,
                                                      "\" names layer ", layer, "'s ", operand == 0 ? "input_x_thresh" : "input_y_thresh",
                                                      " a second time"));
                }
                s = 1;
                float const v = detail::bert_read_threshold(file, name);
                auto& slot = t.layers[static_cast<std::size_t>(layer)];
                (operand == 0 ? slot.input_x_thresh : slot.input_y_thresh) = v;
            }
            thresholds = std::move(t);
        }
        sequence_classifier c(bert_model(std::move(config), std::move(weights), weights_file.string()), std::move(head), std::move(fc));
        if (thresholds) c.model_.set_thresholds(std::move(*thresholds));
        c.model_.set_sources({config_file.string(), weights_file.string(), {}});
        return c;
    }

    /// A classifier from parts.
    /// @param model    The encoder (with a pooler).
    /// @param head     The head (num_labels rows).
    /// @param settings The settings.
    /// @throws deq::invalid_argument when the encoder has no pooler or the head's size disagrees.
    sequence_classifier(bert_model model, classification_head head, finetuned_config settings)
        : model_(std::move(model)), head_(std::move(head)), settings_(std::move(settings)) {
        if (!model_.weights().pooler) detail::throw_invalid_argument("model.weights().pooler", "<none>", "a classifier needs the pooler");
        if (head_.num_labels() != settings_.num_labels) {
            detail::throw_invalid_argument("head.num_labels()", head_.num_labels(),
                                           detail::concat("must equal settings.num_labels = ", settings_.num_labels));
        }
        if (head_.classifier.in_features() != model_.config().hidden_size) {
            detail::throw_invalid_argument("head.classifier.in_features()", head_.classifier.in_features(),
                                           detail::concat("must equal hidden_size = ", model_.config().hidden_size));
        }
    }

    /// @return The encoder.
    bert_model const& model() const noexcept { return model_; }
    /// @return The encoder (e.g. to set other thresholds).
    bert_model& model() noexcept { return model_; }
    /// @return The head.
    classification_head const& head() const noexcept { return head_; }
    /// @return The config.json settings.
    finetuned_config const& settings() const noexcept { return settings_; }

    /// Logits of a batch: `classifier(pooler(encoder(input)))`.
    /// @tparam T     Activation type: float (default) or double (reference precision, bert_model::forward).
    /// @tparam Space A host execution space.
    /// @param space   Execution space.
    /// @param input   The batch.
    /// @param mode    Attention mode.
    /// @param options Forward options (masks for traces, ...).
    /// @param out     When not null, receives the encoder output (statistics, masks).
    /// @return The logits, [B, num_labels].
    /// @throws what bert_model::forward throws.
    template <activation T = float, exec::host_execution_space Space>
    tensor<T, 2> logits(Space const& space, model_input const& input, attention_mode const& mode, forward_options const& options = {},
                        basic_forward_output<T>* out = nullptr) const {
        basic_forward_output<T> f = model_.template forward<T>(space, input, mode, options);
        tensor<T, 2> const pooled = pooler_output(space, f.last_hidden_state.cview(), *model_.weights().pooler);
        tensor<T, 2> result = head_.logits(pooled.cview());
        if (out != nullptr) *out = std::move(f);
        return result;
    }

private:
    bert_model model_;
    classification_head head_;
    finetuned_config settings_;
};

}  // namespace deq::bert
