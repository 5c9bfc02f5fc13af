/// @file
/// @brief The predicted softmax row of deq::select_elements, `P̂_j = softmax_j(Ŝ_j + pad_j)`, defined
/// once and computed with the same bits on every instruction-set tier (internal).
///
/// Definition, in the score type S, for a row x of n scores:
/// 1. `x_j = x_j + (-10000)` for each padded key j (the reference's additive padding mask);
/// 2. `m = max_j x_j`;
/// 3. `e_j = exp(x_j - m)` with deq::exp_fused for float (std::exp for double), summed in 16 interleaved
///    partial sums (`part[j % 16] += e_j` in key order) that are added in the fixed tree
///    `a_l = part_l + part_{l+8}`, `b_l = a_l + a_{l+4}`, `c_l = b_l + b_{l+2}`, `sum = c_0 + c_1`;
/// 4. `P̂_j = e_j / sum`.
/// This is PyTorch's softmax (subtract the maximum, exp, sum, divide) with a vector-friendly summation
/// order, which the SIMD rows (deq/arch/softmax_avx512.hpp, softmax_avx2.hpp) reproduce bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../arch/isa.hpp"
#include "../../arch/softmax_avx2.hpp"
#include "../../arch/softmax_avx512.hpp"
#include "../../config.hpp"
#include "../../core/tensor.hpp"
#include "../../numeric/exp.hpp"

namespace deq::detail {

/// The penalty of padded keys in the predicted softmax (the reference's extended attention mask).
inline constexpr double softmax_padding_penalty = -10000.0;

/// The exponential of the predicted softmax in S.
template <class S>
DEQ_HOST_DEVICE inline S softmax_exp(S x) {
    if constexpr (std::is_same_v<S, float>) return ::deq::exp_fused(x);
    else return std::exp(x);
}

/// The predicted softmax of one row in place (see the file documentation), portable definition.
/// @tparam S Score type.
/// @param x      @p n finite scores, overwritten by the probabilities.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words of the row's sequence (bit j set: key j padded), or null.
template <class S>
DEQ_HOST_DEVICE inline void softmax_row_portable(S* x, index_t n, std::uint64_t const* padded) {
    S const pad = static_cast<S>(softmax_padding_penalty);
    S m = 0;
    for (index_t j = 0; j < n; ++j) {
        if (padded != nullptr && ((padded[j / 64] >> (j % 64)) & 1u) != 0) x[j] = x[j] + pad;
        if (j == 0 || x[j] > m) m = x[j];
    }
    S part[16] = {};
    for (index_t j = 0; j < n; ++j) {
        S const e = softmax_exp(x[j] - m);
        x[j] = e;
        part[j % 16] += e;
    }
    S a[8], b[4], c[2];
    for (int l = 0; l < 8; ++l) a[l] = part[l] + part[l + 8];
    for (int l = 0; l < 4; ++l) b[l] = a[l] + a[l + 4];
    for (int l = 0; l < 2; ++l) c[l] = b[l] + b[l + 2];
    S const sum = c[0] + c[1];
    for (index_t j = 0; j < n; ++j) x[j] = x[j] / sum;
}

/// The predicted softmax of one row in place, on @p tier (the same bits on every tier).
/// @tparam S Score type.
/// @param x      @p n finite scores, overwritten by the probabilities.
/// @param n      Row length (>= 1).
/// @param padded Padded-key words, or null.
/// @param tier   Instruction-set tier (float rows only use it).
template <class S>
DEQ_HOST_DEVICE inline void softmax_row(S* x, index_t n, std::uint64_t const* padded, arch::isa tier) {
#if DEQ_ARCH_X86 && !DEQ_DEVICE_PASS
    if constexpr (std::is_same_v<S, float>) {
        float const pad = static_cast<float>(softmax_padding_penalty);
        if (tier == arch::isa::avx512) return arch::avx512::softmax_row(x, n, padded, pad);
        if (tier == arch::isa::avx2) return arch::avx2::softmax_row(x, n, padded, pad);
    }
#endif
    (void)tier;
    softmax_row_portable(x, n, padded);
}

/// The maximum of a row and the first non-finite entry, on @p tier.
/// @tparam S Score type.
/// @param x    @p n values.
/// @param n    Row length (>= 1).
/// @param max  The maximum (valid when the row is finite).
/// @param tier Instruction-set tier.
/// @return -1 when every value is finite, else the index of the first NaN or ±inf.
template <class S>
DEQ_HOST_DEVICE inline index_t row_max_checked(S const* x, index_t n, S& max, arch::isa tier) {
#if DEQ_ARCH_X86 && !DEQ_DEVICE_PASS
    if constexpr (std::is_same_v<S, float>) {
        if (tier == arch::isa::avx512) return arch::avx512::row_max_checked(x, n, max);
        if (tier == arch::isa::avx2) return arch::avx2::row_max_checked(x, n, max);
    }
#endif
    (void)tier;
    S m = x[0];
    for (index_t j = 0; j < n; ++j) {
        if (!std::isfinite(x[j])) return j;
        m = x[j] > m ? x[j] : m;
    }
    max = m;
    return -1;
}

/// Sets bit j of @p words (cleared by the caller) for each `x_j > t` (`x_j <= t` when @p inverse), on
/// @p tier (the comparisons are exact, so every tier sets the same bits).
/// @tparam S Score type.
/// @param x       @p n values.
/// @param n       Row length.
/// @param inverse Select `x_j <= t`.
/// @param t       The threshold.
/// @param words   The row's mask words.
/// @param tier    Instruction-set tier.
template <class S>
DEQ_HOST_DEVICE inline void threshold_row(S const* x, index_t n, bool inverse, S t, std::uint64_t* words, arch::isa tier) {
#if DEQ_ARCH_X86 && !DEQ_DEVICE_PASS
    if constexpr (std::is_same_v<S, float>) {
        if (tier == arch::isa::avx512) return arch::avx512::threshold_row(x, n, inverse, t, words);
        if (tier == arch::isa::avx2) return arch::avx2::threshold_row(x, n, inverse, t, words);
    }
#endif
    (void)tier;
    for (index_t j = 0; j < n; ++j) {
        bool const selected = inverse ? (x[j] <= t) : (x[j] > t);
        if (selected) words[j / 64] |= std::uint64_t{1} << (j % 64);
    }
}

/// The selection `P̂_j > t` (`P̂_j <= t` when @p inverse) on one row's predicted softmax, after the
/// finiteness check of row_max_checked(): the bits of softmax_row() followed by threshold_row(), on
/// @p tier. The AVX-512 tier decides most rows from a bound on the sum of the exponentials and the exact
/// exponentials of the few entries near the threshold (arch::avx512::softmax_threshold_row_estimated()),
/// and the others by comparing e_j with the threshold times the exact sum instead of dividing
/// (arch::avx512::quotient_threshold_row()). The same bits on every tier.
/// @tparam S Score type.
/// @param x       @p n scores, overwritten.
/// @param n       Row length (>= 1).
/// @param padded  Padded-key words, or null.
/// @param inverse Select `P̂_j <= t`.
/// @param t       The threshold.
/// @param words   The row's mask words (cleared by the caller; no bit set when a score is not finite).
/// @param tier    Instruction-set tier.
/// @param known_max If not null: the maximum of the row, whose scores the caller knows to be finite (the
///                  AVX-512 tier then skips a pass where the row has no padded key).
/// @param chunk_max With @p known_max: the maxima of chunks of @p chunk entries (a multiple of 64), or null.
/// @param chunk     Entries per chunk.
/// @return -1, or the index of the first score that is not finite.
template <class S>
DEQ_HOST_DEVICE inline index_t softmax_threshold_row_checked(S* x, index_t n, std::uint64_t const* padded, bool inverse, S t,
                                                             std::uint64_t* words, arch::isa tier, S const* known_max = nullptr,
                                                             S const* chunk_max = nullptr, index_t chunk = 0) {
    (void)known_max;
    (void)chunk_max;
    (void)chunk;
#if DEQ_ARCH_X86 && !DEQ_DEVICE_PASS
    if constexpr (std::is_same_v<S, float>) {
        if (tier == arch::isa::avx512 && std::isfinite(t)) {
            return arch::avx512::softmax_threshold_row_checked(x, n, padded, static_cast<float>(softmax_padding_penalty), t, inverse,
                                                               words, known_max, chunk_max, chunk);
        }
    }
#endif
    S m = S(0);
    index_t const bad = row_max_checked(x, n, m, tier);
    if (bad >= 0) return bad;
    softmax_row(x, n, padded, tier);
    threshold_row(x, n, inverse, t, words, tier);
    return -1;
}

}  // namespace deq::detail
