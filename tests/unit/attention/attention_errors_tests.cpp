// Attention: every error path names the argument and the value.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <deq/attention/attention.hpp>
#include <deq/core/error.hpp>
#include <deq/exec/serial.hpp>
#include <deq/numeric/float16.hpp>

#include "attention_test_util.hpp"

using deq::index_t;
using attn_test::check_throws;
using attn_test::problem;

TEST_CASE_TEMPLATE("attention errors: operand shapes", T, float, double, deq::float16) {
    deq::exec::serial const space;
    problem<T> p(2, 3, 4, 5, 6, 7, 1);
    auto run = [&](auto q, auto k, auto v, auto out) { deq::attention(space, q, k, v, out); };
    deq::tensor<T, 4> bad_k({2, 3, 5, 8}), bad_kb({1, 3, 5, 6}), bad_v({2, 3, 4, 7}), bad_out({2, 3, 4, 6}),
        zero_q({2, 3, 0, 6}), zero_v({2, 3, 5, 0}), zero_out({2, 3, 4, 0});
    check_throws<deq::shape_error>([&] { run(p.q.cview(), bad_k.cview(), p.v.cview(), p.out.view()); },
                                   {"'k'", "[2, 3, 5, 8]", "[2, 3, 4, 6]"});
    check_throws<deq::shape_error>([&] { run(p.q.cview(), bad_kb.cview(), p.v.cview(), p.out.view()); },
                                   {"'k'", "[1, 3, 5, 6]"});
    check_throws<deq::shape_error>([&] { run(p.q.cview(), p.k.cview(), bad_v.cview(), p.out.view()); },
                                   {"'v'", "[2, 3, 4, 7]", "[2, 3, 5, 6]"});
    check_throws<deq::shape_error>([&] { run(p.q.cview(), p.k.cview(), p.v.cview(), bad_out.view()); },
                                   {"'out'", "[2, 3, 4, 6]", "[2, 3, 4, 7]"});
    check_throws<deq::shape_error>([&] { run(zero_q.cview(), p.k.cview(), p.v.cview(), p.out.view()); },
                                   {"'q'", "[2, 3, 0, 6]", "zero"});
    check_throws<deq::shape_error>([&] { run(p.q.cview(), p.k.cview(), zero_v.cview(), zero_out.view()); },
                                   {"'v'", "[2, 3, 5, 0]"});
}

TEST_CASE_TEMPLATE("attention errors: masks, padding and predicted scores", T, float, double) {
    using S = deq::accum_t<T>;
    deq::exec::serial const space;
    problem<T> p(2, 3, 4, 5, 6, 7, 2);
    auto run = [&](deq::attention_options<S> const& o) {
        deq::attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), o);
    };
    deq::attention_options<S> opt;

    deq::bit_mask const wrong_cols(2, 3, 4, 4), wrong_heads(2, 2, 4, 5), wrong_rows(1, 1, 5, 5);
    opt.kept = wrong_cols.view();
    check_throws<deq::shape_error>([&] { run(opt); }, {"'kept'", "[2, 3, 4, 4]", "[2 or 1, 3 or 1, 4, 5]"});
    opt.kept = wrong_heads.view();
    check_throws<deq::shape_error>([&] { run(opt); }, {"'kept'", "[2, 2, 4, 5]"});
    opt.kept = {};
    opt.refined = wrong_rows.view();
    deq::tensor<S, 4> pred({2, 3, 4, 5});
    opt.predicted = pred.cview();
    check_throws<deq::shape_error>([&] { run(opt); }, {"'refined'", "[1, 1, 5, 5]"});

    deq::bit_mask const refined(2, 3, 4, 5, true);
    opt.refined = refined.view();
    opt.predicted = {};
    check_throws<deq::invalid_argument>([&] { run(opt); }, {"'predicted'", "required", "'refined'"});
    deq::tensor<S, 4> pred_bad({2, 3, 5, 4});
    opt.predicted = pred_bad.cview();
    check_throws<deq::shape_error>([&] { run(opt); }, {"'predicted'", "[2, 3, 5, 4]", "[2, 3, 4, 5]"});
    opt.predicted = pred.cview();
    run(opt);  // now valid

    std::vector<std::uint8_t> valid(2 * 4, 1);
    deq::attention_options<S> pad;
    pad.padding = deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {2, 4})};
    check_throws<deq::shape_error>([&] { run(pad); }, {"'padding'", "[2, 4]", "[2, 5]"});
    deq::attention_options<S> qpad;
    qpad.query_padding = deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {1, 8})};
    check_throws<deq::shape_error>([&] { run(qpad); }, {"'query_padding'", "[1, 8]", "[2, 4]"});

    deq::attention_options<S> policy;
    policy.empty_rows = static_cast<deq::empty_row_policy>(7);
    check_throws<deq::invalid_argument>([&] { run(policy); }, {"'empty_rows'", "7"});
}

TEST_CASE_TEMPLATE("attention errors: NaN and infinity name the tensor and the index", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::exec::serial const space;
    problem<T> p(2, 3, 4, 5, 6, 7, 3);
    auto run = [&](deq::attention_options<S> const& o) {
        deq::attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view(), o);
    };
    deq::attention_options<S> opt;
    T const nan = T(std::numeric_limits<float>::quiet_NaN());
    T const inf = T(std::numeric_limits<float>::infinity());

    p.q(1, 2, 3, 4) = nan;
    check_throws<deq::numeric_error>([&] { run(opt); }, {"'q'", "[1, 2, 3, 4]", "nan"});
    p.q(1, 2, 3, 4) = T(0.5f);
    p.k(0, 1, 4, 5) = inf;
    check_throws<deq::numeric_error>([&] { run(opt); }, {"'k'", "[0, 1, 4, 5]", "inf"});
    p.k(0, 1, 4, 5) = T(0.5f);
    p.v(1, 0, 2, 6) = T(-std::numeric_limits<float>::infinity());
    check_throws<deq::numeric_error>([&] { run(opt); }, {"'v'", "[1, 0, 2, 6]", "-inf"});
    p.v(1, 0, 2, 6) = T(0.5f);
    run(opt);

    deq::bit_mask const refined(2, 3, 4, 5, false);
    deq::tensor<S, 4> pred({2, 3, 4, 5});
    pred(0, 2, 1, 3) = std::numeric_limits<S>::quiet_NaN();
    opt.refined = refined.view();
    opt.predicted = pred.cview();
    check_throws<deq::numeric_error>([&] { run(opt); }, {"'predicted'", "[0, 2, 1, 3]"});

    // check_finite = false skips the scan (the caller vouches for the inputs).
    pred(0, 2, 1, 3) = S(0);
    p.v(0, 0, 0, 0) = nan;
    opt.check_finite = false;
    CHECK_NOTHROW(run(opt));
}

TEST_CASE_TEMPLATE("attention errors: finite inputs whose scores overflow are an error, not NaN", T, float, double) {
    // q and k scaled far beyond sqrt(max) of the score type: every q·k overflows to ±inf.
    double const big = std::is_same_v<T, float> ? 1e30 : 1e200;
    deq::exec::serial const space;
    problem<T> p(1, 2, 3, 4, 8, 5, 11);
    for (auto& x : p.q.storage()) x = static_cast<T>(static_cast<double>(x) * big);
    for (auto& x : p.k.storage()) x = static_cast<T>(static_cast<double>(x) * big);
    check_throws<deq::numeric_error>([&] { deq::attention(space, p.q.cview(), p.k.cview(), p.v.cview(), p.out.view()); },
                                     {"row [0, 0, 0]", "overflow", "q·k/sqrt(d)"});
    // Scaled so that the scores stay finite (|q||k| / sqrt(d) well inside the range): a finite result.
    double const ok = std::is_same_v<T, float> ? 1e17 : 1e150;
    problem<T> f(1, 2, 3, 4, 8, 5, 11);
    for (auto& x : f.q.storage()) x = static_cast<T>(static_cast<double>(x) * ok);
    deq::attention(space, f.q.cview(), f.k.cview(), f.v.cview(), f.out.view());
    for (auto const& x : f.out.storage()) CHECK(std::isfinite(static_cast<double>(x)));
    // Values near the largest finite number: the weighted sum may round past it.
    problem<T> v(1, 1, 2, 3, 4, 2, 5);
    for (auto& x : v.v.storage()) x = std::numeric_limits<T>::max();
    for (auto& x : v.q.storage()) x = T(0);  // uniform weights 1/3: the sum of three max/3 rounds up
    auto const st = [&] {
        try {
            deq::attention(space, v.q.cview(), v.k.cview(), v.v.cview(), v.out.view());
        } catch (deq::numeric_error const& e) {
            return std::string(e.what());
        }
        return std::string("finite");
    }();
    if (st != "finite") {
        CHECK(st.find("'v'") != std::string::npos);
    } else {
        for (auto const& x : v.out.storage()) CHECK(std::isfinite(static_cast<double>(x)));
    }
}
