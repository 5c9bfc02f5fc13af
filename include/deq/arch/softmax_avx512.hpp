/// @file
/// @brief AVX-512 version of the predicted softmax row of deq::select_elements (internal; see
/// deq/mask/detail/softmax_row.hpp): the same operations as the portable row in the same order
/// (penalty, maximum, deq::exp_fused with fused multiply-adds, 16 interleaved partial sums added in a
/// fixed tree, division), so the bits agree with it.
///
/// Why intrinsics: the row must be bit-identical to the portable definition; compilers do not
/// guarantee which FMA contractions and reduction orders a vectorised loop uses.
#pragma once

#include <cstdint>

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

/// deq::exp_fused for 16 floats (bit for bit).
/// @param x The arguments (not NaN).
/// @return exp(x).
DEQ_TARGET_AVX512 inline __m512 exp_fused_ps(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
    __m512 const magic = _mm512_set1_ps(12582912.0f);
    __m512 const t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    __m512 const n = _mm512_sub_ps(t, magic);
    __m512i const ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic));
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 const z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, z, r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    __m512i const n1 = _mm512_srai_epi32(ni, 1);
    __m512i const n2 = _mm512_sub_epi32(ni, n1);
    __m512i const bias = _mm512_set1_epi32(127);
    __m512 const s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    __m512 const s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

/// The mask of the first @p left lanes of 16.
/// @param left Lanes left in the row.
/// @return All 16 lanes when left >= 16.
DEQ_TARGET_AVX512 inline __mmask16 lanes(index_t left) {
    return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

/// Steps 1 and 2 of the predicted softmax of one row (see deq/mask/detail/softmax_row.hpp): the padding
/// penalty in place and the maximum; with @p Check, also the first entry that is not finite.
/// @tparam Check Whether to look for NaN and ±inf (the penalty keeps finite entries finite and the
///               others not, so checking after it is checking the scores).
/// @param x      @p n scores, padded entries overwritten by x + pad.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words (bit j set: key j is padded), or null.
/// @param pad    The padding penalty (-10000).
/// @param max    The maximum (valid when every entry is finite).
/// @return -1, or (with @p Check) the index of the first entry that is not finite.
template <bool Check>
DEQ_TARGET_AVX512 inline index_t softmax_penalty_max(float* x, index_t n, std::uint64_t const* padded, float pad, float& max) {
    __m512 const vpad = _mm512_set1_ps(pad);
    // Two maxima, 32 entries per step (the maximum is exact in any order): the loop is not bound by
    // the latency of one max chain.
    __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0;
    for (index_t j = 0; j < n; j += 32) {
        __mmask16 const ma = lanes(n - j), mb = n - j > 16 ? lanes(n - j - 16) : static_cast<__mmask16>(0);
        __m512 a = _mm512_maskz_loadu_ps(ma, x + j), b = _mm512_maskz_loadu_ps(mb, x + j + 16);
        if (padded != nullptr) {
            std::uint64_t const w = padded[j / 64] >> (j % 64);  // j % 64 is 0 or 32
            a = _mm512_mask_add_ps(a, static_cast<__mmask16>(w & 0xFFFFu) & ma, a, vpad);
            b = _mm512_mask_add_ps(b, static_cast<__mmask16>((w >> 16) & 0xFFFFu) & mb, b, vpad);
            _mm512_mask_storeu_ps(x + j, ma, a);
            _mm512_mask_storeu_ps(x + j + 16, mb, b);
        }
        if constexpr (Check) {
            auto const bad = static_cast<std::uint32_t>(_mm512_mask_fpclass_ps_mask(ma, a, 0x99)) |
                             (static_cast<std::uint32_t>(_mm512_mask_fpclass_ps_mask(mb, b, 0x99)) << 16);
            if (bad != 0) return j + __builtin_ctz(bad);
        }
        m0 = _mm512_mask_max_ps(m0, ma, m0, a);
        m1 = _mm512_mask_max_ps(m1, mb, m1, b);
    }
    max = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    return -1;
}

/// Step 3 of the predicted softmax of one row: `e_j = exp(x_j - m)` in place and their sum in the fixed
/// tree of deq/mask/detail/softmax_row.hpp.
/// @param x   @p n penalised scores, overwritten by e_j.
/// @param n   Row length (>= 1).
/// @param max Their maximum.
/// @return The sum of the e_j.
DEQ_TARGET_AVX512 inline float softmax_exp_sum(float* x, index_t n, float max) {
    __m512 const vm = _mm512_set1_ps(max);
    __m512 part = _mm512_setzero_ps();
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = lanes(n - j);
        __m512 const e = _mm512_maskz_mov_ps(m, exp_fused_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), vm)));
        _mm512_mask_storeu_ps(x + j, m, e);
        part = _mm512_add_ps(part, e);
    }
    // The fixed tree: a[l] = part[l] + part[l + 8], b[l] = a[l] + a[l + 4], c[l] = b[l] + b[l + 2], c0 + c1.
    __m256 const a = _mm256_add_ps(_mm512_castps512_ps256(part), _mm512_extractf32x8_ps(part, 1));
    __m128 const b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 const c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/// Steps 1 to 3 of the predicted softmax of one row (see deq/mask/detail/softmax_row.hpp): the padding
/// penalty, the maximum, `e_j = exp(x_j - m)` in place and their sum in the fixed tree.
/// @param x      @p n scores, overwritten by e_j.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words (bit j set: key j is padded), or null.
/// @param pad    The padding penalty (-10000).
/// @return The sum of the e_j.
DEQ_TARGET_AVX512 inline float softmax_exp_row(float* x, index_t n, std::uint64_t const* padded, float pad) {
    float m = 0;
    softmax_penalty_max<false>(x, n, padded, pad, m);
    return softmax_exp_sum(x, n, m);
}

/// The predicted softmax of one row in place (see deq/mask/detail/softmax_row.hpp for the definition).
/// @param x      @p n scores, overwritten by the probabilities.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words (bit j set: key j is padded), or null.
/// @param pad    The padding penalty (-10000).
DEQ_TARGET_AVX512 inline void softmax_row(float* x, index_t n, std::uint64_t const* padded, float pad) {
    __m512 const vs = _mm512_set1_ps(softmax_exp_row(x, n, padded, pad));
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = lanes(n - j);
        _mm512_mask_storeu_ps(x + j, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + j), vs));
    }
}

/// Sets bit j of @p words (cleared by the caller) for each `e_j / sum > t` (`<= t` when @p inverse),
/// where `e_j / sum` is the rounded float quotient, without dividing: with t⁺ the float after t and
/// μ = (t + t⁺) / 2, `RN(z) > t` exactly when z > μ, or z = μ and the tie rounds up to t⁺ (t⁺ even);
/// and `z > μ` is `e_j > B` with B = μ · sum, which is exact in double (25 + 24 significant bits). For a
/// float e, `e > B` is `e > RD(B)` and `e >= B` is `e >= RU(B)` (RD, RU: B rounded down or up to a
/// float; no float lies strictly between them), so one float comparison per entry decides. The bits
/// equal those of threshold_row() on the divided row.
/// @param e       @p n values e_j >= 0 (finite).
/// @param n       Row length.
/// @param sum     The divisor (> 0, finite).
/// @param t       The threshold (finite).
/// @param inverse Select `<= t`.
/// @param words   ceil(n / 64) mask words.
DEQ_TARGET_AVX512 inline void quotient_threshold_row(float const* e, index_t n, float sum, float t, bool inverse, std::uint64_t* words) {
    float const up = __builtin_nextafterf(t, __builtin_inff());
    double const mid = (static_cast<double>(t) + static_cast<double>(up)) / 2.0;  // exact: adjacent floats
    std::uint32_t up_bits;
    __builtin_memcpy(&up_bits, &up, sizeof(up_bits));
    bool const tie_up = (up_bits & 1u) == 0;  // round half to even: a tie goes to t⁺ when t⁺ is even
    double const bound = mid * static_cast<double>(sum);
    // RD(bound) for e > bound, RU(bound) for e >= bound (bound is far inside float's range: |t| < 2^128
    // and 0 < sum < 2^128 give a product whose rounding to float saturates to ±inf at worst, which
    // compares correctly with finite e).
    float f = static_cast<float>(bound);
    if (tie_up && static_cast<double>(f) < bound) f = __builtin_nextafterf(f, __builtin_inff());
    if (!tie_up && static_cast<double>(f) > bound) f = __builtin_nextafterf(f, -__builtin_inff());
    __m512 const vb = _mm512_set1_ps(f);
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = lanes(n - j);
        __m512 const v = _mm512_maskz_loadu_ps(m, e + j);
        __mmask16 sel = tie_up ? _mm512_cmp_ps_mask(v, vb, _CMP_GE_OQ) : _mm512_cmp_ps_mask(v, vb, _CMP_GT_OQ);
        sel = static_cast<__mmask16>((inverse ? ~sel : sel) & m);
        words[j / 64] |= static_cast<std::uint64_t>(sel) << (j % 64);
    }
}

/// The selection `P̂_j > t` (`<= t` when @p inverse) of one row of predicted scores, with the
/// finiteness check of the scores: the padding penalty, the maximum, the exponentials and their sum
/// (softmax_penalty_max(), softmax_exp_sum()), then quotient_threshold_row(). The same bits as
/// row_max_checked(), softmax_row() and threshold_row() of deq/mask/detail/softmax_row.hpp, in three passes
/// over the row.
/// @param x       @p n scores, overwritten.
/// @param n       Row length (>= 1).
/// @param padded  Padded-key words, or null.
/// @param pad     The padding penalty (-10000).
/// @param t       The threshold (finite).
/// @param inverse Select `<= t`.
/// @param words   The row's mask words (cleared by the caller).
/// @return -1, or the index of the first score that is not finite (then no bit is set).
DEQ_TARGET_AVX512 inline index_t softmax_threshold_row_checked(float* x, index_t n, std::uint64_t const* padded, float pad, float t,
                                                               bool inverse, std::uint64_t* words) {
    float m = 0;
    index_t const bad = softmax_penalty_max<true>(x, n, padded, pad, m);
    if (bad >= 0) return bad;
    quotient_threshold_row(x, n, softmax_exp_sum(x, n, m), t, inverse, words);
    return -1;
}

/// The maximum of a row of floats and whether every value is finite (exact: max is order-independent).
/// @param x   @p n values.
/// @param n   Row length (>= 1).
/// @param max The maximum (valid when every value is finite).
/// @return -1 when every value is finite, else the index of the first NaN or ±inf.
DEQ_TARGET_AVX512 inline index_t row_max_checked(float const* x, index_t n, float& max) {
    __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0;
    for (index_t j = 0; j < n; j += 32) {  // two maxima, as in softmax_exp_row()
        __mmask16 const ma = lanes(n - j), mb = n - j > 16 ? lanes(n - j - 16) : static_cast<__mmask16>(0);
        __m512 const a = _mm512_maskz_loadu_ps(ma, x + j), b = _mm512_maskz_loadu_ps(mb, x + j + 16);
        auto const bad = static_cast<std::uint32_t>(_mm512_mask_fpclass_ps_mask(ma, a, 0x99)) |
                         (static_cast<std::uint32_t>(_mm512_mask_fpclass_ps_mask(mb, b, 0x99)) << 16);
        if (bad != 0) return j + __builtin_ctz(bad);
        m0 = _mm512_mask_max_ps(m0, ma, m0, a);
        m1 = _mm512_mask_max_ps(m1, mb, m1, b);
    }
    max = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    return -1;
}

/// Sets bit j of @p words (cleared by the caller) for each `x_j > t` (`x_j <= t` when @p inverse).
/// @param x       @p n values.
/// @param n       Row length.
/// @param inverse Select `x_j <= t`.
/// @param t       The threshold.
/// @param words   ceil(n / 64) mask words.
DEQ_TARGET_AVX512 inline void threshold_row(float const* x, index_t n, bool inverse, float t, std::uint64_t* words) {
    __m512 const vt = _mm512_set1_ps(t);
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
        __m512 const v = _mm512_maskz_loadu_ps(m, x + j);
        __mmask16 const sel = inverse ? _mm512_mask_cmp_ps_mask(m, v, vt, _CMP_LE_OQ) : _mm512_mask_cmp_ps_mask(m, v, vt, _CMP_GT_OQ);
        words[j / 64] |= static_cast<std::uint64_t>(sel) << (j % 64);
    }
}

}  // namespace deq::arch::avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // DEQ_ARCH_X86
