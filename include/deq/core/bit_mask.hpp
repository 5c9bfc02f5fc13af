/// @file
/// @brief `deq::bit_mask`: the element-wise attention mask, one bit per (batch, head, query, key).
///
/// This is the interchange format between mask generators (static patterns, Sanger's predictor
/// threshold, DEQ's refinement rules) and attention kernels. Rows are packed into 64-bit words,
/// least significant bit first. A batch or head extent of 1 broadcasts over that dimension, so a
/// static pattern shared by all heads and sequences is stored once.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "checked_size.hpp"
#include "error.hpp"
#include "tensor.hpp"

namespace deq {

/// Number of mask bits per storage word.
inline constexpr index_t mask_word_bits = 64;

/// Storage words of one packed row of @p cols bits (exact for every cols >= 0, no overflow).
/// @param cols Number of columns.
/// @return ceil(cols / 64).
DEQ_HOST_DEVICE constexpr index_t mask_words_per_row(index_t cols) {
    return cols / mask_word_bits + (cols % mask_word_bits != 0 ? 1 : 0);
}

namespace detail {
/// Tag of the unchecked bit-mask view constructor (extents already validated by the owner).
struct unchecked_extents_t {};
}  // namespace detail

/// Non-owning view of a bit mask; trivially copyable and usable inside kernels.
/// @tparam Word `std::uint64_t` for a mutable view or `std::uint64_t const` for a read-only one.
template <class Word>
class basic_bit_mask_view {
public:
    /// An empty view.
    constexpr basic_bit_mask_view() = default;
    /// A view of packed words.
    /// @param words   Packed rows, `words_per_row()` words each, rows ordered (batch, head, row).
    /// @param batch   Batch extent (1 broadcasts over the batch).
    /// @param heads   Head extent (1 broadcasts over heads).
    /// @param rows    Number of query rows.
    /// @param cols    Number of key columns.
    /// @throws deq::shape_error for a negative extent or extents whose bit count does not fit index_t.
    constexpr basic_bit_mask_view(Word* words, index_t batch, index_t heads, index_t rows, index_t cols)
        : basic_bit_mask_view(words, batch, heads, rows, cols, detail::unchecked_extents_t{}) {
        detail::checked_size("bit_mask_view", {batch, heads, rows, cols});
    }
    /// A view of packed words whose extents the caller has already validated (internal).
    /// @param words   Packed rows.
    /// @param batch   Batch extent.
    /// @param heads   Head extent.
    /// @param rows    Number of query rows.
    /// @param cols    Number of key columns.
    DEQ_HOST_DEVICE constexpr basic_bit_mask_view(Word* words, index_t batch, index_t heads, index_t rows, index_t cols,
                                                  detail::unchecked_extents_t)
        : words_(words), batch_(batch), heads_(heads), rows_(rows), cols_(cols), words_per_row_(mask_words_per_row(cols)) {}

    /// Conversion of a mutable view to a read-only one.
    /// @tparam W Word type of the source view.
    /// @param other The mutable view.
    template <class W>
        requires(std::is_same_v<W const, Word> && !std::is_same_v<W, Word>)
    DEQ_HOST_DEVICE constexpr basic_bit_mask_view(basic_bit_mask_view<W> const& other)
        : basic_bit_mask_view(other.words(), other.batch(), other.heads(), other.rows(), other.cols(),
                              detail::unchecked_extents_t{}) {}

    /// @return Batch extent (1 means broadcast).
    DEQ_HOST_DEVICE constexpr index_t batch() const { return batch_; }
    /// @return Head extent (1 means broadcast).
    DEQ_HOST_DEVICE constexpr index_t heads() const { return heads_; }
    /// @return Number of query rows.
    DEQ_HOST_DEVICE constexpr index_t rows() const { return rows_; }
    /// @return Number of key columns.
    DEQ_HOST_DEVICE constexpr index_t cols() const { return cols_; }
    /// @return Storage words per row.
    DEQ_HOST_DEVICE constexpr index_t words_per_row() const { return words_per_row_; }
    /// @return Pointer to the packed storage.
    DEQ_HOST_DEVICE constexpr Word* words() const { return words_; }
    /// @return True when the view is empty (no storage).
    DEQ_HOST_DEVICE constexpr bool empty() const { return words_ == nullptr; }

    /// Pointer to the first word of row (b, h, i); b and h broadcast when their extent is 1.
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row (query) index.
    /// @return Pointer to the row's first word.
    DEQ_HOST_DEVICE constexpr Word* row(index_t b, index_t h, index_t i) const {
        index_t const bb = batch_ == 1 ? 0 : b;
        index_t const hh = heads_ == 1 ? 0 : h;
        return words_ + ((bb * heads_ + hh) * rows_ + i) * words_per_row_;
    }
    /// Value of bit (b, h, i, j).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row (query) index.
    /// @param j Column (key) index.
    /// @return The bit.
    DEQ_HOST_DEVICE constexpr bool test(index_t b, index_t h, index_t i, index_t j) const {
        return (row(b, h, i)[j / mask_word_bits] >> (j % mask_word_bits)) & 1u;
    }
    /// Sets bit (b, h, i, j) to @p value (mutable views only; not atomic).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row (query) index.
    /// @param j Column (key) index.
    /// @param value New value of the bit.
    DEQ_HOST_DEVICE constexpr void set(index_t b, index_t h, index_t i, index_t j, bool value) const
        requires(!std::is_const_v<Word>)
    {
        Word& w = row(b, h, i)[j / mask_word_bits];
        std::uint64_t const bit = std::uint64_t{1} << (j % mask_word_bits);
        w = value ? (w | bit) : (w & ~bit);
    }
    /// Number of set bits in row (b, h, i).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row (query) index.
    /// @return The count.
    DEQ_HOST_DEVICE constexpr index_t count_row(index_t b, index_t h, index_t i) const {
        Word const* r = row(b, h, i);
        index_t n = 0;
        for (index_t w = 0; w < words_per_row_; ++w) n += popcount64(r[w]);
        return n;
    }

private:
    DEQ_HOST_DEVICE static constexpr index_t popcount64(std::uint64_t x) {
#if DEQ_DEVICE_PASS
        return __popcll(x);
#else
        return std::popcount(x);
#endif
    }

    Word* words_ = nullptr;
    index_t batch_ = 0, heads_ = 0, rows_ = 0, cols_ = 0, words_per_row_ = 0;
};

/// Mutable bit-mask view.
using bit_mask_view = basic_bit_mask_view<std::uint64_t>;
/// Read-only bit-mask view.
using const_bit_mask_view = basic_bit_mask_view<std::uint64_t const>;

/// Owning host bit mask of shape [batch, heads, rows, cols]; bits beyond `cols` in the last word are zero.
class bit_mask {
public:
    /// An empty mask.
    bit_mask() = default;
    /// A mask with every bit set to @p value.
    /// @param batch Batch extent (1 broadcasts over the batch).
    /// @param heads Head extent (1 broadcasts over heads).
    /// @param rows  Number of query rows.
    /// @param cols  Number of key columns.
    /// @param value Initial value of every bit.
    /// @throws deq::shape_error for extents out of range or whose bit count does not fit index_t.
    bit_mask(index_t batch, index_t heads, index_t rows, index_t cols, bool value = false)
        : batch_(batch), heads_(heads), rows_(rows), cols_(cols) {
        if (batch < 1 || heads < 1 || rows < 0 || cols < 0) {
            detail::throw_shape_error(detail::concat("bit_mask extents [", batch, ", ", heads, ", ", rows, ", ", cols,
                                                     "]: batch and heads must be >= 1, rows and cols >= 0"));
        }
        detail::checked_size("bit_mask", {batch, heads, rows, cols});
        index_t const words = batch * heads * rows * words_per_row();  // <= the bit count, which fits
        words_.assign(detail::checked_bytes("bit_mask", words, sizeof(std::uint64_t)) / sizeof(std::uint64_t), 0);
        if (value) fill(true);
    }

    /// @return Batch extent.
    index_t batch() const { return batch_; }
    /// @return Head extent.
    index_t heads() const { return heads_; }
    /// @return Number of rows.
    index_t rows() const { return rows_; }
    /// @return Number of columns.
    index_t cols() const { return cols_; }
    /// @return Storage words per row.
    index_t words_per_row() const { return mask_words_per_row(cols_); }
    /// @return True when the mask has no storage.
    bool empty() const { return words_.empty(); }

    /// @return A mutable view.
    bit_mask_view view() { return {words_.data(), batch_, heads_, rows_, cols_, detail::unchecked_extents_t{}}; }
    /// @return A read-only view.
    const_bit_mask_view view() const { return {words_.data(), batch_, heads_, rows_, cols_, detail::unchecked_extents_t{}}; }

    /// Value of bit (b, h, i, j).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row index.
    /// @param j Column index.
    /// @return The bit.
    bool test(index_t b, index_t h, index_t i, index_t j) const { return view().test(b, h, i, j); }
    /// Sets bit (b, h, i, j).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row index.
    /// @param j Column index.
    /// @param value New value.
    void set(index_t b, index_t h, index_t i, index_t j, bool value = true) { view().set(b, h, i, j, value); }

    /// Sets every bit inside the shape to @p value.
    /// @param value New value of every bit.
    void fill(bool value) {
        for (auto& w : words_) w = value ? ~std::uint64_t{0} : 0;
        if (value && cols_ % mask_word_bits != 0) {
            std::uint64_t const tail = (std::uint64_t{1} << (cols_ % mask_word_bits)) - 1;
            index_t const wpr = words_per_row();
            for (index_t r = 0; r < batch_ * heads_ * rows_; ++r) words_[static_cast<std::size_t>(r * wpr + wpr - 1)] = tail;
        }
    }

    /// @return Total number of set bits over the stored (non-broadcast) extents.
    index_t count() const {
        index_t n = 0;
        for (auto w : words_) n += std::popcount(w);
        return n;
    }

    /// @return The packed storage.
    std::vector<std::uint64_t> const& words() const { return words_; }

    /// Bitwise equality of shape and contents.
    /// @param a First mask.
    /// @param b Second mask.
    /// @return True when equal.
    friend bool operator==(bit_mask const& a, bit_mask const& b) = default;

private:
    index_t batch_ = 0, heads_ = 0, rows_ = 0, cols_ = 0;
    std::vector<std::uint64_t> words_;
};

/// The mask as a dense tensor of its stored extents [batch, heads, rows, cols] (broadcast extents stay 1):
/// 1 / true where the bit is set.
/// @tparam T std::uint8_t (0/1) or bool.
/// @param m The mask view.
/// @return The dense copy.
template <class T = std::uint8_t>
    requires(std::is_same_v<T, std::uint8_t> || std::is_same_v<T, bool>)
tensor<T, 4> to_dense(const_bit_mask_view m) {
    tensor<T, 4> out({m.batch(), m.heads(), m.rows(), m.cols()});
    for (index_t b = 0; b < m.batch(); ++b)
        for (index_t h = 0; h < m.heads(); ++h)
            for (index_t i = 0; i < m.rows(); ++i)
                for (index_t j = 0; j < m.cols(); ++j) out(b, h, i, j) = static_cast<T>(m.test(b, h, i, j));
    return out;
}

/// A bit mask from a dense [batch, heads, rows, cols] tensor: a bit is set where the element is non-zero.
/// @tparam T Element type (an integer type or bool).
/// @param dense The dense mask (any strides).
/// @return The bit mask.
/// @throws deq::shape_error when batch or heads is 0 (or the size overflows).
template <class T>
    requires std::is_integral_v<std::remove_cv_t<T>>
bit_mask from_dense(tensor_view<T const, 4> dense) {
    bit_mask out(dense.extent(0), dense.extent(1), dense.extent(2), dense.extent(3));
    for (index_t b = 0; b < dense.extent(0); ++b)
        for (index_t h = 0; h < dense.extent(1); ++h)
            for (index_t i = 0; i < dense.extent(2); ++i)
                for (index_t j = 0; j < dense.extent(3); ++j)
                    if (dense(b, h, i, j) != T(0)) out.set(b, h, i, j);
    return out;
}

}  // namespace deq
