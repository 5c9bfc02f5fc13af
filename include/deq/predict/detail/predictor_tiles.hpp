/// @file
/// @brief The predictor's quantized operands and its score tiles on every instruction-set tier
/// (internal; see deq/predict/sanger_predictor.hpp).
///
/// q and k are normalised and quantized once per call (deq::detail::predictor_quantize_rows) into
/// levels with a padded row stride; the keys are then packed for the active tier
/// (deq/arch/predictor_avx512.hpp, deq/arch/predictor_avx2.hpp). A *score tile* is Ŝ for a block of
/// query rows and a range of keys of one (batch, head): the exact integer dot products of the levels on
/// the tier, then `S(dot) / (sx·sy) · (qn_i · kn_j) / sqrt(d)` in the score type in that order, so every
/// tier gives the same bits (tests/unit/predict). Consumers: predict_scores() (writes Ŝ), the fused mask
/// selection and the mixed-precision attention (which recompute tiles instead of storing Ŝ).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../arch/isa.hpp"
#include "../../arch/predictor_avx2.hpp"
#include "../../arch/predictor_avx512.hpp"
#include "../../config.hpp"
#include "../../core/checked_size.hpp"
#include "../../core/tensor.hpp"
#include "predictor_kernels.hpp"

namespace deq::detail {

/// Keys per chunk of a score tile computed at once (the int32 scratch of one work item holds
/// predictor_tile_rows x predictor_key_chunk dot products).
inline constexpr index_t predictor_key_chunk = 256;
/// Query rows of one score-tile work item.
inline constexpr index_t predictor_tile_rows = 8;

/// Row stride of the levels: a multiple of 4 (the tiers' dot-product groups).
/// @param dim Head dimension.
/// @return ceil(dim / 4) * 4.
inline index_t predictor_level_stride(index_t dim) { return dim / 4 * 4 + (dim % 4 != 0 ? 4 : 0); }

/// The tier the predictor's integer dot products use for @p bits (the SIMD tiers need int8 levels).
/// @param bits Predictor bit width.
/// @return The tier.
inline arch::isa predictor_tier(int bits) {
    if (bits > 8) return arch::isa::portable;
    return arch::active_isa();
}

/// Quantized q and k of one predictor call, in the layout of their tier.
/// @tparam S     Score type.
/// @tparam Level Level storage (int8_t for bits <= 8, int16_t otherwise).
template <class S, class Level>
struct predictor_operands {
    index_t batch = 0, heads = 0, lq = 0, lk = 0, dim = 0;
    index_t ld = 0;                      ///< Row stride of the levels.
    arch::isa tier = arch::isa::portable; ///< Tier of the dot products.
    std::vector<Level> q_levels;         ///< [B*H*Lq][ld].
    std::vector<Level> k_levels;         ///< [B*H*Lk][ld] (portable tier).
    std::vector<S> q_norms;              ///< [B*H*Lq].
    std::vector<S> k_norms;              ///< [B*H*Lk].
    std::vector<std::int32_t> q_offset;  ///< AVX-512: 128 · Σ_t q levels of each row.
    std::vector<std::uint8_t> k_packed;  ///< AVX-512: packed keys (bytes per (b, h): k_packed_stride).
    std::vector<std::int8_t> k_packed_s8; ///< AVX2: packed keys.
    index_t k_packed_stride = 0;         ///< Bytes of packed keys per (b, h).
    S scale_product = 1;                 ///< sx · sy.
    S reciprocal = 0;                    ///< 1 / (sx · sy) where the SIMD tiers replace the division by sx · sy
                                         ///< with it exactly (predictor_reciprocal()), else 0.
    S sqrt_d = 1;                        ///< sqrt(d) in S.
    S sqrt_d_hi = 0;                     ///< With sqrt_d_lo: AVX-512 divides by sqrt(d) as fma(y, hi, y · lo) where that
                                         ///< is verified exact (predictor_sqrt_d_split()), else 0.
    S sqrt_d_lo = 0;                     ///< See sqrt_d_hi.
};

/// The reciprocal of sqrt(d) as a pair (hi, lo) for which the AVX-512 rescaling replaces `y / sqrt(d)` by
/// `fma(y, hi, y · lo)`, verified exhaustively over every float significand
/// (arch::avx512::constant_quotient_exact(), about a millisecond; the answer is cached per sqrt(d) for the
/// process), or {0, 0} where that does not hold, on other tiers and when sqrt(d) is a power of two (then
/// the rescaling multiplies exactly anyway).
/// @tparam S     Score type.
/// @tparam Level Level storage.
/// @param o The operands (tier and sqrt_d set).
/// @return {hi, lo} or {0, 0}.
template <class S, class Level>
std::pair<S, S> predictor_sqrt_d_split(predictor_operands<S, Level> const& o) {
    if constexpr (std::is_same_v<S, float> && std::is_same_v<Level, std::int8_t>) {
#if DEQ_ARCH_X86
        float const s = o.sqrt_d;
        if (o.tier != arch::isa::avx512 || !(s >= 1.0f && s < 1.0e30f) || arch::avx512::is_power_of_two(s)) return {0.0f, 0.0f};
        float const hi = 1.0f / s;
        float const lo = static_cast<float>(1.0 / static_cast<double>(s) - static_cast<double>(hi));
        if (lo == 0.0f) return {0.0f, 0.0f};
        static std::mutex lock;
        static std::vector<std::pair<float, bool>> known;  // sqrt(d) -> exact
        {
            std::lock_guard<std::mutex> const guard(lock);
            for (auto const& [value, exact] : known)
                if (value == s) return exact ? std::pair<S, S>{hi, lo} : std::pair<S, S>{0.0f, 0.0f};
        }
        bool const exact = arch::avx512::constant_quotient_exact(s, hi, lo);
        {
            std::lock_guard<std::mutex> const guard(lock);
            known.emplace_back(s, exact);
        }
        return exact ? std::pair<S, S>{hi, lo} : std::pair<S, S>{0.0f, 0.0f};
#endif
    }
    (void)o;
    return {S(0), S(0)};
}

/// The reciprocal of sx · sy that the SIMD tiers may multiply by instead of dividing (the division of
/// the rescaling is its most expensive step), or 0 where they must divide: 1 / (sx · sy) when the
/// three-operation reciprocal quotient equals the IEEE quotient for every integer up to the largest
/// possible |q·k| of these levels, `max_i Σ_t |q_it| · max_jt |k_jt|` (checked exhaustively with the
/// tier's instructions, so Ŝ keeps its bits). The check costs about bound / 16 divisions, so it runs only
/// when that is small next to the call's number of scores.
/// @tparam S     Score type.
/// @tparam Level Level storage.
/// @param o The operands (levels quantized, tier set).
/// @return The reciprocal, or 0.
template <class S, class Level>
S predictor_reciprocal(predictor_operands<S, Level> const& o) {
    if constexpr (std::is_same_v<S, float> && std::is_same_v<Level, std::int8_t>) {
#if DEQ_ARCH_X86
        if (o.tier != arch::isa::avx512 && o.tier != arch::isa::avx2) return 0;
        // int32 sums of int8 levels (the dimension is below 65536 on the SIMD tiers: no overflow), in loops
        // the compiler vectorises
        std::int32_t q_sum = 0, k_max = 0;
        for (std::size_t r = 0; r < o.q_norms.size(); ++r) {
            Level const* row = o.q_levels.data() + r * static_cast<std::size_t>(o.ld);
            std::int32_t sum = 0;
            for (index_t t = 0; t < o.ld; ++t) sum += row[t] < 0 ? -static_cast<std::int32_t>(row[t]) : static_cast<std::int32_t>(row[t]);
            q_sum = sum > q_sum ? sum : q_sum;
        }
        for (Level level : o.k_levels) {
            std::int32_t const a = level < 0 ? -static_cast<std::int32_t>(level) : static_cast<std::int32_t>(level);
            k_max = a > k_max ? a : k_max;
        }
        std::int64_t const bound = static_cast<std::int64_t>(q_sum) * k_max;
        // scores of the call (the rows overflow nothing: the operands' extents were checked)
        double const scores = static_cast<double>(o.batch) * static_cast<double>(o.heads) * static_cast<double>(o.lq) *
                              static_cast<double>(o.lk);
        if (bound >= (std::int64_t{1} << 24) || static_cast<double>(bound) > std::max(4096.0, scores / 64.0)) return 0;
        float const s = o.scale_product, y = 1.0f / s;
        if (!(y > 0.0f && std::isfinite(y))) return 0;
        auto const b = static_cast<std::int32_t>(bound);
        bool const exact = o.tier == arch::isa::avx512 ? arch::avx512::reciprocal_quotient_exact(s, y, b)
                                                       : arch::avx2::reciprocal_quotient_exact(s, y, b);
        return exact ? y : 0.0f;
#endif
    }
    (void)o;
    return S(0);
}

/// Kernel: packs the keys of one (b, h) for the operands' tier. One work item per (b, h).
template <class S, class Level>
struct predictor_pack_kernel {
    predictor_operands<S, Level>* ops;  ///< The operands (k_levels already quantized).

    void operator()(index_t bh) const {
        [[maybe_unused]] auto& o = *ops;
        (void)bh;
        if constexpr (std::is_same_v<Level, std::int8_t>) {
#if DEQ_ARCH_X86
            Level const* levels = o.k_levels.data() + bh * o.lk * o.ld;
            if (o.tier == arch::isa::avx512) {
                arch::avx512::pack_keys(levels, o.lk, o.dim, o.ld, o.k_packed.data() + bh * o.k_packed_stride);
            } else if (o.tier == arch::isa::avx2) {
                arch::avx2::pack_keys(levels, o.lk, o.dim, o.ld, o.k_packed_s8.data() + bh * o.k_packed_stride);
            }
#endif
        }
    }
};

/// Kernel: 128 · Σ_t levels of each query row (the offset correction of the AVX-512 tier).
template <class Level>
struct predictor_offset_kernel {
    Level const* levels;  ///< [rows][ld].
    index_t ld;           ///< Row stride.
    std::int32_t* out;    ///< [rows].

    void operator()(index_t r) const {
        std::int32_t sum = 0;
        for (index_t t = 0; t < ld; ++t) sum += levels[r * ld + t];
        out[r] = 128 * sum;
    }
};

/// Ŝ of query rows [i0, i0 + rows) and keys [j0, j0 + keys) of (b, h) = @p bh, written to
/// `out[r * ldo + j]` (r and j relative to i0 and j0). On the SIMD tiers @p j0 must be a multiple of
/// the tier's key block and @p rows at most predictor_tile_rows; @p dots is scratch for
/// rows x round_up(keys, 16) int32.
/// @tparam S     Score type.
/// @tparam Level Level storage.
/// @param o    The operands.
/// @param bh   (batch, head) index, b * heads + h.
/// @param i0   First query row.
/// @param rows Number of query rows.
/// @param j0   First key.
/// @param keys Number of keys.
/// @param out  Output scores.
/// @param ldo  Row stride of @p out.
/// @param dots Scratch.
/// @param row_max    If not null: per row, the largest score written (valid where @p row_finite is true).
/// @param row_finite With @p row_max: per row, whether every score written is finite.
template <class S, class Level>
void predictor_score_tile(predictor_operands<S, Level> const& o, index_t bh, index_t i0, index_t rows, index_t j0,
                          index_t keys, S* out, index_t ldo, std::int32_t* dots, S* row_max = nullptr, bool* row_finite = nullptr) {
    // The maxima of rows written without them (every path but the AVX-512 float rescaling).
    auto reduce = [&](index_t r, S const* dst) {
        S m = dst[0];
        bool finite = true;
        for (index_t j = 0; j < keys; ++j) {
            finite = finite && std::isfinite(dst[j]);
            m = dst[j] > m ? dst[j] : m;
        }
        row_max[r] = m;
        row_finite[r] = finite;
    };
    index_t const q_row = bh * o.lq + i0;
    Level const* q = o.q_levels.data() + q_row * o.ld;
    S const* kn = o.k_norms.data() + bh * o.lk + j0;
    if constexpr (std::is_same_v<Level, std::int8_t>) {
#if DEQ_ARCH_X86
        if (o.tier == arch::isa::avx512 || o.tier == arch::isa::avx2) {
            index_t const ldd = keys / 16 * 16 + (keys % 16 != 0 ? 16 : 0);
            if (o.tier == arch::isa::avx512) {
                std::uint8_t const* packed = o.k_packed.data() + bh * o.k_packed_stride +
                                             (j0 / arch::avx512::key_block) * (o.ld / arch::avx512::group) * arch::avx512::group_bytes;
                arch::avx512::dot_tile(q, o.ld, o.q_offset.data() + q_row, rows, packed, keys, dots, ldd);
            } else {
                std::int8_t const* packed = o.k_packed_s8.data() + bh * o.k_packed_stride +
                                            (j0 / arch::avx2::key_block) * (o.ld / arch::avx2::group) * arch::avx2::group_bytes;
                arch::avx2::dot_tile(q, o.ld, rows, packed, keys, dots, ldd);
            }
            for (index_t r = 0; r < rows; ++r) {
                S const qn = o.q_norms[static_cast<std::size_t>(q_row + r)];
                std::int32_t const* d = dots + r * ldd;
                S* dst = out + r * ldo;
                if constexpr (std::is_same_v<S, float>) {
                    if (o.tier == arch::isa::avx512) {
                        if (row_max != nullptr) {
                            row_finite[r] = arch::avx512::rescale_row_reduce<true>(d, qn, kn, o.scale_product, o.reciprocal, o.sqrt_d,
                                                                                   keys, dst, row_max[r], o.sqrt_d_hi, o.sqrt_d_lo);
                            continue;
                        }
                        arch::avx512::rescale_row(d, qn, kn, o.scale_product, o.reciprocal, o.sqrt_d, keys, dst, o.sqrt_d_hi, o.sqrt_d_lo);
                    } else {
                        arch::avx2::rescale_row(d, qn, kn, o.scale_product, o.reciprocal, o.sqrt_d, keys, dst);
                    }
                } else {
                    for (index_t j = 0; j < keys; ++j) dst[j] = static_cast<S>(d[j]) / o.scale_product * (qn * kn[j]) / o.sqrt_d;
                }
                if (row_max != nullptr) reduce(r, dst);
            }
            return;
        }
#endif
    }
    (void)dots;
    // Portable: the reference loop (predictor_score_value(), which the CUDA backend runs as well).
    bool const fits_int32 = predictor_dot_fits_int32<Level>(o.dim);
    Level const* kbase = o.k_levels.data() + (bh * o.lk + j0) * o.ld;
    for (index_t r = 0; r < rows; ++r) {
        Level const* qr = q + r * o.ld;
        S const qn = o.q_norms[static_cast<std::size_t>(q_row + r)];
        S* dst = out + r * ldo;
        for (index_t j = 0; j < keys; ++j) {
            dst[j] = predictor_score_value(qr, kbase + j * o.ld, o.dim, fits_int32, qn, kn[j], o.scale_product, o.sqrt_d);
        }
        if (row_max != nullptr) reduce(r, dst);
    }
}

/// Kernel: one work item per (b, h, block of predictor_tile_rows query rows) writes its rows of Ŝ into
/// a [B, H, Lq, Lk] view (any strides), in chunks of predictor_key_chunk keys.
template <class S, class Level>
struct predictor_scores_kernel {
    predictor_operands<S, Level> const* ops;  ///< The operands.
    tensor_view<S, 4> scores;                 ///< Output Ŝ.

    void operator()(index_t item) const {
        auto const& o = *ops;
        index_t const blocks = o.lq / predictor_tile_rows + (o.lq % predictor_tile_rows != 0 ? 1 : 0);
        index_t const bh = item / blocks;
        index_t const i0 = (item - bh * blocks) * predictor_tile_rows;
        index_t const rows = std::min(predictor_tile_rows, o.lq - i0);
        index_t const b = bh / o.heads, h = bh - b * o.heads;
        alignas(64) std::int32_t dots[predictor_tile_rows * predictor_key_chunk];
        alignas(64) S tile[predictor_tile_rows * predictor_key_chunk];
        bool const direct = scores.stride(3) == 1;
        for (index_t j0 = 0; j0 < o.lk; j0 += predictor_key_chunk) {
            index_t const keys = std::min(predictor_key_chunk, o.lk - j0);
            if (direct) {
                predictor_score_tile(o, bh, i0, rows, j0, keys, &scores(b, h, i0, j0), scores.stride(2), dots);
                continue;
            }
            predictor_score_tile(o, bh, i0, rows, j0, keys, tile, predictor_key_chunk, dots);
            for (index_t r = 0; r < rows; ++r)
                for (index_t j = 0; j < keys; ++j) scores(b, h, i0 + r, j0 + j) = tile[r * predictor_key_chunk + j];
        }
    }
};

}  // namespace deq::detail
