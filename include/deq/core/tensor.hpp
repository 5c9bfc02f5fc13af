/// @file
/// @brief `deq::tensor_view` (non-owning strided view) and `deq::tensor` (owning host tensor).
///
/// Attention operands use the layout [batch, heads, length, head_dim] (keys are *not* transposed).
/// Views are trivially copyable and usable inside kernels on every execution space; `tensor` owns
/// host memory and hands out views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "error.hpp"

namespace deq {

/// Signed index type used for every extent, stride and offset.
using index_t = std::int64_t;

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
    constexpr tensor_view(T* data, std::initializer_list<index_t> extents) : data_(data) {
        assign_extents(extents);
        index_t s = 1;
        for (int r = Rank - 1; r >= 0; --r) {
            strides_[r] = s;
            s *= extents_[r];
        }
    }

    /// A strided view of @p data.
    /// @param data    Pointer to the element at index (0, ..., 0).
    /// @param extents The extent of each dimension, outermost first.
    /// @param strides The distance in elements between neighbours along each dimension.
    constexpr tensor_view(T* data, std::initializer_list<index_t> extents, std::initializer_list<index_t> strides)
        : data_(data) {
        assign_extents(extents);
        if (static_cast<int>(strides.size()) != Rank) {
            detail::throw_shape_error(detail::concat("tensor_view of rank ", Rank, " given ", strides.size(), " strides"));
        }
        int r = 0;
        for (index_t s : strides) strides_[r++] = s;
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
    explicit tensor(std::initializer_list<index_t> extents, T const& fill = T{}) {
        if (static_cast<int>(extents.size()) != Rank) {
            detail::throw_shape_error(detail::concat("tensor of rank ", Rank, " given ", extents.size(), " extents"));
        }
        index_t n = 1;
        int r = 0;
        for (index_t e : extents) {
            if (e < 0) detail::throw_shape_error(detail::concat("negative extent ", e, " in dimension ", r));
            extents_[r++] = e;
            n *= e;
        }
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
    /// @return The element storage.
    std::vector<T>& storage() { return data_; }
    /// @return The element storage.
    std::vector<T> const& storage() const { return data_; }

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

    std::vector<T> data_;
    index_t extents_[Rank] = {};
};

}  // namespace deq
