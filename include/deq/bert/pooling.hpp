/// @file
/// @brief Sentence-level outputs of the encoder: the BERT pooler (`tanh(W·h_[CLS] + b)`), mean pooling
/// over the real tokens (sentence-transformers' `Pooling`, mean mode), L2 normalisation
/// (sentence-transformers' `Normalize`) and cosine similarity.
#pragma once

#include <cmath>
#include <cstdint>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "blas.hpp"
#include "detail/kernels.hpp"
#include "weights.hpp"

namespace deq::bert {

/// The BERT pooler: `tanh(h[:, 0] · Wᵀ + b)` over the first ([CLS]) token of every sequence.
/// @tparam Space A host execution space (runs the tanh).
/// @tparam T     Activation type (float or double).
/// @param space  Execution space.
/// @param hidden Last hidden state, [B, L, H].
/// @param pooler `pooler.dense` weights, [H, H].
/// @return The pooled output, [B, H].
/// @throws deq::shape_error when the shapes disagree.
template <exec::host_execution_space Space, activation T>
tensor<T, 2> pooler_output(Space const& space, tensor_view<T const, 3> hidden, linear_weights const& pooler) {
    index_t const batch = hidden.extent(0), h = hidden.extent(2);
    if (batch == 0 || hidden.extent(1) == 0 || !hidden.is_contiguous()) {
        detail::throw_shape_error(detail::concat("pooler: 'hidden' has shape ", hidden.shape_string(), ": must be non-empty and contiguous"));
    }
    tensor<T, 2> out({batch, pooler.out_features()});
    tensor_view<T const, 2> cls(hidden.data(), {batch, h}, {hidden.stride(0), 1});
    linear(cls, pooler.weight.view(), pooler.bias.view(), out.view());
    exec::parallel_for(space, batch, detail::bert_tanh_kernel<T>{out.data(), out.extent(1), out.extent(1)});
    return out;
}

/// Mean of the hidden states over each sequence's real tokens: `Σ_l mask·h / max(Σ_l mask, 1e-9)`, the
/// formula of sentence-transformers' `Pooling(pooling_mode_mean_tokens=True)` (sums in float, token order).
/// @param hidden Hidden states, [B, L, H].
/// @param mask   Attention mask, [B, L] (1 = real token).
/// @return The sentence embeddings, [B, H] (a sequence without a real token gives zeros).
/// @throws deq::shape_error when the shapes disagree or are empty.
inline tensor<float, 2> mean_pooling(tensor_view<float const, 3> hidden, tensor_view<std::uint8_t const, 2> mask) {
    index_t const batch = hidden.extent(0), length = hidden.extent(1), h = hidden.extent(2);
    if (batch == 0 || length == 0 || h == 0) {
        detail::throw_shape_error(detail::concat("mean_pooling: 'hidden' has shape ", hidden.shape_string(), ": no extent may be zero"));
    }
    if (mask.extent(0) != batch || mask.extent(1) != length) {
        detail::throw_shape_error(detail::concat("mean_pooling: 'mask' has shape ", mask.shape_string(), ", expected [", batch, ", ",
                                                 length, "]"));
    }
    tensor<float, 2> out({batch, h}, 0.0f);
    for (index_t b = 0; b < batch; ++b) {
        float count = 0;
        for (index_t l = 0; l < length; ++l) {
            if (mask(b, l) == 0) continue;
            count += 1.0f;
            for (index_t t = 0; t < h; ++t) out(b, t) += hidden(b, l, t);
        }
        float const denom = std::fmax(count, 1e-9f);
        for (index_t t = 0; t < h; ++t) out(b, t) /= denom;
    }
    return out;
}

/// Divides every row by its L2 norm, `x / max(‖x‖₂, 1e-12)` (PyTorch's `F.normalize`, used by
/// sentence-transformers' `Normalize`), in place.
/// @param x Rows, [B, H].
/// @throws deq::numeric_error for a non-finite value (naming the row and column).
inline void l2_normalize(tensor_view<float, 2> x) {
    for (index_t b = 0; b < x.extent(0); ++b) {
        double sq = 0;
        for (index_t t = 0; t < x.extent(1); ++t) {
            float const v = x(b, t);
            if (!std::isfinite(v)) {
                throw numeric_error(detail::concat("deq: non-finite value ", v, " in 'x' at index [", b, ", ", t, "]"));
            }
            sq += static_cast<double>(v) * v;
        }
        float const norm = std::fmax(static_cast<float>(std::sqrt(sq)), 1e-12f);
        for (index_t t = 0; t < x.extent(1); ++t) x(b, t) /= norm;
    }
}

/// Cosine similarity of two vectors, `a·b / max(‖a‖·‖b‖, 1e-8)` (in double).
/// @param a First vector, [H].
/// @param b Second vector, [H].
/// @return The similarity in [-1, 1].
/// @throws deq::shape_error when the lengths differ or are zero.
inline double cosine_similarity(tensor_view<float const, 1> a, tensor_view<float const, 1> b) {
    if (a.extent(0) != b.extent(0) || a.extent(0) == 0) {
        detail::throw_shape_error(detail::concat("cosine_similarity: 'a' has shape ", a.shape_string(), " and 'b' ", b.shape_string(),
                                                 ": lengths must agree and be non-zero"));
    }
    double ab = 0, aa = 0, bb = 0;
    for (index_t t = 0; t < a.extent(0); ++t) {
        double const x = a(t), y = b(t);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    return ab / std::fmax(std::sqrt(aa) * std::sqrt(bb), 1e-8);
}

}  // namespace deq::bert
