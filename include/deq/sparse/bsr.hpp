/// @file
/// @brief `deq::bsr<BR, BC>`: block sparse row form of a `[batch, heads, rows, cols]` bit mask
/// with compile-time block sizes, storing each block's bit pattern so the conversion is lossless.
#pragma once

#include <cstdint>
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

/// Block sparse row mask with `BR × BC` blocks. Rows are grouped into `ceil(rows / BR)` block rows
/// per (batch, head), in (batch, head, block row) order over the stored extents (batch/head extent 1
/// stays 1 and broadcasts). Only blocks holding at least one set bit are stored (a converter never
/// emits an empty block; validate() accepts them). Block k covers block column `block_col_idx[k]`
/// and its bit (r, c) (row r, column c inside the block) is bit `r * BC + c` of the
/// `words_per_block` words at `patterns[k * words_per_block]`. Edge blocks (when rows or cols is not a
/// multiple of the block size) are partial: their bits outside the matrix are zero.
/// @tparam BR Block height in rows, >= 1.
/// @tparam BC Block width in columns, >= 1.
template <index_t BR, index_t BC>
    requires(BR >= 1 && BC >= 1)
struct bsr {
    /// Block height.
    static constexpr index_t block_rows = BR;
    /// Block width.
    static constexpr index_t block_cols = BC;
    /// 64-bit words per block pattern.
    static constexpr index_t words_per_block = (BR * BC + 63) / 64;

    /// Batch extent (1 broadcasts).
    index_t batch = 0;
    /// Head extent (1 broadcasts).
    index_t heads = 0;
    /// Rows per (batch, head).
    index_t rows = 0;
    /// Columns.
    index_t cols = 0;
    /// Block-row offsets into `block_col_idx`, `batch * heads * row_blocks() + 1` entries.
    std::vector<index_t> block_row_ptr;
    /// Block column of every stored block, strictly increasing within a block row.
    std::vector<index_t> block_col_idx;
    /// Bit patterns, `words_per_block` words per stored block.
    std::vector<std::uint64_t> patterns;

    /// Block rows per (batch, head), `ceil(rows / BR)`.
    /// @return `ceil(rows / BR)`.
    index_t row_blocks() const { return rows / BR + (rows % BR != 0 ? 1 : 0); }
    /// Block columns, `ceil(cols / BC)`.
    /// @return `ceil(cols / BC)`.
    index_t col_blocks() const { return cols / BC + (cols % BC != 0 ? 1 : 0); }
    /// Number of stored block rows, `batch * heads * row_blocks()`.
    /// @return `batch * heads * row_blocks()`.
    index_t block_row_count() const { return batch * heads * row_blocks(); }
    /// Number of stored blocks.
    /// @return The number of stored blocks.
    index_t block_count() const { return static_cast<index_t>(block_col_idx.size()); }
    /// Number of set bits over all stored blocks.
    /// @return The number of set bits.
    index_t nnz() const {
        index_t n = 0;
        for (auto w : patterns) n += detail::bits::popcount(w);
        return n;
    }
    /// Bit (r, c) of stored block @p k.
    /// @param k Stored block index.
    /// @param r Row inside the block, in [0, BR).
    /// @param c Column inside the block, in [0, BC).
    /// @return Whether the bit is set.
    bool test(index_t k, index_t r, index_t c) const {
        index_t const p = r * BC + c;
        return (patterns[static_cast<std::size_t>(k * words_per_block + p / 64)] >> (p % 64)) & 1u;
    }

    /// Checks the structure; throws deq::shape_error for wrong extents or array sizes and
    /// deq::invalid_argument (naming the array and position) for out-of-range or unordered entries
    /// and for pattern bits outside the matrix.
    void validate() const {
        if (batch < 1 || heads < 1 || rows < 0 || cols < 0) {
            detail::throw_shape_error(detail::concat("bsr extents [", batch, ", ", heads, ", ", rows, ", ", cols,
                                                     "]: batch and heads must be >= 1, rows and cols >= 0"));
        }
        detail::checked_size("bsr", {batch, heads, rows, cols});
        if (block_row_ptr.empty() || static_cast<index_t>(block_row_ptr.size() - 1) != block_row_count()) {
            detail::throw_shape_error(detail::concat("bsr.block_row_ptr has ", block_row_ptr.size(),
                                                     " entries, expected ", block_row_count(), " + 1"));
        }
        if (static_cast<index_t>(patterns.size()) != block_count() * words_per_block) {
            detail::throw_shape_error(detail::concat("bsr.patterns has ", patterns.size(), " words, expected ",
                                                     block_count() * words_per_block));
        }
        if (block_row_ptr.front() != 0) {
            detail::throw_invalid_argument("bsr.block_row_ptr[0]", block_row_ptr.front(), "must be 0");
        }
        if (block_row_ptr.back() != block_count()) {
            detail::throw_invalid_argument(detail::concat("bsr.block_row_ptr[", block_row_count(), "]"),
                                           block_row_ptr.back(),
                                           detail::concat("must equal block_col_idx.size() = ", block_count()));
        }
        for (index_t br = 0; br < block_row_count(); ++br) {
            auto const begin = block_row_ptr[static_cast<std::size_t>(br)];
            auto const end = block_row_ptr[static_cast<std::size_t>(br + 1)];
            if (end < begin) {
                detail::throw_invalid_argument(detail::concat("bsr.block_row_ptr[", br + 1, "]"), end,
                                               detail::concat("must be >= block_row_ptr[", br, "] = ", begin));
            }
            index_t const height = rows - (br % row_blocks()) * BR < BR ? rows - (br % row_blocks()) * BR : BR;
            for (index_t k = begin; k < end; ++k) {
                auto const c = block_col_idx[static_cast<std::size_t>(k)];
                bool const ordered = k == begin || c > block_col_idx[static_cast<std::size_t>(k - 1)];
                if (c < 0 || c >= col_blocks() || !ordered) {
                    detail::throw_invalid_argument(detail::concat("bsr.block_col_idx[", k, "]"), c,
                                                   detail::concat("must be in [0, ", col_blocks(),
                                                                  ") and increase within block row ", br));
                }
                index_t const width = cols - c * BC < BC ? cols - c * BC : BC;
                if (height == BR && width == BC) continue;  // only partial edge blocks can hold outside bits
                for (index_t r = 0; r < BR; ++r) {
                    for (index_t cc = 0; cc < BC; ++cc) {
                        if ((r >= height || cc >= width) && test(k, r, cc)) {
                            detail::throw_invalid_argument(detail::concat("bsr.patterns of block ", k), r * BC + cc,
                                                           "is a set bit outside the matrix (partial edge block)");
                        }
                    }
                }
            }
        }
    }

    /// Equality of extents and arrays.
    /// @param a First BSR mask.
    /// @param b Second BSR mask.
    friend bool operator==(bsr const& a, bsr const& b) = default;
};

namespace detail {

/// Kernel over stored block rows: counts (Fill = false) or writes (Fill = true) the non-empty blocks.
template <index_t BR, index_t BC, bool Fill>
struct bsr_gather_kernel {
    const_bit_mask_view mask;
    index_t row_blocks;
    index_t* counts_or_ptr;  // counts when !Fill, block_row_ptr when Fill
    index_t* col_idx;
    std::uint64_t* patterns;

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const bh = item / row_blocks;
        index_t const r0 = (item % row_blocks) * BR;
        index_t const height = mask.rows() - r0 < BR ? mask.rows() - r0 : BR;
        std::uint64_t const* base = mask.words() + (bh * mask.rows() + r0) * mask.words_per_row();
        index_t const col_blocks = (mask.cols() + BC - 1) / BC;
        index_t pos = Fill ? counts_or_ptr[item] : 0;
        for (index_t bj = 0; bj < col_blocks; ++bj) {
            index_t const c0 = bj * BC;
            index_t const width = mask.cols() - c0 < BC ? mask.cols() - c0 : BC;
            bool any = false;
            for (index_t r = 0; r < height && !any; ++r) {
                any = bits::any_in_range(base + r * mask.words_per_row(), c0, c0 + width);
            }
            if (!any) continue;
            if constexpr (Fill) {
                col_idx[pos] = bj;
                std::uint64_t* pattern = patterns + pos * ((BR * BC + 63) / 64);
                for (index_t r = 0; r < height; ++r) {
                    std::uint64_t const* row = base + r * mask.words_per_row();
                    for (index_t c = 0; c < width; c += 64) {
                        index_t const n = width - c < 64 ? width - c : 64;
                        bits::write_or(pattern, r * BC + c, n, bits::read(row, c0 + c, n));
                    }
                }
            }
            ++pos;
        }
        if constexpr (!Fill) counts_or_ptr[item] = pos;
    }
};

/// Kernel over stored block rows: writes the bits of every stored block into the mask.
template <index_t BR, index_t BC>
struct bsr_scatter_kernel {
    bit_mask_view out;
    index_t row_blocks;
    index_t const* block_row_ptr;
    index_t const* col_idx;
    std::uint64_t const* patterns;

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const bh = item / row_blocks;
        index_t const r0 = (item % row_blocks) * BR;
        index_t const height = out.rows() - r0 < BR ? out.rows() - r0 : BR;
        std::uint64_t* base = out.words() + (bh * out.rows() + r0) * out.words_per_row();
        for (index_t k = block_row_ptr[item]; k < block_row_ptr[item + 1]; ++k) {
            index_t const c0 = col_idx[k] * BC;
            index_t const width = out.cols() - c0 < BC ? out.cols() - c0 : BC;
            std::uint64_t const* pattern = patterns + k * ((BR * BC + 63) / 64);
            for (index_t r = 0; r < height; ++r) {
                for (index_t c = 0; c < width; c += 64) {
                    index_t const n = width - c < 64 ? width - c : 64;
                    bits::write_or(base + r * out.words_per_row(), c0 + c, n, bits::read(pattern, r * BC + c, n));
                }
            }
        }
    }
};

}  // namespace detail

/// Converts a bit mask to BSR with `BR × BC` blocks (block rows counted, then filled, in parallel).
/// @tparam BR    Block height in rows.
/// @tparam BC    Block width in columns.
/// @tparam Space A host execution space.
/// @param space Execution space running the per-block-row kernels.
/// @param mask  The mask; its stored batch/head extents are kept.
/// @return The BSR form of @p mask.
template <index_t BR, index_t BC, exec::host_execution_space Space>
    requires(BR >= 1 && BC >= 1)
bsr<BR, BC> to_bsr(Space const& space, const_bit_mask_view mask) {
    detail::check_mask_view(mask);
    bsr<BR, BC> out;
    out.batch = mask.batch();
    out.heads = mask.heads();
    out.rows = mask.rows();
    out.cols = mask.cols();
    index_t const n = out.block_row_count();
    index_t const rb = out.row_blocks() > 0 ? out.row_blocks() : 1;
    out.block_row_ptr.assign(static_cast<std::size_t>(n + 1), 0);
    exec::parallel_for(space, n, detail::bsr_gather_kernel<BR, BC, false>{mask, rb, out.block_row_ptr.data(), nullptr, nullptr});
    detail::bits::exclusive_scan(out.block_row_ptr);
    out.block_col_idx.assign(static_cast<std::size_t>(out.block_row_ptr.back()), 0);
    out.patterns.assign(static_cast<std::size_t>(out.block_row_ptr.back() * bsr<BR, BC>::words_per_block), 0);
    exec::parallel_for(space, n,
                       detail::bsr_gather_kernel<BR, BC, true>{mask, rb, out.block_row_ptr.data(),
                                                               out.block_col_idx.data(), out.patterns.data()});
    return out;
}

/// Converts BSR back to a bit mask of the same extents (validates @p m first).
/// @tparam BR    Block height in rows.
/// @tparam BC    Block width in columns.
/// @tparam Space A host execution space.
/// @param space Execution space running the per-block-row kernel.
/// @param m     The BSR mask.
/// @return The bit mask of @p m.
template <exec::host_execution_space Space, index_t BR, index_t BC>
bit_mask to_bit_mask(Space const& space, bsr<BR, BC> const& m) {
    m.validate();
    bit_mask out(m.batch, m.heads, m.rows, m.cols);
    index_t const rb = m.row_blocks() > 0 ? m.row_blocks() : 1;
    exec::parallel_for(space, m.block_row_count(),
                       detail::bsr_scatter_kernel<BR, BC>{out.view(), rb, m.block_row_ptr.data(),
                                                          m.block_col_idx.data(), m.patterns.data()});
    return out;
}

}  // namespace deq
