// End-to-end latency of the deq BERT encoder (deq::bert) for fixed batch shapes built from real text.
//
// Inputs: the first B question/context pairs of SQuAD v1.1 dev, tokenized as a pair (question first,
// context truncated: transformers' truncation="only_second") and padded to exactly L tokens
// (padding="max_length"), so every run of a shape does the same work. The PyTorch side
// (python/deq_bench/bert_latency_torch.py) builds the same ids with transformers' tokenizer; both
// sides print the checksum of the ids so a run can check that they measured the same inputs.
//
// Per shape and mode: `--warmup` untimed forward passes, then `--repeats` timed ones; the median,
// 10th and 90th percentile wall time of one forward pass (embeddings to last hidden state, no
// tokenization) are reported. Output: one JSON document on stdout (and --json FILE).
//
// The model folder is loaded with deq::bert::load_model_folder (weights checked for NaN / Inf, vocab.txt
// against vocab_size: warnings on stderr and in the JSON document, errors with --strict).
//
//   bert_latency --model DIR [--data-dir D] [--shapes 1x128,8x128,1x384] [--modes dense,...]
//                [--threads N] [--warmup N] [--repeats N] [--json FILE] [--strict]
#include "bench_support.hpp"

#include <deq/bert/calibration.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/bert/model_folder.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/json.hpp>
#include <deq/text/bert_tokenizer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using deq::index_t;

namespace {

struct shape {
    index_t batch = 1, length = 128;
};

struct options {
    fs::path model, data_dir, json_out;
    std::vector<shape> shapes{{1, 128}, {8, 128}, {1, 384}};
    std::vector<std::string> modes{"dense"};
    int threads = 0, warmup = 3, repeats = 20;
    bool strict = false;
};

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
        if (a == "--model") o.model = next();
        else if (a == "--data-dir") o.data_dir = next();
        else if (a == "--json") o.json_out = next();
        else if (a == "--threads") o.threads = static_cast<int>(positive(a, next()));
        else if (a == "--warmup") o.warmup = static_cast<int>(positive(a, next()));
        else if (a == "--repeats") o.repeats = static_cast<int>(positive(a, next()));
        else if (a == "--modes") o.modes = split(next(), ',');
        else if (a == "--strict") o.strict = true;
        else if (a == "--shapes") {
            o.shapes.clear();
            for (auto const& s : split(next(), ',')) {
                auto const x = s.find('x');
                if (x == std::string::npos) throw deq::invalid_argument("--shapes: expected BxL, got '" + s + "'");
                o.shapes.push_back({positive("--shapes batch", s.substr(0, x)), positive("--shapes length", s.substr(x + 1))});
            }
        } else if (a == "--help" || a == "-h") {
            std::cout << "usage: bert_latency --model DIR [--data-dir D] [--shapes 1x128,8x128,1x384] [--modes dense,...]\n"
                         "                    [--threads N] [--warmup N] [--repeats N] [--json FILE] [--strict]\n";
            std::exit(0);
        } else {
            throw deq::invalid_argument("unknown argument '" + a + "' (see --help)");
        }
    }
    if (o.model.empty()) throw deq::invalid_argument("--model DIR is required (a Hugging Face BERT folder)");
    if (o.data_dir.empty()) o.data_dir = DEQ_DEFAULT_DATA_DIR;
    if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return o;
}

struct qa_pair {
    std::string question, context;
};

/// The first @p n (question, context) pairs of SQuAD v1.1 dev in file order.
std::vector<qa_pair> read_squad_pairs(fs::path const& file, std::size_t n) {
    auto const doc = deq::io::json::parse_file(file);
    std::vector<qa_pair> out;
    for (auto const& article : doc.at("data").as_array()) {
        for (auto const& para : article.at("paragraphs").as_array()) {
            for (auto const& qa : para.at("qas").as_array()) {
                out.push_back({qa.at("question").as_string(), para.at("context").as_string()});
                if (out.size() == n) return out;
            }
        }
    }
    throw deq::format_error(file.string() + ": fewer than " + std::to_string(n) + " questions");
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    double const pos = p * static_cast<double>(v.size() - 1);
    auto const lo = static_cast<std::size_t>(pos);
    auto const hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) try {
    auto const o = parse(argc, argv);
    deq::bert::set_blas_threads(1);  // the linear layers are split across the space's threads
    deq::exec::threads const space(o.threads);
    deq::bert::model_load_options load;
    load.vocabulary.strict = o.strict;
    auto loaded = deq::bert::load_model_folder(o.model, load);
    auto& model = loaded.model;
    auto const& tokenizer = loaded.tokenizer;
    auto warnings = deq::io::json::array();
    for (auto const& w : loaded.warnings) {
        std::cerr << "bert_latency: warning: " << w << " (--strict makes this an error)\n";
        warnings.push_back(w);
    }

    index_t max_batch = 1;
    for (auto const& s : o.shapes) max_batch = std::max(max_batch, s.batch);
    auto const pairs = read_squad_pairs(o.data_dir / "squad" / "dev-v1.1.json", static_cast<std::size_t>(std::max<index_t>(max_batch, 64)));

    std::vector<deq::bert::attention_mode> modes;
    bool predictor = false;
    for (auto const& m : o.modes) {
        modes.push_back(deq::bert::parse_attention_mode(m));
        predictor = predictor || modes.back().needs_predictor();
    }
    if (predictor && !model.thresholds()) {
        // Calibrate the predictor thresholds on 64 pairs at L = 128 (not timed).
        deq::text::encode_options eo;
        eo.max_length = 128;
        eo.truncation = deq::text::truncation_strategy::only_second;
        std::vector<deq::text::encoding> enc;
        for (auto const& p : pairs) enc.push_back(tokenizer.encode(p.question, p.context, eo));
        std::vector<deq::bert::model_input> batches;
        for (std::size_t i = 0; i < enc.size(); i += 16) {
            std::vector<deq::text::encoding> part(enc.begin() + static_cast<std::ptrdiff_t>(i),
                                                  enc.begin() + static_cast<std::ptrdiff_t>(std::min(enc.size(), i + 16)));
            batches.push_back(deq::bert::model_input::from_encodings(part, static_cast<std::int32_t>(tokenizer.pad_id())));
        }
        model.set_thresholds(deq::bert::calibrate(space, model, batches));
    }

    auto results = deq::io::json::array();
    for (auto const& s : o.shapes) {
        deq::text::encode_options eo;
        eo.max_length = static_cast<std::size_t>(s.length);
        eo.truncation = deq::text::truncation_strategy::only_second;
        eo.padding = deq::text::padding_strategy::max_length;
        std::vector<deq::text::encoding> enc;
        std::uint64_t checksum = 0;
        for (index_t b = 0; b < s.batch; ++b) {
            enc.push_back(tokenizer.encode(pairs[static_cast<std::size_t>(b)].question, pairs[static_cast<std::size_t>(b)].context, eo));
            for (auto id : enc.back().input_ids) checksum = checksum * 1000003u + static_cast<std::uint64_t>(id);
        }
        auto const input = deq::bert::model_input::from_encodings(enc, static_cast<std::int32_t>(tokenizer.pad_id()));
        if (input.length() != s.length) throw deq::invalid_argument("shape " + std::to_string(s.length) + ": tokenizer did not pad to the length");
        for (std::size_t m = 0; m < modes.size(); ++m) {
            for (int w = 0; w < o.warmup; ++w) (void)model.forward(space, input, modes[m]);
            std::vector<double> ms;
            double density = 1.0, ratio = 1.0;
            for (int r = 0; r < o.repeats; ++r) {
                auto const t0 = std::chrono::steady_clock::now();
                auto const out = model.forward(space, input, modes[m]);
                auto const t1 = std::chrono::steady_clock::now();
                ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
                density = out.summary().density();
                ratio = out.summary().refinement_ratio();
            }
            auto row = deq::io::json::object();
            row["batch"] = s.batch;
            row["length"] = s.length;
            row["mode"] = modes[m].spec();
            row["median_ms"] = percentile(ms, 0.5);
            row["p10_ms"] = percentile(ms, 0.1);
            row["p90_ms"] = percentile(ms, 0.9);
            row["repeats"] = o.repeats;
            row["density"] = density;
            row["refinement_ratio"] = ratio;
            row["ids_checksum"] = std::to_string(checksum);
            std::cerr << "deq " << s.batch << "x" << s.length << " " << modes[m].spec() << ": median " << percentile(ms, 0.5) << " ms\n";
            results.push_back(std::move(row));
        }
    }
    auto doc = deq::io::json::object();
    doc["implementation"] = "deq";
    doc["threads"] = o.threads;
    doc["model"] = o.model.string();
    doc["warnings"] = std::move(warnings);
    doc["results"] = std::move(results);
    std::cout << doc.dump(2) << "\n";
    if (!o.json_out.empty()) {
        std::ofstream f(o.json_out);
        f << doc.dump(2) << "\n";
        if (!f) throw deq::invalid_argument("cannot write " + o.json_out.string());
    }
    return 0;
} catch (std::exception const& e) {
    std::cerr << "bert_latency: " << e.what() << "\n";
    return 1;
}
