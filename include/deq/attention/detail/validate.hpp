/// @file
/// @brief Host-side validation of attention arguments (internal; see deq/attention/attention.hpp).
#pragma once

#include <cmath>
#include <type_traits>

#include "../../arch/isa.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/error.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../mask/detail/softmax_row.hpp"
#include "../../numeric/finite.hpp"
#include "../options.hpp"

namespace deq::detail {

/// Throws deq::shape_error if any extent of @p x is zero.
template <class T>
void attention_require_nonzero(char const* name, tensor_view<T, 4> const& x) {
    for (int r = 0; r < 4; ++r) {
        if (x.extent(r) == 0) throw_shape_error(concat("'", name, "' has shape ", x.shape_string(), ": no extent may be zero"));
    }
}

/// Throws deq::shape_error naming @p name unless @p x has the extents @p e0..@p e3.
template <class T>
void attention_require_shape(char const* name, tensor_view<T, 4> const& x, index_t e0, index_t e1, index_t e2, index_t e3,
                             char const* relation) {
    if (x.extent(0) != e0 || x.extent(1) != e1 || x.extent(2) != e2 || x.extent(3) != e3) {
        throw_shape_error(concat("'", name, "' has shape ", x.shape_string(), ", expected [", e0, ", ", e1, ", ", e2, ", ",
                                 e3, "] (", relation, ")"));
    }
}

/// Checks the shapes of q [B, H, Lq, d], k [B, H, Lk, d], v [B, H, Lk, dv] and out [B, H, Lq, dv].
template <class Q, class K, class V, class O>
void attention_check_operands(tensor_view<Q, 4> const& q, tensor_view<K, 4> const& k, tensor_view<V, 4> const& v,
                              tensor_view<O, 4> const& out) {
    attention_require_nonzero("q", q);
    attention_require_nonzero("k", k);
    attention_require_nonzero("v", v);
    attention_require_nonzero("out", out);
    if (k.extent(0) != q.extent(0) || k.extent(1) != q.extent(1) || k.extent(3) != q.extent(3)) {
        throw_shape_error(concat("'k' has shape ", k.shape_string(), " but 'q' has shape ", q.shape_string(),
                                 ": batch, heads and head dimension must agree"));
    }
    if (v.extent(0) != k.extent(0) || v.extent(1) != k.extent(1) || v.extent(2) != k.extent(2)) {
        throw_shape_error(concat("'v' has shape ", v.shape_string(), " but 'k' has shape ", k.shape_string(),
                                 ": batch, heads and key length must agree"));
    }
    attention_require_shape("out", out, q.extent(0), q.extent(1), q.extent(2), v.extent(3), "[B, H, Lq] of 'q', dv of 'v'");
}

/// Checks a mask view against [B or 1, H or 1, Lq, Lk].
inline void attention_check_mask(char const* name, const_bit_mask_view const& m, index_t batch, index_t heads, index_t lq,
                                 index_t lk) {
    if (m.empty()) return;
    bool const ok = (m.batch() == batch || m.batch() == 1) && (m.heads() == heads || m.heads() == 1) && m.rows() == lq &&
                    m.cols() == lk;
    if (!ok) {
        throw_shape_error(concat("'", name, "' mask has shape [", m.batch(), ", ", m.heads(), ", ", m.rows(), ", ", m.cols(),
                                 "], expected [", batch, " or 1, ", heads, " or 1, ", lq, ", ", lk, "]"));
    }
}

/// Throws deq::numeric_error naming @p name and the index of its first non-finite element.
template <class S, class T>
void attention_check_finite(char const* name, tensor_view<T, 4> const& x) {
    arch::isa const tier = arch::active_isa();
    index_t const n = x.extent(3), stride = x.stride(3);
    for (index_t a = 0; a < x.extent(0); ++a)
        for (index_t b = 0; b < x.extent(1); ++b)
            for (index_t c = 0; c < x.extent(2); ++c) {
                T const* row = &x(a, b, c, 0);
                index_t bad = -1;
                if constexpr (std::is_same_v<std::remove_cv_t<T>, float>) {
                    if (stride == 1) {  // the vectorised scan of the float rows
                        float max = 0;
                        bad = row_max_checked(row, n, max, tier);
                    }
                }
                if (!(std::is_same_v<std::remove_cv_t<T>, float> && stride == 1)) {
                    for (index_t d = 0; d < n && bad < 0; ++d)
                        if (!std::isfinite(static_cast<S>(row[d * stride]))) bad = d;
                }
                if (bad >= 0) throw_non_finite_element(name, static_cast<double>(static_cast<S>(row[bad * stride])), a, b, c, bad);
            }
}

/// Validates the arguments of attention() that do not need their values: shapes, masks, the presence
/// of the predicted scores and the policy (on every execution space, before anything runs).
/// @param fused_predicted True when a pipeline computes the predicted scores itself (from the quantized
///                        q and k) instead of passing them in `options.predicted`.
template <class T, class S>
void attention_validate_arguments(tensor_view<T const, 4> const& q, tensor_view<T const, 4> const& k,
                                  tensor_view<T const, 4> const& v, tensor_view<T, 4> const& out,
                                  attention_options<S> const& options, bool fused_predicted = false) {
    attention_check_operands(q, k, v, out);
    index_t const batch = q.extent(0), heads = q.extent(1), lq = q.extent(2), lk = k.extent(2);
    options.padding.check(batch, lk, "padding");
    options.query_padding.check(batch, lq, "query_padding");
    attention_check_mask("kept", options.kept, batch, heads, lq, lk);
    attention_check_mask("refined", options.refined, batch, heads, lq, lk);
    bool const has_predicted = options.predicted.data() != nullptr;
    if (!options.refined.empty() && !has_predicted && !fused_predicted) {
        throw_invalid_argument("predicted", "<empty>", "is required when 'refined' is given (the unrefined scores)");
    }
    if (has_predicted) attention_require_shape("predicted", options.predicted, batch, heads, lq, lk, "[B, H, Lq, Lk]");
    if (options.empty_rows != empty_row_policy::reference && options.empty_rows != empty_row_policy::uniform &&
        options.empty_rows != empty_row_policy::zero) {
        throw_invalid_argument("empty_rows", static_cast<int>(options.empty_rows), "must be reference, uniform or zero");
    }
}

/// Validates every argument of attention() on the host: attention_validate_arguments() and, with
/// `check_finite`, the values (q, k, v, then Ŝ where it is used).
/// @param fused_predicted See attention_validate_arguments().
template <class T, class S>
void attention_validate(tensor_view<T const, 4> const& q, tensor_view<T const, 4> const& k,
                        tensor_view<T const, 4> const& v, tensor_view<T, 4> const& out,
                        attention_options<S> const& options, bool fused_predicted = false) {
    attention_validate_arguments(q, k, v, out, options, fused_predicted);
    bool const has_predicted = options.predicted.data() != nullptr;
    if (options.check_finite) {
        attention_check_finite<S>("q", q);
        attention_check_finite<S>("k", k);
        attention_check_finite<S>("v", v);
        if (!options.refined.empty() && has_predicted) attention_check_finite<S>("predicted", options.predicted);
    }
}

}  // namespace deq::detail
