// bert_cloth: CLOTH (cloze test) accuracy of masked-LM checkpoints fine-tuned and exported by
// python/deq_train/finetune_cloth.py, in deq attention modes, on deq's C++ BERT encoder.
//
// Data: <data>/cloth/valid/{high,middle}/*.json in sorted path order (--split, --limit N keeps the first N
// passages); unreadable files (e.g. a passage without a question) are counted and listed, never dropped
// silently. Per passage (deq/eval/cloth.hpp): every blank `_` becomes [MASK]; a passage of at most 510
// tokens is one input [CLS] article [SEP], a longer one is split into half-overlapping windows of 510 tokens
// and each blank is scored in the window where it has the most context; each input runs alone, unpadded,
// through the encoder and the masked-LM head (decoder tied to the word embeddings when the checkpoint does
// not store it); the predicted option is the one whose first word-piece has the largest logit.
//
// Each --model DIR is evaluated in the modes of --modes (default: the mode it was fine-tuned with, from
// config.json). Predictor modes use the checkpoint's thresholds; a checkpoint without them is calibrated
// with deq::bert::calibrate on the first --calibration inputs of the train split (batches of 4, dense
// passes). When DIR/../predictions.json exists (PyTorch predictions of finetune_cloth.py for the same
// checkpoint and its mode) or --reference FILE is given, that mode's row reports the agreement: the
// percentage of questions with the same predicted option, and the PyTorch accuracy on the same questions.
//
// Output: a Markdown table (accuracy, agreement, density, refinement ratio, empty rows, latency per passage
// and per question) on stdout and in <out>/bert_cloth.md, JSON in <out>/bert_cloth.json, and every row's
// predictions in <out>/cloth_predictions_<row>.json.
//
// Usage: bert_cloth --model DIR [--model DIR ...] [--data DIR] [--out DIR] [--modes m1,m2,...] [--split S]
//                   [--limit N] [--calibration N] [--reference FILE] [--threads N] [--strict] [--no-progress]
//
// Model checks (deq::bert::load_model_folder): a NaN / Inf weight or a vocab.txt that cannot belong to the model
// is an error; a vocab.txt much smaller than vocab_size is a warning on stderr and in both reports ("warnings" in
// the JSON), an error with --strict.
#include <deq/bert/calibration.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/bert/heads.hpp>
#include <deq/eval/cloth.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/json.hpp>
#include <deq/io/safetensors.hpp>
#include <deq/text/bert_tokenizer.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "task_eval_support.hpp"

#ifndef DEQ_DEFAULT_DATA_DIR
#define DEQ_DEFAULT_DATA_DIR "../shared/data"
#endif
#ifndef DEQ_DEFAULT_OUT_DIR
#define DEQ_DEFAULT_OUT_DIR "."
#endif

namespace fs = std::filesystem;
using deq::index_t;
using task_eval::clock_type;
using task_eval::fixed;

namespace {

struct options {
    std::vector<fs::path> models;
    fs::path data = DEQ_DEFAULT_DATA_DIR, out = DEQ_DEFAULT_OUT_DIR, reference;
    std::vector<std::string> modes;
    std::string split = "valid";
    std::int64_t limit = 0, calibration = 64;
    int threads = 0;
    bool progress = true, strict = false;
};

void usage() {
    std::cout << "usage: bert_cloth --model DIR [--model DIR ...] [--data DIR] [--out DIR] [--modes m1,m2,...] [--split S]\n"
                 "                  [--limit N] [--calibration N] [--reference FILE] [--threads N] [--strict]\n"
                 "                  [--no-progress]\n\n"
                 "  --model DIR        checkpoint exported by python/deq_train/finetune_cloth.py (repeatable)\n"
                 "  --data DIR         data folder holding cloth/ (default " DEQ_DEFAULT_DATA_DIR ")\n"
                 "  --out DIR          output folder (default " DEQ_DEFAULT_OUT_DIR ")\n"
                 "  --modes LIST       attention modes (default: each checkpoint's fine-tuning mode)\n"
                 "  --split S          evaluated split (default valid)\n"
                 "  --limit N          only the first N passages (sorted paths)\n"
                 "  --calibration N    train inputs for checkpoints without thresholds (default 64)\n"
                 "  --reference FILE   PyTorch predictions ({\"mode\", \"predictions\": {file: [options]}}); default\n"
                 "                     DIR/../predictions.json when it exists\n"
                 "  --threads N        threads (default: all cores)\n"
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
        if (a == "--model") o.models.emplace_back(next());
        else if (a == "--data") o.data = next();
        else if (a == "--out") o.out = next();
        else if (a == "--modes") o.modes = task_eval::split(next(), ',');
        else if (a == "--split") o.split = next();
        else if (a == "--limit") o.limit = task_eval::positive(a, next());
        else if (a == "--calibration") o.calibration = task_eval::positive(a, next());
        else if (a == "--reference") o.reference = next();
        else if (a == "--threads") o.threads = static_cast<int>(task_eval::positive(a, next()));
        else if (a == "--strict") o.strict = true;
        else if (a == "--no-progress") o.progress = false;
        else if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        } else {
            deq::detail::throw_invalid_argument("option", a, "is unknown (see --help)");
        }
    }
    if (o.models.empty()) deq::detail::throw_invalid_argument("--model", "<missing>", "name at least one fine-tuned checkpoint");
    if (!o.reference.empty() && o.models.size() != 1) deq::detail::throw_invalid_argument("--reference", o.reference.string(), "needs exactly one --model");
    if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return o;
}

// Key of a passage: its path relative to the CLOTH folder (as finetune_cloth.py writes it).
std::string key_of(fs::path const& root, std::string const& file) { return fs::path(file).lexically_relative(root).generic_string(); }

struct reference_predictions {
    std::string file, mode;
    std::map<std::string, std::vector<int>> predictions;
};

reference_predictions read_reference(fs::path const& file) {
    deq::io::json const doc = deq::io::json::parse_file(file);
    reference_predictions r;
    r.file = file.string();
    r.mode = deq::bert::parse_attention_mode(doc.at("mode").as_string()).spec();
    for (auto const& m : doc.at("predictions").as_object()) {
        std::vector<int> v;
        for (auto const& x : m.value.as_array()) v.push_back(static_cast<int>(x.as_int(0, 3)));
        r.predictions[m.key] = std::move(v);
    }
    return r;
}

deq::bert::model_input one_input(std::vector<deq::text::token_id> const& ids) {
    deq::text::encoding e;
    e.input_ids = ids;
    e.token_type_ids.assign(ids.size(), 0);
    e.attention_mask.assign(ids.size(), 1);
    std::vector<deq::text::encoding> one{std::move(e)};
    return deq::bert::model_input::from_encodings(one, 0);
}

struct row {
    std::string model, mode, description, thresholds;
    double accuracy = 0, seconds = 0, ms_per_passage = 0, ms_per_question = 0;
    std::size_t questions = 0, correct = 0, windows = 0;
    deq::bert::attention_summary stats;
    std::map<std::string, std::vector<int>> predictions;
    bool has_reference = false;
    std::string reference_file;
    std::size_t compared = 0, identical = 0, reference_correct = 0;
};

}  // namespace

int main(int argc, char** argv) try {
    auto const t0 = clock_type::now();
    options const o = parse(argc, argv);
    fs::create_directories(o.out);
    deq::bert::set_blas_threads(1);  // the linear layers are split across the space's threads
    deq::exec::threads const space(o.threads);

    fs::path const root = o.data / "cloth";
    auto split = deq::eval::read_cloth_split(root, o.split);
    for (auto const& s : split.skipped) std::cerr << "warning: skipped " << s.file << ": " << s.reason << "\n";
    auto& passages = split.passages;
    if (o.limit > 0 && static_cast<std::size_t>(o.limit) < passages.size()) passages.resize(static_cast<std::size_t>(o.limit));
    if (passages.empty()) throw deq::invalid_argument("bert_cloth: no readable passage in " + (root / o.split).string());
    std::size_t questions = 0;
    for (auto const& p : passages) questions += p.answers.size();

    std::vector<row> rows;
    std::vector<std::string> warnings;  // of every checkpoint's vocabulary check
    for (fs::path const& dir : o.models) {
        std::cerr << "loading " << dir.string() << "\n";
        auto const section = task_eval::deq_section::load(dir);
        auto loaded = task_eval::load_model("bert_cloth", dir, o.strict, warnings);
        auto& model = loaded.model;
        auto const& tokenizer = loaded.tokenizer;
        auto const head = deq::bert::mlm_head::load(deq::io::safetensors_file::open(dir / "model.safetensors"), model.config(),
                                                    model.weights().embeddings.word);
        deq::eval::cloth_input_options io;
        io.max_length = static_cast<std::size_t>(section.integer("max_seq_length", 512, 4, model.config().max_position_embeddings));
        std::vector<deq::eval::cloth_inputs> inputs;
        for (auto const& p : passages) inputs.push_back(deq::eval::make_cloth_inputs(tokenizer, p, io));
        std::vector<std::string> modes = o.modes.empty() ? std::vector<std::string>{section.mode} : o.modes;

        std::optional<reference_predictions> reference;
        fs::path const ref_file = !o.reference.empty() ? o.reference : dir.parent_path() / "predictions.json";
        if (!o.reference.empty() || fs::exists(ref_file)) reference = read_reference(ref_file);

        std::string threshold_note = model.thresholds() ? model.thresholds()->origin : std::string("none");
        for (std::string const& mode_text : modes) {
            auto const mode = deq::bert::parse_attention_mode(mode_text);
            if (mode.needs_predictor() && !model.thresholds()) {
                auto const train = deq::eval::read_cloth_split(root, "train");
                std::vector<deq::text::encoding> cal;
                for (auto const& p : train.passages) {
                    if (static_cast<std::int64_t>(cal.size()) >= o.calibration) break;
                    for (auto const& w : deq::eval::make_cloth_inputs(tokenizer, p, io).windows) {
                        if (static_cast<std::int64_t>(cal.size()) >= o.calibration) break;
                        deq::text::encoding e;
                        e.input_ids = w.input_ids;
                        e.token_type_ids.assign(w.input_ids.size(), 0);
                        e.attention_mask.assign(w.input_ids.size(), 1);
                        cal.push_back(std::move(e));
                    }
                }
                deq::bert::calibration_options co;
                co.origin = "deq::bert::calibrate: first " + std::to_string(cal.size()) + " inputs of " + (root / "train").string() +
                            " (sorted paths), batches of 4, dense attention, EMA 0.9999";
                model.set_thresholds(
                    deq::bert::calibrate_encodings(space, model, cal, 4, static_cast<std::int32_t>(tokenizer.pad_id()), co));
                threshold_note = co.origin;
            }
            row r;
            r.model = dir.string();
            r.mode = mode.spec();
            r.description = mode.describe();
            r.thresholds = mode.needs_predictor() ? threshold_note : "not used";
            r.questions = questions;
            task_eval::progress_bar bar(o.progress, "[" + std::to_string(rows.size() + 1) + "] " + r.mode,
                                        static_cast<std::int64_t>(passages.size()), "passages");
            auto const tm = clock_type::now();
            for (std::size_t pi = 0; pi < passages.size(); ++pi) {
                auto const& p = passages[pi];
                std::vector<int> pred(p.answers.size(), -1);
                for (auto const& w : inputs[pi].windows) {
                    ++r.windows;
                    auto const out = model.forward(space, one_input(w.input_ids), mode);
                    r.stats.merge(out.summary());
                    index_t const hidden = model.config().hidden_size;
                    deq::tensor<float, 2> rows_at({static_cast<index_t>(w.positions.size()), hidden});
                    for (std::size_t k = 0; k < w.positions.size(); ++k) {
                        std::copy_n(out.last_hidden_state.data() + static_cast<index_t>(w.positions[k]) * hidden, hidden,
                                    rows_at.data() + static_cast<index_t>(k) * hidden);
                    }
                    auto const logits = head.logits(space, rows_at.cview());
                    index_t const vocab = logits.extent(1);
                    for (std::size_t k = 0; k < w.positions.size(); ++k) {
                        std::size_t const q = w.questions[k];
                        pred[q] = deq::eval::cloth_choose(std::span<float const>(logits.data() + static_cast<index_t>(k) * vocab,
                                                                                 static_cast<std::size_t>(vocab)),
                                                          inputs[pi].option_ids[q]);
                    }
                }
                for (std::size_t q = 0; q < pred.size(); ++q) r.correct += pred[q] == p.answers[q] ? 1 : 0;
                r.predictions[key_of(root, p.file)] = std::move(pred);
                bar.update(static_cast<std::int64_t>(pi + 1));
            }
            bar.done();
            r.seconds = std::chrono::duration<double>(clock_type::now() - tm).count();
            r.ms_per_passage = 1000.0 * r.seconds / static_cast<double>(passages.size());
            r.ms_per_question = 1000.0 * r.seconds / static_cast<double>(questions);
            r.accuracy = 100.0 * static_cast<double>(r.correct) / static_cast<double>(questions);
            if (reference && reference->mode == r.mode) {
                r.has_reference = true;
                r.reference_file = reference->file;
                for (auto const& p : passages) {
                    auto const it = reference->predictions.find(key_of(root, p.file));
                    if (it == reference->predictions.end() || it->second.size() != p.answers.size()) continue;
                    auto const& mine = r.predictions[key_of(root, p.file)];
                    for (std::size_t q = 0; q < p.answers.size(); ++q) {
                        ++r.compared;
                        r.identical += it->second[q] == mine[q] ? 1 : 0;
                        r.reference_correct += it->second[q] == p.answers[q] ? 1 : 0;
                    }
                }
            }
            std::cerr << r.mode << ": accuracy " << fixed(r.accuracy, 2)
                      << (r.has_reference ? "; agreement with PyTorch " + std::to_string(r.identical) + "/" + std::to_string(r.compared) : "")
                      << "\n";
            rows.push_back(std::move(r));
        }
    }
    double const total = std::chrono::duration<double>(clock_type::now() - t0).count();

    std::ostringstream md;
    md << "## CLOTH " << o.split << " (" << passages.size() << " passages, " << questions << " questions)\n\n"
       << "| checkpoint | mode | accuracy | agreement with PyTorch | PyTorch accuracy | " << task_eval::stats_header()
       << " | ms / passage | ms / question |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (auto const& r : rows) {
        bool const ref = r.has_reference && r.compared > 0;
        md << "| " << fs::path(r.model).parent_path().filename().string() << " | " << r.mode << " | " << fixed(r.accuracy, 2) << " | "
           << (ref ? fixed(100.0 * static_cast<double>(r.identical) / static_cast<double>(r.compared), 2) + "% of " + std::to_string(r.compared)
                   : std::string("-"))
           << " | " << (ref ? fixed(100.0 * static_cast<double>(r.reference_correct) / static_cast<double>(r.compared), 2) : std::string("-"))
           << " | " << task_eval::stats_cells(r.stats) << " | " << fixed(r.ms_per_passage, 1) << " | " << fixed(r.ms_per_question, 2) << " |\n";
    }
    md << "\n" << split.files << " files in " << (root / o.split).string() << ", " << split.skipped.size() << " unreadable (listed on stderr)";
    if (o.limit > 0) md << ", first " << passages.size() << " passages (sorted paths) evaluated";
    md << ". Blanks → [MASK]; passages over " << 510 << " tokens split into half-overlapping windows; option = first word-piece; "
          "each input alone, unpadded. Agreement: questions with the same option as the PyTorch prediction of the same "
          "checkpoint and mode (finetune_cloth.py). Density / refinement ratio: mean over attention calls (layers × inputs). "
       << o.threads << " threads. Total run time " << fixed(total, 1) << " s.\n";
    for (auto const& r : rows) {
        if (r.thresholds != "not used") md << "Thresholds (" << r.mode << "): " << r.thresholds << ".\n";
    }
    task_eval::warnings_markdown(md, warnings);
    std::cout << md.str();
    std::ofstream(o.out / "bert_cloth.md") << md.str();

    deq::io::json doc = deq::io::json::object();
    doc["task"] = "cloth";
    doc["warnings"] = task_eval::warnings_json(warnings);
    doc["data"] = (root / o.split).string();
    doc["files"] = static_cast<std::int64_t>(split.files);
    deq::io::json skipped = deq::io::json::array();
    for (auto const& s : split.skipped) {
        deq::io::json e = deq::io::json::object();
        e["file"] = s.file;
        e["reason"] = s.reason;
        skipped.push_back(std::move(e));
    }
    doc["skipped"] = std::move(skipped);
    doc["passages"] = static_cast<std::int64_t>(passages.size());
    doc["questions"] = static_cast<std::int64_t>(questions);
    doc["threads"] = o.threads;
    doc["runtime_seconds"] = total;
    deq::io::json list = deq::io::json::array();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto const& r = rows[i];
        deq::io::json e = deq::io::json::object();
        e["checkpoint"] = r.model;
        e["mode"] = r.mode;
        e["description"] = r.description;
        e["accuracy"] = r.accuracy;
        e["correct"] = static_cast<std::int64_t>(r.correct);
        e["windows"] = static_cast<std::int64_t>(r.windows);
        task_eval::stats_json(e, r.stats);
        e["seconds"] = r.seconds;
        e["latency_ms_per_passage"] = r.ms_per_passage;
        e["latency_ms_per_question"] = r.ms_per_question;
        e["thresholds"] = r.thresholds;
        if (r.has_reference) {
            deq::io::json a = deq::io::json::object();
            a["file"] = r.reference_file;
            a["compared"] = static_cast<std::int64_t>(r.compared);
            a["identical"] = static_cast<std::int64_t>(r.identical);
            a["percent"] = r.compared > 0 ? 100.0 * static_cast<double>(r.identical) / static_cast<double>(r.compared) : 0.0;
            a["pytorch_accuracy"] = r.compared > 0 ? 100.0 * static_cast<double>(r.reference_correct) / static_cast<double>(r.compared) : 0.0;
            e["agreement"] = std::move(a);
        }
        fs::path const pred_file = o.out / ("cloth_predictions_" + std::to_string(i) + ".json");
        deq::io::json preds = deq::io::json::object();
        for (auto const& [k, v] : r.predictions) {
            deq::io::json arr = deq::io::json::array();
            for (int x : v) arr.push_back(x);
            preds[k] = std::move(arr);
        }
        deq::io::json pd = deq::io::json::object();
        pd["mode"] = r.mode;
        pd["checkpoint"] = r.model;
        pd["predictions"] = std::move(preds);
        std::ofstream(pred_file) << pd.dump(1) << "\n";
        e["predictions_file"] = pred_file.string();
        list.push_back(std::move(e));
    }
    doc["rows"] = std::move(list);
    std::ofstream(o.out / "bert_cloth.json") << doc.dump(2) << "\n";
    std::cerr << "wrote " << (o.out / "bert_cloth.md").string() << " and " << (o.out / "bert_cloth.json").string() << "\n";
    return 0;
} catch (std::exception const& e) {
    std::cerr << "bert_cloth: error: " << e.what() << "\n";
    return 1;
}
