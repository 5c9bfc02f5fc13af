// Compares deq with the independent PyTorch reference (python/deq_reference/reference.py) on the cases
// written by python/deq_reference/generate_cases.py:
//   - predicted scores Ŝ within 1e-5 relative to the largest |Ŝ| (and calibrated thresholds within 1e-6),
//   - masks identical except at the elements the generator counted as ties,
//   - attention outputs within 1e-5 relative to the largest |O|, both with the reference's own masks and
//     Ŝ ("direct": the attention kernel alone) and end to end through the pipelines ("pipeline"),
//   - the statistics (pairs, empty rows, density, refinement ratio) against the reference formulas,
// and prints a summary table (also written to <cases>/summary.txt).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <deq/attention/attention.hpp>
#include <deq/attention/pipelines.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/static_pattern.hpp>

#include "npy.hpp"

#ifndef DEQ_REFERENCE_CASES_DIR
#define DEQ_REFERENCE_CASES_DIR "reference_cases"
#endif

namespace {

using deq::index_t;
using ref_io::json;

constexpr double value_tolerance = 1e-5;      // relative to the largest magnitude
constexpr double sensitive_tolerance = 5e-3;  // rows flagged as rounding-sensitive by the generator

std::string cases_dir() {
    if (char const* env = std::getenv("DEQ_REFERENCE_CASES")) return env;
    return DEQ_REFERENCE_CASES_DIR;
}

struct case_result {
    std::string name, mode, dtype, shape;
    double err_predicted = -1, err_direct = -1, err_pipeline = -1, err_sensitive = 0;
    index_t kept_diff = 0, kept_ties = 0, refined_diff = 0, refined_ties = 0, untied_diff = 0;
    index_t sensitive_rows = 0, excluded_rows = 0, rows = 0;
    bool stats_ok = true;
};

template <class T>
deq::tensor<T, 4> load4(std::string const& path) {
    ref_io::npy_array const a = ref_io::read_npy(path);
    REQUIRE(a.shape.size() == 4);
    deq::tensor<T, 4> t({a.shape[0], a.shape[1], a.shape[2], a.shape[3]});
    t.storage() = a.as<T>();
    return t;
}

/// A [B, H, Lq, Lk] (or [Lq, Lk], broadcast) uint8 array as a bit mask.
deq::bit_mask load_mask(std::string const& path) {
    ref_io::npy_array const a = ref_io::read_npy(path);
    std::vector<std::int64_t> s = a.shape;
    if (s.size() == 2) s.insert(s.begin(), {1, 1});
    REQUIRE(s.size() == 4);
    deq::bit_mask m(s[0], s[1], s[2], s[3]);
    std::int64_t n = 0;
    for (index_t b = 0; b < s[0]; ++b)
        for (index_t h = 0; h < s[1]; ++h)
            for (index_t i = 0; i < s[2]; ++i)
                for (index_t j = 0; j < s[3]; ++j) m.set(b, h, i, j, a.at(n++) != 0);
    return m;
}

deq::max_granularity granularity_from(std::string const& g) {
    if (g == "sequence") return deq::max_granularity::sequence;
    if (g == "head") return deq::max_granularity::head;
    if (g == "row") return deq::max_granularity::row;
    FAIL("unknown granularity " << g);
    return deq::max_granularity::sequence;
}

deq::mask_rule rule_from(json const& r) {
    std::string const kind = r["kind"].string();
    double const value = r["value"].number();
    if (kind == "all") return deq::mask_rule::keep_all();
    if (kind == "none") return deq::mask_rule::keep_none();
    if (kind == "probability") return deq::mask_rule::probability(value);
    if (kind == "inverse_probability") return deq::mask_rule::inverse_probability(value);
    if (kind == "adaptive_maximum") {
        return deq::mask_rule::adaptive_maximum(value, granularity_from(r["granularity"].string()),
                                                r["before_softmax"].boolean());
    }
    if (kind == "inverse_adaptive_maximum") {
        return deq::mask_rule::inverse_adaptive_maximum(value, granularity_from(r["granularity"].string()),
                                                        r["before_softmax"].boolean());
    }
    if (kind == "top_k") return deq::mask_rule::top_k(r["k"].integer());
    if (kind == "cumulative_probability") return deq::mask_rule::cumulative_probability(value);
    FAIL("unknown rule kind " << kind);
    return deq::mask_rule::keep_all();
}

/// Max |a - b| / max |b| over the rows not excluded; flagged rows (loose) reported separately.
template <class A, class B>
double rel_error(A const& got, B const& want, index_t rows, index_t row_len, std::vector<char> const& exclude) {
    double err = 0, mag = 0;
    for (index_t r = 0; r < rows; ++r)
        for (index_t t = 0; t < row_len; ++t) mag = std::fmax(mag, std::fabs(static_cast<double>(want[r * row_len + t])));
    for (index_t r = 0; r < rows; ++r) {
        if (!exclude.empty() && exclude[static_cast<std::size_t>(r)]) continue;
        for (index_t t = 0; t < row_len; ++t) {
            err = std::fmax(err, std::fabs(static_cast<double>(got[r * row_len + t]) -
                                           static_cast<double>(want[r * row_len + t])));
        }
    }
    return mag > 0 ? err / mag : err;
}

/// Compares a deq mask with the reference's, tolerating differences only at tie elements; marks rows
/// with any difference.
void compare_mask(char const* what, deq::bit_mask const& got, deq::bit_mask const& want, deq::bit_mask const& ties,
                  index_t& diff, index_t& untied, std::vector<char>& row_differs) {
    index_t const B = want.batch(), H = want.heads(), L = want.rows(), Lk = want.cols();
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t j = 0; j < Lk; ++j) {
                    if (got.test(b, h, i, j) == want.test(b, h, i, j)) continue;
                    ++diff;
                    row_differs[static_cast<std::size_t>((b * H + h) * L + i)] = 1;
                    if (!ties.test(b, h, i, j)) {
                        ++untied;
                        INFO(std::string(what) << " mask differs at an untied element [" << b << ", " << h << ", " << i << ", " << j
                                  << "]: deq " << got.test(b, h, i, j) << ", reference " << want.test(b, h, i, j));
                        CHECK(false);
                    }
                }
}

template <class T>
case_result run_case(json const& c, std::string const& dir) {
    using S = deq::accum_t<T>;
    case_result res;
    res.name = c["name"].string();
    res.mode = c["mode"].string();
    res.dtype = c["dtype"].string();
    index_t const B = c["B"].integer(), H = c["H"].integer(), Lq = c["Lq"].integer(), Lk = c["Lk"].integer();
    index_t const d = c["d"].integer(), dv = c["dv"].integer();
    res.shape = std::to_string(B) + "x" + std::to_string(H) + "x" + std::to_string(Lq) +
                (Lq != Lk ? "/" + std::to_string(Lk) : std::string()) + "x" + std::to_string(d);
    std::string const path = dir + "/" + res.name + "/";
    INFO("case " << res.name);

    deq::tensor<T, 4> const q = load4<T>(path + "q.npy"), k = load4<T>(path + "k.npy"), v = load4<T>(path + "v.npy");
    deq::tensor<double, 4> const want = load4<double>(path + "out.npy");
    std::vector<std::uint8_t> const valid = ref_io::read_npy(path + "valid.npy").as<std::uint8_t>();
    deq::key_padding padding{};
    if (c["padding"].boolean()) padding.valid = deq::tensor_view<std::uint8_t const, 2>(valid.data(), {B, Lk});
    std::vector<std::uint8_t> const sens_direct = ref_io::read_npy(path + "sensitive_direct.npy").as<std::uint8_t>();
    std::vector<std::uint8_t> const sens_pipe = ref_io::read_npy(path + "sensitive_pipeline.npy").as<std::uint8_t>();
    index_t const rows = B * H * Lq;
    res.rows = rows;

    deq::exec::serial const serial;
    deq::exec::threads const threads{2};
    std::string const& mode = res.mode;
    bool const predictor = mode == "sanger" || mode == "deq" || mode == "three_level";

    // ---- predictor ----
    deq::predictor_config cfg;
    deq::tensor<S, 4> predicted_ref, predicted;
    if (predictor) {
        cfg.threshold_q = c["threshold_q"].number();
        cfg.threshold_k = c["threshold_k"].number();
        cfg.bits = static_cast<int>(c["bits"].integer());
        if (c["thresholds"].kind == json::type::string) {  // "calibrate"
            auto const cal = deq::calibrate_predictor(q.cview(), k.cview(), cfg.bits);
            CHECK(cal.threshold_q == doctest::Approx(cfg.threshold_q).epsilon(1e-6));
            CHECK(cal.threshold_k == doctest::Approx(cfg.threshold_k).epsilon(1e-6));
        }
        predicted_ref = load4<S>(path + "predicted.npy");
        predicted = deq::predict_scores(threads, q.cview(), k.cview(), cfg);
        res.err_predicted = rel_error(predicted.storage(), predicted_ref.storage(), rows, Lk, {});
        CHECK(res.err_predicted <= value_tolerance);
    }

    // ---- masks, computed by deq from its own Ŝ (end to end) ----
    std::vector<char> row_differs(static_cast<std::size_t>(rows), 0);
    deq::bit_mask kept_ref, refined_ref;
    bool const has_kept = mode == "sanger" || mode == "three_level" || mode == "static";
    bool const has_refined = mode == "deq" || mode == "three_level";
    if (mode == "sanger" || mode == "three_level") kept_ref = load_mask(path + "kept.npy");
    if (mode == "static") kept_ref = load_mask(path + "static.npy");
    if (has_refined) refined_ref = load_mask(path + "refined.npy");
    if (mode == "sanger") {
        deq::bit_mask const kept = deq::select_elements(threads, predicted.cview(), padding, rule_from(c["prune"]));
        compare_mask("kept", kept, kept_ref, load_mask(path + "kept_ties.npy"), res.kept_diff, res.untied_diff,
                     row_differs);
        res.kept_ties = c["ties"]["kept"].integer();
    } else if (mode == "deq") {
        deq::bit_mask const refined = deq::select_elements(threads, predicted.cview(), padding, rule_from(c["refine"]));
        compare_mask("refined", refined, refined_ref, load_mask(path + "refined_ties.npy"), res.refined_diff,
                     res.untied_diff, row_differs);
        res.refined_ties = c["ties"]["refined"].integer();
    } else if (mode == "three_level") {
        auto const map = deq::make_precision_map(threads, predicted.cview(), padding, rule_from(c["prune"]),
                                                 rule_from(c["refine"]));
        compare_mask("kept", map.kept, kept_ref, load_mask(path + "kept_ties.npy"), res.kept_diff, res.untied_diff,
                     row_differs);
        compare_mask("refined", map.refined, refined_ref, load_mask(path + "refined_ties.npy"), res.refined_diff,
                     res.untied_diff, row_differs);
        res.kept_ties = c["ties"]["kept"].integer();
        res.refined_ties = c["ties"]["refined"].integer();
    } else if (mode == "static") {
        deq::bit_mask const pattern =
            deq::make_static_mask(serial, deq::parse_static_pattern(c["static"].string()), Lq);
        compare_mask("static", pattern, kept_ref, deq::bit_mask(1, 1, Lq, Lk), res.kept_diff, res.untied_diff,
                     row_differs);
    }

    // ---- attention with the reference's own masks and Ŝ (the kernel alone) ----
    std::vector<char> exclude_direct(static_cast<std::size_t>(rows), 0);
    for (index_t r = 0; r < rows; ++r) exclude_direct[static_cast<std::size_t>(r)] = sens_direct[static_cast<std::size_t>(r)] != 0;
    {
        deq::tensor<T, 4> out({B, H, Lq, dv});
        deq::attention_options<S> opt;
        opt.padding = padding;
        if (has_kept) opt.kept = kept_ref.view();
        if (has_refined) {
            opt.refined = refined_ref.view();
            opt.predicted = predicted_ref.cview();
        }
        deq::attention(serial, q.cview(), k.cview(), v.cview(), out.view(), opt);
        res.err_direct = rel_error(out.storage(), want.storage(), rows, dv, exclude_direct);
        CHECK(res.err_direct <= value_tolerance);
        res.err_sensitive = rel_error(out.storage(), want.storage(), rows, dv, {});
        CHECK(res.err_sensitive <= sensitive_tolerance);
        for (auto f : exclude_direct) res.sensitive_rows += f ? 1 : 0;
    }

    // ---- the pipeline, end to end ----
    deq::tensor<T, 4> out({B, H, Lq, dv});
    deq::attention_stats st;
    if (mode == "dense") {
        deq::attention_options<S> opt;
        opt.padding = padding;
        st = deq::attention(threads, q.cview(), k.cview(), v.cview(), out.view(), opt);
    } else if (mode == "sanger") {
        st = deq::sanger_attention(threads, q.cview(), k.cview(), v.cview(), out.view(), cfg, c["prune"]["value"].number(),
                                   padding);
    } else if (mode == "deq") {
        st = deq::deq_attention(threads, q.cview(), k.cview(), v.cview(), out.view(), cfg, rule_from(c["refine"]), padding);
    } else if (mode == "three_level") {
        st = deq::three_level_attention(threads, q.cview(), k.cview(), v.cview(), out.view(), cfg, rule_from(c["prune"]),
                                        rule_from(c["refine"]), padding);
    } else if (mode == "static") {
        deq::bit_mask const pattern =
            deq::make_static_mask(serial, deq::parse_static_pattern(c["static"].string()), Lq);
        st = deq::static_sparse_attention(threads, q.cview(), k.cview(), v.cview(), out.view(), pattern.view(), padding);
    } else {
        FAIL("unknown mode " << mode);
    }
    std::vector<char> exclude(static_cast<std::size_t>(rows), 0);
    for (index_t r = 0; r < rows; ++r) {
        bool const ex = sens_pipe[static_cast<std::size_t>(r)] != 0 || row_differs[static_cast<std::size_t>(r)] != 0;
        exclude[static_cast<std::size_t>(r)] = ex;
        res.excluded_rows += ex ? 1 : 0;
    }
    res.err_pipeline = rel_error(out.storage(), want.storage(), rows, dv, exclude);
    CHECK(res.err_pipeline <= value_tolerance);

    // ---- statistics ----
    json const& ws = c["stats"];
    index_t const diffs = res.kept_diff + res.refined_diff;
    auto close = [&](index_t got, index_t expect) { return std::llabs(got - expect) <= diffs; };
    bool ok = st.valid_pairs == ws["valid_pairs"].integer() && st.rows == ws["rows"].integer() &&
              close(st.kept_pairs, ws["kept_pairs"].integer()) && close(st.refined_pairs, ws["refined_pairs"].integer()) &&
              close(st.empty_rows, ws["empty_rows"].integer());
    if (diffs == 0) {
        ok = ok && std::fabs(st.density - ws["density"].number()) <= 1e-9 &&
             std::fabs(st.refinement_ratio - ws["refinement_ratio"].number()) <= 1e-9;
    }
    res.stats_ok = ok;
    INFO("stats: valid " << st.valid_pairs << " kept " << st.kept_pairs << " refined " << st.refined_pairs << " empty "
                         << st.empty_rows << " rows " << st.rows << " density " << st.density << " ratio "
                         << st.refinement_ratio);
    CHECK(ok);
    return res;
}

std::string fmt(double x) {
    if (x < 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1e", x);
    return buf;
}

}  // namespace

TEST_CASE("deq matches the independent PyTorch reference") {
    std::string const dir = cases_dir();
    json const index = ref_io::read_json(dir + "/index.json");
    json const& cases = index["cases"];
    REQUIRE(cases.size() > 0);
    std::vector<case_result> results;
    for (std::size_t n = 0; n < cases.size(); ++n) {
        json const& c = cases[n];
        if (c["dtype"].string() == "float64") {
            results.push_back(run_case<double>(c, dir));
        } else {
            results.push_back(run_case<float>(c, dir));
        }
    }

    // Summary table.
    std::string table;
    char line[1024];
    std::snprintf(line, sizeof line, "%-32s %-11s %-7s %-14s %8s %8s %8s %11s %11s %9s %5s\n", "case", "mode", "dtype",
                  "BxHxLxd", "err(S^)", "err(O)", "err(O)", "kept", "refined", "excluded", "stats");
    table += line;
    std::snprintf(line, sizeof line, "%-32s %-11s %-7s %-14s %8s %8s %8s %11s %11s %9s %5s\n", "", "", "", "", "",
                  "direct", "pipeline", "diff/ties", "diff/ties", "rows", "");
    table += line;
    double max_pred = 0, max_direct = 0, max_pipe = 0, max_sensitive = 0;
    index_t diffs = 0, ties = 0, untied = 0, excluded = 0, sensitive = 0, rows = 0, stats_bad = 0;
    for (auto const& r : results) {
        std::string const kept = std::to_string(r.kept_diff) + "/" + std::to_string(r.kept_ties);
        std::string const refined = std::to_string(r.refined_diff) + "/" + std::to_string(r.refined_ties);
        std::string const ex = std::to_string(r.excluded_rows) + "/" + std::to_string(r.rows);
        std::snprintf(line, sizeof line, "%-32s %-11s %-7s %-14s %8s %8s %8s %11s %11s %9s %5s\n", r.name.c_str(),
                      r.mode.c_str(), r.dtype.c_str(), r.shape.c_str(), fmt(r.err_predicted).c_str(),
                      fmt(r.err_direct).c_str(), fmt(r.err_pipeline).c_str(), kept.c_str(), refined.c_str(), ex.c_str(),
                      r.stats_ok ? "ok" : "FAIL");
        table += line;
        max_pred = std::fmax(max_pred, r.err_predicted);
        max_direct = std::fmax(max_direct, r.err_direct);
        max_pipe = std::fmax(max_pipe, r.err_pipeline);
        if (r.sensitive_rows > 0) max_sensitive = std::fmax(max_sensitive, r.err_sensitive);
        diffs += r.kept_diff + r.refined_diff;
        ties += r.kept_ties + r.refined_ties;
        untied += r.untied_diff;
        excluded += r.excluded_rows;
        sensitive += r.sensitive_rows;
        rows += r.rows;
        stats_bad += r.stats_ok ? 0 : 1;
    }
    std::snprintf(line, sizeof line,
                  "\n%zu cases: max relative error predicted scores %.2e, attention direct %.2e, attention pipeline "
                  "%.2e (tolerance %.0e)\nmask elements differing: %lld (all at counted ties: %lld tie elements; "
                  "untied differences: %lld)\nrows left out of the 1e-5 check: direct %lld (rounding-sensitive fully "
                  "penalised rows, checked at %.0e: max error %.2e), pipeline %lld of %lld; statistics mismatches: %lld\n",
                  results.size(), max_pred, max_direct, max_pipe, value_tolerance, static_cast<long long>(diffs),
                  static_cast<long long>(ties), static_cast<long long>(untied), static_cast<long long>(sensitive),
                  sensitive_tolerance, max_sensitive, static_cast<long long>(excluded), static_cast<long long>(rows),
                  static_cast<long long>(stats_bad));
    table += line;
    std::fputs(table.c_str(), stdout);
    std::ofstream(dir + "/summary.txt") << table;
    CHECK(untied == 0);
    CHECK(stats_bad == 0);
}
