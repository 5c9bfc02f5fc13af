/// @file
/// @brief Kernels of Sanger's score predictor: per-row L2 normalisation + quantization, and the
/// integer score rows (internal; see deq/predict/sanger_predictor.hpp).
#pragma once

#include <cmath>
#include <cstdint>

#include "../../config.hpp"
#include "../../core/tensor.hpp"
#include "../../quant/symmetric_scalar.hpp"

namespace deq::detail {

/// Row status written by predictor_quantize_rows: the row is fine.
inline constexpr index_t predictor_row_ok = -1;
/// Row status written by predictor_quantize_rows: the row's L2 norm overflows the score type.
inline constexpr index_t predictor_row_norm_overflow = -2;

/// Splits a flat row index r of a [B, H, L] grid into (b, h, i).
DEQ_HOST_DEVICE inline void predictor_split_row(index_t r, index_t heads, index_t length, index_t& b, index_t& h,
                                                index_t& i) {
    index_t const per_batch = heads * length;
    b = r / per_batch;
    index_t const rem = r - b * per_batch;
    h = rem / length;
    i = rem - h * length;
}

/// L2 norm of row (b, h, i) of @p x in the score type S: the sum of squares is accumulated in double and
/// the square root rounded once to S (the correctly rounded norm). Returns false, with @p bad_col set, if
/// an element is not finite.
template <class T, class S>
DEQ_HOST_DEVICE inline bool predictor_row_norm(tensor_view<T const, 4> const& x, index_t b, index_t h, index_t i,
                                               S& norm, index_t& bad_col) {
    index_t const dim = x.extent(3);
    double sumsq = 0;
    for (index_t t = 0; t < dim; ++t) {
        S const v = static_cast<S>(x(b, h, i, t));
        if (!std::isfinite(v)) {
            bad_col = t;
            return false;
        }
        double const dv = static_cast<double>(v);
        sumsq += dv * dv;
    }
    norm = static_cast<S>(std::sqrt(sumsq));
    return true;
}

/// Normalises each row of a [B, H, L, d] tensor by its L2 norm and quantizes it symmetrically:
/// `levels[r, t] = clamp(round_half_even((x[r, t] / norm_r) * scale), -qmax, qmax)`; a zero-norm row
/// is all zero levels. One work item per row.
/// @tparam T     Element type of the input.
/// @tparam S     Score type (float or double).
/// @tparam Level Integer storage type of the levels (int8_t or int16_t).
template <class T, class S, class Level>
struct predictor_quantize_rows {
    tensor_view<T const, 4> x;  ///< Input rows.
    Level* levels;              ///< Output levels, [rows, d] contiguous.
    S* norms;                   ///< Output norms, [rows].
    index_t* status;            ///< Output status: predictor_row_ok, _norm_overflow or first non-finite column.
    S scale;                    ///< Quantization scale (qmax / threshold).
    int bits;                   ///< Bit width.

    DEQ_HOST_DEVICE void operator()(index_t r) const {
        index_t b = 0, h = 0, i = 0;
        predictor_split_row(r, x.extent(1), x.extent(2), b, h, i);
        index_t const dim = x.extent(3);
        Level* out = levels + r * dim;
        S norm = 0;
        index_t bad = predictor_row_ok;
        bool const finite = predictor_row_norm(x, b, h, i, norm, bad);
        if (finite && !std::isfinite(norm)) bad = predictor_row_norm_overflow;
        status[r] = bad;
        if (!finite || bad != predictor_row_ok || norm == S(0)) {
            norms[r] = S(0);
            for (index_t t = 0; t < dim; ++t) out[t] = Level(0);
            return;
        }
        norms[r] = norm;
        for (index_t t = 0; t < dim; ++t) {
            S const unit = static_cast<S>(x(b, h, i, t)) / norm;
            out[t] = static_cast<Level>(::deq::quant::quantize_symmetric(unit, scale, bits));
        }
    }
};

/// Computes one row of predicted scores per work item:
/// `scores[b,h,i,j] = S(Σ_t Q[i,t]·K[j,t]) / (sx·sy) · (‖q_i‖·‖k_j‖) / sqrt(d)` with the integer dot product
/// accumulated in @p Acc.
/// @tparam S     Score type.
/// @tparam Level Integer storage type of the levels.
/// @tparam Acc   Integer accumulator (int32_t, or int64_t where int32 could overflow).
template <class S, class Level, class Acc>
struct predictor_score_rows {
    Level const* q_levels;      ///< [B*H*Lq, d].
    S const* q_norms;           ///< [B*H*Lq].
    Level const* k_levels;      ///< [B*H*Lk, d].
    S const* k_norms;           ///< [B*H*Lk].
    tensor_view<S, 4> scores;   ///< Output [B, H, Lq, Lk].
    S scale_product;            ///< sx * sy.
    S sqrt_d;                   ///< sqrt(d) rounded to S.
    index_t dim;                ///< Head dimension d.

    DEQ_HOST_DEVICE void operator()(index_t r) const {
        index_t b = 0, h = 0, i = 0;
        index_t const heads = scores.extent(1), lq = scores.extent(2), lk = scores.extent(3);
        predictor_split_row(r, heads, lq, b, h, i);
        Level const* qrow = q_levels + r * dim;
        S const qn = q_norms[r];
        index_t const kbase = (b * heads + h) * lk;
        for (index_t j = 0; j < lk; ++j) {
            Level const* krow = k_levels + (kbase + j) * dim;
            Acc dot = 0;
            for (index_t t = 0; t < dim; ++t) dot += static_cast<Acc>(qrow[t]) * static_cast<Acc>(krow[t]);
            scores(b, h, i, j) = static_cast<S>(dot) / scale_product * (qn * k_norms[kbase + j]) / sqrt_d;
        }
    }
};

}  // namespace deq::detail
