// The GPU attention of deq (deq::exec::cuda, FP32) on FlashAttention's benchmark shapes: hidden 2048,
// heads = 2048 / d, batch = tokens / L. Times the predictor alone, dense attention, the Sanger pipeline
// (θ), Sanger's attention step alone on its own mask, and the DEQ pipeline (adamax_nb80), each the
// median of --repeats calls after one warm-up, and reports the effective TFLOP/s (dense count,
// 4·B·H·L²·d), the kept density (for DEQ: the refined fraction) and the cosine of each output with the dense one.
//
//   attention_cuda [--lengths 512,1024,2048,4096] [--dim 64] [--hidden 2048] [--tokens 16384]
//                  [--repeats 5] [--theta 0.02] [--dry-run]
//
// --dry-run prints the plan (shapes, device memory) and exits without touching a GPU.
#include <deq/attention/cuda/attention.hpp>
#include <deq/attention/cuda/pipelines.hpp>
#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/predict/cuda/predict_scores.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench_support.hpp"

namespace {

using deq::index_t;

struct options {
    std::vector<long> lengths{512, 1024, 2048, 4096};
    long dim = 64, hidden = 2048, tokens = 16384, repeats = 5;
    double theta = 0.02;
    bool dry_run = false;
};

options parse(int argc, char** argv) {
    options o;
    for (int a = 1; a < argc; ++a) {
        std::string const flag = argv[a];
        if (flag == "--dry-run") {
            o.dry_run = true;
            continue;
        }
        if (a + 1 >= argc) throw deq::invalid_argument(flag + ": missing value (see the usage at the top of benchmarks/attention_cuda.cu)");
        std::string const value = argv[++a];
        if (flag == "--lengths") {
            o.lengths.clear();
            for (std::string const& l : deq_bench::split(value, ',')) o.lengths.push_back(deq_bench::positive(flag, l));
        } else if (flag == "--dim") {
            o.dim = deq_bench::positive(flag, value);
        } else if (flag == "--hidden") {
            o.hidden = deq_bench::positive(flag, value);
        } else if (flag == "--tokens") {
            o.tokens = deq_bench::positive(flag, value);
        } else if (flag == "--repeats") {
            o.repeats = deq_bench::positive(flag, value);
        } else if (flag == "--theta") {
            o.theta = std::stod(value);
            if (!(o.theta >= 0.0 && o.theta <= 1.0)) throw deq::invalid_argument("--theta: expected a value in [0, 1], got '" + value + "'");
        } else {
            throw deq::invalid_argument("unknown flag '" + flag + "' (see the usage at the top of benchmarks/attention_cuda.cu)");
        }
    }
    if (o.hidden % o.dim != 0) throw deq::invalid_argument("--hidden must be a multiple of --dim");
    return o;
}

/// Rows with a shared direction per head (peaked attention, as in trained models) plus noise.
std::vector<float> make_rows(index_t rows, index_t dim, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> direction(static_cast<std::size_t>(dim));
    for (float& x : direction) x = normal(rng);
    std::vector<float> x(static_cast<std::size_t>(rows * dim));
    for (std::size_t e = 0; e < x.size(); ++e) x[e] = 0.8f * direction[e % static_cast<std::size_t>(dim)] + normal(rng);
    return x;
}

/// Median wall time of @p repeats calls of @p f after one warm-up, in milliseconds (every deq call on
/// exec::cuda returns after its kernels finished).
double median_ms(long repeats, std::function<void()> const& f) {
    f();
    std::vector<double> t;
    for (long r = 0; r < repeats; ++r) {
        auto const start = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

double cosine(std::vector<float> const& a, std::vector<float> const& b) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t e = 0; e < a.size(); ++e) {
        ab += static_cast<double>(a[e]) * b[e];
        aa += static_cast<double>(a[e]) * a[e];
        bb += static_cast<double>(b[e]) * b[e];
    }
    return ab / std::sqrt(aa * bb);
}

int run(options const& o) {
    std::printf("%6s %5s %5s %5s  %-16s %10s %9s %8s %9s\n", "L", "B", "H", "d", "mode", "ms", "TFLOP/s", "density", "cos(dense)");
    if (o.dry_run) {
        for (long l : o.lengths) {
            long const b = std::max(1L, o.tokens / l), h = o.hidden / o.dim;
            double const gib = (4.0 * b * h * l * o.dim + 1.0 * b * h * l * l) * 4.0 / (1 << 30);
            std::printf("%6ld %5ld %5ld %5ld  plan: predictor, dense, sanger, sanger-attention, deq (%.1f GiB of device memory)\n", l, b, h,
                        o.dim, gib);
        }
        std::printf("dry run: no GPU used\n");
        return 0;
    }
    deq::exec::cuda const space;
    for (long l : o.lengths) {
        index_t const b = std::max(1L, o.tokens / l), h = o.hidden / o.dim, d = o.dim, n = b * h * l * d;
        std::vector<float> const q = make_rows(b * h * l, d, 1), k = make_rows(b * h * l, d, 2), v = make_rows(b * h * l, d, 3);
        deq::tensor_view<float const, 4> const hq(q.data(), {b, h, l, d}), hk(k.data(), {b, h, l, d});
        deq::predictor_config const config = deq::calibrate_predictor(hq, hk, 4);
        auto const dq = deq::cuda::to_device(q), dk = deq::cuda::to_device(k), dv = deq::cuda::to_device(v);
        deq::cuda::device_array<float> out(n), scores(b * h * l * l);
        deq::tensor_view<float const, 4> const vq(dq.device_data(), {b, h, l, d}), vk(dk.device_data(), {b, h, l, d}),
            vv(dv.device_data(), {b, h, l, d});
        deq::tensor_view<float, 4> const vo(out.device_data(), {b, h, l, d});
        double const flops = 4.0 * static_cast<double>(b * h) * static_cast<double>(l) * static_cast<double>(l) * static_cast<double>(d);
        auto report = [&](char const* mode, double ms, double density, double cos) {
            std::printf("%6ld %5ld %5ld %5ld  %-16s %10.3f %9.3f %8.4f %9.6f\n", l, static_cast<long>(b), static_cast<long>(h),
                        static_cast<long>(d), mode, ms, flops / (ms * 1e-3) / 1e12, density, cos);
            std::fflush(stdout);
        };

        double const t_pred = median_ms(o.repeats, [&] {
            deq::predict_scores(space, vq, vk, config, deq::tensor_view<float, 4>(scores.device_data(), {b, h, l, l}));
        });
        report("predictor", t_pred, 1.0, 1.0);

        deq::attention_stats st;
        double const t_dense = median_ms(o.repeats, [&] { st = deq::attention(space, vq, vk, vv, vo); });
        std::vector<float> const dense = deq::cuda::to_host(out);
        report("dense", t_dense, st.density, 1.0);

        double const t_sanger = median_ms(o.repeats, [&] { st = deq::sanger_attention(space, vq, vk, vv, vo, config, o.theta); });
        report("sanger", t_sanger, st.density, cosine(deq::cuda::to_host(out), dense));
        deq::pipeline_masks masks;  // once more, untimed, for the mask (its copy to the host is not part of the pipeline's time)
        (void)deq::sanger_attention(space, vq, vk, vv, vo, config, o.theta, {}, deq::empty_row_policy::reference, &masks);

        auto const kept_words = deq::cuda::to_device(masks.kept.words());
        deq::attention_options<float> sparse;
        sparse.kept = deq::const_bit_mask_view(kept_words.device_data(), b, h, l, l);
        double const t_sparse = median_ms(o.repeats, [&] { st = deq::attention(space, vq, vk, vv, vo, sparse); });
        report("sanger-attention", t_sparse, st.density, cosine(deq::cuda::to_host(out), dense));

        deq::mask_rule const adamax = deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::sequence);
        double const t_deq = median_ms(o.repeats, [&] { st = deq::deq_attention(space, vq, vk, vv, vo, config, adamax); });
        report("deq", t_deq, st.refinement_ratio, cosine(deq::cuda::to_host(out), dense));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (std::exception const& e) {
        std::fprintf(stderr, "attention_cuda: %s\n", e.what());
        return 1;
    }
}
