// Mask statistics (reference `_eval_overall_sparsity`) and the load-balance metric
// (`_eval_load_balance`): hand-computed cases, a direct re-implementation of the reference formulas,
// padding, broadcasting and error paths.
#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/core/error.hpp>
#include <deq/core/padding.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/sparse/load_balance.hpp>
#include <deq/sparse/pack_split.hpp>
#include <deq/sparse/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sparse_test_util.hpp"

namespace {

using deq::index_t;
using sparse_test::mask_from;
using sparse_test::random_mask;

deq::exec::serial const serial{};

/// Padding with the first lengths[b] tokens of sequence b real (HF right padding).
deq::tensor<std::uint8_t, 2> right_padding(std::vector<index_t> const& lengths, index_t length) {
    deq::tensor<std::uint8_t, 2> t({static_cast<index_t>(lengths.size()), length}, 0);
    for (std::size_t b = 0; b < lengths.size(); ++b)
        for (index_t j = 0; j < std::min(lengths[b], length); ++j) t(static_cast<index_t>(b), j) = 1;
    return t;
}

/// `_eval_overall_sparsity`, written as the reference does it with means:
/// scaling = mean_{1,2,3}(attn), per_seq = mean_{1,2,3}(mask * attn), mean_b(per_seq / scaling).
double reference_overall_sparsity(deq::bit_mask const& m, deq::tensor<std::uint8_t, 2> const& valid) {
    index_t const B = valid.extent(0), L = valid.extent(1), H = m.heads();
    double total = 0;
    for (index_t b = 0; b < B; ++b) {
        double attn_sum = 0, masked_sum = 0;
        for (index_t i = 0; i < L; ++i)
            for (index_t j = 0; j < L; ++j) attn_sum += valid(b, i) * valid(b, j);
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t j = 0; j < L; ++j) masked_sum += (m.test(b, h, i, j) ? 1.0 : 0.0) * valid(b, i) * valid(b, j);
        double const scaling = attn_sum / static_cast<double>(L * L);
        double const per_seq = masked_sum / static_cast<double>(H * L * L);
        total += per_seq / scaling;
    }
    return total / static_cast<double>(B);
}

/// `_eval_load_balance`, written step by step as the reference does it: view as vectors of num_ports,
/// nnz per vector, vector validity = any attn entry, masked_select, skips, floor / ceil / frac sums.
/// As in the reference code, `num_skips = skip_mask.sum()` with `skip_mask = nnz != 0` (so it counts
/// the non-empty vectors); `intended` counts the all-zero vectors instead.
double reference_load_balance(deq::bit_mask const& m, deq::tensor<std::uint8_t, 2> const& valid, index_t num_ports,
                              index_t num_pes, bool no_skip, bool intended = false) {
    index_t const B = valid.extent(0), L = valid.extent(1), H = m.heads();
    std::vector<double> num_nonzero;  // after masked_select
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t v = 0; v < L / num_ports; ++v) {
                    double nnz = 0, attn = 0;
                    for (index_t j = v * num_ports; j < (v + 1) * num_ports; ++j) {
                        nnz += m.test(b, h, i, j) ? 1.0 : 0.0;
                        attn += valid(b, i) * valid(b, j);
                    }
                    if (attn != 0) num_nonzero.push_back(nnz);
                }
    std::vector<bool> skip_mask;
    for (double n : num_nonzero) skip_mask.push_back(n != 0);
    double num_skips = 0;
    for (bool k : skip_mask) num_skips += k ? 1 : 0;
    if (intended) num_skips = static_cast<double>(num_nonzero.size()) - num_skips;
    std::vector<double> kept;
    for (std::size_t k = 0; k < num_nonzero.size(); ++k)
        if (skip_mask[k]) kept.push_back(num_nonzero[k]);
    double full = 0, all = 0, remn = 0;
    for (double n : kept) {
        double const splits = n / static_cast<double>(num_pes);
        full += std::floor(splits);
        all += std::ceil(splits);
        remn += splits - std::floor(splits);
    }
    double const acc = full * 1.0 + remn;
    return no_skip ? acc / (all + num_skips) : acc / all;
}

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

// ------------------------------------------------------------------------------------ statistics

TEST_CASE("Mask statistics of a hand-computed padded batch") {
    // b0: tokens 0..2 real; b1: all real.
    auto const valid = right_padding({3, 4}, 4);
    deq::bit_mask m(2, 1, 4, 4);
    char const* rows[2][4] = {{"1100", "0001", "1011", "1111"}, {"1000", "0000", "1111", "0101"}};
    for (index_t b = 0; b < 2; ++b)
        for (index_t i = 0; i < 4; ++i)
            for (index_t j = 0; j < 4; ++j)
                if (rows[b][i][j] == '1') m.set(b, 0, i, j);
    auto const s = deq::compute_mask_statistics(serial, m.view(), deq::key_padding{valid.cview()});
    CHECK(s.valid_pairs == 9 + 16);
    CHECK(s.kept_valid_pairs == 4 + 7);   // b0 row 1 keeps only a padded key; b0 row 3 is a padded query
    CHECK(s.density == doctest::Approx((4.0 / 9.0 + 7.0 / 16.0) / 2.0).epsilon(1e-15));
    CHECK(s.empty_rows == 2);             // b0 row 1, b1 row 1
    CHECK(s.rows == 3 + 4);
    CHECK(s.density == doctest::Approx(reference_overall_sparsity(m, valid)).epsilon(1e-15));

    auto const none = deq::compute_mask_statistics(serial, m.view());
    CHECK(none.valid_pairs == 32);
    CHECK(none.kept_valid_pairs == m.count());
    CHECK(none.density == doctest::Approx(static_cast<double>(m.count()) / 32.0));
    CHECK(none.empty_rows == 1);
    CHECK(none.rows == 8);
}

TEST_CASE_TEMPLATE("Mask density equals the reference formula on random padded masks", Space, deq::exec::serial,
                   deq::exec::threads) {
    Space const space{};
    auto const valid = right_padding({37, 96, 1}, 96);
    for (double p : {0.0, 0.05, 0.3, 1.0}) {
        CAPTURE(p);
        auto const m = random_mask(3, 2, 96, 96, p, static_cast<std::uint64_t>(p * 1000) + 3, false);
        auto const s = deq::compute_mask_statistics(space, m.view(), deq::key_padding{valid.cview()});
        CHECK(s.density == doctest::Approx(reference_overall_sparsity(m, valid)).epsilon(1e-12));
        CHECK(s.valid_pairs == 2 * (37 * 37 + 96 * 96 + 1));
        CHECK(s.rows == 2 * (37 + 96 + 1));
        index_t kept = 0, empty = 0;
        for (index_t b = 0; b < 3; ++b)
            for (index_t h = 0; h < 2; ++h)
                for (index_t i = 0; i < 96; ++i) {
                    if (!valid(b, i)) continue;
                    index_t n = 0;
                    for (index_t j = 0; j < 96; ++j) n += (m.test(b, h, i, j) && valid(b, j)) ? 1 : 0;
                    kept += n;
                    empty += n == 0 ? 1 : 0;
                }
        CHECK(s.kept_valid_pairs == kept);
        CHECK(s.empty_rows == empty);
    }
}

TEST_CASE("Mask statistics broadcast a batch-1 mask over the padding's batch") {
    auto const valid = right_padding({2, 4}, 4);
    auto const m = mask_from({"1000", "1100", "1110", "1111"});  // [1, 1, 4, 4]
    auto const s = deq::compute_mask_statistics(serial, m.view(), deq::key_padding{valid.cview()});
    // b0: rows 0,1 over keys 0,1 keep 1 + 2 of 4; b1: 10 of 16
    CHECK(s.valid_pairs == 4 + 16);
    CHECK(s.kept_valid_pairs == 3 + 10);
    CHECK(s.density == doctest::Approx((3.0 / 4.0 + 10.0 / 16.0) / 2.0));
    CHECK(s.rows == 6);
    CHECK(s.empty_rows == 0);

    // a sequence that is all padding has no valid pair: it is left out of the mean (NaN in the reference)
    auto const with_empty = right_padding({0, 4}, 4);
    auto const e = deq::compute_mask_statistics(serial, m.view(), deq::key_padding{with_empty.cview()});
    CHECK(e.density == doctest::Approx(10.0 / 16.0));
    auto const all_empty = right_padding({0}, 4);
    auto const z = deq::compute_mask_statistics(serial, m.view(), deq::key_padding{all_empty.cview()});
    CHECK(z.density == 0.0);
    CHECK(z.valid_pairs == 0);
    CHECK(z.rows == 0);
}

TEST_CASE("Mask statistics reject padding that does not fit the mask") {
    auto const m = random_mask(2, 1, 4, 4, 0.5, 1);
    auto const short_pad = right_padding({4, 4}, 3);
    CHECK_THROWS_AS((void)deq::compute_mask_statistics(serial, m.view(), deq::key_padding{short_pad.cview()}),
                    deq::shape_error);
    auto const three = right_padding({4, 4, 4}, 4);
    CHECK_THROWS_AS((void)deq::compute_mask_statistics(serial, m.view(), deq::key_padding{three.cview()}),
                    deq::shape_error);
    auto const rect = random_mask(2, 1, 4, 5, 0.5, 1);
    auto const pad5 = right_padding({5, 5}, 5);
    CHECK_THROWS_AS((void)deq::compute_mask_statistics(serial, rect.view(), deq::key_padding{pad5.cview()}),
                    deq::shape_error);
    CHECK_THROWS_AS((void)deq::eval_load_balance(serial, m.view(), deq::key_padding{three.cview()}, {4, 2, false}),
                    deq::shape_error);
}

// ---------------------------------------------------------------------------------- load balance

TEST_CASE("Load balance of hand-computed vectors") {
    // one vector of nnz 10 with 3 PEs -> segments [3, 3, 3, 1]: 3 full, 4 in all, utilization (3 + 1/3) / 4
    deq::bit_mask one(1, 1, 1, 64);
    for (index_t j : {0, 5, 9, 11, 20, 33, 40, 41, 42, 63}) one.set(0, 0, 0, j);
    auto const r = deq::eval_load_balance(serial, one.view(), {}, {64, 3, false});
    CHECK(r.vectors == 1);
    CHECK(r.skipped == 0);
    CHECK(r.nonzeros == 10);
    CHECK(r.full_segments == 3);
    CHECK(r.segments == 4);
    CHECK(r.utilization == doctest::Approx((3.0 + 1.0 / 3.0) / 4.0).epsilon(1e-15));

    // two more, all-zero vectors are skipped; with no_skip the reference code adds the number of
    // NON-empty vectors (1) to the denominator, the intended variant the number of empty ones (2)
    deq::bit_mask three(1, 1, 1, 192);
    for (index_t j : {0, 5, 9, 11, 20, 33, 40, 41, 42, 63}) three.set(0, 0, 0, j);
    auto const skip = deq::eval_load_balance(serial, three.view(), {}, {64, 3, false});
    auto const no_skip = deq::eval_load_balance(serial, three.view(), {}, {64, 3, true});
    auto const intended = deq::eval_load_balance(serial, three.view(), {}, {64, 3, true, deq::no_skip_term::empty_vectors});
    CHECK(skip.vectors == 3);
    CHECK(skip.skipped == 2);
    CHECK(skip.utilization == doctest::Approx(10.0 / 3.0 / 4.0));
    CHECK(no_skip.utilization == doctest::Approx(10.0 / 3.0 / (4.0 + 1.0)));
    CHECK(intended.utilization == doctest::Approx(10.0 / 3.0 / (4.0 + 2.0)));

    // exact multiples fill every segment; the reference's no_skip still adds the 2 non-empty vectors
    deq::bit_mask full(1, 1, 2, 64, true);
    CHECK(deq::eval_load_balance(serial, full.view(), {}, {64, 16, false}).utilization == 1.0);
    CHECK(deq::eval_load_balance(serial, full.view(), {}, {64, 16, true}).utilization == doctest::Approx(8.0 / 10.0));
    CHECK(deq::eval_load_balance(serial, full.view(), {}, {64, 16, true, deq::no_skip_term::empty_vectors}).utilization ==
          1.0);
    CHECK(deq::eval_load_balance(serial, full.view(), {}, {64, 16, true}).segments == 8);
}

TEST_CASE("Load balance drops padded vectors but counts raw mask bits") {
    deq::bit_mask m(1, 1, 128, 128);
    for (index_t j = 0; j < 5; ++j) m.set(0, 0, 0, j);  // row 0, vector 0: nnz 5
    m.set(0, 0, 0, 64);                                  // row 0, vector 1: a real key ...
    m.set(0, 0, 0, 100);                                 // ... and a padded key: nnz 2 (raw bits)
    m.set(0, 0, 1, 120);                                 // row 1, vector 1: only a padded key: nnz 1
    m.set(0, 0, 100, 3);                                 // a padded query row: dropped
    auto const seventy = right_padding({70}, 128);
    auto const r = deq::eval_load_balance(serial, m.view(), deq::key_padding{seventy.cview()}, {64, 4, false});
    CHECK(r.vectors == 140);  // 70 real rows x 2 vectors (vector 1 holds real keys 64..69)
    CHECK(r.skipped == 137);
    CHECK(r.nonzeros == 8);
    CHECK(r.segments == 4);
    CHECK(r.full_segments == 1);
    CHECK(r.utilization == doctest::Approx(0.5));
    auto const rn = deq::eval_load_balance(serial, m.view(), deq::key_padding{seventy.cview()}, {64, 4, true});
    CHECK(rn.utilization == doctest::Approx(2.0 / (4.0 + 3.0)));  // + 3 non-empty vectors (reference code)
    CHECK(rn.utilization == doctest::Approx(reference_load_balance(m, seventy, 64, 4, true)));
    auto const ri = deq::eval_load_balance(serial, m.view(), deq::key_padding{seventy.cview()},
                                           {64, 4, true, deq::no_skip_term::empty_vectors});
    CHECK(ri.utilization == doctest::Approx(2.0 / (4.0 + 137.0)));

    // with 64 real tokens, vector 1 of every row lies entirely in padding and is dropped
    auto const sixty_four = right_padding({64}, 128);
    auto const d = deq::eval_load_balance(serial, m.view(), deq::key_padding{sixty_four.cview()}, {64, 4, false});
    CHECK(d.vectors == 64);
    CHECK(d.skipped == 63);
    CHECK(d.nonzeros == 5);
    CHECK(d.utilization == doctest::Approx(5.0 / 4.0 / 2.0));
}

TEST_CASE_TEMPLATE("Load balance equals the reference formula for 16 and 32 PEs, skip and no-skip", Space,
                   deq::exec::serial, deq::exec::threads) {
    Space const space{};
    auto const valid = right_padding({128, 70, 3}, 192);
    for (double p : {0.02, 0.3}) {
        auto const m = random_mask(3, 2, 192, 192, p, static_cast<std::uint64_t>(p * 100) + 11, false);
        for (index_t pes : {16, 32}) {
            for (bool no_skip : {false, true}) {
                CAPTURE(p);
                CAPTURE(pes);
                CAPTURE(no_skip);
                auto const r = deq::eval_load_balance(space, m.view(), deq::key_padding{valid.cview()}, {64, pes, no_skip});
                CHECK(r.utilization == doctest::Approx(reference_load_balance(m, valid, 64, pes, no_skip)).epsilon(1e-12));
                CHECK(r.utilization > 0.0);
                CHECK(r.utilization <= 1.0);
                auto const i = deq::eval_load_balance(space, m.view(), deq::key_padding{valid.cview()},
                                                      {64, pes, no_skip, deq::no_skip_term::empty_vectors});
                CHECK(i.utilization ==
                      doctest::Approx(reference_load_balance(m, valid, 64, pes, no_skip, true)).epsilon(1e-12));
            }
        }
    }
    // batch-1 mask broadcast over the padding's batch
    auto const shared = random_mask(1, 2, 192, 192, 0.1, 5, false);
    deq::bit_mask expanded(3, 2, 192, 192);
    for (index_t b = 0; b < 3; ++b)
        for (index_t h = 0; h < 2; ++h)
            for (index_t i = 0; i < 192; ++i)
                for (index_t j = 0; j < 192; ++j)
                    if (shared.test(0, h, i, j)) expanded.set(b, h, i, j);
    auto const a = deq::eval_load_balance(space, shared.view(), deq::key_padding{valid.cview()}, {64, 16, true});
    auto const e = deq::eval_load_balance(space, expanded.view(), deq::key_padding{valid.cview()}, {64, 16, true});
    CHECK(a.utilization == e.utilization);
    CHECK(a.segments == e.segments);
    CHECK(a.vectors == e.vectors);
}

TEST_CASE("Load balance of degenerate masks is finite and documented") {
    deq::bit_mask const zero(2, 3, 64, 64);
    auto const skip = deq::eval_load_balance(serial, zero.view(), {}, {64, 16, false});
    auto const no_skip = deq::eval_load_balance(serial, zero.view(), {}, {64, 16, true});
    CHECK(skip.skipped == 2 * 3 * 64);
    CHECK(skip.segments == 0);
    CHECK(skip.utilization == 0.0);  // 0 / 0 in the reference
    CHECK(no_skip.utilization == 0.0);
    deq::bit_mask const ones(1, 1, 64, 64, true);
    auto const nothing_real = right_padding({0}, 64);
    auto const none = deq::eval_load_balance(serial, ones.view(), deq::key_padding{nothing_real.cview()}, {64, 16, true});
    CHECK(none.vectors == 0);
    CHECK(none.utilization == 0.0);
    CHECK_FALSE(std::isnan(none.utilization));
}

TEST_CASE("Load balance rejects bad parameters, naming them") {
    deq::bit_mask const m(1, 1, 4, 100);
    CHECK(invalid_argument_message([&] { (void)deq::eval_load_balance(serial, m.view(), {}, {64, 16, false}); })
              .find("'num_ports'") != std::string::npos);
    deq::bit_mask const ok(1, 1, 4, 128);
    CHECK(invalid_argument_message([&] { (void)deq::eval_load_balance(serial, ok.view(), {}, {64, 0, false}); })
              .find("'num_pes'") != std::string::npos);
    CHECK(invalid_argument_message([&] { (void)deq::eval_load_balance(serial, ok.view(), {}, {0, 16, false}); })
              .find("'num_ports'") != std::string::npos);
}

TEST_CASE("The reference log row combines the four utilizations and the density") {
    auto const valid = right_padding({100, 128}, 128);
    auto const m = random_mask(2, 3, 128, 128, 0.1, 42, false);
    deq::key_padding const pad{valid.cview()};
    auto const log = deq::sanger_load_balance_log(serial, m.view(), pad);
    CHECK(log.pes32_no_skip == deq::eval_load_balance(serial, m.view(), pad, {64, 32, true}).utilization);
    CHECK(log.pes32_skip == deq::eval_load_balance(serial, m.view(), pad, {64, 32, false}).utilization);
    CHECK(log.pes16_no_skip == deq::eval_load_balance(serial, m.view(), pad, {64, 16, true}).utilization);
    CHECK(log.pes16_skip == deq::eval_load_balance(serial, m.view(), pad, {64, 16, false}).utilization);
    CHECK(log.overall_sparsity == doctest::Approx(reference_overall_sparsity(m, valid)));
    CHECK(log.pes32_skip == doctest::Approx(reference_load_balance(m, valid, 64, 32, false)));
    CHECK(log.pes32_no_skip <= log.pes32_skip);
}

TEST_CASE("Pack & split utilization matches the metric for single rows and drops with packing") {
    auto const hand = mask_from({"11100000", "01011001"});
    CHECK(deq::pack_split_utilization(deq::to_pack_split(serial, hand.view(), {2, 8, 2}), true) ==
          doctest::Approx(7.0 / 12.0));
    CHECK(deq::pack_split_utilization(deq::to_pack_split(serial, hand.view(), {1, 8, 2}), true) ==
          doctest::Approx(7.0 / 8.0));

    auto const m = random_mask(2, 2, 40, 192, 0.1, 9);
    for (index_t pes : {16, 32, 3}) {
        for (bool no_skip : {false, true}) {
            CAPTURE(pes);
            CAPTURE(no_skip);
            double const metric =
                deq::eval_load_balance(serial, m.view(), {}, {64, pes, no_skip, deq::no_skip_term::empty_vectors}).utilization;
            auto const single = deq::to_pack_split(serial, m.view(), {1, 64, pes});
            CHECK(deq::pack_split_utilization(single, no_skip) == doctest::Approx(metric).epsilon(1e-12));
            auto const packed = deq::to_pack_split(serial, m.view(), {8, 64, pes});
            CHECK(deq::pack_split_utilization(packed, no_skip) <= metric + 1e-12);
        }
    }
    deq::bit_mask const zero(1, 1, 4, 64);
    CHECK(deq::pack_split_utilization(deq::to_pack_split(serial, zero.view(), {2, 64, 4}), false) == 0.0);
}
