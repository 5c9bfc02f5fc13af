/// @file
/// @brief AVX-512 (VNNI) kernels of the low-bit score predictor (internal; see
/// deq/predict/detail/predictor_tiles.hpp): key packing and the exact integer dot-product tile.
///
/// Layout. Keys are packed per (batch, head) in blocks of 16 keys; block b holds, for each group g of 4
/// head-dimension entries, the 16 keys' 4 levels as unsigned bytes `level + 128`:
/// `packed[(b * groups + g) * 64 + 4 * key + t]`. One 64-byte load is the B operand of `vpdpbusd`
/// for 16 keys; the A operand is a query's 4 signed levels broadcast to every lane. The offset is
/// removed exactly: `Σ_t (k_t + 128) · q_t = q·k + 128 · Σ_t q_t`, so the tile subtracts
/// `128 · Σ_t q_t` of each query row. Every product and sum is exact in int32 for levels of at most
/// 8 bits and head dimensions below 65536 (|Σ| <= 255 · 127 · d).
///
/// Why intrinsics: the int8 dot product with int32 accumulation (`vpdpbusd`) is not offered by the
/// portable SIMD libraries in Debian 12 (Highway 1.0.3, xsimd 8), and the register blocking (8 query
/// rows share each 64-byte key load) is what makes the predictor cheaper than dense attention.
#pragma once

#include <cstdint>

#include "../core/tensor.hpp"
#include "detail/pack_key_blocks.hpp"
#include "isa.hpp"

#if DEQ_ARCH_X86
// GCC 12 warns about the `__m512 __Y = __Y;` idiom of its own intrinsic headers once they are inlined
// (GCC bug 105593, fixed in GCC 13): silenced for the intrinsics and the kernels of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

/// The target attribute of deq's AVX-512 kernels.
#define DEQ_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,popcnt")))

namespace deq::arch::avx512 {

/// True when @p x is a positive normal power of two (its reciprocal is exact).
/// @param x The value.
/// @return Whether x = 2^k for a normal 2^k and 2^-k.
inline bool is_power_of_two(float x) noexcept {
    std::uint32_t bits;
    __builtin_memcpy(&bits, &x, sizeof(bits));
    std::uint32_t const exponent = (bits >> 23) & 0xFFu;
    return (bits & 0x807FFFFFu) == 0 && exponent > 1 && exponent < 253;
}

/// `acc += dpbusd(a, b)` (vpdpbusd) with the accumulator updated in place: GCC 12 compiles the
/// intrinsic with a register copy (and spills) per instruction inside unrolled loops, which halves the
/// kernel's throughput.
/// @param acc The int32 accumulators.
/// @param a   Unsigned bytes.
/// @param b   Signed bytes.
DEQ_TARGET_AVX512 inline void dpbusd(__m512i& acc, __m512i a, __m512i b) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

/// Keys per packed block.
inline constexpr index_t key_block = 16;
/// Head-dimension entries per group.
inline constexpr index_t group = 4;
/// Bytes of one packed block group (16 keys x 4 levels).
inline constexpr index_t group_bytes = key_block * group;

/// Packs @p keys rows of signed levels (row stride @p ld, the entries past @p dim are 0) into the
/// layout of the file documentation; keys past @p keys in the last block are level 0.
/// @param levels Key levels, [keys][ld].
/// @param keys   Number of keys.
/// @param dim    Head dimension.
/// @param ld     Row stride of @p levels (>= dim, a multiple of 4).
/// @param out    ceil(keys / 16) * (ld / 4) * 64 bytes.
inline void pack_keys(std::int8_t const* levels, index_t keys, index_t dim, index_t ld, std::uint8_t* out) {
    ::deq::arch::detail::pack_key_blocks<key_block, group>(levels, keys, dim, ld, out,
                                                           [](int level) { return static_cast<std::uint8_t>(level + 128); });
}

/// Exact integer dot products of @p Rows query rows (at most 8) with the 16 x @p Blocks keys of
/// @p Blocks consecutive packed blocks (each broadcast query word feeds Blocks `vpdpbusd`).
/// @tparam Rows   Number of query rows (1..8).
/// @tparam Blocks Number of key blocks (1 or 2).
/// @param q       Query levels, [Rows][ld] (entries past dim are 0).
/// @param ld      Row stride of @p q (a multiple of 4).
/// @param offset  128 · Σ_t q_t of each row.
/// @param block   The first packed key block (ld / 4 groups of 64 bytes per block).
/// @param out     Rows x (16 · Blocks) dot products.
/// @param ldo     Row stride of @p out.
template <int Rows, int Blocks>
DEQ_TARGET_AVX512 inline void dot_block(std::int8_t const* q, index_t ld, std::int32_t const* offset,
                                        std::uint8_t const* block, std::int32_t* out, index_t ldo) {
    static_assert(Rows >= 1 && Rows <= 8 && (Blocks == 1 || Blocks == 2));
    __m512i acc[Blocks][Rows];
#pragma GCC unroll 2
    for (int c = 0; c < Blocks; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < Rows; ++r) acc[c][r] = _mm512_setzero_si512();
    index_t const groups = ld / group;
    index_t const block_bytes = groups * group_bytes;
    for (index_t g = 0; g < groups; ++g) {
        __m512i kz[Blocks];
#pragma GCC unroll 2
        for (int c = 0; c < Blocks; ++c) kz[c] = _mm512_loadu_si512(block + c * block_bytes + g * group_bytes);
#pragma GCC unroll 8
        for (int r = 0; r < Rows; ++r) {
            std::int32_t word;
            __builtin_memcpy(&word, q + r * ld + g * group, sizeof(word));
            __m512i const qw = _mm512_set1_epi32(word);
#pragma GCC unroll 2
            for (int c = 0; c < Blocks; ++c) dpbusd(acc[c][r], kz[c], qw);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
        __m512i const off = _mm512_set1_epi32(offset[r]);
#pragma GCC unroll 2
        for (int c = 0; c < Blocks; ++c) _mm512_storeu_si512(out + r * ldo + c * key_block, _mm512_sub_epi32(acc[c][r], off));
    }
}

/// dot_block() for a run-time row count.
template <int Blocks>
DEQ_TARGET_AVX512 inline void dot_rows(index_t n, std::int8_t const* q, index_t ld, std::int32_t const* offset,
                                       std::uint8_t const* block, std::int32_t* out, index_t ldo) {
    switch (n) {
        case 8: dot_block<8, Blocks>(q, ld, offset, block, out, ldo); break;
        case 7: dot_block<7, Blocks>(q, ld, offset, block, out, ldo); break;
        case 6: dot_block<6, Blocks>(q, ld, offset, block, out, ldo); break;
        case 5: dot_block<5, Blocks>(q, ld, offset, block, out, ldo); break;
        case 4: dot_block<4, Blocks>(q, ld, offset, block, out, ldo); break;
        case 3: dot_block<3, Blocks>(q, ld, offset, block, out, ldo); break;
        case 2: dot_block<2, Blocks>(q, ld, offset, block, out, ldo); break;
        default: dot_block<1, Blocks>(q, ld, offset, block, out, ldo); break;
    }
}

/// Exact integer dot products of @p rows query rows with @p keys packed keys.
/// @param q      Query levels, [rows][ld].
/// @param ld     Row stride (a multiple of 4).
/// @param offset 128 · Σ_t q_t per row.
/// @param rows   Query rows.
/// @param packed The packed keys of this (batch, head), starting at a key block.
/// @param keys   Number of keys to compute (from the first key of @p packed).
/// @param out    rows x round_up(keys, 16) dot products, row stride @p ldo (a multiple of 16).
/// @param ldo    Row stride of @p out.
DEQ_TARGET_AVX512 inline void dot_tile(std::int8_t const* q, index_t ld, std::int32_t const* offset, index_t rows,
                                       std::uint8_t const* packed, index_t keys, std::int32_t* out, index_t ldo) {
    index_t const block_bytes = (ld / group) * group_bytes;
    index_t const blocks = keys / key_block + (keys % key_block != 0 ? 1 : 0);
    for (index_t i = 0; i < rows; i += 8) {
        index_t const n = rows - i < 8 ? rows - i : 8;
        std::int8_t const* qi = q + i * ld;
        index_t b = 0;
        for (; b + 2 <= blocks; b += 2) dot_rows<2>(n, qi, ld, offset + i, packed + b * block_bytes, out + i * ldo + b * key_block, ldo);
        if (b < blocks) dot_rows<1>(n, qi, ld, offset + i, packed + b * block_bytes, out + i * ldo + b * key_block, ldo);
    }
}

/// Whether the quotient `x / s` of every integer x in [0, @p bound] equals its reciprocal form
/// `fma(fma(-q0, s, x), y, q0)` with `q0 = x · y`, `y = 1 / s` (three fused operations instead of a
/// division; both round to nearest and are odd in x, so negative x agree as well). Checked for every x
/// with the instructions rescale_row() uses, so the replacement is exact by construction.
/// @param s     The divisor (positive, finite).
/// @param y     1 / s rounded to float.
/// @param bound The largest |x| (below 2^24, where int32 -> float is exact).
/// @return True when every quotient agrees bit for bit.
DEQ_TARGET_AVX512 inline bool reciprocal_quotient_exact(float s, float y, std::int32_t bound) {
    __m512 const vs = _mm512_set1_ps(s), vy = _mm512_set1_ps(y);
    __m512i x = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i const step = _mm512_set1_epi32(16);
    for (std::int32_t x0 = 0; x0 <= bound; x0 += 16, x = _mm512_add_epi32(x, step)) {
        __m512 const xf = _mm512_cvtepi32_ps(x);
        __m512 const q0 = _mm512_mul_ps(xf, vy);
        __m512 const q1 = _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, vs, xf), vy, q0);
        __m512 const exact = _mm512_div_ps(xf, vs);
        if (_mm512_cmpneq_epi32_mask(_mm512_castps_si512(q1), _mm512_castps_si512(exact)) != 0) return false;
    }
    return true;
}

/// `x / s`: a division, or with @p reciprocal the reciprocal form of reciprocal_quotient_exact().
/// @param reciprocal Whether to use the reciprocal form.
/// @param s          The divisor.
/// @param y          1 / s.
/// @param x          The dividends.
/// @return The quotients.
DEQ_TARGET_AVX512 inline __m512 quotient(bool reciprocal, __m512 s, __m512 y, __m512 x) {
    if (!reciprocal) return _mm512_div_ps(x, s);
    __m512 const q0 = _mm512_mul_ps(x, y);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, s, x), y, q0);
}

/// Whether `fma(y, zh, y · zl)` equals the IEEE quotient `y / s` for every float y whose products stay
/// normal (|y · zl| >= 2^-125, see constant_quotient_min()), checked exhaustively: both sides scale
/// exactly with y's exponent while no result is subnormal and the sign is symmetric, so it suffices to
/// compare them for all 2^23 significands y in [1, 2) (with the instructions rescale_row_reduce() uses;
/// about 2^19 vector divisions). zh = RN(1 / s), zl ≈ 1 / s - zh (Brisebarre, Muller and Raina's
/// division by a constant known in advance, here verified for the given s instead of proven).
/// @param s  The divisor (finite, >= 1).
/// @param zh 1 / s rounded to float.
/// @param zl The rounding error of zh, rounded to float (not 0).
/// @return True when the replacement is exact for every such y.
DEQ_TARGET_AVX512 inline bool constant_quotient_exact(float s, float zh, float zl) {
    __m512 const vs = _mm512_set1_ps(s), vh = _mm512_set1_ps(zh), vl = _mm512_set1_ps(zl);
    __m512i bits = _mm512_add_epi32(_mm512_set1_epi32(0x3F800000), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i const step = _mm512_set1_epi32(16);
    __mmask16 wrong = 0;
    for (std::int32_t n = 0; n < (1 << 23); n += 16, bits = _mm512_add_epi32(bits, step)) {
        __m512 const y = _mm512_castsi512_ps(bits);
        __m512 const fast = _mm512_fmadd_ps(y, vh, _mm512_mul_ps(y, vl));
        wrong |= _mm512_cmpneq_epi32_mask(_mm512_castps_si512(fast), _mm512_castps_si512(_mm512_div_ps(y, vs)));
    }
    return wrong == 0;
}

/// The smallest |y| for which constant_quotient_exact()'s replacement is used (below it, but not at 0,
/// the rescaling divides): y · zl stays normal.
/// @param zl The low part of the reciprocal (not 0).
/// @return 2^-125 / |zl|, rounded up.
inline float constant_quotient_min(float zl) {
    double const m = 0x1p-125 / static_cast<double>(zl < 0 ? -zl : zl);
    return m > 3.0e38 ? __builtin_inff() : static_cast<float>(m * (1.0 + 0x1p-20));
}

/// The float rescaling of a dot-product row, `S(dot) / sxy * (qn · kn_j) / sqrt_d`, in that order and
/// with IEEE division (bit-identical to the portable loop; a power-of-two sqrt_d is exact either way).
/// @param dots   @p n dot products.
/// @param qn     The query row's norm.
/// @param kn     @p n key norms.
/// @param sxy    sx · sy.
/// @param inv    1 / sxy when reciprocal_quotient_exact() holds for every dot product of the call, else 0
///               (divide).
/// @param sqrt_d sqrt(d) in float.
/// @param n      Number of entries.
/// @param out    @p n scores.
/// @param zh     With @p zl, the verified reciprocal of sqrt_d (see rescale_row_reduce()), or 0: divide.
/// @param zl     See @p zh.
DEQ_TARGET_AVX512 inline void rescale_row(std::int32_t const* dots, float qn, float const* kn, float sxy, float inv,
                                          float sqrt_d, index_t n, float* out, float zh = 0.0f, float zl = 0.0f);

/// rescale_row() that also reduces what it writes: the largest score and whether every score is finite
/// (the row maximum of a selection pass, without a second pass over the row).
/// @tparam Reduce Whether to compute @p max and the return value (false: rescale_row()).
/// @param dots   @p n dot products.
/// @param qn     The query row's norm.
/// @param kn     @p n key norms.
/// @param sxy    sx · sy.
/// @param inv    1 / sxy or 0 (see rescale_row()).
/// @param sqrt_d sqrt(d) in float.
/// @param n      Number of entries (>= 1 for a meaningful maximum).
/// @param out    @p n scores.
/// @param max    Output: the largest score (valid when the return value is true).
/// @param zh     With @p zl: `y / sqrt_d` as `fma(y, zh, y · zl)` where constant_quotient_exact() holds
///               (0: divide). Lanes with 0 < |y| < constant_quotient_min() still divide; y = ±0 gives ±0.
/// @param zl     See @p zh.
/// @return True when every score is finite.
template <bool Reduce>
DEQ_TARGET_AVX512 inline bool rescale_row_reduce(std::int32_t const* dots, float qn, float const* kn, float sxy, float inv,
                                                 float sqrt_d, index_t n, float* out, float& max, float zh = 0.0f, float zl = 0.0f) {
    __m512 const vs = _mm512_set1_ps(sxy), vq = _mm512_set1_ps(qn), vd = _mm512_set1_ps(sqrt_d), vi = _mm512_set1_ps(inv);
    // Division by a power of two is exact multiplication by its reciprocal (same rounding of the same
    // real number, subnormal results included): sqrt(d) = 8 for d = 64.
    bool const pow2 = is_power_of_two(sqrt_d);
    bool const reciprocal = inv != 0.0f;
    bool const constant = !pow2 && zh != 0.0f && zl != 0.0f;
    __m512 const vr = _mm512_set1_ps(1.0f / sqrt_d), vh = _mm512_set1_ps(zh), vl = _mm512_set1_ps(zl);
    __m512 const vmin = _mm512_set1_ps(constant ? constant_quotient_min(zl) : 0.0f);
    auto const divide = [&](__m512 y) DEQ_TARGET_AVX512 {
        if (pow2) return _mm512_mul_ps(y, vr);
        if (!constant) return _mm512_div_ps(y, vd);
        __mmask16 const nonzero = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        // ±0 / s is ±0 (the fma form could turn -0 into +0)
        __m512 const z = _mm512_mask_blend_ps(nonzero, y, _mm512_fmadd_ps(y, vh, _mm512_mul_ps(y, vl)));
        __mmask16 const tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(y), vmin, _CMP_LT_OQ) & nonzero;
        return tiny == 0 ? z : _mm512_mask_div_ps(z, tiny, y, vd);
    };
    __m512 vmax = _mm512_set1_ps(-__builtin_inff());
    __mmask16 bad = 0;
    index_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 const x = quotient(reciprocal, vs, vi, _mm512_cvtepi32_ps(_mm512_loadu_si512(dots + j)));
        __m512 const z = divide(_mm512_mul_ps(x, _mm512_mul_ps(vq, _mm512_loadu_ps(kn + j))));
        _mm512_storeu_ps(out + j, z);
        if constexpr (Reduce) {
            bad |= _mm512_fpclass_ps_mask(z, 0x99);
            vmax = _mm512_max_ps(vmax, z);
        }
    }
    if (j < n) {
        __mmask16 const m = static_cast<__mmask16>((1u << (n - j)) - 1u);
        __m512 const x = quotient(reciprocal, vs, vi, _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, dots + j)));
        __m512 const z = divide(_mm512_mul_ps(x, _mm512_mul_ps(vq, _mm512_maskz_loadu_ps(m, kn + j))));
        _mm512_mask_storeu_ps(out + j, m, z);
        if constexpr (Reduce) {
            bad |= _mm512_mask_fpclass_ps_mask(m, z, 0x99);
            vmax = _mm512_mask_max_ps(vmax, m, vmax, z);
        }
    }
    if constexpr (Reduce) max = _mm512_reduce_max_ps(vmax);
    return bad == 0;
}

DEQ_TARGET_AVX512 inline void rescale_row(std::int32_t const* dots, float qn, float const* kn, float sxy, float inv,
                                          float sqrt_d, index_t n, float* out, float zh, float zl) {
    float unused = 0;
    rescale_row_reduce<false>(dots, qn, kn, sxy, inv, sqrt_d, n, out, unused, zh, zl);
}

/// Sums of squares of up to 8 float rows at once, each in double and in the order t = 0, 1, ..., n - 1 (one
/// row per lane: every lane rounds exactly as the scalar loop `sum += double(x[t]) * double(x[t])`, whose
/// products are exact), so the norms are bit-identical to the portable path's.
/// @param rows  Pointers to the rows (entries `rows[r][t * stride]`); lanes r >= @p count are not read.
/// @param count Rows (1..8).
/// @param n     Entries per row.
/// @param stride Distance between a row's entries.
/// @param sums  Output: the sums of squares (non-finite where an entry is not finite).
DEQ_TARGET_AVX512 inline void sum_squares_rows8(float const* const* rows, int count, index_t n, index_t stride, double* sums) {
    alignas(64) long long offset[8] = {};
    float const* const base = rows[0];
    for (int r = 0; r < count; ++r) offset[r] = static_cast<long long>(rows[r] - base);
    __m512i const off = _mm512_load_si512(offset);
    __mmask8 const lanes = static_cast<__mmask8>((1u << count) - 1u);
    __m512d acc = _mm512_setzero_pd();
    index_t t = 0;
    if (stride == 1) {
        // 8 entries of each row at a time, transposed to 8 columns (no gathers). fma(x, x, acc) rounds as
        // acc + x · x does: the product of two floats is exact in double.
        float const* src[8];
        for (int r = 0; r < 8; ++r) src[r] = rows[r < count ? r : 0];
        for (; t + 8 <= n; t += 8) {
            __m256 const r0 = _mm256_loadu_ps(src[0] + t), r1 = _mm256_loadu_ps(src[1] + t), r2 = _mm256_loadu_ps(src[2] + t),
                         r3 = _mm256_loadu_ps(src[3] + t), r4 = _mm256_loadu_ps(src[4] + t), r5 = _mm256_loadu_ps(src[5] + t),
                         r6 = _mm256_loadu_ps(src[6] + t), r7 = _mm256_loadu_ps(src[7] + t);
            __m256 const t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
                         t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 const u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
                         u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                         u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            __m256 const column[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                                      _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                                      _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                                      _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
            for (int c = 0; c < 8; ++c) {  // in the order t, t + 1, ..., t + 7
                __m512d const d = _mm512_cvtps_pd(column[c]);
                acc = _mm512_fmadd_pd(d, d, acc);
            }
        }
    }
    for (; t < n; ++t) {
        __m256 const x = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), lanes, off, base + t * stride, 4);
        __m512d const d = _mm512_cvtps_pd(x);
        acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
    }
    alignas(64) double out[8];
    _mm512_store_pd(out, acc);
    for (int r = 0; r < count; ++r) sums[r] = out[r];
}

/// Quantizes a normalised float row: `out[t] = clamp(round_half_even((x[t] / norm) * scale), ±qmax)`,
/// with IEEE division and multiplication and the rounding mode given in the instruction (independent
/// of MXCSR), so the levels equal deq::quant::quantize_symmetric() element by element.
/// @param x     @p n floats.
/// @param n     Number of elements.
/// @param norm  The row's norm (> 0).
/// @param scale Quantization scale.
/// @param qmax  Largest level (at most 127).
/// @param out   @p n levels.
DEQ_TARGET_AVX512 inline void quantize_row(float const* x, index_t n, float norm, float scale, int qmax, std::int8_t* out) {
    __m512 const vn = _mm512_set1_ps(norm), vs = _mm512_set1_ps(scale);
    __m512 const hi = _mm512_set1_ps(static_cast<float>(qmax)), lo = _mm512_set1_ps(-static_cast<float>(qmax));
    for (index_t t = 0; t < n; t += 16) {
        __mmask16 const m = n - t >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - t)) - 1u);
        __m512 const unit = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + t), vn);
        __m512 const r = _mm512_roundscale_ps(_mm512_mul_ps(unit, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 const c = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        _mm_mask_storeu_epi8(out + t, m, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(c)));
    }
}

}  // namespace deq::arch::avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // DEQ_ARCH_X86
