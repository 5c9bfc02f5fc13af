/// @file
/// @brief Per-(sequence, head) work extraction for the accelerator cost model (internal): the processed
/// rows and columns (real tokens, or all with `skip_padding = false`), each row's kept and
/// high-precision entry counts, and the kept mask compacted to the processed rows and columns.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "../../core/bit_mask.hpp"
#include "../../core/tensor.hpp"
#include "../workload.hpp"

namespace deq::accel::detail {

/// The work of one (sequence, head) instance.
struct head_work {
    /// Processed query rows.
    index_t n = 0;
    /// Processed key columns.
    index_t m = 0;
    /// Kept entries of each processed row among the processed columns.
    std::vector<index_t> kept;
    /// High-precision entries (refined and kept) of each processed row among the processed columns.
    std::vector<index_t> high;
    /// Kept entries over the processed rows and columns, [1, 1, n, m] (filled on request).
    bit_mask compact;

    /// @return Σ kept.
    index_t kept_total() const {
        index_t s = 0;
        for (index_t x : kept) s += x;
        return s;
    }
    /// @return Σ high.
    index_t high_total() const {
        index_t s = 0;
        for (index_t x : high) s += x;
        return s;
    }
};

/// Processed columns of sequence @p b as packed words (bit j set = column j processed).
inline std::vector<std::uint64_t> processed_columns(attention_workload const& w, index_t b, bool skip_padding,
                                                    index_t& count) {
    index_t const words = (w.lk + mask_word_bits - 1) / mask_word_bits;
    std::vector<std::uint64_t> cols(static_cast<std::size_t>(words), 0);
    count = 0;
    for (index_t j = 0; j < w.lk; ++j) {
        if (!skip_padding || w.padding.is_valid(b, j)) {
            cols[static_cast<std::size_t>(j / mask_word_bits)] |= std::uint64_t{1} << (j % mask_word_bits);
            ++count;
        }
    }
    return cols;
}

/// Extracts the work of (b, h).
/// @param w            The workload (validated).
/// @param b            Sequence.
/// @param h            Head.
/// @param skip_padding Process real tokens only.
/// @param cols         processed_columns() of b.
/// @param m            Number of processed columns.
/// @param want_compact Also fill `compact`.
/// @return The head's work.
inline head_work extract_head(attention_workload const& w, index_t b, index_t h, bool skip_padding,
                              std::vector<std::uint64_t> const& cols, index_t m, bool want_compact) {
    head_work hw;
    hw.m = m;
    key_padding const qpad = w.queries();
    std::vector<index_t> rows;
    for (index_t i = 0; i < w.lq; ++i)
        if (!skip_padding || qpad.is_valid(b, i)) rows.push_back(i);
    hw.n = static_cast<index_t>(rows.size());
    hw.kept.assign(rows.size(), 0);
    hw.high.assign(rows.size(), 0);
    std::vector<index_t> col_index;
    if (want_compact) {
        hw.compact = bit_mask(1, 1, hw.n, hw.m);
        col_index.assign(static_cast<std::size_t>(w.lk), -1);
        index_t c = 0;
        for (index_t j = 0; j < w.lk; ++j)
            if ((cols[static_cast<std::size_t>(j / mask_word_bits)] >> (j % mask_word_bits)) & 1u) col_index[static_cast<std::size_t>(j)] = c++;
    }
    std::size_t const words = cols.size();
    for (std::size_t r = 0; r < rows.size(); ++r) {
        index_t const i = rows[r];
        std::uint64_t const* kept = w.kept.empty() ? nullptr : w.kept.row(b, h, i);
        std::uint64_t const* refined = w.refined.empty() ? nullptr : w.refined.row(b, h, i);
        index_t nk = 0, nh = 0;
        for (std::size_t x = 0; x < words; ++x) {
            std::uint64_t const k = (kept ? kept[x] : ~std::uint64_t{0}) & cols[x];
            nk += std::popcount(k);
            nh += std::popcount(refined ? (k & refined[x]) : k);
            if (want_compact) {
                for (std::uint64_t bits = k; bits != 0; bits &= bits - 1) {
                    index_t const j = static_cast<index_t>(x) * mask_word_bits + std::countr_zero(bits);
                    hw.compact.set(0, 0, static_cast<index_t>(r), col_index[static_cast<std::size_t>(j)]);
                }
            }
        }
        hw.kept[r] = nk;
        hw.high[r] = nh;
    }
    return hw;
}

}  // namespace deq::accel::detail
