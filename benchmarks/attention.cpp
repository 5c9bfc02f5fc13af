// Attention kernel benchmark: deq's dense, Sanger, DEQ and predictor paths on given inputs, timed on
// the same inputs and threads as the PyTorch side (python/deq_bench/attention_bench.py drives both).
//
// Inputs: a safetensors file with q, k, v ([B, H, L, d], float32) and optionally `valid` ([B, L],
// uint8, 1 = real token), plus `threshold_q` / `threshold_k` scalars (the predictor thresholds; the
// file's calibration otherwise). Per mode and thread count: `--warmup` untimed runs, then at least
// --min-repeats and at most --repeats timed runs (stopping once --budget seconds are spent); the
// median and 90th percentile are reported.
//
// Modes:
//   dense                 deq::attention
//   sanger:THETA          deq::sanger_attention (fused predictor, masks, sparse flash attention)
//   deq:RULE              deq::deq_attention, e.g. deq:adamax_nb80
//   predictor             the predictor alone: normalise + quantize q and k, then one pass over every
//                         integer score tile of Ŝ, rescaled, with the rows' maxima (the work of one
//                         fused selection pass), no [B,H,L,L] store
// Accuracy (first sequence, first 4 heads; once per mode): cosine similarity and largest absolute error against the
// same semantics in float64 (dense: dense; Sanger: the same kept mask; DEQ: the same refined mask and
// predicted scores), computed with deq's reference kernel in double.
//
//   attention --inputs FILE [--modes dense,sanger:0.02,deq:adamax_nb80,predictor] [--threads 1,2]
//             [--warmup 2] [--repeats 20] [--min-repeats 3] [--budget 6] [--no-accuracy] [--json FILE]
// The JSON document also holds the process's peak resident memory (run one mode with --no-accuracy to
// measure what that mode allocates) next to the size of q, k, v and the output.
#include "bench_support.hpp"

#include <deq/arch/isa.hpp>
#include <deq/attention/attention.hpp>
#include <deq/attention/pipelines.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/json.hpp>
#include <deq/io/safetensors.hpp>
#include <deq/mask/mask_rule.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using deq::index_t;

namespace {

struct options {
    fs::path inputs, json_out;
    std::vector<std::string> modes{"dense", "sanger:0.02", "deq:adamax_nb80", "predictor"};
    std::vector<int> threads{1, 2};
    int warmup = 2, repeats = 20, min_repeats = 3;
    double budget = 6.0;
    bool accuracy = true;
};

/// The process's peak resident set (VmHWM of /proc/self/status) in MiB, or -1 where unavailable.
double peak_rss_mib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
    }
    return -1;
}

using deq_bench::positive;
using deq_bench::split;

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw deq::invalid_argument(a + ": missing value");
            return argv[++i];
        };
        if (a == "--inputs") o.inputs = next();
        else if (a == "--json") o.json_out = next();
        else if (a == "--modes") o.modes = split(next(), ',');
        else if (a == "--threads") {
            o.threads.clear();
            for (auto const& t : split(next(), ',')) o.threads.push_back(static_cast<int>(positive("--threads", t)));
        } else if (a == "--warmup") o.warmup = std::stoi(next());
        else if (a == "--repeats") o.repeats = static_cast<int>(positive("--repeats", next()));
        else if (a == "--min-repeats") o.min_repeats = static_cast<int>(positive("--min-repeats", next()));
        else if (a == "--budget") o.budget = std::stod(next());
        else if (a == "--no-accuracy") o.accuracy = false;
        else if (a == "--help" || a == "-h") {
            std::cout << "attention --inputs FILE [--modes dense,sanger:0.02,deq:adamax_nb80,predictor] [--threads 1,2]\n"
                         "          [--warmup N] [--repeats N] [--min-repeats N] [--budget SECONDS] [--json FILE]\n";
            std::exit(0);
        } else {
            throw deq::invalid_argument("unknown argument '" + a + "' (see --help)");
        }
    }
    if (o.inputs.empty()) throw deq::invalid_argument("--inputs: missing (a safetensors file with q, k, v)");
    if (o.min_repeats > o.repeats) o.min_repeats = o.repeats;
    return o;
}

using clock_type = std::chrono::steady_clock;

struct timing {
    double median_ms = 0, p90_ms = 0;
    int runs = 0;
};

template <class F>
timing time_runs(options const& o, F&& f) {
    for (int w = 0; w < o.warmup; ++w) f();
    std::vector<double> ms;
    auto const start = clock_type::now();
    while (static_cast<int>(ms.size()) < o.repeats) {
        auto const t0 = clock_type::now();
        f();
        ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
        double const spent = std::chrono::duration<double>(clock_type::now() - start).count();
        if (static_cast<int>(ms.size()) >= o.min_repeats && spent > o.budget) break;
    }
    std::sort(ms.begin(), ms.end());
    timing t;
    t.runs = static_cast<int>(ms.size());
    t.median_ms = ms[ms.size() / 2];
    t.p90_ms = ms[std::min(ms.size() - 1, static_cast<std::size_t>(std::ceil(0.9 * static_cast<double>(ms.size()))) - 1)];
    return t;
}

/// Heads whose accuracy is checked (of the first sequence).
inline constexpr index_t accuracy_heads = 4;

/// The first accuracy_heads heads of the first sequence of a [B, H, ...] tensor as a [1, h, ...] view.
template <class T>
deq::tensor_view<T const, 4> first(deq::tensor<T, 4> const& t) {
    return deq::tensor_view<T const, 4>(t.data(), {1, std::min(accuracy_heads, t.extent(1)), t.extent(2), t.extent(3)});
}

template <class T>
deq::tensor<double, 4> widen(deq::tensor_view<T const, 4> x) {
    deq::tensor<double, 4> out({x.extent(0), x.extent(1), x.extent(2), x.extent(3)});
    for (index_t n = 0; n < out.size(); ++n) out.data()[n] = static_cast<double>(x.data()[n]);
    return out;
}

struct accuracy {
    double cosine = 0, max_abs = 0;
};

accuracy compare(deq::tensor_view<float const, 4> got, deq::tensor<double, 4> const& want) {
    double dot = 0, ng = 0, nw = 0, worst = 0;
    for (index_t n = 0; n < want.size(); ++n) {
        double const g = got.data()[n], w = want.data()[n];
        dot += g * w;
        ng += g * g;
        nw += w * w;
        worst = std::fmax(worst, std::fabs(g - w));
    }
    return {ng > 0 && nw > 0 ? dot / std::sqrt(ng * nw) : 1.0, worst};
}

}  // namespace

int main(int argc, char** argv) try {
    options const o = parse(argc, argv);
    deq::tensor<float, 4> q, k, v;
    deq::tensor<std::uint8_t, 2> valid;
    std::optional<double> tq, tk;
    {  // the file's bytes are released once the tensors are read (the peak memory counts what the calls use)
        auto const file = deq::io::safetensors_file::open(o.inputs);
        q = file.get_float<4>("q");
        k = file.get_float<4>("k", {q.extent(0), q.extent(1), -1, q.extent(3)});
        v = file.get_float<4>("v", {k.extent(0), k.extent(1), k.extent(2), -1});
        if (file.contains("valid")) valid = file.get<std::uint8_t, 2>("valid", {q.extent(0), k.extent(2)});
        if (file.contains("threshold_q")) tq = file.get_scalar<double>("threshold_q");
        if (file.contains("threshold_k")) tk = file.get_scalar<double>("threshold_k");
    }
    index_t const B = q.extent(0), H = q.extent(1), Lq = q.extent(2), Lk = k.extent(2), d = q.extent(3), dv = v.extent(3);
    deq::key_padding padding;
    if (valid.size() > 0) padding = deq::key_padding{valid.cview()};
    deq::predictor_config config = deq::calibrate_predictor(q.cview(), k.cview(), 4);
    if (tq) config.threshold_q = *tq;
    if (tk) config.threshold_k = *tk;
    config.validate();

    deq::io::json doc = deq::io::json::object();
    doc["inputs"] = (o.inputs.string());
    doc["shape"] = (deq::io::json::array({deq::io::json(B), deq::io::json(H), deq::io::json(Lq), deq::io::json(Lk), deq::io::json(d), deq::io::json(dv)}));
    doc["isa"] = (std::string(deq::arch::to_string(deq::arch::active_isa())));
    doc["threshold_q"] = (config.threshold_q);
    doc["threshold_k"] = (config.threshold_k);
    deq::io::json results = deq::io::json::array();
    double const dense_flops = 4.0 * static_cast<double>(B * H) * static_cast<double>(Lq) * static_cast<double>(Lk) * static_cast<double>(d);

    // The float64 references of the first sequence, one per mode (computed once).
    deq::tensor<double, 4> q64, k64, v64;
    if (o.accuracy) {
        q64 = widen(first(q));
        k64 = widen(first(k));
        v64 = widen(first(v));
    }
    deq::key_padding const padding1 = padding.none() ? padding : deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {1, Lk})};

    for (std::string const& mode : o.modes) {
        std::string const kind = mode.substr(0, mode.find(':'));
        std::string const arg = mode.find(':') == std::string::npos ? std::string() : mode.substr(mode.find(':') + 1);
        if (kind != "dense" && kind != "sanger" && kind != "deq" && kind != "predictor") {
            throw deq::invalid_argument("--modes: unknown mode '" + mode + "' (dense, sanger:THETA, deq:RULE, predictor)");
        }
        deq::mask_rule const rule = kind == "sanger" ? deq::mask_rule::probability(std::stod(arg))
                                    : kind == "deq"  ? deq::parse_mask_rule(arg)
                                                     : deq::mask_rule::keep_all();
        for (int threads : o.threads) {
            deq::exec::threads const space(threads);
            deq::tensor<float, 4> out({B, H, Lq, dv});
            deq::attention_stats stats;
            deq::pipeline_masks masks;
            auto run = [&] {
                if (kind == "dense") {
                    stats = deq::attention(space, q.cview(), k.cview(), v.cview(), out.view(), padding);
                } else if (kind == "sanger") {
                    stats = deq::sanger_attention(space, q.cview(), k.cview(), v.cview(), out.view(), config, rule, padding,
                                                  deq::empty_row_policy::reference, &masks);
                } else if (kind == "deq") {
                    stats = deq::deq_attention(space, q.cview(), k.cview(), v.cview(), out.view(), config, rule, padding, &masks);
                } else {
                    auto const ops = deq::detail::make_predictor_operands<deq::exec::threads, float, float, std::int8_t>(
                        space, q.cview(), k.cview(), config);
                    // One pass over every score tile with the rows' maxima (what a fused selection pass computes).
                    std::vector<float> row_max(static_cast<std::size_t>(B * H * Lq));
                    std::vector<index_t> status(row_max.size(), deq::detail::select_row_ok);
                    deq::detail::fused_select_kernel<float, std::int8_t> pass{&ops, {}, padding, {}, deq::detail::fused_select_step::row_max,
                                                                              false, false, false, 0.0f, 0.0f, nullptr, false, 1, 0, 0.0f,
                                                                              row_max.data(), status.data(), deq::arch::active_isa()};
                    index_t const blocks = Lq / deq::detail::predictor_tile_rows + (Lq % deq::detail::predictor_tile_rows != 0 ? 1 : 0);
                    deq::exec::parallel_for(space, B * H * blocks, pass);
                }
            };
            timing const t = time_runs(o, run);
            deq::io::json r = deq::io::json::object();
            r["mode"] = (mode);
            r["threads"] = (threads);
            r["median_ms"] = (t.median_ms);
            r["p90_ms"] = (t.p90_ms);
            r["runs"] = (t.runs);
            r["gflops"] = (dense_flops / (t.median_ms * 1e6));
            if (kind != "predictor") {
                r["density"] = (stats.density);
                r["refined_pairs"] = (stats.refined_pairs);
                r["kept_pairs"] = (stats.kept_pairs);
                r["refinement_ratio"] = (stats.refinement_ratio);
                r["empty_rows"] = (stats.empty_rows);
                r["exact_scores"] = (stats.exact_scores);
            }
            if (o.accuracy && kind != "predictor" && threads == o.threads.front()) {
                // Accuracy on the first heads of the first sequence, against float64 with the same masks.
                index_t const Ha = std::min(accuracy_heads, H);
                deq::attention_options<double> ref;
                ref.padding = padding1;
                deq::tensor<double, 4> want({1, Ha, Lq, dv});
                deq::bit_mask kept1, refined1;
                deq::tensor<double, 4> predicted1;
                if (kind == "sanger") {
                    kept1 = deq::bit_mask(1, Ha, Lq, Lk);
                    for (index_t h = 0; h < Ha; ++h)
                        for (index_t i = 0; i < Lq; ++i) std::copy_n(masks.kept.view().row(0, h, i), kept1.words_per_row(), kept1.view().row(0, h, i));
                    ref.kept = kept1.view();
                } else if (kind == "deq") {
                    refined1 = deq::bit_mask(1, Ha, Lq, Lk);
                    for (index_t h = 0; h < Ha; ++h)
                        for (index_t i = 0; i < Lq; ++i)
                            std::copy_n(masks.refined.view().row(0, h, i), refined1.words_per_row(), refined1.view().row(0, h, i));
                    auto const pf = deq::predict_scores(deq::exec::threads{threads}, first(q), first(k), config);
                    predicted1 = widen(pf.cview());
                    ref.refined = refined1.view();
                    ref.predicted = predicted1.cview();
                }
                deq::attention(space, q64.cview(), k64.cview(), v64.cview(), want.view(), ref);
                accuracy const a = compare(first(out), want);
                r["cosine"] = (a.cosine);
                r["max_abs_error"] = (a.max_abs);
            }
            std::cerr << mode << " threads=" << threads << ": " << t.median_ms << " ms (p90 " << t.p90_ms << ", " << t.runs << " runs)\n";
            results.push_back(std::move(r));
        }
    }
    doc["results"] = (std::move(results));
    doc["peak_rss_mib"] = peak_rss_mib();
    double const operands = static_cast<double>(q.size() + k.size() + v.size() + B * H * Lq * dv) * sizeof(float) / (1024.0 * 1024.0);
    doc["inputs_outputs_mib"] = operands;
    std::string const text = doc.dump(2);
    std::cout << text << "\n";
    if (!o.json_out.empty()) {
        std::ofstream f(o.json_out);
        f << text << "\n";
        if (!f) throw deq::error("cannot write '" + o.json_out.string() + "'");
    }
    return 0;
} catch (std::exception const& e) {
    std::cerr << "attention: " << e.what() << "\n";
    return 1;
}
