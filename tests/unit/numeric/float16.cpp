#include <doctest/doctest.h>

#include <deq/core/accumulator.hpp>
#include <deq/core/tensor.hpp>
#include <deq/numeric/bfloat16.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/numeric/sizeof_bits.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "support/test_util.hpp"
#include "support/type_names.hpp"

using deq::bfloat16;
using deq::float16;

namespace {

float f32(std::uint32_t bits) { return std::bit_cast<float>(bits); }
std::uint32_t bits32(float f) { return std::bit_cast<std::uint32_t>(f); }

// Independent decoding of an IEEE binary16 encoding (finite values only).
double decode_half(std::uint16_t h) {
    unsigned const e = (h >> 10) & 31u;
    unsigned const m = h & 1023u;
    double const mag = e == 0 ? std::ldexp(static_cast<double>(m), -24) : std::ldexp(1024.0 + m, static_cast<int>(e) - 25);
    return (h & 0x8000u) ? -mag : mag;
}

struct torch_row {
    std::uint32_t f32;
    std::uint16_t f16;
    std::uint16_t bf16;
};

// {float32 input, torch .to(float16), torch .to(bfloat16)}: see gen_float16_tables.py.
constexpr torch_row torch_table[] = {
#include "float16_torch_table.inc"
};

}  // namespace

static_assert(sizeof(float16) == 2 && std::is_trivially_copyable_v<float16> && std::is_standard_layout_v<float16>);
static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable_v<bfloat16>);
static_assert(deq::sizeof_bits_v<float16> == 16 && deq::sizeof_bits_v<bfloat16> == 16);
static_assert(std::is_same_v<deq::accum_t<float16>, float> && std::is_same_v<deq::accum_t<bfloat16>, float>);
static_assert(float16(1.0f).bits() == 0x3C00);  // constexpr conversions
static_assert(static_cast<float>(float16::from_bits(0x7BFF)) == 65504.0f);
static_assert(bfloat16(1.0f).bits() == 0x3F80);
// Mixed arithmetic result types follow c10::Half.
static_assert(std::is_same_v<decltype(float16() + float16()), float16>);
static_assert(std::is_same_v<decltype(float16() + 1.0f), float>);
static_assert(std::is_same_v<decltype(1.0f * float16()), float>);
static_assert(std::is_same_v<decltype(float16() - 1.0), double>);
static_assert(std::is_same_v<decltype(float16() / 2), float16>);
static_assert(std::is_same_v<decltype(3 - float16()), float16>);
static_assert(std::is_same_v<decltype(-float16()), float16>);

TEST_CASE("float16 known bit patterns") {
    CHECK(float16(1.0f).bits() == 0x3C00);
    CHECK(float16(-2.0f).bits() == 0xC000);
    CHECK(float16(0.5f).bits() == 0x3800);
    CHECK(float16(65504.0f).bits() == 0x7BFF);
    CHECK(float16(-65504.0f).bits() == 0xFBFF);
    CHECK(float16(0x1p-14f).bits() == 0x0400);     // smallest normal
    CHECK(float16(0x1p-24f).bits() == 0x0001);     // smallest subnormal
    CHECK(float16(0x1.ff8p-15f).bits() == 0x03FF);  // largest subnormal
    CHECK(float16(0.1f).bits() == 0x2E66);
    CHECK(float16(0.0f).bits() == 0x0000);
    CHECK(float16(-0.0f).bits() == 0x8000);
    CHECK(float16(std::numeric_limits<float>::infinity()).bits() == 0x7C00);
    CHECK(float16(-std::numeric_limits<float>::infinity()).bits() == 0xFC00);
    CHECK(float16(std::numeric_limits<float>::quiet_NaN()).bits() == 0x7E00);
    CHECK(deq::isnan(float16(-std::numeric_limits<float>::quiet_NaN())));
    CHECK(float16(1e-30f).bits() == 0x0000);   // underflow to zero
    CHECK(float16(-1e-30f).bits() == 0x8000);  // keeps the sign
    CHECK(float16(1e6f).bits() == 0x7C00);     // overflow to infinity
    CHECK(float16(3.4e38f).bits() == 0x7C00);
    CHECK(static_cast<float>(float16::from_bits(0x3555)) == 0x1.554p-2f);
}

TEST_CASE("float16 rounds halfway cases to even and overflows at the midpoint above 65504") {
    CHECK(float16(0x1p-25f).bits() == 0x0000);               // halfway between 0 and 2^-24: even is 0
    CHECK(float16(std::nextafter(0x1p-25f, 1.0f)).bits() == 0x0001);
    CHECK(float16(0x1.8p-24f).bits() == 0x0002);             // 1.5 ulp: ties to 2 (even)
    CHECK(float16(0x1.4p-23f).bits() == 0x0002);             // 2.5 ulp: ties to 2 (even)
    CHECK(float16(1.0f + 0x1p-11f).bits() == 0x3C00);        // halfway between 1 and 1 + 2^-10
    CHECK(float16(1.0f + 0x3p-11f).bits() == 0x3C02);        // halfway between 0x3C01 and 0x3C02
    CHECK(float16(2049.0f).bits() == float16(2048.0f).bits());
    CHECK(static_cast<float>(float16(2051.0f)) == 2052.0f);
    CHECK(float16(65519.0f).bits() == 0x7BFF);
    CHECK(float16(std::nextafter(65520.0f, 0.0f)).bits() == 0x7BFF);
    CHECK(float16(65520.0f).bits() == 0x7C00);  // halfway to 2^16: rounds to "even" infinity
    CHECK(float16(-65520.0f).bits() == 0xFC00);
    CHECK(float16(0x1.ffcp-15f).bits() == 0x0400);  // largest subnormal + 1/2 ulp rounds up to the smallest normal
}

TEST_CASE("float16 to float is exact and float to float16 round-trips for all 65536 encodings") {
    int mismatches = 0;
    for (std::uint32_t b = 0; b < 0x10000u; ++b) {
        auto const h = float16::from_bits(static_cast<std::uint16_t>(b));
        float const f = h;
        unsigned const e = (b >> 10) & 31u;
        if (e == 31u) {
            bool const nan = (b & 1023u) != 0;
            mismatches += nan != std::isnan(f);
            mismatches += nan != deq::isnan(h);
            mismatches += !nan && !(std::isinf(f) && deq::isinf(h));
            continue;
        }
        mismatches += static_cast<double>(f) != decode_half(static_cast<std::uint16_t>(b));
        mismatches += float16(f).bits() != b;
        mismatches += float16(static_cast<double>(f)).bits() != b;
        mismatches += !deq::isfinite(h);
        mismatches += deq::signbit(h) != ((b & 0x8000u) != 0);
    }
    CHECK(mismatches == 0);
}

TEST_CASE("float16 rounds every midpoint between neighbours to the even one") {
    int mismatches = 0;
    for (std::uint32_t b = 0; b < 0x7BFFu; ++b) {  // positive finite pairs (b, b + 1)
        double const lo = decode_half(static_cast<std::uint16_t>(b));
        double const hi = decode_half(static_cast<std::uint16_t>(b + 1));
        auto const mid = static_cast<float>((lo + hi) / 2);  // exact: 12 significant bits
        std::uint32_t const even = (b % 2 == 0) ? b : b + 1;
        for (float sign : {1.0f, -1.0f}) {
            std::uint32_t const s = sign < 0 ? 0x8000u : 0u;
            mismatches += float16(sign * mid).bits() != (even | s);
            mismatches += float16(static_cast<double>(sign * mid)).bits() != (even | s);
            mismatches += float16(sign * std::nextafter(mid, 1e9f)).bits() != ((b + 1) | s);
            mismatches += float16(sign * std::nextafter(mid, 0.0f)).bits() != (b | s);
        }
    }
    CHECK(mismatches == 0);
}

TEST_CASE("float16 from double rounds once, not through float") {
    double const d = 1.0 + 0x1p-11 + 0x1p-40;  // just above the midpoint between 1 and 1 + 2^-10
    CHECK(float16(d).bits() == 0x3C01);
    CHECK(float16(static_cast<float>(d)).bits() == 0x3C00);  // float rounding lands on the midpoint
    CHECK(float16(65519.99999).bits() == 0x7BFF);
    CHECK(float16(65520.0).bits() == 0x7C00);
    CHECK(float16(0x1p-25 + 0x1p-60).bits() == 0x0001);
    CHECK(float16(1e-300).bits() == 0x0000);
    CHECK(float16(std::numeric_limits<double>::quiet_NaN()).bits() == 0x7E00);
    CHECK(float16(3).bits() == 0x4200);
    CHECK(float16(-70000).bits() == 0xFC00);
    CHECK(float16(std::int64_t{2049}).bits() == 0x6800);  // 2048, tie to even
}

TEST_CASE("float16 and bfloat16 match torch's conversion of float32 for the generated table") {
    std::size_t f16_mismatch = 0, bf16_mismatch = 0;
    std::size_t const n = sizeof(torch_table) / sizeof(torch_table[0]);
    for (auto const& row : torch_table) {
        float const x = f32(row.f32);
        if (float16(x).bits() != row.f16) {
            if (f16_mismatch++ < 5) MESSAGE("float16 mismatch for 0x" << std::hex << row.f32);
        }
        if (bfloat16(x).bits() != row.bf16) {
            if (bf16_mismatch++ < 5) MESSAGE("bfloat16 mismatch for 0x" << std::hex << row.f32);
        }
    }
    CHECK(n > 3000);
    CHECK(f16_mismatch == 0);
    CHECK(bf16_mismatch == 0);
}

TEST_CASE("float16 arithmetic and comparisons go through float") {
    float16 const a(1.5f), b(2.25f);
    CHECK(static_cast<float>(a + b) == 3.75f);
    CHECK(static_cast<float>(a - b) == -0.75f);
    CHECK(static_cast<float>(a * b) == 3.375f);
    CHECK(static_cast<float>(b / a) == 1.5f);
    CHECK(static_cast<float>(float16(2048.0f) + float16(1.0f)) == 2048.0f);  // rounded once to float16
    CHECK(static_cast<float>(float16(2048.0f) + 3) == 2052.0f);
    CHECK(a + 1.0f == 2.5f);
    CHECK(a * 2.0 == 3.0);
    CHECK(static_cast<float>(-a) == -1.5f);
    CHECK((-float16(0.0f)).bits() == 0x8000);
    float16 c = a;
    c += b;
    CHECK(static_cast<float>(c) == 3.75f);
    c -= 0.75f;
    CHECK(static_cast<float>(c) == 3.0f);
    c *= 2;
    CHECK(static_cast<float>(c) == 6.0f);
    c /= float16(4.0f);
    CHECK(static_cast<float>(c) == 1.5f);
    CHECK(a < b);
    CHECK(b > a);
    CHECK(a <= a);
    CHECK(a == float16(1.5f));
    CHECK(a != b);
    CHECK(float16(0.0f) == float16(-0.0f));
    float16 const nan = std::numeric_limits<float16>::quiet_NaN();
    CHECK_FALSE(nan == nan);
    CHECK(nan != nan);
    CHECK_FALSE(nan < a);
    CHECK(static_cast<float>(deq::abs(float16(-3.0f))) == 3.0f);
    CHECK(std::isfinite(static_cast<float>(a)));
}

TEST_CASE("numeric_limits<float16>") {
    using L = std::numeric_limits<float16>;
    CHECK(L::is_specialized);
    CHECK(L::is_iec559);
    CHECK(L::digits == 11);
    CHECK(static_cast<float>(L::max()) == 65504.0f);
    CHECK(static_cast<float>(L::lowest()) == -65504.0f);
    CHECK(static_cast<float>(L::min()) == 0x1p-14f);
    CHECK(static_cast<float>(L::denorm_min()) == 0x1p-24f);
    CHECK(static_cast<float>(L::epsilon()) == 0x1p-10f);
    CHECK(static_cast<float>(float16(1.0f) + L::epsilon()) > 1.0f);
    CHECK(static_cast<float>(L::round_error()) == 0.5f);
    CHECK(deq::isinf(L::infinity()));
    CHECK(deq::isnan(L::quiet_NaN()));
    CHECK(deq::isnan(L::signaling_NaN()));
    // max_exponent: 2^(max_exponent - 1) is finite, 2^max_exponent is not.
    CHECK(deq::isfinite(float16(std::ldexp(1.0f, L::max_exponent - 1))));
    CHECK(deq::isinf(float16(std::ldexp(1.0f, L::max_exponent))));
    CHECK(static_cast<float>(L::min()) == std::ldexp(1.0f, L::min_exponent - 1));
}

TEST_CASE("bfloat16 conversions, rounding and limits") {
    CHECK(bfloat16(1.0f).bits() == 0x3F80);
    CHECK(bfloat16(f32(0x3F808000u)).bits() == 0x3F80);  // tie: stays even
    CHECK(bfloat16(f32(0x3F818000u)).bits() == 0x3F82);  // tie: rounds up to even
    CHECK(bfloat16(f32(0x3F808001u)).bits() == 0x3F81);
    CHECK(bfloat16(f32(0x7F7FFFFFu)).bits() == 0x7F80);  // FLT_MAX rounds to infinity
    CHECK(bfloat16(f32(0x00018000u)).bits() == 0x0002);  // subnormal tie to even
    CHECK(bfloat16(std::numeric_limits<float>::quiet_NaN()).bits() == 0x7FC0);
    CHECK(bfloat16(1.0 + 0x1p-8 + 0x1p-40).bits() == 0x3F81);  // from double: one rounding
    int mismatches = 0;
    for (std::uint32_t b = 0; b < 0x10000u; ++b) {
        auto const h = bfloat16::from_bits(static_cast<std::uint16_t>(b));
        float const f = h;
        mismatches += bits32(f) != (b << 16);
        if (!std::isnan(f)) mismatches += bfloat16(f).bits() != b;
        mismatches += deq::isnan(h) != std::isnan(f);
        mismatches += deq::isinf(h) != std::isinf(f);
    }
    CHECK(mismatches == 0);
    using L = std::numeric_limits<bfloat16>;
    CHECK(static_cast<float>(L::max()) == f32(0x7F7F0000u));
    CHECK(static_cast<float>(L::min()) == std::numeric_limits<float>::min());
    CHECK(static_cast<float>(L::epsilon()) == 0x1p-7f);
    CHECK(static_cast<float>(L::denorm_min()) == 0x1p-133f);
    CHECK(static_cast<float>(bfloat16(1.5f) * bfloat16(2.0f)) == 3.0f);
}

TEST_CASE("float16 works as a tensor element") {
    deq::tensor<float16, 2> t({3, 4});
    deq_test::fill_normal(t, 11);
    double const m = deq_test::max_abs(t);
    CHECK(m > 0.0);
    CHECK(m < 10.0);
    t(1, 2) = float16(0.25f);
    CHECK(static_cast<float>(t.cview()(1, 2)) == 0.25f);
    deq::tensor<float16, 1> z({5});
    CHECK(z(4).bits() == 0);  // value-initialised to +0
}
