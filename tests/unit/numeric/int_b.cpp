#include <doctest/doctest.h>

#include <deq/core/error.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/numeric/int_b.hpp>
#include <deq/numeric/sizeof_bits.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "support/type_names.hpp"

static_assert(deq::int4b_t(-9).value() == 7);  // wraps modulo 16
static_assert(deq::uint4b_t(17).value() == 1);
static_assert(deq::int4b_t::from_encoding(0x8u).value() == -8);
static_assert(deq::int4b_t(-1).encoding() == 0xFu);
static_assert(deq::int3b_t::saturate(100).value() == 3 && deq::int3b_t::saturate(-100).value() == -4);
static_assert(deq::sizeof_bits_v<deq::int4b_t> == 4 && deq::sizeof_bits_v<deq::int4b_t const> == 4);
static_assert(deq::sizeof_bits_v<deq::uint16b_t> == 16);
static_assert(deq::sizeof_bits_v<float> == 32 && deq::sizeof_bits_v<double> == 64);
static_assert(deq::sizeof_bits_v<std::int8_t> == 8 && deq::sizeof_bits_v<deq::float16 volatile> == 16);
static_assert(std::is_same_v<deq::int4b_t::storage_type, std::int8_t>);
static_assert(std::is_same_v<deq::uint8b_t::storage_type, std::uint8_t>);
static_assert(std::is_same_v<deq::int16b_t::storage_type, std::int16_t>);
static_assert(std::is_same_v<deq::uint16b_t::storage_type, std::uint16_t>);
static_assert(std::is_trivially_copyable_v<deq::int5b_t> && sizeof(deq::int5b_t) == 1);
static_assert(deq::is_int_b_v<deq::uint7b_t const> && !deq::is_int_b_v<int>);

TEST_CASE_TEMPLATE("int_b range, limits and storage", F, DEQ_TEST_ALL_FORMATS) {
    constexpr int b = F::bits;
    // Independent expectations: 2^b values, two's complement when signed.
    std::int64_t const count = std::int64_t{1} << b;
    std::int64_t const lo = F::is_signed ? -count / 2 : 0;
    std::int64_t const hi = lo + count - 1;
    CHECK(F::min_value == lo);
    CHECK(F::max_value == hi);
    CHECK(deq::sizeof_bits_v<F> == b);
    CHECK(sizeof(typename F::storage_type) * 8 >= static_cast<std::size_t>(b));
    CHECK(F{}.value() == 0);
    CHECK(std::numeric_limits<F>::is_specialized);
    CHECK(std::numeric_limits<F>::min().value() == lo);
    CHECK(std::numeric_limits<F>::max().value() == hi);
    CHECK(std::numeric_limits<F>::is_signed == F::is_signed);
    CHECK(std::numeric_limits<F>::digits == (F::is_signed ? b - 1 : b));
    CHECK(deq::format_name<F>() == std::string(F::is_signed ? "int" : "uint") + std::to_string(b) + "b_t");
}

TEST_CASE_TEMPLATE("int_b every value: checked, encoding, wrap and saturate", F, DEQ_TEST_ALL_FORMATS) {
    constexpr int b = F::bits;
    std::int64_t const count = std::int64_t{1} << b;
    for (std::int64_t v = F::min_value; v <= F::max_value; ++v) {
        F const x = F::checked(v);
        REQUIRE(x.value() == v);
        REQUIRE(static_cast<std::int32_t>(x) == v);
        // Encoding: two's complement in b bits.
        std::uint32_t const expected_encoding = static_cast<std::uint32_t>(v < 0 ? v + count : v);
        REQUIRE(x.encoding() == expected_encoding);
        REQUIRE(F::from_encoding(expected_encoding) == x);
        REQUIRE(F::from_encoding(expected_encoding | (0xFFFFu << b)) == x);  // high bits ignored
        // Modular constructor: v + k * 2^b is the same value.
        REQUIRE(F(static_cast<std::int32_t>(v + count)) == x);
        REQUIRE(F(static_cast<std::int32_t>(v - 3 * count)) == x);
        REQUIRE(F::saturate(v) == x);
        REQUIRE(F::in_range(v));
    }
    CHECK(F::saturate(F::max_value + std::int64_t{1000}).value() == F::max_value);
    CHECK(F::saturate(F::min_value - std::int64_t{1000}).value() == F::min_value);
    CHECK_FALSE(F::in_range(F::max_value + std::int64_t{1}));
    CHECK_FALSE(F::in_range(F::min_value - std::int64_t{1}));
}

TEST_CASE_TEMPLATE("int_b::checked rejects out-of-range values naming the value", F, DEQ_TEST_ALL_FORMATS) {
    std::int64_t const above = F::max_value + std::int64_t{1};
    std::int64_t const below = F::min_value - std::int64_t{1};
    CHECK_THROWS_AS(F::checked(above), deq::invalid_argument);
    CHECK_THROWS_AS(F::checked(below), deq::invalid_argument);
    try {
        F::checked(above, "level");
        FAIL("no exception");
    } catch (deq::invalid_argument const& e) {
        std::string const msg = e.what();
        CHECK(msg.find("'level'") != std::string::npos);
        CHECK(msg.find(std::to_string(above)) != std::string::npos);
        CHECK(msg.find(deq::format_name<F>()) != std::string::npos);
    }
}

TEST_CASE("int_b known encodings and integer arithmetic") {
    CHECK(deq::int4b_t(7).encoding() == 0x7u);
    CHECK(deq::int4b_t(-8).encoding() == 0x8u);
    CHECK(deq::int2b_t(-2).encoding() == 0x2u);
    CHECK(deq::int2b_t::from_encoding(0x3u).value() == -1);
    CHECK(deq::uint2b_t::from_encoding(0x3u).value() == 3);
    CHECK(deq::int16b_t(-32768).encoding() == 0x8000u);
    CHECK(deq::uint16b_t(65535).encoding() == 0xFFFFu);
    deq::int4b_t const a(3), b(-5);
    CHECK(a + b == -2);  // implicit conversion to int32
    CHECK(a * b == -15);
    CHECK(a != b);
    CHECK(deq::int4b_t(3) == a);
}
