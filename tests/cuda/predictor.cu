// predict_scores() on deq::exec::cuda against the host predict_scores(): the same bits, the same
// errors with the same messages (suite "gpu": needs a CUDA device).
#include <doctest/doctest.h>

#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/exec/serial.hpp>
#include <deq/predict/cuda/predict_scores.hpp>
#include <deq/numeric/bfloat16.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gpu_support.hpp"

namespace {

/// Structured rows: a shared direction per head plus noise, with some exact ties of the quantizer.
std::vector<float> make_rows(deq::index_t batch, deq::index_t heads, deq::index_t length, deq::index_t dim, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(batch * heads * length * dim));
    std::vector<float> direction(static_cast<std::size_t>(dim));
    for (float& v : direction) v = normal(rng);
    for (std::size_t r = 0; r < x.size() / static_cast<std::size_t>(dim); ++r)
        for (deq::index_t t = 0; t < dim; ++t) x[r * dim + t] = 0.7f * direction[t] + normal(rng) * (1.0f + 0.1f * static_cast<float>(r % 7));
    for (deq::index_t t = 0; t < dim; ++t) x[static_cast<std::size_t>(3 * dim + t)] = 0.0f;  // a zero row: Ŝ = 0
    return x;
}

/// Host Ŝ and device Ŝ of the same inputs; the device output is written through a transposed view.
template <class T>
void compare(deq::index_t batch, deq::index_t heads, deq::index_t lq, deq::index_t lk, deq::index_t dim, int bits) {
    using S = deq::accum_t<T>;
    std::vector<float> const qf = make_rows(batch, heads, lq, dim, 11), kf = make_rows(batch, heads, lk, dim, 12);
    std::vector<T> q(qf.begin(), qf.end()), k(kf.begin(), kf.end());
    deq::tensor_view<T const, 4> const hq(q.data(), {batch, heads, lq, dim}), hk(k.data(), {batch, heads, lk, dim});
    deq::predictor_config const config = deq::calibrate_predictor(hq, hk, bits);
    deq::tensor<S, 4> const expected = deq::predict_scores(deq::exec::serial{}, hq, hk, config);

    deq::exec::cuda const space;
    auto const dq = deq::cuda::to_device(q), dk = deq::cuda::to_device(k);
    deq::cuda::device_array<S> dscores(batch * heads * lq * lk);
    // [B, H, Lq, Lk] stored key-major: strides (H·Lk·Lq, Lk·Lq, 1, Lq)
    deq::tensor_view<S, 4> const out(dscores.device_data(), {batch, heads, lq, lk}, {heads * lk * lq, lk * lq, 1, lq});
    deq::predict_scores(space, deq::tensor_view<T const, 4>(dq.device_data(), {batch, heads, lq, dim}),
                        deq::tensor_view<T const, 4>(dk.device_data(), {batch, heads, lk, dim}), config, out);
    std::vector<S> const got = deq::cuda::to_host(dscores);
    deq::index_t mismatches = 0;
    for (deq::index_t b = 0; b < batch; ++b)
        for (deq::index_t h = 0; h < heads; ++h)
            for (deq::index_t i = 0; i < lq; ++i)
                for (deq::index_t j = 0; j < lk; ++j) {
                    S const e = expected(b, h, i, j);
                    S const g = got[static_cast<std::size_t>(((b * heads + h) * lk + j) * lq + i)];
                    mismatches += std::memcmp(&e, &g, sizeof(S)) != 0;
                }
    CHECK(mismatches == 0);
}

}  // namespace

TEST_SUITE("gpu") {
    TEST_CASE("predict_scores on exec::cuda: Ŝ bit-identical to the host's (float, double, float16, bfloat16; 4 / 8 / 16 bits, Lq != Lk, d = 32 / 64 / 80 / 200)") {
        compare<float>(2, 3, 45, 61, 64, 4);
        compare<float>(1, 4, 33, 33, 32, 4);
        compare<float>(1, 2, 17, 29, 80, 8);
        compare<float>(1, 2, 9, 12, 64, 16);  // int16 levels
        compare<float>(1, 1, 40, 70, 200, 4);  // the dp4a tiles over four chunks, the last one partial
        compare<double>(1, 2, 21, 19, 64, 4);
        compare<deq::float16>(1, 2, 33, 47, 64, 4);  // 16-bit inputs, float scores
        compare<deq::bfloat16>(1, 2, 33, 47, 64, 4);
    }

    TEST_CASE("predict_scores on exec::cuda: bad input is rejected with the host's messages, and host memory is refused") {
        deq::index_t const b = 1, h = 2, l = 8, d = 32;
        std::vector<float> q = make_rows(b, h, l, d, 1), k = make_rows(b, h, l, d, 2);
        k[static_cast<std::size_t>(1 * l * d + 5 * d + 7)] = std::numeric_limits<float>::quiet_NaN();  // k[0, 1, 5, 7]
        deq::tensor_view<float const, 4> const hq(q.data(), {b, h, l, d}), hk(k.data(), {b, h, l, d});
        deq::predictor_config const config{0.5, 0.5, 4};
        deq::tensor<float, 4> host_scores({b, h, l, l});
        std::string const host_nan = deq_test::message_of([&] { deq::predict_scores(deq::exec::serial{}, hq, hk, config, host_scores.view()); });

        deq::exec::cuda const space;
        auto const dq = deq::cuda::to_device(q), dk = deq::cuda::to_device(k);
        deq::cuda::device_array<float> ds(b * h * l * l);
        deq::tensor_view<float const, 4> const vq(dq.device_data(), {b, h, l, d}), vk(dk.device_data(), {b, h, l, d});
        deq::tensor_view<float, 4> const vs(ds.device_data(), {b, h, l, l});
        CHECK(deq_test::message_of([&] { deq::predict_scores(space, vq, vk, config, vs); }) == host_nan);
        CHECK(host_nan.find("[0, 1, 5, 7]") != std::string::npos);

        // a wrong output shape, and a bad configuration: the same messages
        deq::tensor_view<float, 4> const wrong(ds.device_data(), {b, h, l, l - 1});
        deq::tensor<float, 4> host_wrong({b, h, l, l - 1});
        CHECK(deq_test::message_of([&] { deq::predict_scores(space, vq, vq, config, wrong); }) ==
              deq_test::message_of([&] { deq::predict_scores(deq::exec::serial{}, hq, hq, config, host_wrong.view()); }));
        deq::predictor_config const bad{0.5, -1.0, 4};
        CHECK(deq_test::message_of([&] { deq::predict_scores(space, vq, vq, bad, vs); }) ==
              deq_test::message_of([&] { deq::predict_scores(deq::exec::serial{}, hq, hq, bad, host_scores.view()); }));

        // host memory where device memory is needed
        std::string const refused = deq_test::message_of([&] { deq::predict_scores(space, hq, vq, config, vs); });
        CHECK(refused.find("'q' is host memory") != std::string::npos);
        CHECK(deq_test::message_of([&] { deq::predict_scores(space, vq, vq, config, host_scores.view()); }).find("'scores' is host memory") !=
              std::string::npos);
    }
}
