/// @file
/// @brief `deq::pack_split`: Sanger's "pack & split" segment format of a bit mask (the input of
/// the reconfigurable sparse PE array), and the lossless conversions to and from `deq::bit_mask`.
///
/// Model (Sanger `hardware/src/main/scala/pe_row/pack.scala`, `Pack(height, pe_n, ...)`): rows are
/// processed in groups of `height` (one PE row each), columns in windows of `window` (the input
/// ports, 64 in the reference). Inside a window the Pack module consumes one column per cycle; it
/// opens a new segment as soon as a row that has a 1 in the current column already holds `pe_n`
/// non-zeros in the current segment, so no row ever holds more than `pe_n` non-zeros per segment
/// (the "split"), and all rows of the group share the segment boundaries (the "pack").
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "../config.hpp"
#include "../core/bit_mask.hpp"
#include "../core/checked_size.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "detail/bits.hpp"
#include "detail/check.hpp"

namespace deq {

/// Parameters of the pack & split format.
struct pack_split_params {
    /// Rows packed together (PE rows sharing segment boundaries), >= 1. With 1, every row is split
    /// on its own, which is the model of the reference load-balance metric (`_eval_load_balance`).
    index_t height = 64;
    /// Columns per window (input ports), >= 1; the reference uses 64.
    index_t window = 64;
    /// PEs per row (maximum non-zeros of a row in one segment), >= 1; 16 in the cost model, 4 in
    /// the RTL unit test.
    index_t pe_n = 16;

    /// Largest `height` and `pe_n` accepted (a PE array of 65536 rows of 65536 PEs; every segment
    /// stores `height * pe_n` slots, so larger values would only allocate empty slots).
    static constexpr index_t max_extent = index_t{1} << 16;

    /// Checks the fields; throws deq::invalid_argument naming the field and value.
    void validate() const {
        if (height < 1 || height > max_extent) detail::throw_invalid_argument("height", height, "must be in [1, 65536]");
        if (window < 1 || window > std::numeric_limits<std::int32_t>::max() - 1) {
            detail::throw_invalid_argument("window", window, "must be in [1, 2^31 - 2]");
        }
        if (pe_n < 1 || pe_n > max_extent) detail::throw_invalid_argument("pe_n", pe_n, "must be in [1, 65536]");
    }

    /// Field-wise equality.
    /// @param a First parameter set.
    /// @param b Second parameter set.
    friend bool operator==(pack_split_params const& a, pack_split_params const& b) = default;
};

/// One segment: the columns `[col_begin, col_end)` (inside one window) processed together by a row group.
struct pack_split_segment {
    /// First column (absolute).
    index_t col_begin = 0;
    /// One past the last column (absolute).
    index_t col_end = 0;
    /// Number of occupied PE slots (set bits) of the group in this segment.
    index_t nnz = 0;

    /// Field-wise equality.
    /// @param a First segment.
    /// @param b Second segment.
    friend bool operator==(pack_split_segment const& a, pack_split_segment const& b) = default;
};

/// A mask in pack & split form.
///
/// Layout: the stored rows of every (batch, head) (extent 1 stays 1 and broadcasts) are cut into
/// `groups()` groups of `params.height` rows (the last one may be shorter). Group g (in (batch,
/// head, group) order) owns segments `[group_ptr[g], group_ptr[g + 1])`, ordered by column; every
/// window contributes at least one segment, even when the group has no non-zero there (a segment
/// with `nnz == 0`, what the hardware spends on an all-zero window when it does not skip it).
///
/// Per segment s and row r of the group (r in [0, height)) there are `pe_n` PE slots at
/// `slot_index(s, r, k)`:
/// - `offsets`: the column of the k-th non-zero of the row in the segment, relative to
///   `col_begin` (the RTL's `r_counter`), increasing in k; unused slots, and all slots of rows beyond
///   the matrix in a short last group, hold `empty_slot()` (= `window`, the RTL's `no_pe`, which is
///   also the PE operand mux's "zero" input).
/// - `gaps`: the c4 delay select of the slot, as the RTL test (`pe_row_test.scala`) configures it:
///   the number of columns skipped after this one before the row's next selected column, i.e.
///   `offset[k + 1] - offset[k] - 1`, and for the row's last occupied slot
///   `(col_end - col_begin - 1) - offset[k]`; 0 for empty slots.
///
/// Documented deviation: when the RTL emits (opens a new segment) it clears its counters without
/// counting the triggering column; deq assigns that column to the new segment, which keeps every
/// non-zero (the conversion is lossless) and gives the same segment boundaries.
struct pack_split {
    /// Batch extent (1 broadcasts).
    index_t batch = 0;
    /// Head extent (1 broadcasts).
    index_t heads = 0;
    /// Rows per (batch, head).
    index_t rows = 0;
    /// Columns.
    index_t cols = 0;
    /// Format parameters.
    pack_split_params params;
    /// Segment offsets of every group, `group_count() + 1` entries.
    std::vector<index_t> group_ptr;
    /// All segments, group by group.
    std::vector<pack_split_segment> segments;
    /// Column offset per slot (`slots_per_segment()` per segment), or `empty_slot()`.
    std::vector<std::int32_t> offsets;
    /// c4 delay select per slot.
    std::vector<std::int32_t> gaps;

    /// Row groups per (batch, head), `ceil(rows / height)`.
    /// @return `ceil(rows / height)`.
    index_t groups() const { return rows / params.height + (rows % params.height != 0 ? 1 : 0); }
    /// Number of stored groups, `batch * heads * groups()`.
    /// @return `batch * heads * groups()`.
    index_t group_count() const { return batch * heads * groups(); }
    /// Slots per segment, `height * pe_n`.
    /// @return `height * pe_n`.
    index_t slots_per_segment() const { return params.height * params.pe_n; }
    /// The sentinel of an unused PE slot (`window`).
    /// @return `params.window`.
    std::int32_t empty_slot() const { return static_cast<std::int32_t>(params.window); }
    /// Number of segments.
    /// @return The number of segments.
    index_t segment_count() const { return static_cast<index_t>(segments.size()); }
    /// Number of set bits over all segments.
    /// @return The number of set bits (occupied slots).
    index_t nnz() const {
        index_t n = 0;
        for (auto const& s : segments) n += s.nnz;
        return n;
    }
    /// Index into `offsets` / `gaps` of slot @p k of row @p r (inside its group) in segment @p s.
    /// @param s Segment index.
    /// @param r Row inside the group, in [0, height).
    /// @param k Slot, in [0, pe_n).
    /// @return The index into `offsets` and `gaps`.
    index_t slot_index(index_t s, index_t r, index_t k) const { return (s * params.height + r) * params.pe_n + k; }
    /// Position of group @p g of (b, h) in `group_ptr`; b and h broadcast when their extent is 1.
    /// @param b Batch index.
    /// @param h Head index.
    /// @param g Group index, in [0, groups()).
    /// @return The index into `group_ptr`.
    index_t group_index(index_t b, index_t h, index_t g) const {
        return ((batch == 1 ? 0 : b) * heads + (heads == 1 ? 0 : h)) * groups() + g;
    }

    /// Checks the structure; throws deq::shape_error for wrong extents or array sizes and
    /// deq::invalid_argument (naming the array and position) for inconsistent content.
    void validate() const {
        params.validate();
        if (batch < 1 || heads < 1 || rows < 0 || cols < 0) {
            detail::throw_shape_error(detail::concat("pack_split extents [", batch, ", ", heads, ", ", rows, ", ", cols,
                                                     "]: batch and heads must be >= 1, rows and cols >= 0"));
        }
        detail::checked_size("pack_split", {batch, heads, rows, cols});
        if (group_ptr.empty() || static_cast<index_t>(group_ptr.size() - 1) != group_count()) {
            detail::throw_shape_error(detail::concat("pack_split.group_ptr has ", group_ptr.size(),
                                                     " entries, expected ", group_count(), " + 1"));
        }
        index_t const slots = detail::checked_size("pack_split slots [segments, height, pe_n]",
                                                   {segment_count(), params.height, params.pe_n});
        if (static_cast<index_t>(offsets.size()) != slots || static_cast<index_t>(gaps.size()) != slots) {
            detail::throw_shape_error(detail::concat("pack_split.offsets / gaps have ", offsets.size(), " / ",
                                                     gaps.size(), " entries, expected ", slots));
        }
        if (group_ptr.front() != 0) detail::throw_invalid_argument("pack_split.group_ptr[0]", group_ptr.front(), "must be 0");
        if (group_ptr.back() != segment_count()) {
            detail::throw_invalid_argument(detail::concat("pack_split.group_ptr[", group_count(), "]"), group_ptr.back(),
                                           detail::concat("must equal segments.size() = ", segment_count()));
        }
        index_t const w = params.window;
        for (index_t g = 0; g < group_count(); ++g) {
            auto const begin = group_ptr[static_cast<std::size_t>(g)];
            auto const end = group_ptr[static_cast<std::size_t>(g + 1)];
            if (end < begin) {
                detail::throw_invalid_argument(detail::concat("pack_split.group_ptr[", g + 1, "]"), end,
                                               detail::concat("must be >= group_ptr[", g, "] = ", begin));
            }
            index_t const r0 = (g % groups()) * params.height;
            index_t const nr = rows - r0 < params.height ? rows - r0 : params.height;
            index_t previous_end = 0;
            for (index_t s = begin; s < end; ++s) {
                auto const& seg = segments[static_cast<std::size_t>(s)];
                if (seg.col_begin < previous_end || seg.col_end <= seg.col_begin || seg.col_end > cols ||
                    seg.col_begin / w != (seg.col_end - 1) / w) {
                    detail::throw_invalid_argument(detail::concat("pack_split.segments[", s, "].col_begin"), seg.col_begin,
                                                   detail::concat("with col_end = ", seg.col_end,
                                                                  " must be an ordered, non-empty range inside one ",
                                                                  w, "-column window of [0, ", cols, ")"));
                }
                previous_end = seg.col_end;
                index_t occupied = 0;
                for (index_t r = 0; r < params.height; ++r) {
                    bool empty_seen = false;
                    std::int32_t last = -1;
                    for (index_t k = 0; k < params.pe_n; ++k) {
                        auto const o = offsets[static_cast<std::size_t>(slot_index(s, r, k))];
                        if (o == empty_slot()) {
                            empty_seen = true;
                            continue;
                        }
                        if (r >= nr || empty_seen || o <= last || o < 0 || o >= seg.col_end - seg.col_begin) {
                            detail::throw_invalid_argument(
                                detail::concat("pack_split.offsets[", slot_index(s, r, k), "]"), o,
                                detail::concat("must be the empty slot ", empty_slot(),
                                               " or an increasing offset below the segment width ",
                                               seg.col_end - seg.col_begin, ", occupied slots first, rows < ", nr));
                        }
                        last = o;
                        ++occupied;
                    }
                }
                if (occupied != seg.nnz) {
                    detail::throw_invalid_argument(detail::concat("pack_split.segments[", s, "].nnz"), seg.nnz,
                                                   detail::concat("must equal the occupied slot count ", occupied));
                }
            }
        }
    }

    /// Equality of extents, parameters and arrays.
    /// @param a First mask.
    /// @param b Second mask.
    friend bool operator==(pack_split const& a, pack_split const& b) = default;
};

namespace detail {

/// Kernel over stored row groups: runs the Pack walk; counts segments (Fill = false) or writes them.
template <bool Fill>
struct pack_split_kernel {
    const_bit_mask_view mask;
    index_t height, window, pe_n, groups;
    index_t* counters;            // height per item (scratch)
    index_t* counts_or_ptr;       // segment counts when !Fill, group_ptr when Fill
    pack_split_segment* segments;
    std::int32_t* offsets;        // pre-filled with the empty slot
    std::int32_t* gaps;           // pre-filled with 0

    DEQ_HOST_DEVICE bool bit(std::uint64_t const* base, index_t r, index_t c) const {
        return (base[r * mask.words_per_row() + c / mask_word_bits] >> (c % mask_word_bits)) & 1u;
    }

    DEQ_HOST_DEVICE void close(index_t seg, index_t begin, index_t end, index_t nnz, index_t rows_in_group,
                               index_t const* cnt) const {
        segments[seg] = pack_split_segment{begin, end, nnz};
        for (index_t r = 0; r < rows_in_group; ++r) {
            index_t const base = (seg * height + r) * pe_n;
            for (index_t k = 0; k < cnt[r]; ++k) {
                index_t const next = k + 1 < cnt[r] ? offsets[base + k + 1] : end - begin;
                gaps[base + k] = static_cast<std::int32_t>(next - offsets[base + k] - 1);
            }
        }
    }

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const bh = item / groups;
        index_t const r0 = (item % groups) * height;
        index_t const nr = mask.rows() - r0 < height ? mask.rows() - r0 : height;
        std::uint64_t const* base = mask.words() + (bh * mask.rows() + r0) * mask.words_per_row();
        index_t* cnt = counters + item * height;
        index_t seg = Fill ? counts_or_ptr[item] : 0;
        for (index_t w0 = 0; w0 < mask.cols(); w0 += window) {
            index_t const w1 = mask.cols() - w0 < window ? mask.cols() : w0 + window;
            index_t begin = w0;
            index_t nnz = 0;
            for (index_t r = 0; r < nr; ++r) cnt[r] = 0;
            for (index_t c = w0; c < w1; ++c) {
                bool full = false;
                for (index_t r = 0; r < nr && !full; ++r) full = cnt[r] == pe_n && bit(base, r, c);
                if (full) {
                    if constexpr (Fill) close(seg, begin, c, nnz, nr, cnt);
                    ++seg;
                    begin = c;
                    nnz = 0;
                    for (index_t r = 0; r < nr; ++r) cnt[r] = 0;
                }
                for (index_t r = 0; r < nr; ++r) {
                    if (!bit(base, r, c)) continue;
                    if constexpr (Fill) offsets[(seg * height + r) * pe_n + cnt[r]] = static_cast<std::int32_t>(c - begin);
                    ++cnt[r];
                    ++nnz;
                }
            }
            if constexpr (Fill) close(seg, begin, w1, nnz, nr, cnt);
            ++seg;
        }
        if constexpr (!Fill) counts_or_ptr[item] = seg;
    }
};

/// Kernel over stored row groups: sets the bits of every occupied slot.
struct pack_split_scatter_kernel {
    bit_mask_view out;
    index_t height, pe_n, groups;
    std::int32_t empty;
    index_t const* group_ptr;
    pack_split_segment const* segments;
    std::int32_t const* offsets;

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const bh = item / groups;
        index_t const r0 = (item % groups) * height;
        index_t const nr = out.rows() - r0 < height ? out.rows() - r0 : height;
        std::uint64_t* base = out.words() + (bh * out.rows() + r0) * out.words_per_row();
        for (index_t s = group_ptr[item]; s < group_ptr[item + 1]; ++s) {
            for (index_t r = 0; r < nr; ++r) {
                for (index_t k = 0; k < pe_n; ++k) {
                    std::int32_t const o = offsets[(s * height + r) * pe_n + k];
                    if (o == empty) break;
                    index_t const c = segments[s].col_begin + o;
                    base[r * out.words_per_row() + c / mask_word_bits] |= std::uint64_t{1} << (c % mask_word_bits);
                }
            }
        }
    }
};

}  // namespace detail

/// Converts a bit mask to pack & split segments (groups counted, then filled, in parallel).
/// @tparam Space A host execution space.
/// @param space  Execution space running the per-group kernels.
/// @param mask   The mask; its stored batch/head extents are kept.
/// @param params Group height, window and PEs per row (validated here).
/// @return The pack & split form of @p mask.
template <exec::host_execution_space Space>
pack_split to_pack_split(Space const& space, const_bit_mask_view mask, pack_split_params const& params = {}) {
    params.validate();
    detail::check_mask_view(mask);
    pack_split out;
    out.batch = mask.batch();
    out.heads = mask.heads();
    out.rows = mask.rows();
    out.cols = mask.cols();
    out.params = params;
    index_t const n = out.group_count();
    index_t const groups = out.groups() > 0 ? out.groups() : 1;
    std::vector<index_t> counters(static_cast<std::size_t>(n * params.height), 0);
    out.group_ptr.assign(static_cast<std::size_t>(n + 1), 0);
    exec::parallel_for(space, n,
                       detail::pack_split_kernel<false>{mask, params.height, params.window, params.pe_n, groups,
                                                        counters.data(), out.group_ptr.data(), nullptr, nullptr,
                                                        nullptr});
    detail::bits::exclusive_scan(out.group_ptr);
    out.segments.assign(static_cast<std::size_t>(out.group_ptr.back()), pack_split_segment{});
    index_t const slots = detail::checked_size("pack_split slots [segments, height, pe_n]",
                                               {out.segment_count(), params.height, params.pe_n});
    out.offsets.assign(detail::checked_bytes("pack_split offsets", slots, sizeof(std::int32_t)) / sizeof(std::int32_t),
                       out.empty_slot());
    out.gaps.assign(out.offsets.size(), 0);
    exec::parallel_for(space, n,
                       detail::pack_split_kernel<true>{mask, params.height, params.window, params.pe_n, groups,
                                                       counters.data(), out.group_ptr.data(), out.segments.data(),
                                                       out.offsets.data(), out.gaps.data()});
    return out;
}

/// Converts pack & split segments back to a bit mask of the same extents (validates @p m first).
/// @tparam Space A host execution space.
/// @param space Execution space running the per-group kernel.
/// @param m     The pack & split mask.
/// @return The bit mask of @p m.
template <exec::host_execution_space Space>
bit_mask to_bit_mask(Space const& space, pack_split const& m) {
    m.validate();
    bit_mask out(m.batch, m.heads, m.rows, m.cols);
    index_t const groups = m.groups() > 0 ? m.groups() : 1;
    exec::parallel_for(space, m.group_count(),
                       detail::pack_split_scatter_kernel{out.view(), m.params.height, m.params.pe_n, groups,
                                                         m.empty_slot(), m.group_ptr.data(), m.segments.data(),
                                                         m.offsets.data()});
    return out;
}

}  // namespace deq
