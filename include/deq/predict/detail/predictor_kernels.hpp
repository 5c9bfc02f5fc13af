/// @file
/// @brief Kernel of Sanger's score predictor: per-row L2 normalisation + quantization (internal; see
/// deq/predict/sanger_predictor.hpp; the score tiles are in predictor_tiles.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../arch/isa.hpp"
#include "../../arch/predictor_avx2.hpp"
#include "../../arch/predictor_avx512.hpp"
#include "../../config.hpp"
#include "../../core/tensor.hpp"
#include "../../numeric/unfused.hpp"
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
    index_t const dim = x.extent(3), stride = x.stride(3);
    T const* const row = &x(b, h, i, 0);
    double sumsq = 0;
    for (index_t t = 0; t < dim; ++t) {
        S const v = static_cast<S>(row[t * stride]);
        if (!std::isfinite(v)) {
            bad_col = t;
            return false;
        }
        sumsq = add_square_unfused(sumsq, static_cast<double>(v));
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
    Level* levels;              ///< Output levels, [rows, ld] (entries past d are left as they are: 0).
    S* norms;                   ///< Output norms, [rows].
    index_t* status;            ///< Output status: predictor_row_ok, _norm_overflow or first non-finite column.
    S scale;                    ///< Quantization scale (qmax / threshold).
    int bits;                   ///< Bit width.
    index_t ld;                 ///< Row stride of @p levels (>= d).
    arch::isa tier = arch::isa::portable;  ///< Tier of the element loop (float rows, int8 levels only).

    DEQ_HOST_DEVICE void operator()(index_t r) const {
        index_t b = 0, h = 0, i = 0;
        predictor_split_row(r, x.extent(1), x.extent(2), b, h, i);
        S norm = 0;
        index_t bad = predictor_row_ok;
        bool const finite = predictor_row_norm(x, b, h, i, norm, bad);
        store(r, b, h, i, finite, norm, bad);
    }

    /// Writes the status, norm and levels of row r = (b, h, i) given its norm (predictor_row_norm()'s results).
    DEQ_HOST_DEVICE void store(index_t r, index_t b, index_t h, index_t i, bool finite, S norm, index_t bad) const {
        index_t const dim = x.extent(3);
        Level* out = levels + r * ld;
        if (finite && !std::isfinite(norm)) bad = predictor_row_norm_overflow;
        status[r] = bad;
        if (!finite || bad != predictor_row_ok || norm == S(0)) {
            norms[r] = S(0);
            for (index_t t = 0; t < dim; ++t) out[t] = Level(0);
            return;
        }
        norms[r] = norm;
#if DEQ_ARCH_X86 && !DEQ_DEVICE_PASS
        if constexpr (std::is_same_v<T, float> && std::is_same_v<S, float> && std::is_same_v<Level, std::int8_t>) {
            if (tier != arch::isa::portable && x.stride(3) == 1) {
                int const qmax = static_cast<int>(::deq::quant::max_symmetric_level(bits));
                if (tier == arch::isa::avx512) {
                    arch::avx512::quantize_row(&x(b, h, i, 0), dim, norm, scale, qmax, out);
                } else {
                    arch::avx2::quantize_row(&x(b, h, i, 0), dim, norm, scale, qmax, out);
                }
                return;
            }
        }
#endif
        for (index_t t = 0; t < dim; ++t) {
            S const unit = static_cast<S>(x(b, h, i, t)) / norm;
            out[t] = static_cast<Level>(::deq::quant::quantize_symmetric(unit, scale, bits));
        }
    }
};

/// Whether every dot product of two rows of @p dim levels fits int32 (|level| <= 127 for int8_t storage,
/// 32767 for int16_t); otherwise predictor_score_value() accumulates in int64.
/// @tparam Level Level storage type.
/// @param dim Head dimension.
/// @return True when int32 accumulation cannot overflow.
template <class Level>
DEQ_HOST_DEVICE constexpr bool predictor_dot_fits_int32(index_t dim) {
    std::int64_t const qmax = sizeof(Level) == 1 ? 127 : 32767;
    return qmax * qmax * dim <= std::int64_t{2147483647};
}

/// A predicted score from the exact integer dot product of its two level rows (as S): the reference
/// formula `S(dot) / sxy * (qn · kn) / sqrt_d`, in that order (products and quotients only, so no
/// compiler contracts them into fused operations; every backend computes it this way).
/// @tparam S Score type.
/// @param dot    The dot product, converted to S.
/// @param qn     The query row's norm.
/// @param kn     The key row's norm.
/// @param sxy    The product of the two scales.
/// @param sqrt_d sqrt(d) in S.
/// @return Ŝ of the pair.
template <class S>
DEQ_HOST_DEVICE inline S predictor_score_from_dot(S dot, S qn, S kn, S sxy, S sqrt_d) {
    return dot / sxy * (qn * kn) / sqrt_d;
}

/// One predicted score, the reference formula: the exact integer dot product of the two level rows,
/// then `S(dot) / sxy * (qn · kn) / sqrt_d`, in that order (the portable tier of the host, and the
/// CUDA backend: products and quotients only, so no compiler contracts them into fused operations).
/// @tparam S     Score type.
/// @tparam Level Level storage type.
/// @param qr         Query levels (dim entries).
/// @param kr         Key levels (dim entries).
/// @param dim        Head dimension.
/// @param fits_int32 predictor_dot_fits_int32<Level>(dim).
/// @param qn         The query row's norm.
/// @param kn         The key row's norm.
/// @param sxy        The product of the two scales.
/// @param sqrt_d     sqrt(d) in S.
/// @return Ŝ of the pair.
template <class S, class Level>
DEQ_HOST_DEVICE inline S predictor_score_value(Level const* qr, Level const* kr, index_t dim, bool fits_int32, S qn, S kn, S sxy,
                                               S sqrt_d) {
    S dot_s;
    if (fits_int32) {
        std::int32_t dot = 0;
        for (index_t t = 0; t < dim; ++t) dot += static_cast<std::int32_t>(qr[t]) * static_cast<std::int32_t>(kr[t]);
        dot_s = static_cast<S>(dot);
    } else {
        std::int64_t dot = 0;
        for (index_t t = 0; t < dim; ++t) dot += static_cast<std::int64_t>(qr[t]) * static_cast<std::int64_t>(kr[t]);
        dot_s = static_cast<S>(dot);
    }
    return predictor_score_from_dot(dot_s, qn, kn, sxy, sqrt_d);
}

/// Rows per work item of predictor_quantize_blocks.
inline constexpr index_t predictor_quantize_block = 8;

/// predictor_quantize_rows over blocks of predictor_quantize_block rows: on the AVX-512 tier (float rows
/// and scores) the block's sums of squares run in the 8 lanes of one register, each lane in the scalar
/// loop's order (arch::avx512::sum_squares_rows8), so the norms keep their bits while 8 rows' serial
/// double additions overlap. A row with a non-finite sum, and every row on the other tiers, takes the
/// row kernel (which names the first non-finite column). One work item per block.
template <class T, class S, class Level>
struct predictor_quantize_blocks {
    predictor_quantize_rows<T, S, Level> row;  ///< The row kernel.
    index_t rows;                              ///< Rows in all.

    DEQ_HOST_DEVICE void operator()(index_t block) const {
        index_t const r0 = block * predictor_quantize_block;
        index_t const r1 = r0 + predictor_quantize_block < rows ? r0 + predictor_quantize_block : rows;
#if DEQ_ARCH_X86 && !DEQ_DEVICE_PASS
        if constexpr (std::is_same_v<T, float> && std::is_same_v<S, float>) {
            if (row.tier == arch::isa::avx512 && r1 - r0 > 1 && row.x.extent(3) > 0) {
                float const* ptr[predictor_quantize_block] = {};
                index_t b[predictor_quantize_block], h[predictor_quantize_block], i[predictor_quantize_block];
                for (index_t r = r0; r < r1; ++r) {
                    index_t const n = r - r0;
                    predictor_split_row(r, row.x.extent(1), row.x.extent(2), b[n], h[n], i[n]);
                    ptr[n] = &row.x(b[n], h[n], i[n], 0);
                }
                double sums[predictor_quantize_block];
                arch::avx512::sum_squares_rows8(ptr, static_cast<int>(r1 - r0), row.x.extent(3), row.x.stride(3), sums);
                for (index_t r = r0; r < r1; ++r) {
                    index_t const n = r - r0;
                    if (std::isfinite(sums[n])) {
                        row.store(r, b[n], h[n], i[n], true, static_cast<S>(std::sqrt(sums[n])), predictor_row_ok);
                    } else {
                        row(r);
                    }
                }
                return;
            }
        }
#endif
        for (index_t r = r0; r < r1; ++r) row(r);
    }
};

}  // namespace deq::detail
