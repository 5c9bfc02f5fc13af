// deq::bert::check_vocabulary and deq::bert::load_model_folder: a vocabulary that does not fit the model's token
// embeddings (larger, much smaller, missing special tokens) is an error or a warning naming the files, and a
// token id out of range in the forward pass names the vocabulary checked against the model.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <deq/bert/model_folder.hpp>
#include <deq/bert/vocabulary_check.hpp>
#include <deq/exec/serial.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"
#include "tiny_model.hpp"

using bert_test::index_t;
using deq_test::message_of;

namespace {

std::vector<std::string> const special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// vocab.txt of @p size tokens: the special tokens but @p drop, then w5, w6, ...
std::string vocab_text(index_t size, std::vector<std::string> const& drop = {}) {
    std::string text;
    index_t n = 0;
    for (auto const& t : special_tokens) {
        if (std::find(drop.begin(), drop.end(), t) != drop.end()) continue;
        text += t + "\n";
        ++n;
    }
    for (index_t i = 5; n < size; ++i, ++n) text += "w" + std::to_string(i) + "\n";
    return text;
}

// A tiny BERT folder whose embedding matrix has @p vocab_size rows and whose vocab.txt has @p tokens entries.
void write_folder(deq_test::scratch_dir const& dir, index_t vocab_size, index_t tokens, std::vector<std::string> const& drop = {}) {
    auto c = bert_test::tiny_config();
    c.vocab_size = vocab_size;
    bert_test::to_writer(bert_test::tiny_weights(c), "").write(dir.path() / "model.safetensors");
    dir.write("config.json", R"({"vocab_size": )" + std::to_string(vocab_size) + R"(, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 24, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64, "type_vocab_size": 2})");
    dir.write("vocab.txt", vocab_text(tokens, drop));
}

std::string path_of(deq_test::scratch_dir const& dir, char const* name) { return (dir.path() / name).string(); }

void check_names_files(std::string const& msg, deq_test::scratch_dir const& dir) {
    INFO(msg);
    CHECK(msg.find(path_of(dir, "vocab.txt")) != std::string::npos);
    CHECK(msg.find(path_of(dir, "config.json")) != std::string::npos);
    CHECK(msg.find(path_of(dir, "model.safetensors")) != std::string::npos);
}

}  // namespace

TEST_CASE("check_vocabulary: a vocabulary much smaller than vocab_size is a warning, an error when strict") {
    deq_test::scratch_dir dir("vocab_small");
    write_folder(dir, 100, 10);
    auto const loaded = deq::bert::load_model_folder(dir.path());
    REQUIRE(loaded.warnings.size() == 1);
    std::string const& w = loaded.warnings[0];
    check_names_files(w, dir);
    CHECK_MESSAGE(w.find("has 10 tokens, 90 fewer than the model's 100 token embeddings") != std::string::npos, w);
    CHECK_MESSAGE(w.find("64 padding rows") != std::string::npos, w);
    CHECK(loaded.tokenizer.vocabulary().size() == 10);

    deq::bert::model_load_options strict;
    strict.vocabulary.strict = true;
    std::string const msg = message_of<deq::format_error>([&] { (void)deq::bert::load_model_folder(dir.path(), strict); });
    check_names_files(msg, dir);
    CHECK_MESSAGE(msg.find("has 10 tokens, 90 fewer") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("strict") != std::string::npos, msg);

    // Within the padding margin (checkpoints that pad the embedding matrix): no warning, strict or not.
    write_folder(dir, 100, 36);
    CHECK(deq::bert::load_model_folder(dir.path(), strict).warnings.empty());
    write_folder(dir, 100, 100);
    CHECK(deq::bert::load_model_folder(dir.path(), strict).warnings.empty());
    deq::bert::model_load_options tight;
    tight.vocabulary.padding_margin = 0;
    write_folder(dir, 100, 99);
    REQUIRE(deq::bert::load_model_folder(dir.path(), tight).warnings.size() == 1);
    CHECK(deq::bert::load_model_folder(dir.path(), tight).warnings[0].find("1 fewer") != std::string::npos);
    tight.vocabulary.padding_margin = -1;
    CHECK_THROWS_WITH_AS((void)deq::bert::load_model_folder(dir.path(), tight), doctest::Contains("'padding_margin' = -1"),
                         deq::invalid_argument);
}

TEST_CASE("check_vocabulary: a vocabulary larger than the embedding matrix names vocab.txt, config.json and model.safetensors") {
    deq_test::scratch_dir dir("vocab_large");
    write_folder(dir, 23, 30);
    std::string const msg = message_of<deq::format_error>([&] { (void)deq::bert::load_model_folder(dir.path()); });
    check_names_files(msg, dir);
    CHECK_MESSAGE(msg.find("has 30 tokens but the model has 23 token embeddings") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("embeddings.word_embeddings.weight") != std::string::npos, msg);
    // bert_tokenizer::from_directory alone cannot know: the check is what catches it.
    CHECK(deq::text::bert_tokenizer::from_directory(dir.path()).vocabulary().size() == 30);
}

TEST_CASE("check_vocabulary: each missing special token is an error naming the vocabulary file and the token") {
    deq_test::scratch_dir dir("vocab_special");
    std::vector<std::pair<std::string, std::string>> const roles = {
        {"[PAD]", "pad_token"}, {"[UNK]", "unk_token"}, {"[CLS]", "cls_token"}, {"[SEP]", "sep_token"}, {"[MASK]", "mask_token"}};
    for (auto const& [token, role] : roles) {
        write_folder(dir, 23, 20, {token});
        std::string const msg = message_of<deq::format_error>([&] { (void)deq::bert::load_model_folder(dir.path()); });
        INFO(msg);
        CHECK(msg.find("deq: " + path_of(dir, "vocab.txt") + ": ") == 0);
        CHECK(msg.find("'" + token + "' (" + role + ")") != std::string::npos);
        for (auto const& [other, other_role] : roles)
            if (other != token) CHECK(msg.find(other) == std::string::npos);
    }
    // Every missing token is listed, not only the first.
    write_folder(dir, 23, 20, {"[CLS]", "[MASK]"});
    std::string msg = message_of<deq::format_error>([&] { (void)deq::bert::load_model_folder(dir.path()); });
    CHECK_MESSAGE(msg.find("'[CLS]' (cls_token), '[MASK]' (mask_token)") != std::string::npos, msg);
    // The tokens tokenizer_config.json names are the ones required.
    write_folder(dir, 23, 20);
    dir.write("tokenizer_config.json", R"({"unk_token": {"content": "<unk>"}})");
    msg = message_of<deq::format_error>([&] { (void)deq::bert::load_model_folder(dir.path()); });
    CHECK_MESSAGE(msg.find("'<unk>' (unk_token)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("[UNK]") == std::string::npos, msg);
}

TEST_CASE("a token id out of range names the vocabulary checked against the model") {
    deq_test::scratch_dir dir("vocab_ids");
    write_folder(dir, 23, 23);
    auto loaded = deq::bert::load_model_folder(dir.path());
    CHECK(loaded.warnings.empty());
    auto const& sources = loaded.model.sources();
    CHECK(sources.config == path_of(dir, "config.json"));
    CHECK(sources.weights == path_of(dir, "model.safetensors"));
    CHECK(sources.vocabulary == path_of(dir, "vocab.txt"));
    auto in = bert_test::tiny_input(loaded.model.config(), {4});
    in.input_ids(0, 2) = 23;
    auto const run = [&](deq::bert::bert_model const& m) {
        return message_of<deq::invalid_argument>([&] { (void)m.forward(deq::exec::serial{}, in, deq::bert::attention_mode::dense()); });
    };
    std::string msg = run(loaded.model);
    CHECK_MESSAGE(msg.find("'input_ids[0, 2]' = 23: must be in [0, vocab_size = 23)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("vocabulary '" + path_of(dir, "vocab.txt") + "'") != std::string::npos, msg);
    // A model no vocabulary was checked against names none.
    msg = run(deq::bert::bert_model::load(dir.path()));
    CHECK_MESSAGE(msg.find("'input_ids[0, 2]' = 23") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("vocab.txt") == std::string::npos, msg);
    // check_vocabulary on a tokenizer records it as well.
    auto model = deq::bert::bert_model::load(dir.path());
    auto const tokenizer = deq::text::bert_tokenizer::from_directory(dir.path());
    CHECK(deq::bert::check_vocabulary(tokenizer, model).empty());
    CHECK(model.sources().vocabulary == path_of(dir, "vocab.txt"));
    CHECK(run(model).find(path_of(dir, "vocab.txt")) != std::string::npos);
}

TEST_CASE("check_vocabulary against a configuration: model built in code, embedding rows, no file names") {
    auto c = bert_test::tiny_config();
    c.vocab_size = 1000;
    auto const v = deq::text::vocab::from_tokens(special_tokens, "tokens.txt");
    auto const warnings = deq::bert::check_vocabulary(v, {}, c, 1000, {});
    REQUIRE(warnings.size() == 1);
    CHECK_MESSAGE(warnings[0].find("deq: tokens.txt: the vocabulary has 5 tokens, 995 fewer") != std::string::npos, warnings[0]);
    CHECK_MESSAGE(warnings[0].find("vocab_size in the model's configuration") != std::string::npos, warnings[0]);
    CHECK_THROWS_WITH_AS((void)deq::bert::check_vocabulary(v, {}, c, 999, {}), doctest::Contains("999 token embeddings but vocab_size = 1000"),
                         deq::shape_error);
    // A bert_model built in code: its origin names the weights.
    auto const small = bert_test::tiny_config();
    deq::bert::bert_model model(small, bert_test::tiny_weights(small), "in-memory weights");
    auto const big = deq::text::vocab::parse(vocab_text(24), "big.txt");
    std::string const msg = message_of<deq::format_error>([&] { (void)deq::bert::check_vocabulary(big, {}, model); });
    CHECK_MESSAGE(msg.find("weights 'in-memory weights'") != std::string::npos, msg);
    CHECK(model.sources().vocabulary.empty());  // a failed check records nothing
}
