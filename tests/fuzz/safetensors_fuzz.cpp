// Fuzz target: deq::io::safetensors_file (reader) and safetensors_writer (round trip).
// Input: a .safetensors file image. Properties: from_bytes returns a validated file or throws
// deq::format_error; every tensor's raw bytes are its data_offsets range; every tensor reads as
// float, double and the integer types (or throws a deq error), with its shape, a contiguous view
// and the same values in every floating-point type; wrong ranks and absent names throw; writing
// the tensors and metadata again gives a file that reads back to the same content.
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <deq/io/safetensors.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::index_t;
using deq::io::safetensors_file;
using deq::io::tensor_info;
using deq_fuzz::attempt;
using deq_fuzz::guarded;

// Every element of the view is where a row-major walk expects it.
template <class T, int Rank>
void check_view(deq::tensor<T, Rank> const& t, tensor_info const& info) {
    auto const v = t.view();
    DEQ_FUZZ_CHECK(v.data() == t.data() && v.size() == t.size() && v.is_contiguous());
    DEQ_FUZZ_CHECK(static_cast<std::size_t>(t.size()) == t.storage().size() && t.size() == info.numel());
    for (int r = 0; r < Rank; ++r) DEQ_FUZZ_CHECK(v.extent(r) == info.shape[static_cast<std::size_t>(r)]);
    std::array<index_t, Rank> idx{};
    for (index_t i = 0; i < v.size(); ++i) {
        index_t off = 0;
        for (int r = 0; r < Rank; ++r) off += idx[static_cast<std::size_t>(r)] * v.stride(r);
        DEQ_FUZZ_CHECK(off == i);
        for (int r = Rank - 1; r >= 0; --r) {
            if (++idx[static_cast<std::size_t>(r)] < v.extent(r)) break;
            idx[static_cast<std::size_t>(r)] = 0;
        }
    }
}

bool same_float(float a, float b) {
    return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// get<T, Rank>(name, {shape[0], ...}): the overload that also checks every extent.
template <class T, int Rank, std::size_t... I>
deq::tensor<T, Rank> get_with_shape(safetensors_file const& f, std::string const& name, std::vector<index_t> const& shape,
                                    std::index_sequence<I...>) {
    return f.get<T, Rank>(name, {shape[I]...});
}

// Reads tensor @p info with rank Rank in every supported element type.
template <int Rank>
void read_with_rank(safetensors_file const& f, tensor_info const& info) {
    std::string const& name = info.name;
    bool const is_float = deq::io::is_float_dtype(info.type);
    auto const as_float = attempt([&] { return f.get<float, Rank>(name); });
    auto const as_double = attempt([&] { return f.get<double, Rank>(name); });
    DEQ_FUZZ_CHECK(as_float.has_value() == is_float && as_double.has_value() == is_float);
    if (as_float) {
        check_view(*as_float, info);
        check_view(*as_double, info);
        for (std::size_t i = 0; i < as_float->storage().size(); ++i) {
            DEQ_FUZZ_CHECK(same_float(as_float->storage()[i], static_cast<float>(as_double->storage()[i])));
        }
        if (info.type == deq::io::dtype::F32 && as_float->size() > 0) {
            DEQ_FUZZ_CHECK(std::memcmp(as_float->data(), f.raw(name).data(), f.raw(name).size()) == 0);
        }
        auto const checked = get_with_shape<float, Rank>(f, name, info.shape, std::make_index_sequence<Rank>{});
        DEQ_FUZZ_CHECK(checked.storage().size() == as_float->storage().size());
    }
    if (auto const t = attempt([&] { return f.get<std::int64_t, Rank>(name); })) check_view(*t, info);
    if (auto const t = attempt([&] { return f.get<std::uint64_t, Rank>(name); })) check_view(*t, info);
    if (auto const t = attempt([&] { return f.get<std::int8_t, Rank>(name); })) check_view(*t, info);
    if (auto const t = attempt([&] { return f.get<std::uint16_t, Rank>(name); })) check_view(*t, info);
    if (auto const t = attempt([&] { return f.get<std::int32_t, Rank>(name); })) {
        check_view(*t, info);
        DEQ_FUZZ_CHECK(deq::io::is_integer_dtype(info.type));
    }
    // A wrong rank and a wrong extent are format errors.
    DEQ_FUZZ_CHECK(!guarded([&] { (void)f.get<float, Rank + 1>(name); }));
    std::vector<index_t> other = info.shape;
    other[0] = other[0] == 0 ? 1 : 0;
    DEQ_FUZZ_CHECK(!guarded([&] { (void)get_with_shape<double, Rank>(f, name, other, std::make_index_sequence<Rank>{}); }));
}

template <std::size_t... R>
void read_any_rank(safetensors_file const& f, tensor_info const& info, std::index_sequence<R...>) {
    bool done = false;
    ((info.shape.size() == R + 1 ? (read_with_rank<static_cast<int>(R) + 1>(f, info), done = true) : false), ...);
    if (!done) DEQ_FUZZ_CHECK(!guarded([&] { (void)f.get<float, 1>(info.name); }));
}

void read_tensor(safetensors_file const& f, tensor_info const& info) {
    DEQ_FUZZ_CHECK(f.contains(info.name) && f.find(info.name) == &f.info(info.name));
    DEQ_FUZZ_CHECK(f.raw(info.name).size() == info.nbytes() && info.begin <= info.end && info.end <= f.data_size());
    (void)info.shape_string();
    // The reader rejects shapes whose non-zero extents do not fit int64 (e.g. [0, 2^62, 2^62]).
    DEQ_FUZZ_CHECK(deq_fuzz::extents_fit(info.shape));
    bool const scalar = info.shape.empty() || (info.shape.size() == 1 && info.shape[0] == 1);
    auto const value = attempt([&] { return f.get_scalar<double>(info.name); });
    DEQ_FUZZ_CHECK(!value || scalar);
    if (scalar) guarded([&] { (void)f.get_scalar<std::int16_t>(info.name); });
    if (info.shape.size() == 1) guarded([&] { (void)f.get<bool, 1>(info.name); });
    read_any_rank(f, info, std::make_index_sequence<5>{});
}

// Writes the file's tensors and metadata again and reads the result back.
void check_round_trip(safetensors_file const& f) {
    deq::io::safetensors_writer w;
    for (tensor_info const& t : f.tensors()) w.add_raw(t.name, t.type, t.shape, f.raw(t.name));
    for (auto const& [k, v] : f.metadata()) w.set_metadata(k, v);
    safetensors_file const back = safetensors_file::from_bytes(w.serialize(), "round-trip.safetensors");
    DEQ_FUZZ_CHECK(back.tensors().size() == f.tensors().size() && back.metadata() == f.metadata());
    for (tensor_info const& t : f.tensors()) {
        tensor_info const& b = back.info(t.name);
        DEQ_FUZZ_CHECK(b.type == t.type && b.shape == t.shape && b.nbytes() == t.nbytes());
        auto const x = f.raw(t.name), y = back.raw(t.name);
        DEQ_FUZZ_CHECK(x.size() == 0 || std::memcmp(x.data(), y.data(), x.size()) == 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::vector<std::byte> bytes(size);
    if (size > 0) std::memcpy(bytes.data(), data, size);
    auto const file = attempt([&] { return safetensors_file::from_bytes(std::move(bytes), "fuzz.safetensors"); });
    if (!file) return 0;
    std::uint64_t covered = 0;
    for (tensor_info const& t : file->tensors()) {
        DEQ_FUZZ_CHECK(t.begin == covered);  // ordered by offset, no gap, no overlap
        covered = t.end;
        read_tensor(*file, t);
    }
    DEQ_FUZZ_CHECK(covered == file->data_size());
    DEQ_FUZZ_CHECK(file->names().size() == file->tensors().size());
    DEQ_FUZZ_CHECK(!guarded([&] { (void)file->info("__metadata__"); }));
    check_round_trip(*file);
    return 0;
}
