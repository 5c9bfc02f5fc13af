// A tiny random BERT (deterministic) for the deq::bert unit tests, an independent double-precision
// forward pass written with plain loops, and a safetensors image of the weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <deq/bert/config.hpp>
#include <deq/bert/inputs.hpp>
#include <deq/bert/weights.hpp>
#include <deq/io/safetensors.hpp>

namespace bert_test {

using deq::index_t;

inline deq::bert::bert_config tiny_config() {
    deq::bert::bert_config c;
    c.vocab_size = 23;
    c.hidden_size = 16;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.intermediate_size = 24;
    c.max_position_embeddings = 64;
    c.type_vocab_size = 2;
    c.layer_norm_eps = 1e-12;
    return c;
}

template <int Rank>
deq::tensor<float, Rank> random_tensor(std::initializer_list<index_t> shape, std::mt19937_64& gen, double mean, double sd) {
    deq::tensor<float, Rank> t(shape);
    std::normal_distribution<double> d(mean, sd);
    for (auto& x : t.storage()) x = static_cast<float>(d(gen));
    return t;
}

inline deq::bert::linear_weights random_linear(index_t out, index_t in, std::mt19937_64& gen, double sd = 0.3) {
    return {random_tensor<2>({out, in}, gen, 0.0, sd), random_tensor<1>({out}, gen, 0.0, 0.1)};
}

inline deq::bert::layer_norm_weights random_norm(index_t n, std::mt19937_64& gen) {
    return {random_tensor<1>({n}, gen, 1.0, 0.1), random_tensor<1>({n}, gen, 0.0, 0.1)};
}

/// Random weights for @p c; query/key weights are larger so that attention rows are peaked.
inline deq::bert::bert_weights tiny_weights(deq::bert::bert_config const& c, std::uint64_t seed = 7, bool pooler = true) {
    std::mt19937_64 gen(seed);
    index_t const h = c.hidden_size;
    deq::bert::bert_weights w;
    w.embeddings.word = random_tensor<2>({c.vocab_size, h}, gen, 0.0, 0.5);
    w.embeddings.position = random_tensor<2>({c.max_position_embeddings, h}, gen, 0.0, 0.3);
    w.embeddings.token_type = random_tensor<2>({c.type_vocab_size, h}, gen, 0.0, 0.3);
    w.embeddings.norm = random_norm(h, gen);
    for (index_t n = 0; n < c.num_hidden_layers; ++n) {
        deq::bert::layer_weights l;
        l.query = random_linear(h, h, gen, 0.8);
        l.key = random_linear(h, h, gen, 0.8);
        l.value = random_linear(h, h, gen);
        l.attention_output = random_linear(h, h, gen);
        l.attention_norm = random_norm(h, gen);
        l.intermediate = random_linear(c.intermediate_size, h, gen);
        l.output = random_linear(h, c.intermediate_size, gen);
        l.output_norm = random_norm(h, gen);
        w.layers.push_back(std::move(l));
    }
    if (pooler) w.pooler = random_linear(h, h, gen);
    return w;
}

/// The safetensors image of @p w with Hugging Face names (prefix "bert." or "").
inline deq::io::safetensors_writer to_writer(deq::bert::bert_weights const& w, std::string const& prefix, bool old_norm_names = false) {
    deq::io::safetensors_writer out;
    auto lin = [&](std::string const& name, deq::bert::linear_weights const& l) {
        out.add(prefix + name + ".weight", l.weight);
        out.add(prefix + name + ".bias", l.bias);
    };
    auto norm = [&](std::string const& name, deq::bert::layer_norm_weights const& n) {
        out.add(prefix + name + (old_norm_names ? ".gamma" : ".weight"), n.weight);
        out.add(prefix + name + (old_norm_names ? ".beta" : ".bias"), n.bias);
    };
    out.add(prefix + "embeddings.word_embeddings.weight", w.embeddings.word);
    out.add(prefix + "embeddings.position_embeddings.weight", w.embeddings.position);
    out.add(prefix + "embeddings.token_type_embeddings.weight", w.embeddings.token_type);
    norm("embeddings.LayerNorm", w.embeddings.norm);
    for (std::size_t n = 0; n < w.layers.size(); ++n) {
        std::string const b = "encoder.layer." + std::to_string(n) + ".";
        auto const& l = w.layers[n];
        lin(b + "attention.self.query", l.query);
        lin(b + "attention.self.key", l.key);
        lin(b + "attention.self.value", l.value);
        lin(b + "attention.output.dense", l.attention_output);
        norm(b + "attention.output.LayerNorm", l.attention_norm);
        lin(b + "intermediate.dense", l.intermediate);
        lin(b + "output.dense", l.output);
        norm(b + "output.LayerNorm", l.output_norm);
        if (l.thresholds) {
            out.add(prefix + b + "attention.self.quant_matmul.input_x_thresh",
                    deq::tensor_view<float const, 1>(&l.thresholds->input_x_thresh, {1}));
            out.add_scalar(prefix + b + "attention.self.quant_matmul.input_y_thresh", l.thresholds->input_y_thresh);
        }
    }
    if (w.pooler) lin("pooler.dense", *w.pooler);
    return out;
}

/// Random task-head parameters: a 3-label classifier, a span head and a masked-LM head without a decoder.
struct tiny_heads {
    deq::bert::linear_weights classifier;  ///< `classifier`, [3, hidden].
    deq::bert::linear_weights qa;          ///< `qa_outputs`, [2, hidden].
    deq::bert::linear_weights transform;   ///< `cls.predictions.transform.dense`.
    deq::bert::layer_norm_weights norm;    ///< `cls.predictions.transform.LayerNorm`.
    deq::tensor<float, 1> mlm_bias;        ///< `cls.predictions.bias`, [vocab_size].
};

inline tiny_heads random_heads(deq::bert::bert_config const& c, std::mt19937_64& gen) {
    index_t const h = c.hidden_size;
    return {random_linear(3, h, gen), random_linear(2, h, gen), random_linear(h, h, gen), random_norm(h, gen),
            random_tensor<1>({c.vocab_size}, gen, 0.0, 0.1)};
}

/// Adds the heads to @p out with Hugging Face names.
inline void add_heads(deq::io::safetensors_writer& out, tiny_heads const& t) {
    out.add("classifier.weight", t.classifier.weight);
    out.add("classifier.bias", t.classifier.bias);
    out.add("qa_outputs.weight", t.qa.weight);
    out.add("qa_outputs.bias", t.qa.bias);
    out.add("cls.predictions.transform.dense.weight", t.transform.weight);
    out.add("cls.predictions.transform.dense.bias", t.transform.bias);
    out.add("cls.predictions.transform.LayerNorm.weight", t.norm.weight);
    out.add("cls.predictions.transform.LayerNorm.bias", t.norm.bias);
    out.add("cls.predictions.bias", t.mlm_bias);
}

inline deq::io::safetensors_file to_file(deq::io::safetensors_writer const& w, std::string const& source = "tiny.safetensors") {
    return deq::io::safetensors_file::from_bytes(w.serialize(), source);
}

/// A batch of @p lengths sequences (ids from a fixed generator; second half of each sequence type 1).
inline deq::bert::model_input tiny_input(deq::bert::bert_config const& c, std::vector<index_t> const& lengths, std::uint64_t seed = 3) {
    std::mt19937_64 gen(seed);
    std::uniform_int_distribution<int> id(1, static_cast<int>(c.vocab_size) - 1);
    index_t L = 0;
    for (index_t n : lengths) L = std::max(L, n);
    deq::bert::model_input in;
    index_t const B = static_cast<index_t>(lengths.size());
    in.input_ids = deq::tensor<std::int32_t, 2>({B, L}, 0);
    in.token_type_ids = deq::tensor<std::int32_t, 2>({B, L}, 0);
    in.attention_mask = deq::tensor<std::uint8_t, 2>({B, L}, 0);
    for (index_t b = 0; b < B; ++b)
        for (index_t l = 0; l < lengths[static_cast<std::size_t>(b)]; ++l) {
            in.input_ids(b, l) = id(gen);
            in.token_type_ids(b, l) = l >= lengths[static_cast<std::size_t>(b)] / 2 ? 1 : 0;
            in.attention_mask(b, l) = 1;
        }
    return in;
}

using matrix = std::vector<std::vector<double>>;

inline void naive_layer_norm(std::vector<double>& x, deq::bert::layer_norm_weights const& n, double eps) {
    double mean = 0, var = 0;
    for (double v : x) mean += v;
    mean /= static_cast<double>(x.size());
    for (double v : x) var += (v - mean) * (v - mean);
    var /= static_cast<double>(x.size());
    for (std::size_t t = 0; t < x.size(); ++t) x[t] = (x[t] - mean) / std::sqrt(var + eps) * n.weight(static_cast<index_t>(t)) + n.bias(static_cast<index_t>(t));
}

inline std::vector<double> naive_linear(std::vector<double> const& x, deq::bert::linear_weights const& l) {
    std::vector<double> y(static_cast<std::size_t>(l.out_features()));
    for (index_t o = 0; o < l.out_features(); ++o) {
        double s = l.bias(o);
        for (index_t i = 0; i < l.in_features(); ++i) s += static_cast<double>(l.weight(o, i)) * x[static_cast<std::size_t>(i)];
        y[static_cast<std::size_t>(o)] = s;
    }
    return y;
}

/// kept(layer, b, h, i, j): whether entry (i, j) of head h of sequence b is kept; nullptr = dense.
using kept_fn = std::function<bool(index_t layer, index_t b, index_t h, index_t i, index_t j)>;

/// Double-precision BERT forward with plain loops: the hidden states after the embeddings and every layer,
/// each [B][L][H] flattened as rows b * L + l.
inline std::vector<matrix> naive_forward(deq::bert::bert_config const& c, deq::bert::bert_weights const& w,
                                         deq::bert::model_input const& in, kept_fn kept = nullptr) {
    index_t const B = in.batch(), L = in.length(), H = c.hidden_size, heads = c.num_attention_heads, d = c.head_dim();
    matrix x(static_cast<std::size_t>(B * L));
    for (index_t b = 0; b < B; ++b)
        for (index_t l = 0; l < L; ++l) {
            std::vector<double> e(static_cast<std::size_t>(H));
            for (index_t t = 0; t < H; ++t) {
                e[static_cast<std::size_t>(t)] = static_cast<double>(w.embeddings.word(in.input_ids(b, l), t)) +
                                                 w.embeddings.token_type(in.token_type_ids(b, l), t) + w.embeddings.position(l, t);
            }
            naive_layer_norm(e, w.embeddings.norm, c.layer_norm_eps);
            x[static_cast<std::size_t>(b * L + l)] = e;
        }
    std::vector<matrix> states{x};
    for (index_t layer = 0; layer < c.num_hidden_layers; ++layer) {
        auto const& lw = w.layers[static_cast<std::size_t>(layer)];
        matrix q, k, v;
        for (auto const& row : x) {
            q.push_back(naive_linear(row, lw.query));
            k.push_back(naive_linear(row, lw.key));
            v.push_back(naive_linear(row, lw.value));
        }
        matrix ctx(x.size(), std::vector<double>(static_cast<std::size_t>(H), 0.0));
        for (index_t b = 0; b < B; ++b)
            for (index_t h = 0; h < heads; ++h)
                for (index_t i = 0; i < L; ++i) {
                    std::vector<double> s(static_cast<std::size_t>(L));
                    double mx = -1e300;
                    for (index_t j = 0; j < L; ++j) {
                        double dot = 0;
                        for (index_t t = 0; t < d; ++t)
                            dot += q[static_cast<std::size_t>(b * L + i)][static_cast<std::size_t>(h * d + t)] *
                                   k[static_cast<std::size_t>(b * L + j)][static_cast<std::size_t>(h * d + t)];
                        double sc = dot / std::sqrt(static_cast<double>(d));
                        if (kept && !kept(layer, b, h, i, j)) sc -= 10000.0;
                        if (in.attention_mask(b, j) == 0) sc -= 10000.0;
                        s[static_cast<std::size_t>(j)] = sc;
                        mx = std::max(mx, sc);
                    }
                    double sum = 0;
                    for (auto& e : s) sum += (e = std::exp(e - mx));
                    for (index_t t = 0; t < d; ++t) {
                        double o = 0;
                        for (index_t j = 0; j < L; ++j)
                            o += s[static_cast<std::size_t>(j)] / sum * v[static_cast<std::size_t>(b * L + j)][static_cast<std::size_t>(h * d + t)];
                        ctx[static_cast<std::size_t>(b * L + i)][static_cast<std::size_t>(h * d + t)] = o;
                    }
                }
        matrix x1;
        for (std::size_t r = 0; r < x.size(); ++r) {
            std::vector<double> a = naive_linear(ctx[r], lw.attention_output);
            for (std::size_t t = 0; t < a.size(); ++t) a[t] += x[r][t];
            naive_layer_norm(a, lw.attention_norm, c.layer_norm_eps);
            x1.push_back(a);
        }
        for (std::size_t r = 0; r < x.size(); ++r) {
            std::vector<double> m = naive_linear(x1[r], lw.intermediate);
            for (auto& e : m) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
            std::vector<double> o = naive_linear(m, lw.output);
            for (std::size_t t = 0; t < o.size(); ++t) o[t] += x1[r][t];
            naive_layer_norm(o, lw.output_norm, c.layer_norm_eps);
            x[r] = o;
        }
        states.push_back(x);
    }
    return states;
}

/// Largest |a - b| between a float or double [B, L, H] tensor and a naive state.
template <class T>
double max_diff(deq::tensor<T, 3> const& a, matrix const& b) {
    double m = 0;
    index_t const L = a.extent(1), H = a.extent(2);
    for (index_t i = 0; i < a.extent(0); ++i)
        for (index_t l = 0; l < L; ++l)
            for (index_t t = 0; t < H; ++t)
                m = std::max(m, std::fabs(static_cast<double>(a(i, l, t)) - b[static_cast<std::size_t>(i * L + l)][static_cast<std::size_t>(t)]));
    return m;
}

}  // namespace bert_test
