// attention() on deq::exec::cuda against the host attention(): every mode (dense, padding, Sanger
// kept masks with empty rows under every policy, DEQ refined + predicted, three-level), float and
// double, head dimensions 32-128 and one whose tiles do not fit in shared memory; the same statistics
// and the same error messages (suite "gpu": needs a CUDA device).
#include <doctest/doctest.h>

#include <deq/attention/attention.hpp>
#include <deq/attention/cuda/attention.hpp>
#include <deq/attention/cuda/pipelines.hpp>
#include <deq/attention/pipelines.hpp>
#include <deq/core/bit_mask.hpp>
#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/exec/serial.hpp>
#include <deq/numeric/bfloat16.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_support.hpp"

namespace {

using deq::index_t;

/// Normal values with a shared direction per head (peaked attention rows), scaled by @p scale.
template <class T>
std::vector<T> make_values(index_t count, index_t dim, unsigned seed, double scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> direction(static_cast<std::size_t>(dim));
    for (double& x : direction) x = normal(rng);
    std::vector<T> x(static_cast<std::size_t>(count));
    for (std::size_t e = 0; e < x.size(); ++e) x[e] = static_cast<T>(scale * (0.6 * direction[e % dim] + normal(rng)));
    return x;
}

/// A random mask of about @p density, with rows 2 and 5 of every head kept nowhere (empty rows).
deq::bit_mask make_mask(index_t b, index_t h, index_t lq, index_t lk, double density, unsigned seed) {
    std::mt19937 rng(seed);
    std::bernoulli_distribution keep(density);
    deq::bit_mask m(b, h, lq, lk);
    for (index_t x = 0; x < b; ++x)
        for (index_t y = 0; y < h; ++y)
            for (index_t i = 0; i < lq; ++i)
                for (index_t j = 0; j < lk; ++j)
                    if (i != 2 && i != 5 && keep(rng)) m.set(x, y, i, j);
    return m;
}

/// What a case runs with (the host views; the device copies are made from them).
struct mode {
    bool padding = false;
    double kept_density = -1;     ///< < 0: no kept mask.
    double refined_density = -1;  ///< < 0: no refined mask.
    deq::empty_row_policy policy = deq::empty_row_policy::reference;
    bool skip_pruned = true;
    mode& pad() { return padding = true, *this; }
    mode& keep(double d) { return kept_density = d, *this; }
    mode& refine(double d) { return refined_density = d, *this; }
    mode& empty(deq::empty_row_policy p) { return policy = p, *this; }
    mode& no_skip() { return skip_pruned = false, *this; }
};

/// Runs one case on the host and on the device and compares outputs and statistics.
template <class T>
void compare(index_t b, index_t h, index_t lq, index_t lk, index_t d, index_t dv, mode const& md, double scale = 1.0) {
    using S = deq::accum_t<T>;
    std::vector<T> const q = make_values<T>(b * h * lq * d, d, 1, scale), k = make_values<T>(b * h * lk * d, d, 2, scale);
    std::vector<T> const v = make_values<T>(b * h * lk * dv, dv, 3, 1.0);
    std::vector<std::uint8_t> valid(static_cast<std::size_t>(b * lk), 1);
    if (md.padding)
        for (index_t j = lk * 2 / 3; j < lk; ++j) valid[static_cast<std::size_t>((b - 1) * lk + j)] = 0;
    deq::tensor_view<T const, 4> const hq(q.data(), {b, h, lq, d}), hk(k.data(), {b, h, lk, d}), hv(v.data(), {b, h, lk, dv});
    deq::bit_mask const kept = md.kept_density >= 0 ? make_mask(b, h, lq, lk, md.kept_density, 4) : deq::bit_mask{};
    deq::bit_mask const refined = md.refined_density >= 0 ? make_mask(b, h, lq, lk, md.refined_density, 5) : deq::bit_mask{};
    deq::tensor<S, 4> predicted;
    if constexpr (sizeof(T) >= 4) {  // (the 16-bit cases run without a refined mask)
        if (md.refined_density >= 0) predicted = deq::predict_scores(deq::exec::serial{}, hq, hk, deq::calibrate_predictor(hq, hk, 4));
    }

    deq::attention_options<S> host;
    if (md.padding) host.padding = deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {b, lk})};
    if (md.kept_density >= 0) host.kept = kept.view();
    if (md.refined_density >= 0) {
        host.refined = refined.view();
        host.predicted = predicted.view();
    }
    host.empty_rows = md.policy;
    host.skip_pruned = md.skip_pruned;
    std::vector<T> expected(static_cast<std::size_t>(b * h * lq * dv));
    deq::attention_stats const hs =
        deq::attention(deq::exec::serial{}, hq, hk, hv, deq::tensor_view<T, 4>(expected.data(), {b, h, lq, dv}), host);

    deq::exec::cuda const space;
    auto const dq = deq::cuda::to_device(q), dk = deq::cuda::to_device(k), dvv = deq::cuda::to_device(v);
    auto const dvalid = deq::cuda::to_device(valid);
    deq::cuda::device_array<std::uint64_t> dkept, dref;
    deq::cuda::device_array<S> dpred;
    deq::cuda::device_array<T> dout(b * h * lq * dv);
    deq::attention_options<S> dev = host;
    if (md.padding) dev.padding = deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(dvalid.device_data(), {b, lk})};
    if (md.kept_density >= 0) {
        dkept = deq::cuda::to_device(kept.words());
        dev.kept = deq::const_bit_mask_view(dkept.device_data(), b, h, lq, lk);
    }
    if (md.refined_density >= 0) {
        dref = deq::cuda::to_device(refined.words());
        dev.refined = deq::const_bit_mask_view(dref.device_data(), b, h, lq, lk);
        dpred = deq::cuda::to_device(std::vector<S>(predicted.view().data(), predicted.view().data() + b * h * lq * lk));
        dev.predicted = deq::tensor_view<S const, 4>(dpred.device_data(), {b, h, lq, lk});
    }
    deq::attention_stats const ds =
        deq::attention(space, deq::tensor_view<T const, 4>(dq.device_data(), {b, h, lq, d}),
                       deq::tensor_view<T const, 4>(dk.device_data(), {b, h, lk, d}),
                       deq::tensor_view<T const, 4>(dvv.device_data(), {b, h, lk, dv}),
                       deq::tensor_view<T, 4>(dout.device_data(), {b, h, lq, dv}), dev);
    std::vector<T> const got = deq::cuda::to_host(dout);

    double vmax = 0;
    for (T x : v) vmax = std::max(vmax, std::abs(static_cast<double>(x)));
    double worst = 0;
    for (std::size_t e = 0; e < got.size(); ++e) {
        double const g = static_cast<double>(got[e]), x = static_cast<double>(expected[e]);
        worst = std::max(worst, std::abs(g - x) / (std::abs(x) + 1e-2 * vmax));
    }
    // float and double: 1e-5 relative; 16-bit outputs: the host and the device round the same float
    // results, which differ by rounding, to the nearest 16-bit value (within one unit of the last place)
    double const tolerance = sizeof(T) >= 4 ? 1e-5 : (std::is_same_v<T, deq::bfloat16> ? 1.0 / 128 : 1.0 / 1024);
    CHECK(worst <= tolerance);
    CHECK(ds.rows == hs.rows);
    CHECK(ds.empty_rows == hs.empty_rows);
    CHECK(ds.valid_pairs == hs.valid_pairs);
    CHECK(ds.kept_pairs == hs.kept_pairs);
    CHECK(ds.refined_pairs == hs.refined_pairs);
    CHECK(ds.density == hs.density);
    CHECK(ds.refinement_ratio == hs.refinement_ratio);
}

/// The pipelines on the host and on the device: the same masks (bit for bit), statistics and outputs
/// (within 1e-5 relative in float, one unit of the last place for 16-bit outputs).
template <class T>
void compare_pipelines(index_t b, index_t h, index_t l, index_t d, bool padded) {
    std::vector<T> const q = make_values<T>(b * h * l * d, d, 7, 1.5), k = make_values<T>(b * h * l * d, d, 8, 1.5);
    std::vector<T> const v = make_values<T>(b * h * l * d, d, 9, 1.0);
    std::vector<std::uint8_t> valid(static_cast<std::size_t>(b * l), 1);
    if (padded)
        for (index_t j = l / 2; j < l; ++j) valid[static_cast<std::size_t>((b - 1) * l + j)] = 0;
    deq::tensor_view<T const, 4> const hq(q.data(), {b, h, l, d}), hk(k.data(), {b, h, l, d}), hv(v.data(), {b, h, l, d});
    deq::key_padding const hpad = padded ? deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {b, l})} : deq::key_padding{};
    deq::predictor_config const config = deq::calibrate_predictor(hq, hk, 4);

    deq::exec::cuda const space;
    auto const dq = deq::cuda::to_device(q), dk = deq::cuda::to_device(k), dvv = deq::cuda::to_device(v);
    auto const dvalid = deq::cuda::to_device(valid);
    deq::tensor_view<T const, 4> const vq(dq.device_data(), {b, h, l, d}), vk(dk.device_data(), {b, h, l, d}), vv(dvv.device_data(), {b, h, l, d});
    deq::key_padding const dpad = padded ? deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(dvalid.device_data(), {b, l})} : deq::key_padding{};
    deq::cuda::device_array<T> dout(b * h * l * d);
    deq::tensor_view<T, 4> const vo(dout.device_data(), {b, h, l, d});
    std::vector<T> expected(static_cast<std::size_t>(b * h * l * d));
    deq::tensor_view<T, 4> const ho(expected.data(), {b, h, l, d});
    double const tolerance = sizeof(T) >= 4 ? 1e-5 : (std::is_same_v<T, deq::bfloat16> ? 1.0 / 128 : 1.0 / 1024);

    auto check = [&](char const* what, deq::attention_stats const& hs, deq::attention_stats const& ds, deq::pipeline_masks const& hm,
                     deq::pipeline_masks const& dm) {
        CAPTURE(what);
        CHECK(hm.kept == dm.kept);
        CHECK(hm.refined == dm.refined);
        CHECK(ds.kept_pairs == hs.kept_pairs);
        CHECK(ds.refined_pairs == hs.refined_pairs);
        CHECK(ds.empty_rows == hs.empty_rows);
        CHECK(ds.density == hs.density);
        std::vector<T> const got = deq::cuda::to_host(dout);
        double worst = 0;
        for (std::size_t e = 0; e < got.size(); ++e) {
            double const g = static_cast<double>(got[e]), x = static_cast<double>(expected[e]);
            worst = std::max(worst, std::abs(g - x) / (std::abs(x) + 1e-2));
        }
        CHECK(worst <= tolerance);
    };
    deq::mask_rule const refine = deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::sequence);
    for (double theta : {0.02, 0.002}) {
        deq::pipeline_masks hm, dm;
        auto const hs = deq::sanger_attention(deq::exec::serial{}, hq, hk, hv, ho, config, theta, hpad, deq::empty_row_policy::reference, &hm);
        auto const ds = deq::sanger_attention(space, vq, vk, vv, vo, config, theta, dpad, deq::empty_row_policy::reference, &dm);
        check("sanger", hs, ds, hm, dm);
    }
    {
        deq::pipeline_masks hm, dm;
        auto const hs = deq::deq_attention(deq::exec::serial{}, hq, hk, hv, ho, config, refine, hpad, &hm);
        auto const ds = deq::deq_attention(space, vq, vk, vv, vo, config, refine, dpad, &dm);
        check("deq adamax_nb80", hs, ds, hm, dm);
    }
    {
        deq::pipeline_masks hm, dm;
        deq::mask_rule const prune = deq::mask_rule::probability(0.002);
        auto const hs = deq::three_level_attention(deq::exec::serial{}, hq, hk, hv, ho, config, prune, refine, hpad,
                                                   deq::empty_row_policy::uniform, &hm);
        auto const ds = deq::three_level_attention(space, vq, vk, vv, vo, config, prune, refine, dpad, deq::empty_row_policy::uniform, &dm);
        check("three-level", hs, ds, hm, dm);
    }
}

}  // namespace

TEST_SUITE("gpu") {
    TEST_CASE("pipelines on exec::cuda: Sanger (θ = 0.02, 0.002), DEQ (adamax_nb80) and three-level give the host's masks and outputs (float, float16, bfloat16)") {
        compare_pipelines<float>(2, 3, 64, 64, true);
        compare_pipelines<float>(1, 4, 97, 32, false);
        compare_pipelines<deq::float16>(2, 3, 64, 64, true);
        compare_pipelines<deq::bfloat16>(1, 4, 97, 32, true);
    }

    TEST_CASE("attention on exec::cuda: dense and padded, float and double, d = 32 / 64 / 80 / 128, dv != d, Lq != Lk") {
        compare<float>(2, 3, 45, 70, 64, 64, mode());
        compare<float>(2, 3, 45, 70, 64, 64, mode().pad());
        compare<float>(1, 2, 33, 33, 32, 32, mode().pad());
        compare<float>(1, 2, 17, 129, 80, 48, mode());
        compare<float>(1, 2, 40, 300, 128, 128, mode().pad());
        compare<double>(2, 2, 21, 37, 64, 64, mode().pad());
    }

    TEST_CASE("attention on exec::cuda: float16 and bfloat16 inputs (scores in float), dense and Sanger masks") {
        compare<deq::float16>(2, 3, 45, 70, 64, 64, mode().pad());
        compare<deq::float16>(1, 2, 30, 120, 128, 128, mode().keep(0.2));
        compare<deq::bfloat16>(2, 3, 45, 70, 64, 64, mode().pad());
        compare<deq::bfloat16>(1, 2, 30, 120, 80, 80, mode().keep(0.2).empty(deq::empty_row_policy::uniform));
    }

    TEST_CASE("attention on exec::cuda: Sanger kept masks with empty rows under every policy, with and without skipping") {
        for (deq::empty_row_policy const policy : {deq::empty_row_policy::reference, deq::empty_row_policy::uniform, deq::empty_row_policy::zero}) {
            CAPTURE(deq::to_string(policy));
            compare<float>(2, 3, 40, 200, 64, 64, mode().pad().keep(0.1).empty(policy));
            compare<float>(2, 3, 40, 200, 64, 64, mode().pad().keep(0.1).empty(policy).no_skip());
        }
        // larger scores: the -10000 arithmetic of the empty rows rounds visibly, and skipping is proved often
        compare<float>(1, 2, 30, 150, 64, 64, mode().keep(0.2), 3.0);
        compare<double>(1, 2, 30, 90, 64, 64, mode().pad().keep(0.2));
    }

    TEST_CASE("attention on exec::cuda: DEQ (refined + predicted) and three-level (kept + refined)") {
        compare<float>(2, 3, 40, 96, 64, 64, mode().pad().refine(0.2));
        compare<float>(2, 3, 40, 96, 64, 64, mode().pad().keep(0.3).refine(0.4));
        compare<double>(1, 2, 25, 50, 32, 32, mode().keep(0.3).refine(0.4));
    }

    TEST_CASE("attention on exec::cuda: a head dimension whose tiles do not fit in shared memory (keys read from global memory)") {
        compare<float>(1, 1, 20, 70, 1500, 1500, mode().keep(0.3));
    }

    TEST_CASE("attention on exec::cuda: bad input is rejected with the host's messages, and host memory is refused") {
        index_t const b = 1, h = 2, l = 8, d = 32;
        std::vector<float> q = make_values<float>(b * h * l * d, d, 1, 1.0), v = q;
        v[static_cast<std::size_t>(1 * l * d + 5 * d + 7)] = std::numeric_limits<float>::infinity();  // v[0, 1, 5, 7]
        deq::tensor_view<float const, 4> const hq(q.data(), {b, h, l, d}), hv(v.data(), {b, h, l, d});
        std::vector<float> host_out(static_cast<std::size_t>(b * h * l * d));
        deq::tensor_view<float, 4> const ho(host_out.data(), {b, h, l, d});
        std::string const host_inf = deq_test::message_of([&] { deq::attention(deq::exec::serial{}, hq, hq, hv, ho); });
        CHECK(host_inf.find("[0, 1, 5, 7]") != std::string::npos);

        deq::exec::cuda const space;
        auto const dq = deq::cuda::to_device(q), dv = deq::cuda::to_device(v);
        deq::cuda::device_array<float> dout(b * h * l * d);
        deq::tensor_view<float const, 4> const vq(dq.device_data(), {b, h, l, d}), vv(dv.device_data(), {b, h, l, d});
        deq::tensor_view<float, 4> const vo(dout.device_data(), {b, h, l, d});
        CHECK(deq_test::message_of([&] { deq::attention(space, vq, vq, vv, vo); }) == host_inf);

        // a wrong output shape and an invalid policy: the same messages
        deq::tensor_view<float, 4> const wrong(dout.device_data(), {b, h, l - 1, d});
        deq::tensor_view<float, 4> const host_wrong(host_out.data(), {b, h, l - 1, d});
        CHECK(deq_test::message_of([&] { deq::attention(space, vq, vq, vq, wrong); }) ==
              deq_test::message_of([&] { deq::attention(deq::exec::serial{}, hq, hq, hq, host_wrong); }));
        deq::attention_options<float> bad;
        bad.empty_rows = static_cast<deq::empty_row_policy>(7);
        CHECK(deq_test::message_of([&] { deq::attention(space, vq, vq, vq, vo, bad); }) ==
              deq_test::message_of([&] { deq::attention(deq::exec::serial{}, hq, hq, hq, ho, bad); }));

        // host memory where device memory is needed
        CHECK(deq_test::message_of([&] { deq::attention(space, hq, vq, vq, vo); }).find("'q' is host memory") != std::string::npos);
        CHECK(deq_test::message_of([&] { deq::attention(space, vq, vq, vq, ho); }).find("'out' is host memory") != std::string::npos);
        deq::bit_mask const kept(b, h, l, l, true);
        deq::attention_options<float> host_mask;
        host_mask.kept = kept.view();
        CHECK(deq_test::message_of([&] { deq::attention(space, vq, vq, vq, vo, host_mask); }).find("'kept' is host memory") != std::string::npos);
    }
}
