/// @file
/// @brief AVX-512 micro-kernels of the flash-style attention (internal; see
/// deq/attention/detail/flash_attention.hpp): transposed key packing, a vectorised exp, and the tile
/// loop of one group of query rows with online softmax.
///
/// A group of R <= 6 query rows walks the keys in tiles of 64. For each tile: the exact scores
/// `S = q·k / sqrt(d)` (a 6 x 64 register tile, 24 accumulators, one broadcast of q_i[t] against four
/// 16-key vectors of the transposed keys per step), the reference's additive penalties (-10000 for a
/// pruned entry, -10000 for a padded key, in that order), the running row maximum m and sum l with the
/// rescaling of the output accumulators when m grows, `P = exp(S - m)`, and `O += P · V` (a 6 x 64
/// register tile per 64 value columns). The output is `O / l`. No L x L buffer exists: per group the
/// kernel keeps 6 x dv accumulators and 6 x 64 probabilities.
///
/// The arithmetic is that of the reference row kernel up to rounding (dot products summed in another
/// order, a multiplication by 1 / sqrt(d) for the division, exp within 2 ulp, the online rescaling):
/// outputs agree to about 1e-6 relative in float.
/// Anything unusual — a non-finite score (finite inputs whose scores overflow) — is reported per row
/// and the caller recomputes such rows with the reference kernel.
///
/// Why intrinsics: the register blocking (24 accumulators, broadcast operands folded into the FMAs),
/// AVX-512's masked penalties and `vscalefps` exp are what reach 150+ GFLOP/s per core; a portable
/// SIMD library would not express the masked tile tails and penalties as directly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/tensor.hpp"
#include "isa.hpp"
#include "predictor_avx512.hpp"

#if DEQ_ARCH_X86
// GCC 12 warns about the `__m512 __Y = __Y;` idiom of its own intrinsic headers once they are inlined
// (GCC bug 105593, fixed in GCC 13): silenced for the intrinsics and the kernels of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace deq::arch::avx512 {

/// Keys per attention tile (four 16-float vectors, one 64-bit mask word).
inline constexpr index_t flash_keys = 64;
/// Largest number of query rows of one register tile.
inline constexpr int flash_rows = 6;

/// exp(x) for 16 floats: Cephes' polynomial on the reduced argument, scaled by 2^n with `vscalefps`;
/// 0 below -87.33 (results under the smallest normal float are flushed, as the reference kernel skips
/// weights under it), within 2 ulp elsewhere. NaN is not expected (the caller checks the scores).
/// @param x The arguments.
/// @return exp(x).
DEQ_TARGET_AVX512 inline __m512 exp_ps(__m512 x) {
    __m512 const lo = _mm512_set1_ps(-87.33654475f);
    __mmask16 const keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.37626266f));
    __m512 const n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 const y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(y, n));
}

/// Transposes a 16 x 16 block of floats: `dst[t * ld_dst + j] = src[j * ld_src + t]` for j, t < 16,
/// with rows j >= @p rows read as 0.
/// @param src    Source rows (16 floats each, @p ld_src apart).
/// @param ld_src Source row stride.
/// @param rows   Valid source rows (1..16).
/// @param dst    Destination rows (16 floats each, @p ld_dst apart).
/// @param ld_dst Destination row stride.
DEQ_TARGET_AVX512 inline void transpose16(float const* src, index_t ld_src, index_t rows, float* dst, index_t ld_dst) {
    __m512 r[16];
    for (int j = 0; j < 16; ++j) r[j] = j < rows ? _mm512_loadu_ps(src + j * ld_src) : _mm512_setzero_ps();
    // Stage 1: interleave pairs of rows (32-bit), stage 2: 64-bit, stage 3 and 4: 128-bit lanes.
    __m512 t[16];
    for (int j = 0; j < 16; j += 2) {
        t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 16; j += 4) {
        r[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[j]), _mm512_castps_pd(t[j + 2])));
        r[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[j]), _mm512_castps_pd(t[j + 2])));
        r[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[j + 1]), _mm512_castps_pd(t[j + 3])));
        r[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[j + 1]), _mm512_castps_pd(t[j + 3])));
    }
    for (int j = 0; j < 4; ++j) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0x88);
        t[j + 4] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0xDD);
        t[j + 8] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], 0x88);
        t[j + 12] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], 0xDD);
    }
    for (int j = 0; j < 4; ++j) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
        r[j + 4] = _mm512_shuffle_f32x4(t[j + 4], t[j + 12], 0x88);
        r[j + 12] = _mm512_shuffle_f32x4(t[j + 4], t[j + 12], 0xDD);
    }
    // r[c] now holds column c of the block (its element j is row j's entry c).
    for (int c = 0; c < 16; ++c) _mm512_storeu_ps(dst + c * ld_dst, r[c]);
}

/// Packs the keys of one (batch, head) transposed in tiles of 64: `out[(tile * dim + t) * 64 + jj] =
/// k[tile * 64 + jj][t]`, 0 for keys past @p lk.
/// @tparam T Key element type (converted to float).
/// @param k      Pointer to key (0, 0) of this (batch, head).
/// @param row    Stride between keys.
/// @param col    Stride between head-dimension entries.
/// @param lk     Number of keys.
/// @param dim    Head dimension.
/// @param out    ceil(lk / 64) * dim * 64 floats.
template <class T>
void pack_keys_transposed(T const* k, index_t row, index_t col, index_t lk, index_t dim, float* out) {
    index_t const tiles = lk / flash_keys + (lk % flash_keys != 0 ? 1 : 0);
    if constexpr (std::is_same_v<T, float>) {
        if (col == 1 && dim % 16 == 0) {  // 16 x 16 blocks transposed in registers
            for (index_t tile = 0; tile < tiles; ++tile) {
                float* dst = out + tile * dim * flash_keys;
                index_t const nk = lk - tile * flash_keys < flash_keys ? lk - tile * flash_keys : flash_keys;
                for (index_t j0 = 0; j0 < flash_keys; j0 += 16) {
                    index_t const rows = nk - j0 < 16 ? (nk - j0 > 0 ? nk - j0 : 0) : 16;
                    for (index_t t0 = 0; t0 < dim; t0 += 16) {
                        transpose16(k + (tile * flash_keys + j0) * row + t0, row, rows, dst + t0 * flash_keys + j0, flash_keys);
                    }
                }
            }
            return;
        }
    }
    for (index_t tile = 0; tile < tiles; ++tile) {
        float* dst = out + tile * dim * flash_keys;
        index_t const nk = lk - tile * flash_keys < flash_keys ? lk - tile * flash_keys : flash_keys;
        T const* src = k + tile * flash_keys * row;
        for (index_t t = 0; t < dim; ++t) {  // contiguous writes; the 64 source rows stay in the L1 cache
            float* d = dst + t * flash_keys;
            for (index_t jj = 0; jj < nk; ++jj) d[jj] = static_cast<float>(src[jj * row + t * col]);
            for (index_t jj = nk; jj < flash_keys; ++jj) d[jj] = 0.0f;
        }
    }
}

/// One (batch, head) of a flash attention call, as the micro-kernel sees it.
struct flash_head {
    float const* kt = nullptr;               ///< Transposed key tiles (pack_keys_transposed).
    float const* v = nullptr;                ///< Values: row j at v + j * v_row, dv contiguous floats.
    index_t v_row = 0;                       ///< Stride between value rows.
    index_t lk = 0;                          ///< Keys.
    index_t dim = 0;                         ///< Head dimension.
    index_t dv = 0;                          ///< Value dimension.
    float sqrt_d = 1;                        ///< sqrt(d) in float (scores are divided by it).
    std::uint64_t const* padded = nullptr;   ///< Per tile, the padded keys of this sequence (bit = padded); null: none.
    float const* k_rows = nullptr;           ///< Keys row by row (key j at k_rows + j * k_row, dim contiguous floats),
                                             ///< for scores computed one by one (flash_scores::sparse).
    index_t k_row = 0;                       ///< Stride between the rows of k_rows.
};

/// How a tile's exact scores q·k / sqrt(d) are computed.
enum class flash_scores {
    none,    ///< Not at all: every score of the tile is a predicted one.
    sparse,  ///< One by one, only the refined entries (few of them).
    dense,   ///< As a register tile, every entry.
    kept     ///< As a register tile, every entry (the same arithmetic as `dense`), but P·V reads only the values of
             ///< the keys that a row of the group keeps: the caller has proved that every other entry's weight
             ///< is exactly 0 (its score is at most a bound that, with the -10000 penalty, lies more than 800
             ///< below the row's maximum), so skipping those keys changes no output.
};

/// Refined entries of a group's tile up to which flash_scores::sparse is cheaper than the dense tile,
/// per row of the group (one dot product costs about a tenth of a row of the register tile).
inline constexpr int flash_sparse_per_row = 8;

/// The dot product of a query row (pre-scaled) with one key row, 16 entries at a time.
/// @param q   The query row.
/// @param k   The key row.
/// @param dim Entries.
/// @return Σ_t q[t] k[t].
DEQ_TARGET_AVX512 inline float flash_dot(float const* q, float const* k, index_t dim) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    index_t t = 0;
    for (; t + 32 <= dim; t += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + t), _mm512_loadu_ps(k + t), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + t + 16), _mm512_loadu_ps(k + t + 16), a1);
    }
    for (; t < dim; t += 16) {
        __mmask16 const m = dim - t >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (dim - t)) - 1u);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + t), _mm512_maskz_loadu_ps(m, k + t), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/// The state of one query row in a group.
struct flash_row {
    float const* q = nullptr;            ///< The query row (dim contiguous floats).
    std::uint64_t const* kept = nullptr; ///< The row's kept mask words (one per tile); null: all kept.
    std::uint64_t const* refined = nullptr; ///< The row's refined mask words; null: all exact (no predicted scores).
    float const* predicted = nullptr;    ///< The row's predicted scores Ŝ (lk contiguous floats), with `refined`.
    float* out = nullptr;                ///< The output row (dv contiguous floats).
    float m = 0;                         ///< The reference maximum of the exponentials (valid once `started`).
    alignas(64) float l[16] = {};        ///< Running sums of exp(s - m), one per lane (added by flash_finish()).
    bool started = false;                ///< Whether a tile was accumulated.
    bool bad = false;                    ///< A score was not finite: the caller recomputes the row.
};

/// The largest amount by which a score may exceed a row's reference maximum before the row is rescaled
/// (lazy rescaling: exp(s - m) <= e^16 cannot overflow the sums, and the output accumulators are
/// rescaled only when the maximum grows by more than this).
inline constexpr float flash_rescale_margin = 16.0f;

/// Horizontal maximum of 16 floats.
DEQ_TARGET_AVX512 inline float hmax(__m512 x) { return _mm512_reduce_max_ps(x); }
/// Horizontal sum of 16 floats.
DEQ_TARGET_AVX512 inline float hsum(__m512 x) { return _mm512_reduce_add_ps(x); }

/// `O += P · V` for one block of at most 64 value columns of a group's tile: for each visited key j,
/// the R rows' accumulators gain p_rj · v_j (the FMAs of the block's VC vectors only).
/// @tparam R  Rows in the group (1..6).
/// @tparam VC 16-float vectors in the block (1..4).
/// @param vbase   Value row of the tile's first key, at the block's first column.
/// @param v_row   Stride between value rows.
/// @param visited The keys (bits of the tile) whose values are read.
/// @param pbuf    R x 64 probabilities.
/// @param acc     Accumulators of the block's first column, R rows @p ldacc apart (padded to whole vectors).
/// @param ldacc   Row stride of @p acc.
/// @param tail    Valid lanes of the block's last vector.
template <int R, int VC>
DEQ_TARGET_AVX512 inline void flash_pv(float const* vbase, index_t v_row, std::uint64_t visited, float const* pbuf, float* acc,
                                       index_t ldacc, __mmask16 tail) {
    __m512 o[R][VC];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int c = 0; c < VC; ++c) o[r][c] = _mm512_loadu_ps(acc + r * ldacc + 16 * c);
    for (std::uint64_t w = visited; w != 0; w &= w - 1) {
        index_t const jj = __builtin_ctzll(w);
        float const* const vrow = vbase + jj * v_row;
        __m512 vv[VC];
#pragma GCC unroll 4
        for (int c = 0; c < VC; ++c) vv[c] = c + 1 < VC ? _mm512_loadu_ps(vrow + 16 * c) : _mm512_maskz_loadu_ps(tail, vrow + 16 * c);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            __m512 const pb = _mm512_set1_ps(pbuf[r * flash_keys + jj]);
#pragma GCC unroll 4
            for (int c = 0; c < VC; ++c) o[r][c] = _mm512_fmadd_ps(pb, vv[c], o[r][c]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int c = 0; c < VC; ++c) _mm512_storeu_ps(acc + r * ldacc + 16 * c, o[r][c]);
}

/// Accumulates key tile @p tile into the R rows of @p rows: scores, penalties, online softmax and P·V.
/// @tparam R Rows in the group (1..6).
/// @param h     The (batch, head).
/// @param rows  The R rows.
/// @param tile  Tile index.
/// @param acc   Output accumulators, R x dv_padded floats (dv_padded a multiple of 16).
/// @param ldacc Row stride of @p acc.
/// @param pbuf  R x 64 floats of scratch for the probabilities.
/// @param scores How the exact scores of the tile are computed (none: every score is a predicted one;
///               sparse: only the refined entries, which needs `h.k_rows`).
template <int R>
DEQ_TARGET_AVX512 inline void flash_tile(flash_head const& h, flash_row* rows, index_t tile, float* acc, index_t ldacc,
                                         float* pbuf, flash_scores scores) {
    static_assert(R >= 1 && R <= flash_rows);
    index_t const j0 = tile * flash_keys;
    index_t const nk = h.lk - j0 < flash_keys ? h.lk - j0 : flash_keys;
    std::uint64_t const in_range = nk == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << nk) - 1);

    // S = q · kᵀ over the head dimension.
    __m512 s[R][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) s[r][c] = _mm512_setzero_ps();
    float const* kt = h.kt + tile * h.dim * flash_keys;
    std::uint64_t visited = in_range;  // keys whose values P·V reads
    if (scores == flash_scores::kept) {
        visited = 0;
        for (int r = 0; r < R; ++r) visited |= rows[r].kept[tile] & in_range;
    }
    if (scores == flash_scores::sparse) {  // the refined entries one by one, into pbuf (then loaded per lane)
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            std::uint64_t const refined_here = rows[r].refined[tile] & in_range;
            for (std::uint64_t w = refined_here; w != 0; w &= w - 1) {
                int const jj = __builtin_ctzll(w);
                pbuf[r * flash_keys + jj] = flash_dot(rows[r].q, h.k_rows + (j0 + jj) * h.k_row, h.dim);
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; ++c) {
                auto const m = static_cast<__mmask16>(refined_here >> (16 * c));
                s[r][c] = _mm512_maskz_loadu_ps(m, pbuf + r * flash_keys + 16 * c);
            }
        }
    }
    bool const exact = scores == flash_scores::dense || scores == flash_scores::kept;
    for (index_t t = 0; exact && t < h.dim; ++t) {
        __m512 const k0 = _mm512_loadu_ps(kt + t * flash_keys), k1 = _mm512_loadu_ps(kt + t * flash_keys + 16),
                     k2 = _mm512_loadu_ps(kt + t * flash_keys + 32), k3 = _mm512_loadu_ps(kt + t * flash_keys + 48);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            __m512 const qb = _mm512_set1_ps(rows[r].q[t]);
            s[r][0] = _mm512_fmadd_ps(qb, k0, s[r][0]);
            s[r][1] = _mm512_fmadd_ps(qb, k1, s[r][1]);
            s[r][2] = _mm512_fmadd_ps(qb, k2, s[r][2]);
            s[r][3] = _mm512_fmadd_ps(qb, k3, s[r][3]);
        }
    }

    // The queries are pre-scaled by 1 / sqrt(d) (the reference divides the dot product; the results agree
    // to rounding), so s already holds the scaled exact scores.
    __m512 const pen = _mm512_set1_ps(-10000.0f), ninf = _mm512_set1_ps(-__builtin_inff());
    std::uint64_t const padded = h.padded != nullptr ? h.padded[tile] : 0;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
        flash_row& row = rows[r];
        std::uint64_t const pruned = row.kept != nullptr ? ~row.kept[tile] & in_range : 0;
        bool const penalties = (pruned | padded) != 0;
        __m512 tmax = ninf, check = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
            auto const lane = [&](std::uint64_t w) { return static_cast<__mmask16>((w >> (16 * c)) & 0xFFFFu); };
            __m512 x = s[r][c];
            if (row.refined != nullptr) {  // the predicted score where the entry is not refined
                __mmask16 const valid = lane(in_range);
                __m512 const pred = _mm512_maskz_loadu_ps(valid, row.predicted + j0 + 16 * c);
                x = _mm512_mask_blend_ps(lane(row.refined[tile]), pred, x);
            }
            check = _mm512_add_ps(check, x);  // NaN or ±inf anywhere makes the sum non-finite
            if (penalties) {
                x = _mm512_mask_add_ps(x, lane(pruned), x, pen);
                x = _mm512_mask_add_ps(x, lane(padded), x, pen);
            }
            if (nk < flash_keys) x = _mm512_mask_mov_ps(ninf, lane(in_range), x);
            s[r][c] = x;
            tmax = _mm512_max_ps(tmax, x);
        }
        // A non-finite check sum: a score is NaN or ±inf, or finite scores sum past float's range; the
        // caller recomputes the row with the reference kernel, which decides.
        if (_mm512_fpclass_ps_mask(check, 0x99) != 0) row.bad = true;
        float* o = acc + r * ldacc;
        if (!row.started) {
            row.m = hmax(tmax);
            row.started = true;
        } else if (_mm512_cmp_ps_mask(tmax, _mm512_set1_ps(row.m + flash_rescale_margin), _CMP_GT_OQ) != 0) {
            float const m_new = hmax(tmax);
            float const corr = std::exp(row.m - m_new);
            __m512 const vc = _mm512_set1_ps(corr);
            _mm512_store_ps(row.l, _mm512_mul_ps(_mm512_load_ps(row.l), vc));
            for (index_t t = 0; t < ldacc; t += 16) _mm512_storeu_ps(o + t, _mm512_mul_ps(_mm512_loadu_ps(o + t), vc));
            row.m = m_new;
        }
        __m512 const vm = _mm512_set1_ps(row.m);
        __m512 sum = _mm512_load_ps(row.l);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
            __m512 const p = exp_ps(_mm512_sub_ps(s[r][c], vm));
            _mm512_storeu_ps(pbuf + r * flash_keys + 16 * c, p);
            sum = _mm512_add_ps(sum, p);
        }
        _mm512_store_ps(row.l, sum);
    }

    // O += P · V, 64 value columns at a time.
    for (index_t c0 = 0; c0 < h.dv; c0 += 64) {
        index_t const width = h.dv - c0 < 64 ? h.dv - c0 : 64;
        __mmask16 const tail = static_cast<__mmask16>(width % 16 == 0 ? 0xFFFFu : ((1u << (width % 16)) - 1u));
        float const* const vbase = h.v + j0 * h.v_row + c0;
        switch ((width + 15) / 16) {
            case 4: flash_pv<R, 4>(vbase, h.v_row, visited, pbuf, acc + c0, ldacc, tail); break;
            case 3: flash_pv<R, 3>(vbase, h.v_row, visited, pbuf, acc + c0, ldacc, tail); break;
            case 2: flash_pv<R, 2>(vbase, h.v_row, visited, pbuf, acc + c0, ldacc, tail); break;
            default: flash_pv<R, 1>(vbase, h.v_row, visited, pbuf, acc + c0, ldacc, tail); break;
        }
    }
}

/// The exact scores of one query row at a list of keys (the row's kept keys, for a sparse row):
/// `scores[n] = q·k_j` (q pre-scaled by 1 / sqrt(d)) for `j = keys[n]`, plus -10000 where the key is padded.
/// @param h      The (batch, head); needs `h.k_rows`.
/// @param q      The query row (pre-scaled).
/// @param keys   Key indices.
/// @param count  Number of keys.
/// @param scores Output, @p count floats.
/// @param max    Output: the largest score (unchanged when @p count is 0).
/// @return False when a score is not finite (NaN, ±inf, or finite scores whose sum overflows).
DEQ_TARGET_AVX512 inline bool flash_sparse_scores(flash_head const& h, float const* q, index_t const* keys, index_t count,
                                                  float* scores, float& max) {
    __m512 check = _mm512_setzero_ps(), vmax = _mm512_set1_ps(-__builtin_inff());
    for (index_t n = 0; n < count; n += 16) {
        index_t const lanes = count - n < 16 ? count - n : 16;
        for (index_t u = 0; u < lanes; ++u) {
            index_t const j = keys[n + u];
            float x = flash_dot(q, h.k_rows + j * h.k_row, h.dim);
            if (h.padded != nullptr && ((h.padded[j / flash_keys] >> (j % flash_keys)) & 1u) != 0) x = x + -10000.0f;
            scores[n + u] = x;
        }
        __mmask16 const m = lanes == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1u);
        __m512 const x = _mm512_maskz_loadu_ps(m, scores + n);
        check = _mm512_add_ps(check, x);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, x);
    }
    if (count > 0) max = hmax(vmax);
    return _mm512_fpclass_ps_mask(check, 0x99) == 0;
}

/// The scores of one query row as the reference row kernel computes them (deq/attention/detail/
/// attention_kernel.hpp, `raw_score()` then the penalties), bit for bit: the same float operations in
/// the same order, 16 keys per vector. With contiguous key rows the reference sums `q_t k_t` in eight
/// partial sums (t mod 8) combined as ((p0 + p4) + (p1 + p5)) + ((p2 + p6) + (p3 + p7)), then the
/// remaining t one by one; otherwise one by one. Then `s = acc / sqrt(d)`, `s + (-10000)` where the entry
/// is not kept, `+ (-10000)` again where the key is padded. Products and sums are separate roundings:
/// the caller uses this only where the reference itself is compiled without FMA contraction.
/// @param h          The (batch, head); its transposed key tiles are read.
/// @param q          The query row, not scaled.
/// @param kept       The row's kept mask words.
/// @param contiguous Whether the reference sees contiguous key rows (its eight partial sums).
/// @param scores     Output, h.lk floats.
/// @param max        Output: the largest score.
/// @return False when a score is not finite.
DEQ_TARGET_AVX512 inline bool flash_reference_scores(flash_head const& h, float const* q, std::uint64_t const* kept, bool contiguous,
                                                     float* scores, float& max) {
    __m512 const pen = _mm512_set1_ps(-10000.0f), vd = _mm512_set1_ps(h.sqrt_d);
    __m512 vmax = _mm512_set1_ps(-__builtin_inff()), check = _mm512_setzero_ps();
    index_t const tiles = h.lk / flash_keys + (h.lk % flash_keys != 0 ? 1 : 0);
    index_t const eights = contiguous ? h.dim / 8 * 8 : 0;
    for (index_t tile = 0; tile < tiles; ++tile) {
        float const* const kt = h.kt + tile * h.dim * flash_keys;
        index_t const j0 = tile * flash_keys;
        std::uint64_t const padded = h.padded != nullptr ? h.padded[tile] : 0;
        for (index_t c = 0; c < 4 && j0 + 16 * c < h.lk; ++c) {
            float const* const col = kt + 16 * c;
            __m512 part[8];
            for (int u = 0; u < 8; ++u) part[u] = _mm512_setzero_ps();
            for (index_t t = 0; t < eights; t += 8) {
#pragma GCC unroll 8
                for (int u = 0; u < 8; ++u) {
                    part[u] = _mm512_add_ps(part[u], _mm512_mul_ps(_mm512_set1_ps(q[t + u]), _mm512_loadu_ps(col + (t + u) * flash_keys)));
                }
            }
            __m512 acc = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(part[0], part[4]), _mm512_add_ps(part[1], part[5])),
                                       _mm512_add_ps(_mm512_add_ps(part[2], part[6]), _mm512_add_ps(part[3], part[7])));
            for (index_t t = eights; t < h.dim; ++t) {
                acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(q[t]), _mm512_loadu_ps(col + t * flash_keys)));
            }
            __m512 x = _mm512_div_ps(acc, vd);
            auto const lane = [&](std::uint64_t w) { return static_cast<__mmask16>((w >> (16 * c)) & 0xFFFFu); };
            x = _mm512_mask_add_ps(x, lane(~kept[tile]), x, pen);
            x = _mm512_mask_add_ps(x, lane(padded), x, pen);
            index_t const left = h.lk - j0 - 16 * c;
            __mmask16 const valid = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
            _mm512_mask_storeu_ps(scores + j0 + 16 * c, valid, x);
            check = _mm512_add_ps(check, _mm512_maskz_mov_ps(valid, x));
            vmax = _mm512_mask_max_ps(vmax, valid, vmax, x);
        }
    }
    max = hmax(vmax);
    return _mm512_fpclass_ps_mask(check, 0x99) == 0;
}

/// The softmax and P·V of one query row over a list of keys whose scores are given, every other key's
/// weight being exactly 0: `p_n = exp(scores[n] - max)`, `out = Σ_n p_n v_{keys[n]} / Σ_n p_n` (sums in
/// list order, weights that are exactly 0 skipped).
/// @param h      The (batch, head).
/// @param keys   Key indices (increasing).
/// @param count  Number of keys (at least 1).
/// @param scores Their scores; overwritten with the weights exp(s - max).
/// @param max    The largest score.
/// @param out    Output row, h.dv floats.
/// @return False when an output is not finite.
DEQ_TARGET_AVX512 inline bool flash_sparse_softmax_pv(flash_head const& h, index_t const* keys, index_t count, float* scores,
                                                      float max, float* out) {
    __m512 const vm = _mm512_set1_ps(max);
    __m512 sum = _mm512_setzero_ps();
    for (index_t n = 0; n < count; n += 16) {
        index_t const lanes = count - n < 16 ? count - n : 16;
        __mmask16 const m = lanes == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1u);
        __m512 const p = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + n), vm)));
        _mm512_mask_storeu_ps(scores + n, m, p);
        sum = _mm512_add_ps(sum, p);
    }
    __m512 const vl = _mm512_set1_ps(hsum(sum));
    __mmask16 bad = 0;
    for (index_t c0 = 0; c0 < h.dv; c0 += 64) {
        index_t const width = h.dv - c0 < 64 ? h.dv - c0 : 64;
        int const vecs = static_cast<int>((width + 15) / 16);
        __mmask16 const tail = static_cast<__mmask16>(width % 16 == 0 ? 0xFFFFu : ((1u << (width % 16)) - 1u));
        __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        float const* const vbase = h.v + c0;
        for (index_t n = 0; n < count; ++n) {
            float const w = scores[n];
            if (w == 0.0f) continue;
            __m512 const pb = _mm512_set1_ps(w);
            float const* const vrow = vbase + keys[n] * h.v_row;
            if (vecs == 4 && tail == 0xFFFF) {
                o0 = _mm512_fmadd_ps(pb, _mm512_loadu_ps(vrow), o0);
                o1 = _mm512_fmadd_ps(pb, _mm512_loadu_ps(vrow + 16), o1);
                o2 = _mm512_fmadd_ps(pb, _mm512_loadu_ps(vrow + 32), o2);
                o3 = _mm512_fmadd_ps(pb, _mm512_loadu_ps(vrow + 48), o3);
            } else {
                auto const mask = [&](int c) {
                    return c < vecs - 1 ? static_cast<__mmask16>(0xFFFF) : (c == vecs - 1 ? tail : static_cast<__mmask16>(0));
                };
                o0 = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(mask(0), vrow), o0);
                if (vecs > 1) o1 = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(mask(1), vrow + 16), o1);
                if (vecs > 2) o2 = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(mask(2), vrow + 32), o2);
                if (vecs > 3) o3 = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(mask(3), vrow + 48), o3);
            }
        }
        __m512 const o[4] = {o0, o1, o2, o3};
        for (int c = 0; c < vecs; ++c) {
            __mmask16 const m = c < vecs - 1 ? static_cast<__mmask16>(0xFFFF) : tail;
            __m512 const r = _mm512_div_ps(o[c], vl);
            bad |= _mm512_mask_fpclass_ps_mask(m, r, 0x99);
            _mm512_mask_storeu_ps(out + c0 + 16 * c, m, r);
        }
    }
    return bad == 0;
}

/// flash_tile() for a run-time group size.
/// @param n     Rows in the group (1..6).
/// @param h     The (batch, head).
/// @param rows  The rows.
/// @param tile  Tile index.
/// @param acc   Output accumulators.
/// @param ldacc Row stride of @p acc.
/// @param pbuf  Probability scratch.
/// @param scores How the exact scores are computed (see flash_tile()).
DEQ_TARGET_AVX512 inline void flash_tile_rows(int n, flash_head const& h, flash_row* rows, index_t tile, float* acc,
                                              index_t ldacc, float* pbuf, flash_scores scores) {
    switch (n) {
        case 6: flash_tile<6>(h, rows, tile, acc, ldacc, pbuf, scores); break;
        case 5: flash_tile<5>(h, rows, tile, acc, ldacc, pbuf, scores); break;
        case 4: flash_tile<4>(h, rows, tile, acc, ldacc, pbuf, scores); break;
        case 3: flash_tile<3>(h, rows, tile, acc, ldacc, pbuf, scores); break;
        case 2: flash_tile<2>(h, rows, tile, acc, ldacc, pbuf, scores); break;
        default: flash_tile<1>(h, rows, tile, acc, ldacc, pbuf, scores); break;
    }
}

/// Writes `out = acc / l` for each row of a finished group.
/// @param n     Rows.
/// @param rows  The rows.
/// @param dv    Value dimension.
/// @param acc   Accumulators.
/// @param ldacc Row stride of @p acc.
DEQ_TARGET_AVX512 inline void flash_finish(int n, flash_row* rows, index_t dv, float const* acc, index_t ldacc) {
    for (int r = 0; r < n; ++r) {
        __m512 const vl = _mm512_set1_ps(hsum(_mm512_load_ps(rows[r].l)));
        __mmask16 bad = 0;
        for (index_t t = 0; t < dv; t += 16) {
            __mmask16 const m = dv - t >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (dv - t)) - 1u);
            __m512 const o = _mm512_div_ps(_mm512_loadu_ps(acc + r * ldacc + t), vl);
            bad |= _mm512_mask_fpclass_ps_mask(m, o, 0x99);
            _mm512_mask_storeu_ps(rows[r].out + t, m, o);
        }
        if (bad != 0) rows[r].bad = true;  // e.g. values near the largest float: the reference kernel decides
    }
}

}  // namespace deq::arch::avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // DEQ_ARCH_X86
