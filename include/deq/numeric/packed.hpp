/// @file
/// @brief Dense storage of sub-byte integers: `deq::packed_view`, `deq::packed_array`,
/// `deq::pack` and `deq::unpack`.
///
/// **Layout.** Element i of a packed sequence of `Format = int_b<Bits, Signed>` values occupies bits
/// [i·Bits, (i+1)·Bits) of a little-endian bit stream: stream bit k is bit (k mod 8) of byte
/// ⌊k/8⌋, and the element's encoding (two's complement when signed) is stored least significant bit
/// first. So two int4 values share a byte with element 2j in the low nibble of byte j; four int2
/// values share a byte; int3/5/6/7 values straddle byte boundaries; 8-bit values are plain bytes
/// and 16-bit values little-endian byte pairs. n elements take ⌈n·Bits/8⌉ bytes; the unused high
/// bits of the last byte are zero.
///
/// **Concurrency.** Writing two elements that share a byte is a data race. Groups of
/// `packed_layout<Format>::group_elements` consecutive elements starting at a multiple of that
/// number occupy whole bytes of their own; pack() and unpack() give each work item one such group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "int_b.hpp"

namespace deq {

/// Constants of the packed layout of @p Format.
/// @tparam Format An int_b type.
template <int_b_type Format>
struct packed_layout {
    /// Bits per element.
    static constexpr int bits = std::remove_cv_t<Format>::bits;
    /// Smallest number of consecutive elements that fills whole bytes (2 for 4 bits, 8 for 3 bits).
    static constexpr index_t group_elements = 8 / std::gcd(8, bits);
    /// Bytes occupied by one group of group_elements elements (bits / gcd(8, bits)).
    static constexpr index_t group_bytes = bits / std::gcd(8, bits);
    /// Bytes needed for @p n elements: ⌈n·bits/8⌉.
    /// @param n Number of elements (>= 0).
    /// @return ⌈n·bits/8⌉, the number of bytes @p n elements occupy.
    DEQ_HOST_DEVICE static constexpr index_t bytes_for(index_t n) noexcept { return n / 8 * bits + (n % 8 * bits + 7) / 8; }
    /// The largest element count whose byte count bytes_for() can represent in index_t.
    static constexpr index_t max_elements =
        bits <= 8 ? std::numeric_limits<index_t>::max() : ((std::numeric_limits<index_t>::max() - bits) / bits) * 8;
};

/// A non-owning view of @p Format values packed densely in bytes (see the file documentation for
/// the layout). Trivially copyable; usable in kernels.
/// @tparam Format An int_b type; `int_b<...> const` gives a read-only view.
template <class Format>
    requires int_b_type<Format>
class packed_view {
public:
    /// The int_b type without cv qualifiers.
    using value_type = std::remove_cv_t<Format>;
    /// Byte type: `std::uint8_t`, const for a read-only view.
    using byte_type = std::conditional_t<std::is_const_v<Format>, std::uint8_t const, std::uint8_t>;
    /// Bits per element.
    static constexpr int bits = value_type::bits;

    /// An empty view.
    constexpr packed_view() = default;

    /// A view of @p size elements stored from @p bytes on (at least bytes_for(size) bytes).
    /// @param bytes First byte.
    /// @param size  Number of elements.
    DEQ_HOST_DEVICE constexpr packed_view(byte_type* bytes, index_t size) noexcept : bytes_(bytes), size_(size) {}

    /// Implicit conversion from a mutable view to a read-only view.
    /// @tparam U The mutable int_b type.
    /// @param other The mutable view.
    template <class U>
        requires(std::is_const_v<Format> && std::is_same_v<U, value_type>)
    DEQ_HOST_DEVICE constexpr packed_view(packed_view<U> const& other) noexcept
        : bytes_(other.bytes()), size_(other.size()) {}

    /// Number of elements.
    /// @return The number of elements.
    DEQ_HOST_DEVICE constexpr index_t size() const noexcept { return size_; }
    /// Number of bytes the elements occupy, ⌈size·bits/8⌉.
    /// @return ⌈size()·bits/8⌉.
    DEQ_HOST_DEVICE constexpr index_t byte_size() const noexcept { return packed_layout<value_type>::bytes_for(size_); }
    /// First byte.
    /// @return Pointer to the first byte (nullptr for a default-constructed view).
    DEQ_HOST_DEVICE constexpr byte_type* bytes() const noexcept { return bytes_; }

    /// Element @p i.
    /// @param i Index in [0, size()).
    /// @return The value of element @p i, decoded from its @p Bits-bit encoding.
    DEQ_HOST_DEVICE constexpr value_type get(index_t i) const noexcept {
        index_t const bit = i * bits;
        index_t const first = bit >> 3;
        int const shift = static_cast<int>(bit & 7);
        int const span = (shift + bits + 7) / 8;  // bytes touched: at most 3
        std::uint32_t word = 0;
        for (int k = 0; k < span; ++k) word |= static_cast<std::uint32_t>(bytes_[first + k]) << (8 * k);
        return value_type::from_encoding(word >> shift);
    }

    /// Sets element @p i to @p v (read-modify-write of the bytes it touches; see the file
    /// documentation for concurrent writers).
    /// @param i Index in [0, size()).
    /// @param v Value.
    DEQ_HOST_DEVICE constexpr void set(index_t i, value_type v) const noexcept
        requires(!std::is_const_v<Format>)
    {
        index_t const bit = i * bits;
        index_t const first = bit >> 3;
        int const shift = static_cast<int>(bit & 7);
        int const span = (shift + bits + 7) / 8;
        std::uint32_t const mask = value_type::encoding_mask << shift;
        std::uint32_t const enc = v.encoding() << shift;
        for (int k = 0; k < span; ++k) {
            auto const m = static_cast<std::uint8_t>(mask >> (8 * k));
            auto const e = static_cast<std::uint8_t>(enc >> (8 * k));
            bytes_[first + k] = static_cast<std::uint8_t>((bytes_[first + k] & ~m) | (e & m));
        }
    }

    /// Element @p i (same as get()).
    /// @param i Index in [0, size()).
    /// @return The value of element @p i.
    DEQ_HOST_DEVICE constexpr value_type operator[](index_t i) const noexcept { return get(i); }

private:
    byte_type* bytes_ = nullptr;
    index_t size_ = 0;
};

/// An owning host array of @p Format values packed densely (see the file documentation for the
/// layout). New arrays hold zeros; padding bits of the last byte stay zero.
/// @tparam Format An int_b type.
template <int_b_type Format>
class packed_array {
    static_assert(!std::is_const_v<Format>, "packed_array owns mutable storage: use a non-const int_b");

public:
    /// The element type.
    using value_type = Format;
    /// Bits per element.
    static constexpr int bits = Format::bits;

    /// An empty array.
    packed_array() = default;

    /// @p size elements, every one set to @p fill.
    /// @param size Number of elements (>= 0).
    /// @param fill Initial value.
    explicit packed_array(index_t size, Format fill = Format{}) : size_(size) {
        if (size < 0) detail::throw_invalid_argument("size", size, "must be >= 0");
        if (size > packed_layout<Format>::max_elements) {
            throw shape_error(detail::concat("deq: size overflow: packed_array of ", size, " elements of ", bits,
                                             " bits has more bytes than index_t can count"));
        }
        bytes_.assign(detail::checked_bytes("packed_array", packed_layout<Format>::bytes_for(size), 1), std::uint8_t{0});
        if (fill != Format{}) {
            for (index_t i = 0; i < size; ++i) view().set(i, fill);
        }
    }

    /// Packs @p values.
    /// @param values Values in element order.
    /// @return An array of `values.size()` elements holding @p values.
    static packed_array pack(std::span<Format const> values) {
        packed_array a(static_cast<index_t>(values.size()));
        auto v = a.view();
        for (index_t i = 0; i < a.size(); ++i) v.set(i, values[static_cast<std::size_t>(i)]);
        return a;
    }

    /// Packs integer @p levels, throwing deq::invalid_argument naming `levels[i]` and the value when
    /// one is outside [Format::min_value, Format::max_value].
    /// @param levels Values in element order.
    /// @return An array of `levels.size()` elements holding @p levels.
    static packed_array from_levels(std::span<std::int32_t const> levels) {
        packed_array a(static_cast<index_t>(levels.size()));
        auto v = a.view();
        for (std::size_t i = 0; i < levels.size(); ++i) {
            if (!Format::in_range(levels[i])) {
                detail::throw_invalid_argument(detail::concat("levels[", i, "]"), levels[i],
                                               detail::concat("must be in [", Format::min_value, ", ",
                                                              Format::max_value, "] for ", format_name<Format>()));
            }
            v.set(static_cast<index_t>(i), Format(levels[i]));
        }
        return a;
    }

    /// Unpacks every element.
    /// @return The size() elements, in element order.
    std::vector<Format> unpack() const {
        std::vector<Format> out(static_cast<std::size_t>(size_));
        auto v = view();
        for (index_t i = 0; i < size_; ++i) out[static_cast<std::size_t>(i)] = v.get(i);
        return out;
    }

    /// Unpacks every element as a 32-bit integer.
    /// @return The size() element values as 32-bit integers, in element order.
    std::vector<std::int32_t> to_levels() const {
        std::vector<std::int32_t> out(static_cast<std::size_t>(size_));
        auto v = view();
        for (index_t i = 0; i < size_; ++i) out[static_cast<std::size_t>(i)] = v.get(i).value();
        return out;
    }

    /// Number of elements.
    /// @return The number of elements.
    index_t size() const noexcept { return size_; }
    /// Number of bytes, ⌈size·bits/8⌉.
    /// @return The number of packed bytes, ⌈size()·bits/8⌉.
    index_t byte_size() const noexcept { return static_cast<index_t>(bytes_.size()); }
    /// The packed bytes.
    /// @return A read-only span over the byte_size() packed bytes.
    std::span<std::uint8_t const> bytes() const noexcept { return bytes_; }
    /// The packed bytes (mutable).
    /// @return A mutable span over the byte_size() packed bytes.
    std::span<std::uint8_t> bytes() noexcept { return bytes_; }

    /// Element @p i.
    /// @param i Index in [0, size()).
    /// @return The value of element @p i.
    Format get(index_t i) const noexcept { return cview().get(i); }
    /// Sets element @p i.
    /// @param i Index in [0, size()).
    /// @param v Value.
    void set(index_t i, Format v) noexcept { view().set(i, v); }

    /// Mutable view.
    /// @return A mutable packed_view of the size() elements (valid while the array lives and is not resized).
    packed_view<Format> view() noexcept { return packed_view<Format>(bytes_.data(), size_); }
    /// Read-only view.
    /// @return A read-only packed_view of the size() elements (valid while the array lives and is not resized).
    packed_view<Format const> view() const noexcept { return packed_view<Format const>(bytes_.data(), size_); }
    /// Read-only view.
    /// @return A read-only packed_view of the size() elements, the same as the const view().
    packed_view<Format const> cview() const noexcept { return view(); }

private:
    std::vector<std::uint8_t> bytes_;
    index_t size_ = 0;
};

namespace detail {

/// Offset of the element with row-major flat index @p flat in the strided view @p v.
template <class T, int Rank>
DEQ_HOST_DEVICE constexpr index_t flat_offset(tensor_view<T, Rank> const& v, index_t flat) noexcept {
    index_t off = 0;
    for (int r = Rank - 1; r >= 0; --r) {
        index_t const e = v.extent(r);
        off += (flat % e) * v.stride(r);
        flat /= e;
    }
    return off;
}

/// Kernel of deq::pack: work item g packs the elements of byte-aligned group g.
template <class Format, int Rank>
struct pack_kernel {
    tensor_view<Format const, Rank> src;
    packed_view<Format> dst;
    DEQ_HOST_DEVICE void operator()(index_t g) const {
        index_t const n = src.size();
        index_t const begin = g * packed_layout<Format>::group_elements;
        index_t const end = begin + packed_layout<Format>::group_elements < n ? begin + packed_layout<Format>::group_elements : n;
        for (index_t i = begin; i < end; ++i) dst.set(i, src.data()[flat_offset(src, i)]);
    }
};

/// Kernel of deq::unpack: work item i unpacks element i.
template <class Format, int Rank>
struct unpack_kernel {
    packed_view<Format const> src;
    tensor_view<Format, Rank> dst;
    DEQ_HOST_DEVICE void operator()(index_t i) const { dst.data()[flat_offset(dst, i)] = src.get(i); }
};

}  // namespace detail

/// Packs the elements of @p src, in row-major order, into @p dst (one work item per byte-aligned
/// group, so no two work items share a byte).
/// @tparam Space  Execution space.
/// @tparam Format An int_b type.
/// @tparam Rank   Rank of the source.
/// @param space Execution space instance.
/// @param src   Values (any strides).
/// @param dst   Destination; must hold exactly src.size() elements (deq::shape_error otherwise).
template <exec::execution_space Space, int_b_type Format, int Rank>
void pack(Space const& space, tensor_view<Format const, Rank> src, packed_view<Format> dst) {
    if (dst.size() != src.size()) {
        detail::throw_shape_error(detail::concat("pack: source ", src.shape_string(), " has ", src.size(),
                                                 " elements, destination holds ", dst.size()));
    }
    index_t const groups = (src.size() + packed_layout<Format>::group_elements - 1) / packed_layout<Format>::group_elements;
    exec::parallel_for(space, groups, detail::pack_kernel<Format, Rank>{src, dst});
}

/// Unpacks @p src into the elements of @p dst, in row-major order.
/// @tparam Space  Execution space.
/// @tparam Format An int_b type.
/// @tparam Rank   Rank of the destination.
/// @param space Execution space instance.
/// @param src   Packed values.
/// @param dst   Destination (any strides); must have exactly src.size() elements (deq::shape_error otherwise).
template <exec::execution_space Space, int_b_type Format, int Rank>
void unpack(Space const& space, packed_view<Format const> src, tensor_view<Format, Rank> dst) {
    if (dst.size() != src.size()) {
        detail::throw_shape_error(detail::concat("unpack: source holds ", src.size(), " elements, destination ",
                                                 dst.shape_string(), " has ", dst.size()));
    }
    exec::parallel_for(space, src.size(), detail::unpack_kernel<Format, Rank>{src, dst});
}

}  // namespace deq
