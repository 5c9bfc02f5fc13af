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

/// The predicted softmax of one row in place (see deq/mask/detail/softmax_row.hpp for the definition).
/// @param x      @p n scores, overwritten by the probabilities.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words (bit j set: key j is padded), or null.
/// @param pad    The padding penalty (-10000).
DEQ_TARGET_AVX512 inline void softmax_row(float* x, index_t n, std::uint64_t const* padded, float pad) {
    __m512 const vpad = _mm512_set1_ps(pad);
    __m512 vmax = _mm512_set1_ps(-__builtin_inff());
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + j);
        if (padded != nullptr) {
            auto const bits = static_cast<__mmask16>((padded[j / 64] >> (j % 64)) & 0xFFFFu);
            v = _mm512_mask_add_ps(v, bits & m, v, vpad);
            _mm512_mask_storeu_ps(x + j, m, v);
        }
        vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
    }
    __m512 const vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 part = _mm512_setzero_ps();
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
        __m512 const e = _mm512_maskz_mov_ps(m, exp_fused_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), vm)));
        _mm512_mask_storeu_ps(x + j, m, e);
        part = _mm512_add_ps(part, e);
    }
    // The fixed tree: a[l] = part[l] + part[l + 8], b[l] = a[l] + a[l + 4], c[l] = b[l] + b[l + 2], c0 + c1.
    __m256 const a = _mm256_add_ps(_mm512_castps512_ps256(part), _mm512_extractf32x8_ps(part, 1));
    __m128 const b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 const c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    float const sum = _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
    __m512 const vs = _mm512_set1_ps(sum);
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
        _mm512_mask_storeu_ps(x + j, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + j), vs));
    }
}

/// The maximum of a row of floats and whether every value is finite (exact: max is order-independent).
/// @param x   @p n values.
/// @param n   Row length (>= 1).
/// @param max The maximum (valid when every value is finite).
/// @return -1 when every value is finite, else the index of the first NaN or ±inf.
DEQ_TARGET_AVX512 inline index_t row_max_checked(float const* x, index_t n, float& max) {
    __m512 vmax = _mm512_set1_ps(-__builtin_inff());
    for (index_t j = 0; j < n; j += 16) {
        __mmask16 const m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
        __m512 const v = _mm512_maskz_loadu_ps(m, x + j);
        __mmask16 const bad = _mm512_mask_fpclass_ps_mask(m, v, 0x99);
        if (bad != 0) return j + __builtin_ctz(bad);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
    }
    max = _mm512_reduce_max_ps(vmax);
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
