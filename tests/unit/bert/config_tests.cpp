// deq::bert::bert_config: config.json parsing and validation; deq::bert::parse_attention_mode.
#include <doctest/doctest.h>

#include <string>

#include <deq/bert/attention_mode.hpp>
#include <deq/bert/config.hpp>

namespace {

std::string const minilm_json = R"({
  "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
  "hidden_size": 384, "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
  "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
  "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": 30522})";

deq::bert::bert_config parse(std::string const& text) {
    return deq::bert::bert_config::from_json(deq::io::json::parse(text, "model/config.json"));
}

std::string replace(std::string s, std::string const& from, std::string const& to) {
    auto const pos = s.find(from);
    REQUIRE(pos != std::string::npos);
    return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("bert_config reads a MiniLM config.json") {
    auto const c = parse(minilm_json);
    CHECK(c.vocab_size == 30522);
    CHECK(c.hidden_size == 384);
    CHECK(c.num_hidden_layers == 6);
    CHECK(c.num_attention_heads == 12);
    CHECK(c.head_dim() == 32);
    CHECK(c.intermediate_size == 1536);
    CHECK(c.max_position_embeddings == 512);
    CHECK(c.type_vocab_size == 2);
    CHECK(c.layer_norm_eps == doctest::Approx(1e-12));
    CHECK(c.hidden_act == "gelu");
}

TEST_CASE("bert_config errors name the file and the field") {
    auto expect = [](std::string const& text, std::string const& needle) {
        try {
            parse(text);
            FAIL("expected deq::format_error");
        } catch (deq::format_error const& e) {
            std::string const what = e.what();
            CHECK_MESSAGE(what.find("model/config.json") != std::string::npos, what);
            CHECK_MESSAGE(what.find(needle) != std::string::npos, what);
        }
    };
    expect(replace(minilm_json, R"("hidden_size": 384,)", ""), "hidden_size");
    expect(replace(minilm_json, R"("hidden_act": "gelu")", R"("hidden_act": "relu")"), "hidden_act");
    expect(replace(minilm_json, R"("hidden_act": "gelu")", R"("hidden_act": "gelu_new")"), "gelu_new");
    expect(replace(minilm_json, R"("num_attention_heads": 12)", R"("num_attention_heads": 5)"), "num_attention_heads");
    expect(replace(minilm_json, R"("num_hidden_layers": 6)", R"("num_hidden_layers": "6")"), "num_hidden_layers");
    expect(replace(minilm_json, R"("num_hidden_layers": 6)", R"("num_hidden_layers": 0)"), "num_hidden_layers");
    expect(replace(minilm_json, R"("vocab_size": 30522)", R"("vocab_size": 1.5)"), "vocab_size");
    expect(replace(minilm_json, R"("layer_norm_eps": 1e-12)", R"("layer_norm_eps": 0)"), "layer_norm_eps");
    expect(replace(minilm_json, R"("position_embedding_type": "absolute")", R"("position_embedding_type": "relative_key")"),
           "position_embedding_type");
    expect("[1, 2]", "object");
    // Extents whose weight matrices could not be counted (2^40 x 2^40 embeddings).
    std::string const huge = replace(replace(minilm_json, R"("vocab_size": 30522)", R"("vocab_size": 1099511627776)"),
                                     R"("hidden_size": 384,)", R"("hidden_size": 1099511627776,)");
    expect(huge, "field 'vocab_size': vocab_size x hidden_size = 1099511627776 x 1099511627776");
    CHECK_THROWS_AS(deq::bert::bert_config::load("/nonexistent/deq/config.json"), deq::format_error);
}

TEST_CASE("bert_config::validate names the field") {
    deq::bert::bert_config c;
    c.validate();
    CHECK(c.head_dim() == 64);
    c.hidden_size = 770;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("hidden_size"), deq::invalid_argument);
    c = {};
    c.hidden_act = "relu";
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("hidden_act"), deq::invalid_argument);
    c = {};
    c.layer_norm_eps = -1;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("layer_norm_eps"), deq::invalid_argument);
    c = {};
    c.type_vocab_size = 0;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("type_vocab_size"), deq::invalid_argument);
    c = {};
    c.hidden_size = 12 * (deq::index_t{1} << 40);
    c.num_attention_heads = 12;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("size overflow: bert_config query-key-value"), deq::shape_error);
}

TEST_CASE("parse_attention_mode: every mode of the STS-B table") {
    using deq::bert::attention_mode;
    using deq::bert::parse_attention_mode;
    auto const dense = parse_attention_mode("dense");
    CHECK(dense.type == attention_mode::kind::dense);
    CHECK_FALSE(dense.needs_predictor());

    for (char const* name : {"longformer", "bigbird", "fixed", "hugebird"}) {
        auto const m = parse_attention_mode(name);
        CHECK(m.type == attention_mode::kind::static_mask);
        CHECK_FALSE(m.needs_predictor());
    }
    CHECK(parse_attention_mode("longformer").pattern.type == deq::static_pattern::kind::longformer);
    CHECK(parse_attention_mode("static:fixed").pattern.type == deq::static_pattern::kind::fixed);
    CHECK(parse_attention_mode("static:BigBirdSparsityConfig").pattern.type == deq::static_pattern::kind::bigbird);
    CHECK(parse_attention_mode("static:dense").type == attention_mode::kind::dense);

    auto const s = parse_attention_mode("sanger:0.02");
    CHECK(s.type == attention_mode::kind::sanger);
    CHECK(s.needs_predictor());
    CHECK(s.prune == deq::mask_rule::probability(0.02));

    auto const d = parse_attention_mode("deq:adamax_nb80");
    CHECK(d.type == attention_mode::kind::deq);
    CHECK(d.refine == deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::sequence, true));
    CHECK(parse_attention_mode("deq:adamax_ns80").refine == deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::row, true));
    CHECK(parse_attention_mode("deq:refine_2e-2").refine == deq::mask_rule::probability(0.02));
    CHECK(parse_attention_mode("DEQ:adamax:0.7:head").refine == deq::mask_rule::adaptive_maximum(0.7, deq::max_granularity::head, true));

    auto const t = parse_attention_mode("  three:sanger:0.002+adamax_nb80 ");
    CHECK(t.type == attention_mode::kind::three_level);
    CHECK(t.prune == deq::mask_rule::probability(0.002));
    CHECK(t.refine == deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::sequence, true));

    // spec() reads back to the same mode.
    for (char const* text : {"dense", "longformer", "bigbird", "fixed", "sanger:0.02", "sanger:0.002", "deq:adamax_nb80",
                             "deq:adamax_ns80", "deq:refine_2e-2", "three:sanger:0.002+adamax_nb80"}) {
        auto const m = parse_attention_mode(text);
        auto const back = parse_attention_mode(m.spec());
        CHECK_MESSAGE(back.spec() == m.spec(), text);
        CHECK(back.type == m.type);
        CHECK(back.prune == m.prune);
        CHECK(back.refine == m.refine);
        CHECK(!m.describe().empty());
    }
}

TEST_CASE("attention_mode::spec() of every static pattern name reads back to the same pattern") {
    // Fuzz finding (tests/fuzz/corpus/attention_mode/seed05): "hugebird" (BigBird, block 32) was
    // written as "static:bigbird", which reads back as BigBird with block 16.
    using deq::bert::parse_attention_mode;
    CHECK(parse_attention_mode("hugebird").spec() == "static:hugebird");
    for (char const* text : {"longformer", "bigbird", "fixed", "hugebird", "static:BigBirdSparsityConfig", "static:BSLongformer"}) {
        auto const m = parse_attention_mode(text);
        auto const back = parse_attention_mode(m.spec());
        CHECK_MESSAGE(back.pattern == m.pattern, text);
        CHECK_MESSAGE(back.describe() == m.describe(), text);
    }
    // A pattern with parameters of its own has no name: its family is written.
    CHECK(deq::bert::attention_mode::static_sparse(deq::static_pattern::bigbird(8)).spec() == "static:bigbird");
}

TEST_CASE("parse_attention_mode rejects unknown text with invalid_argument naming it") {
    using deq::bert::parse_attention_mode;
    for (char const* bad : {"", "sparse", "sanger", "sanger:", "sanger:abc", "sanger:2", "deq:", "deq:foo", "three:sanger:0.02",
                            "three:+adamax_nb80", "three:sanger:0.02+", "static:", "static:diagonal", "longformer:3"}) {
        try {
            parse_attention_mode(bad);
            FAIL("expected deq::invalid_argument for '" << bad << "'");
        } catch (deq::invalid_argument const& e) {
            CHECK_MESSAGE(std::string(e.what()).find(std::string("\"") + bad + "\"") != std::string::npos, e.what());
        }
    }
    CHECK_THROWS_AS(deq::bert::attention_mode::sanger(-0.1), deq::invalid_argument);
}
