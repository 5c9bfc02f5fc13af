// deq::eval metrics against values from SciPy 1.17 (pearsonr, spearmanr, rankdata) and scikit-learn 1.9
// (matthews_corrcoef, f1_score, accuracy_score), pasted below, and hand computations.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include <deq/eval/metrics.hpp>

TEST_CASE_TEMPLATE("pearson and spearman match SciPy", T, float, double) {
    std::vector<T> const x{1, 2, 3, 4, 5, 6}, y{2, 1, 4, 3, 7, 5};
    CHECK(deq::eval::pearson(x, y) == doctest::Approx(0.7917946548886294).epsilon(1e-12));
    CHECK(deq::eval::spearman(x, y) == doctest::Approx(0.8285714285714287).epsilon(1e-12));  // no ties: 1 - 6Σd²/(n(n²-1)) = 1 - 36/210
    CHECK(deq::eval::pearson(x, x) == doctest::Approx(1.0));
    std::vector<T> neg{6, 5, 4, 3, 2, 1};
    CHECK(deq::eval::pearson(x, neg) == doctest::Approx(-1.0));
    CHECK(deq::eval::spearman(x, neg) == doctest::Approx(-1.0));
}

TEST_CASE("spearman uses average ranks for ties (SciPy rankdata 'average')") {
    std::vector<int> const a{1, 2, 2, 3, 3, 3, 4};
    std::vector<double> const b{5, 6, 6, 7, 5, 8, 9};
    auto const ra = deq::eval::average_ranks(a);
    CHECK(ra == std::vector<double>{1, 2.5, 2.5, 5, 5, 5, 7});
    CHECK(deq::eval::average_ranks(b) == std::vector<double>{1.5, 3.5, 3.5, 5, 1.5, 6, 7});
    CHECK(deq::eval::pearson(a, b) == doctest::Approx(0.7584592386322859).epsilon(1e-12));
    CHECK(deq::eval::spearman(a, b) == doctest::Approx(0.705049738919203).epsilon(1e-12));

    // STS-B-like: gold scores with ties, continuous predictions
    std::array<double, 8> const gold{0.5, 1.2, 3.3, 2.0, 4.8, 1.2, 0.0, 3.3};
    std::array<float, 8> const pred{0.41f, 0.55f, 0.83f, 0.62f, 0.91f, 0.58f, 0.12f, 0.70f};
    CHECK(deq::eval::pearson(pred, gold) == doctest::Approx(0.9184344364313617).epsilon(1e-6));  // float inputs
    CHECK(deq::eval::spearman(pred, gold) == doctest::Approx(0.9880235200593538).epsilon(1e-12));
    CHECK(deq::eval::spearman(std::span<double const>(gold), std::span<double const>(gold)) == doctest::Approx(1.0));
}

TEST_CASE("correlations of a constant input are NaN, as SciPy returns") {
    std::vector<double> const c{2, 2, 2}, x{1, 2, 3};
    CHECK(std::isnan(deq::eval::pearson(c, x)));
    CHECK(std::isnan(deq::eval::spearman(x, c)));
    CHECK(std::isnan(deq::eval::pearson(std::vector<double>{1}, std::vector<double>{1})));
}

TEST_CASE("matthews_corrcoef, f1_score and accuracy match scikit-learn") {
    std::vector<int> const yt{1, 1, 0, 1, 0, 0, 1, 0, 1, 1}, yp{1, 0, 0, 1, 1, 0, 1, 0, 0, 1};
    // TP 4, FN 2, FP 1, TN 3: MCC = (4·3 − 1·2)/sqrt(5·6·4·5) = 10/sqrt(600)
    CHECK(deq::eval::matthews_corrcoef(yt, yp) == doctest::Approx(0.408248290463863).epsilon(1e-12));
    CHECK(deq::eval::matthews_corrcoef(yt, yp) == doctest::Approx(10.0 / std::sqrt(600.0)).epsilon(1e-12));
    CHECK(deq::eval::f1_score(yt, yp) == doctest::Approx(0.7272727272727273).epsilon(1e-12));  // 8 / 11
    CHECK(deq::eval::f1_score(yt, yp, 0) == doctest::Approx(0.6666666666666666).epsilon(1e-12));
    CHECK(deq::eval::accuracy(yt, yp) == doctest::Approx(0.7));

    std::vector<long> const t3{0, 1, 2, 2, 1, 0, 2, 1}, p3{0, 2, 2, 1, 1, 0, 2, 0};
    CHECK(deq::eval::matthews_corrcoef(t3, p3) == doctest::Approx(0.4523809523809524).epsilon(1e-12));
    CHECK(deq::eval::accuracy(t3, p3) == doctest::Approx(5.0 / 8.0));

    // degenerate cases: sklearn returns 0 for a zero denominator and for F1 without positives
    CHECK(deq::eval::matthews_corrcoef(std::vector<int>{1, 1, 1}, std::vector<int>{1, 1, 1}) == 0.0);
    CHECK(deq::eval::f1_score(std::vector<int>{0, 0}, std::vector<int>{0, 0}) == 0.0);
    CHECK(deq::eval::matthews_corrcoef(std::vector<int>{1, 0, 1, 0}, std::vector<int>{0, 1, 0, 1}) == doctest::Approx(-1.0));
    CHECK(deq::eval::matthews_corrcoef(yt, yt) == doctest::Approx(1.0));
    CHECK(deq::eval::f1_score(yt, yt) == 1.0);
}

TEST_CASE("metrics reject empty, mismatched and non-finite inputs") {
    std::vector<double> const empty, one{1.0}, two{1.0, 2.0};
    std::vector<int> const e_l, l2{0, 1}, l3{0, 1, 1};
    CHECK_THROWS_AS(deq::eval::pearson(empty, empty), deq::invalid_argument);
    CHECK_THROWS_AS(deq::eval::spearman(empty, empty), deq::invalid_argument);
    CHECK_THROWS_WITH_AS(deq::eval::pearson(one, two), doctest::Contains("lengths must agree"), deq::shape_error);
    CHECK_THROWS_AS(deq::eval::spearman(two, one), deq::shape_error);
    CHECK_THROWS_AS(deq::eval::matthews_corrcoef(e_l, e_l), deq::invalid_argument);
    CHECK_THROWS_AS(deq::eval::matthews_corrcoef(l2, l3), deq::shape_error);
    CHECK_THROWS_AS(deq::eval::f1_score(e_l, e_l), deq::invalid_argument);
    CHECK_THROWS_AS(deq::eval::f1_score(l3, l2), deq::shape_error);
    CHECK_THROWS_AS(deq::eval::accuracy(e_l, e_l), deq::invalid_argument);
    CHECK_THROWS_AS(deq::eval::accuracy(l2, l3), deq::shape_error);
    std::vector<double> const bad{1.0, std::numeric_limits<double>::quiet_NaN()};
    CHECK_THROWS_WITH_AS(deq::eval::pearson(two, bad), doctest::Contains("'y' at index 1"), deq::numeric_error);
    std::vector<float> const inf{std::numeric_limits<float>::infinity(), 1.0f};
    CHECK_THROWS_AS(deq::eval::spearman(inf, two), deq::numeric_error);
}
