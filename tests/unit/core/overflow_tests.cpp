// Sizes that do not fit deq::index_t: every constructor that derives a size throws deq::shape_error
// naming the object and its extents (before the fix these were signed-overflow UB and "constructed"
// objects of size 0 that crashed later).
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <deq/core/bit_mask.hpp>
#include <deq/core/checked_size.hpp>
#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>

#include "support/test_util.hpp"

using deq::index_t;

namespace {

constexpr index_t two_to(int n) { return index_t{1} << n; }

void check_overflow_message(std::string const& message, std::string const& what, std::string const& extents) {
    INFO(message);
    CHECK(message.find("size overflow") != std::string::npos);
    CHECK(message.find(what) != std::string::npos);
    CHECK(message.find(extents) != std::string::npos);
}

}  // namespace

TEST_CASE("checked_size: products of the non-zero extents must fit index_t") {
    index_t const max = std::numeric_limits<index_t>::max();
    CHECK(deq::detail::checked_size("x", {2, 3, 4}) == 24);
    CHECK(deq::detail::checked_size("x", {0, 5}) == 0);
    CHECK(deq::detail::checked_size("x", {max}) == max);
    CHECK(deq::detail::checked_size("x", {}) == 1);
    CHECK_THROWS_AS(deq::detail::checked_size("x", {two_to(32), two_to(31)}), deq::shape_error);
    // A zero extent does not hide the overflow of the others.
    CHECK_THROWS_AS(deq::detail::checked_size("x", {0, two_to(62), two_to(62)}), deq::shape_error);
    CHECK_THROWS_AS(deq::detail::checked_size("x", {two_to(62), 0, two_to(62)}), deq::shape_error);
    CHECK_THROWS_AS(deq::detail::checked_size("x", {two_to(62), two_to(62), 0}), deq::shape_error);
    CHECK_THROWS_AS(deq::detail::checked_size("x", {3, -1}), deq::shape_error);
    check_overflow_message(deq_test::message_of<deq::shape_error>([] { deq::detail::checked_size("'scores'", {7, two_to(61)}); }),
                           "'scores'", "[7, 2305843009213693952]");
    CHECK(deq_test::message_of<deq::shape_error>([] { deq::detail::checked_size("t", {2, -3}); })
              .find("negative extent in dimension 1") != std::string::npos);

    index_t n = -1;
    CHECK(deq::detail::extents_fit(std::vector<index_t>{4, 0, 9}, n));
    CHECK(n == 0);
    CHECK_FALSE(deq::detail::extents_fit(std::vector<index_t>{0, max, 2}, n));
    CHECK_THROWS_AS(deq::detail::checked_bytes("t", two_to(62), 4), deq::shape_error);
    CHECK(deq::detail::checked_bytes("t", 10, 8) == 80);

    std::vector<index_t> const ext{3, 5}, str{two_to(62), 1};
    CHECK_THROWS_AS(deq::detail::checked_span("v", ext, str), deq::shape_error);
    std::vector<index_t> const neg{-two_to(61), 1};
    CHECK(deq::detail::checked_span("v", ext, neg) == 2 * two_to(61) + 4);
    std::vector<index_t> const lowest{std::numeric_limits<index_t>::min(), 1};
    CHECK_THROWS_AS(deq::detail::checked_span("v", ext, lowest), deq::shape_error);
}

TEST_CASE("tensor and tensor_view reject extents whose product overflows") {
    check_overflow_message(deq_test::message_of<deq::shape_error>([] { deq::tensor<float, 3> t({0, two_to(62), two_to(62)}); }),
                           "tensor", "[0, 4611686018427387904, 4611686018427387904]");
    CHECK_THROWS_AS((deq::tensor<float, 2>({two_to(40), two_to(40)})), deq::shape_error);
    // Countable, but more bytes than any allocation.
    CHECK(deq_test::message_of<deq::shape_error>([] { deq::tensor<double, 1> t({two_to(62)}); }).find("allocation") !=
          std::string::npos);

    float x = 0;
    check_overflow_message(
        deq_test::message_of<deq::shape_error>([&] { deq::tensor_view<float, 4> v(&x, {two_to(20), two_to(20), two_to(20), 8}); }),
        "tensor_view", "[1048576, 1048576, 1048576, 8]");
    CHECK_THROWS_AS((deq::tensor_view<float, 3>(&x, {two_to(32), 0, two_to(32)})), deq::shape_error);
    CHECK_THROWS_AS((deq::tensor_view<float, 2>(&x, {two_to(32), two_to(32)}, {0, 0})), deq::shape_error);
    // Strides whose offsets leave index_t.
    CHECK_THROWS_AS((deq::tensor_view<float, 2>(&x, {4, 2}, {two_to(62), 1})), deq::shape_error);
    // Broadcast views (stride 0) of a countable shape are fine, as are large but valid strides.
    deq::tensor_view<float const, 2> bc(&x, {two_to(31), two_to(31)}, {0, 0});
    CHECK(bc.size() == two_to(62));
    CHECK(bc(two_to(31) - 1, 5) == 0.0f);
    deq::tensor_view<float, 2> wide(&x, {1, 2}, {two_to(62), two_to(61)});
    CHECK(wide.size() == 2);
    // The zero extent of an empty tensor still gives valid strides.
    deq::tensor<float, 3> empty({2, 0, 3});
    CHECK(empty.size() == 0);
    CHECK(empty.view().empty());
}

TEST_CASE("bit_mask and bit_mask_view reject shapes whose bit count overflows") {
    check_overflow_message(deq_test::message_of<deq::shape_error>([] { deq::bit_mask m(1, 1, two_to(32), two_to(32)); }),
                           "bit_mask", "[1, 1, 4294967296, 4294967296]");
    CHECK_THROWS_AS(deq::bit_mask(two_to(21), two_to(21), two_to(21), 1), deq::shape_error);
    std::uint64_t w = 0;
    check_overflow_message(deq_test::message_of<deq::shape_error>([&] { deq::bit_mask_view v(&w, 2, 2, two_to(31), two_to(31)); }),
                           "bit_mask_view", "[2, 2, 2147483648, 2147483648]");
    CHECK_THROWS_AS(deq::const_bit_mask_view(&w, 1, -1, 2, 2), deq::shape_error);
    // Column counts near the top of index_t no longer overflow the words-per-row rounding.
    index_t const max = std::numeric_limits<index_t>::max();
    CHECK(deq::mask_words_per_row(max) == max / 64 + 1);
    CHECK(deq::mask_words_per_row(64) == 1);
    CHECK(deq::mask_words_per_row(65) == 2);
    CHECK(deq::mask_words_per_row(0) == 0);
    deq::bit_mask_view const one(&w, 1, 1, 1, 64);
    CHECK(one.words_per_row() == 1);
}
