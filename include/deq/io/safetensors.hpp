/// @file
/// @brief Reader and writer of the safetensors format (Hugging Face checkpoints).
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
/// "__metadata__": {"key": "value"}}` (optionally padded with spaces), then the data buffer.
/// Offsets are relative to the start of the buffer, tensors are row-major and little-endian.
///
/// The reader validates everything the format requires and reports the file (and tensor):
/// the header length fits in the file and is at most 100 MB; the header is valid JSON starting with
/// `{`; every entry has exactly the keys dtype / shape / data_offsets; dtypes are known; shapes are
/// non-negative; shape × dtype size equals end − begin; the tensors, ordered by offset, cover the
/// data buffer exactly (start at 0, no overlap, no hole, end at the end of the file); `__metadata__`
/// maps strings to strings.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../numeric/bfloat16.hpp"
#include "../numeric/float16.hpp"
#include "detail/bytes.hpp"
#include "json.hpp"

namespace deq::io {

/// Element types of the safetensors format.
enum class dtype : std::uint8_t {
    BOOL,     ///< bool, 1 byte (0 or 1)
    U8,       ///< uint8
    I8,       ///< int8
    F8_E5M2,  ///< 8-bit float, 5 exponent bits (raw access only)
    F8_E4M3,  ///< 8-bit float, 4 exponent bits (raw access only)
    I16,      ///< int16
    U16,      ///< uint16
    F16,      ///< IEEE binary16
    BF16,     ///< bfloat16
    I32,      ///< int32
    U32,      ///< uint32
    F32,      ///< IEEE binary32
    F64,      ///< IEEE binary64
    I64,      ///< int64
    U64       ///< uint64
};

/// @param t A dtype.
/// @return Its name in safetensors headers ("F32", "BF16", ...).
constexpr std::string_view dtype_name(dtype t) noexcept {
    constexpr std::string_view names[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                          "BF16", "I32", "U32", "F32", "F64", "I64", "U64"};
    return names[static_cast<std::size_t>(t)];
}

/// @param t A dtype.
/// @return The size of one element in bytes.
constexpr std::size_t dtype_size(dtype t) noexcept {
    constexpr std::size_t sizes[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
    return sizes[static_cast<std::size_t>(t)];
}

/// @param name A dtype name as written in safetensors headers.
/// @return The dtype, or std::nullopt for an unknown name.
constexpr std::optional<dtype> parse_dtype(std::string_view name) noexcept {
    for (std::uint8_t i = 0; i <= static_cast<std::uint8_t>(dtype::U64); ++i) {
        if (dtype_name(static_cast<dtype>(i)) == name) return static_cast<dtype>(i);
    }
    return std::nullopt;
}

/// The safetensors dtype that stores elements of type @p T (float16/bfloat16 included).
/// @tparam T bool, a fixed-width integer, float, double, deq::float16 or deq::bfloat16.
/// @return The dtype.
template <class T>
constexpr dtype dtype_of() noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, bool>) return dtype::BOOL;
    else if constexpr (std::is_same_v<U, float>) return dtype::F32;
    else if constexpr (std::is_same_v<U, double>) return dtype::F64;
    else if constexpr (std::is_same_v<U, float16>) return dtype::F16;
    else if constexpr (std::is_same_v<U, bfloat16>) return dtype::BF16;
    else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
        static_assert(sizeof(U) <= 8);
        return sizeof(U) == 1 ? dtype::I8 : sizeof(U) == 2 ? dtype::I16 : sizeof(U) == 4 ? dtype::I32 : dtype::I64;
    } else {
        static_assert(std::is_integral_v<U> && std::is_unsigned_v<U>, "dtype_of: unsupported element type");
        return sizeof(U) == 1 ? dtype::U8 : sizeof(U) == 2 ? dtype::U16 : sizeof(U) == 4 ? dtype::U32 : dtype::U64;
    }
}

/// @param t A dtype.
/// @return True for F16, BF16, F32 and F64 (the dtypes readable as float / double).
constexpr bool is_float_dtype(dtype t) noexcept {
    return t == dtype::F16 || t == dtype::BF16 || t == dtype::F32 || t == dtype::F64;
}

/// @param t A dtype.
/// @return True for BOOL and the integer dtypes.
constexpr bool is_integer_dtype(dtype t) noexcept {
    return t == dtype::BOOL || t == dtype::U8 || t == dtype::I8 || t == dtype::I16 || t == dtype::U16 || t == dtype::I32 ||
           t == dtype::U32 || t == dtype::I64 || t == dtype::U64;
}

/// Header entry of one tensor.
struct tensor_info {
    std::string name;           ///< The tensor name.
    dtype type = dtype::F32;    ///< The element type.
    std::vector<index_t> shape; ///< Extents, outermost first (empty for a scalar).
    std::uint64_t begin = 0;    ///< First byte in the data buffer.
    std::uint64_t end = 0;      ///< One past the last byte in the data buffer.

    /// @return The number of elements (1 for a scalar).
    index_t numel() const noexcept {
        index_t n = 1;
        for (index_t e : shape) n *= e;
        return n;
    }
    /// @return The number of bytes (end - begin).
    std::uint64_t nbytes() const noexcept { return end - begin; }
    /// @return The shape as text, e.g. "[30522, 384]".
    std::string shape_string() const {
        std::string s = "[";
        for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
        return s + "]";
    }
};

/// A safetensors file held in memory, validated on load.
class safetensors_file {
public:
    /// The largest header accepted (that of the reference implementation).
    static constexpr std::uint64_t max_header_size = 100'000'000;

    /// Reads and validates the file @p file (read entirely into memory).
    /// @param file Path of the .safetensors file.
    /// @return The file; deq::format_error naming the file (and tensor) when missing or malformed.
    static safetensors_file open(std::filesystem::path const& file) {
        std::error_code ec;
        if (std::filesystem::is_directory(file, ec)) {
            throw format_error(detail::concat("deq: cannot open safetensors file '", file.string(), "': it is a directory"));
        }
        std::ifstream in(file, std::ios::binary | std::ios::ate);
        if (!in) throw format_error(detail::concat("deq: cannot open safetensors file '", file.string(), "'"));
        std::streamoff const size = in.tellg();
        std::vector<std::byte> bytes(size > 0 ? static_cast<std::size_t>(size) : 0);
        in.seekg(0);
        if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
            throw format_error(detail::concat("deq: cannot read safetensors file '", file.string(), "'"));
        }
        return from_bytes(std::move(bytes), file.string());
    }

    /// Validates an in-memory safetensors image.
    /// @param bytes  The whole file content.
    /// @param source Name used in error messages.
    /// @return The file; deq::format_error naming @p source (and tensor) when malformed.
    static safetensors_file from_bytes(std::vector<std::byte> bytes, std::string source) {
        safetensors_file f;
        f.bytes_ = std::move(bytes);
        f.source_ = std::move(source);
        f.validate();
        return f;
    }

    /// @return The file name given to open (or the source given to from_bytes).
    std::string const& source() const noexcept { return source_; }
    /// @return Every tensor's header entry, ordered by data offset.
    std::vector<tensor_info> const& tensors() const noexcept { return tensors_; }
    /// @return The names of the tensors, ordered by data offset.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        out.reserve(tensors_.size());
        for (auto const& t : tensors_) out.push_back(t.name);
        return out;
    }
    /// @return The `__metadata__` entries (empty when absent).
    std::map<std::string, std::string> const& metadata() const noexcept { return metadata_; }
    /// @return The size of the data buffer in bytes.
    std::uint64_t data_size() const noexcept { return bytes_.size() - data_start_; }

    /// @param name A tensor name.
    /// @return True when the file holds a tensor named @p name.
    bool contains(std::string_view name) const { return find(name) != nullptr; }
    /// @param name A tensor name.
    /// @return Its header entry, or nullptr when absent.
    tensor_info const* find(std::string_view name) const {
        auto const it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                         [&](std::size_t i, std::string_view n) { return std::string_view(tensors_[i].name) < n; });
        return it != by_name_.end() && tensors_[*it].name == name ? &tensors_[*it] : nullptr;
    }
    /// @param name A tensor name.
    /// @return Its header entry; deq::format_error naming the tensor and the file when absent.
    tensor_info const& info(std::string_view name) const {
        tensor_info const* t = find(name);
        if (t == nullptr) throw format_error(detail::concat("deq: ", source_, ": no tensor named '", name, "'"));
        return *t;
    }
    /// The raw little-endian bytes of tensor @p name.
    /// @param name A tensor name.
    /// @return The bytes (valid as long as this object lives).
    std::span<std::byte const> raw(std::string_view name) const {
        tensor_info const& t = info(name);
        return {bytes_.data() + data_start_ + t.begin, static_cast<std::size_t>(t.nbytes())};
    }

    /// Tensor @p name converted to @p T.
    /// @tparam T    float or double (from F16, BF16, F32, F64), or an integral type / bool (from BOOL
    ///              and the integer dtypes, every value range-checked).
    /// @tparam Rank The expected rank.
    /// @param name The tensor name.
    /// @return A new tensor; deq::format_error naming the tensor and file when it is absent, its rank
    ///         differs, its dtype does not convert to @p T or a value does not fit.
    template <class T, int Rank>
    tensor<T, Rank> get(std::string_view name) const {
        tensor_info const& t = info(name);
        if (static_cast<int>(t.shape.size()) != Rank) {
            fail_tensor(t, detail::concat("has shape ", t.shape_string(), " (rank ", t.shape.size(), "), expected rank ", Rank));
        }
        tensor<T, Rank> out = make_tensor<T, Rank>(t.shape, std::make_integer_sequence<int, Rank>{});
        convert(t, out.data());
        return out;
    }

    /// get<T, Rank>() that also checks every extent.
    /// @tparam T    See get().
    /// @tparam Rank The expected rank.
    /// @param name  The tensor name.
    /// @param shape The expected extents (Rank of them); -1 accepts any extent.
    /// @return A new tensor; deq::format_error naming the tensor, its shape and the expected one.
    template <class T, int Rank>
    tensor<T, Rank> get(std::string_view name, std::initializer_list<index_t> shape) const {
        tensor_info const& t = info(name);
        bool ok = static_cast<int>(shape.size()) == Rank && t.shape.size() == shape.size();
        std::string expected = "[";
        std::size_t i = 0;
        for (index_t e : shape) {
            expected += (i ? ", " : "") + (e < 0 ? std::string("*") : std::to_string(e));
            if (ok && e >= 0 && t.shape[i] != e) ok = false;
            ++i;
        }
        expected += "]";
        if (!ok) fail_tensor(t, detail::concat("has shape ", t.shape_string(), ", expected ", expected));
        return get<T, Rank>(name);
    }

    /// Tensor @p name as float (from F16, BF16, F32 or F64).
    /// @tparam Rank The expected rank.
    /// @param name The tensor name.
    /// @return A new tensor (see get()).
    template <int Rank>
    tensor<float, Rank> get_float(std::string_view name) const {
        return get<float, Rank>(name);
    }

    /// Tensor @p name as float with every extent checked.
    /// @tparam Rank The expected rank.
    /// @param name  The tensor name.
    /// @param shape The expected extents (-1 accepts any).
    /// @return A new tensor (see get()).
    template <int Rank>
    tensor<float, Rank> get_float(std::string_view name, std::initializer_list<index_t> shape) const {
        return get<float, Rank>(name, shape);
    }

    /// The single element of tensor @p name, of shape [] or [1].
    /// @tparam T See get().
    /// @param name The tensor name.
    /// @return The value; deq::format_error when the tensor is absent or has another shape.
    template <class T>
    T get_scalar(std::string_view name) const {
        tensor_info const& t = info(name);
        if (!(t.shape.empty() || (t.shape.size() == 1 && t.shape[0] == 1))) {
            fail_tensor(t, detail::concat("has shape ", t.shape_string(), ", expected a scalar ([] or [1])"));
        }
        T value{};
        convert(t, &value);
        return value;
    }

private:
    [[noreturn]] void fail(std::string const& message) const { throw format_error(detail::concat("deq: ", source_, ": ", message)); }
    [[noreturn]] void fail_tensor(tensor_info const& t, std::string const& message) const {
        fail(detail::concat("tensor '", t.name, "' ", message));
    }

    template <class T, int Rank, int... R>
    static tensor<T, Rank> make_tensor(std::vector<index_t> const& shape, std::integer_sequence<int, R...>) {
        return tensor<T, Rank>({shape[static_cast<std::size_t>(R)]...});
    }

    template <class T>
    void convert(tensor_info const& t, T* out) const {
        std::byte const* src = bytes_.data() + data_start_ + t.begin;
        index_t const n = t.numel();
        std::size_t const es = dtype_size(t.type);
        if constexpr (std::is_floating_point_v<T>) {
            if (!is_float_dtype(t.type)) {
                fail_tensor(t, detail::concat("has dtype ", dtype_name(t.type), ", which cannot be read as a floating-point value"));
            }
            if constexpr (std::endian::native == std::endian::little && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
                if (t.type == dtype_of<T>()) {  // same IEEE format, same byte order: plain copy
                    if (n > 0) std::memcpy(out, src, static_cast<std::size_t>(n) * sizeof(T));
                    return;
                }
            }
            for (index_t i = 0; i < n; ++i) {
                std::byte const* p = src + static_cast<std::size_t>(i) * es;
                switch (t.type) {
                    case dtype::F32: out[i] = static_cast<T>(detail::load_le<float>(p)); break;
                    case dtype::F64: out[i] = static_cast<T>(detail::load_le<double>(p)); break;
                    case dtype::F16: out[i] = static_cast<T>(static_cast<float>(float16::from_bits(detail::load_le_bits<2>(p)))); break;
                    default: out[i] = static_cast<T>(static_cast<float>(bfloat16::from_bits(detail::load_le_bits<2>(p)))); break;
                }
            }
        } else {
            static_assert(std::is_integral_v<T>, "safetensors_file::get: T must be floating point, integral or bool");
            if (!is_integer_dtype(t.type)) {
                fail_tensor(t, detail::concat("has dtype ", dtype_name(t.type), ", which cannot be read as an integer"));
            }
            bool const is_signed = t.type == dtype::I8 || t.type == dtype::I16 || t.type == dtype::I32 || t.type == dtype::I64;
            for (index_t i = 0; i < n; ++i) {
                std::byte const* p = src + static_cast<std::size_t>(i) * es;
                std::uint64_t bits = 0;
                switch (es) {
                    case 1: bits = detail::load_le_bits<1>(p); break;
                    case 2: bits = detail::load_le_bits<2>(p); break;
                    case 4: bits = detail::load_le_bits<4>(p); break;
                    default: bits = detail::load_le_bits<8>(p); break;
                }
                if (t.type == dtype::BOOL && bits > 1) {
                    fail_tensor(t, detail::concat("element ", i, " is ", bits, ", not a boolean (0 or 1)"));
                }
                if (is_signed) {
                    // Sign-extend from es bytes.
                    std::int64_t v = static_cast<std::int64_t>(bits << (64 - 8 * es)) >> (64 - 8 * es);
                    if (!in_range<T>(v)) fail_tensor(t, detail::concat("element ", i, " = ", v, " does not fit the requested type"));
                    out[i] = static_cast<T>(v);
                } else {
                    if (!in_range_unsigned<T>(bits)) {
                        fail_tensor(t, detail::concat("element ", i, " = ", bits, " does not fit the requested type"));
                    }
                    out[i] = static_cast<T>(bits);
                }
            }
        }
    }

    template <class T>
    static bool in_range(std::int64_t v) noexcept {
        if constexpr (std::is_same_v<T, bool>) return v == 0 || v == 1;
        else return std::in_range<T>(v);
    }
    template <class T>
    static bool in_range_unsigned(std::uint64_t v) noexcept {
        if constexpr (std::is_same_v<T, bool>) return v <= 1;
        else return std::in_range<T>(v);
    }

    void validate() {
        std::uint64_t const file_size = bytes_.size();
        if (file_size < 8) fail(detail::concat("file is too small for a safetensors header (", file_size, " bytes)"));
        std::uint64_t const n = detail::load_le_bits<8>(bytes_.data());
        if (n > max_header_size) fail(detail::concat("header length ", n, " exceeds the limit of ", max_header_size, " bytes"));
        if (n > file_size - 8) fail(detail::concat("header length ", n, " exceeds the file size (", file_size, " bytes)"));
        data_start_ = static_cast<std::size_t>(8 + n);
        std::string_view const header(reinterpret_cast<char const*>(bytes_.data() + 8), static_cast<std::size_t>(n));
        if (header.empty() || header[0] != '{') fail("header does not start with '{'");
        json const root = json::parse(header, source_ + " (header)");
        if (!root.is_object()) fail(detail::concat("header is a JSON ", root.type_name(), ", expected an object"));

        for (auto const& [key, value] : root.as_object()) {
            if (key == "__metadata__") {
                for (auto const& [mk, mv] : value.as_object()) metadata_[mk] = mv.as_string();
                continue;
            }
            tensors_.push_back(parse_entry(key, value));
        }
        std::stable_sort(tensors_.begin(), tensors_.end(),
                         [](tensor_info const& a, tensor_info const& b) { return std::pair(a.begin, a.end) < std::pair(b.begin, b.end); });
        std::uint64_t const buffer = file_size - data_start_;
        std::uint64_t expected = 0;
        tensor_info const* prev = nullptr;
        for (auto const& t : tensors_) {
            if (t.end > buffer) {
                fail_tensor(t, detail::concat("data_offsets [", t.begin, ", ", t.end, "] lie outside the data buffer (", buffer,
                                              " bytes; is the file truncated?)"));
            }
            if (t.begin < expected) {
                fail(detail::concat("tensors '", prev->name, "' [", prev->begin, ", ", prev->end, "] and '", t.name, "' [", t.begin,
                                    ", ", t.end, "] overlap"));
            }
            if (t.begin > expected) {
                fail(detail::concat("bytes [", expected, ", ", t.begin, ") of the data buffer belong to no tensor (before tensor '",
                                    t.name, "')"));
            }
            expected = t.end;
            prev = &t;
        }
        if (expected != buffer) {
            fail(detail::concat("bytes [", expected, ", ", buffer, ") at the end of the data buffer belong to no tensor"));
        }
        by_name_.resize(tensors_.size());
        for (std::size_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
        std::sort(by_name_.begin(), by_name_.end(), [&](std::size_t a, std::size_t b) { return tensors_[a].name < tensors_[b].name; });
    }

    tensor_info parse_entry(std::string const& name, json const& entry) const {
        tensor_info t;
        t.name = name;
        for (auto const& m : entry.as_object()) {
            if (m.key != "dtype" && m.key != "shape" && m.key != "data_offsets") {
                fail_tensor(t, detail::concat("has an unknown header key '", m.key, "'"));
            }
        }
        std::string const& type = entry.at("dtype").as_string();
        std::optional<dtype> const dt = parse_dtype(type);
        if (!dt) fail_tensor(t, detail::concat("has unknown dtype '", type, "'"));
        t.type = *dt;
        for (auto const& e : entry.at("shape").as_array()) {
            t.shape.push_back(e.as_int(0, std::numeric_limits<index_t>::max()));
        }
        // Every extent counts, wherever a zero stands: [0, 2^62, 2^62] holds no element but no view of
        // it could be built (its strides overflow), so it is rejected like [2^62, 2^62].
        index_t elements = 0;
        bool const overflow = !detail::extents_fit(t.shape, elements);
        auto const count = static_cast<std::uint64_t>(elements);
        json const& offsets = entry.at("data_offsets");
        if (!offsets.is_array() || offsets.size() != 2) offsets.fail(detail::concat("expected [begin, end], got ", offsets.dump()));
        std::int64_t const int_max = std::numeric_limits<std::int64_t>::max();
        t.begin = static_cast<std::uint64_t>(offsets.at(std::size_t{0}).as_int(0, int_max));
        t.end = static_cast<std::uint64_t>(offsets.at(std::size_t{1}).as_int(0, int_max));
        if (t.end < t.begin) fail_tensor(t, detail::concat("has data_offsets [", t.begin, ", ", t.end, "] with end < begin"));
        std::size_t const es = dtype_size(t.type);
        if (overflow || count > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()) / es) {
            fail_tensor(t, detail::concat("shape ", t.shape_string(),
                                          " is too large (its extents or bytes do not fit a 64-bit signed count)"));
        }
        if (count * es != t.nbytes()) {
            fail_tensor(t, detail::concat("has shape ", t.shape_string(), " and dtype ", type, ", which need ", count * es,
                                          " bytes, but data_offsets [", t.begin, ", ", t.end, "] hold ", t.nbytes()));
        }
        return t;
    }

    std::vector<std::byte> bytes_;
    std::string source_;
    std::size_t data_start_ = 0;
    std::vector<tensor_info> tensors_;
    std::vector<std::size_t> by_name_;
    std::map<std::string, std::string> metadata_;
};

/// Builds a safetensors file: tensors are added one by one, then serialised or written.
///
/// The output follows the reference writer: tensors ordered by dtype alignment (largest first) then
/// name, `__metadata__` first in the header, the header padded with spaces to a multiple of 8 bytes.
class safetensors_writer {
public:
    /// Adds a tensor from raw little-endian bytes.
    /// @param name  Unique tensor name (not "__metadata__").
    /// @param type  Element type.
    /// @param shape Extents (empty for a scalar).
    /// @param bytes numel × dtype_size(type) bytes, row-major.
    void add_raw(std::string name, dtype type, std::vector<index_t> shape, std::span<std::byte const> bytes) {
        check_name(name);
        std::uint64_t count = 1;
        for (index_t e : shape) {
            if (e < 0) detail::throw_invalid_argument("shape", e, detail::concat("extents of tensor '", name, "' must be >= 0"));
            count *= static_cast<std::uint64_t>(e);
        }
        if (count * dtype_size(type) != bytes.size()) {
            detail::throw_shape_error(detail::concat("tensor '", name, "': ", bytes.size(), " bytes given, shape and dtype ",
                                                     dtype_name(type), " need ", count * dtype_size(type)));
        }
        entries_.push_back({std::move(name), type, std::move(shape), std::vector<std::byte>(bytes.begin(), bytes.end())});
    }

    /// Adds the elements of @p view (any strides) with the dtype matching @p T.
    /// @tparam T    bool, a fixed-width integer, float, double, deq::float16 or deq::bfloat16.
    /// @tparam Rank The view's rank.
    /// @param name Unique tensor name.
    /// @param view The elements.
    template <class T, int Rank>
    void add(std::string name, tensor_view<T, Rank> view) {
        using U = std::remove_cv_t<T>;
        constexpr dtype type = dtype_of<U>();
        std::vector<index_t> shape(Rank);
        for (int r = 0; r < Rank; ++r) shape[static_cast<std::size_t>(r)] = view.extent(r);
        std::vector<std::byte> bytes(static_cast<std::size_t>(view.size()) * sizeof(U));
        std::array<index_t, Rank> idx{};
        for (index_t i = 0; i < view.size(); ++i) {
            index_t off = 0;
            for (int r = 0; r < Rank; ++r) off += idx[static_cast<std::size_t>(r)] * view.stride(r);
            U const v = view.data()[off];
            std::byte* dst = bytes.data() + static_cast<std::size_t>(i) * sizeof(U);
            if constexpr (std::is_same_v<U, float16> || std::is_same_v<U, bfloat16>) {
                detail::store_le(dst, v.bits());
            } else if constexpr (std::is_same_v<U, bool>) {
                *dst = static_cast<std::byte>(v ? 1 : 0);
            } else {
                detail::store_le(dst, v);
            }
            for (int r = Rank - 1; r >= 0; --r) {
                if (++idx[static_cast<std::size_t>(r)] < view.extent(r)) break;
                idx[static_cast<std::size_t>(r)] = 0;
            }
        }
        add_raw(std::move(name), type, std::move(shape), bytes);
    }

    /// Adds the elements of tensor @p t.
    /// @tparam T    See add(std::string, tensor_view<T, Rank>).
    /// @tparam Rank The tensor's rank.
    /// @param name Unique tensor name.
    /// @param t    The tensor.
    template <class T, int Rank>
    void add(std::string name, tensor<T, Rank> const& t) {
        add(std::move(name), t.view());
    }

    /// Adds a scalar (shape []).
    /// @tparam T See add(std::string, tensor_view<T, Rank>).
    /// @param name  Unique tensor name.
    /// @param value The value.
    template <class T>
        requires(std::is_arithmetic_v<T> || std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>)
    void add_scalar(std::string name, T value) {
        add(std::move(name), tensor_view<T const, 1>(&value, {1}));
        entries_.back().shape.clear();
    }

    /// Sets a `__metadata__` entry.
    /// @param key   Metadata key.
    /// @param value Metadata value.
    void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

    /// @return The complete file image.
    std::vector<std::byte> serialize() const {
        std::vector<std::size_t> order(entries_.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            if (entries_[a].type != entries_[b].type) return entries_[a].type > entries_[b].type;
            return entries_[a].name < entries_[b].name;
        });
        std::string header = "{";
        bool first = true;
        if (!metadata_.empty()) {
            header += "\"__metadata__\":{";
            bool f = true;
            for (auto const& [k, v] : metadata_) {
                if (!f) header += ',';
                f = false;
                detail::append_json_string(header, k);
                header += ':';
                detail::append_json_string(header, v);
            }
            header += '}';
            first = false;
        }
        std::uint64_t offset = 0;
        for (std::size_t i : order) {
            auto const& e = entries_[i];
            if (!first) header += ',';
            first = false;
            detail::append_json_string(header, e.name);
            header += ":{\"dtype\":\"";
            header += dtype_name(e.type);
            header += "\",\"shape\":[";
            for (std::size_t d = 0; d < e.shape.size(); ++d) {
                if (d) header += ',';
                detail::append_json_integer(header, e.shape[d]);
            }
            header += "],\"data_offsets\":[";
            detail::append_json_integer(header, static_cast<std::int64_t>(offset));
            header += ',';
            offset += e.bytes.size();
            detail::append_json_integer(header, static_cast<std::int64_t>(offset));
            header += "]}";
        }
        header += '}';
        header.append((8 - header.size() % 8) % 8, ' ');
        std::vector<std::byte> out(8 + header.size() + offset);
        detail::store_le(out.data(), static_cast<std::uint64_t>(header.size()));
        std::memcpy(out.data() + 8, header.data(), header.size());
        std::size_t pos = 8 + header.size();
        for (std::size_t i : order) {
            auto const& b = entries_[i].bytes;
            if (!b.empty()) std::memcpy(out.data() + pos, b.data(), b.size());
            pos += b.size();
        }
        return out;
    }

    /// Writes the file image to @p file (replacing it).
    /// @param file Destination path; deq::error when it cannot be written.
    void write(std::filesystem::path const& file) const {
        std::vector<std::byte> const bytes = serialize();
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        if (!out) throw error(detail::concat("deq: cannot create safetensors file '", file.string(), "'"));
        out.write(reinterpret_cast<char const*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        out.close();
        if (!out) throw error(detail::concat("deq: cannot write safetensors file '", file.string(), "'"));
    }

private:
    struct entry {
        std::string name;
        dtype type;
        std::vector<index_t> shape;
        std::vector<std::byte> bytes;
    };

    void check_name(std::string const& name) const {
        if (name == "__metadata__") detail::throw_invalid_argument("name", name, "is reserved for the metadata entry");
        for (auto const& e : entries_) {
            if (e.name == name) detail::throw_invalid_argument("name", name, "is already used by another tensor");
        }
    }

    std::vector<entry> entries_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace deq::io
