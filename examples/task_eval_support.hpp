// Shared pieces of the evaluators: command-line helpers, the progress bar, the "deq" section of an exported
// model's config.json (python/deq_train/export.py) and the attention-statistics columns of the results table
// (bert_squad, bert_cloth), and the model-folder checks of every evaluator (bert_stsb, bert_glue, bert_squad,
// bert_cloth, accelerator_report: --strict, the warnings on stderr and in the Markdown and JSON reports).
#pragma once

#include <deq/bert/model_folder.hpp>
#include <deq/bert/statistics.hpp>
#include <deq/core/error.hpp>
#include <deq/io/json.hpp>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace task_eval {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

inline std::vector<std::string> split(std::string const& s, char sep) {
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

inline std::int64_t positive(std::string const& name, std::string const& text) {
    std::int64_t v = 0;
    auto const r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v < 1) {
        deq::detail::throw_invalid_argument(name, text, "must be a positive integer");
    }
    return v;
}

// "A:B" -> {A, B} with A < B.
inline std::pair<std::size_t, std::size_t> range(std::string const& name, std::string const& text) {
    auto const parts = split(text, ':');
    if (parts.size() != 2) deq::detail::throw_invalid_argument(name, text, "must be FIRST:LAST, e.g. 24:48");
    std::size_t a = 0, b = 0;
    auto const r1 = std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), a);
    auto const r2 = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), b);
    if (r1.ec != std::errc{} || r2.ec != std::errc{} || r1.ptr != parts[0].data() + parts[0].size() ||
        r2.ptr != parts[1].data() + parts[1].size() || a >= b) {
        deq::detail::throw_invalid_argument(name, text, "must be FIRST:LAST with FIRST < LAST");
    }
    return {a, b};
}

inline std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

class progress_bar {
public:
    progress_bar(bool on, std::string label, std::int64_t total, std::string unit)
        : on_(on), tty_(isatty(2) != 0), label_(std::move(label)), unit_(std::move(unit)), total_(total), start_(clock_type::now()) {}
    void update(std::int64_t done) {
        if (!on_) return;
        int const pct = total_ > 0 ? static_cast<int>(100 * done / total_) : 100;
        if (!tty_ && pct < last_ + 25 && done < total_) return;
        if (tty_ && pct == last_ && done < total_) return;
        last_ = pct;
        int const width = 30, filled = width * pct / 100;
        double const secs = std::chrono::duration<double>(clock_type::now() - start_).count();
        std::cerr << (tty_ ? "\r" : "") << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
                  << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << std::setw(3) << pct << "% " << done << "/"
                  << total_ << " " << unit_ << " " << fixed(secs, 1) << " s" << (tty_ ? "" : "\n") << std::flush;
    }
    void done() {
        if (on_ && tty_) std::cerr << "\n";
    }

private:
    bool on_, tty_;
    std::string label_, unit_;
    std::int64_t total_;
    clock_type::time_point start_;
    int last_ = -100;
};

// The "deq" section of an exported model's config.json (absent for a plain Hugging Face folder).
struct deq_section {
    std::string mode = "dense";  // the attention mode the model was fine-tuned with
    bool present = false;
    deq::io::json json;          // the whole section (null when absent)

    static deq_section load(fs::path const& dir) {
        deq::io::json const cfg = deq::io::json::parse_file(dir / "config.json");
        deq_section s;
        if (deq::io::json const* d = cfg.find("deq"); d != nullptr && !d->is_null()) {
            s.present = true;
            s.json = *d;
            s.mode = d->at("attention_mode").as_string();
        }
        return s;
    }
    std::int64_t integer(char const* key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) const {
        if (!present) return fallback;
        deq::io::json const* v = json.find(key);
        return v == nullptr || v->is_null() ? fallback : v->as_int(lo, hi);
    }
};

// The checks of deq::bert::load_model_folder / load_classifier_folder: NaN / Inf weights are errors; a vocabulary
// much smaller than the model's vocab_size is a warning, an error with --strict.
inline deq::bert::model_load_options load_options(bool strict) {
    deq::bert::model_load_options o;
    o.vocabulary.strict = strict;
    return o;
}
inline void print_warnings(char const* program, std::vector<std::string> const& warnings) {
    for (auto const& w : warnings) std::cerr << program << ": warning: " << w << " (--strict makes this an error)\n";
}
// A BERT model folder loaded with these checks; its warnings are printed and appended to @p warnings (the report's).
inline deq::bert::loaded_model<deq::bert::bert_model> load_model(char const* program, fs::path const& dir, bool strict,
                                                                 std::vector<std::string>& warnings) {
    auto loaded = deq::bert::load_model_folder(dir, load_options(strict));
    print_warnings(program, loaded.warnings);
    warnings.insert(warnings.end(), loaded.warnings.begin(), loaded.warnings.end());
    return loaded;
}
inline void warnings_markdown(std::ostream& md, std::vector<std::string> const& warnings) {
    for (auto const& w : warnings) md << "\n**Warning:** " << w << ".\n";
}
inline deq::io::json warnings_json(std::vector<std::string> const& warnings) {
    deq::io::json list = deq::io::json::array();
    for (auto const& w : warnings) list.push_back(w);
    return list;
}

// Statistics columns shared by the tables.
inline std::string stats_header() { return "density | refinement ratio | empty rows | rows w/o full precision"; }
inline std::string stats_cells(deq::bert::attention_summary const& s) {
    return fixed(s.density(), 3) + " | " + fixed(s.refinement_ratio(), 4) + " | " + fixed(100.0 * s.empty_row_fraction(), 2) + "% | " +
           fixed(100.0 * s.unrefined_row_fraction(), 2) + "%";
}
inline void stats_json(deq::io::json& e, deq::bert::attention_summary const& s) {
    e["density"] = s.density();
    e["refinement_ratio"] = s.refinement_ratio();
    e["empty_rows"] = s.empty_rows;
    e["unrefined_rows"] = s.unrefined_rows;
    e["rows"] = s.rows;
    e["empty_row_fraction"] = s.empty_row_fraction();
    e["unrefined_row_fraction"] = s.unrefined_row_fraction();
    e["attention_calls"] = s.calls;
}

}  // namespace task_eval
