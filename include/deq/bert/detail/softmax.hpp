/// @file
/// @brief `deq::detail::bert_softmax_row`: the softmax of one attention row of the encoder's dense BLAS
/// path (internal; see deq/bert/detail/dense_attention.hpp), written so that GCC and Clang vectorise it
/// without -ffast-math (blocks of 16 elements with straight-line bodies).
#pragma once

#include <bit>
#include <cstdint>

#include "../../core/tensor.hpp"
#include "../../numeric/detail/bit_select.hpp"
#include "../../numeric/exp.hpp"
#include "simd_dispatch.hpp"

namespace deq::detail {

/// Maps a float to an int32 with the same order (for non-NaN values), so that a maximum is an integer
/// maximum, which compilers vectorise (a float `?:` maximum they do not, without -ffast-math).
/// @param x The value.
/// @return The order-preserving key.
inline std::int32_t bert_order_key(float x) noexcept {
    auto const b = std::bit_cast<std::int32_t>(x);
    return b ^ static_cast<std::int32_t>(static_cast<std::uint32_t>(b >> 31) >> 1);
}

/// exp(@p x) for the softmax (x <= 0): 0 where exp(x) is below the smallest normal float. This changes
/// no weight: such a term neither changes the sum (>= 1) nor survives the division (weights below the
/// smallest normal become 0), and it keeps every product normal (a subnormal or underflowing result,
/// e.g. at the -10000 padding penalty, costs a microcode assist per element on x86).
/// @param x The argument.
/// @return exp(x) from deq::exp_vectorizable, or 0 below ln(smallest normal).
inline float bert_softmax_exp(float x) noexcept {
    constexpr float lowest = -87.3365f;  // just above ln(FLT_MIN) = -87.33654
    bool const tiny = x < lowest;
    return bit_select(tiny, 0.0f, exp_vectorizable(bit_select(tiny, lowest, x)));
}

/// Softmax of one row of @p n scaled scores in place: x_j = row_j + penalty_j, maximum subtracted, exp
/// (deq::exp_vectorizable), sum in 16 interleaved partial sums added in a fixed order, multiplication by
/// the sum's reciprocal; weights below the smallest normal float become 0 (as in deq's row kernel).
/// @param row     The scaled scores (Q·Kᵀ/√d), [n], overwritten by the weights.
/// @param penalty Additive key penalties, [n] (0 for a real key, -10000 for a padded one); must not
///                overlap @p row.
/// @param n       Row length (>= 1).
inline void bert_softmax_row(float* row, float const* penalty, index_t n) {
    constexpr index_t lanes = bert_block;
    index_t const full = n - n % lanes;
    // scaled and penalised scores, and their maximum (through order keys: an integer maximum)
    std::int32_t key[lanes];
    for (index_t l = 0; l < lanes; ++l) key[l] = INT32_MIN;
    for (index_t j = 0; j < full; j += lanes) {
        float x[lanes];
        for (index_t l = 0; l < lanes; ++l) x[l] = row[j + l] + penalty[j + l];
        for (index_t l = 0; l < lanes; ++l) row[j + l] = x[l];
        for (index_t l = 0; l < lanes; ++l) {
            std::int32_t const kx = bert_order_key(x[l]);
            key[l] = kx > key[l] ? kx : key[l];
        }
    }
    std::int32_t mk = INT32_MIN;
    for (index_t l = 0; l < lanes; ++l) mk = key[l] > mk ? key[l] : mk;
    for (index_t j = full; j < n; ++j) {
        row[j] = row[j] + penalty[j];
        std::int32_t const kx = bert_order_key(row[j]);
        mk = kx > mk ? kx : mk;
    }
    float const m = std::bit_cast<float>(mk ^ static_cast<std::int32_t>(static_cast<std::uint32_t>(mk >> 31) >> 1));
    // exponentials and their sum in 16 partial sums
    float part[lanes] = {};
    for (index_t j = 0; j < full; j += lanes) {
        for (index_t l = 0; l < lanes; ++l) row[j + l] = bert_softmax_exp(row[j + l] - m);
        for (index_t l = 0; l < lanes; ++l) part[l] += row[j + l];
    }
    float sum = 0.0f;
    for (index_t l = 0; l < lanes; ++l) sum += part[l];
    for (index_t j = full; j < n; ++j) {
        row[j] = bert_softmax_exp(row[j] - m);
        sum += row[j];
    }
    // normalisation
    constexpr float smallest_normal = 1.17549435082228750797e-38f;
    float const inv = 1.0f / sum;
    for (index_t j = 0; j < full; j += lanes)
        for (index_t l = 0; l < lanes; ++l) {
            float const p = row[j + l] * inv;
            row[j + l] = bit_select(p < smallest_normal, 0.0f, p);
        }
    for (index_t j = full; j < n; ++j) {
        float const p = row[j] * inv;
        row[j] = p < smallest_normal ? 0.0f : p;
    }
}

}  // namespace deq::detail
