/// @file
/// @brief `deq::detail::bert_dense_attention`: the encoder's dense attention on the CBLAS (two `sgemm`
/// calls per sequence and head), with the arithmetic of deq's row kernel between them.
///
/// Per (b, h): S = Q·Kᵀ/√d (one sgemm, 1/√d as its alpha), then per query row the row kernel's softmax in
/// vectorisable form (deq::detail::bert_softmax_row: −10000 added at padded keys, maximum subtracted,
/// deq::exp_vectorizable, sum in 16 interleaved partial sums, multiplication by its reciprocal; weights
/// below the smallest normal float become 0, as in the row kernel); then O = P·V (sgemm). The sums inside
/// the products are ordered by the BLAS library, and the scaling, exp, sum and normalisation round
/// differently, so outputs differ from deq::attention by rounding only. Statistics are the same as
/// deq::attention's for dense attention (every valid pair kept and exact).
#pragma once

#include <cblas.h>

#include <cmath>
#include <memory>
#include <vector>

#include "../../attention/attention.hpp"
#include "../../exec/execution_space.hpp"
#include "simd_dispatch.hpp"
#include "softmax.hpp"

namespace deq::detail {

/// Whether bert_dense_attention() computes exactly what deq::attention would for these operands: dense
/// (no masks), inner dimensions contiguous, and no query row without a real key unless the empty-row
/// policy is the reference arithmetic (which the softmax below reproduces).
/// @param q       Queries [B, H, L, d].
/// @param k       Keys [B, H, L, d].
/// @param v       Values [B, H, L, dv].
/// @param out     Output [B, H, L, dv].
/// @param options The attention options.
/// @return True when the BLAS path applies.
inline bool bert_dense_attention_applies(tensor_view<float const, 4> q, tensor_view<float const, 4> k, tensor_view<float const, 4> v,
                                         tensor_view<float, 4> out, attention_options<float> const& options) {
    if (!options.kept.empty() || !options.refined.empty() || !options.predicted.empty() || !options.query_padding.none()) return false;
    if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1 || out.stride(3) != 1) return false;
    if (q.extent(2) != k.extent(2)) return false;
    if (options.empty_rows != empty_row_policy::reference && !options.padding.none()) {
        for (index_t b = 0; b < k.extent(0); ++b) {
            bool any = false;
            for (index_t j = 0; j < k.extent(2) && !any; ++j) any = options.padding.is_valid(b, j);
            if (!any) return false;
        }
    }
    return true;
}

/// Whether every element of @p x (inner dimension contiguous) is finite, in a vectorisable loop.
/// @param x The tensor.
/// @return True when no element is NaN or infinite.
inline bool bert_all_finite(tensor_view<float const, 4> x) {
    constexpr index_t lanes = bert_block;
    index_t const n = x.extent(3), full = n - n % lanes;
    if (n == 0) return true;
    float part[lanes] = {};  // x * 0 is 0 for finite x, NaN otherwise
    float tail = 0.0f;
    bert_simd_run([&] {
        for (index_t a = 0; a < x.extent(0); ++a)
            for (index_t b = 0; b < x.extent(1); ++b)
                for (index_t c = 0; c < x.extent(2); ++c) {
                    float const* row = &x(a, b, c, 0);
                    for (index_t t = 0; t < full; t += lanes)
                        for (index_t l = 0; l < lanes; ++l) part[l] += row[t + l] * 0.0f;
                    for (index_t t = full; t < n; ++t) tail += row[t] * 0.0f;
                }
    });
    for (float p : part) tail += p;
    return tail == 0.0f;
}

/// Dense attention through the CBLAS, see the file documentation. Call only when
/// bert_dense_attention_applies() is true.
/// @tparam Space A host execution space (one work item per (b, h); the BLAS library should be single-threaded).
/// @param space   Execution space.
/// @param q       Queries [B, H, L, d].
/// @param k       Keys [B, H, L, d].
/// @param v       Values [B, H, L, dv].
/// @param out     Output [B, H, L, dv].
/// @param options Padding and checks (validated as deq::attention validates them).
/// @return The statistics deq::attention reports for dense attention.
template <exec::host_execution_space Space>
attention_stats bert_dense_attention(Space const& space, tensor_view<float const, 4> q, tensor_view<float const, 4> k,
                                     tensor_view<float const, 4> v, tensor_view<float, 4> out, attention_options<float> const& options) {
    // deq::attention's validation, with its element-by-element finiteness check replaced by a vectorisable
    // one; when that finds a NaN or infinity, the full check runs for its message (tensor and index).
    attention_options<float> unchecked = options;
    unchecked.check_finite = false;
    attention_validate(q, k, v, out, unchecked);
    if (options.check_finite && !(bert_all_finite(q) && bert_all_finite(k) && bert_all_finite(v))) {
        attention_validate(q, k, v, out, options);
    }
    index_t const batch = q.extent(0), heads = q.extent(1), len = q.extent(2), dim = q.extent(3), dv = v.extent(3);
    std::vector<attention_row_record> records(static_cast<std::size_t>(batch * heads * len));
    key_padding const padding = options.padding;
    float const scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)));
    float const pen = static_cast<float>(attention_penalty);
    // Additive key penalties per sequence (0 for a real key, -10000 for a padded one).
    std::vector<float> penalties(static_cast<std::size_t>(batch * len), 0.0f);
    std::vector<index_t> real_keys(static_cast<std::size_t>(batch), 0);
    for (index_t b = 0; b < batch; ++b)
        for (index_t j = 0; j < len; ++j) {
            bool const valid = padding.is_valid(b, j);
            penalties[static_cast<std::size_t>(b * len + j)] = valid ? 0.0f : pen;
            real_keys[static_cast<std::size_t>(b)] += valid ? 1 : 0;
        }
    exec::parallel_for(space, batch * heads, [=, rec = records.data(), pens = penalties.data(), reals = real_keys.data()](index_t bh) {
        index_t const b = bh / heads, h = bh - b * heads;
        std::unique_ptr<float[]> const scores(new float[static_cast<std::size_t>(len * len)]);
        float* const s = scores.get();
        float const* qb = &q(b, h, 0, 0);
        float const* kb = &k(b, h, 0, 0);
        float const* vb = &v(b, h, 0, 0);
        float* ob = &out(b, h, 0, 0);
        int const l = static_cast<int>(len);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, static_cast<int>(dim), scale, qb, static_cast<int>(q.stride(2)), kb,
                    static_cast<int>(k.stride(2)), 0.0f, s, l);
        bert_simd_run([&] {
            for (index_t i = 0; i < len; ++i) bert_softmax_row(s + i * len, pens + b * len, len);
        });
        for (index_t i = 0; i < len; ++i) {
            attention_row_record& r = rec[(b * heads + h) * len + i];
            r.kept_real = reals[b];
            r.high_real = reals[b];
            r.exact_scores = len;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, static_cast<int>(dv), l, 1.0f, s, l, vb, static_cast<int>(v.stride(2)),
                    0.0f, ob, static_cast<int>(out.stride(2)));
    });
    return attention_reduce_stats(records, batch, heads, len, len, options);
}

}  // namespace deq::detail
