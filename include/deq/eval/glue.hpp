/// @file
/// @brief The GLUE tasks deq evaluates (CoLA, SST-2, MRPC, STS-B, RTE): their TSV layouts, a strict
/// reader of their train / dev files and their metrics.
///
/// Files are the GLUE distribution's TSVs, `DATA/glue/<Folder>/{train,dev}.tsv`, read as the Hugging
/// Face / GLUE processors (and python/deq_train/glue.py) read them: tab-separated, no quoting, LF line
/// endings (a CR before the LF is dropped), UTF-8; a final newline does not start an empty row.
///
/// | task | folder | header | fields | text a | text b | label | labels | metrics |
/// |---|---|---|---|---|---|---|---|---|
/// | cola | CoLA | none | 4 | 3 | - | 1 | 0, 1 | mcc |
/// | sst2 | SST-2 | `sentence label` | 2 | 0 | - | 1 | 0, 1 | accuracy |
/// | mrpc | MRPC | `Quality #1 ID #2 ID #1 String #2 String` (UTF-8 BOM) | 5 | 3 | 4 | 0 | 0, 1 | accuracy, f1 |
/// | stsb | STS-B | `index genre filename year old_index source1 source2 sentence1 sentence2 score` | 10 | 7 | 8 | 9 | score in [0, 5] | pearson, spearmanr |
/// | rte | RTE | `index sentence1 sentence2 label` | 4 | 1 | 2 | 3 | entailment, not_entailment | accuracy |
///
/// A UTF-8 byte order mark at the start of a file is dropped (MRPC's header has one). The header must
/// be exactly the task's. A data row is malformed when it has the wrong number of fields, an empty (or
/// all-white-space) sentence, or a label that is not one of the task's (surrounding white space
/// ignored; STS-B: a finite number in [0, 5]). By default (glue_row_policy::strict) a malformed row
/// throws deq::format_error "deq: FILE:LINE: reason"; with glue_row_policy::skip_and_record it is
/// counted and listed in glue_dataset::skipped, never dropped silently. Invalid UTF-8 or a wrong
/// header always throws.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "../io/detail/utf8.hpp"
#include "metrics.hpp"

namespace deq::eval {

/// A GLUE task.
enum class glue_task {
    cola,  ///< CoLA: acceptability, Matthews correlation.
    sst2,  ///< SST-2: sentiment, accuracy.
    mrpc,  ///< MRPC: paraphrase, accuracy and F1.
    stsb,  ///< STS-B: similarity score (regression), Pearson and Spearman.
    rte    ///< RTE: entailment, accuracy.
};

/// How a GLUE task's TSV files are laid out and scored.
struct glue_task_info {
    /// The task.
    glue_task task;
    /// Lower-case name (`cola`, `sst2`, `mrpc`, `stsb`, `rte`), as python/deq_train/glue.py.
    std::string_view name;
    /// Folder under `DATA/glue/` (`CoLA`, `SST-2`, ...).
    std::string_view folder;
    /// Expected header fields (empty: the file has no header).
    std::vector<std::string_view> header;
    /// Number of tab-separated fields of every row.
    std::size_t fields;
    /// Column of the first sentence.
    std::size_t text_a;
    /// Column of the second sentence, when the task has sentence pairs.
    std::optional<std::size_t> text_b;
    /// Column of the label.
    std::size_t label;
    /// Label strings in class order (class index = position); empty for regression (STS-B).
    std::vector<std::string_view> labels;
    /// Metric names in the order glue_metrics() reports them.
    std::vector<std::string_view> metrics;
    /// The task's main metric (one of metrics).
    std::string_view main_metric;

    /// @return True for a regression task (STS-B).
    bool is_regression() const noexcept { return labels.empty(); }
    /// @return The number of model outputs: 1 for regression, else the number of classes.
    std::size_t num_labels() const noexcept { return labels.empty() ? 1 : labels.size(); }
};

/// The layout of @p task (see the file documentation).
/// @param task The task.
/// @return Its description (a static object).
inline glue_task_info const& glue_task_spec(glue_task task) {
    static std::array<glue_task_info, 5> const table = {{
        {glue_task::cola, "cola", "CoLA", {}, 4, 3, std::nullopt, 1, {"0", "1"}, {"mcc"}, "mcc"},
        {glue_task::sst2, "sst2", "SST-2", {"sentence", "label"}, 2, 0, std::nullopt, 1, {"0", "1"}, {"accuracy"}, "accuracy"},
        {glue_task::mrpc, "mrpc", "MRPC", {"Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"}, 5, 3, 4, 0, {"0", "1"},
         {"accuracy", "f1"}, "f1"},
        {glue_task::stsb, "stsb", "STS-B",
         {"index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"}, 10, 7, 8, 9,
         {}, {"pearson", "spearmanr"}, "pearson"},
        {glue_task::rte, "rte", "RTE", {"index", "sentence1", "sentence2", "label"}, 4, 1, 2, 3, {"entailment", "not_entailment"},
         {"accuracy"}, "accuracy"},
    }};
    return table[static_cast<std::size_t>(task)];
}

/// Parses a task name: `cola`, `sst2`, `mrpc`, `stsb`, `rte`, case-insensitive, `-` ignored (so the
/// folder names `SST-2`, `STS-B` work too).
/// @param text The name.
/// @return The task; deq::invalid_argument naming the text and the known names otherwise.
inline glue_task parse_glue_task(std::string_view text) {
    std::string key;
    for (char c : text) {
        if (c == '-' || c == ' ' || c == '\t') continue;
        key += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    for (glue_task t : {glue_task::cola, glue_task::sst2, glue_task::mrpc, glue_task::stsb, glue_task::rte}) {
        if (glue_task_spec(t).name == key) return t;
    }
    detail::throw_invalid_name("GLUE task", text, "cola, sst2, mrpc, stsb, rte");
}

/// The path of a task's split: `DATA/glue/<Folder>/<split>.tsv`.
/// @param data_dir The data folder (holding `glue/`).
/// @param task     The task.
/// @param split    `train` or `dev` (deq::invalid_argument otherwise).
/// @return The path.
inline std::filesystem::path glue_task_file(std::filesystem::path const& data_dir, glue_task task, std::string_view split) {
    if (split != "train" && split != "dev") detail::throw_invalid_name("split", split, "train, dev");
    return data_dir / "glue" / std::string(glue_task_spec(task).folder) / (std::string(split) + ".tsv");
}

/// One GLUE example.
struct glue_example {
    /// 1-based line number in the file.
    std::size_t line = 0;
    /// The first sentence.
    std::string text_a;
    /// The second sentence (pair tasks).
    std::optional<std::string> text_b;
    /// Class index (classification) or score (STS-B).
    double label = 0;
};

/// A data row that was skipped (glue_row_policy::skip_and_record).
struct glue_skipped_row {
    /// 1-based line number in the file.
    std::size_t line = 0;
    /// Why the row is malformed.
    std::string reason;
};

/// What the reader does with a malformed data row.
enum class glue_row_policy {
    strict,          ///< Throw deq::format_error naming the file and line (the default).
    skip_and_record  ///< Skip it and record it in glue_dataset::skipped.
};

/// Options of read_glue / parse_glue.
struct glue_read_options {
    /// Malformed data rows: throw or skip and record.
    glue_row_policy policy = glue_row_policy::strict;
};

/// The examples of one GLUE file.
struct glue_dataset {
    /// The task.
    glue_task task = glue_task::cola;
    /// The file (or other source) name.
    std::string source;
    /// The parsed examples, in file order.
    std::vector<glue_example> examples;
    /// The skipped rows (empty with glue_row_policy::strict).
    std::vector<glue_skipped_row> skipped;
    /// Number of data rows in the file (examples + skipped).
    std::size_t rows = 0;

    /// @return The labels of the examples (class indices or scores).
    std::vector<double> labels() const {
        std::vector<double> out;
        out.reserve(examples.size());
        for (auto const& e : examples) out.push_back(e.label);
        return out;
    }
};

}  // namespace deq::eval

namespace deq::detail {

/// ASCII white space (what Python's str.strip() removes from ASCII text).
inline bool glue_is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/// @p s without leading and trailing ASCII white space.
inline std::string_view glue_strip(std::string_view s) noexcept {
    while (!s.empty() && glue_is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && glue_is_space(s.back())) s.remove_suffix(1);
    return s;
}

/// Splits one line at every tab.
inline std::vector<std::string_view> glue_split(std::string_view line) {
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    while (true) {
        std::size_t const tab = line.find('\t', start);
        fields.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
        if (tab == std::string_view::npos) return fields;
        start = tab + 1;
    }
}

/// Parses one data row of @p spec into @p out; returns the reason when malformed, empty when fine.
inline std::string glue_parse_row(eval::glue_task_info const& spec, std::vector<std::string_view> const& fields,
                                  eval::glue_example& out) {
    if (fields.size() != spec.fields) {
        return concat("expected ", spec.fields, " tab-separated fields for ", spec.folder, ", got ", fields.size());
    }
    std::string_view const a = fields[spec.text_a];
    if (glue_strip(a).empty()) return concat("empty sentence in column ", spec.text_a + 1);
    out.text_a = std::string(a);
    out.text_b.reset();
    if (spec.text_b) {
        std::string_view const b = fields[*spec.text_b];
        if (glue_strip(b).empty()) return concat("empty sentence in column ", *spec.text_b + 1);
        out.text_b = std::string(b);
    }
    std::string_view const raw = glue_strip(fields[spec.label]);
    if (spec.is_regression()) {
        double v = 0;
        char const* first = raw.data();
        char const* last = raw.data() + raw.size();
        if (first != last && *first == '+') ++first;
        auto const r = std::from_chars(first, last, v);
        if (raw.empty() || r.ec != std::errc{} || r.ptr != last || !std::isfinite(v)) {
            return concat("score \"", raw, "\" is not a finite number");
        }
        if (!(v >= 0.0 && v <= 5.0)) return concat("score ", v, " is outside [0, 5]");
        out.label = v;
        return {};
    }
    for (std::size_t k = 0; k < spec.labels.size(); ++k) {
        if (spec.labels[k] == raw) {
            out.label = static_cast<double>(k);
            return {};
        }
    }
    std::string known;
    for (auto const& l : spec.labels) known += concat(known.empty() ? "" : ", ", l);
    return concat("label \"", raw, "\" is not one of ", known);
}

}  // namespace deq::detail

namespace deq::eval {

/// Parses the text of a GLUE TSV file of @p task (see the file documentation for the rules).
/// @param text    The whole file content.
/// @param source  Name used in messages (the file name).
/// @param task    The task.
/// @param options What to do with malformed rows.
/// @return The examples, the skipped rows and the row count; deq::format_error "SOURCE:LINE: reason"
///         for invalid UTF-8, a wrong header, an empty file or a file without data row, and (strict
///         policy) for a malformed data row.
inline glue_dataset parse_glue(std::string_view text, std::string_view source, glue_task task, glue_read_options const& options = {}) {
    glue_task_info const& spec = glue_task_spec(task);
    glue_dataset d;
    d.task = task;
    d.source = std::string(source);
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    if (text.empty()) throw format_error(detail::concat("deq: ", source, ":1: empty file"));
    std::size_t line = 0, pos = 0;
    while (pos < text.size()) {
        ++line;
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view content = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
        if (std::size_t const bad = detail::find_invalid_utf8(content); bad != std::string_view::npos) {
            throw format_error(detail::concat("deq: ", source, ":", line, ": invalid UTF-8 at byte ", bad + 1, " of the line"));
        }
        std::vector<std::string_view> const fields = detail::glue_split(content);
        if (line == 1 && !spec.header.empty()) {
            if (fields != spec.header) {
                std::string want, got;
                for (auto const& h : spec.header) want += detail::concat(want.empty() ? "" : "|", h);
                for (auto const& f : fields) got += detail::concat(got.empty() ? "" : "|", f);
                throw format_error(detail::concat("deq: ", source, ":1: header \"", got, "\" is not the ", spec.folder, " header \"",
                                                  want, "\" (fields separated by |)"));
            }
            continue;
        }
        ++d.rows;
        glue_example e;
        e.line = line;
        std::string reason = detail::glue_parse_row(spec, fields, e);
        if (reason.empty()) {
            d.examples.push_back(std::move(e));
        } else if (options.policy == glue_row_policy::strict) {
            throw format_error(detail::concat("deq: ", source, ":", line, ": ", reason));
        } else {
            d.skipped.push_back({line, std::move(reason)});
        }
    }
    if (d.rows == 0) throw format_error(detail::concat("deq: ", source, ":", line, ": no data rows"));
    return d;
}

/// Reads a GLUE TSV file of @p task (see parse_glue()).
/// @param file    The file, e.g. glue_task_file(data, glue_task::mrpc, "dev").
/// @param task    The task.
/// @param options What to do with malformed rows.
/// @return The dataset; deq::format_error naming the file when it cannot be read, and the file and
///         line for malformed content.
inline glue_dataset read_glue(std::filesystem::path const& file, glue_task task, glue_read_options const& options = {}) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) {
        throw format_error(detail::concat("deq: cannot open GLUE file '", file.string(), "': it is a directory"));
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) throw format_error(detail::concat("deq: cannot open GLUE file '", file.string(), "'"));
    std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw format_error(detail::concat("deq: cannot read GLUE file '", file.string(), "'"));
    return parse_glue(text, file.string(), task, options);
}

/// The GLUE metrics of @p task (python/deq_train/glue.py's glue_metrics, the definitions of
/// scikit-learn and SciPy): `mcc` (CoLA), `accuracy` (SST-2, RTE), `accuracy` and `f1` (MRPC, positive
/// class 1), `pearson` and `spearmanr` (STS-B). Values are fractions (not ×100).
/// @param task        The task.
/// @param predictions Predicted class indices (integral values) or scores (STS-B).
/// @param labels      Gold labels, same length.
/// @return Metric name → value (the names of glue_task_info::metrics); deq::invalid_argument for
///         empty inputs or a class prediction that is not an integral value, deq::shape_error for
///         different lengths, deq::numeric_error for non-finite values.
inline std::map<std::string, double> glue_metrics(glue_task task, std::vector<double> const& predictions,
                                                  std::vector<double> const& labels) {
    glue_task_info const& spec = glue_task_spec(task);
    detail::metric_same_size("predictions", predictions, "labels", labels);
    std::map<std::string, double> out;
    if (spec.is_regression()) {
        out["pearson"] = pearson(predictions, labels);
        out["spearmanr"] = spearman(predictions, labels);
        return out;
    }
    auto to_classes = [](char const* name, std::vector<double> const& v) {
        std::vector<std::int64_t> c;
        c.reserve(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!(std::isfinite(v[i]) && v[i] == std::floor(v[i]) && std::fabs(v[i]) < 1e15)) {
                detail::throw_invalid_argument(detail::concat(name, "[", i, "]"), v[i], "must be an integral class index");
            }
            c.push_back(static_cast<std::int64_t>(v[i]));
        }
        return c;
    };
    std::vector<std::int64_t> const p = to_classes("predictions", predictions), y = to_classes("labels", labels);
    if (task == glue_task::cola) {
        out["mcc"] = matthews_corrcoef(y, p);
    } else {
        out["accuracy"] = accuracy(y, p);
        if (task == glue_task::mrpc) out["f1"] = f1_score(y, p, 1);
    }
    return out;
}

}  // namespace deq::eval
