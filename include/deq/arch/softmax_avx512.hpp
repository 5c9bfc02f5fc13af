/// @file
/// @brief AVX-512 version of the predicted softmax row of deq::select_elements (internal; see
/// deq/mask/detail/softmax_row.hpp): the same operations as the portable row in the same order
/// (penalty, maximum, deq::exp_fused with fused multiply-adds, 16 interleaved partial sums added in a
/// fixed tree, division), so the bits agree with it.
///
/// Why intrinsics: the row must be bit-identical to the portable definition; compilers do not
/// guarantee which FMA contractions and reduction orders a vectorised loop uses.
#pragma once

#include <algorithm>
#include <cmath>
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

/// Relative error bound of exp_estimate_ps() against exp_fused_ps() on every float x <= 0 whose
/// exponential is a normal float (tests/unit/mask/select_tiers.cpp measures it; the actual error is
/// below 2^-18).
inline constexpr double exp_estimate_relative_error = 0x1p-14;
/// Absolute error bound of exp_estimate_ps() against exp_fused_ps() on every float x <= 0 (covers the
/// subnormal range, where both are at most 2^-126).
inline constexpr double exp_estimate_absolute_error = 0x1p-125;

/// A cheap exponential for bounds, not for results: 2^n · P(r) with r = x - n·ln2 and a degree-4
/// polynomial P, scaled with vscalefps (9 instructions against exp_fused_ps()'s 21). Its distance to
/// exp_fused_ps() is bounded by exp_estimate_relative_error and exp_estimate_absolute_error.
/// @param x Arguments <= 0 (finite or -inf).
/// @return About exp(x).
DEQ_TARGET_AVX512 inline __m512 exp_estimate_ps(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-150.0f));  // exp(-150) scales to +0
    __m512 const magic = _mm512_set1_ps(12582912.0f);
    __m512 const n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic), magic);
    __m512 const r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693147182f), x);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.0414586067f), r, _mm512_set1_ps(0.167909086f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.500043571f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.999963403f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.999999285f));
    return _mm512_scalef_ps(p, n);
}

/// Whether softmax_threshold_row_estimated() decides rows with threshold @p t: 2^-60 <= t < 1 (the
/// candidates' exponentials are then normal floats and their cut is below 0).
/// @param t The threshold.
/// @return True where it applies.
inline bool softmax_threshold_estimable(float t) { return t >= 0x1p-60f && t < 1.0f; }

/// The selection `P̂_j > t` (`<= t` when @p inverse) of one row, decided without the exact sum of the
/// exponentials where a bound on it suffices; returns false (the caller then runs the exact rows) where
/// it does not. The bits are those of softmax_exp_sum() followed by quotient_threshold_row().
///
/// With d_j = x_j - m (the reference's own differences), e_j = exp_fused(d_j) and `sum` the reference's
/// rounded sum of the e_j (deq/mask/detail/softmax_row.hpp):
/// 1. One pass sums the estimates exp_estimate_ps(d_j) (any order). With γ = k·u / (1 - k·u), u = 2^-24 and
///    k = ceil(n / 16) + 4 additions per term, both the estimate's and the reference's rounded sums lie
///    within γ of their exact sums, so `sum` lies in [S_lo, S_hi] (and sum >= 1: e_j = 1 at the maximum).
/// 2. The same pass marks the candidates d_j >= ln t - 2^-10, and a second one visits their blocks of 16
///    entries and compares d_j with ln(t · S_lo) - 2^-10 (both logarithms bounded from below): below it,
///    e_j < t · sum (exp_fused is within 2 ulp of exp), so `RN(e_j / sum) <= t`: not selected (sum >= 1 for
///    the first cut). For the remaining candidates, e_j >= t · S_hi · (1 + 2^-20) is selected (the quotient
///    is then above t by more than half an ulp of t), e_j <= t · S_lo · (1 - 2^-20) is not, and anything
///    between is undecided. The estimate decides where its error bound puts e_j on one side; the other
///    entries of the block get their exact e_j (exp_fused_ps()).
/// @param x       @p n penalised, finite scores.
/// @param n       Row length (>= 1).
/// @param max     Their maximum.
/// @param t       The threshold (softmax_threshold_estimable()).
/// @param inverse Select `<= t`.
/// Given the maxima of chunks of @p chunk entries, the first pass skips the chunks whose maximum is
/// below m - 24 (and below the first cut): their terms are bounded by their number times e^-24.
/// @param words   The row's mask words (cleared by the caller; unspecified when false is returned).
/// @param chunk_max If not null: the maximum of each chunk of @p chunk entries.
/// @param chunk     Entries per chunk, a multiple of 64 (with @p chunk_max).
/// @return Whether every entry was decided.
DEQ_TARGET_AVX512 inline bool softmax_threshold_row_estimated(float const* x, index_t n, float max, float t, bool inverse,
                                                              std::uint64_t* words, float const* chunk_max = nullptr,
                                                              index_t chunk = 0) {
    constexpr double u = 0x1p-24;
    double const k = static_cast<double>(n / 16 + (n % 16 != 0 ? 1 : 0) + 4);
    if (k * u >= 0x1p-8) return false;
    __m512 const vm = _mm512_set1_ps(max);
    // Candidates of the first pass: d_j >= ln t - 2^-10 (sum >= 1, so the others are not selected).
    // Floats on the safe side of a double v (float's relative rounding error is at most 2^-24).
    auto round_down = [](double v) { return static_cast<float>(v - (v < 0 ? -v : v) * 0x1p-22); };
    auto round_up = [](double v) { return static_cast<float>(v + (v < 0 ? -v : v) * 0x1p-22); };
    // ln(y) from below for a positive normal double y, without a library call: y = 2^e · f with f in
    // [1, 2), and ln f >= (f - 1) · ln 2 (ln is concave: above its chord on [1, 2]).
    auto ln_below = [](double y) {
        std::uint64_t y_bits;
        __builtin_memcpy(&y_bits, &y, sizeof(y_bits));
        auto const exponent = static_cast<double>(static_cast<std::int64_t>((y_bits >> 52) & 0x7FFu) - 1023);
        std::uint64_t const f_bits = (y_bits & ((std::uint64_t{1} << 52) - 1u)) | (std::uint64_t{1023} << 52);
        double f;
        __builtin_memcpy(&f, &f_bits, sizeof(f));
        return (exponent + (f - 1.0)) * 0.69314718055994529;
    };
    double const td = static_cast<double>(t);
    __m512 const vcut0 = _mm512_set1_ps(round_down(ln_below(td) - 0x1p-10));
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    // Chunks whose maximum is far below the row's are skipped: each of their d_j is at most
    // RN(chunk max - m) < gap (rounding is monotonic), so e_j <= e^gap · (1 + 2^-22), and gap < cut0.
    float const gap = std::min(-24.0f, static_cast<float>(ln_below(td)) - 2.0f);
    index_t skipped = 0;
    if (chunk <= 0 || chunk % 64 != 0) chunk_max = nullptr;  // the mask words below need chunks of whole words
    index_t const span = chunk_max != nullptr ? chunk : n;
    for (index_t j0 = 0; j0 < n; j0 += span) {
        index_t const j1 = std::min(n, j0 + span);
        if (chunk_max != nullptr && chunk_max[j0 / span] - max < gap) {
            skipped += j1 - j0;
            continue;
        }
        for (index_t j = j0; j < j1; j += 32) {  // two sums: not bound by the latency of one add chain
            __mmask16 const ma = lanes(j1 - j), mb = j1 - j > 16 ? lanes(j1 - j - 16) : static_cast<__mmask16>(0);
            __m512 const da = _mm512_sub_ps(_mm512_maskz_loadu_ps(ma, x + j), vm);
            __m512 const db = _mm512_sub_ps(_mm512_maskz_loadu_ps(mb, x + j + 16), vm);
            s0 = _mm512_mask_add_ps(s0, ma, s0, exp_estimate_ps(da));
            s1 = _mm512_mask_add_ps(s1, mb, s1, exp_estimate_ps(db));
            auto const ca = static_cast<std::uint32_t>(_mm512_mask_cmp_ps_mask(ma, da, vcut0, _CMP_GE_OQ));
            auto const cb = static_cast<std::uint32_t>(_mm512_mask_cmp_ps_mask(mb, db, vcut0, _CMP_GE_OQ));
            words[j / 64] |= static_cast<std::uint64_t>(ca | (cb << 16)) << (j % 64);  // j % 64 is 0 or 32
        }
    }
    // Each lane of s0 + s1 adds at most ceil(n / 16) terms, then the reduction adds 5 levels: k covers it
    // with the lane sum below as one more level (k counts 4 levels and the first addition to 0 is exact).
    double const estimate = static_cast<double>(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
    double const gamma = k * u / (1.0 - k * u);
    double const spread = static_cast<double>(n) * exp_estimate_absolute_error +
                          static_cast<double>(skipped) * 0x1p-34;  // e^gap · (1 + 2^-22) <= e^-24 · (1 + 2^-22) < 2^-34
    // 1 / (1 + x) >= 1 - x and 1 / (1 - x) <= 1 + 2x for 0 <= x <= 1/2: bounds without divisions
    double const exact_lo = (estimate * (1.0 - gamma) - spread) * (1.0 - exp_estimate_relative_error);
    double const exact_hi = (estimate * (1.0 + 2.0 * gamma) + spread) * (1.0 + 2.0 * exp_estimate_relative_error);
    double const sum_lo = std::max(1.0, exact_lo * (1.0 - gamma)), sum_hi = exact_hi * (1.0 + gamma);
    if (!std::isfinite(sum_hi)) return false;
    double const cut_d = ln_below(td * sum_lo) - 0x1p-10;
    // Float bounds rounded outwards: d_j < cut is pruned, e_j >= keep is selected, e_j <= drop is pruned.
    __m512 const vcut = _mm512_set1_ps(round_down(cut_d));
    double const keep_d = td * sum_hi * (1.0 + 0x1p-20), drop_d = td * sum_lo * (1.0 - 0x1p-20);
    __m512 const vkeep = _mm512_set1_ps(round_up(keep_d));
    __m512 const vdrop = _mm512_set1_ps(round_down(drop_d));
    // The same decisions from the estimate where its error bound suffices: with ρ and α the relative and
    // absolute bounds, e_j >= (est - α) / (1 + ρ) and e_j <= (est + α) / (1 - ρ), so est >= keep · (1 + 2ρ) + α
    // gives e_j >= keep and est <= drop · (1 - 2ρ) - α gives e_j <= drop (1 / (1 - ρ) <= 1 + 2ρ). Only the
    // blocks with an entry between the two get exact exponentials.
    __m512 const vkeep_est = _mm512_set1_ps(round_up(keep_d * (1.0 + 2.0 * exp_estimate_relative_error) + exp_estimate_absolute_error));
    __m512 const vdrop_est = _mm512_set1_ps(round_down(drop_d * (1.0 - 2.0 * exp_estimate_relative_error) - exp_estimate_absolute_error));
    // The second pass visits only the blocks of 16 entries with a candidate of the first.
    index_t const nwords = n / 64 + (n % 64 != 0 ? 1 : 0);
    for (index_t w = 0; w < nwords; ++w) {
        std::uint64_t pending = words[w];
        std::uint64_t kept = 0;
        while (pending != 0) {
            int const block = __builtin_ctzll(pending) / 16;
            auto const first = static_cast<__mmask16>(pending >> (16 * block));
            pending &= ~(std::uint64_t{0xFFFF} << (16 * block));
            index_t const j = w * 64 + 16 * block;
            __m512 const d = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes(n - j), x + j), vm);
            __mmask16 const candidates = _mm512_mask_cmp_ps_mask(first, d, vcut, _CMP_GE_OQ);
            if (candidates == 0) continue;
            __m512 const est = exp_estimate_ps(d);
            __mmask16 keep = _mm512_mask_cmp_ps_mask(candidates, est, vkeep_est, _CMP_GE_OQ);
            __mmask16 const open = static_cast<__mmask16>(candidates & ~keep & ~_mm512_mask_cmp_ps_mask(candidates, est, vdrop_est, _CMP_LE_OQ));
            if (open != 0) {
                __m512 const e = exp_fused_ps(d);
                __mmask16 const exact_keep = _mm512_mask_cmp_ps_mask(open, e, vkeep, _CMP_GE_OQ);
                __mmask16 const exact_drop = _mm512_mask_cmp_ps_mask(open, e, vdrop, _CMP_LE_OQ);
                if (static_cast<__mmask16>(exact_keep | exact_drop) != open) return false;
                keep = static_cast<__mmask16>(keep | exact_keep);
            }
            kept |= static_cast<std::uint64_t>(keep) << (16 * block);
        }
        words[w] = kept;
    }
    if (inverse) {
        for (index_t i = 0; i < nwords; ++i) {
            index_t const bits = std::min<index_t>(64, n - i * 64);
            std::uint64_t const valid = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1u;
            words[i] = ~words[i] & valid;
        }
    }
    return true;
}

/// The selection `P̂_j > t` (`<= t` when @p inverse) of one row of predicted scores, with the
/// finiteness check of the scores: the padding penalty, the maximum and the check
/// (softmax_penalty_max(); skipped when the caller knows the maximum of an unpadded finite row), then
/// softmax_threshold_row_estimated(), or where it does not decide, the exponentials and their sum
/// (softmax_exp_sum()) and quotient_threshold_row(). The same bits as row_max_checked(), softmax_row()
/// and threshold_row() of deq/mask/detail/softmax_row.hpp.
/// @param x       @p n scores, overwritten (padded entries).
/// @param n       Row length (>= 1).
/// @param padded  Padded-key words, or null.
/// @param pad     The padding penalty (-10000).
/// @param t       The threshold (finite).
/// @param inverse Select `<= t`.
/// @param words   The row's mask words (cleared by the caller).
/// @param known_max If not null (and @p padded is null): the maximum of the row, whose scores are all finite.
/// @param chunk_max With @p known_max: the maxima of chunks of @p chunk entries, or null
///                  (softmax_threshold_row_estimated()).
/// @param chunk     Entries per chunk.
/// @return -1, or the index of the first score that is not finite (then no bit is set).
DEQ_TARGET_AVX512 inline index_t softmax_threshold_row_checked(float* x, index_t n, std::uint64_t const* padded, float pad, float t,
                                                               bool inverse, std::uint64_t* words, float const* known_max = nullptr,
                                                               float const* chunk_max = nullptr, index_t chunk = 0) {
    float m = 0;
    if (known_max != nullptr && padded == nullptr) {
        m = *known_max;
    } else {
        chunk_max = nullptr;
        index_t const bad = softmax_penalty_max<true>(x, n, padded, pad, m);
        if (bad >= 0) return bad;
    }
    if (softmax_threshold_estimable(t)) {
        if (softmax_threshold_row_estimated(x, n, m, t, inverse, words, chunk_max, chunk)) return -1;
        for (index_t i = 0; i < n / 64 + (n % 64 != 0 ? 1 : 0); ++i) words[i] = 0;
    }
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
