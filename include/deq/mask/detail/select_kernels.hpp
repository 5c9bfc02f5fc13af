/// @file
/// @brief Kernels of deq::select_elements (internal; see deq/mask/select.hpp).
///
/// Row kernels work on chunks of consecutive score rows; each chunk owns a scratch row of Lk values
/// (and Lk indices for the ranking rules), so no kernel allocates memory.
#pragma once

#include <cmath>
#include <cstdint>

#include "../../config.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "softmax_row.hpp"

namespace deq::detail {

/// Status of a score row that holds only finite values.
inline constexpr index_t select_row_ok = -1;

/// Splits a flat row index r of a [B, H, Lq] grid into (b, h, i).
DEQ_HOST_DEVICE inline void select_split_row(index_t r, index_t heads, index_t rows, index_t& b, index_t& h,
                                             index_t& i) {
    index_t const per_batch = heads * rows;
    b = r / per_batch;
    index_t const rem = r - b * per_batch;
    h = rem / rows;
    i = rem - h * rows;
}

/// The range of rows [begin, end) handled by chunk @p c of @p chunks.
DEQ_HOST_DEVICE inline void select_chunk_rows(index_t c, index_t chunks, index_t rows, index_t& begin, index_t& end) {
    begin = rows * c / chunks;
    end = rows * (c + 1) / chunks;
}

/// The padded-key words of a select kernel: `words + b * stride` for sequence b, or null without padding.
struct select_padding_words {
    std::uint64_t const* words = nullptr;  ///< detail::padded_key_words() of the call, or null.
    index_t stride = 0;                    ///< Words per sequence.

    /// @param b Sequence index.
    /// @return The words of sequence @p b, or null.
    DEQ_HOST_DEVICE std::uint64_t const* of(index_t b) const { return words == nullptr ? nullptr : words + b * stride; }
};

/// Loads row (b, h, i) of @p scores into @p x: the raw scores (softmax = false) or the predicted
/// probabilities `softmax_j(s_j + pad_j)` of deq/mask/detail/softmax_row.hpp, in S. Returns the first
/// column holding a non-finite score, or select_row_ok.
template <class S>
DEQ_HOST_DEVICE inline index_t select_load_row(tensor_view<S const, 4> const& scores, select_padding_words const& padded,
                                               index_t b, index_t h, index_t i, bool softmax, S* x, arch::isa tier) {
    index_t const lk = scores.extent(3);
    S const* row = &scores(b, h, i, 0);
    index_t const stride = scores.stride(3);
    for (index_t j = 0; j < lk; ++j) {
        S const s = row[j * stride];
        if (!std::isfinite(s)) return j;
        x[j] = s;
    }
    if (softmax) softmax_row(x, lk, padded.of(b), tier);
    return select_row_ok;
}

/// Clears the words of a mask row.
DEQ_HOST_DEVICE inline void select_clear_row(std::uint64_t* words, index_t words_per_row) {
    for (index_t w = 0; w < words_per_row; ++w) words[w] = 0;
}

/// Sets bit @p j of a mask row.
DEQ_HOST_DEVICE inline void select_set_bit(std::uint64_t* words, index_t j) {
    words[j / mask_word_bits] |= std::uint64_t{1} << (j % mask_word_bits);
}

/// Sets bit j of @p words (already cleared) for each `x_j > t` (`x_j <= t` when @p inverse).
template <class S>
DEQ_HOST_DEVICE inline void select_threshold_row(S const* x, index_t lk, bool inverse, S t, std::uint64_t* words,
                                                 arch::isa tier = arch::isa::portable) {
    threshold_row(x, lk, inverse, t, words, tier);
}

/// The maximum of a row.
template <class S>
DEQ_HOST_DEVICE inline S select_row_maximum(S const* x, index_t lk) {
    S m = x[0];
    for (index_t j = 1; j < lk; ++j) m = x[j] > m ? x[j] : m;
    return m;
}

/// Sets every row of @p out to all ones (within the column extent) or all zeros. One work item per row.
struct select_fill_rows {
    bit_mask_view out;  ///< Output mask.
    bool value;         ///< Fill value.

    DEQ_HOST_DEVICE void operator()(index_t r) const {
        index_t b = 0, h = 0, i = 0;
        select_split_row(r, out.heads(), out.rows(), b, h, i);
        std::uint64_t* words = out.row(b, h, i);
        index_t const wpr = out.words_per_row();
        for (index_t w = 0; w < wpr; ++w) words[w] = value ? ~std::uint64_t{0} : 0;
        if (value && out.cols() % mask_word_bits != 0) {
            words[wpr - 1] = (std::uint64_t{1} << (out.cols() % mask_word_bits)) - 1;
        }
    }
};

/// Pass 1 of the adaptive-maximum rules: the maximum of X (raw scores or P̂) of each row. One work
/// item per chunk of rows.
/// @tparam S Score type.
template <class S>
struct select_row_max {
    tensor_view<S const, 4> scores;  ///< Predicted scores.
    select_padding_words padded;     ///< Padded-key words.
    bool softmax;                    ///< X = P̂ (true) or Ŝ (false).
    S* scratch;                      ///< chunks × Lk values.
    S* row_max;                      ///< Output: one maximum per row.
    index_t* status;                 ///< Output: select_row_ok or the first non-finite column, per row.
    index_t chunks;                  ///< Number of chunks.
    arch::isa tier;                  ///< Instruction-set tier of the softmax rows.

    DEQ_HOST_DEVICE void operator()(index_t c) const {
        index_t const heads = scores.extent(1), lq = scores.extent(2), lk = scores.extent(3);
        index_t begin = 0, end = 0;
        select_chunk_rows(c, chunks, scores.extent(0) * heads * lq, begin, end);
        S* x = scratch + c * lk;
        for (index_t r = begin; r < end; ++r) {
            index_t b = 0, h = 0, i = 0;
            select_split_row(r, heads, lq, b, h, i);
            status[r] = select_load_row(scores, padded, b, h, i, softmax, x, tier);
            row_max[r] = status[r] == select_row_ok ? select_row_maximum(x, lk) : S(0);
        }
    }
};

/// Pass 2 of the adaptive-maximum rules: the maximum of the row maxima of each group of
/// @p rows_per_group consecutive rows. One work item per group.
/// @tparam S Score type.
template <class S>
struct select_group_max {
    S const* row_max;        ///< Row maxima.
    S* group_max;            ///< Output: one maximum per group.
    index_t rows_per_group;  ///< Rows in a group (H·Lq, Lq or 1).

    DEQ_HOST_DEVICE void operator()(index_t g) const {
        S const* r = row_max + g * rows_per_group;
        S m = r[0];
        for (index_t i = 1; i < rows_per_group; ++i) m = r[i] > m ? r[i] : m;
        group_max[g] = m;
    }
};

/// Threshold selection: `X > t` (or `X <= t` when inverse) with X = Ŝ or P̂, and t either a constant
/// or `alpha · group_max[row / rows_per_group]`. One work item per chunk of rows.
/// @tparam S Score type.
template <class S>
struct select_threshold_rows {
    tensor_view<S const, 4> scores;  ///< Predicted scores.
    select_padding_words padded;     ///< Padded-key words.
    bit_mask_view out;               ///< Output mask, same shape as the scores.
    bool softmax;                    ///< X = P̂ (true) or Ŝ (false).
    bool inverse;                    ///< Select X <= t instead of X > t.
    S threshold;                     ///< Constant t (used when group_max is null).
    S alpha;                         ///< Fraction of the group maximum.
    S const* group_max;              ///< Group maxima, or null.
    index_t rows_per_group;          ///< Rows per group maximum.
    S* scratch;                      ///< chunks × Lk values.
    index_t* status;                 ///< Output: select_row_ok or the first non-finite column, per row.
    index_t chunks;                  ///< Number of chunks.
    arch::isa tier;                  ///< Instruction-set tier of the softmax rows.

    DEQ_HOST_DEVICE void operator()(index_t c) const {
        index_t const heads = scores.extent(1), lq = scores.extent(2), lk = scores.extent(3);
        index_t begin = 0, end = 0;
        select_chunk_rows(c, chunks, scores.extent(0) * heads * lq, begin, end);
        S* x = scratch + c * lk;
        for (index_t r = begin; r < end; ++r) {
            index_t b = 0, h = 0, i = 0;
            select_split_row(r, heads, lq, b, h, i);
            std::uint64_t* words = out.row(b, h, i);
            select_clear_row(words, out.words_per_row());
            status[r] = select_load_row(scores, padded, b, h, i, softmax, x, tier);
            if (status[r] != select_row_ok) continue;
            S const t = group_max != nullptr ? alpha * group_max[r / rows_per_group] : threshold;
            select_threshold_row(x, lk, inverse, t, words, tier);
        }
    }
};

/// True when key @p a ranks before key @p b: larger P̂ first, ties to the lower index.
template <class S>
DEQ_HOST_DEVICE inline bool select_ranks_before(S const* p, index_t a, index_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
}

/// Restores the heap property (best-ranked key at the root) below position @p pos.
template <class S>
DEQ_HOST_DEVICE inline void select_sift_down(S const* p, index_t* heap, index_t n, index_t pos) {
    while (true) {
        index_t best = pos;
        index_t const left = 2 * pos + 1, right = left + 1;
        if (left < n && select_ranks_before(p, heap[left], heap[best])) best = left;
        if (right < n && select_ranks_before(p, heap[right], heap[best])) best = right;
        if (best == pos) return;
        index_t const tmp = heap[pos];
        heap[pos] = heap[best];
        heap[best] = tmp;
        pos = best;
    }
}

/// Selects the best-ranked real keys of one row of P̂ (ties to the lower index) into @p words (already
/// cleared): the best @p k (top-k), or the shortest best-first prefix whose running sum reaches
/// @p mass (cumulative).
/// @param p          The row's probabilities.
/// @param idx        Scratch of lk indices.
/// @param lk         Row length.
/// @param padding    Key padding.
/// @param b          The row's sequence.
/// @param cumulative Cumulative probability (true) or top-k.
/// @param k          Top-k count.
/// @param mass       Cumulative target.
/// @param words      The row's mask words.
template <class S>
DEQ_HOST_DEVICE inline void select_rank_row(S const* p, index_t* idx, index_t lk, key_padding const& padding, index_t b,
                                            bool cumulative, index_t k, S mass, std::uint64_t* words) {
    index_t n = 0;
    for (index_t j = 0; j < lk; ++j)
        if (padding.is_valid(b, j)) idx[n++] = j;
    for (index_t pos = n / 2 - 1; pos >= 0; --pos) select_sift_down(p, idx, n, pos);
    index_t taken = 0;
    S sum = 0;
    while (n > 0) {
        index_t const j = idx[0];
        idx[0] = idx[--n];
        select_sift_down(p, idx, n, index_t{0});
        select_set_bit(words, j);
        ++taken;
        if (cumulative) {
            sum += p[j];
            if (sum >= mass) break;
        } else if (taken >= k) {
            break;
        }
    }
}

/// Ranking selection among real keys by P̂: the best @p k keys (top-k), or the shortest best-first prefix
/// whose running sum reaches @p mass (cumulative probability). One work item per chunk of rows.
/// @tparam S Score type.
template <class S>
struct select_rank_rows {
    tensor_view<S const, 4> scores;  ///< Predicted scores.
    key_padding padding;             ///< Key padding.
    select_padding_words padded;     ///< Padded-key words.
    bit_mask_view out;               ///< Output mask.
    bool cumulative;                 ///< Cumulative probability (true) or top-k (false).
    index_t k;                       ///< Top-k count.
    S mass;                          ///< Cumulative probability target p.
    S* scratch;                      ///< chunks × Lk values.
    index_t* heap;                   ///< chunks × Lk indices.
    index_t* status;                 ///< Output: select_row_ok or the first non-finite column, per row.
    index_t chunks;                  ///< Number of chunks.
    arch::isa tier;                  ///< Instruction-set tier of the softmax rows.

    DEQ_HOST_DEVICE void operator()(index_t c) const {
        index_t const heads = scores.extent(1), lq = scores.extent(2), lk = scores.extent(3);
        index_t begin = 0, end = 0;
        select_chunk_rows(c, chunks, scores.extent(0) * heads * lq, begin, end);
        S* p = scratch + c * lk;
        index_t* idx = heap + c * lk;
        for (index_t r = begin; r < end; ++r) {
            index_t b = 0, h = 0, i = 0;
            select_split_row(r, heads, lq, b, h, i);
            std::uint64_t* words = out.row(b, h, i);
            select_clear_row(words, out.words_per_row());
            status[r] = select_load_row(scores, padded, b, h, i, true, p, tier);
            if (status[r] != select_row_ok) continue;
            select_rank_row(p, idx, lk, padding, b, cumulative, k, mass, words);
        }
    }
};

/// ANDs row words of @p target with those of @p other (same shape). One work item per row.
struct select_and_rows {
    bit_mask_view target;       ///< Mask updated in place.
    const_bit_mask_view other;  ///< Mask combined into target.

    DEQ_HOST_DEVICE void operator()(index_t r) const {
        index_t b = 0, h = 0, i = 0;
        select_split_row(r, target.heads(), target.rows(), b, h, i);
        std::uint64_t* t = target.row(b, h, i);
        std::uint64_t const* o = other.row(b, h, i);
        for (index_t w = 0; w < target.words_per_row(); ++w) t[w] &= o[w];
    }
};

}  // namespace deq::detail
