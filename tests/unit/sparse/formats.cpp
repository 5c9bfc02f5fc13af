// Sparse mask formats: CSR, BSR<BR, BC>, pack & split; hand-checked layouts, lossless round trips,
// format invariants and error paths.
#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/core/error.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/sparse/bsr.hpp>
#include <deq/sparse/convert.hpp>
#include <deq/sparse/csr.hpp>
#include <deq/sparse/pack_split.hpp>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sparse_test_util.hpp"
#include "support/test_util.hpp"

namespace {

using deq::index_t;
using sparse_test::mask_from;
using sparse_test::random_mask;

deq::exec::serial const serial{};

template <index_t R, index_t C>
struct blk {
    static constexpr index_t br = R;
    static constexpr index_t bc = C;
};

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

TYPE_TO_STRING(blk<1, 1>);
TYPE_TO_STRING(blk<2, 3>);
TYPE_TO_STRING(blk<4, 4>);
TYPE_TO_STRING(blk<16, 16>);
TYPE_TO_STRING(blk<8, 64>);
TYPE_TO_STRING(blk<3, 70>);
TYPE_TO_STRING(blk<65, 2>);

// ---------------------------------------------------------------------------------------------- CSR

TEST_CASE("CSR of a hand-drawn mask") {
    auto const m = mask_from({"10010", "00000", "11111"});
    auto const c = deq::to_csr(serial, m.view());
    CHECK(c.batch == 1);
    CHECK(c.heads == 1);
    CHECK(c.rows == 3);
    CHECK(c.cols == 5);
    CHECK(c.row_ptr == std::vector<index_t>{0, 2, 2, 7});
    CHECK(c.col_idx == std::vector<index_t>{0, 3, 0, 1, 2, 3, 4});
    CHECK(c.nnz() == 7);
    CHECK(deq::to_bit_mask(serial, c) == m);
}

TEST_CASE_TEMPLATE("CSR round trip is lossless and keeps broadcast extents", Space, deq::exec::serial,
                   deq::exec::threads) {
    Space const space{};
    std::uint64_t seed = 1;
    for (auto const& s : sparse_test::edge_shapes()) {
        for (double p : {0.0, 0.07, 0.5, 1.0}) {
            CAPTURE(s.batch);
            CAPTURE(s.heads);
            CAPTURE(s.rows);
            CAPTURE(s.cols);
            CAPTURE(p);
            auto const m = random_mask(s.batch, s.heads, s.rows, s.cols, p, seed++);
            auto const c = deq::to_csr(space, m.view());
            CHECK(c.batch == s.batch);
            CHECK(c.heads == s.heads);
            CHECK(static_cast<index_t>(c.row_ptr.size()) == s.batch * s.heads * s.rows + 1);
            CHECK(c.nnz() == m.count());
            // independent check: every row's indices are exactly its set bits, in order
            bool rows_ok = true;
            for (index_t b = 0; b < s.batch; ++b)
                for (index_t h = 0; h < s.heads; ++h)
                    for (index_t i = 0; i < s.rows; ++i) {
                        std::vector<index_t> expected;
                        for (index_t j = 0; j < s.cols; ++j)
                            if (m.test(b, h, i, j)) expected.push_back(j);
                        index_t const r = c.row_index(b, h, i);
                        std::vector<index_t> got(c.col_idx.begin() + c.row_ptr[static_cast<std::size_t>(r)],
                                                 c.col_idx.begin() + c.row_ptr[static_cast<std::size_t>(r + 1)]);
                        rows_ok = rows_ok && got == expected;
                    }
            CHECK(rows_ok);
            CHECK(deq::to_bit_mask(space, c) == m);
            CHECK(deq::to_csr(serial, m.view()) == c);
        }
    }
    deq::bit_mask const broadcast(1, 1, 4, 4, true);
    auto const c = deq::to_csr(space, broadcast.view());
    CHECK(c.row_index(7, 5, 2) == 2);  // batch and head extents of 1 broadcast
}

TEST_CASE("Malformed CSR is rejected, naming the array") {
    auto c = deq::to_csr(serial, mask_from({"0110", "1001"}).view());
    c.validate();
    auto bad = c;
    bad.col_idx[1] = 7;
    CHECK(invalid_argument_message([&] { (void)deq::to_bit_mask(serial, bad); }).find("csr.col_idx[1]") != std::string::npos);
    bad = c;
    std::swap(bad.col_idx[0], bad.col_idx[1]);
    CHECK(invalid_argument_message([&] { bad.validate(); }).find("csr.col_idx[1]") != std::string::npos);
    bad = c;
    bad.row_ptr[1] = 3;
    bad.row_ptr[2] = 2;
    CHECK_THROWS_AS(bad.validate(), deq::invalid_argument);
    bad = c;
    bad.row_ptr.pop_back();
    CHECK_THROWS_AS(bad.validate(), deq::shape_error);
    bad = c;
    bad.heads = 0;
    CHECK_THROWS_AS(bad.validate(), deq::shape_error);
    bad = c;
    bad.col_idx.push_back(3);
    CHECK(invalid_argument_message([&] { bad.validate(); }).find("csr.row_ptr[2]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------- BSR

TEST_CASE("BSR<2, 2> of a hand-drawn mask with partial edge blocks") {
    auto const m = mask_from({"10010", "00000", "11111"});
    auto const b = deq::to_bsr<2, 2>(serial, m.view());
    CHECK(b.row_blocks() == 2);
    CHECK(b.col_blocks() == 3);
    CHECK(b.block_row_ptr == std::vector<index_t>{0, 2, 5});
    CHECK(b.block_col_idx == std::vector<index_t>{0, 1, 0, 1, 2});
    // bit (r, c) of a block is bit r * 2 + c
    CHECK(b.patterns == std::vector<std::uint64_t>{0b01, 0b10, 0b11, 0b11, 0b01});
    CHECK(b.test(1, 0, 1));
    CHECK_FALSE(b.test(1, 1, 1));
    CHECK(b.nnz() == 7);
    CHECK(deq::to_bit_mask(serial, b) == m);
}

TEST_CASE_TEMPLATE("BSR round trip is lossless for every block size", B, blk<1, 1>, blk<2, 3>, blk<4, 4>, blk<16, 16>,
                   blk<8, 64>, blk<3, 70>, blk<65, 2>) {
    constexpr index_t BR = B::br;
    constexpr index_t BC = B::bc;
    deq::exec::threads const threads{3};
    std::uint64_t seed = 100;
    for (auto const& s : sparse_test::edge_shapes()) {
        for (double p : {0.0, 0.02, 0.3, 1.0}) {
            CAPTURE(s.rows);
            CAPTURE(s.cols);
            CAPTURE(p);
            auto const m = random_mask(s.batch, s.heads, s.rows, s.cols, p, seed++);
            auto const b = deq::to_bsr<BR, BC>(serial, m.view());
            b.validate();
            // independent count of non-empty blocks and bit-by-bit check of the stored patterns
            index_t expected_blocks = 0;
            bool bits_ok = true;
            for (index_t bb = 0; bb < s.batch; ++bb)
                for (index_t h = 0; h < s.heads; ++h)
                    for (index_t bi = 0; bi * BR < s.rows; ++bi) {
                        index_t const br = (bb * s.heads + h) * b.row_blocks() + bi;
                        index_t k = b.block_row_ptr[static_cast<std::size_t>(br)];
                        for (index_t bj = 0; bj * BC < s.cols; ++bj) {
                            bool any = false;
                            for (index_t r = bi * BR; r < std::min(s.rows, (bi + 1) * BR); ++r)
                                for (index_t c = bj * BC; c < std::min(s.cols, (bj + 1) * BC); ++c) any = any || m.test(bb, h, r, c);
                            if (!any) continue;
                            ++expected_blocks;
                            bits_ok = bits_ok && b.block_col_idx[static_cast<std::size_t>(k)] == bj;
                            for (index_t r = 0; r < BR; ++r)
                                for (index_t c = 0; c < BC; ++c) {
                                    index_t const gr = bi * BR + r, gc = bj * BC + c;
                                    bool const expected = gr < s.rows && gc < s.cols && m.test(bb, h, gr, gc);
                                    bits_ok = bits_ok && b.test(k, r, c) == expected;
                                }
                            ++k;
                        }
                    }
            CHECK(b.block_count() == expected_blocks);
            CHECK(bits_ok);
            CHECK(b.nnz() == m.count());
            CHECK(deq::to_bit_mask(serial, b) == m);
            CHECK(deq::to_bsr<BR, BC>(threads, m.view()) == b);
            CHECK(deq::to_bit_mask(threads, b) == m);
        }
    }
}

TEST_CASE("Malformed BSR is rejected") {
    auto b = deq::to_bsr<2, 2>(serial, mask_from({"10010", "00000", "11111"}).view());
    auto bad = b;
    bad.patterns[4] |= 0b10;  // column 5 of a 5-column matrix, in the partial edge block
    CHECK(invalid_argument_message([&] { (void)deq::to_bit_mask(serial, bad); }).find("bsr.patterns") !=
          std::string::npos);
    bad = b;
    bad.patterns[4] = 0b100;  // row 3 of a 3-row matrix
    CHECK_THROWS_AS(bad.validate(), deq::invalid_argument);
    bad = b;
    bad.block_col_idx[1] = 3;
    CHECK(invalid_argument_message([&] { bad.validate(); }).find("bsr.block_col_idx[1]") != std::string::npos);
    bad = b;
    bad.patterns.pop_back();
    CHECK_THROWS_AS(bad.validate(), deq::shape_error);
    bad = b;
    bad.block_row_ptr[0] = 1;
    CHECK_THROWS_AS(bad.validate(), deq::invalid_argument);
}

// ---------------------------------------------------------------------------------------- pack & split

TEST_CASE("Pack & split reproduces the RTL unit test (Pack(8, 4, ...), 4 of 8 columns per row)") {
    // pack_test.scala / pe_row_test.scala: 8 rows, 8 columns, each row selects 4 random columns; one
    // segment; offsets are the selected columns (r_counter), c4 = next - this - 1 and 7 - last.
    std::mt19937_64 gen(7);
    std::vector<std::vector<index_t>> select(8);
    deq::bit_mask m(1, 1, 8, 9);  // a 9th column of all ones follows (the test's final poke)
    for (index_t i = 0; i < 8; ++i) {
        std::vector<index_t> cols = {0, 1, 2, 3, 4, 5, 6, 7};
        std::shuffle(cols.begin(), cols.end(), gen);
        cols.resize(4);
        std::sort(cols.begin(), cols.end());
        select[static_cast<std::size_t>(i)] = cols;
        for (index_t c : cols) m.set(0, 0, i, c);
        m.set(0, 0, i, 8);
    }
    auto const ps = deq::to_pack_split(serial, m.view(), {8, 16, 4});
    REQUIRE(ps.segment_count() == 2);  // the all-ones column finds every row full: emit
    CHECK(ps.segments[0] == deq::pack_split_segment{0, 8, 32});
    CHECK(ps.segments[1] == deq::pack_split_segment{8, 9, 8});
    CHECK(ps.empty_slot() == 16);
    for (index_t i = 0; i < 8; ++i) {
        auto const& sel = select[static_cast<std::size_t>(i)];
        for (index_t k = 0; k < 4; ++k) {
            CHECK(ps.offsets[static_cast<std::size_t>(ps.slot_index(0, i, k))] == sel[static_cast<std::size_t>(k)]);
            index_t const c4 = k != 3 ? sel[static_cast<std::size_t>(k + 1)] - sel[static_cast<std::size_t>(k)] - 1
                                      : 7 - sel[static_cast<std::size_t>(k)];
            CHECK(ps.gaps[static_cast<std::size_t>(ps.slot_index(0, i, k))] == c4);
        }
        CHECK(ps.offsets[static_cast<std::size_t>(ps.slot_index(1, i, 0))] == 0);
        CHECK(ps.offsets[static_cast<std::size_t>(ps.slot_index(1, i, 1))] == ps.empty_slot());
        CHECK(ps.gaps[static_cast<std::size_t>(ps.slot_index(1, i, 0))] == 0);
    }
    CHECK(deq::to_bit_mask(serial, ps) == m);
}

TEST_CASE("Pack & split of a hand-walked two-row group") {
    // height 2, pe_n 2, window 8. Walk: c2 finds row 0 full -> segment [0,2); c7 finds row 1 full
    // -> segment [2,7); then [7,8).
    auto const m = mask_from({"11100000", "01011001"});
    auto const ps = deq::to_pack_split(serial, m.view(), {2, 8, 2});
    int const E = 8;
    REQUIRE(ps.group_ptr == std::vector<index_t>{0, 3});
    CHECK(ps.segments == std::vector<deq::pack_split_segment>{{0, 2, 3}, {2, 7, 3}, {7, 8, 1}});
    //                     seg 0: row0 row1   seg 1: row0 row1   seg 2: row0 row1
    CHECK(ps.offsets == std::vector<std::int32_t>{0, 1, 1, E, 0, E, 1, 2, E, E, 0, E});
    CHECK(ps.gaps == std::vector<std::int32_t>{0, 0, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0});
    CHECK(deq::to_bit_mask(serial, ps) == m);
    CHECK(ps.nnz() == 7);

    // each row on its own (height 1): row 0 -> [0,2) [2,8); row 1 -> [0,4) [4,8)
    auto const single = deq::to_pack_split(serial, m.view(), {1, 8, 2});
    CHECK(single.group_ptr == std::vector<index_t>{0, 2, 4});
    CHECK(single.segments == std::vector<deq::pack_split_segment>{{0, 2, 2}, {2, 8, 1}, {0, 4, 2}, {4, 8, 2}});

    // windows of 3 columns: every window starts a fresh segment, the last window is partial
    auto const windows = deq::to_pack_split(serial, m.view(), {2, 3, 2});
    CHECK(windows.segments == std::vector<deq::pack_split_segment>{{0, 2, 3}, {2, 3, 1}, {3, 6, 2}, {6, 8, 1}});
}

TEST_CASE_TEMPLATE("Pack & split invariants and lossless round trip on random masks", Space, deq::exec::serial,
                   deq::exec::threads) {
    Space const space{};
    std::uint64_t seed = 500;
    deq::pack_split_params const params_list[] = {{1, 64, 16}, {3, 64, 2}, {64, 64, 16}, {4, 7, 1}, {2, 1, 1}, {5, 64, 4}};
    for (auto const& s : sparse_test::edge_shapes()) {
        for (auto const& params : params_list) {
            for (double p : {0.0, 0.1, 0.6}) {
                CAPTURE(s.rows);
                CAPTURE(s.cols);
                CAPTURE(params.height);
                CAPTURE(params.window);
                CAPTURE(params.pe_n);
                CAPTURE(p);
                auto const m = random_mask(s.batch, s.heads, s.rows, s.cols, p, seed++);
                auto const ps = deq::to_pack_split(space, m.view(), params);
                ps.validate();
                CHECK(ps.nnz() == m.count());
                CHECK(deq::to_bit_mask(space, ps) == m);
                CHECK(deq::to_pack_split(serial, m.view(), params) == ps);
                // Independent check of the walk: per group and window the segments tile the window;
                // no row exceeds pe_n in a segment; every inner boundary c has a row with a 1 at c
                // that already held pe_n non-zeros (the split is as late as possible).
                bool ok = true;
                index_t const windows = (s.cols + params.window - 1) / params.window;
                for (index_t g = 0; g < ps.group_count(); ++g) {
                    index_t const bh = g / ps.groups();
                    index_t const b = bh / s.heads, h = bh % s.heads;
                    index_t const r0 = (g % ps.groups()) * params.height;
                    index_t const r1 = std::min(s.rows, r0 + params.height);
                    index_t seg = ps.group_ptr[static_cast<std::size_t>(g)];
                    index_t const seg_end = ps.group_ptr[static_cast<std::size_t>(g + 1)];
                    for (index_t w = 0; w < windows; ++w) {
                        index_t const w0 = w * params.window, w1 = std::min(s.cols, w0 + params.window);
                        index_t pos = w0;
                        while (pos < w1 && ok) {
                            ok = seg < seg_end;
                            if (!ok) break;
                            auto const& sg = ps.segments[static_cast<std::size_t>(seg)];
                            ok = sg.col_begin == pos && sg.col_end > pos && sg.col_end <= w1;
                            bool justified = false;
                            for (index_t r = r0; r < r1; ++r) {
                                index_t n = 0;
                                for (index_t c = sg.col_begin; c < sg.col_end; ++c) n += m.test(b, h, r, c) ? 1 : 0;
                                ok = ok && n <= params.pe_n;
                                justified = justified || (sg.col_end < w1 && n == params.pe_n && m.test(b, h, r, sg.col_end));
                            }
                            if (sg.col_end < w1) ok = ok && justified;
                            pos = sg.col_end;
                            ++seg;
                        }
                    }
                    ok = ok && seg == seg_end;
                }
                CHECK(ok);
            }
        }
    }
}

TEST_CASE("Pack & split with height 1 needs ceil(nnz / pe_n) segments per non-empty window") {
    auto const m = random_mask(2, 2, 13, 192, 0.3, 77);
    for (index_t pe_n : {1, 3, 16, 32}) {
        auto const ps = deq::to_pack_split(serial, m.view(), {1, 64, pe_n});
        index_t expected = 0;
        for (index_t b = 0; b < 2; ++b)
            for (index_t h = 0; h < 2; ++h)
                for (index_t i = 0; i < 13; ++i)
                    for (index_t w = 0; w < 3; ++w) {
                        index_t nnz = 0;
                        for (index_t j = w * 64; j < (w + 1) * 64; ++j) nnz += m.test(b, h, i, j) ? 1 : 0;
                        expected += nnz == 0 ? 1 : (nnz + pe_n - 1) / pe_n;
                    }
        CHECK(ps.segment_count() == expected);
    }
}

TEST_CASE("Pack & split parameters and malformed structures are rejected") {
    auto const m = mask_from({"1101", "0110"});
    CHECK(invalid_argument_message([&] { (void)deq::to_pack_split(serial, m.view(), {2, 4, 0}); }).find("'pe_n'") !=
          std::string::npos);
    CHECK(invalid_argument_message([&] { (void)deq::to_pack_split(serial, m.view(), {2, 0, 2}); }).find("'window'") !=
          std::string::npos);
    CHECK(invalid_argument_message([&] { (void)deq::to_pack_split(serial, m.view(), {0, 4, 2}); }).find("'height'") !=
          std::string::npos);
    CHECK_THROWS_AS((void)deq::to_pack_split(serial, m.view(), {-1, 4, 2}), deq::invalid_argument);

    auto const ps = deq::to_pack_split(serial, m.view(), {2, 4, 2});
    auto bad = ps;
    bad.offsets[0] = 3;  // beyond the first segment's width
    CHECK(invalid_argument_message([&] { (void)deq::to_bit_mask(serial, bad); }).find("pack_split.offsets[0]") !=
          std::string::npos);
    bad = ps;
    bad.segments[0].nnz += 1;
    CHECK(invalid_argument_message([&] { bad.validate(); }).find("nnz") != std::string::npos);
    bad = ps;
    bad.segments.back().col_end = 9;
    CHECK_THROWS_AS(bad.validate(), deq::invalid_argument);
    bad = ps;
    bad.gaps.pop_back();
    CHECK_THROWS_AS(bad.validate(), deq::shape_error);
    bad = ps;
    bad.params.pe_n = 0;
    CHECK_THROWS_AS(bad.validate(), deq::invalid_argument);
}

// --------------------------------------------------------------------------------------- conversions

TEST_CASE("Conversions between every pair of formats are lossless") {
    deq::exec::threads const threads{2};
    std::uint64_t seed = 900;
    for (auto const& s : sparse_test::edge_shapes()) {
        auto const m = random_mask(s.batch, s.heads, s.rows, s.cols, 0.2, seed++);
        deq::pack_split_params const params{3, 64, 4};
        auto const c = deq::to_csr(serial, m.view());
        auto const b = deq::to_bsr<4, 8>(threads, c);
        auto const p = deq::to_pack_split(serial, b, params);
        auto const c2 = deq::to_csr(threads, p);
        CHECK(c2 == c);
        CHECK(deq::to_bsr<4, 8>(serial, p) == b);
        CHECK(deq::to_csr(serial, b) == c);
        CHECK(deq::to_pack_split(threads, c, params) == p);
        CHECK(deq::to_bit_mask(serial, p) == m);
        CHECK(deq::to_pack_split(serial, m.view(), params) == p);
    }
}

TEST_CASE("Sparse converters reject a mask view without storage") {
    deq::const_bit_mask_view const broken(nullptr, 1, 1, 4, 4);
    CHECK_THROWS_AS((void)deq::to_csr(serial, broken), deq::shape_error);
    CHECK_THROWS_AS(((void)deq::to_bsr<2, 2>(serial, broken)), deq::shape_error);
    CHECK_THROWS_AS((void)deq::to_pack_split(serial, broken), deq::shape_error);
}

TEST_CASE("Sparse formats with extents whose size overflows are a shape_error, not UB") {
    index_t const big = index_t{1} << 32;
    auto const message = [](auto&& f) { return deq_test::message_of<deq::shape_error>(f); };
    auto c = deq::to_csr(serial, mask_from({"0110", "1001"}).view());
    c.rows = big;
    c.cols = big;  // 2^64 bits per (batch, head)
    CHECK(message([&] { c.validate(); }).find("size overflow: csr with extents [1, 1, 4294967296, 4294967296]") !=
          std::string::npos);
    c.rows = std::numeric_limits<index_t>::max();  // row_count() + 1 would overflow
    c.cols = 1;
    CHECK(message([&] { c.validate(); }).find("csr.row_ptr has 3 entries") != std::string::npos);
    CHECK_THROWS_AS((void)deq::to_bit_mask(serial, c), deq::shape_error);

    auto b = deq::to_bsr<2, 2>(serial, mask_from({"0110", "1001"}).view());
    b.heads = big;
    b.rows = big;
    CHECK(message([&] { b.validate(); }).find("size overflow: bsr") != std::string::npos);
    b.heads = 1;
    b.rows = std::numeric_limits<index_t>::max();  // ceil(rows / 2) without overflow
    b.cols = 1;
    CHECK(b.row_blocks() == std::numeric_limits<index_t>::max() / 2 + 1);
    CHECK_THROWS_AS(b.validate(), deq::shape_error);

    auto const m = mask_from({"1101", "0110"});
    auto ps = deq::to_pack_split(serial, m.view(), {2, 4, 2});
    ps.batch = big;
    ps.heads = big;
    CHECK(message([&] { ps.validate(); }).find("size overflow: pack_split") != std::string::npos);
    // Height and PEs per row are bounded: each segment stores height * pe_n slots.
    CHECK(invalid_argument_message([&] { (void)deq::to_pack_split(serial, m.view(), {index_t{1} << 40, 4, 2}); })
              .find("'height'") != std::string::npos);
    CHECK(invalid_argument_message([&] { (void)deq::to_pack_split(serial, m.view(), {2, 4, index_t{1} << 40}); })
              .find("'pe_n'") != std::string::npos);
    auto const tall = deq::to_pack_split(serial, m.view(), {65536, 4, 2});
    CHECK(deq::to_bit_mask(serial, tall) == m);
}
