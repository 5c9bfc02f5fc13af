/// @file
/// @brief `deq::tensor_view` (non-owning strided view) and `deq::tensor` (owning host tensor).
///
/// Attention operands use the layout [batch, heads, length, head_dim] (keys are *not* transposed).
/// Views are trivially copyable and usable inside kernels on every execution space; `tensor` owns
/// host memory and hands out views.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "checked_size.hpp"
#include "error.hpp"

namespace deq {

/// A non-owning, strided, row-major-by-default view of a rank-@p Rank array.
/// @tparam T    Element type (may be const-qualified).
/// @tparam Rank Number of dimensions (at least 1).
template <class T, int Rank>
class tensor_view {
    static_assert(Rank >= 1, "deq::tensor_view needs rank >= 1");

public:
    /// The element type, cv-qualified as given.
    using element_type = T;
    /// The element type without cv qualifiers.
    using value_type = std::remove_cv_t<T>;
    /// Number of dimensions.
    static constexpr int rank = Rank;

    /// An empty view (null data, all extents zero).
    constexpr tensor_view() = default;

    /// A contiguous row-major view of @p data with the given extents.
    /// @param data    Pointer to the first element.
    /// @param extents The extent of each dimension, outermost first.
    /// @throws deq::shape_error for a wrong number of extents, a negative extent, or extents whose
    ///         product (of the non-zero ones) does not fit index_t.
    constexpr tensor_view(T* data, std::initializer_list<index_t> extents) : data_(data) {
        assign_extents(extents);
        detail::checked_size("tensor_view", std::span<index_t const>(extents_, Rank));
        index_t s = 1;
        for (int r = Rank - 1; r >= 0; --r) {
            strides_[r] = s;
            s *= extents_[r];  // cannot overflow: checked_size() bounded the product
        }
    }

    /// A strided view of @p data.
    /// @param data    Pointer to the element at index (0, ..., 0).
    /// @param extents The extent of each dimension, outermost first.
    /// @param strides The distance in elements between neighbours along each dimension.
    /// @throws deq::shape_error for a wrong number of extents or strides, a negative extent, extents
    ///         whose product does not fit index_t, or strides that reach offsets beyond index_t.
    constexpr tensor_view(T* data, std::initializer_list<index_t> extents, std::initializer_list<index_t> strides)
        : data_(data) {
        assign_extents(extents);
        if (static_cast<int>(strides.size()) != Rank) {
            detail::throw_shape_error(detail::concat("tensor_view of rank ", Rank, " given ", strides.size(), " strides"));
        }
        int r = 0;
        for (index_t s : strides) strides_[r++] = s;
        detail::checked_size("tensor_view", std::span<index_t const>(extents_, Rank));
        detail::checked_span("tensor_view", std::span<index_t const>(extents_, Rank), std::span<index_t const>(strides_, Rank));
    }

    /// Implicit conversion from a view of non-const elements to a view of const elements.
    /// @tparam U Element type of the source view.
    /// @param other The source view.
    template <class U>
        requires(std::is_same_v<std::remove_const_t<T>, U> && std::is_const_v<T>)
    constexpr tensor_view(tensor_view<U, Rank> const& other) : data_(other.data()) {
        for (int r = 0; r < Rank; ++r) {
            extents_[r] = other.extent(r);
            strides_[r] = other.stride(r);
        }
    }

    /// @return Pointer to the element at index (0, ..., 0).
    DEQ_HOST_DEVICE constexpr T* data() const { return data_; }
    /// Extent of dimension @p r.
    /// @param r Dimension index in [0, Rank).
    /// @return The extent.
    DEQ_HOST_DEVICE constexpr index_t extent(int r) const { return extents_[r]; }
    /// Stride (in elements) of dimension @p r.
    /// @param r Dimension index in [0, Rank).
    /// @return The stride.
    DEQ_HOST_DEVICE constexpr index_t stride(int r) const { return strides_[r]; }
    /// @return Number of elements (product of the extents).
    DEQ_HOST_DEVICE constexpr index_t size() const {
        index_t n = 1;
        for (int r = 0; r < Rank; ++r) n *= extents_[r];
        return n;
    }
    /// @return True when the view holds no element.
    DEQ_HOST_DEVICE constexpr bool empty() const { return size() == 0; }

    /// @return True when the elements are laid out contiguously in row-major order.
    DEQ_HOST_DEVICE constexpr bool is_contiguous() const {
        index_t s = 1;
        for (int r = Rank - 1; r >= 0; --r) {
            if (extents_[r] != 1 && strides_[r] != s) return false;
            s *= extents_[r];
        }
        return true;
    }

    /// Element access.
    /// @tparam Int Integral index types, one per dimension.
    /// @param idx One index per dimension, outermost first.
    /// @return Reference to the element.
    template <class... Int>
        requires(sizeof...(Int) == Rank && (std::is_integral_v<Int> && ...))
    DEQ_HOST_DEVICE constexpr T& operator()(Int... idx) const {
        index_t const ids[Rank] = {static_cast<index_t>(idx)...};
        index_t off = 0;
        for (int r = 0; r < Rank; ++r) off += ids[r] * strides_[r];
        return data_[off];
    }

    /// @return The shape as a printable string, e.g. "[2, 12, 128, 64]".
    std::string shape_string() const {
        std::string s = "[";
        for (int r = 0; r < Rank; ++r) {
            if (r) s += ", ";
            s += std::to_string(extents_[r]);
        }
        return s + "]";
    }

private:
    constexpr void assign_extents(std::initializer_list<index_t> extents) {
        if (static_cast<int>(extents.size()) != Rank) {
            detail::throw_shape_error(detail::concat("tensor_view of rank ", Rank, " given ", extents.size(), " extents"));
        }
        int r = 0;
        for (index_t e : extents) {
            if (e < 0) detail::throw_shape_error(detail::concat("negative extent ", e, " in dimension ", r));
            extents_[r++] = e;
        }
    }

    T* data_ = nullptr;
    index_t extents_[Rank] = {};
    index_t strides_[Rank] = {};
};

namespace detail {

/// Contiguous storage of `bool` elements for deq::tensor<bool, R> (std::vector<bool> packs bits and
/// has no data()); offers the members of std::vector that tensor's users rely on.
class bool_storage {
public:
    /// The element type.
    using value_type = bool;
    /// Iterator over the elements.
    using iterator = bool*;
    /// Read-only iterator over the elements.
    using const_iterator = bool const*;

    bool_storage() = default;
    /// Copies another buffer.
    /// @param other The source.
    bool_storage(bool_storage const& other) { *this = other; }
    bool_storage(bool_storage&&) noexcept = default;
    /// Copies another buffer.
    /// @param other The source.
    /// @return This buffer.
    bool_storage& operator=(bool_storage const& other) {
        if (this != &other) {
            assign(other.size_, false);
            std::copy(other.begin(), other.end(), begin());
        }
        return *this;
    }
    bool_storage& operator=(bool_storage&&) noexcept = default;

    /// Replaces the contents by @p n copies of @p value.
    /// @param n     Element count.
    /// @param value Element value.
    void assign(std::size_t n, bool value) {
        data_ = n == 0 ? nullptr : std::make_unique<bool[]>(n);
        size_ = n;
        std::fill(begin(), end(), value);
    }
    /// @return Number of elements.
    std::size_t size() const noexcept { return size_; }
    /// @return True when there is no element.
    bool empty() const noexcept { return size_ == 0; }
    /// @return Pointer to the first element.
    bool* data() noexcept { return data_.get(); }
    /// @return Pointer to the first element.
    bool const* data() const noexcept { return data_.get(); }
    /// @return Iterator to the first element.
    bool* begin() noexcept { return data(); }
    /// @return Iterator past the last element.
    bool* end() noexcept { return data() + size_; }
    /// @return Iterator to the first element.
    bool const* begin() const noexcept { return data(); }
    /// @return Iterator past the last element.
    bool const* end() const noexcept { return data() + size_; }
    /// @param i Element index.
    /// @return Element @p i.
    bool& operator[](std::size_t i) noexcept { return data_[i]; }
    /// @param i Element index.
    /// @return Element @p i.
    bool const& operator[](std::size_t i) const noexcept { return data_[i]; }
    /// Element-wise equality.
    /// @param a First buffer.
    /// @param b Second buffer.
    /// @return True when sizes and elements agree.
    friend bool operator==(bool_storage const& a, bool_storage const& b) {
        return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
    }

private:
    std::unique_ptr<bool[]> data_;
    std::size_t size_ = 0;
};

}  // namespace detail

/// The storage of a deq::tensor<T, R>: std::vector<T>, except detail::bool_storage for bool.
/// @tparam T Element type.
template <class T>
using tensor_storage_t = std::conditional_t<std::is_same_v<T, bool>, detail::bool_storage, std::vector<T>>;

/// An owning, contiguous, row-major host tensor.
/// @tparam T    Element type.
/// @tparam Rank Number of dimensions.
template <class T, int Rank>
class tensor {
public:
    /// The element type.
    using value_type = T;
    /// Number of dimensions.
    static constexpr int rank = Rank;

    /// An empty tensor.
    tensor() = default;

    /// A tensor with the given extents, every element set to @p fill.
    /// @param extents The extent of each dimension, outermost first.
    /// @param fill    Initial value of every element.
    /// @throws deq::shape_error for a wrong number of extents, a negative extent, or extents whose
    ///         product (of the non-zero ones) does not fit index_t or whose bytes exceed any allocation.
    explicit tensor(std::initializer_list<index_t> extents, T const& fill = T{}) {
        if (static_cast<int>(extents.size()) != Rank) {
            detail::throw_shape_error(detail::concat("tensor of rank ", Rank, " given ", extents.size(), " extents"));
        }
        index_t const n = detail::checked_size("tensor", extents);
        detail::checked_bytes("tensor", n, sizeof(T));
        int r = 0;
        for (index_t e : extents) extents_[r++] = e;
        data_.assign(static_cast<std::size_t>(n), fill);
    }

    /// @return A mutable view of the whole tensor.
    tensor_view<T, Rank> view() { return make_view<T>(data_.data()); }
    /// @return A read-only view of the whole tensor.
    tensor_view<T const, Rank> view() const { return make_view<T const>(data_.data()); }
    /// @return A read-only view of the whole tensor.
    tensor_view<T const, Rank> cview() const { return view(); }

    /// @return Pointer to the first element.
    T* data() { return data_.data(); }
    /// @return Pointer to the first element.
    T const* data() const { return data_.data(); }
    /// Extent of dimension @p r.
    /// @param r Dimension index in [0, Rank).
    /// @return The extent.
    index_t extent(int r) const { return extents_[r]; }
    /// @return Number of elements.
    index_t size() const { return static_cast<index_t>(data_.size()); }
    /// @return The element storage (std::vector<T>; see deq::tensor_storage_t).
    tensor_storage_t<T>& storage() { return data_; }
    /// @return The element storage (std::vector<T>; see deq::tensor_storage_t).
    tensor_storage_t<T> const& storage() const { return data_; }

    /// Element access.
    /// @tparam Int Integral index types, one per dimension.
    /// @param idx One index per dimension.
    /// @return Reference to the element.
    template <class... Int>
    T& operator()(Int... idx) {
        return view()(idx...);
    }
    /// Element access.
    /// @tparam Int Integral index types, one per dimension.
    /// @param idx One index per dimension.
    /// @return Reference to the element.
    template <class... Int>
    T const& operator()(Int... idx) const {
        return view()(idx...);
    }

private:
    template <class U>
    tensor_view<U, Rank> make_view(U* p) const {
        tensor_view<U, Rank> v;
        v = build<U>(p, std::make_integer_sequence<int, Rank>{});
        return v;
    }
    template <class U, int... R>
    tensor_view<U, Rank> build(U* p, std::integer_sequence<int, R...>) const {
        return tensor_view<U, Rank>(p, {extents_[R]...});
    }

    tensor_storage_t<T> data_;
    index_t extents_[Rank] = {};
};

}  // namespace deq
