// bert_squad: SQuAD v1.1 EM / F1 of fine-tuned span-extraction checkpoints (exported by
// python/deq_train/finetune_squad.py) in deq attention modes, on deq's C++ BERT encoder.
//
// Split: dev-v1.1.json is the only SQuAD file here. The fine-tuning script trains on its articles [0, 24);
// this evaluator scores the articles [24, 48) (--eval-articles), in file order, so no evaluated paragraph
// was seen in training. --limit N keeps the first N evaluation questions.
//
// Per question (deq/eval/squad.hpp): features [CLS] question [SEP] window [SEP] (max length 384, doc stride
// 128, max query length 64, or the values stored in the checkpoint's config.json "deq" section); every
// feature runs alone, unpadded, through the encoder and the span head `qa_outputs`; n-best decoding
// (n_best 20, max answer length 30) maps the best span back to the context text; official EM / F1.
//
// Each --model DIR is evaluated in the modes of --modes (default: the mode it was fine-tuned with, from
// config.json). Predictor modes use the checkpoint's quantizer thresholds; a checkpoint without them (e.g.
// fine-tuned dense) is calibrated with deq::bert::calibrate on the first --calibration features of the
// training articles (--train-articles, batches of 8, dense passes). When DIR/../predictions.json exists
// (written by finetune_squad.py: PyTorch predictions of the same checkpoint in its own mode) or --reference
// FILE is given, the row of that mode reports the agreement: the percentage of questions whose predicted
// answer text is identical, and EM / F1 of the PyTorch predictions on the same questions.
//
// Output: a Markdown table (EM, F1, agreement, density, refinement ratio, empty rows, latency per question)
// on stdout and in <out>/bert_squad.md, the same as JSON in <out>/bert_squad.json, and every row's
// predictions in <out>/squad_predictions_<row>.json.
//
// Usage: bert_squad --model DIR [--model DIR ...] [--data DIR] [--out DIR] [--modes m1,m2,...] [--limit N]
//                   [--eval-articles A:B] [--train-articles A:B] [--calibration N] [--reference FILE]
//                   [--threads N] [--strict] [--no-progress]
//
// Model checks (deq::bert::load_model_folder): a NaN / Inf weight or a vocab.txt that cannot belong to the model
// is an error; a vocab.txt much smaller than vocab_size is a warning on stderr and in both reports ("warnings" in
// the JSON), an error with --strict.
#include <deq/bert/calibration.hpp>
#include <deq/bert/encoder.hpp>
#include <deq/bert/heads.hpp>
#include <deq/eval/squad.hpp>
#include <deq/exec/threads.hpp>
#include <deq/io/json.hpp>
#include <deq/io/safetensors.hpp>
#include <deq/text/bert_tokenizer.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>
#include <unordered_map>

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
    std::int64_t limit = 0, calibration = 256;
    std::pair<std::size_t, std::size_t> eval_articles{24, 48}, train_articles{0, 24};
    int threads = 0;
    bool progress = true, strict = false;
};

void usage() {
    std::cout << "usage: bert_squad --model DIR [--model DIR ...] [--data DIR] [--out DIR] [--modes m1,m2,...] [--limit N]\n"
                 "                  [--eval-articles A:B] [--train-articles A:B] [--calibration N] [--reference FILE]\n"
                 "                  [--threads N] [--strict] [--no-progress]\n\n"
                 "  --model DIR           checkpoint exported by python/deq_train/finetune_squad.py (repeatable)\n"
                 "  --data DIR            data folder holding squad/dev-v1.1.json (default " DEQ_DEFAULT_DATA_DIR ")\n"
                 "  --out DIR             output folder (default " DEQ_DEFAULT_OUT_DIR ")\n"
                 "  --modes LIST          attention modes (default: each checkpoint's fine-tuning mode)\n"
                 "  --limit N             only the first N evaluation questions\n"
                 "  --eval-articles A:B   evaluated articles of dev-v1.1.json (default 24:48)\n"
                 "  --train-articles A:B  calibration articles for checkpoints without thresholds (default 0:24)\n"
                 "  --calibration N       calibration features (default 256)\n"
                 "  --reference FILE      PyTorch predictions ({\"mode\", \"predictions\": {id: text}}) for the agreement;\n"
                 "                        default DIR/../predictions.json when it exists\n"
                 "  --threads N           threads (default: all cores)\n"
                 "  --strict              a vocab.txt much smaller than the model's vocab_size is an error, not a warning\n";
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
        else if (a == "--limit") o.limit = task_eval::positive(a, next());
        else if (a == "--eval-articles") o.eval_articles = task_eval::range(a, next());
        else if (a == "--train-articles") o.train_articles = task_eval::range(a, next());
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

// PyTorch predictions written by finetune_squad.py.
struct reference_predictions {
    std::string file, mode;
    std::unordered_map<std::string, std::string> predictions;
};

reference_predictions read_reference(fs::path const& file) {
    deq::io::json const doc = deq::io::json::parse_file(file);
    reference_predictions r;
    r.file = file.string();
    r.mode = deq::bert::parse_attention_mode(doc.at("mode").as_string()).spec();
    for (auto const& m : doc.at("predictions").as_object()) r.predictions[m.key] = m.value.as_string();
    return r;
}

deq::text::encoding to_encoding(deq::eval::squad_feature const& f) {
    deq::text::encoding e;
    e.input_ids = f.input_ids;
    e.token_type_ids = f.token_type_ids;
    e.attention_mask.assign(f.input_ids.size(), 1);
    return e;
}

struct row {
    std::string model, mode, description, thresholds;
    deq::eval::squad_score score;
    deq::bert::attention_summary stats;
    double seconds = 0, ms_per_question = 0, ms_per_feature = 0;
    std::size_t features = 0, empty_predictions = 0;
    bool has_reference = false;
    std::string reference_file;
    std::size_t compared = 0, identical = 0;
    deq::eval::squad_score reference_score;
    std::unordered_map<std::string, std::string> predictions;
};

}  // namespace

int main(int argc, char** argv) try {
    auto const t0 = clock_type::now();
    options const o = parse(argc, argv);
    fs::create_directories(o.out);
    deq::bert::set_blas_threads(1);  // the linear layers are split across the space's threads
    deq::exec::threads const space(o.threads);

    fs::path const data_file = o.data / "squad" / "dev-v1.1.json";
    auto const dataset = deq::eval::read_squad(data_file);
    auto eval = deq::eval::squad_articles(dataset, o.eval_articles.first, o.eval_articles.second);
    if (o.limit > 0 && static_cast<std::size_t>(o.limit) < eval.size()) eval.resize(static_cast<std::size_t>(o.limit));

    std::vector<row> rows;
    std::vector<std::string> warnings;  // of every checkpoint's vocabulary check
    for (fs::path const& dir : o.models) {
        std::cerr << "loading " << dir.string() << "\n";
        auto const section = task_eval::deq_section::load(dir);
        auto loaded = task_eval::load_model("bert_squad", dir, o.strict, warnings);
        auto& model = loaded.model;
        auto const& tokenizer = loaded.tokenizer;
        auto const head = deq::bert::span_head::load(deq::io::safetensors_file::open(dir / "model.safetensors"), model.config());
        deq::eval::squad_feature_options fo;
        fo.max_length = static_cast<std::size_t>(section.integer("max_seq_length", 384, 16, model.config().max_position_embeddings));
        fo.doc_stride = static_cast<std::size_t>(section.integer("doc_stride", 128, 0, 512));
        fo.max_query_length = static_cast<std::size_t>(section.integer("max_query_length", 64, 1, 512));

        std::vector<deq::eval::squad_feature> features;
        std::vector<std::vector<std::size_t>> of_question(eval.size());
        for (std::size_t q = 0; q < eval.size(); ++q) {
            for (auto& f : deq::eval::make_squad_features(tokenizer, eval[q], q, fo)) {
                of_question[q].push_back(features.size());
                features.push_back(std::move(f));
            }
        }
        std::vector<std::string> modes = o.modes.empty() ? std::vector<std::string>{section.mode} : o.modes;

        std::optional<reference_predictions> reference;
        fs::path const ref_file = !o.reference.empty() ? o.reference : dir.parent_path() / "predictions.json";
        if (!o.reference.empty() || fs::exists(ref_file)) reference = read_reference(ref_file);

        std::string threshold_note = model.thresholds() ? model.thresholds()->origin : std::string("none");
        for (std::string const& mode_text : modes) {
            auto const mode = deq::bert::parse_attention_mode(mode_text);
            if (mode.needs_predictor() && !model.thresholds()) {
                auto const train = deq::eval::squad_articles(dataset, o.train_articles.first, o.train_articles.second);
                std::vector<deq::text::encoding> cal;
                for (std::size_t q = 0; q < train.size() && static_cast<std::int64_t>(cal.size()) < o.calibration; ++q) {
                    for (auto const& f : deq::eval::make_squad_features(tokenizer, train[q], q, fo)) {
                        if (static_cast<std::int64_t>(cal.size()) < o.calibration) cal.push_back(to_encoding(f));
                    }
                }
                deq::bert::calibration_options co;
                co.origin = "deq::bert::calibrate: first " + std::to_string(cal.size()) + " features of articles [" +
                            std::to_string(o.train_articles.first) + ", " + std::to_string(o.train_articles.second) + ") of " +
                            data_file.string() + ", batches of 8, dense attention, EMA 0.9999";
                model.set_thresholds(
                    deq::bert::calibrate_encodings(space, model, cal, 8, static_cast<std::int32_t>(tokenizer.pad_id()), co));
                threshold_note = co.origin;
            }
            row r;
            r.model = dir.string();
            r.mode = mode.spec();
            r.description = mode.describe();
            r.thresholds = mode.needs_predictor() ? threshold_note : "not used";
            r.features = features.size();
            std::vector<std::vector<float>> start(features.size()), end(features.size());
            task_eval::progress_bar bar(o.progress, "[" + std::to_string(rows.size() + 1) + "] " + r.mode, static_cast<std::int64_t>(eval.size()),
                                        "questions");
            auto const tm = clock_type::now();
            for (std::size_t q = 0; q < eval.size(); ++q) {
                std::vector<deq::eval::squad_feature_logits> fl;
                for (std::size_t fi : of_question[q]) {
                    std::vector<deq::text::encoding> one{to_encoding(features[fi])};
                    auto const in = deq::bert::model_input::from_encodings(one, static_cast<std::int32_t>(tokenizer.pad_id()));
                    auto const out = model.forward(space, in, mode);
                    r.stats.merge(out.summary());
                    auto const logits = head.logits(out.last_hidden_state.cview());
                    index_t const n = logits.start.extent(1);
                    start[fi].assign(logits.start.data(), logits.start.data() + n);
                    end[fi].assign(logits.end.data(), logits.end.data() + n);
                    fl.push_back({&features[fi], start[fi], end[fi]});
                }
                auto const p = deq::eval::decode_squad(eval[q].context, fl);
                if (!p.has_candidate) ++r.empty_predictions;
                r.predictions[eval[q].id] = p.text;
                bar.update(static_cast<std::int64_t>(q + 1));
            }
            bar.done();
            r.seconds = std::chrono::duration<double>(clock_type::now() - tm).count();
            r.ms_per_question = 1000.0 * r.seconds / static_cast<double>(eval.size());
            r.ms_per_feature = 1000.0 * r.seconds / static_cast<double>(features.size());
            r.score = deq::eval::squad_evaluate(eval, r.predictions);
            if (reference && reference->mode == r.mode) {
                r.has_reference = true;
                r.reference_file = reference->file;
                std::vector<deq::eval::squad_example> shared;
                for (auto const& e : eval) {
                    auto const it = reference->predictions.find(e.id);
                    if (it == reference->predictions.end()) continue;
                    shared.push_back(e);
                    ++r.compared;
                    if (it->second == r.predictions[e.id]) ++r.identical;
                }
                if (!shared.empty()) r.reference_score = deq::eval::squad_evaluate(shared, reference->predictions);
            }
            std::cerr << r.mode << ": EM " << fixed(r.score.exact_match, 2) << " F1 " << fixed(r.score.f1, 2)
                      << (r.has_reference ? "; agreement with PyTorch " + std::to_string(r.identical) + "/" + std::to_string(r.compared) : "")
                      << "\n";
            rows.push_back(std::move(r));
        }
    }
    double const total = std::chrono::duration<double>(clock_type::now() - t0).count();

    std::ostringstream md;
    md << "## SQuAD v1.1, articles [" << o.eval_articles.first << ", " << o.eval_articles.second << ") of dev-v1.1.json ("
       << eval.size() << " questions)\n\n"
       << "| checkpoint | mode | EM | F1 | agreement with PyTorch | PyTorch EM / F1 | " << task_eval::stats_header()
       << " | ms / question |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (auto const& r : rows) {
        md << "| " << fs::path(r.model).parent_path().filename().string() << " | " << r.mode << " | " << fixed(r.score.exact_match, 2) << " | "
           << fixed(r.score.f1, 2) << " | "
           << (r.has_reference && r.compared > 0
                   ? fixed(100.0 * static_cast<double>(r.identical) / static_cast<double>(r.compared), 2) + "% of " + std::to_string(r.compared)
                   : std::string("-"))
           << " | "
           << (r.has_reference && r.compared > 0 ? fixed(r.reference_score.exact_match, 2) + " / " + fixed(r.reference_score.f1, 2) : std::string("-"))
           << " | " << task_eval::stats_cells(r.stats) << " | " << fixed(r.ms_per_question, 2) << " |\n";
    }
    md << "\nFeatures: max length 384, doc stride 128 (window overlap), max query length 64, each feature alone and unpadded; "
          "n-best 20, max answer length 30; official EM / F1. Agreement: questions whose C++ answer text equals the PyTorch "
          "prediction of the same checkpoint and mode (finetune_squad.py). Density / refinement ratio: mean over attention "
          "calls (layers × features). "
       << o.threads << " threads. Total run time " << fixed(total, 1) << " s.\n";
    for (auto const& r : rows) {
        if (r.thresholds != "not used") md << "Thresholds (" << r.mode << "): " << r.thresholds << ".\n";
    }
    task_eval::warnings_markdown(md, warnings);
    std::cout << md.str();
    std::ofstream(o.out / "bert_squad.md") << md.str();

    deq::io::json doc = deq::io::json::object();
    doc["task"] = "squad";
    doc["warnings"] = task_eval::warnings_json(warnings);
    doc["data"] = data_file.string();
    doc["eval_articles"] = deq::io::json::array({static_cast<std::int64_t>(o.eval_articles.first), static_cast<std::int64_t>(o.eval_articles.second)});
    doc["questions"] = static_cast<std::int64_t>(eval.size());
    doc["threads"] = o.threads;
    doc["runtime_seconds"] = total;
    deq::io::json list = deq::io::json::array();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto const& r = rows[i];
        deq::io::json e = deq::io::json::object();
        e["checkpoint"] = r.model;
        e["mode"] = r.mode;
        e["description"] = r.description;
        e["exact_match"] = r.score.exact_match;
        e["f1"] = r.score.f1;
        e["questions"] = static_cast<std::int64_t>(r.score.questions);
        e["features"] = static_cast<std::int64_t>(r.features);
        e["empty_predictions"] = static_cast<std::int64_t>(r.empty_predictions);
        task_eval::stats_json(e, r.stats);
        e["seconds"] = r.seconds;
        e["latency_ms_per_question"] = r.ms_per_question;
        e["latency_ms_per_feature"] = r.ms_per_feature;
        e["thresholds"] = r.thresholds;
        if (r.has_reference) {
            deq::io::json a = deq::io::json::object();
            a["file"] = r.reference_file;
            a["compared"] = static_cast<std::int64_t>(r.compared);
            a["identical"] = static_cast<std::int64_t>(r.identical);
            a["percent"] = r.compared > 0 ? 100.0 * static_cast<double>(r.identical) / static_cast<double>(r.compared) : 0.0;
            a["pytorch_exact_match"] = r.reference_score.exact_match;
            a["pytorch_f1"] = r.reference_score.f1;
            e["agreement"] = std::move(a);
        }
        fs::path const pred_file = o.out / ("squad_predictions_" + std::to_string(i) + ".json");
        deq::io::json preds = deq::io::json::object();
        for (auto const& q : eval) preds[q.id] = r.predictions.at(q.id);
        deq::io::json pd = deq::io::json::object();
        pd["mode"] = r.mode;
        pd["checkpoint"] = r.model;
        pd["predictions"] = std::move(preds);
        std::ofstream(pred_file) << pd.dump(1) << "\n";
        e["predictions_file"] = pred_file.string();
        list.push_back(std::move(e));
    }
    doc["rows"] = std::move(list);
    std::ofstream(o.out / "bert_squad.json") << doc.dump(2) << "\n";
    std::cerr << "wrote " << (o.out / "bert_squad.md").string() << " and " << (o.out / "bert_squad.json").string() << "\n";
    return 0;
} catch (std::exception const& e) {
    std::cerr << "bert_squad: error: " << e.what() << "\n";
    return 1;
}
