// Equivalence of deq::bert with Hugging Face transformers on the same weights (cases written by
// python/deq_reference/bert_hidden_states.py, see tests/bert/CMakeLists.txt):
//  - all-MiniLM-L6-v2 on 16 real STS-B dev batches: every layer's hidden states (max abs error <= 1e-4),
//    the pooler output, and the mean-pooled normalised sentence embeddings of sentence-transformers;
//  - a random BERT-base-geometry model (768 hidden, 12 heads, 2 layers, vocab 1000, `bert.` names, quantizer
//    thresholds in the checkpoint): hidden states, pooler, classification / span / masked-LM heads;
//  - the sparse and DEQ modes against a PyTorch forward whose attention is the independent reference
//    implementation (python/deq_reference/reference.py), with the same thresholds;
//  - the same in double precision (forward<double> against transformers' model.double() and the reference
//    forward in float64): dense and every mode to 1e-9.
// A summary table is printed and written to $DEQ_BERT_CASES/summary.md.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <deq/bert/encoder.hpp>
#include <deq/bert/heads.hpp>
#include <deq/bert/pooling.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/safetensors.hpp>

namespace fs = std::filesystem;
using deq::index_t;

namespace {

fs::path cases_dir() {
    char const* env = std::getenv("DEQ_BERT_CASES");
    REQUIRE_MESSAGE(env != nullptr, "set DEQ_BERT_CASES to the output folder of bert_hidden_states.py (ctest does)");
    return env;
}

std::ostringstream& summary() {
    static std::ostringstream s;
    return s;
}

void flush_summary() {
    std::ofstream(cases_dir() / "summary.md") << summary().str();
}

deq::bert::model_input read_input(deq::io::safetensors_file const& f, std::string const& p) {
    auto const ids = f.get<std::int64_t, 2>(p + ".input_ids");
    auto const types = f.get<std::int64_t, 2>(p + ".token_type_ids");
    auto const mask = f.get<std::int64_t, 2>(p + ".attention_mask");
    index_t const B = ids.extent(0), L = ids.extent(1);
    deq::bert::model_input in;
    in.input_ids = deq::tensor<std::int32_t, 2>({B, L});
    in.token_type_ids = deq::tensor<std::int32_t, 2>({B, L});
    in.attention_mask = deq::tensor<std::uint8_t, 2>({B, L});
    for (index_t b = 0; b < B; ++b)
        for (index_t l = 0; l < L; ++l) {
            in.input_ids(b, l) = static_cast<std::int32_t>(ids(b, l));
            in.token_type_ids(b, l) = static_cast<std::int32_t>(types(b, l));
            in.attention_mask(b, l) = static_cast<std::uint8_t>(mask(b, l));
        }
    return in;
}

/// Largest |a - b| over the real tokens (padded rows are excluded only when @p real_only).
template <class T>
double max_err3(deq::tensor<T, 3> const& a, deq::tensor<T, 3> const& b, deq::bert::model_input const* real_only = nullptr) {
    REQUIRE(a.extent(0) == b.extent(0));
    REQUIRE(a.extent(1) == b.extent(1));
    REQUIRE(a.extent(2) == b.extent(2));
    double m = 0;
    for (index_t i = 0; i < a.extent(0); ++i)
        for (index_t l = 0; l < a.extent(1); ++l) {
            if (real_only && !real_only->attention_mask(i, l)) continue;
            for (index_t t = 0; t < a.extent(2); ++t) m = std::max(m, double(std::fabs(a(i, l, t) - b(i, l, t))));
        }
    return m;
}

template <class T>
double max_err2(deq::tensor<T, 2> const& a, deq::tensor<T, 2> const& b) {
    REQUIRE(a.extent(0) == b.extent(0));
    REQUIRE(a.extent(1) == b.extent(1));
    double m = 0;
    for (std::size_t i = 0; i < a.storage().size(); ++i) m = std::max(m, double(std::fabs(a.storage()[i] - b.storage()[i])));
    return m;
}

/// Layer n of a [layers + 1, B, L, H] hidden-states tensor.
template <class T>
deq::tensor<T, 3> layer_of(deq::tensor<T, 4> const& all, index_t n) {
    deq::tensor<T, 3> t({all.extent(1), all.extent(2), all.extent(3)});
    std::copy_n(all.data() + n * t.size(), t.size(), t.data());
    return t;
}

std::vector<std::string> split(std::string const& s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        std::size_t const p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
        if (p == std::string::npos) return out;
        start = p + 1;
    }
}

/// Mean-pooled, normalised embeddings of a last hidden state.
deq::tensor<float, 2> embed(deq::tensor<float, 3> const& hidden, deq::bert::model_input const& in) {
    auto e = deq::bert::mean_pooling(hidden.cview(), in.attention_mask.cview());
    deq::bert::l2_normalize(e.view());
    return e;
}

/// Compares every attention mode of a cases file with the PyTorch reference outputs. Mask decisions whose
/// compared value lies at the threshold may legitimately flip between two correct float implementations, so
/// the check is on the sentence embeddings (mean-pooled, normalised): cosine >= 0.999 for >= 99.5% of the
/// sequences; the max abs hidden-state error is reported.
void compare_modes(deq::bert::bert_model const& model, deq::io::safetensors_file const& f, index_t batches, std::string const& title) {
    auto const modes = split(f.metadata().at("modes"), ',');
    deq::exec::threads const space(2);
    summary() << "\n### " << title << ": modes vs the PyTorch reference\n\n"
              << "| mode | sequences | cos >= 0.999 | min cosine | max abs error (real tokens) |\n|---|---|---|---|---|\n";
    for (auto const& name : modes) {
        auto const mode = deq::bert::parse_attention_mode(name);
        index_t sequences = 0, agree = 0;
        double min_cos = 1, worst = 0;
        for (index_t i = 0; i < batches; ++i) {
            std::string const p = "b" + std::to_string(i);
            auto const in = read_input(f, p);
            auto const out = model.forward(space, in, mode);
            auto const ref = f.get_float<3>(p + ".mode." + name);
            worst = std::max(worst, max_err3(out.last_hidden_state, ref, &in));
            auto const a = embed(out.last_hidden_state, in), b = embed(ref, in);
            for (index_t s = 0; s < in.batch(); ++s) {
                double const c = deq::bert::cosine_similarity(deq::tensor_view<float const, 1>(a.data() + s * a.extent(1), {a.extent(1)}),
                                                              deq::tensor_view<float const, 1>(b.data() + s * b.extent(1), {b.extent(1)}));
                ++sequences;
                agree += c >= 0.999 ? 1 : 0;
                min_cos = std::min(min_cos, c);
            }
        }
        summary() << "| " << name << " | " << sequences << " | " << agree << " | " << std::setprecision(7) << min_cos << " | "
                  << std::setprecision(3) << worst << " |\n";
        MESSAGE(title << " mode " << name << ": " << agree << "/" << sequences << " embeddings with cosine >= 0.999, min cosine "
                      << min_cos << ", max abs hidden-state error " << worst);
        CHECK_MESSAGE(double(agree) >= 0.995 * double(sequences), name);
    }
}

/// all-MiniLM-L6-v2 (the cases' model_dir, or $DEQ_MINILM_DIR) with the predictor thresholds of the cases file.
deq::bert::bert_model minilm_with_case_thresholds(deq::io::safetensors_file const& f) {
    fs::path model_dir = f.metadata().at("model_dir");
    if (char const* env = std::getenv("DEQ_MINILM_DIR"); env != nullptr && *env) model_dir = env;
    auto model = deq::bert::bert_model::load(model_dir);
    auto const tx = f.get_float<1>("thresholds.input_x_thresh");
    auto const ty = f.get_float<1>("thresholds.input_y_thresh");
    deq::bert::predictor_thresholds t;
    for (index_t l = 0; l < tx.extent(0); ++l) t.layers.push_back({tx(l), ty(l)});
    model.set_thresholds(t);
    return model;
}

}  // namespace

TEST_CASE("all-MiniLM-L6-v2: hidden states, pooler and sentence embeddings match transformers") {
    auto const f = deq::io::safetensors_file::open(cases_dir() / "minilm_cases.safetensors");
    fs::path model_dir = f.metadata().at("model_dir");
    if (char const* env = std::getenv("DEQ_MINILM_DIR"); env != nullptr && *env) model_dir = env;
    auto const model = deq::bert::bert_model::load(model_dir);
    CHECK(model.weights().prefix.empty());
    CHECK_FALSE(model.thresholds().has_value());
    REQUIRE(model.weights().pooler.has_value());
    index_t const batches = std::stoll(f.metadata().at("batches"));
    index_t const single = std::stoll(f.metadata().at("single_batches"));
    deq::exec::threads const space(2);
    deq::bert::forward_options o;
    o.output_hidden_states = true;
    std::vector<double> layer_err(static_cast<std::size_t>(model.config().num_hidden_layers + 1), 0.0);
    double pooler_err = 0, emb_err = 0;
    index_t tokens = 0;
    for (index_t i = 0; i < batches; ++i) {
        std::string const p = "b" + std::to_string(i);
        auto const in = read_input(f, p);
        tokens += in.batch() * in.length();
        auto const out = model.forward(space, in, deq::bert::attention_mode::dense(), o);
        auto const ref = f.get_float<4>(p + ".hidden_states");
        REQUIRE(static_cast<index_t>(out.hidden_states.size()) == ref.extent(0));
        for (index_t n = 0; n < ref.extent(0); ++n) {
            double const e = max_err3(out.hidden_states[static_cast<std::size_t>(n)], layer_of(ref, n));
            layer_err[static_cast<std::size_t>(n)] = std::max(layer_err[static_cast<std::size_t>(n)], e);
            CHECK_MESSAGE(e <= 1e-4, p << " layer " << n << " max abs error " << e);
        }
        auto const pooled = deq::bert::pooler_output(space, out.last_hidden_state.cview(), *model.weights().pooler);
        pooler_err = std::max(pooler_err, max_err2(pooled, f.get_float<2>(p + ".pooler_output")));
        if (i < single) {
            double const e = max_err2(embed(out.last_hidden_state, in), f.get_float<2>(p + ".sentence_embedding"));
            emb_err = std::max(emb_err, e);
        }
    }
    CHECK(pooler_err <= 1e-4);
    CHECK(emb_err <= 1e-5);
    summary() << "## deq::bert vs transformers " << "\n\n### all-MiniLM-L6-v2, " << batches << " STS-B dev batches (" << tokens
              << " padded tokens)\n\n| output | max abs error |\n|---|---|\n";
    for (std::size_t n = 0; n < layer_err.size(); ++n) {
        summary() << "| hidden_states[" << n << "]" << (n == 0 ? " (embeddings)" : "") << " | " << std::setprecision(3) << layer_err[n] << " |\n";
    }
    summary() << "| pooler_output | " << pooler_err << " |\n| sentence embedding (mean pooling + normalize) | " << emb_err << " |\n";
    MESSAGE("MiniLM max abs errors: last layer " << layer_err.back() << ", pooler " << pooler_err << ", sentence embedding " << emb_err);
    flush_summary();
}

TEST_CASE("all-MiniLM-L6-v2: sparse and DEQ modes agree with the PyTorch reference") {
    auto const f = deq::io::safetensors_file::open(cases_dir() / "minilm_cases.safetensors");
    auto const model = minilm_with_case_thresholds(f);
    compare_modes(model, f, std::stoll(f.metadata().at("batches")), "all-MiniLM-L6-v2");
    flush_summary();
}

TEST_CASE("all-MiniLM-L6-v2 in double precision: transformers' model.double() and every mode of the PyTorch reference") {
    // forward<double> against PyTorch in float64: dense hidden states to 1e-9, and in every sparse / DEQ mode
    // the last hidden state of every real token to 1e-9: in double no 4-bit level or kept entry flips on these
    // batches, so the modes match exactly (to rounding), not only statistically as in float32.
    auto const f = deq::io::safetensors_file::open(cases_dir() / "minilm_cases.safetensors");
    auto const model = minilm_with_case_thresholds(f);
    index_t const batches = std::stoll(f.metadata().at("batches"));
    deq::exec::threads const space(2);
    deq::bert::forward_options o;
    o.output_hidden_states = true;
    double dense_err = 0, pooler_err = 0;
    for (index_t i = 0; i < batches; ++i) {
        std::string const p = "b" + std::to_string(i);
        auto const in = read_input(f, p);
        auto const out = model.forward<double>(space, in, deq::bert::attention_mode::dense(), o);
        auto const ref = f.get<double, 4>(p + ".f64.hidden_states");
        REQUIRE(static_cast<index_t>(out.hidden_states.size()) == ref.extent(0));
        for (index_t n = 0; n < ref.extent(0); ++n)
            dense_err = std::max(dense_err, max_err3(out.hidden_states[static_cast<std::size_t>(n)], layer_of(ref, n)));
        auto const pooled = deq::bert::pooler_output(space, out.last_hidden_state.cview(), *model.weights().pooler);
        pooler_err = std::max(pooler_err, max_err2(pooled, f.get<double, 2>(p + ".f64.pooler_output")));
    }
    CHECK_MESSAGE(dense_err <= 1e-9, "dense hidden states in double: max abs error " << dense_err);
    CHECK_MESSAGE(pooler_err <= 1e-9, "pooler in double: max abs error " << pooler_err);
    summary() << "\n### all-MiniLM-L6-v2 in double precision (forward<double> vs PyTorch float64)\n\n"
              << "| output | max abs error (real tokens) |\n|---|---|\n| hidden states, dense (all layers) | " << std::setprecision(3)
              << dense_err << " |\n| pooler_output | " << pooler_err << " |\n";
    for (auto const& name : split(f.metadata().at("modes"), ',')) {
        auto const mode = deq::bert::parse_attention_mode(name);
        double worst = 0;
        for (index_t i = 0; i < batches; ++i) {
            std::string const p = "b" + std::to_string(i);
            auto const in = read_input(f, p);
            auto const out = model.forward<double>(space, in, mode);
            worst = std::max(worst, max_err3(out.last_hidden_state, f.get<double, 3>(p + ".f64.mode." + name), &in));
        }
        summary() << "| last hidden state, " << name << " | " << worst << " |\n";
        MESSAGE("double precision, mode " << name << ": max abs error " << worst);
        CHECK_MESSAGE(worst <= 1e-9, name << ": max abs error " << worst);
    }
    flush_summary();
}

TEST_CASE("random BERT-base geometry: hidden states, heads, checkpoint thresholds and modes") {
    fs::path const dir = cases_dir();
    auto const f = deq::io::safetensors_file::open(dir / "random_base_cases.safetensors");
    auto const model = deq::bert::bert_model::load(dir / "random_base");
    auto const& c = model.config();
    CHECK(c.hidden_size == 768);
    CHECK(c.num_attention_heads == 12);
    CHECK(c.intermediate_size == 3072);
    CHECK(model.weights().prefix == "bert.");
    REQUIRE(model.thresholds().has_value());
    auto const ckpt = deq::io::safetensors_file::open(dir / "random_base" / "model.safetensors");
    for (index_t l = 0; l < c.num_hidden_layers; ++l) {
        std::string const b = "bert.encoder.layer." + std::to_string(l) + ".attention.self.quant_matmul.";
        CHECK(model.thresholds()->config(l).threshold_q == double(ckpt.get_scalar<float>(b + "input_x_thresh")));
        CHECK(model.thresholds()->config(l).threshold_k == double(ckpt.get_scalar<float>(b + "input_y_thresh")));
    }
    auto const classifier = deq::bert::classification_head::load(ckpt, c);
    auto const span = deq::bert::span_head::load(ckpt, c);
    auto const mlm = deq::bert::mlm_head::load(ckpt, c, model.weights().embeddings.word);
    CHECK_FALSE(ckpt.contains("cls.predictions.decoder.weight"));  // tied: the head uses the word embeddings

    index_t const batches = std::stoll(f.metadata().at("batches"));
    deq::exec::threads const space(2);
    deq::bert::forward_options o;
    o.output_hidden_states = true;
    double hidden_err = 0, pooler_err = 0, cls_err = 0, span_err = 0, mlm_err = 0;
    for (index_t i = 0; i < batches; ++i) {
        std::string const p = "b" + std::to_string(i);
        auto const in = read_input(f, p);
        auto const out = model.forward(space, in, deq::bert::attention_mode::dense(), o);
        auto const ref = f.get_float<4>(p + ".hidden_states");
        for (index_t n = 0; n < ref.extent(0); ++n) {
            double const e = max_err3(out.hidden_states[static_cast<std::size_t>(n)], layer_of(ref, n));
            hidden_err = std::max(hidden_err, e);
            CHECK_MESSAGE(e <= 1e-4, p << " layer " << n << " max abs error " << e);
        }
        auto const pooled = deq::bert::pooler_output(space, out.last_hidden_state.cview(), *model.weights().pooler);
        pooler_err = std::max(pooler_err, max_err2(pooled, f.get_float<2>(p + ".pooler_output")));
        cls_err = std::max(cls_err, max_err2(classifier.logits(pooled.cview()), f.get_float<2>(p + ".classifier_logits")));
        auto const s = span.logits(out.last_hidden_state.cview());
        span_err = std::max({span_err, max_err2(s.start, f.get_float<2>(p + ".start_logits")), max_err2(s.end, f.get_float<2>(p + ".end_logits"))});
        auto const pos = f.get<std::int64_t, 2>(p + ".mlm_positions");
        deq::tensor<float, 2> rows({pos.extent(0), c.hidden_size});
        for (index_t r = 0; r < pos.extent(0); ++r)
            for (index_t t = 0; t < c.hidden_size; ++t) rows(r, t) = out.last_hidden_state(pos(r, 0), pos(r, 1), t);
        mlm_err = std::max(mlm_err, max_err2(mlm.logits(space, rows.cview()), f.get_float<2>(p + ".mlm_logits")));
    }
    CHECK(pooler_err <= 1e-4);
    CHECK(cls_err <= 1e-4);
    CHECK(span_err <= 1e-4);
    CHECK(mlm_err <= 1e-4);
    summary() << "\n### random BERT-base geometry (768 hidden, 12 heads, 3072 FFN, 2 layers, vocab 1000), " << batches
              << " batches\n\n| output | max abs error |\n|---|---|\n| hidden_states (all layers) | " << std::setprecision(3) << hidden_err
              << " |\n| pooler_output | " << pooler_err << " |\n| classifier logits | " << cls_err << " |\n| start/end logits | "
              << span_err << " |\n| masked-LM logits | " << mlm_err << " |\n";
    MESSAGE("random base max abs errors: hidden " << hidden_err << ", pooler " << pooler_err << ", classifier " << cls_err << ", span "
                                                  << span_err << ", mlm " << mlm_err);
    compare_modes(model, f, batches, "random BERT-base geometry");
    flush_summary();
}
