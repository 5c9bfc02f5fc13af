#include <doctest/doctest.h>

#include <deq/core/error.hpp>
#include <deq/numeric/int_b.hpp>
#include <deq/quant/bit_width.hpp>
#include <deq/quant/granularity.hpp>
#include <deq/quant/scheme.hpp>
#include <deq/quant/spec.hpp>

#include <string>

using deq::quant::granularity;
using deq::quant::group_shape;
using deq::quant::scheme;

TEST_CASE("bit widths are validated to [2, 16], naming 'bits' and the value") {
    for (int b = 2; b <= 16; ++b) CHECK_NOTHROW(deq::quant::validate_bits(b));
    for (int b : {1, 17, 0, -4, 32}) {
        try {
            deq::quant::validate_bits(b);
            FAIL("no exception for bits = " << b);
        } catch (deq::invalid_argument const& e) {
            std::string const msg = e.what();
            CHECK(msg.find("'bits' = " + std::to_string(b)) != std::string::npos);
            CHECK(msg.find("[2, 16]") != std::string::npos);
        }
    }
    deq::quant::quant_spec spec;
    spec.bits = 1;
    CHECK_THROWS_AS(spec.validate(), deq::invalid_argument);
    spec.bits = 17;
    CHECK_THROWS_AS(spec.validate(), deq::invalid_argument);
}

TEST_CASE("level ranges of each scheme") {
    using deq::quant::level_max;
    using deq::quant::level_min;
    CHECK(level_min(scheme::symmetric, 4) == -7);  // the reference's [-7, 7]
    CHECK(level_max(scheme::symmetric, 4) == 7);
    CHECK(level_min(scheme::symmetric, 2) == -1);
    CHECK(level_max(scheme::symmetric, 2) == 1);
    CHECK(level_max(scheme::symmetric, 8) == 127);
    CHECK(level_min(scheme::symmetric, 16) == -32767);
    CHECK(level_max(scheme::symmetric, 16) == 32767);
    CHECK(level_min(scheme::asymmetric, 4) == 0);
    CHECK(level_max(scheme::asymmetric, 4) == 15);
    CHECK(level_max(scheme::asymmetric, 2) == 3);
    CHECK(level_max(scheme::asymmetric, 16) == 65535);
    for (int b = 2; b <= 16; ++b) {
        CHECK(level_max(scheme::symmetric, b) == -level_min(scheme::symmetric, b));
        CHECK(level_max(scheme::asymmetric, b) + 1 == (1 << b));
    }
}

TEST_CASE("formats imply the scheme and bits of a spec") {
    static_assert(deq::quant::scheme_of<deq::int4b_t> == scheme::symmetric);
    static_assert(deq::quant::scheme_of<deq::uint4b_t> == scheme::asymmetric);
    constexpr auto s = deq::quant::quant_spec::of<deq::uint6b_t>(granularity::per_row());
    static_assert(s.bits == 6 && s.kind == scheme::asymmetric);
    CHECK(s.groups == granularity::per_row());
    CHECK(deq::quant::quant_spec::of<deq::int8b_t>().describe() == "symmetric 8-bit per_tensor");
    CHECK(std::string(deq::quant::to_string(scheme::asymmetric)) == "asymmetric");
}

TEST_CASE("granularity group grids and group indices for [B, H, L, d]") {
    deq::index_t const B = 2, H = 3, L = 7;
    CHECK(granularity::per_tensor().shape_for(B, H, L) == group_shape{1, 1, 1});
    CHECK(granularity::per_head().shape_for(B, H, L) == group_shape{2, 3, 1});
    CHECK(granularity::per_row().shape_for(B, H, L) == group_shape{2, 3, 7});
    CHECK(granularity::per_block(3).shape_for(B, H, L) == group_shape{2, 3, 3});  // blocks of 3, 3, 1 rows
    CHECK(granularity::per_block(7).shape_for(B, H, L) == group_shape{2, 3, 1});
    CHECK(granularity::per_block(100).shape_for(B, H, L) == group_shape{2, 3, 1});
    CHECK(granularity().type() == granularity::kind::tensor);

    // Every row maps to the group a straightforward formula gives.
    granularity const kinds[] = {granularity::per_tensor(), granularity::per_head(), granularity::per_row(),
                                 granularity::per_block(3)};
    for (auto const& g : kinds) {
        group_shape const s = g.shape_for(B, H, L);
        for (deq::index_t b = 0; b < B; ++b) {
            for (deq::index_t h = 0; h < H; ++h) {
                for (deq::index_t i = 0; i < L; ++i) {
                    deq::index_t expected = 0;
                    switch (g.type()) {
                        case granularity::kind::tensor: expected = 0; break;
                        case granularity::kind::head: expected = b * H + h; break;
                        case granularity::kind::row: expected = (b * H + h) * L + i; break;
                        case granularity::kind::block: expected = (b * H + h) * 3 + i / 3; break;
                    }
                    REQUIRE(g.group_of(b, h, i, s) == expected);
                    REQUIRE(g.group_of(b, h, i, s) < s.count());
                }
            }
        }
    }
    CHECK(granularity::per_block(32).describe() == "per_block(32)");
    CHECK(granularity::per_head().describe() == "per_head");
    CHECK(granularity::per_block(4).block_size() == 4);
}

TEST_CASE("per_block rejects a block size below 1, naming 'block_size'") {
    for (deq::index_t bs : {0, -3}) {
        try {
            (void)granularity::per_block(bs);
            FAIL("no exception");
        } catch (deq::invalid_argument const& e) {
            CHECK(std::string(e.what()).find("'block_size' = " + std::to_string(bs)) != std::string::npos);
        }
    }
}
