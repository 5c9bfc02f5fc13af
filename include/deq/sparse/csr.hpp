/// @file
/// @brief `deq::csr`: compressed sparse row form of a `[batch, heads, rows, cols]` bit mask, and
/// the lossless conversions to and from `deq::bit_mask`.
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

/// Compressed sparse row mask. All `batch × heads × rows` rows are stored in (batch, head, row)
/// order over the *stored* extents: a batch or head extent of 1 stays 1 (it broadcasts, as in
/// `deq::bit_mask`). The column indices of row r are `col_idx[row_ptr[r] .. row_ptr[r + 1])`,
/// strictly increasing.
struct csr {
    /// Batch extent (1 broadcasts).
    index_t batch = 0;
    /// Head extent (1 broadcasts).
    index_t heads = 0;
    /// Rows (queries) per (batch, head).
    index_t rows = 0;
    /// Columns (keys).
    index_t cols = 0;
    /// Row offsets into `col_idx`, `batch * heads * rows + 1` entries, `row_ptr[0] == 0`.
    std::vector<index_t> row_ptr;
    /// Column index of every set bit, row by row.
    std::vector<index_t> col_idx;

    /// Number of stored rows, `batch * heads * rows`.
    /// @return `batch * heads * rows`.
    index_t row_count() const { return batch * heads * rows; }
    /// Number of set bits.
    /// @return The number of stored column indices.
    index_t nnz() const { return static_cast<index_t>(col_idx.size()); }
    /// Position of row (b, h, i) in `row_ptr`; b and h broadcast when their extent is 1.
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row index.
    /// @return The index r such that the row spans `col_idx[row_ptr[r] .. row_ptr[r + 1])`.
    index_t row_index(index_t b, index_t h, index_t i) const {
        return ((batch == 1 ? 0 : b) * heads + (heads == 1 ? 0 : h)) * rows + i;
    }

    /// Checks the structure; throws deq::shape_error for wrong extents or array sizes and
    /// deq::invalid_argument (naming the array and position) for out-of-range or unordered entries.
    void validate() const {
        if (batch < 1 || heads < 1 || rows < 0 || cols < 0) {
            detail::throw_shape_error(detail::concat("csr extents [", batch, ", ", heads, ", ", rows, ", ", cols,
                                                     "]: batch and heads must be >= 1, rows and cols >= 0"));
        }
        detail::checked_size("csr", {batch, heads, rows, cols});
        if (row_ptr.empty() || static_cast<index_t>(row_ptr.size() - 1) != row_count()) {
            detail::throw_shape_error(detail::concat("csr.row_ptr has ", row_ptr.size(), " entries, expected ",
                                                     row_count(), " + 1"));
        }
        if (row_ptr.front() != 0) detail::throw_invalid_argument("csr.row_ptr[0]", row_ptr.front(), "must be 0");
        if (row_ptr.back() != nnz()) {
            detail::throw_invalid_argument(detail::concat("csr.row_ptr[", row_count(), "]"), row_ptr.back(),
                                           detail::concat("must equal col_idx.size() = ", nnz()));
        }
        for (index_t r = 0; r < row_count(); ++r) {
            auto const begin = row_ptr[static_cast<std::size_t>(r)];
            auto const end = row_ptr[static_cast<std::size_t>(r + 1)];
            if (end < begin) {
                detail::throw_invalid_argument(detail::concat("csr.row_ptr[", r + 1, "]"), end,
                                               detail::concat("must be >= row_ptr[", r, "] = ", begin));
            }
            for (index_t k = begin; k < end; ++k) {
                auto const c = col_idx[static_cast<std::size_t>(k)];
                bool const ordered = k == begin || c > col_idx[static_cast<std::size_t>(k - 1)];
                if (c < 0 || c >= cols || !ordered) {
                    detail::throw_invalid_argument(detail::concat("csr.col_idx[", k, "]"), c,
                                                   detail::concat("must be in [0, ", cols,
                                                                  ") and increase within row ", r));
                }
            }
        }
    }

    /// Equality of extents and arrays.
    /// @param a First CSR mask.
    /// @param b Second CSR mask.
    friend bool operator==(csr const& a, csr const& b) = default;
};

namespace detail {

/// Kernel: number of set bits of stored row r.
struct csr_count_kernel {
    const_bit_mask_view mask;
    index_t* counts;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        std::uint64_t const* row = mask.words() + r * mask.words_per_row();
        index_t n = 0;
        for (index_t w = 0; w < mask.words_per_row(); ++w) n += bits::popcount(row[w]);
        counts[r] = n;
    }
};

/// Kernel: writes the column indices of stored row r.
struct csr_fill_kernel {
    const_bit_mask_view mask;
    index_t const* row_ptr;
    index_t* col_idx;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        std::uint64_t const* row = mask.words() + r * mask.words_per_row();
        index_t pos = row_ptr[r];
        for (index_t w = 0; w < mask.words_per_row(); ++w) {
            for (std::uint64_t x = row[w]; x != 0; x &= x - 1) col_idx[pos++] = w * mask_word_bits + bits::lowest(x);
        }
    }
};

/// Kernel: sets the bits of stored row r from CSR arrays.
struct csr_scatter_kernel {
    bit_mask_view out;
    index_t const* row_ptr;
    index_t const* col_idx;
    DEQ_HOST_DEVICE void operator()(index_t r) const {
        std::uint64_t* row = out.words() + r * out.words_per_row();
        for (index_t k = row_ptr[r]; k < row_ptr[r + 1]; ++k) {
            row[col_idx[k] / mask_word_bits] |= std::uint64_t{1} << (col_idx[k] % mask_word_bits);
        }
    }
};

}  // namespace detail

/// Converts a bit mask to CSR (rows counted, then filled, in parallel on @p space).
/// @tparam Space A host execution space.
/// @param space Execution space running the per-row kernels.
/// @param mask  The mask; its stored batch/head extents are kept.
/// @return The CSR form of @p mask.
template <exec::host_execution_space Space>
csr to_csr(Space const& space, const_bit_mask_view mask) {
    detail::check_mask_view(mask);
    csr out;
    out.batch = mask.batch();
    out.heads = mask.heads();
    out.rows = mask.rows();
    out.cols = mask.cols();
    index_t const n = out.row_count();
    out.row_ptr.assign(static_cast<std::size_t>(n + 1), 0);
    exec::parallel_for(space, n, detail::csr_count_kernel{mask, out.row_ptr.data()});
    detail::bits::exclusive_scan(out.row_ptr);
    out.col_idx.assign(static_cast<std::size_t>(out.row_ptr.back()), 0);
    exec::parallel_for(space, n, detail::csr_fill_kernel{mask, out.row_ptr.data(), out.col_idx.data()});
    return out;
}

/// Converts CSR back to a bit mask of the same extents (validates @p m first).
/// @tparam Space A host execution space.
/// @param space Execution space running the per-row kernel.
/// @param m     The CSR mask.
/// @return The bit mask of @p m.
template <exec::host_execution_space Space>
bit_mask to_bit_mask(Space const& space, csr const& m) {
    m.validate();
    bit_mask out(m.batch, m.heads, m.rows, m.cols);
    exec::parallel_for(space, m.row_count(), detail::csr_scatter_kernel{out.view(), m.row_ptr.data(), m.col_idx.data()});
    return out;
}

}  // namespace deq
