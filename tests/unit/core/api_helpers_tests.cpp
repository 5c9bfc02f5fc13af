// Small API helpers: padding from Hugging Face masks, dense mask export / import.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <deq/core/bit_mask.hpp>
#include <deq/core/padding_mask.hpp>

#include "support/test_util.hpp"

using deq::index_t;

TEST_CASE("padding_mask: Hugging Face 0/1 and additive masks") {
    std::vector<std::int64_t> const binary{1, 1, 1, 0, 1, 1, 0, 0};
    deq::padding_mask const a(deq::tensor_view<std::int64_t const, 2>(binary.data(), {2, 4}));
    deq::key_padding const pa = a.padding();
    CHECK(pa.is_valid(0, 2));
    CHECK_FALSE(pa.is_valid(0, 3));
    CHECK(pa.is_valid(1, 1));
    CHECK_FALSE(pa.is_valid(1, 2));
    // The additive (extended) mask of the same batch, with -10000 and -inf for padding.
    float const ninf = -std::numeric_limits<float>::infinity();
    std::vector<float> const additive{0, 0, 0, -10000, 0, 0, ninf, -3.4e38f};
    deq::padding_mask const b(deq::tensor_view<float const, 2>(additive.data(), {2, 4}));
    for (index_t s = 0; s < 2; ++s)
        for (index_t j = 0; j < 4; ++j) CHECK(b.padding().is_valid(s, j) == pa.is_valid(s, j));
    // An explicit kind overrides the detection (an all-zero additive mask means no padding at all).
    std::vector<float> const zeros(8, 0.0f);
    CHECK(deq::padding_mask(deq::tensor_view<float const, 2>(zeros.data(), {2, 4}), deq::hf_mask_kind::additive).padding().is_valid(1, 3));
    CHECK_FALSE(deq::padding_mask(deq::tensor_view<float const, 2>(zeros.data(), {2, 4})).padding().is_valid(1, 3));
    // Errors.
    std::vector<float> bad = additive;
    bad[5] = std::numeric_limits<float>::quiet_NaN();
    CHECK(deq_test::message_of<deq::invalid_argument>([&] { deq::padding_mask(deq::tensor_view<float const, 2>(bad.data(), {2, 4})); })
              .find("[1, 1]") != std::string::npos);
    CHECK_THROWS_AS(deq::padding_mask(deq::tensor_view<float const, 2>(bad.data(), {0, 4})), deq::shape_error);
    CHECK(deq::padding_mask{}.padding().none());
}

TEST_CASE("bit_mask: dense export and import round trip, broadcast extents kept") {
    deq::bit_mask m(1, 2, 3, 70);
    m.set(0, 1, 2, 69);
    m.set(0, 0, 0, 0);
    m.set(0, 0, 1, 64);
    auto const dense = deq::to_dense(m.view());
    CHECK(dense.extent(3) == 70);
    CHECK(dense(0, 1, 2, 69) == 1);
    CHECK(dense(0, 1, 2, 68) == 0);
    auto const flags = deq::to_dense<bool>(m.view());
    CHECK(flags(0, 0, 1, 64));
    CHECK_FALSE(flags(0, 0, 1, 63));
    CHECK(deq::from_dense(dense.cview()) == m);
    CHECK(deq::from_dense(flags.cview()) == m);
}
