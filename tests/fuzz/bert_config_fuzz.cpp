// Fuzz target: deq::bert::bert_config::from_json / load and deq::bert::finetuned_config::from_json
// (a model folder's config.json).
// Input: a config.json. Properties: from_json returns a configuration that validates or throws
// deq::format_error naming the field; load() of the same bytes agrees; the fine-tuning settings
// (read with the file's geometry and with the default one) are consistent: one label name per
// class, regression iff one label, an attention mode whose spec reads back, max_seq_length within
// the position embeddings, two threshold tensors per layer when any.
#include <cstdint>
#include <string>

#include <deq/bert/config.hpp>
#include <deq/bert/finetuned.hpp>
#include <deq/io/json.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::bert::bert_config;
using deq::bert::finetuned_config;

void check_finetuned(deq::io::json const& doc, bert_config const& config) {
    auto const c = deq_fuzz::attempt([&] { return finetuned_config::from_json(doc, config); });
    if (!c) return;
    DEQ_FUZZ_CHECK(c->num_labels >= 1 && c->id2label.size() == static_cast<std::size_t>(c->num_labels));
    DEQ_FUZZ_CHECK(c->is_regression() == (c->num_labels == 1));
    DEQ_FUZZ_CHECK(c->max_seq_length >= 1);
    deq::io::json const* deq = doc.find("deq");
    if (deq != nullptr && deq->is_object() && deq->find("max_seq_length") != nullptr && !deq->at("max_seq_length").is_null()) {
        DEQ_FUZZ_CHECK(c->max_seq_length <= config.max_position_embeddings);
    }
    DEQ_FUZZ_CHECK(c->threshold_tensors.empty() || c->threshold_tensors.size() == 2 * static_cast<std::size_t>(config.num_hidden_layers));
    DEQ_FUZZ_CHECK(!c->mode.needs_predictor() || !c->threshold_tensors.empty());
    DEQ_FUZZ_CHECK(c->train_padding == "batch" || c->train_padding == "max_length");
    DEQ_FUZZ_CHECK(c->eval_padding == "none" || c->eval_padding == "batch" || c->eval_padding == "max_length");
    DEQ_FUZZ_CHECK(deq::bert::parse_attention_mode(c->mode.spec()).spec() == c->mode.spec());
    for (std::string const& name : c->threshold_tensors) {
        deq::index_t layer = -1;
        int operand = -1;
        if (deq::detail::finetuned_threshold_slot(name, layer, operand)) DEQ_FUZZ_CHECK(operand == 0 || operand == 1);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text = deq_fuzz::as_text(data, size);
    auto const doc = deq_fuzz::attempt([&] { return deq::io::json::parse(text, "config.json"); });
    if (!doc) return 0;
    auto const config = deq_fuzz::attempt([&] { return bert_config::from_json(*doc); });
    if (config) {
        config->validate();
        DEQ_FUZZ_CHECK(config->head_dim() * config->num_attention_heads == config->hidden_size);
        auto const file = deq_fuzz::write_scratch_file("model/config.json", text);
        bert_config const loaded = bert_config::load(file.parent_path());
        DEQ_FUZZ_CHECK(loaded.hidden_size == config->hidden_size && loaded.num_hidden_layers == config->num_hidden_layers &&
                       loaded.vocab_size == config->vocab_size && loaded.pad_token_id == config->pad_token_id &&
                       loaded.layer_norm_eps == config->layer_norm_eps);
        check_finetuned(*doc, *config);
    }
    check_finetuned(*doc, bert_config{});
    return 0;
}
