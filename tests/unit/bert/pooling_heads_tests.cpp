// deq::bert::linear (BLAS), pooler, mean pooling, normalisation, cosine similarity and the task heads,
// against hand-computed values and the naive forward of tiny_model.hpp.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <deq/bert/blas.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/bert/heads.hpp>
#include <deq/bert/pooling.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>

#include "tiny_model.hpp"

using namespace bert_test;

TEST_CASE("linear: y = x·Wᵀ + b on hand-computed values, strided rows, errors") {
    float x[] = {1, 2, 3, 4, 5, 6};
    float w[] = {1, 0, 0, 1, 1, 1};
    float b[] = {0.5f, -1, 2};
    std::vector<float> y(9, -7.0f);
    deq::bert::linear(deq::tensor_view<float const, 2>(x, {3, 2}), deq::tensor_view<float const, 2>(w, {3, 2}),
                      deq::tensor_view<float const, 1>(b, {3}), deq::tensor_view<float, 2>(y.data(), {3, 3}));
    CHECK(y == std::vector<float>{1.5f, 1, 5, 3.5f, 3, 9, 5.5f, 5, 13});

    // no bias, output rows strided by 5 (untouched gaps)
    std::vector<float> wide(15, -7.0f);
    deq::bert::linear(deq::tensor_view<float const, 2>(x, {3, 2}), deq::tensor_view<float const, 2>(w, {3, 2}), {},
                      deq::tensor_view<float, 2>(wide.data(), {3, 3}, {5, 1}));
    CHECK(wide == std::vector<float>{1, 2, 3, -7, -7, 3, 4, 7, -7, -7, 5, 6, 11, -7, -7});

    // input rows strided (every other row)
    std::vector<float> y2(6);
    deq::bert::linear(deq::tensor_view<float const, 2>(x, {2, 2}, {4, 1}), deq::tensor_view<float const, 2>(w, {3, 2}),
                      deq::tensor_view<float const, 1>(b, {3}), deq::tensor_view<float, 2>(y2.data(), {2, 3}));
    CHECK(y2 == std::vector<float>{1.5f, 1, 5, 5.5f, 5, 13});

    CHECK_THROWS_AS(deq::bert::linear(deq::tensor_view<float const, 2>(x, {2, 3}), deq::tensor_view<float const, 2>(w, {3, 2}), {},
                                      deq::tensor_view<float, 2>(y.data(), {2, 3})),
                    deq::shape_error);
    CHECK_THROWS_AS(deq::bert::linear(deq::tensor_view<float const, 2>(x, {3, 2}), deq::tensor_view<float const, 2>(w, {3, 2}), {},
                                      deq::tensor_view<float, 2>(y.data(), {3, 2})),
                    deq::shape_error);
    CHECK_THROWS_AS(deq::bert::linear(deq::tensor_view<float const, 2>(x, {3, 2}), deq::tensor_view<float const, 2>(w, {3, 2}),
                                      deq::tensor_view<float const, 1>(b, {2}), deq::tensor_view<float, 2>(y.data(), {3, 3})),
                    deq::shape_error);
    CHECK_THROWS_AS(deq::bert::linear(deq::tensor_view<float const, 2>(x, {3, 2}, {2, 2}), deq::tensor_view<float const, 2>(w, {3, 2}),
                                      {}, deq::tensor_view<float, 2>(y.data(), {3, 3})),
                    deq::shape_error);
    CHECK_THROWS_AS(deq::bert::set_blas_threads(0), deq::invalid_argument);
}

TEST_CASE("mean_pooling, l2_normalize and cosine_similarity on hand-computed values") {
    deq::tensor<float, 3> h({2, 3, 2});
    float const v[] = {1, 2, 3, 4, 100, 100, /**/ 2, 0, -2, 1, 0, 5};
    std::copy(std::begin(v), std::end(v), h.data());
    deq::tensor<std::uint8_t, 2> mask({2, 3}, 1);
    mask(0, 2) = 0;
    auto const m = deq::bert::mean_pooling(h.cview(), mask.cview());
    CHECK(m(0, 0) == 2.0f);
    CHECK(m(0, 1) == 3.0f);
    CHECK(m(1, 0) == 0.0f);
    CHECK(m(1, 1) == 2.0f);

    deq::tensor<float, 2> x({2, 2});
    x(0, 0) = 3;
    x(0, 1) = -4;
    x(1, 0) = 0;
    x(1, 1) = 0;
    deq::bert::l2_normalize(x.view());
    CHECK(x(0, 0) == doctest::Approx(0.6));
    CHECK(x(0, 1) == doctest::Approx(-0.8));
    CHECK(x(1, 0) == 0.0f);  // zero vector stays zero (norm clamped to 1e-12)

    float a[] = {1, 2, 2}, b[] = {2, 0, 1}, z[] = {0, 0, 0};
    CHECK(deq::bert::cosine_similarity(deq::tensor_view<float const, 1>(a, {3}), deq::tensor_view<float const, 1>(b, {3})) ==
          doctest::Approx(4.0 / (3.0 * std::sqrt(5.0))));
    CHECK(deq::bert::cosine_similarity(deq::tensor_view<float const, 1>(a, {3}), deq::tensor_view<float const, 1>(z, {3})) == 0.0);

    CHECK_THROWS_AS(deq::bert::mean_pooling(h.cview(), deq::tensor<std::uint8_t, 2>({2, 2}, 1).cview()), deq::shape_error);
    CHECK_THROWS_AS(deq::bert::cosine_similarity(deq::tensor_view<float const, 1>(a, {3}), deq::tensor_view<float const, 1>(b, {2})),
                    deq::shape_error);
    x(0, 1) = std::nanf("");
    CHECK_THROWS_AS(deq::bert::l2_normalize(x.view()), deq::numeric_error);
}

TEST_CASE("pooler and task heads match a naive computation on a tiny model") {
    auto const c = tiny_config();
    auto const w = tiny_weights(c);
    std::mt19937_64 gen(11);
    auto const heads = random_heads(c, gen);
    auto const& [classifier, qa, transform, norm, mlm_bias] = heads;

    deq::io::safetensors_writer out = to_writer(w, "bert.");
    add_heads(out, heads);
    auto const file = to_file(out, "task.safetensors");

    deq::bert::bert_model const model(c, deq::bert::bert_weights::load(file, c));
    auto const in = tiny_input(c, {11, 6});
    auto const naive = naive_forward(c, w, in).back();
    auto const hidden = model.forward(deq::exec::threads{2}, in, deq::bert::attention_mode::dense()).last_hidden_state;

    auto const pooled = deq::bert::pooler_output(deq::exec::serial{}, hidden.cview(), *model.weights().pooler);
    auto const head = deq::bert::classification_head::load(file, c);
    CHECK(head.num_labels() == 3);
    auto const logits = head.logits(pooled.cview());
    auto const span = deq::bert::span_head::load(file, c).logits(hidden.cview());
    auto const mlm = deq::bert::mlm_head::load(file, c, model.weights().embeddings.word);
    auto const vocab_logits = mlm.logits(deq::exec::serial{}, deq::tensor_view<float const, 2>(hidden.data(), {in.batch() * in.length(), c.hidden_size}));
    REQUIRE(vocab_logits.extent(1) == c.vocab_size);

    for (deq::index_t b = 0; b < 2; ++b) {
        std::vector<double> p = naive_linear(naive[static_cast<std::size_t>(b * 11)], *w.pooler);
        for (auto& e : p) e = std::tanh(e);
        for (deq::index_t t = 0; t < c.hidden_size; ++t) CHECK(pooled(b, t) == doctest::Approx(p[static_cast<std::size_t>(t)]).epsilon(1e-4));
        std::vector<double> const l = naive_linear(p, classifier);
        for (deq::index_t k = 0; k < 3; ++k) CHECK(logits(b, k) == doctest::Approx(l[static_cast<std::size_t>(k)]).epsilon(1e-4));
        for (deq::index_t i = 0; i < 11; ++i) {
            auto const& row = naive[static_cast<std::size_t>(b * 11 + i)];
            std::vector<double> const s = naive_linear(row, qa);
            CHECK(span.start(b, i) == doctest::Approx(s[0]).epsilon(1e-4));
            CHECK(span.end(b, i) == doctest::Approx(s[1]).epsilon(1e-4));
            std::vector<double> t = naive_linear(row, transform);
            for (auto& e : t) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
            naive_layer_norm(t, norm, c.layer_norm_eps);
            for (deq::index_t v = 0; v < c.vocab_size; ++v) {
                double s2 = mlm_bias(v);
                for (deq::index_t u = 0; u < c.hidden_size; ++u) s2 += w.embeddings.word(v, u) * t[static_cast<std::size_t>(u)];
                CHECK(std::fabs(vocab_logits(b * 11 + i, v) - s2) < 1e-4);
            }
        }
    }

    // an explicit decoder weight is used instead of the tied embeddings
    deq::io::safetensors_writer out2 = to_writer(w, "");
    auto decoder = w.embeddings.word;
    for (auto& e : decoder.storage()) e *= 2;
    out2.add("cls.predictions.transform.dense.weight", transform.weight);
    out2.add("cls.predictions.transform.dense.bias", transform.bias);
    out2.add("cls.predictions.transform.LayerNorm.weight", norm.weight);
    out2.add("cls.predictions.transform.LayerNorm.bias", norm.bias);
    out2.add("cls.predictions.decoder.weight", decoder);
    out2.add("cls.predictions.decoder.bias", mlm_bias);
    auto const mlm2 = deq::bert::mlm_head::load(to_file(out2), c, model.weights().embeddings.word);
    CHECK(mlm2.decoder.storage() == decoder.storage());
    CHECK(mlm2.bias.storage() == mlm_bias.storage());

    // missing heads name the file and tensor
    auto const bare = to_file(to_writer(w, ""), "bare.safetensors");
    CHECK_THROWS_WITH_AS(deq::bert::classification_head::load(bare, c), doctest::Contains("classifier.weight"), deq::format_error);
    CHECK_THROWS_WITH_AS(deq::bert::span_head::load(bare, c), doctest::Contains("bare.safetensors"), deq::format_error);
    CHECK_THROWS_WITH_AS(deq::bert::mlm_head::load(bare, c, w.embeddings.word), doctest::Contains("cls.predictions.transform.dense.weight"),
                         deq::format_error);
}
