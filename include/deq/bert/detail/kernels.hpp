/// @file
/// @brief Row kernels of the BERT encoder (internal; see deq/bert/encoder.hpp): embeddings + LayerNorm,
/// residual + LayerNorm, exact GELU, tanh, and the count of query rows without a selected key. The
/// LayerNorm and GELU rows are vectorisable loops run through bert_simd_run (deq/bert/detail/simd_dispatch.hpp).
#pragma once

#include <cmath>
#include <cstdint>

#include "../../config.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../numeric/erf.hpp"
#include "simd_dispatch.hpp"

namespace deq::detail {

/// LayerNorm of one row in place: `y = (x - mean) · rsqrt(var + eps) · gamma + beta` (biased variance;
/// statistics in float, accumulated in 16 interleaved partial sums added in a fixed order, so that the
/// loops vectorise).
DEQ_HOST_DEVICE inline void bert_layer_norm_row(float* x, index_t n, float const* gamma, float const* beta, double eps) {
    constexpr index_t lanes = bert_block;
    index_t const full = n - n % lanes;
    float part[lanes] = {};
    for (index_t t = 0; t < full; t += lanes)
        for (index_t l = 0; l < lanes; ++l) part[l] += x[t + l];
    float sum = 0;
    for (index_t l = 0; l < lanes; ++l) sum += part[l];
    for (index_t t = full; t < n; ++t) sum += x[t];
    float const mean = sum / static_cast<float>(n);
    for (index_t l = 0; l < lanes; ++l) part[l] = 0;
    for (index_t t = 0; t < full; t += lanes)
        for (index_t l = 0; l < lanes; ++l) {
            float const c = x[t + l] - mean;
            part[l] += c * c;
        }
    float sq = 0;
    for (index_t l = 0; l < lanes; ++l) sq += part[l];
    for (index_t t = full; t < n; ++t) sq += (x[t] - mean) * (x[t] - mean);
    float const rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + static_cast<float>(eps));
    for (index_t t = 0; t < full; t += lanes)
        for (index_t l = 0; l < lanes; ++l) x[t + l] = (x[t + l] - mean) * rstd * gamma[t + l] + beta[t + l];
    for (index_t t = full; t < n; ++t) x[t] = (x[t] - mean) * rstd * gamma[t] + beta[t];
}

/// Kernel: one token row r of the embeddings, `LN(word[id] + type[tt] + position[r % L])`.
struct bert_embedding_kernel {
    std::int32_t const* ids;
    std::int32_t const* types;
    float const* word;
    float const* position;
    float const* token_type;
    float const* gamma;
    float const* beta;
    float* out;
    index_t length;
    index_t hidden;
    double eps;
    /// @param r Token row.
    void operator()(index_t r) const {
        float const* w = word + static_cast<index_t>(ids[r]) * hidden;
        float const* ty = token_type + static_cast<index_t>(types[r]) * hidden;
        float const* p = position + (r % length) * hidden;
        float* y = out + r * hidden;
        bert_simd_run([&] {
            for (index_t t = 0; t < hidden; ++t) {
                float e = w[t] + ty[t];  // transformers: inputs_embeds + token_type_embeddings, then + position
                y[t] = e + p[t];
            }
            bert_layer_norm_row(y, hidden, gamma, beta, eps);
        });
    }
};

/// Kernel: one row r of `out = LN(x + residual)` (out may alias x or residual).
struct bert_add_norm_kernel {
    float const* x;
    float const* residual;
    float const* gamma;
    float const* beta;
    float* out;
    index_t hidden;
    double eps;
    /// @param r Row index.
    void operator()(index_t r) const {
        float* y = out + r * hidden;
        float const* a = x + r * hidden;
        float const* b = residual + r * hidden;
        bert_simd_run([&] {
            for (index_t t = 0; t < hidden; ++t) y[t] = a[t] + b[t];
            bert_layer_norm_row(y, hidden, gamma, beta, eps);
        });
    }
};

/// Kernel: LayerNorm of one row of @p x in place.
struct bert_layer_norm_kernel {
    float* x;
    float const* gamma;
    float const* beta;
    index_t hidden;
    double eps;
    /// @param r Row index.
    void operator()(index_t r) const {
        bert_simd_run([&] { bert_layer_norm_row(x + r * hidden, hidden, gamma, beta, eps); });
    }
};

/// Kernel: exact GELU `x · 0.5 · (1 + erf(x / √2))` over one row of @p width values, in place (erf from
/// deq::erf_vectorizable, within 2e-7 of std::erf, so the loop vectorises; bert_simd_run picks the vector
/// width).
struct bert_gelu_kernel {
    float* x;
    index_t width;
    /// @param r Row index.
    void operator()(index_t r) const {
        float* y = x + r * width;
        bert_simd_run([&] {
            constexpr index_t lanes = bert_block;
            index_t const full = width - width % lanes;
            for (index_t t = 0; t < full; t += lanes)
                for (index_t l = 0; l < lanes; ++l) y[t + l] = gelu(y[t + l]);
            for (index_t t = full; t < width; ++t) y[t] = gelu(y[t]);
        });
    }
    /// @param v Input.
    /// @return GELU(v).
    static float gelu(float v) noexcept { return v * 0.5f * (1.0f + erf_vectorizable(v * 0.70710678118654752440f)); }
};

/// Kernel: tanh over one row of @p width values (row stride @p stride), in place.
struct bert_tanh_kernel {
    float* x;
    index_t width;
    index_t stride;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        float* y = x + r * stride;
        for (index_t t = 0; t < width; ++t) y[t] = std::tanh(y[t]);
    }
};

/// Kernel: for query row item = (b * heads + h) * length + i, writes 1 to @p empty when the row is a real
/// query whose mask row has no bit set on a real key, 0 otherwise. @p valid_words holds the packed real-key
/// bits of each sequence ([batch, words_per_row]).
struct bert_empty_row_kernel {
    const_bit_mask_view mask;
    std::uint64_t const* valid_words;
    key_padding padding;
    std::uint8_t* empty;
    index_t heads;
    index_t length;
    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const i = item % length;
        index_t const h = (item / length) % heads;
        index_t const b = item / (length * heads);
        empty[item] = 0;
        if (!padding.is_valid(b, i)) return;
        index_t const words = mask.words_per_row();
        std::uint64_t const* row = mask.row(b, h, i);
        std::uint64_t const* valid = valid_words + b * words;
        for (index_t w = 0; w < words; ++w)
            if ((row[w] & valid[w]) != 0) return;
        empty[item] = 1;
    }
};

}  // namespace deq::detail
