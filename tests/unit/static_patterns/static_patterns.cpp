// Static sparsity patterns: reference densities, hand-drawn layouts, slicing, seeds, errors.
#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/core/error.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/static_pattern.hpp>

#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace {

using deq::index_t;
using deq::static_pattern;

deq::exec::serial const serial{};

/// Kept fraction of the full L x L square.
double density(deq::bit_mask const& m) {
    return static_cast<double>(m.count()) / static_cast<double>(m.rows() * m.cols() * m.heads());
}

/// The mask of head 0 drawn as rows of '0'/'1'.
std::vector<std::string> draw(deq::bit_mask const& m, index_t head = 0) {
    std::vector<std::string> out;
    for (index_t i = 0; i < m.rows(); ++i) {
        std::string row;
        for (index_t j = 0; j < m.cols(); ++j) row += m.test(0, head, i, j) ? '1' : '0';
        out.push_back(row);
    }
    return out;
}

/// Message of the deq::invalid_argument thrown by f, or "" when none is thrown.
template <class F>
std::string invalid_argument_message(F&& f) {
    try {
        f();
    } catch (deq::invalid_argument const& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("Longformer and Fixed densities equal the reference at L = 128 / 384 / 512") {
    struct expected_t {
        index_t length;
        double longformer, fixed;
        index_t longformer_blocks, fixed_blocks;
    };
    // Block counts worked out by hand from the reference layout code (block 16, so L/16 blocks):
    // Longformer: 3-block band (3n - 2) + global row 0 and column 0 (2 (n - 2)).
    // Fixed: n/4 dense 4x4 windows (4n) + one global column per window (n/4 (n - 4)).
    expected_t const cases[] = {{128, 0.531, 0.625, 34, 40}, {384, 0.198, 0.375, 114, 216}, {512, 0.150, 0.344, 154, 352}};
    for (auto const& c : cases) {
        CAPTURE(c.length);
        auto const lf = deq::make_static_mask(serial, static_pattern::longformer(), c.length);
        auto const fx = deq::make_static_mask(serial, static_pattern::fixed(), c.length);
        index_t const n = c.length / 16;
        CHECK(lf.batch() == 1);
        CHECK(lf.heads() == 1);
        CHECK(lf.rows() == c.length);
        CHECK(lf.cols() == c.length);
        CHECK(lf.count() == c.longformer_blocks * 256);
        CHECK(fx.count() == c.fixed_blocks * 256);
        CHECK(std::round(density(lf) * 1000) / 1000 == doctest::Approx(c.longformer).epsilon(1e-12));
        CHECK(std::round(density(fx) * 1000) / 1000 == doctest::Approx(c.fixed).epsilon(1e-12));
        CHECK(density(lf) == doctest::Approx(static_cast<double>(c.longformer_blocks) / static_cast<double>(n * n)));
    }
}

TEST_CASE("BigBird densities are in the reference range and contain the deterministic part") {
    // Deterministic part (band + global row/column 0) has 34 / 114 / 154 blocks at L = 128 / 384 / 512;
    // the one random block per block row adds at most one block per row (fewer after slicing).
    struct expected_t {
        index_t length, det_blocks;
        double reference;
    };
    expected_t const cases[] = {{128, 34, 0.53}, {384, 114, 0.22}, {512, 154, 0.18}};
    auto const lf512 = deq::make_static_mask(serial, static_pattern::longformer(), 512);
    index_t extra_total = 0;
    for (auto const& c : cases) {
        CAPTURE(c.length);
        auto const bb = deq::make_static_mask(serial, static_pattern::bigbird(), c.length);
        index_t const n = c.length / 16;
        double const d = density(bb);
        CHECK(d >= static_cast<double>(c.det_blocks) / static_cast<double>(n * n));
        CHECK(d <= static_cast<double>(c.det_blocks + n) / static_cast<double>(n * n));
        CHECK(std::fabs(d - c.reference) < 0.035);
        // Longformer with global {0} and window 3 is exactly BigBird's deterministic part.
        bool contains = true;
        for (index_t i = 0; i < c.length; ++i)
            for (index_t j = 0; j < c.length; ++j) contains = contains && (!lf512.test(0, 0, i, j) || bb.test(0, 0, i, j));
        CHECK(contains);
        extra_total += bb.count() - c.det_blocks * 256;
    }
    CHECK(extra_total > 0);  // random blocks are visible
}

TEST_CASE("BigBird block rows get at most random_blocks extra blocks, drawn without replacement") {
    auto const layout = deq::static_block_layout(static_pattern::bigbird());  // 32 x 32 blocks
    auto const det = deq::static_block_layout(static_pattern::longformer());
    REQUIRE(layout.rows() == 32);
    for (index_t r = 0; r < 32; ++r) {
        index_t const extra = layout.view().count_row(0, 0, r) - det.view().count_row(0, 0, r);
        CHECK(extra >= 0);
        CHECK(extra <= 1);
    }
    // window 1 (diagonal only), no global block: every row holds its k random blocks plus the diagonal.
    for (index_t k : {0, 1, 5, 8}) {
        auto const l = deq::static_block_layout(static_pattern::bigbird(4, k, 1, 0, 7, 32));  // 8 x 8 blocks
        for (index_t r = 0; r < 8; ++r) {
            index_t const count = l.view().count_row(0, 0, r);
            CHECK(count >= std::max<index_t>(k, 1));
            CHECK(count <= k + 1);
        }
    }
    deq::detail::splitmix64 rng(3);
    for (int t = 0; t < 50; ++t) {
        auto const s = rng.sample(10, 6);
        std::set<index_t> distinct(s.begin(), s.end());
        CHECK(s.size() == 6);
        CHECK(distinct.size() == 6);
        CHECK(*distinct.begin() >= 0);
        CHECK(*distinct.rbegin() < 10);
    }
}

TEST_CASE("BigBird layouts are deterministic for a seed and differ between seeds") {
    auto const a = deq::make_static_mask(serial, static_pattern::bigbird(16, 1, 3, 1, 42), 512);
    auto const b = deq::make_static_mask(serial, static_pattern::bigbird(16, 1, 3, 1, 42), 512);
    auto const c = deq::make_static_mask(serial, static_pattern::bigbird(16, 1, 3, 1, 43), 512);
    CHECK(a == b);
    CHECK_FALSE(a == c);
    // The generator is pinned across platforms: SplitMix64 reference outputs, and the random block
    // of every block row for seed 42 (window 1 = diagonal, no global block, 8 blocks), computed with
    // an independent Python implementation of SplitMix64 + rejection sampling + Fisher-Yates.
    CHECK(deq::detail::splitmix64(0).next() == 0xE220A8397B1DCDAFull);
    deq::detail::splitmix64 g(1234567);
    CHECK(g.next() == 6457827717110365317ull);
    CHECK(g.next() == 3203168211198807973ull);
    CHECK(g.next() == 9817491932198370423ull);
    auto const l = deq::static_block_layout(static_pattern::bigbird(1, 1, 1, 0, 42, 8));
    // random columns 5, 3, 2, 4, 2, 6, 5, 4 for rows 0..7, plus the diagonal
    CHECK(draw(l) == std::vector<std::string>{"10000100", "01010000", "00100000", "00011000", "00101000", "00000110",
                                              "00000110", "00001001"});
}

TEST_CASE("Hand-drawn Longformer layout, block 2, L = 8") {
    auto const m = deq::make_static_mask(serial, static_pattern::longformer(2, 3, {0}, 8), 8);
    // Blocks: row 0 global; row r: band r-1..r+1; column 0 global.
    std::vector<std::string> const expected = {
        "11111111",  // block row 0: global row
        "11111111",
        "11111100",  // block row 1: blocks 0, 1, 2
        "11111100",
        "11111111",  // block row 2: blocks 0 (global), 1, 2, 3
        "11111111",
        "11001111",  // block row 3: blocks 0 (global), 2, 3
        "11001111",
    };
    CHECK(draw(m) == expected);
}

TEST_CASE("Hand-drawn Fixed layouts, including DeepSpeed's short last window") {
    // block 2, 2-block windows, the last block of each window is global: block columns 1 and 3.
    auto const m = deq::make_static_mask(serial, static_pattern::fixed(2, 2, 1, false, 8), 8);
    std::vector<std::string> const expected = {
        "11110011", "11110011", "11110011", "11110011", "00111111", "00111111", "00111111", "00111111",
    };
    CHECK(draw(m) == expected);

    // 5 blocks, windows [0,1] [2,3] [4]: globals 1, 3, then min(4 + 1, 5 - 1) = 4.
    auto const l5 = deq::static_block_layout(static_pattern::fixed(2, 2, 1, false, 10));
    CHECK(draw(l5) == std::vector<std::string>{"11011", "11011", "01111", "01111", "01011"});

    // 6 blocks, windows [0..3] [4,5]: global 3, then min(4 + 3, 6 - 1) = 5.
    auto const l6 = deq::static_block_layout(static_pattern::fixed(1, 4, 1, false, 6));
    CHECK(draw(l6) == std::vector<std::string>{"111101", "111101", "111101", "111101", "000111", "000111"});

    // horizontal global attention also makes the global blocks global rows.
    auto const h = deq::static_block_layout(static_pattern::fixed(1, 2, 1, true, 4));
    CHECK(draw(h) == std::vector<std::string>{"1101", "1111", "0111", "1111"});
}

TEST_CASE("Hand-drawn BigBird deterministic part and dense") {
    auto const bb = deq::static_block_layout(static_pattern::bigbird(1, 0, 3, 1, 1, 4));
    CHECK(draw(bb) == std::vector<std::string>{"1111", "1110", "1111", "1011"});
    auto const d = deq::make_static_mask(serial, static_pattern::dense(), 37);
    CHECK(d.count() == 37 * 37);
}

TEST_CASE("Partial last block: the max_position layout is sliced to [:L, :L]") {
    // block 3, 3 blocks for max_position 9, window 1 (diagonal), global block 0; L = 8 cuts block 2.
    auto const m = deq::make_static_mask(serial, static_pattern::longformer(3, 1, {0}, 9), 8);
    std::vector<std::string> const expected = {
        "11111111", "11111111", "11111111", "11111100", "11111100", "11111100", "11100011", "11100011",
    };
    CHECK(draw(m) == expected);

    for (auto const& p : {static_pattern::longformer(), static_pattern::bigbird(), static_pattern::fixed()}) {
        CAPTURE(p.describe());
        auto const full = deq::make_static_mask(serial, p, 512);
        for (index_t length : {1, 7, 100, 129, 511}) {
            auto const part = deq::make_static_mask(serial, p, length);
            bool same = true;
            for (index_t i = 0; i < length; ++i)
                for (index_t j = 0; j < length; ++j) same = same && part.test(0, 0, i, j) == full.test(0, 0, i, j);
            CHECK(same);
        }
    }
    auto const one = deq::make_static_mask(serial, static_pattern::fixed(), 1);
    CHECK(one.count() == 1);
}

TEST_CASE("Longformer global ranges and indices beyond the layout") {
    auto p = static_pattern::longformer(1, 1, {1, 9}, 4);  // index 9 is beyond the 4 blocks: ignored
    CHECK(draw(deq::static_block_layout(p)) == std::vector<std::string>{"1100", "1111", "0110", "0101"});
    p.global_block_indices = {1};
    p.global_block_end_indices = {3};
    CHECK(draw(deq::static_block_layout(p)) == std::vector<std::string>{"1110", "1111", "1111", "0111"});
}

TEST_CASE_TEMPLATE("Static masks are the same on every execution space and per head", Space, deq::exec::serial,
                   deq::exec::threads) {
    Space const space{};
    for (auto const& p : {static_pattern::longformer(), static_pattern::bigbird(), static_pattern::fixed()}) {
        CAPTURE(p.describe());
        auto const one = deq::make_static_mask(serial, p, 200);
        auto const multi = deq::make_static_mask(space, p, 200, 3);
        REQUIRE(multi.heads() == 3);
        for (index_t h = 0; h < 3; ++h) {
            bool same_as_head0 = true;
            for (index_t i = 0; i < 200; ++i)
                for (index_t j = 0; j < 200; ++j) same_as_head0 = same_as_head0 && multi.test(0, h, i, j) == one.test(0, 0, i, j);
            // Deterministic patterns repeat; BigBird draws each head in turn (head 0 first).
            if (h == 0 || p.type != static_pattern::kind::bigbird) CHECK(same_as_head0);
        }
        CHECK(deq::make_static_mask(space, p, 200) == one);
    }
    auto const bb = deq::make_static_mask(space, static_pattern::bigbird(), 512, 2);
    CHECK(draw(bb, 0) != draw(bb, 1));
}

TEST_CASE("parse_static_pattern accepts names and reference class names, case-insensitively") {
    CHECK(deq::parse_static_pattern("longformer").type == static_pattern::kind::longformer);
    CHECK(deq::parse_static_pattern("LongFormer").describe() ==
          "longformer(block=16, window_blocks=3, global_block_indices=[0], max_position=512)");
    CHECK(deq::parse_static_pattern("BSLongformerSparsityConfig").type == static_pattern::kind::longformer);
    CHECK(deq::parse_static_pattern("BIGBIRD").describe() ==
          "bigbird(block=16, random_blocks=1, window_blocks=3, global_blocks=1, seed=42, max_position=512)");
    CHECK(deq::parse_static_pattern("fixed").describe() ==
          "fixed(block=16, local_blocks=4, global_blocks=1, horizontal_global=false, max_position=512)");
    CHECK(deq::parse_static_pattern("FixedSparsityConfig").name() == "fixed");
    CHECK(deq::parse_static_pattern("Dense").name() == "dense");
    auto const huge = deq::parse_static_pattern("hugebird");
    CHECK(huge.block == 32);
    CHECK(huge.random_blocks == 3);
    CHECK(huge.window_blocks == 3);
    CHECK(huge.global_blocks == 2);
    std::string const msg = invalid_argument_message([] { (void)deq::parse_static_pattern("sliding"); });
    CHECK(msg.find("'pattern'") != std::string::npos);
    CHECK(msg.find("sliding") != std::string::npos);
    CHECK(msg.find("longformer") != std::string::npos);
    CHECK(msg.find("bigbird") != std::string::npos);
    CHECK(msg.find("fixed") != std::string::npos);
    CHECK(msg.find("dense") != std::string::npos);
    CHECK_THROWS_AS((void)deq::parse_static_pattern(""), deq::invalid_argument);
}

TEST_CASE("Bad static-pattern parameters are rejected, naming the parameter") {
    auto expect = [](std::string const& name, auto&& f) {
        std::string const msg = invalid_argument_message(f);
        CAPTURE(msg);
        CHECK(msg.find("'" + name + "'") != std::string::npos);
    };
    expect("block", [] { (void)deq::make_static_mask(serial, static_pattern::longformer(0), 16); });
    expect("block", [] { (void)deq::make_static_mask(serial, static_pattern::fixed(-2), 16); });
    expect("window_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::longformer(16, 0), 16); });
    expect("window_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::bigbird(16, 1, 33), 16); });
    expect("length", [] { (void)deq::make_static_mask(serial, static_pattern::longformer(), 513); });
    expect("length", [] { (void)deq::make_static_mask(serial, static_pattern::fixed(), 0); });
    expect("length", [] { (void)deq::make_static_mask(serial, static_pattern::dense(), -4); });
    expect("heads", [] { (void)deq::make_static_mask(serial, static_pattern::dense(), 4, 0); });
    expect("max_position", [] { (void)deq::make_static_mask(serial, static_pattern::longformer(16, 3, {0}, 100), 16); });
    expect("max_position", [] { (void)deq::make_static_mask(serial, static_pattern::dense(0), 1); });
    expect("global_block_indices[1]",
           [] { (void)deq::make_static_mask(serial, static_pattern::longformer(16, 3, {0, -1}), 16); });
    expect("random_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::bigbird(16, -1), 16); });
    expect("random_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::bigbird(16, 33), 16); });
    expect("global_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::bigbird(16, 1, 3, -1), 16); });
    expect("local_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::fixed(16, 0), 16); });
    expect("local_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::fixed(16, 4, 3), 16); });
    expect("global_blocks", [] { (void)deq::make_static_mask(serial, static_pattern::fixed(16, 4, 0), 16); });
    auto p = static_pattern::longformer();
    p.global_block_end_indices = {0};
    expect("global_block_end_indices[0]", [&] { p.validate(); });
    p.global_block_end_indices = {1, 2};
    expect("global_block_end_indices.size()", [&] { p.validate(); });
    // the value is part of the message
    CHECK(invalid_argument_message([] { static_pattern::longformer(16, -3).validate(); }).find("-3") != std::string::npos);
}
