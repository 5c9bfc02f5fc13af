// bert_glue: evaluates a GLUE checkpoint fine-tuned and exported by python/deq_train (finetune_glue.py +
// export.py: config.json with the "deq" section, model.safetensors, vocab.txt) on the task's dev set, in C++
// with deq::bert, in the checkpoint's attention mode (default) or in each --mode given (threshold sweeps).
//
// For each mode it reports the GLUE metric (MCC for CoLA, accuracy for SST-2 / RTE, accuracy and F1 for MRPC,
// Pearson / Spearman for STS-B), the attention statistics (density, refinement ratio, empty rows, rows without
// a full-precision score), the latency per example, and the skipped rows; it writes
//   <out>/bert_glue_<task>.json and .md           all modes
//   <out>/<task>_<mode>_dev_predictions.tsv       per example: index, label, prediction, logits (the columns of
//                                                 finetune_glue.py's dev_predictions.tsv)
// With --torch-predictions (the dev_predictions.tsv finetune_glue.py wrote for the same checkpoint) it reports the
// agreement with PyTorch for the mode(s) equal to the one PyTorch evaluated (--torch-mode; default the checkpoint's
// mode, e.g. --torch-mode for a checkpoint scored in another mode by finetune_glue.py --eval-mode): the fraction of examples with the
// same predicted label (classification) or with |score difference| <= 1e-3 · max(1, |torch score|) (regression),
// the largest absolute logit difference and the metric computed from the PyTorch predictions.
// --min-agreement / --max-metric-diff make the exit status 2 when they are not met (the CI agreement test).
// --precision float64 runs the encoder and head in double (deq::bert::bert_model::forward<double>): compared
// with finetune_glue.py --eval-only --eval-dtype float64 (PyTorch's model.double()), this checks the semantics of
// a predictor mode without the float32 rounding that flips a few 4-bit levels or kept entries in either
// implementation. The PyTorch file's precision is read from the results.json beside it (eval_dtype, float32
// when absent) and must match.
// Predictor modes use the quantizer thresholds of --thresholds FILE, else the checkpoint's; a checkpoint without
// them (fine-tuned dense, or a plain Hugging Face BERT classifier) gets them from deq::bert::calibrate on
// the first --calibration N (default 256) examples of the task's train.tsv in file order, batches of 32
// padded to their longest, dense attention (saved to <out>/<task>_thresholds.json: finetune_glue.py
// --thresholds reads the same file, so PyTorch evaluates the same predictor).
// With --trace FILE it writes the masks / precision maps of every layer of the first --trace-examples dev
// examples (deq/io/attention_trace.hpp).
//
// Tokenization: deq::text with the checkpoint's vocab.txt, pairs truncated longest-first to deq.max_seq_length.
// Padding as the checkpoint's deq.eval_padding records: "none" = one example at a time without padding (the
// default of finetune_glue.py), "batch" = batches of --batch-size padded to their longest example, "max_length"
// = padded to max_seq_length.
//
// Model checks (deq::bert::load_classifier_folder): a NaN / Inf weight or a vocab.txt that cannot belong to the
// model (more tokens than vocab_size, special tokens missing) is an error; a vocab.txt much smaller than
// vocab_size is a warning on stderr and in both reports ("warnings" in the JSON), an error with --strict.
//
// Usage: bert_glue --model DIR [--task T] [--mode MODE]... [--data-dir D] [--threads N] [--max-examples N]
//                  [--out-dir O] [--trace FILE [--trace-examples N]] [--torch-predictions TSV [--torch-mode M]]
//                  [--min-agreement F] [--max-metric-diff D] [--eval-padding none|batch|max_length]
//                  [--batch-size N] [--skip-bad-rows] [--no-progress] [--calibration N] [--thresholds FILE]
//                  [--precision float32|float64] [--strict] [--device cpu|cuda|cuda:N]
//
// --device cuda runs every layer's attention on a GPU (deq::bert::cuda_layer_attention; float32 only);
// the rest of the encoder and the head stay on the CPU. It needs a build with deq::cuda.
#include <deq/bert/calibration.hpp>
#include <deq/bert/finetuned.hpp>
#include <deq/eval/glue.hpp>
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
#include <optional>
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

struct options {
    fs::path model, data = DEQ_DEFAULT_DATA_DIR, out = DEQ_DEFAULT_OUT_DIR, trace, torch, thresholds;
    std::string task, eval_padding, torch_mode, precision = "float32", device = "cpu";
    std::vector<std::string> modes;
    index_t max_examples = 0, trace_examples = 8, batch_size = 8, calibration = 256;
    int threads = 0;
    double min_agreement = -1, max_metric_diff = -1;
    bool progress = true, skip_bad_rows = false, strict = false;
};

index_t positive(std::string const& name, std::string const& text) {
    index_t v = 0;
    auto const r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v < 1) {
        deq::detail::throw_invalid_argument(name, text, "must be a positive integer");
    }
    return v;
}

double fraction(std::string const& name, std::string const& text, double hi) {
    double v = 0;
    auto const r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || !(v >= 0 && v <= hi)) {
        deq::detail::throw_invalid_argument(name, text, deq::detail::concat("must be a number in [0, ", hi, "]"));
    }
    return v;
}

void usage() {
    std::cout
        << "usage: bert_glue --model DIR [--task T] [--mode MODE]... [--data-dir D] [--threads N] [--max-examples N]\n"
           "                 [--out-dir O] [--trace FILE [--trace-examples N]] [--torch-predictions TSV [--torch-mode M]]\n"
           "                 [--min-agreement F] [--max-metric-diff D] [--eval-padding none|batch|max_length]\n"
           "                 [--batch-size N] [--skip-bad-rows] [--no-progress] [--calibration N] [--thresholds FILE]\n"
           "                 [--precision float32|float64] [--strict] [--device cpu|cuda|cuda:N]\n\n"
           "  --model DIR            exported checkpoint (config.json, model.safetensors, vocab.txt)\n"
           "  --task T               cola, sst2, mrpc, stsb, rte (default: the checkpoint's deq.task)\n"
           "  --mode MODE            attention mode, repeatable or comma-separated (default: the checkpoint's)\n"
           "  --data-dir D           folder holding glue/ (default " DEQ_DEFAULT_DATA_DIR ")\n"
           "  --threads N            threads of deq and OpenBLAS (default: all cores)\n"
           "  --max-examples N       only the first N dev examples\n"
           "  --out-dir O            results folder (default " DEQ_DEFAULT_OUT_DIR ")\n"
           "  --trace FILE           write the masks of the first --trace-examples (default 8) examples\n"
           "  --torch-predictions F  finetune_glue.py's dev_predictions.tsv of the same checkpoint\n"
           "  --torch-mode M         the attention mode PyTorch evaluated for F (default: the checkpoint's mode)\n"
           "  --min-agreement F      exit 2 when the agreement with PyTorch is below F (a fraction)\n"
           "  --max-metric-diff D    exit 2 when a metric differs from PyTorch's by more than D\n"
           "  --eval-padding P       override the checkpoint's deq.eval_padding\n"
           "  --batch-size N         batch size with eval padding batch / max_length (default 8)\n"
           "  --skip-bad-rows        skip (count and list) malformed dev rows instead of failing\n"
           "  --calibration N        checkpoint without predictor thresholds: calibrate them on the first N train\n"
           "                         examples of the task (default 256; written to <out>/<task>_thresholds.json)\n"
           "  --thresholds FILE      predictor thresholds to use instead of the checkpoint's or a calibration\n"
           "                         (deq::bert::predictor_thresholds JSON, e.g. a saved <task>_thresholds.json)\n"
           "  --precision P          float32 (default) or float64: the encoder in double, to compare with PyTorch's\n"
           "                         model.double() (finetune_glue.py --eval-only --eval-dtype float64)\n"
           "  --strict               a vocab.txt much smaller than the model's vocab_size is an error, not a warning\n"
           "  --device D             where the attention runs: cpu (default), cuda or cuda:N (needs a CUDA build; float32)\n";
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
        else if (a == "--task") o.task = next();
        else if (a == "--mode") {
            std::string const v = next();
            std::size_t start = 0;
            while (start <= v.size()) {
                std::size_t const c = v.find(',', start);
                std::string part = v.substr(start, c == std::string::npos ? std::string::npos : c - start);
                if (!part.empty()) o.modes.push_back(part);
                if (c == std::string::npos) break;
                start = c + 1;
            }
        } else if (a == "--data-dir") o.data = next();
        else if (a == "--threads") o.threads = static_cast<int>(positive(a, next()));
        else if (a == "--max-examples") o.max_examples = positive(a, next());
        else if (a == "--out-dir") o.out = next();
        else if (a == "--trace") o.trace = next();
        else if (a == "--trace-examples") o.trace_examples = positive(a, next());
        else if (a == "--torch-predictions") o.torch = next();
        else if (a == "--torch-mode") o.torch_mode = next();
        else if (a == "--min-agreement") o.min_agreement = fraction(a, next(), 1.0);
        else if (a == "--max-metric-diff") o.max_metric_diff = fraction(a, next(), 1e9);
        else if (a == "--eval-padding") {
            o.eval_padding = next();
            if (o.eval_padding != "none" && o.eval_padding != "batch" && o.eval_padding != "max_length") {
                deq::detail::throw_invalid_name(a, o.eval_padding, "none, batch, max_length");
            }
        } else if (a == "--batch-size") o.batch_size = positive(a, next());
        else if (a == "--skip-bad-rows") o.skip_bad_rows = true;
        else if (a == "--calibration") o.calibration = positive(a, next());
        else if (a == "--thresholds") o.thresholds = next();
        else if (a == "--precision") {
            o.precision = next();
            if (o.precision != "float32" && o.precision != "float64") deq::detail::throw_invalid_name(a, o.precision, "float32, float64");
        }
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
    if (o.model.empty()) deq::detail::throw_invalid_argument("--model", "<missing>", "is required (an exported checkpoint folder)");
    if (!o.torch_mode.empty() && o.torch.empty()) deq::detail::throw_invalid_argument("--torch-mode", o.torch_mode, "needs --torch-predictions");
    if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (o.device != "cpu" && o.precision != "float32") deq::detail::throw_invalid_argument("--device", o.device, "needs --precision float32");
    return o;
}

class progress_bar {
public:
    progress_bar(bool on, std::string label, index_t total)
        : on_(on), tty_(isatty(2) != 0), label_(std::move(label)), total_(total), start_(clock_type::now()) {}
    void update(index_t done) {
        if (!on_) return;
        int const pct = total_ > 0 ? static_cast<int>(100 * done / total_) : 100;
        if (pct == last_ || (!tty_ && pct < last_ + 25 && done < total_)) return;
        last_ = pct;
        int const width = 30, filled = width * pct / 100;
        double const secs = std::chrono::duration<double>(clock_type::now() - start_).count();
        double const eta = done > 0 ? secs * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
        std::cerr << (tty_ ? "\r" : "") << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
                  << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << std::setw(3) << pct << "% " << done << "/"
                  << total_ << " examples " << std::fixed << std::setprecision(1) << secs << " s, eta " << eta << " s"
                  << (tty_ ? "" : "\n") << std::flush;
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
    if (std::isnan(v)) return "n/a";
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

std::string sanitize(std::string const& text) {
    std::string s;
    for (char c : text) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
    return s;
}

std::string format_g(double v, int precision) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    return buf;
}

// A metric for the JSON report: null where it is undefined (NaN, e.g. a correlation of one example).
deq::io::json json_number(double v) { return std::isfinite(v) ? deq::io::json(v) : deq::io::json(); }

// A batch of encodings [idx] padded to pad_to (0: the longest).
deq::bert::model_input make_input(std::vector<deq::text::encoding> const& enc, std::vector<std::size_t> const& idx, index_t pad_to,
                                  std::int32_t pad_id) {
    std::size_t longest = 0;
    for (std::size_t i : idx) longest = std::max(longest, enc[i].input_ids.size());
    index_t const batch = static_cast<index_t>(idx.size());
    index_t const length = pad_to > 0 ? pad_to : static_cast<index_t>(longest);
    deq::bert::model_input in;
    in.input_ids = deq::tensor<std::int32_t, 2>({batch, length}, pad_id);
    in.token_type_ids = deq::tensor<std::int32_t, 2>({batch, length}, 0);
    in.attention_mask = deq::tensor<std::uint8_t, 2>({batch, length}, 0);
    for (index_t b = 0; b < batch; ++b) {
        auto const& e = enc[idx[static_cast<std::size_t>(b)]];
        for (std::size_t j = 0; j < e.input_ids.size(); ++j) {
            auto const l = static_cast<index_t>(j);
            in.input_ids(b, l) = static_cast<std::int32_t>(e.input_ids[j]);
            in.token_type_ids(b, l) = static_cast<std::int32_t>(e.token_type_ids[j]);
            in.attention_mask(b, l) = 1;
        }
    }
    return in;
}

// Mask of sequence b over its first `length` tokens, as [1, heads, length, length] (broadcast extents expanded).
deq::bit_mask slice_mask(deq::bit_mask const& m, index_t b, index_t heads, index_t length) {
    deq::bit_mask out(1, heads, length, length);
    for (index_t h = 0; h < heads; ++h)
        for (index_t i = 0; i < length; ++i)
            for (index_t j = 0; j < length; ++j)
                if (m.test(b, h, i, j)) out.set(0, h, i, j);
    return out;
}

struct torch_predictions {
    std::vector<double> labels, predictions;
    std::vector<std::vector<double>> logits;
};

torch_predictions read_torch(fs::path const& file, std::size_t num_labels) {
    deq::io::tsv_table const t = deq::io::read_tsv(file);
    std::size_t const ci = t.column("index"), cl = t.column("label"), cp = t.column("prediction"), cg = t.column("logits");
    torch_predictions p;
    for (std::size_t r = 0; r < t.size(); ++r) {
        if (t.int_field(r, ci) != static_cast<std::int64_t>(r)) t.fail(r, deq::detail::concat("column 'index': expected ", r));
        p.labels.push_back(t.number_field(r, cl));
        p.predictions.push_back(t.number_field(r, cp));
        std::vector<double> lg;
        std::istringstream s(t.field(r, cg));
        std::string tok;
        while (s >> tok) {
            double v = 0;
            auto const res = std::from_chars(tok.data(), tok.data() + tok.size(), v);
            if (res.ec != std::errc{} || res.ptr != tok.data() + tok.size() || !std::isfinite(v)) {
                t.fail(r, deq::detail::concat("column 'logits': '", tok, "' is not a finite number"));
            }
            lg.push_back(v);
        }
        if (lg.size() != num_labels) t.fail(r, deq::detail::concat("column 'logits': ", lg.size(), " values, the model has ", num_labels));
        p.logits.push_back(std::move(lg));
    }
    return p;
}

struct agreement_result {
    std::size_t compared = 0, agree = 0;
    double max_logit_diff = 0;
    std::map<std::string, double> torch_metrics;
    double max_metric_diff = 0;
    double rate() const { return compared ? static_cast<double>(agree) / static_cast<double>(compared) : 0.0; }
};

struct mode_result {
    std::string name, spec, description, predictions_file, trace_file;
    std::map<std::string, double> metrics;
    deq::bert::attention_summary stats;
    double seconds = 0, ms_per_example = 0;
    std::optional<agreement_result> agreement;
};

}  // namespace

int main(int argc, char** argv) try {
    auto const t0 = clock_type::now();
    options const o = parse(argc, argv);
    fs::create_directories(o.out);
    deq::bert::set_blas_threads(o.threads);
    deq::exec::threads const space(o.threads);
    deq::bert::layer_attention_runner const attention_runner = deq_examples::layer_attention_for(o.device);
    std::string const device_note = o.device == "cpu" ? std::string("cpu")
                                                      : o.device + ": " + deq_examples::cuda_device_description(o.device == "cuda" ? 0 : std::stoi(o.device.substr(5)));

    std::cerr << "loading " << o.model.string() << "\n";
    auto loaded = deq::bert::load_classifier_folder(o.model, task_eval::load_options(o.strict));
    task_eval::print_warnings("bert_glue", loaded.warnings);
    auto& clf = loaded.model;
    auto const& settings = clf.settings();
    auto const& tokenizer = loaded.tokenizer;
    std::string const task_text = !o.task.empty() ? o.task : settings.task;
    if (task_text.empty()) deq::detail::throw_invalid_argument("--task", "<missing>", "the checkpoint names no task (deq.task): pass --task");
    deq::eval::glue_task const task = deq::eval::parse_glue_task(task_text);
    auto const& spec = deq::eval::glue_task_spec(task);
    if (static_cast<index_t>(spec.num_labels()) != settings.num_labels) {
        deq::detail::throw_invalid_argument("--task", spec.name,
                                            deq::detail::concat("has ", spec.num_labels(), " outputs, the checkpoint ", settings.num_labels));
    }
    std::string const padding = o.eval_padding.empty() ? settings.eval_padding : o.eval_padding;
    index_t const batch_size = padding == "none" ? 1 : o.batch_size;

    // Dev data.
    fs::path const dev_file = deq::eval::glue_task_file(o.data, task, "dev");
    deq::eval::glue_read_options ro;
    ro.policy = o.skip_bad_rows ? deq::eval::glue_row_policy::skip_and_record : deq::eval::glue_row_policy::strict;
    deq::eval::glue_dataset dev = deq::eval::read_glue(dev_file, task, ro);
    for (auto const& s : dev.skipped) std::cerr << "warning: " << dev_file.string() << ":" << s.line << ": row skipped: " << s.reason << "\n";
    if (o.max_examples > 0 && static_cast<std::size_t>(o.max_examples) < dev.examples.size()) dev.examples.resize(static_cast<std::size_t>(o.max_examples));
    if (dev.examples.empty()) throw deq::invalid_argument("bert_glue: no usable dev example in " + dev_file.string());
    deq::text::encode_options eo;
    eo.max_length = static_cast<std::size_t>(settings.max_seq_length);
    eo.truncation = deq::text::truncation_strategy::longest_first;
    std::vector<deq::text::encoding> enc;
    std::size_t truncated = 0;
    for (auto const& e : dev.examples) {
        enc.push_back(e.text_b ? tokenizer.encode(e.text_a, *e.text_b, eo) : tokenizer.encode(e.text_a, eo));
        truncated += enc.back().truncated > 0 ? 1 : 0;
    }
    std::vector<double> const labels = dev.labels();
    auto const n = static_cast<index_t>(enc.size());
    auto const pad_id = static_cast<std::int32_t>(tokenizer.pad_id());

    std::vector<std::string> mode_texts = o.modes;
    if (mode_texts.empty()) mode_texts.push_back(settings.attention_mode_text);

    // Predictor thresholds for a checkpoint that has none: --thresholds, else calibration on the train split.
    bool needs_predictor = false;
    for (auto const& m : mode_texts) needs_predictor = needs_predictor || deq::bert::parse_attention_mode(m).needs_predictor();
    std::string thresholds_note;
    if (needs_predictor && (!o.thresholds.empty() || !clf.model().thresholds())) {
        if (!o.thresholds.empty()) {
            clf.model().set_thresholds(deq::bert::predictor_thresholds::load(o.thresholds));
            thresholds_note = " (loaded from " + o.thresholds.string() + ")";
        } else {
            auto const tc = clock_type::now();
            fs::path const train_file = deq::eval::glue_task_file(o.data, task, "train");
            deq::eval::glue_dataset const train = deq::eval::read_glue(train_file, task, {});
            std::vector<deq::text::encoding> cal;
            for (auto const& e : train.examples) {
                if (static_cast<index_t>(cal.size()) == o.calibration) break;
                cal.push_back(e.text_b ? tokenizer.encode(e.text_a, *e.text_b, eo) : tokenizer.encode(e.text_a, eo));
            }
            deq::bert::calibration_options co;
            co.origin = deq::detail::concat("deq::bert::calibrate: first ", cal.size(), " examples of ", train_file.string(),
                                            " (file order), batches of 32 padded to their longest, dense attention, EMA 0.9999");
            deq::bert::predictor_thresholds t = deq::bert::calibrate_encodings(space, clf.model(), cal, 32, pad_id, co);
            fs::path const saved = o.out / (std::string(spec.name) + "_thresholds.json");
            t.save(saved);
            clf.model().set_thresholds(std::move(t));
            thresholds_note = deq::detail::concat(" (", fixed(std::chrono::duration<double>(clock_type::now() - tc).count(), 1),
                                                  " s; saved to ", saved.string(), ")");
        }
    }
    std::optional<torch_predictions> torch;
    // The mode PyTorch evaluated: only a mode with this spec is compared with the PyTorch predictions.
    std::string const torch_spec = o.torch_mode.empty() ? settings.mode.spec() : deq::bert::parse_attention_mode(o.torch_mode).spec();
    if (!o.torch.empty()) {
        // The precision PyTorch evaluated in: results.json beside the predictions (finetune_glue.py), float32 by default.
        std::string torch_precision = "float32";
        fs::path const torch_results = o.torch.parent_path() / "results.json";
        if (fs::exists(torch_results)) {
            deq::io::json const r = deq::io::json::parse_file(torch_results);
            if (deq::io::json const* d = r.find("eval_dtype"); d != nullptr && !d->is_null()) torch_precision = d->as_string();
        }
        if (torch_precision != o.precision) {
            deq::detail::throw_invalid_argument(
                "--precision", o.precision,
                deq::detail::concat("differs from the precision of the PyTorch predictions ", o.torch.string(), " (", torch_precision, ", from ",
                                    fs::exists(torch_results) ? torch_results.string() + " eval_dtype" : std::string("no results.json: float32"),
                                    "); score them in ", o.precision, " with finetune_glue.py --eval-only --eval-dtype ", o.precision));
        }
        torch = read_torch(o.torch, static_cast<std::size_t>(settings.num_labels));
        if (torch->labels.size() < enc.size() || (o.max_examples == 0 && torch->labels.size() != enc.size())) {
            throw deq::format_error(deq::detail::concat("deq: ", o.torch.string(), ": ", torch->labels.size(), " predictions, the dev set has ",
                                                        enc.size(), " examples"));
        }
        for (std::size_t i = 0; i < enc.size(); ++i) {
            // 1e-5 relative: finetune_glue.py files written before labels were printed in full had 6 significant digits.
            if (std::fabs(torch->labels[i] - labels[i]) > 1e-5 * std::max(1.0, std::fabs(labels[i]))) {
                throw deq::format_error(deq::detail::concat("deq: ", o.torch.string(), ":", i + 2, ": label ", torch->labels[i],
                                                            " differs from the dev set's ", labels[i], " (", dev_file.string(), ":",
                                                            dev.examples[i].line, "): not the same data"));
            }
        }
    }

    std::vector<mode_result> results;
    for (std::size_t m = 0; m < mode_texts.size(); ++m) {
        mode_result r;
        r.name = mode_texts[m];
        deq::bert::attention_mode const mode = deq::bert::parse_attention_mode(r.name);
        r.spec = mode.spec();
        r.description = mode.describe();
        bool const tracing = !o.trace.empty();
        deq::io::attention_trace trace;
        if (tracing) {
            trace.model = o.model.string();
            trace.task = std::string(spec.name);
            trace.mode = r.spec;
            trace.num_layers = clf.model().config().num_hidden_layers;
            trace.num_heads = clf.model().config().num_attention_heads;
            trace.head_dim = clf.model().config().head_dim();
        }
        index_t const heads = clf.model().config().num_attention_heads;
        std::vector<std::vector<double>> logits(enc.size());
        progress_bar bar(o.progress, "[" + std::to_string(m + 1) + "/" + std::to_string(mode_texts.size()) + "] " + r.name, n);
        auto const tm = clock_type::now();
        for (index_t start = 0; start < n; start += batch_size) {
            std::vector<std::size_t> idx;
            for (index_t i = start; i < std::min(n, start + batch_size); ++i) idx.push_back(static_cast<std::size_t>(i));
            auto const in = make_input(enc, idx, padding == "max_length" ? settings.max_seq_length : 0, pad_id);
            deq::bert::forward_options fo;
            fo.keep_masks = tracing && start < o.trace_examples;
            fo.layer_attention = attention_runner;
            // One batch in float or double: the logits and statistics, and the masks of traced examples.
            auto const record = [&](auto const& lg, auto const& out) {
                r.stats.merge(out.summary());
                for (std::size_t b = 0; b < idx.size(); ++b) {
                    auto const bi = static_cast<index_t>(b);
                    logits[idx[b]].assign(lg.data() + bi * lg.extent(1), lg.data() + (bi + 1) * lg.extent(1));
                    if (!fo.keep_masks || static_cast<index_t>(idx[b]) >= o.trace_examples) continue;
                    auto const length = static_cast<index_t>(enc[idx[b]].input_ids.size());
                    for (std::size_t layer = 0; layer < out.masks.size(); ++layer) {
                        deq::io::attention_trace_record rec;
                        rec.example = static_cast<index_t>(idx[b]);
                        rec.layer = static_cast<index_t>(layer);
                        rec.length = length;
                        auto const& lm = out.masks[layer];
                        if (!lm.kept.empty()) rec.kept = slice_mask(lm.kept, bi, heads, length);
                        if (!lm.refined.empty()) rec.refined = slice_mask(lm.refined, bi, heads, length);
                        trace.records.push_back(std::move(rec));
                    }
                }
            };
            if (o.precision == "float64") {
                deq::bert::basic_forward_output<double> out;
                record(clf.logits<double>(space, in, mode, fo, &out), out);
            } else {
                deq::bert::forward_output out;
                record(clf.logits(space, in, mode, fo, &out), out);
            }
            bar.update(start + static_cast<index_t>(idx.size()));
        }
        bar.done();
        r.seconds = std::chrono::duration<double>(clock_type::now() - tm).count();
        r.ms_per_example = 1000.0 * r.seconds / static_cast<double>(n);

        std::vector<double> preds;
        for (auto const& lg : logits) {
            if (spec.is_regression()) preds.push_back(lg[0]);
            else preds.push_back(static_cast<double>(std::max_element(lg.begin(), lg.end()) - lg.begin()));
        }
        r.metrics = deq::eval::glue_metrics(task, preds, labels);

        std::string const stem = std::string(spec.name) + "_" + sanitize(r.spec);
        r.predictions_file = (o.out / (stem + "_dev_predictions.tsv")).string();
        {
            std::ofstream f(r.predictions_file);
            int const digits = o.precision == "float64" ? 17 : 9;  // enough to round-trip the value
            f << "index\tlabel\tprediction\tlogits\n";
            for (std::size_t i = 0; i < logits.size(); ++i) {
                f << i << "\t" << format_g(labels[i], 17) << "\t" << format_g(preds[i], digits) << "\t";
                for (std::size_t k = 0; k < logits[i].size(); ++k) f << (k ? " " : "") << format_g(logits[i][k], digits);
                f << "\n";
            }
            if (!f) throw deq::error("bert_glue: cannot write " + r.predictions_file);
        }
        if (tracing) {
            fs::path file = o.trace;
            if (mode_texts.size() > 1) file.replace_filename(o.trace.stem().string() + "_" + sanitize(r.spec) + o.trace.extension().string());
            deq::io::write_attention_trace(file, trace);
            r.trace_file = file.string();
        }

        if (torch && mode.spec() == torch_spec) {
            agreement_result a;
            a.compared = enc.size();
            std::vector<double> tp(torch->predictions.begin(), torch->predictions.begin() + static_cast<std::ptrdiff_t>(enc.size()));
            for (std::size_t i = 0; i < enc.size(); ++i) {
                for (std::size_t k = 0; k < logits[i].size(); ++k) {
                    a.max_logit_diff = std::max(a.max_logit_diff, std::fabs(static_cast<double>(logits[i][k]) - torch->logits[i][k]));
                }
                bool const same = spec.is_regression() ? std::fabs(preds[i] - tp[i]) <= 1e-3 * std::max(1.0, std::fabs(tp[i])) : preds[i] == tp[i];
                a.agree += same ? 1 : 0;
            }
            a.torch_metrics = deq::eval::glue_metrics(task, tp, labels);
            for (auto const& [k, v] : r.metrics) a.max_metric_diff = std::max(a.max_metric_diff, std::fabs(v - a.torch_metrics.at(k)));
            r.agreement = a;
        }
        results.push_back(std::move(r));
    }
    double const total = std::chrono::duration<double>(clock_type::now() - t0).count();

    // Report.
    std::ostringstream md;
    std::string metric_head;
    for (auto const& name : spec.metrics) metric_head += std::string(metric_head.empty() ? "" : " | ") + std::string(name) + " ×100";
    md << "## " << spec.folder << " dev, fine-tuned checkpoint " << o.model.string() << "\n\n"
       << "| mode | " << metric_head
       << " | density | refinement ratio | empty rows | rows w/o full precision | ms / example | agreement with PyTorch | max |Δ logit| | PyTorch "
       << spec.main_metric << " ×100 |\n|---|";
    for (std::size_t i = 0; i < spec.metrics.size(); ++i) md << "---|";
    md << "---|---|---|---|---|---|---|---|\n";
    for (auto const& r : results) {
        md << "| " << r.name;
        for (auto const& name : spec.metrics) md << " | " << fixed(100.0 * r.metrics.at(std::string(name)), 2);
        md << " | " << fixed(r.stats.density(), 3) << " | " << fixed(r.stats.refinement_ratio(), 3) << " | "
           << fixed(100.0 * r.stats.empty_row_fraction(), 2) << "% | " << fixed(100.0 * r.stats.unrefined_row_fraction(), 2) << "% | "
           << fixed(r.ms_per_example, 2) << " | ";
        if (r.agreement) {
            md << fixed(100.0 * r.agreement->rate(), 2) << "% (" << r.agreement->agree << "/" << r.agreement->compared << ") | "
               << format_g(r.agreement->max_logit_diff, 3) << " | " << fixed(100.0 * r.agreement->torch_metrics.at(std::string(spec.main_metric)), 2);
        } else {
            md << "- | - | -";
        }
        md << " |\n";
    }
    md << "\n" << n << " examples of " << dev_file.string() << " (" << truncated << " truncated to " << settings.max_seq_length
       << " tokens); " << dev.skipped.size() << " of " << dev.rows << " rows skipped as malformed";
    for (auto const& s : dev.skipped) md << "; line " << s.line << ": " << s.reason;
    md << ".\nCheckpoint mode " << settings.attention_mode_text << ", eval padding " << padding
       << (padding == "none" ? " (one example at a time, unpadded)" : " (batches of " + std::to_string(batch_size) + ")") << "; "
       << o.threads << " threads; attention on " << device_note << "; " << o.precision << " arithmetic; latency = encoder + head wall time per example (tokenization excluded). "
       << "Density / refinement ratio: mean over attention calls of the kept / full-precision fraction of valid pairs; empty rows: "
          "real query rows with every key pruned; rows w/o full precision: rows with no exactly computed score. Thresholds: "
       << (clf.model().thresholds() ? clf.model().thresholds()->origin + thresholds_note : std::string("none (no predictor)"));
    if (torch) {
        md << ". PyTorch predictions: " << o.torch.string() << " (agreement for mode " << torch_spec
           << (o.torch_mode.empty() ? ", the checkpoint's" : "") << "; regression: |Δ| <= 1e-3·max(1, |score|))";
    }
    md << ". Total run time " << fixed(total, 1) << " s.\n";
    task_eval::warnings_markdown(md, loaded.warnings);
    std::cout << md.str();
    std::string const base = "bert_glue_" + std::string(spec.name);
    std::ofstream(o.out / (base + ".md")) << md.str();

    deq::io::json doc = deq::io::json::object();
    doc["task"] = std::string(spec.name);
    doc["split"] = "dev";
    doc["model"] = o.model.string();
    doc["warnings"] = task_eval::warnings_json(loaded.warnings);
    doc["data"] = dev_file.string();
    doc["checkpoint_mode"] = settings.attention_mode_text;
    doc["examples"] = static_cast<std::int64_t>(n);
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
    doc["truncated_examples"] = static_cast<std::int64_t>(truncated);
    doc["max_seq_length"] = settings.max_seq_length;
    doc["eval_padding"] = padding;
    doc["batch_size"] = batch_size;
    doc["threads"] = o.threads;
    doc["device"] = device_note;
    doc["precision"] = o.precision;
    doc["main_metric"] = std::string(spec.main_metric);
    doc["thresholds"] = clf.model().thresholds() ? clf.model().thresholds()->to_json() : deq::io::json();
    doc["torch_predictions"] = o.torch.empty() ? deq::io::json() : deq::io::json(o.torch.string());
    doc["torch_mode"] = o.torch.empty() ? deq::io::json() : deq::io::json(torch_spec);
    doc["runtime_seconds"] = total;
    deq::io::json list = deq::io::json::array();
    bool gate_failed = false;
    std::ostringstream gate;
    for (auto const& r : results) {
        deq::io::json e = deq::io::json::object();
        e["mode"] = r.name;
        e["spec"] = r.spec;
        e["description"] = r.description;
        deq::io::json metrics = deq::io::json::object();
        for (auto const& [k, v] : r.metrics) metrics[k] = json_number(v);
        e["metrics"] = std::move(metrics);
        e["density"] = r.stats.density();
        e["refinement_ratio"] = r.stats.refinement_ratio();
        e["empty_rows"] = r.stats.empty_rows;
        e["unrefined_rows"] = r.stats.unrefined_rows;
        e["rows"] = r.stats.rows;
        e["empty_row_fraction"] = r.stats.empty_row_fraction();
        e["unrefined_row_fraction"] = r.stats.unrefined_row_fraction();
        e["attention_calls"] = r.stats.calls;
        e["seconds"] = r.seconds;
        e["latency_ms_per_example"] = r.ms_per_example;
        e["predictions"] = r.predictions_file;
        e["trace"] = r.trace_file.empty() ? deq::io::json() : deq::io::json(r.trace_file);
        if (r.agreement) {
            deq::io::json a = deq::io::json::object();
            a["compared"] = static_cast<std::int64_t>(r.agreement->compared);
            a["agree"] = static_cast<std::int64_t>(r.agreement->agree);
            a["agreement"] = r.agreement->rate();
            a["max_abs_logit_diff"] = r.agreement->max_logit_diff;
            deq::io::json tm = deq::io::json::object();
            for (auto const& [k, v] : r.agreement->torch_metrics) tm[k] = json_number(v);
            a["torch_metrics"] = std::move(tm);
            a["max_metric_diff"] = r.agreement->max_metric_diff;
            e["agreement"] = std::move(a);
            if (o.min_agreement >= 0 && r.agreement->rate() < o.min_agreement) {
                gate_failed = true;
                gate << "FAIL " << r.name << ": agreement " << fixed(100.0 * r.agreement->rate(), 2) << "% < " << fixed(100.0 * o.min_agreement, 2) << "%\n";
            }
            if (o.max_metric_diff >= 0 && r.agreement->max_metric_diff > o.max_metric_diff) {
                gate_failed = true;
                gate << "FAIL " << r.name << ": metric differs from PyTorch's by " << format_g(r.agreement->max_metric_diff, 3) << " > "
                     << format_g(o.max_metric_diff, 3) << "\n";
            }
        } else {
            e["agreement"] = deq::io::json();
        }
        list.push_back(std::move(e));
    }
    doc["modes"] = std::move(list);
    std::ofstream(o.out / (base + ".json")) << doc.dump(2) << "\n";
    std::cerr << "wrote " << (o.out / (base + ".md")).string() << " and " << (o.out / (base + ".json")).string() << "\n";
    if ((o.min_agreement >= 0 || o.max_metric_diff >= 0)) {
        bool any = false;
        for (auto const& r : results) any = any || r.agreement.has_value();
        if (!any) {
            std::cout << "FAIL: --min-agreement / --max-metric-diff given but no mode was compared with PyTorch (pass --torch-predictions "
                         "and evaluate the mode PyTorch evaluated: " << torch_spec << ")\n";
            return 2;
        }
        std::cout << (gate_failed ? gate.str() : std::string("agreement check passed\n"));
        if (gate_failed) return 2;
    }
    return 0;
} catch (std::exception const& e) {
    std::cerr << "bert_glue: error: " << e.what() << "\n";
    return 1;
}
