/// @file
/// @brief Row kernels of the BERT encoder (internal; see deq/bert/encoder.hpp): embeddings + LayerNorm,
/// residual + LayerNorm, exact GELU, tanh, and the count of query rows without a selected key. The
/// LayerNorm and GELU rows are vectorisable loops run through bert_simd_run (deq/bert/detail/simd_dispatch.hpp).
///
/// The activation kernels are templates over the activation type T (float, or double for the
/// reference-precision forward pass); parameters (embeddings, LayerNorm weights) stay float32, the
/// checkpoint's type, and are widened exactly to T.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../config.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../numeric/erf.hpp"
#include "simd_dispatch.hpp"

namespace deq::detail {

/// LayerNorm of one row in place: `y = (x - mean) · rsqrt(var + eps) · gamma + beta` (biased variance;
/// statistics in T, accumulated in 16 interleaved partial sums added in a fixed order, so that the
/// loops vectorise).
template <class T>
DEQ_HOST_DEVICE inline void bert_layer_norm_row(T* x, index_t n, float const* gamma, float const* beta, double eps) {
    constexpr index_t lanes = bert_block;
    index_t const full = n - n % lanes;
    T part[lanes] = {};
    for (index_t t = 0; t < full; t += lanes)
        for (index_t l = 0; l < lanes; ++l) part[l] += x[t + l];
    T sum = 0;
    for (index_t l = 0; l < lanes; ++l) sum += part[l];
    for (index_t t = full; t < n; ++t) sum += x[t];
    T const mean = sum / static_cast<T>(n);
    for (index_t l = 0; l < lanes; ++l) part[l] = 0;
    for (index_t t = 0; t < full; t += lanes)
        for (index_t l = 0; l < lanes; ++l) {
            T const c = x[t + l] - mean;
            part[l] += c * c;
        }
    T sq = 0;
    for (index_t l = 0; l < lanes; ++l) sq += part[l];
    for (index_t t = full; t < n; ++t) sq += (x[t] - mean) * (x[t] - mean);
    T const rstd = T(1) / std::sqrt(sq / static_cast<T>(n) + static_cast<T>(eps));
    for (index_t t = 0; t < full; t += lanes)
        for (index_t l = 0; l < lanes; ++l) x[t + l] = (x[t + l] - mean) * rstd * static_cast<T>(gamma[t + l]) + static_cast<T>(beta[t + l]);
    for (index_t t = full; t < n; ++t) x[t] = (x[t] - mean) * rstd * static_cast<T>(gamma[t]) + static_cast<T>(beta[t]);
}

/// Kernel: one token row r of the embeddings, `LN(word[id] + type[tt] + position[r % L])`.
template <class T>
struct bert_embedding_kernel {
    std::int32_t const* ids;
    std::int32_t const* types;
    float const* word;
    float const* position;
    float const* token_type;
    float const* gamma;
    float const* beta;
    T* out;
    index_t length;
    index_t hidden;
    double eps;
    /// @param r Token row.
    void operator()(index_t r) const {
        float const* w = word + static_cast<index_t>(ids[r]) * hidden;
        float const* ty = token_type + static_cast<index_t>(types[r]) * hidden;
        float const* p = position + (r % length) * hidden;
        T* y = out + r * hidden;
        bert_simd_run([&] {
            for (index_t t = 0; t < hidden; ++t) {
                T e = static_cast<T>(w[t]) + static_cast<T>(ty[t]);  // transformers: inputs_embeds + token_type_embeddings, then + position
                y[t] = e + static_cast<T>(p[t]);
            }
            bert_layer_norm_row(y, hidden, gamma, beta, eps);
        });
    }
};

/// Kernel: one row r of `out = LN(x + residual)` (out may alias x or residual).
template <class T>
struct bert_add_norm_kernel {
    T const* x;
    T const* residual;
    float const* gamma;
    float const* beta;
    T* out;
    index_t hidden;
    double eps;
    /// @param r Row index.
    void operator()(index_t r) const {
        T* y = out + r * hidden;
        T const* a = x + r * hidden;
        T const* b = residual + r * hidden;
        bert_simd_run([&] {
            for (index_t t = 0; t < hidden; ++t) y[t] = a[t] + b[t];
            bert_layer_norm_row(y, hidden, gamma, beta, eps);
        });
    }
};

/// Kernel: LayerNorm of one row of @p x in place.
template <class T>
struct bert_layer_norm_kernel {
    T* x;
    float const* gamma;
    float const* beta;
    index_t hidden;
    double eps;
    /// @param r Row index.
    void operator()(index_t r) const {
        bert_simd_run([&] { bert_layer_norm_row(x + r * hidden, hidden, gamma, beta, eps); });
    }
};

/// Kernel: exact GELU `x · 0.5 · (1 + erf(x / √2))` over one row of @p width values, in place (for float,
/// erf from deq::erf_vectorizable, within 2e-7 of std::erf, so the loop vectorises; bert_simd_run picks the
/// vector width; for double, std::erf).
template <class T>
struct bert_gelu_kernel {
    T* x;
    index_t width;
    /// @param r Row index.
    void operator()(index_t r) const {
        T* y = x + r * width;
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
    static T gelu(T v) noexcept {
        if constexpr (std::is_same_v<T, float>) {
            return v * 0.5f * (1.0f + erf_vectorizable(v * 0.70710678118654752440f));
        } else {
            return v * T(0.5) * (T(1) + std::erf(v * T(0.70710678118654752440)));
        }
    }
};

/// Kernel: tanh over one row of @p width values (row stride @p stride), in place.
template <class T>
struct bert_tanh_kernel {
    T* x;
    index_t width;
    index_t stride;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        T* y = x + r * stride;
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
