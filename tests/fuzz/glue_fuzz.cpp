// Fuzz target: the GLUE reader and metrics (deq::eval::parse_glue / read_glue / glue_metrics).
// Input: one option byte (bits 0-2: task cola / sst2 / mrpc / stsb / rte (mod 5), bit 3:
// skip_and_record instead of strict, bit 4: also read through a file), then the TSV text.
// Properties: parse returns a dataset or throws deq::format_error; rows = examples + skipped, lines
// increase, labels are class indices of the task (or STS-B scores in [0, 5]), pair tasks have both
// sentences; read_glue of the same bytes gives the same dataset; the metrics of the labels against
// themselves are perfect (or a deq error / NaN where the metric is undefined).
#include <cmath>
#include <cstdint>
#include <string>

#include <deq/eval/glue.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::eval::glue_dataset;
using deq::eval::glue_task;

void check_dataset(glue_dataset const& d, glue_task task) {
    auto const& spec = deq::eval::glue_task_spec(task);
    DEQ_FUZZ_CHECK(d.rows == d.examples.size() + d.skipped.size() && d.rows > 0);
    std::size_t last = spec.header.empty() ? 0 : 1;
    for (auto const& e : d.examples) {
        DEQ_FUZZ_CHECK(e.line > last);
        last = e.line;
        DEQ_FUZZ_CHECK(!e.text_a.empty() && e.text_b.has_value() == spec.text_b.has_value());
        if (spec.is_regression()) {
            DEQ_FUZZ_CHECK(e.label >= 0.0 && e.label <= 5.0);
        } else {
            DEQ_FUZZ_CHECK(e.label >= 0 && e.label < static_cast<double>(spec.labels.size()) && e.label == std::floor(e.label));
        }
    }
    for (auto const& s : d.skipped) DEQ_FUZZ_CHECK(!s.reason.empty() && s.line >= 1);
}

void check_metrics(glue_dataset const& d, glue_task task) {
    std::vector<double> const labels = d.labels();
    auto const m = deq_fuzz::attempt([&] { return deq::eval::glue_metrics(task, labels, labels); });
    DEQ_FUZZ_CHECK(m.has_value() == !labels.empty());
    if (!m) return;
    auto const& spec = deq::eval::glue_task_spec(task);
    DEQ_FUZZ_CHECK(m->size() == spec.metrics.size());
    for (auto const& [name, value] : *m) {
        DEQ_FUZZ_CHECK_MSG(std::isnan(value) || (value >= -1.0 && value <= 1.0), name);
        if (name == "accuracy") DEQ_FUZZ_CHECK(value == 1.0);
        if ((name == "pearson" || name == "spearmanr") && !std::isnan(value)) DEQ_FUZZ_CHECK_MSG(std::fabs(value - 1.0) < 1e-9, name);
    }
    // Predictions of another length, and non-integral class predictions, are deq errors.
    std::vector<double> shorter(labels.begin(), labels.end() - 1);
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::glue_metrics(task, shorter, labels); }));
    if (!spec.is_regression()) {
        std::vector<double> half = labels;
        half[0] += 0.5;
        DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)deq::eval::glue_metrics(task, half, labels); }));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    deq_fuzz::byte_reader in(data, size);
    std::uint8_t const opt = in.byte();
    auto const task = static_cast<glue_task>((opt & 7u) % 5u);
    deq::eval::glue_read_options options;
    if ((opt & 8u) != 0) options.policy = deq::eval::glue_row_policy::skip_and_record;
    std::string_view const text = in.rest();

    auto const& spec = deq::eval::glue_task_spec(task);
    DEQ_FUZZ_CHECK(deq::eval::parse_glue_task(spec.name) == task && deq::eval::parse_glue_task(spec.folder) == task);

    auto const d = deq_fuzz::attempt([&] { return deq::eval::parse_glue(text, "dev.tsv", task, options); });
    if (d) {
        DEQ_FUZZ_CHECK(options.policy == deq::eval::glue_row_policy::skip_and_record || d->skipped.empty());
        check_dataset(*d, task);
        check_metrics(*d, task);
    }
    if ((opt & 16u) != 0) {
        auto const file = deq_fuzz::write_scratch_file("dev.tsv", text);
        auto const read = deq_fuzz::attempt([&] { return deq::eval::read_glue(file, task, options); });
        DEQ_FUZZ_CHECK(read.has_value() == d.has_value());
        if (read) {
            DEQ_FUZZ_CHECK(read->rows == d->rows && read->examples.size() == d->examples.size() && read->skipped.size() == d->skipped.size());
            for (std::size_t i = 0; i < read->examples.size(); ++i) {
                auto const& x = read->examples[i];
                auto const& y = d->examples[i];
                DEQ_FUZZ_CHECK(x.line == y.line && x.text_a == y.text_a && x.text_b == y.text_b && x.label == y.label);
            }
        }
    }
    return 0;
}
