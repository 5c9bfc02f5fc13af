/// @file
/// @brief AVX2 version of the predicted softmax row of deq::select_elements (internal; see
/// deq/mask/detail/softmax_row.hpp and deq/arch/softmax_avx512.hpp): the 16 partial sums are two
/// 8-lane accumulators, added in the same fixed tree, so the bits agree with the portable row.
#pragma once

#include <cstdint>

#include "../core/tensor.hpp"
#include "isa.hpp"
#include "predictor_avx2.hpp"

#if DEQ_ARCH_X86
// GCC 12 warns about the `__m512 __Y = __Y;` idiom of its own intrinsic headers once they are inlined
// (GCC bug 105593, fixed in GCC 13): silenced for the intrinsics and the kernels of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace deq::arch::avx2 {

/// deq::exp_fused for 8 floats (bit for bit).
/// @param x The arguments (not NaN).
/// @return exp(x).
DEQ_TARGET_AVX2 inline __m256 exp_fused_ps(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-104.0f));
    x = _mm256_min_ps(x, _mm256_set1_ps(89.0f));
    __m256 const magic = _mm256_set1_ps(12582912.0f);
    __m256 const t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 const n = _mm256_sub_ps(t, magic);
    __m256i const ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 const z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, z, r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i const n1 = _mm256_srai_epi32(ni, 1);
    __m256i const n2 = _mm256_sub_epi32(ni, n1);
    __m256i const bias = _mm256_set1_epi32(127);
    __m256 const s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 const s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/// Lane mask for elements [j, min(j + 8, n)).
DEQ_TARGET_AVX2 inline __m256i lanes_below(index_t j, index_t n) {
    __m256i const idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    auto const left = static_cast<int>(n - j < 8 ? n - j : 8);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), idx);
}

/// Padded-key lanes of elements [j, j + 8) as an all-ones / zero mask.
DEQ_TARGET_AVX2 inline __m256i padded_lanes(std::uint64_t const* padded, index_t j) {
    auto const bits = static_cast<int>((padded[j / 64] >> (j % 64)) & 0xFFu);
    __m256i const bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(bits), bit), bit);
}

/// The predicted softmax of one row in place (see deq/mask/detail/softmax_row.hpp).
/// @param x      @p n scores, overwritten by the probabilities.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words, or null.
/// @param pad    The padding penalty.
DEQ_TARGET_AVX2 inline void softmax_row(float* x, index_t n, std::uint64_t const* padded, float pad) {
    __m256 const vpad = _mm256_set1_ps(pad), ninf = _mm256_set1_ps(-__builtin_inff());
    __m256 vmax = ninf;
    for (index_t j = 0; j < n; j += 8) {
        __m256i const m = lanes_below(j, n);
        __m256 v = _mm256_maskload_ps(x + j, m);
        if (padded != nullptr) {
            __m256 const p = _mm256_castsi256_ps(_mm256_and_si256(padded_lanes(padded, j), m));
            v = _mm256_blendv_ps(v, _mm256_add_ps(v, vpad), p);
            _mm256_maskstore_ps(x + j, m, v);
        }
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(m)));
    }
    __m128 mx = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
    mx = _mm_max_ss(mx, _mm_shuffle_ps(mx, mx, 1));
    __m256 const vm = _mm256_set1_ps(_mm_cvtss_f32(mx));
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();  // partial sums 0-7 and 8-15
    for (index_t j = 0; j < n; j += 8) {
        __m256i const m = lanes_below(j, n);
        __m256 const e = _mm256_and_ps(exp_fused_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), vm)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + j, m, e);
        if ((j / 8) % 2 == 0) lo = _mm256_add_ps(lo, e);
        else hi = _mm256_add_ps(hi, e);
    }
    __m256 const a = _mm256_add_ps(lo, hi);
    __m128 const b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 const c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    float const sum = _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
    __m256 const vs = _mm256_set1_ps(sum);
    for (index_t j = 0; j < n; j += 8) {
        __m256i const m = lanes_below(j, n);
        _mm256_maskstore_ps(x + j, m, _mm256_div_ps(_mm256_maskload_ps(x + j, m), vs));
    }
}

/// The maximum of a row of floats and whether every value is finite (see the AVX-512 version).
/// @param x   @p n values.
/// @param n   Row length (>= 1).
/// @param max The maximum (valid when every value is finite).
/// @return -1 when every value is finite, else the index of the first NaN or ±inf.
DEQ_TARGET_AVX2 inline index_t row_max_checked(float const* x, index_t n, float& max) {
    __m256 const ninf = _mm256_set1_ps(-__builtin_inff());
    __m256 const exponent = _mm256_castsi256_ps(_mm256_set1_epi32(0x7F800000));
    __m256 vmax = ninf;
    for (index_t j = 0; j < n; j += 8) {
        __m256i const m = lanes_below(j, n);
        __m256 const v = _mm256_maskload_ps(x + j, m);
        // NaN or ±inf: every exponent bit set.
        __m256 const e = _mm256_and_ps(v, exponent);
        int const bad = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(e, exponent, _CMP_EQ_OQ), _mm256_castsi256_ps(m)));
        if (bad != 0) return j + __builtin_ctz(static_cast<unsigned>(bad));
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(m)));
    }
    __m128 mx = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    mx = _mm_max_ps(mx, _mm_movehl_ps(mx, mx));
    mx = _mm_max_ss(mx, _mm_shuffle_ps(mx, mx, 1));
    max = _mm_cvtss_f32(mx);
    return -1;
}

/// Sets bit j of @p words (cleared by the caller) for each `x_j > t` (`x_j <= t` when @p inverse).
/// @param x       @p n values.
/// @param n       Row length.
/// @param inverse Select `x_j <= t`.
/// @param t       The threshold.
/// @param words   ceil(n / 64) mask words.
DEQ_TARGET_AVX2 inline void threshold_row(float const* x, index_t n, bool inverse, float t, std::uint64_t* words) {
    __m256 const vt = _mm256_set1_ps(t);
    for (index_t j = 0; j < n; j += 8) {
        __m256i const m = lanes_below(j, n);
        __m256 const v = _mm256_maskload_ps(x + j, m);
        __m256 const c = inverse ? _mm256_cmp_ps(v, vt, _CMP_LE_OQ) : _mm256_cmp_ps(v, vt, _CMP_GT_OQ);
        auto const sel = static_cast<std::uint64_t>(_mm256_movemask_ps(_mm256_and_ps(c, _mm256_castsi256_ps(m))));
        words[j / 64] |= sel << (j % 64);
    }
}

}  // namespace deq::arch::avx2

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // DEQ_ARCH_X86
