/// @file
/// @brief `deq::detail::bert_dense_attention`: the encoder's dense attention on the CBLAS (two `sgemm`
/// calls per sequence and head), with the arithmetic of deq's row kernel between them.
///
/// Per (b, h): S = Q·Kᵀ (sgemm), then per query row the row kernel's softmax: x_j = S_ij / √d, −10000
/// added at padded keys, maximum subtracted, exp, sum in key order, division; weights below the smallest
/// normal float become 0 (as in the row kernel); then O = P·V (sgemm). The sums inside the products are
/// ordered by the BLAS library, so outputs differ from deq::attention by rounding only. Statistics are
/// the same as deq::attention's for dense attention (every valid pair kept and exact).
#pragma once

#include <cblas.h>

#include <cmath>
#include <vector>

#include "../../attention/attention.hpp"
#include "../../exec/execution_space.hpp"

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
    attention_validate(q, k, v, out, options);
    index_t const batch = q.extent(0), heads = q.extent(1), len = q.extent(2), dim = q.extent(3), dv = v.extent(3);
    std::vector<attention_row_record> records(static_cast<std::size_t>(batch * heads * len));
    key_padding const padding = options.padding;
    float const sqrt_d = static_cast<float>(std::sqrt(static_cast<double>(dim)));
    float const pen = static_cast<float>(attention_penalty);
    float const smallest_normal = 1.17549435082228750797e-38f;
    exec::parallel_for(space, batch * heads, [=, rec = records.data()](index_t bh) {
        index_t const b = bh / heads, h = bh - b * heads;
        std::vector<float> s(static_cast<std::size_t>(len * len));
        float const* qb = &q(b, h, 0, 0);
        float const* kb = &k(b, h, 0, 0);
        float const* vb = &v(b, h, 0, 0);
        float* ob = &out(b, h, 0, 0);
        int const l = static_cast<int>(len);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, static_cast<int>(dim), 1.0f, qb, static_cast<int>(q.stride(2)), kb,
                    static_cast<int>(k.stride(2)), 0.0f, s.data(), l);
        index_t real_keys = 0;
        for (index_t j = 0; j < len; ++j) real_keys += padding.is_valid(b, j) ? 1 : 0;
        for (index_t i = 0; i < len; ++i) {
            float* row = s.data() + i * len;
            float m = 0;
            for (index_t j = 0; j < len; ++j) {
                float x = row[j] / sqrt_d;
                if (!padding.is_valid(b, j)) x = x + pen;
                row[j] = x;
                m = (j == 0 || x > m) ? x : m;
            }
            float sum = 0;
            for (index_t j = 0; j < len; ++j) {
                float const e = std::exp(row[j] - m);
                row[j] = e;
                sum += e;
            }
            for (index_t j = 0; j < len; ++j) {
                float const p = row[j] / sum;
                row[j] = p < smallest_normal ? 0.0f : p;
            }
            attention_row_record& r = rec[(b * heads + h) * len + i];
            r.kept_real = real_keys;
            r.high_real = real_keys;
            r.exact_scores = len;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, static_cast<int>(dv), l, 1.0f, s.data(), l, vb, static_cast<int>(v.stride(2)),
                    0.0f, ob, static_cast<int>(out.stride(2)));
    });
    return attention_reduce_stats(records, batch, heads, len, len, options);
}

}  // namespace deq::detail
