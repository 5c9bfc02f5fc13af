/// @file
/// @brief AVX2 kernels of the low-bit score predictor (internal; see
/// deq/predict/detail/predictor_tiles.hpp): key packing and the exact integer dot-product tile.
///
/// Layout. Keys are packed per (batch, head) in blocks of 8 keys; block b holds, for each group g of 4
/// head-dimension entries, the 8 keys' 4 signed levels: `packed[(b * groups + g) * 32 + 4 * key + t]`.
/// A query's 4 levels are broadcast; `vpsignb` moves their signs onto the keys and `vpmaddubsw`
/// multiplies |q| (unsigned) by ±k (signed) into pairwise int16 sums, which `vpmaddwd` with ones widens
/// to int32 sums of 4. Levels of at most 8 bits are at most 127 in magnitude, so a pair sums to at most
/// 2 · 127 · 127 = 32258 and never saturates: the products are exact.
///
/// Why intrinsics: see deq/arch/predictor_avx512.hpp (no int8 dot product in the portable SIMD
/// libraries of Debian 12).
#pragma once

#include <cmath>
#include <cstdint>

#include "../core/tensor.hpp"
#include "../numeric/rounding.hpp"
#include "detail/pack_key_blocks.hpp"
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

/// The target attribute of deq's AVX2 kernels.
#define DEQ_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace deq::arch::avx2 {

/// Keys per packed block.
inline constexpr index_t key_block = 8;
/// Head-dimension entries per group.
inline constexpr index_t group = 4;
/// Bytes of one packed block group (8 keys x 4 levels).
inline constexpr index_t group_bytes = key_block * group;

/// Packs @p keys rows of signed levels (row stride @p ld, entries past @p dim are 0) into the layout of
/// the file documentation; keys past @p keys in the last block are level 0.
/// @param levels Key levels, [keys][ld].
/// @param keys   Number of keys.
/// @param dim    Head dimension.
/// @param ld     Row stride of @p levels (>= dim, a multiple of 4).
/// @param out    ceil(keys / 8) * (ld / 4) * 32 bytes.
inline void pack_keys(std::int8_t const* levels, index_t keys, index_t dim, index_t ld, std::int8_t* out) {
    ::deq::arch::detail::pack_key_blocks<key_block, group>(levels, keys, dim, ld, out,
                                                           [](int level) { return static_cast<std::int8_t>(level); });
}

/// Exact integer dot products of @p Rows query rows with the 8 keys of one packed block.
/// @tparam Rows Number of query rows (1..4).
/// @param q     Query levels, [Rows][ld].
/// @param ld    Row stride of @p q (a multiple of 4).
/// @param block The packed key block.
/// @param out   Rows x 8 dot products.
/// @param ldo   Row stride of @p out.
template <int Rows>
DEQ_TARGET_AVX2 inline void dot_block(std::int8_t const* q, index_t ld, std::int8_t const* block, std::int32_t* out,
                                      index_t ldo) {
    static_assert(Rows >= 1 && Rows <= 4);
    __m256i acc[Rows];
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) acc[r] = _mm256_setzero_si256();
    __m256i const ones = _mm256_set1_epi16(1);
    index_t const groups = ld / group;
    for (index_t g = 0; g < groups; ++g) {
        __m256i const kz = _mm256_loadu_si256(reinterpret_cast<__m256i const*>(block + g * group_bytes));
#pragma GCC unroll 8
        for (int r = 0; r < Rows; ++r) {
            std::int32_t word;
            __builtin_memcpy(&word, q + r * ld + g * group, sizeof(word));
            __m256i const qb = _mm256_set1_epi32(word);
            __m256i const pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(qb), _mm256_sign_epi8(kz, qb));
            acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(pairs, ones));
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * ldo), acc[r]);
}

/// Exact integer dot products of @p rows query rows with @p keys packed keys.
/// @param q      Query levels, [rows][ld].
/// @param ld     Row stride (a multiple of 4).
/// @param rows   Query rows.
/// @param packed The packed keys.
/// @param keys   Number of keys.
/// @param out    rows x round_up(keys, 8) dot products, row stride @p ldo (a multiple of 8).
/// @param ldo    Row stride of @p out.
DEQ_TARGET_AVX2 inline void dot_tile(std::int8_t const* q, index_t ld, index_t rows, std::int8_t const* packed, index_t keys,
                                     std::int32_t* out, index_t ldo) {
    index_t const block_bytes = (ld / group) * group_bytes;
    index_t const blocks = keys / key_block + (keys % key_block != 0 ? 1 : 0);
    for (index_t i = 0; i < rows; i += 4) {
        index_t const n = rows - i < 4 ? rows - i : 4;
        std::int8_t const* qi = q + i * ld;
        for (index_t b = 0; b < blocks; ++b) {
            std::int8_t const* block = packed + b * block_bytes;
            std::int32_t* o = out + i * ldo + b * key_block;
            switch (n) {
                case 4: dot_block<4>(qi, ld, block, o, ldo); break;
                case 3: dot_block<3>(qi, ld, block, o, ldo); break;
                case 2: dot_block<2>(qi, ld, block, o, ldo); break;
                default: dot_block<1>(qi, ld, block, o, ldo); break;
            }
        }
    }
}

/// reciprocal_quotient_exact() of the AVX-512 file with AVX2 instructions (8 quotients per step).
/// @param s     The divisor (positive, finite).
/// @param y     1 / s rounded to float.
/// @param bound The largest |x| (below 2^24).
/// @return True when every quotient agrees bit for bit.
DEQ_TARGET_AVX2 inline bool reciprocal_quotient_exact(float s, float y, std::int32_t bound) {
    __m256 const vs = _mm256_set1_ps(s), vy = _mm256_set1_ps(y);
    __m256i x = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i const step = _mm256_set1_epi32(8);
    for (std::int32_t x0 = 0; x0 <= bound; x0 += 8, x = _mm256_add_epi32(x, step)) {
        __m256 const xf = _mm256_cvtepi32_ps(x);
        __m256 const q0 = _mm256_mul_ps(xf, vy);
        __m256 const q1 = _mm256_fmadd_ps(_mm256_fnmadd_ps(q0, vs, xf), vy, q0);
        __m256i const differ = _mm256_xor_si256(_mm256_castps_si256(q1), _mm256_castps_si256(_mm256_div_ps(xf, vs)));
        if (_mm256_testz_si256(differ, differ) == 0) return false;
    }
    return true;
}

/// The float rescaling of a dot-product row, `S(dot) / sxy * (qn · kn_j) / sqrt_d` (bit-identical to
/// the portable loop).
/// @param dots   @p n dot products.
/// @param qn     The query row's norm.
/// @param kn     @p n key norms.
/// @param sxy    sx · sy.
/// @param inv    1 / sxy when reciprocal_quotient_exact() holds for every dot product, else 0 (divide).
/// @param sqrt_d sqrt(d) in float.
/// @param n      Number of entries.
/// @param out    @p n scores.
DEQ_TARGET_AVX2 inline void rescale_row(std::int32_t const* dots, float qn, float const* kn, float sxy, float inv,
                                        float sqrt_d, index_t n, float* out) {
    __m256 const vs = _mm256_set1_ps(sxy), vq = _mm256_set1_ps(qn), vd = _mm256_set1_ps(sqrt_d), vi = _mm256_set1_ps(inv);
    bool const pow2 = avx512::is_power_of_two(sqrt_d);  // exact reciprocal (see the AVX-512 file)
    bool const reciprocal = inv != 0.0f;
    __m256 const vr = _mm256_set1_ps(1.0f / sqrt_d);
    index_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<__m256i const*>(dots + j)));
        if (reciprocal) {
            __m256 const q0 = _mm256_mul_ps(x, vi);
            x = _mm256_fmadd_ps(_mm256_fnmadd_ps(q0, vs, x), vi, q0);
        } else {
            x = _mm256_div_ps(x, vs);
        }
        __m256 const y = _mm256_mul_ps(x, _mm256_mul_ps(vq, _mm256_loadu_ps(kn + j)));
        _mm256_storeu_ps(out + j, pow2 ? _mm256_mul_ps(y, vr) : _mm256_div_ps(y, vd));
    }
    for (; j < n; ++j) {
        float x = static_cast<float>(dots[j]);
        if (reciprocal) {
            float const q0 = x * inv;
            x = std::fma(std::fma(-q0, sxy, x), inv, q0);
        } else {
            x = x / sxy;
        }
        out[j] = x * (qn * kn[j]) / sqrt_d;
    }
}

/// Quantizes a normalised float row exactly as deq::quant::quantize_symmetric() (see the AVX-512
/// version): 8 elements per step, the tail in scalar code.
/// @param x     @p n floats.
/// @param n     Number of elements.
/// @param norm  The row's norm (> 0).
/// @param scale Quantization scale.
/// @param qmax  Largest level (at most 127).
/// @param out   @p n levels.
DEQ_TARGET_AVX2 inline void quantize_row(float const* x, index_t n, float norm, float scale, int qmax, std::int8_t* out) {
    __m256 const vn = _mm256_set1_ps(norm), vs = _mm256_set1_ps(scale);
    __m256 const hi = _mm256_set1_ps(static_cast<float>(qmax)), lo = _mm256_set1_ps(-static_cast<float>(qmax));
    index_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 const unit = _mm256_div_ps(_mm256_loadu_ps(x + t), vn);
        __m256 const r = _mm256_round_ps(_mm256_mul_ps(unit, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i const v = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
        alignas(32) std::int32_t lanes[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), v);
        for (int u = 0; u < 8; ++u) out[t + u] = static_cast<std::int8_t>(lanes[u]);
    }
    for (; t < n; ++t) {  // the tail: the scalar definition itself
        float const unit = x[t] / norm;
        float const r = ::deq::round_half_even(unit * scale);
        out[t] = static_cast<std::int8_t>(r < -static_cast<float>(qmax) ? -qmax : (r > static_cast<float>(qmax) ? qmax : r));
    }
}

}  // namespace deq::arch::avx2

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // DEQ_ARCH_X86
