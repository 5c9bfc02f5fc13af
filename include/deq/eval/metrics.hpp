/// @file
/// @brief Evaluation metrics of the GLUE tasks: Pearson and Spearman correlation (STS-B), Matthews
/// correlation coefficient (CoLA), accuracy and F1 (MRPC, SST-2, RTE), with the definitions of SciPy
/// (`pearsonr`, `spearmanr`) and scikit-learn (`matthews_corrcoef`, `accuracy_score`, `f1_score`).
///
/// Inputs are sized random-access ranges (std::vector, std::span, arrays). Every function throws
/// deq::invalid_argument for empty inputs, deq::shape_error for inputs of different lengths and
/// deq::numeric_error for NaN or infinite values. Results are computed in double.
///
/// Degenerate cases follow the libraries: Pearson / Spearman of a constant input is NaN (SciPy returns NaN
/// with a warning); MCC is 0 when its denominator is 0 and F1 is 0 when there is no positive prediction
/// nor label (scikit-learn's default `zero_division` result).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <ranges>
#include <string_view>
#include <vector>

#include "../core/error.hpp"

namespace deq::eval {

/// A sized random-access range of arithmetic values.
/// @tparam R Candidate range type.
template <class R>
concept numeric_range = std::ranges::random_access_range<R const> && std::ranges::sized_range<R const> &&
                        std::is_arithmetic_v<std::remove_cvref_t<std::ranges::range_reference_t<R const>>>;

/// A sized random-access range of integral labels.
/// @tparam R Candidate range type.
template <class R>
concept label_range = numeric_range<R> && std::integral<std::remove_cvref_t<std::ranges::range_reference_t<R const>>>;

}  // namespace deq::eval

namespace deq::detail {

/// Copies a numeric range into doubles, checking that it is non-empty and finite.
template <class R>
std::vector<double> metric_values(std::string_view name, R const& r) {
    std::vector<double> out;
    out.reserve(static_cast<std::size_t>(std::ranges::size(r)));
    for (auto const& v : r) {
        double const d = static_cast<double>(v);
        if (!std::isfinite(d)) {
            throw numeric_error(concat("deq: non-finite value ", d, " in '", name, "' at index ", out.size()));
        }
        out.push_back(d);
    }
    if (out.empty()) throw_invalid_argument(name, "<empty>", "must hold at least one value");
    return out;
}

/// Checks that two ranges have the same non-zero length.
template <class A, class B>
void metric_same_size(std::string_view a_name, A const& a, std::string_view b_name, B const& b) {
    auto const na = std::ranges::size(a), nb = std::ranges::size(b);
    if (na == 0) throw_invalid_argument(a_name, "<empty>", "must hold at least one value");
    if (na != nb) {
        throw_shape_error(concat("'", a_name, "' has ", na, " values and '", b_name, "' has ", nb, ": lengths must agree"));
    }
}

/// Pearson correlation of two equally long double vectors (two-pass, centred sums).
inline double metric_pearson(std::vector<double> const& x, std::vector<double> const& y) {
    double const n = static_cast<double>(x.size());
    double const mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
    double const my = std::accumulate(y.begin(), y.end(), 0.0) / n;
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        double const dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
    double const r = sxy / (std::sqrt(sxx) * std::sqrt(syy));
    return std::clamp(r, -1.0, 1.0);
}

/// 1-based average ranks (ties get the mean of their ranks; SciPy's `rankdata(method='average')`).
inline std::vector<double> metric_average_ranks(std::vector<double> const& x) {
    std::vector<std::size_t> order(x.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
    std::vector<double> ranks(x.size());
    std::size_t i = 0;
    while (i < order.size()) {
        std::size_t j = i + 1;
        while (j < order.size() && x[order[j]] == x[order[i]]) ++j;
        double const avg = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
        for (std::size_t t = i; t < j; ++t) ranks[order[t]] = avg;
        i = j;
    }
    return ranks;
}

/// Copies an integral label range into int64.
template <class R>
std::vector<std::int64_t> metric_labels(R const& r) {
    std::vector<std::int64_t> out;
    out.reserve(static_cast<std::size_t>(std::ranges::size(r)));
    for (auto const& v : r) out.push_back(static_cast<std::int64_t>(v));
    return out;
}

}  // namespace deq::detail

namespace deq::eval {

/// Pearson's correlation coefficient (SciPy `pearsonr(x, y)[0]`).
/// @tparam X A numeric_range.
/// @tparam Y A numeric_range.
/// @param x First variable (e.g. predictions).
/// @param y Second variable (e.g. gold scores), same length.
/// @return r in [-1, 1], or NaN when either input is constant.
template <numeric_range X, numeric_range Y>
double pearson(X const& x, Y const& y) {
    detail::metric_same_size("x", x, "y", y);
    return detail::metric_pearson(detail::metric_values("x", x), detail::metric_values("y", y));
}

/// Spearman's rank correlation (SciPy `spearmanr(x, y)[0]`): Pearson's r of the average ranks, so tied
/// values share the mean of their ranks.
/// @tparam X A numeric_range.
/// @tparam Y A numeric_range.
/// @param x First variable.
/// @param y Second variable, same length.
/// @return ρ in [-1, 1], or NaN when either input is constant.
template <numeric_range X, numeric_range Y>
double spearman(X const& x, Y const& y) {
    detail::metric_same_size("x", x, "y", y);
    return detail::metric_pearson(detail::metric_average_ranks(detail::metric_values("x", x)),
                                  detail::metric_average_ranks(detail::metric_values("y", y)));
}

/// Average ranks (1-based; ties share the mean of their ranks), SciPy's `rankdata(x)`.
/// @tparam X A numeric_range.
/// @param x The values.
/// @return The ranks.
template <numeric_range X>
std::vector<double> average_ranks(X const& x) {
    return detail::metric_average_ranks(detail::metric_values("x", x));
}

/// Fraction of equal labels (scikit-learn `accuracy_score`).
/// @tparam T A label_range.
/// @tparam P A label_range.
/// @param y_true Gold labels.
/// @param y_pred Predicted labels, same length.
/// @return The accuracy in [0, 1].
template <label_range T, label_range P>
double accuracy(T const& y_true, P const& y_pred) {
    detail::metric_same_size("y_true", y_true, "y_pred", y_pred);
    auto const t = detail::metric_labels(y_true), p = detail::metric_labels(y_pred);
    std::size_t hits = 0;
    for (std::size_t i = 0; i < t.size(); ++i) hits += t[i] == p[i] ? 1 : 0;
    return static_cast<double>(hits) / static_cast<double>(t.size());
}

/// Matthews correlation coefficient, multi-class form of scikit-learn's `matthews_corrcoef` (the binary
/// MCC for two classes): with confusion matrix C, `t_k` true and `p_k` predicted counts of class k,
/// `c = trace(C)` and `s` samples, `MCC = (c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))`, 0 when the
/// denominator is 0.
/// @tparam T A label_range.
/// @tparam P A label_range.
/// @param y_true Gold labels.
/// @param y_pred Predicted labels, same length.
/// @return MCC in [-1, 1].
template <label_range T, label_range P>
double matthews_corrcoef(T const& y_true, P const& y_pred) {
    detail::metric_same_size("y_true", y_true, "y_pred", y_pred);
    auto const t = detail::metric_labels(y_true), p = detail::metric_labels(y_pred);
    std::map<std::int64_t, double> true_count, pred_count;
    double correct = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        true_count[t[i]] += 1;
        pred_count[p[i]] += 1;
        correct += t[i] == p[i] ? 1 : 0;
    }
    double const s = static_cast<double>(t.size());
    double tp = 0, pp = 0, tt = 0;
    for (auto const& [label, n] : true_count) {
        tt += n * n;
        auto const it = pred_count.find(label);
        if (it != pred_count.end()) tp += n * it->second;
    }
    for (auto const& [label, n] : pred_count) pp += n * n;
    double const cov_ytyp = correct * s - tp;
    double const cov_ypyp = s * s - pp;
    double const cov_ytyt = s * s - tt;
    if (cov_ypyp * cov_ytyt == 0) return 0.0;
    return cov_ytyp / std::sqrt(cov_ytyt * cov_ypyp);
}

/// F1 score of the positive class (scikit-learn `f1_score(y_true, y_pred, pos_label=positive)`):
/// `2·TP / (2·TP + FP + FN)`, 0 when there is neither a positive label nor a positive prediction.
/// @tparam T A label_range.
/// @tparam P A label_range.
/// @param y_true   Gold labels.
/// @param y_pred   Predicted labels, same length.
/// @param positive The positive label (1 by default).
/// @return F1 in [0, 1].
template <label_range T, label_range P>
double f1_score(T const& y_true, P const& y_pred, std::int64_t positive = 1) {
    detail::metric_same_size("y_true", y_true, "y_pred", y_pred);
    auto const t = detail::metric_labels(y_true), p = detail::metric_labels(y_pred);
    double tp = 0, fp = 0, fn = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        bool const is_t = t[i] == positive, is_p = p[i] == positive;
        tp += is_t && is_p ? 1 : 0;
        fp += !is_t && is_p ? 1 : 0;
        fn += is_t && !is_p ? 1 : 0;
    }
    double const denom = 2 * tp + fp + fn;
    return denom == 0 ? 0.0 : 2 * tp / denom;
}

}  // namespace deq::eval
