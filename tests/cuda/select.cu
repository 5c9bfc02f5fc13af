// select_elements() on deq::exec::cuda against the host select_elements(): every rule, with and
// without padding, the same mask words and the same error messages (suite "gpu": needs a CUDA device).
#include <doctest/doctest.h>

#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/exec/serial.hpp>
#include <deq/mask/cuda/select_elements.hpp>
#include <deq/mask/select.hpp>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gpu_support.hpp"

namespace {

/// Peaked rows (a few large logits per row) plus ties, so that every rule keeps a varying number of keys.
std::vector<float> make_scores(deq::index_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::uniform_int_distribution<int> peak(0, 40);
    std::vector<float> s(static_cast<std::size_t>(count));
    for (float& v : s) v = peak(rng) == 0 ? 8.0f + normal(rng) : normal(rng);
    for (std::size_t i = 0; i < s.size(); i += 97) s[i] = 1.0f;  // repeated values
    return s;
}

}  // namespace

TEST_SUITE("gpu") {
    TEST_CASE("select_elements on exec::cuda: the host's mask bits for every rule, with and without padding") {
        deq::index_t const b = 2, h = 3, lq = 19, lk = 133;
        std::vector<float> const scores = make_scores(b * h * lq * lk, 5);
        std::vector<std::uint8_t> valid(static_cast<std::size_t>(b * lk), 1);
        for (deq::index_t j = 100; j < lk; ++j) valid[static_cast<std::size_t>(lk + j)] = 0;  // sequence 1 padded from key 100
        deq::tensor_view<float const, 4> const host_scores(scores.data(), {b, h, lq, lk});
        deq::key_padding const host_padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {b, lk})};

        deq::exec::cuda const space;
        auto const dscores = deq::cuda::to_device(scores);
        auto const dvalid = deq::cuda::to_device(valid);
        deq::tensor_view<float const, 4> const device_scores(dscores.device_data(), {b, h, lq, lk});
        deq::key_padding const device_padding{deq::tensor_view<std::uint8_t const, 2>(dvalid.device_data(), {b, lk})};

        using deq::mask_rule;
        using deq::max_granularity;
        std::vector<mask_rule> const rules = {
            mask_rule::probability(0.02),
            mask_rule::probability(0.002),
            mask_rule::inverse_probability(0.02),
            mask_rule::adaptive_maximum(0.8, max_granularity::sequence),
            mask_rule::adaptive_maximum(0.8, max_granularity::head),
            mask_rule::adaptive_maximum(0.5, max_granularity::row, false),
            mask_rule::inverse_adaptive_maximum(0.8, max_granularity::sequence),
            mask_rule::top_k(7),
            mask_rule::cumulative_probability(0.9),
            mask_rule::keep_all(),
            mask_rule::keep_none(),
        };
        for (bool padded : {false, true}) {
            for (mask_rule const& rule : rules) {
                CAPTURE(padded);
                CAPTURE(static_cast<int>(rule.type));
                deq::bit_mask const expected =
                    deq::select_elements(deq::exec::serial{}, host_scores, padded ? host_padding : deq::key_padding{}, rule);
                deq::bit_mask shape(b, h, lq, lk);
                auto words = deq::cuda::to_device(shape.words());
                deq::bit_mask_view const out(words.device_data(), b, h, lq, lk);
                deq::select_elements(space, device_scores, padded ? device_padding : deq::key_padding{}, rule, out);
                CHECK(deq::cuda::to_host(words) == expected.words());
            }
        }
    }

    TEST_CASE("select_elements on exec::cuda: bad input is rejected with the host's messages, and host memory is refused") {
        deq::index_t const b = 1, h = 2, lq = 4, lk = 70;
        std::vector<float> scores = make_scores(b * h * lq * lk, 9);
        scores[static_cast<std::size_t>(((0 * h + 1) * lq + 2) * lk + 65)] = std::numeric_limits<float>::infinity();  // [0, 1, 2, 65]
        deq::tensor_view<float const, 4> const host_scores(scores.data(), {b, h, lq, lk});
        deq::exec::cuda const space;
        auto const dscores = deq::cuda::to_device(scores);
        deq::tensor_view<float const, 4> const device_scores(dscores.device_data(), {b, h, lq, lk});
        deq::bit_mask host_mask(b, h, lq, lk);
        auto words = deq::cuda::to_device(host_mask.words());
        deq::bit_mask_view const out(words.device_data(), b, h, lq, lk);
        auto const rule = deq::mask_rule::probability(0.02);

        std::string const expected = deq_test::message_of([&] { deq::select_elements(deq::exec::serial{}, host_scores, {}, rule, host_mask.view()); });
        CHECK(expected.find("[0, 1, 2, 65]") != std::string::npos);
        CHECK(deq_test::message_of([&] { deq::select_elements(space, device_scores, {}, rule, out); }) == expected);

        deq::bit_mask_view const wrong(words.device_data(), b, h, lq, lk - 1);
        deq::bit_mask host_wrong(b, h, lq, lk - 1);
        CHECK(deq_test::message_of([&] { deq::select_elements(space, device_scores, {}, rule, wrong); }) ==
              deq_test::message_of([&] { deq::select_elements(deq::exec::serial{}, host_scores, {}, rule, host_wrong.view()); }));

        CHECK(deq_test::message_of([&] { deq::select_elements(space, host_scores, {}, rule, out); }).find("'scores' is host memory") != std::string::npos);
        CHECK(deq_test::message_of([&] { deq::select_elements(space, device_scores, {}, rule, host_mask.view()); }).find("'out' is host memory") !=
              std::string::npos);
    }
}
