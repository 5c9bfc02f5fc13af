// The host-and-device pieces of the GPU attention kernel, tested on the host: its shared-memory layout,
// launch shape and block numbering (deq/attention/detail/attention_rows_schedule.hpp), and the entry
// arithmetic it shares with the reference row kernel (exact score order, penalties, skipping bound).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <deq/attention/detail/attention_kernel.hpp>
#include <deq/attention/detail/attention_rows_schedule.hpp>

using deq::index_t;

TEST_CASE("attention rows schedule: the shared-memory regions are disjoint and fill the block's scores") {
    for (int warps : {1, 2, 4, 8})
        for (index_t dim : {1, 32, 64, 80, 128, 1500})
            for (index_t dv : {1, 48, 64, 128})
                for (bool tiles : {true, false}) {
                    auto const l = deq::detail::attention_rows_shared_layout(warps, dim, dv, tiles);
                    index_t const total = deq::detail::attention_rows_shared_scores(warps, dim, dv, tiles);
                    index_t const t = deq::detail::attention_rows_tile_keys;
                    if (tiles) {
                        CHECK(l.k_tile == 0);
                        CHECK(l.v_tile == t * (dim + 1));
                        CHECK(l.q_rows == l.v_tile + t * dv);
                    } else {
                        CHECK(l.q_rows == 0);
                    }
                    CHECK(l.acc_rows == l.q_rows + warps * dim);
                    CHECK(l.acc_rows + warps * dv == total);
                }
}

TEST_CASE("attention rows schedule: the launch shape prefers shared tiles, then more rows, and refuses rows that do not fit") {
    using deq::detail::attention_rows_launch_shape;
    auto const small_head = attention_rows_launch_shape(64, 64, 4, 48 * 1024);
    CHECK(small_head.warps == 8);
    CHECK(small_head.tiles_shared);
    CHECK(small_head.bytes == static_cast<std::size_t>(deq::detail::attention_rows_shared_scores(8, 64, 64, true)) * 4);
    // d = dv = 128 in double: the tiles alone are 64.25 KB, over 48 KB but within an H100's 227 KB
    auto const wide = attention_rows_launch_shape(128, 128, 8, 48 * 1024);
    CHECK_FALSE(wide.tiles_shared);
    CHECK(wide.warps == 8);
    auto const wide_optin = attention_rows_launch_shape(128, 128, 8, 227 * 1024);
    CHECK(wide_optin.tiles_shared);
    CHECK(wide_optin.warps == 8);
    // tiles of 32 keys of d = dv = 1500 floats are 384 KB: over an H100's 227 KB, so the rows only
    auto const huge = attention_rows_launch_shape(1500, 1500, 4, 227 * 1024);
    CHECK_FALSE(huge.tiles_shared);
    CHECK(huge.warps == 8);
    CHECK(attention_rows_launch_shape(60000, 60000, 4, 227 * 1024).warps == 0);
    for (index_t dim : {16, 64, 96, 128, 256, 512, 1024, 4096})
        for (std::size_t budget : {std::size_t{48} * 1024, std::size_t{163} * 1024, std::size_t{227} * 1024}) {
            auto const s = attention_rows_launch_shape(dim, dim, 4, budget);
            CHECK(s.bytes <= budget);
            if (s.warps > 0) CHECK(s.bytes == static_cast<std::size_t>(deq::detail::attention_rows_shared_scores(s.warps, dim, dim, s.tiles_shared)) * 4);
        }
}

TEST_CASE("attention rows schedule: the blocks cover every (b, h, row) once") {
    for (index_t lq : {1, 7, 8, 9, 64, 100})
        for (int warps : {1, 2, 4, 8}) {
            index_t const heads_total = 5;
            index_t const blocks = deq::detail::attention_rows_blocks(heads_total, lq, warps);
            std::set<std::pair<index_t, index_t>> seen;
            for (index_t blk = 0; blk < blocks; ++blk) {
                index_t bh = 0, first = 0;
                deq::detail::attention_rows_block(blk, lq, warps, bh, first);
                REQUIRE(bh < heads_total);
                REQUIRE(first < lq);
                for (int w = 0; w < warps; ++w)
                    if (first + w < lq) CHECK(seen.insert({bh, first + w}).second);
            }
            CHECK(static_cast<index_t>(seen.size()) == heads_total * lq);
        }
}

TEST_CASE("attention entry arithmetic: the exact score's two orders, the penalties rounded twice, the skipping bound") {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (index_t dim : {1, 7, 8, 13, 64, 80}) {
        std::vector<float> q(static_cast<std::size_t>(dim)), k(static_cast<std::size_t>(2 * dim));
        for (float& x : q) x = normal(rng);
        for (float& x : k) x = normal(rng);
        float const sqrt_d = static_cast<float>(std::sqrt(static_cast<double>(dim)));
        // sequential order, over a strided key (every second element)
        float seq = 0;
        for (index_t t = 0; t < dim; ++t) seq += q[t] * k[static_cast<std::size_t>(2 * t)];
        float const got_seq = deq::detail::attention_exact_score(q.data(), k.data(), 2, false, dim, sqrt_d);
        CHECK(std::memcmp(&got_seq, &(seq /= sqrt_d), sizeof(float)) == 0);
        // eight lanes over whole groups of 8, combined pairwise, then the rest in order
        float lane[8] = {};
        index_t t = 0;
        for (; t + 8 <= dim; t += 8)
            for (int u = 0; u < 8; ++u) lane[u] += q[t + u] * k[t + u];
        float acc = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
        for (; t < dim; ++t) acc += q[t] * k[t];
        float const got_lanes = deq::detail::attention_exact_score(q.data(), k.data(), 1, true, dim, sqrt_d);
        CHECK(std::memcmp(&got_lanes, &(acc /= sqrt_d), sizeof(float)) == 0);
        // the bound holds for every key
        double qn = 0, kn = 0;
        for (float x : q) qn += static_cast<double>(x) * x;
        for (index_t e = 0; e < dim; ++e) kn += static_cast<double>(k[e]) * k[e];
        double const bound = deq::detail::attention_skip_bound<float>(qn, std::sqrt(kn), dim);
        CHECK(std::abs(static_cast<double>(got_lanes)) <= bound);
    }
    // -10000 twice is two roundings: (x - 10000) - 10000 differs from x - 20000 in float for this x
    float const x = 0.82161814f;
    float const twice = deq::detail::attention_penalised(x, false, true);
    float const once = x + -20000.0f;
    CHECK(twice == (x + -10000.0f) + -10000.0f);
    CHECK(twice != once);
    CHECK(deq::detail::attention_penalised(x, true, false) == x);
    CHECK(deq::detail::attention_penalised(x, false, false) == x + -10000.0f);
    // the proof: the bound plus the penalty more than 800 below the row maximum
    CHECK(deq::detail::attention_skip_proved(5.0, 0.0));
    CHECK_FALSE(deq::detail::attention_skip_proved(5.0, -9200.0));
}
