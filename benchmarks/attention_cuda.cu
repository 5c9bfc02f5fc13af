// The GPU attention of deq (deq::exec::cuda), in two forms.
//
// Synthetic (FP32, tests/cuda/run_on_gpu.sh): FlashAttention's benchmark shapes, hidden 2048, heads =
// 2048 / d, batch = tokens / L. Times the predictor alone, dense attention, the Sanger pipeline (θ),
// Sanger's attention step alone on its own mask, and the DEQ pipeline (adamax_nb80), each the median of
// --repeats calls after one warm-up, and reports the effective TFLOP/s (dense count, 4·B·H·L²·d), the
// kept density (for DEQ: the refined fraction) and the cosine of each output with the dense one.
//
//   attention_cuda [--lengths 512,1024,2048,4096] [--dim 64] [--hidden 2048] [--tokens 16384]
//                  [--repeats 5] [--theta 0.02] [--dry-run]
//
// On given inputs (python/deq_bench/attention_gpu.py, which times PyTorch's SDPA and FlexAttention on
// the same inputs): q, k, v [B, H, L, d] from a safetensors file, in its dtype (F32, F16 or BF16; scores
// in float). Modes, each timed as above:
//   predictor     predict_scores() on float copies of q and k (4 bits, calibrated on the inputs)
//   dense         attention()
//   sanger        the kept mask (predict_scores + select_elements, P̂ > θ) and attention() on it; the
//                 JSON gives the mask time and the attention time
//   deq           the refined mask (adamax_nb80) and attention() with the predicted Ŝ elsewhere
//   block-sparse  attention() on the Sanger mask's --block x --block tiles (every entry of a tile that
//                 holds a kept entry), the mask FlexAttention gets
// and writes the outputs (float32) and the tile occupancy (uint8 [B, H, L/block, L/block]) to --outputs,
// the times and densities to --json.
//
//   attention_cuda --inputs FILE --json FILE --outputs FILE [--theta 0.02] [--block 128] [--repeats 5]
//
// --dry-run prints the plan and exits without touching a GPU (both forms).
#include <deq/attention/cuda/attention.hpp>
#include <deq/attention/cuda/pipelines.hpp>
#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/io/json.hpp>
#include <deq/io/safetensors.hpp>
#include <deq/mask/cuda/select_elements.hpp>
#include <deq/numeric/bfloat16.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/predict/cuda/predict_scores.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_support.hpp"

namespace {

using deq::index_t;

struct options {
    std::vector<long> lengths{512, 1024, 2048, 4096};
    long dim = 64, hidden = 2048, tokens = 16384, repeats = 5;
    long block = 128;
    double theta = 0.02;
    bool dry_run = false;
    std::string inputs, json, outputs;
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
        } else if (flag == "--block") {
            o.block = deq_bench::positive(flag, value);
        } else if (flag == "--inputs") {
            o.inputs = value;
        } else if (flag == "--json") {
            o.json = value;
        } else if (flag == "--outputs") {
            o.outputs = value;
        } else if (flag == "--theta") {
            o.theta = std::stod(value);
            if (!(o.theta >= 0.0 && o.theta <= 1.0)) throw deq::invalid_argument("--theta: expected a value in [0, 1], got '" + value + "'");
        } else {
            throw deq::invalid_argument("unknown flag '" + flag + "' (see the usage at the top of benchmarks/attention_cuda.cu)");
        }
    }
    if (o.hidden % o.dim != 0) throw deq::invalid_argument("--hidden must be a multiple of --dim");
    if (!o.inputs.empty() && (o.json.empty() || o.outputs.empty())) throw deq::invalid_argument("--inputs needs --json and --outputs");
    if (o.block % 64 != 0) throw deq::invalid_argument("--block must be a multiple of 64");
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

/// The given-inputs form with element type T (see the file documentation).
template <class T>
int run_inputs(options const& o, deq::io::safetensors_file const& file) {
    // (read as float, which holds every F16 / BF16 value exactly, then converted back to T)
    auto const fq = file.get_float<4>("q"), fk = file.get_float<4>("k"), fv = file.get_float<4>("v");
    auto as_t = [](deq::tensor<float, 4> const& x) {
        deq::tensor<T, 4> t({x.extent(0), x.extent(1), x.extent(2), x.extent(3)});
        for (index_t e = 0; e < x.size(); ++e) t.data()[e] = static_cast<T>(x.data()[e]);
        return t;
    };
    auto const hq = as_t(fq), hk = as_t(fk), hv = as_t(fv);
    index_t const b = hq.extent(0), h = hq.extent(1), l = hq.extent(2), d = hq.extent(3), lk = hk.extent(2);
    deq::predictor_config const config = deq::calibrate_predictor(fq.cview(), fk.cview(), 4);
    deq::exec::cuda const space;
    auto upload = [&](auto const& t) { return deq::cuda::to_device(std::vector<std::remove_cvref_t<decltype(*t.data())>>(t.data(), t.data() + t.size())); };
    auto const dq = upload(hq), dk = upload(hk), dv = upload(hv);
    auto const dfq = upload(fq), dfk = upload(fk);
    deq::tensor_view<T const, 4> const vq(dq.device_data(), {b, h, l, d}), vk(dk.device_data(), {b, h, lk, d}),
        vv(dv.device_data(), {b, h, lk, hv.extent(3)});
    deq::tensor_view<float const, 4> const vfq(dfq.device_data(), {b, h, l, d}), vfk(dfk.device_data(), {b, h, lk, d});
    index_t const dvx = hv.extent(3), n_out = b * h * l * dvx;
    deq::cuda::device_array<T> out(n_out);
    deq::tensor_view<T, 4> const vo(out.device_data(), {b, h, l, dvx});
    deq::cuda::device_array<float> scores(b * h * l * lk);
    deq::tensor_view<float, 4> const vs(scores.device_data(), {b, h, l, lk});
    index_t const words = b * h * l * deq::mask_words_per_row(lk);
    deq::cuda::device_array<std::uint64_t> kept(words), refined(words), blocks(words);
    deq::bit_mask_view const vkept(kept.device_data(), b, h, l, lk), vref(refined.device_data(), b, h, l, lk), vblk(blocks.device_data(), b, h, l, lk);

    deq::io::json doc = deq::io::json::object();
    doc["shape"] = deq::io::json::array();
    for (index_t e : {b, h, l, d}) doc["shape"].push_back(static_cast<double>(e));
    deq::io::safetensors_writer w;
    auto keep_output = [&](char const* name) {
        std::vector<T> const host = deq::cuda::to_host(out);
        deq::tensor<float, 4> f({b, h, l, dvx});
        for (index_t e = 0; e < n_out; ++e) f.data()[e] = static_cast<float>(host[static_cast<std::size_t>(e)]);
        w.add(name, f);
    };
    deq::io::json modes = deq::io::json::object();
    auto record = [&](char const* name, double ms, double density) {
        deq::io::json m = deq::io::json::object();
        m["ms"] = ms;
        m["density"] = density;
        modes[name] = m;
        std::printf("%-14s %10.3f ms  density %.4f\n", name, ms, density);
        std::fflush(stdout);
    };

    record("predictor", median_ms(o.repeats, [&] { deq::predict_scores(space, vfq, vfk, config, vs); }), 1.0);
    deq::attention_stats st;
    record("dense", median_ms(o.repeats, [&] { st = deq::attention(space, vq, vk, vv, vo); }), st.density);
    keep_output("dense");

    double const t_kept = median_ms(o.repeats, [&] {
        deq::predict_scores(space, vfq, vfk, config, vs);
        deq::select_elements(space, deq::tensor_view<float const, 4>(vs), {}, deq::mask_rule::probability(o.theta), vkept);
    });
    deq::attention_options<float> sanger;
    sanger.kept = vkept;
    double const t_sanger = median_ms(o.repeats, [&] { st = deq::attention(space, vq, vk, vv, vo, sanger); });
    record("sanger", t_kept + t_sanger, st.density);
    modes["sanger"]["mask_ms"] = t_kept;
    modes["sanger"]["attention_ms"] = t_sanger;
    keep_output("sanger");

    // the tile occupancy of the Sanger mask, and the block mask it makes
    deq::bit_mask const host_kept = [&] {
        deq::bit_mask m(b, h, l, lk);
        deq::cuda::copy_to_host(kept, std::span<std::uint64_t>(m.view().words(), m.words().size()));
        return m;
    }();
    // word by word (--block is a multiple of 64): a tile is occupied when a word of one of its rows is non-zero
    index_t const qb = (l + o.block - 1) / o.block, kb = (lk + o.block - 1) / o.block, wpr = deq::mask_words_per_row(lk);
    index_t const words_per_tile = o.block / 64;
    deq::tensor<std::uint8_t, 4> occupancy({b, h, qb, kb});
    for (index_t x = 0; x < b; ++x)
        for (index_t y = 0; y < h; ++y)
            for (index_t i = 0; i < l; ++i) {
                std::uint64_t const* row = host_kept.view().row(x, y, i);
                for (index_t wd = 0; wd < wpr; ++wd)
                    if (row[wd] != 0) occupancy(x, y, i / o.block, wd / words_per_tile) = 1;
            }
    deq::bit_mask block_mask(b, h, l, lk);
    for (index_t x = 0; x < b; ++x)
        for (index_t y = 0; y < h; ++y)
            for (index_t i = 0; i < l; ++i) {
                std::uint64_t* row = block_mask.view().row(x, y, i);
                for (index_t wd = 0; wd < wpr; ++wd) {
                    if (occupancy(x, y, i / o.block, wd / words_per_tile) == 0) continue;
                    index_t const bits_here = lk - wd * 64 < 64 ? lk - wd * 64 : 64;
                    row[wd] = bits_here == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits_here) - 1;
                }
            }
    deq::cuda::copy_to_device(std::span<std::uint64_t const>(block_mask.words()), blocks);
    w.add("block_occupancy", occupancy);
    deq::attention_options<float> block_sparse;
    block_sparse.kept = vblk;
    record("block-sparse", median_ms(o.repeats, [&] { st = deq::attention(space, vq, vk, vv, vo, block_sparse); }), st.density);
    keep_output("block-sparse");

    deq::mask_rule const adamax = deq::mask_rule::adaptive_maximum(0.8, deq::max_granularity::sequence);
    double const t_refined = median_ms(o.repeats, [&] {
        deq::predict_scores(space, vfq, vfk, config, vs);
        deq::select_elements(space, deq::tensor_view<float const, 4>(vs), {}, adamax, vref);
    });
    deq::attention_options<float> mixed;
    mixed.refined = vref;
    mixed.predicted = deq::tensor_view<float const, 4>(vs);
    double const t_deq = median_ms(o.repeats, [&] { st = deq::attention(space, vq, vk, vv, vo, mixed); });
    record("deq", t_refined + t_deq, st.refinement_ratio);
    modes["deq"]["mask_ms"] = t_refined;
    modes["deq"]["attention_ms"] = t_deq;
    keep_output("deq");

    doc["modes"] = modes;
    doc["repeats"] = static_cast<double>(o.repeats);
    doc["theta"] = o.theta;
    doc["block"] = static_cast<double>(o.block);
    w.write(o.outputs);
    std::ofstream(o.json) << doc.dump() << "\n";
    return 0;
}

int run(options const& o) {
    if (!o.inputs.empty()) {
        if (o.dry_run) {
            std::printf("dry run: would time predictor, dense, sanger (θ = %g), block-sparse (%ld x %ld tiles) and deq on %s, writing %s and %s\n",
                        o.theta, o.block, o.block, o.inputs.c_str(), o.json.c_str(), o.outputs.c_str());
            return 0;
        }
        auto const file = deq::io::safetensors_file::open(o.inputs);
        switch (file.info("q").type) {
            case deq::io::dtype::F16: return run_inputs<deq::float16>(o, file);
            case deq::io::dtype::BF16: return run_inputs<deq::bfloat16>(o, file);
            default: return run_inputs<float>(o, file);
        }
    }
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
