#include <doctest/doctest.h>

#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/numeric/int_b.hpp>
#include <deq/numeric/packed.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/type_names.hpp"

namespace {

// Every value of F, in an order that puts each value at many different bit offsets.
template <class F>
std::vector<F> all_values_shuffled() {
    std::int64_t const count = std::int64_t{F::max_value} - F::min_value + 1;
    std::vector<F> out;
    std::int64_t const n = count * 3 + 5;  // not a multiple of anything useful
    out.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t const k = (i * 7 + i / count) % count;  // 7 is coprime to every 2^b
        out.push_back(F::checked(F::min_value + k));
    }
    return out;
}

// Independent reference of the layout: build the little-endian bit stream bit by bit.
template <class F>
std::vector<std::uint8_t> reference_bytes(std::vector<F> const& values) {
    std::size_t const nbits = values.size() * F::bits;
    std::vector<std::uint8_t> bytes((nbits + 7) / 8, 0);
    std::size_t k = 0;
    for (F v : values) {
        std::int64_t const count = std::int64_t{1} << F::bits;
        std::int64_t const enc = v.value() < 0 ? v.value() + count : v.value();
        for (int j = 0; j < F::bits; ++j, ++k) {
            if ((enc >> j) & 1) bytes[k / 8] = static_cast<std::uint8_t>(bytes[k / 8] | (1u << (k % 8)));
        }
    }
    return bytes;
}

}  // namespace

TEST_CASE_TEMPLATE("packed_layout constants", F, DEQ_TEST_ALL_FORMATS) {
    using L = deq::packed_layout<F>;
    CHECK(L::group_elements * F::bits == 8 * L::group_bytes);
    CHECK(L::bytes_for(L::group_elements) == L::group_bytes);
    CHECK(L::bytes_for(0) == 0);
    CHECK(L::bytes_for(1) == (F::bits + 7) / 8);
    CHECK(L::bytes_for(1000) == (1000 * F::bits + 7) / 8);
    if constexpr (F::bits == 4) CHECK(L::group_elements == 2);
    if constexpr (F::bits == 2) CHECK(L::group_elements == 4);
    if constexpr (F::bits == 3) CHECK((L::group_elements == 8 && L::group_bytes == 3));
}

TEST_CASE_TEMPLATE("packed_array round-trips every value losslessly", F, DEQ_TEST_ALL_FORMATS) {
    std::vector<F> const values = all_values_shuffled<F>();
    auto const packed = deq::packed_array<F>::pack(values);
    REQUIRE(packed.size() == static_cast<deq::index_t>(values.size()));
    CHECK(packed.byte_size() == deq::packed_layout<F>::bytes_for(packed.size()));
    // Dense: exactly ceil(n * bits / 8) bytes, laid out as the reference bit stream (padding bits zero).
    std::vector<std::uint8_t> const expected = reference_bytes(values);
    std::vector<std::uint8_t> const got(packed.bytes().begin(), packed.bytes().end());
    CHECK(got == expected);
    std::vector<F> const back = packed.unpack();
    CHECK(back == values);
    std::vector<std::int32_t> const levels = packed.to_levels();
    bool all_equal = true;
    for (std::size_t i = 0; i < values.size(); ++i) all_equal = all_equal && levels[i] == values[i].value();
    CHECK(all_equal);
    // from_levels gives the same bytes.
    auto const again = deq::packed_array<F>::from_levels(levels);
    CHECK(std::vector<std::uint8_t>(again.bytes().begin(), again.bytes().end()) == expected);
}

TEST_CASE_TEMPLATE("packed set leaves neighbouring elements untouched", F, DEQ_TEST_ALL_FORMATS) {
    deq::index_t const n = 37;
    deq::packed_array<F> a(n, F(static_cast<std::int32_t>(F::max_value)));
    for (deq::index_t i = 0; i < n; ++i) REQUIRE(a.get(i).value() == F::max_value);
    std::vector<F> shadow(static_cast<std::size_t>(n), F(static_cast<std::int32_t>(F::max_value)));
    for (deq::index_t i = 0; i < n; i += 3) {
        F const v = F(static_cast<std::int32_t>(F::min_value + (i % 5)));
        a.set(i, v);
        shadow[static_cast<std::size_t>(i)] = v;
        REQUIRE(a.unpack() == shadow);
    }
    CHECK(a.unpack() == shadow);
    // Unused high bits of the last byte stay zero.
    int const used = static_cast<int>((n * F::bits) % 8);
    if (used != 0) CHECK((a.bytes().back() >> used) == 0);
}

TEST_CASE_TEMPLATE("pack and unpack through execution spaces, strided sources", F, DEQ_TEST_ALL_FORMATS) {
    // Source: column 1 of a [13, 3] tensor (stride 3), 13 elements.
    deq::tensor<F, 2> src({13, 3});
    for (deq::index_t i = 0; i < 13; ++i) {
        for (deq::index_t j = 0; j < 3; ++j) src(i, j) = F(static_cast<std::int32_t>(F::min_value + 5 * i + j));
    }
    deq::tensor_view<F const, 1> column(src.data() + 1, {13}, {3});
    deq::packed_array<F> serial_out(13), thread_out(13);
    deq::pack(deq::exec::serial{}, column, serial_out.view());
    deq::pack(deq::exec::threads{3}, column, thread_out.view());
    CHECK(std::vector<std::uint8_t>(serial_out.bytes().begin(), serial_out.bytes().end()) ==
          std::vector<std::uint8_t>(thread_out.bytes().begin(), thread_out.bytes().end()));
    for (deq::index_t i = 0; i < 13; ++i) CHECK(serial_out.get(i) == column(i));

    deq::tensor<F, 2> back({13, 1});
    deq::unpack(deq::exec::threads{2}, thread_out.cview(), back.view());
    for (deq::index_t i = 0; i < 13; ++i) CHECK(back(i, 0) == column(i));

    deq::packed_array<F> wrong(12);
    CHECK_THROWS_AS(deq::pack(deq::exec::serial{}, column, wrong.view()), deq::shape_error);
    CHECK_THROWS_AS(deq::unpack(deq::exec::serial{}, wrong.cview(), back.view()), deq::shape_error);
}

TEST_CASE("packed known byte patterns") {
    {
        std::vector<deq::int4b_t> const v = {deq::int4b_t(1), deq::int4b_t(-1), deq::int4b_t(7), deq::int4b_t(-8)};
        auto const p = deq::packed_array<deq::int4b_t>::pack(v);
        REQUIRE(p.byte_size() == 2);
        CHECK(p.bytes()[0] == 0xF1);  // element 0 in the low nibble
        CHECK(p.bytes()[1] == 0x87);
    }
    {
        std::vector<std::int32_t> const v = {0, 1, 2, 3, 3};
        auto const p = deq::packed_array<deq::uint2b_t>::from_levels(v);
        REQUIRE(p.byte_size() == 2);
        CHECK(p.bytes()[0] == 0xE4);
        CHECK(p.bytes()[1] == 0x03);
    }
    {
        std::vector<std::int32_t> const v = {1, 2, 3, 4, 5, 6, 7, 0};
        auto const p = deq::packed_array<deq::uint3b_t>::from_levels(v);
        REQUIRE(p.byte_size() == 3);
        CHECK(p.bytes()[0] == 0xD1);
        CHECK(p.bytes()[1] == 0x58);
        CHECK(p.bytes()[2] == 0x1F);
    }
    {
        std::vector<std::int32_t> const v = {0x1234, -2};
        auto const p = deq::packed_array<deq::int16b_t>::from_levels(v);
        REQUIRE(p.byte_size() == 4);
        CHECK(p.bytes()[0] == 0x34);
        CHECK(p.bytes()[1] == 0x12);
        CHECK(p.bytes()[2] == 0xFE);
        CHECK(p.bytes()[3] == 0xFF);
    }
}

TEST_CASE("packed_array rejects out-of-range levels and negative sizes") {
    std::vector<std::int32_t> const v = {0, 7, 8};
    try {
        deq::packed_array<deq::int4b_t>::from_levels(v);
        FAIL("no exception");
    } catch (deq::invalid_argument const& e) {
        std::string const msg = e.what();
        CHECK(msg.find("'levels[2]' = 8") != std::string::npos);
    }
    std::vector<std::int32_t> const neg = {-1};
    CHECK_THROWS_AS(deq::packed_array<deq::uint4b_t>::from_levels(neg), deq::invalid_argument);
    CHECK_THROWS_AS(deq::packed_array<deq::int4b_t>(-1), deq::invalid_argument);
    deq::packed_array<deq::int4b_t> empty;
    CHECK(empty.size() == 0);
    CHECK(empty.byte_size() == 0);
}

TEST_CASE_TEMPLATE("packed sizes near the top of index_t: exact byte counts, overflow is a shape_error", F, DEQ_TEST_ALL_FORMATS) {
    using L = deq::packed_layout<F>;
    constexpr deq::index_t max = std::numeric_limits<deq::index_t>::max();
    // bytes_for is exact (ceil(n * bits / 8)) without forming n * bits.
    for (deq::index_t n : {deq::index_t{0}, deq::index_t{1}, deq::index_t{7}, deq::index_t{8}, deq::index_t{1000003}}) {
        CHECK(L::bytes_for(n) == (n * L::bits + 7) / 8);
    }
    CHECK(L::bytes_for(L::max_elements) > 0);
    CHECK(L::bytes_for(L::max_elements) <= max);
    if constexpr (L::bits > 8) {
        CHECK_THROWS_AS(deq::packed_array<F>{L::max_elements + 1}, deq::shape_error);
    } else {
        CHECK(L::max_elements == max);
    }
}
