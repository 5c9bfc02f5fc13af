/// @file
/// @brief Mask selection fused with the predictor (internal; used by the pipelines of
/// deq/attention/pipelines.hpp): every rule of deq::select_elements applied to rows of Ŝ that are
/// computed tile by tile from the quantized q and k, never stored as a [B, H, Lq, Lk] tensor.
///
/// Each work item computes the rows of Ŝ of a block of query rows (deq/predict/detail/predictor_tiles.hpp)
/// and runs the row functions of deq::select_elements on them (the same predicted softmax, thresholds and
/// ranking), so the masks are bit-identical to `select_elements(predict_scores(...))`. Rules that need a
/// maximum over a head or a sequence run two passes: the row maxima, then (after the reduction) the
/// selection, recomputing the cheap integer tiles instead of storing them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../arch/isa.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/error.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../exec/execution_space.hpp"
#include "../../mask/detail/select_kernels.hpp"
#include "../../mask/mask_rule.hpp"
#include "../../predict/detail/predictor_tiles.hpp"
#include "flash_attention.hpp"

namespace deq::detail {

/// What a fused_select_kernel does with each row of X.
enum class fused_select_step {
    threshold,  ///< Select X > t (or X <= t), t constant or alpha · group maximum.
    row_max,    ///< Write the row's maximum of X.
    rank        ///< Top-k or cumulative probability.
};

/// Kernel: one work item per (b, h, block of predictor_tile_rows query rows).
/// @tparam S     Score type.
/// @tparam Level Level storage of the predictor operands.
template <class S, class Level>
struct fused_select_kernel {
    predictor_operands<S, Level> const* ops;  ///< Quantized q and k.
    select_padding_words padded;              ///< Padded-key words.
    key_padding padding;                      ///< Key padding (ranking: real keys only).
    bit_mask_view out;                        ///< Output mask (threshold, rank).
    fused_select_step step;                   ///< What to do with each row.
    bool softmax;                             ///< X = P̂ (true) or Ŝ.
    bool inverse;                             ///< X <= t instead of X > t.
    bool cumulative;                          ///< Cumulative probability instead of top-k.
    S threshold;                              ///< Constant t (without group maxima).
    S alpha;                                  ///< Fraction of the group maximum.
    S const* group_max;                       ///< Group maxima, or null.
    bool row_local;                           ///< t = alpha · the row's own maximum (row granularity, one pass).
    index_t rows_per_group;                   ///< Rows per group maximum.
    index_t k;                                ///< Top-k count.
    S mass;                                   ///< Cumulative target.
    S* row_max;                               ///< Output of the row_max step.
    index_t* status;                          ///< Per row: select_row_ok or the first non-finite key.
    arch::isa tier;                           ///< Tier of the softmax rows.
    S* chunk_max = nullptr;                   ///< Per row and chunk of predictor_key_chunk keys, the maximum of Ŝ
                                              ///< (written by the row_max step, read by the threshold step), or null.

    /// The threshold step on raw scores with chunk maxima from the row_max step: a chunk whose maximum
    /// decides every comparison (no entry above t, or, inverse, every entry at most t) is not recomputed.
    void threshold_by_chunks(index_t bh, index_t i0, index_t rows) const {
        auto const& o = *ops;
        index_t const lq = o.lq, lk = o.lk, b = bh / o.heads, h = bh - b * o.heads;
        index_t const chunks = lk / predictor_key_chunk + (lk % predictor_key_chunk != 0 ? 1 : 0);
        S* const x = thread_scratch<S, 10>(static_cast<std::size_t>(rows * predictor_key_chunk));
        std::int32_t* const dots = thread_scratch<std::int32_t, 10>(static_cast<std::size_t>(predictor_tile_rows * predictor_key_chunk));
        S t[predictor_tile_rows];
        for (index_t r = 0; r < rows; ++r) {
            index_t const row = bh * lq + i0 + r;
            t[r] = row_local ? alpha * row_max[row] : group_max != nullptr ? alpha * group_max[row / rows_per_group] : threshold;
            select_clear_row(out.row(b, h, i0 + r), out.words_per_row());
        }
        for (index_t c = 0; c < chunks; ++c) {
            index_t const j0 = c * predictor_key_chunk, keys = std::min(predictor_key_chunk, lk - j0);
            bool compute = false;
            for (index_t r = 0; r < rows && !compute; ++r) compute = chunk_max[(bh * lq + i0 + r) * chunks + c] > t[r];
            if (!compute) {  // no entry of the chunk exceeds its row's threshold
                if (inverse) {
                    for (index_t r = 0; r < rows; ++r) {
                        std::uint64_t* words = out.row(b, h, i0 + r);
                        for (index_t j = j0; j < j0 + keys; ++j) words[j / 64] |= std::uint64_t{1} << (j % 64);
                    }
                }
                continue;
            }
            predictor_score_tile(o, bh, i0, rows, j0, keys, x, predictor_key_chunk, dots);
            for (index_t r = 0; r < rows; ++r) {
                // the chunk's bits: j0 is a multiple of 64, so the chunk starts a mask word
                select_threshold_row(x + r * predictor_key_chunk, keys, inverse, t[r], out.row(b, h, i0 + r) + j0 / 64, tier);
            }
        }
    }

    /// The row_max step on raw scores: each chunk of Ŝ is reduced while it is in the L1 cache (its
    /// maximum, and the row's maximum as the maximum of its chunks', which is the same value).
    void maxima_by_chunks(index_t bh, index_t i0, index_t rows) const {
        auto const& o = *ops;
        index_t const lq = o.lq, lk = o.lk;
        index_t const chunks = lk / predictor_key_chunk + (lk % predictor_key_chunk != 0 ? 1 : 0);
        S* const x = thread_scratch<S, 10>(static_cast<std::size_t>(rows * predictor_key_chunk));
        std::int32_t* const dots = thread_scratch<std::int32_t, 10>(static_cast<std::size_t>(predictor_tile_rows * predictor_key_chunk));
        S best[predictor_tile_rows];
        S tile_max[predictor_tile_rows];
        bool tile_finite[predictor_tile_rows];
        for (index_t r = 0; r < rows; ++r) status[bh * lq + i0 + r] = select_row_ok;
        for (index_t c = 0; c < chunks; ++c) {
            index_t const j0 = c * predictor_key_chunk, keys = std::min(predictor_key_chunk, lk - j0);
            // the chunk's row maxima come with the rescaling (no second pass over the chunk)
            predictor_score_tile(o, bh, i0, rows, j0, keys, x, predictor_key_chunk, dots, tile_max, tile_finite);
            for (index_t r = 0; r < rows; ++r) {
                index_t const row = bh * lq + i0 + r;
                if (status[row] != select_row_ok) continue;
                S m = tile_max[r];
                if (!tile_finite[r]) {  // the first score that is not finite
                    status[row] = j0 + row_max_checked(x + r * predictor_key_chunk, keys, m, tier);
                    continue;
                }
                if (chunk_max != nullptr) chunk_max[row * chunks + c] = m;
                best[r] = c == 0 || m > best[r] ? m : best[r];
            }
        }
        for (index_t r = 0; r < rows; ++r) {
            index_t const row = bh * lq + i0 + r;
            row_max[row] = status[row] == select_row_ok ? best[r] : S(0);
        }
    }

    void operator()(index_t item) const {
        auto const& o = *ops;
        index_t const lq = o.lq, lk = o.lk;
        index_t const blocks = lq / predictor_tile_rows + (lq % predictor_tile_rows != 0 ? 1 : 0);
        index_t const bh = item / blocks;
        index_t const i0 = (item - bh * blocks) * predictor_tile_rows;
        index_t const rows = std::min(predictor_tile_rows, lq - i0);
        index_t const b = bh / o.heads, h = bh - b * o.heads;
        if (step == fused_select_step::threshold && chunk_max != nullptr && !softmax) {
            threshold_by_chunks(bh, i0, rows);
            return;
        }
        if (step == fused_select_step::row_max && !softmax) {
            maxima_by_chunks(bh, i0, rows);
            return;
        }
        S* const x = thread_scratch<S, 10>(static_cast<std::size_t>(rows * lk));
        std::int32_t* const dots = thread_scratch<std::int32_t, 10>(static_cast<std::size_t>(predictor_tile_rows * predictor_key_chunk));
        bool const constant_threshold = step == fused_select_step::threshold && !row_local && group_max == nullptr;
        // P̂ > θ on the AVX-512 tier: the rows' maxima and finiteness come with the rescaling (one pass less)
        bool const maxima = softmax && constant_threshold && tier == arch::isa::avx512 && o.tier == arch::isa::avx512;
        S best[predictor_tile_rows] = {};
        S tile_max[predictor_tile_rows] = {};
        bool finite[predictor_tile_rows] = {};
        bool tile_finite[predictor_tile_rows] = {};
        index_t const chunks = lk / predictor_key_chunk + (lk % predictor_key_chunk != 0 ? 1 : 0);
        S* const chunk_maxima = maxima ? thread_scratch<S, 11>(static_cast<std::size_t>(rows * chunks)) : nullptr;
        for (index_t j0 = 0; j0 < lk; j0 += predictor_key_chunk) {
            index_t const keys = std::min(predictor_key_chunk, lk - j0);
            if (!maxima) {
                predictor_score_tile(o, bh, i0, rows, j0, keys, x + j0, lk, dots);
                continue;
            }
            predictor_score_tile(o, bh, i0, rows, j0, keys, x + j0, lk, dots, tile_max, tile_finite);
            for (index_t r = 0; r < rows; ++r) {
                finite[r] = (j0 == 0 || finite[r]) && tile_finite[r];
                best[r] = j0 == 0 || tile_max[r] > best[r] ? tile_max[r] : best[r];
                chunk_maxima[r * chunks + j0 / predictor_key_chunk] = tile_max[r];
            }
        }
        index_t* const idx = step == fused_select_step::rank ? thread_scratch<index_t, 10>(static_cast<std::size_t>(lk)) : nullptr;
        // a sequence without a padded key needs no penalty pass
        std::uint64_t const* pad_words = padded.of(b);
        if (pad_words != nullptr && std::all_of(pad_words, pad_words + padded.stride, [](std::uint64_t w) { return w == 0; })) pad_words = nullptr;
        for (index_t r = 0; r < rows; ++r) {
            index_t const row = bh * lq + i0 + r;
            S* xr = x + r * lk;
            if (softmax && constant_threshold) {  // P̂ > θ without forming P̂ (the same bits)
                std::uint64_t* const words = out.row(b, h, i0 + r);
                select_clear_row(words, out.words_per_row());
                bool const known = maxima && finite[r];
                status[row] = softmax_threshold_row_checked(xr, lk, pad_words, inverse, threshold, words, tier, known ? &best[r] : nullptr,
                                                            known ? chunk_maxima + r * chunks : nullptr, predictor_key_chunk);
                continue;
            }
            S xmax = S(0);
            index_t const bad = row_max_checked(xr, lk, xmax, tier);
            status[row] = bad;
            std::uint64_t* words = step == fused_select_step::row_max ? nullptr : out.row(b, h, i0 + r);
            if (words != nullptr) select_clear_row(words, out.words_per_row());
            if (bad != select_row_ok) {
                if (step == fused_select_step::row_max) row_max[row] = S(0);
                continue;
            }
            if (softmax) {
                softmax_row(xr, lk, pad_words, tier);
                if (step != fused_select_step::rank) row_max_checked(xr, lk, xmax, tier);
            }
            switch (step) {
                case fused_select_step::row_max:
                    row_max[row] = xmax;
                    if (chunk_max != nullptr) {
                        index_t const chunks = lk / predictor_key_chunk + (lk % predictor_key_chunk != 0 ? 1 : 0);
                        for (index_t c = 0; c < chunks; ++c) {
                            index_t const j0 = c * predictor_key_chunk;
                            S m = S(0);
                            row_max_checked(xr + j0, std::min(predictor_key_chunk, lk - j0), m, tier);
                            chunk_max[row * chunks + c] = m;
                        }
                    }
                    break;
                case fused_select_step::threshold: {
                    S const t = row_local ? alpha * xmax
                                : group_max != nullptr ? alpha * group_max[row / rows_per_group]
                                                       : threshold;
                    select_threshold_row(xr, lk, inverse, t, words, tier);
                    break;
                }
                case fused_select_step::rank: select_rank_row(xr, idx, lk, padding, b, cumulative, k, mass, words); break;
            }
        }
    }
};

/// Throws deq::numeric_error for the first row whose predicted scores are not finite.
inline void fused_select_check_status(std::vector<index_t> const& status, index_t heads, index_t lq) {
    for (std::size_t r = 0; r < status.size(); ++r) {
        if (status[r] == select_row_ok) continue;
        index_t b = 0, h = 0, i = 0;
        select_split_row(static_cast<index_t>(r), heads, lq, b, h, i);
        throw numeric_error(concat("deq: the predicted score [", b, ", ", h, ", ", i, ", ", status[r],
                                   "] is not finite: the predictor's rescaling overflows the score type"));
    }
}

/// select_elements() on the scores the predictor operands @p o define, without storing them (see the
/// file documentation).
/// @tparam Space Host execution space.
/// @tparam S     Score type.
/// @tparam Level Level storage.
/// @param space   The space.
/// @param o       Quantized q and k.
/// @param padding Key padding (shape checked by the caller).
/// @param rule    The rule (validated by the caller).
/// @param out     Output mask [B, H, Lq, Lk].
template <class Space, class S, class Level>
void fused_select(Space const& space, predictor_operands<S, Level> const& o, key_padding padding, mask_rule const& rule,
                  bit_mask_view out) {
    using kind = mask_rule::kind;
    index_t const rows = o.batch * o.heads * o.lq;
    if (rule.type == kind::all || rule.type == kind::none) {
        exec::parallel_for(space, rows, select_fill_rows{out, rule.type == kind::all});
        return;
    }
    std::vector<std::uint64_t> const padded_words = padded_key_words(padding, o.batch, o.lk);
    select_padding_words const padded{padded_words.empty() ? nullptr : padded_words.data(), mask_words_per_row(o.lk)};
    std::vector<index_t> status(static_cast<std::size_t>(rows), select_row_ok);
    index_t const items = o.batch * o.heads * (o.lq / predictor_tile_rows + (o.lq % predictor_tile_rows != 0 ? 1 : 0));
    fused_select_kernel<S, Level> kernel{&o,      padded,  padding, out,     fused_select_step::threshold,
                                         rule.uses_probabilities(), false, false, S(0), S(0), nullptr, false, 1, 0, S(0),
                                         nullptr, status.data(), arch::active_isa()};
    switch (rule.type) {
        case kind::probability_threshold:
        case kind::inverse_probability_threshold:
            kernel.softmax = true;
            kernel.inverse = rule.type == kind::inverse_probability_threshold;
            kernel.threshold = static_cast<S>(rule.value);
            exec::parallel_for(space, items, kernel);
            break;
        case kind::adaptive_maximum:
        case kind::inverse_adaptive_maximum: {
            kernel.inverse = rule.type == kind::inverse_adaptive_maximum;
            kernel.alpha = static_cast<S>(rule.value);
            if (rule.granularity == max_granularity::row) {  // the row's own maximum: one pass
                kernel.row_local = true;
                exec::parallel_for(space, items, kernel);
                break;
            }
            std::vector<S> row_max(static_cast<std::size_t>(rows));
            // On raw scores, the maxima of chunks of keys let the selection pass skip the chunks whose
            // maximum already decides every comparison (most of them for DEQ's α = 0.8).
            std::vector<S> chunk_max;
            if (!kernel.softmax) chunk_max.assign(static_cast<std::size_t>(rows * (o.lk / predictor_key_chunk + 1)), S(0));
            fused_select_kernel<S, Level> maxima = kernel;
            maxima.step = fused_select_step::row_max;
            maxima.row_max = row_max.data();
            maxima.chunk_max = chunk_max.empty() ? nullptr : chunk_max.data();
            kernel.chunk_max = maxima.chunk_max;
            kernel.row_max = row_max.data();
            exec::parallel_for(space, items, maxima);
            fused_select_check_status(status, o.heads, o.lq);
            index_t const per_group = rule.granularity == max_granularity::sequence ? o.heads * o.lq
                                      : rule.granularity == max_granularity::head   ? o.lq
                                                                                     : 1;
            std::vector<S> group_max(static_cast<std::size_t>(rows / per_group));
            exec::parallel_for(space, rows / per_group, select_group_max<S>{row_max.data(), group_max.data(), per_group});
            kernel.group_max = group_max.data();
            kernel.rows_per_group = per_group;
            exec::parallel_for(space, items, kernel);
            break;
        }
        case kind::top_k:
        case kind::cumulative_probability:
            kernel.step = fused_select_step::rank;
            kernel.softmax = true;
            kernel.cumulative = rule.type == kind::cumulative_probability;
            kernel.k = rule.k;
            kernel.mass = static_cast<S>(rule.value);
            exec::parallel_for(space, items, kernel);
            break;
        default: break;
    }
    fused_select_check_status(status, o.heads, o.lq);
}

}  // namespace deq::detail
