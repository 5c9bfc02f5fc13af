#include <doctest/doctest.h>

#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/quant/ema_calibration.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/type_names.hpp"

using deq::quant::ema_calibrator;

namespace {

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }

// One reference step by hand: c = float(1 - decay) (double subtraction, then float), then float ops.
float hand_step(float thresh, float m, double decay) {
    float const c = static_cast<float>(1.0 - decay);
    float const d = thresh - m;
    volatile float const e = c * d;  // volatile: force rounding of the product to float
    return thresh - e;
}

std::string format_error_of(std::string const& text) {
    try {
        (void)ema_calibrator::from_string(text);
    } catch (deq::format_error const& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("EMA calibration reproduces the reference sequence 0.9, 0.5, 0.7") {
    ema_calibrator c;  // decay 0.9999, calibrating
    CHECK(c.calibrating());
    CHECK(c.decay() == 0.9999);
    CHECK_FALSE(c.has_threshold());
    CHECK_THROWS_AS((void)c.threshold(), deq::error);
    c.update(0.9f);
    CHECK(c.threshold() == 0.9f);  // first step: threshold = max|x|
    CHECK(c.steps() == 1);
    c.update(0.5f);
    // By hand: c = float(1e-4) = 9.99999974738e-05; 0.9f - 0.5f = 0.4f (0.400000006); times c ->
    // 4.00000e-05; 0.9f - 4.0e-05 = 0.89995998.
    float const t1 = hand_step(0.9f, 0.5f, 0.9999);
    CHECK(c.threshold() == t1);
    CHECK(bits_of(c.threshold()) == 0x3F6663C7u);  // PyTorch's result
    c.update(0.7f);
    CHECK(c.threshold() == hand_step(t1, 0.7f, 0.9999));
    CHECK(bits_of(c.threshold()) == 0x3F666278u);  // PyTorch's result
    CHECK(c.steps() == 3);
    CHECK(std::fabs(c.threshold() - 0.89994f) < 1e-6f);
}

TEST_CASE("EMA calibration matches PyTorch over longer sequences (decay 0.9999 and 0.9)") {
    // Generated with torch: ema.fill_(max) at step 0, then ema.sub_((1 - decay) * (ema - max)).
    std::uint32_t const max_9999[] = {0x3FF4D5DFu, 0x402CEC42u, 0x40165E05u, 0x3F40CB38u, 0x3F787186u, 0x40288812u,
                                      0x3DEC125Bu, 0x401ED1EBu, 0x401A560Au, 0x3FBA7F59u, 0x3F7A923Fu, 0x3F684D9Du};
    std::uint32_t const ema_9999[] = {0x3FF4D5DFu, 0x3FF4D875u, 0x3FF4D9E3u, 0x3FF4D616u, 0x3FF4D300u, 0x3FF4D55Cu,
                                      0x3FF4CF78u, 0x3FF4D155u, 0x3FF4D2F7u, 0x3FF4D179u, 0x3FF4CE6Au, 0x3FF4CB1Fu};
    std::uint32_t const max_9[] = {0x3F56D0B0u, 0x3FB20328u, 0x3FC8169Cu, 0x3FDA421Bu, 0x403F2A34u, 0x4019849Fu,
                                   0x3FF3C0C0u, 0x403DF375u, 0x3F3971F7u, 0x3F108A9Au, 0x3FF02CB9u, 0x3E68E3E3u};
    std::uint32_t const ema_9[] = {0x3F56D0B0u, 0x3F64EFA6u, 0x3F760F68u, 0x3F848D8Bu, 0x3F9D87D4u, 0x3FAC7B2Bu,
                                   0x3FB39BBAu, 0x3FC7A33Fu, 0x3FBCF238u, 0x3FB14754u, 0x3FB79178u, 0x3FA81F5Fu};
    ema_calibrator a(0.9999), b(0.9);
    for (int i = 0; i < 12; ++i) {
        // The batch is [[m, -m/2]]; update() takes the abs-max itself.
        float const m = from_bits(max_9999[i]);
        deq::tensor<float, 2> batch({1, 2});
        batch(0, 0) = -m;
        batch(0, 1) = m / 2;
        a.update(batch.cview());
        CHECK(bits_of(a.threshold()) == ema_9999[i]);
        b.update(from_bits(max_9[i]));
        CHECK(bits_of(b.threshold()) == ema_9[i]);
    }
}

TEST_CASE_TEMPLATE("EMA update from tensors of every element type", T, float, double, deq::float16) {
    ema_calibrator c(0.5);
    deq::tensor<T, 3> x({2, 2, 3}, T(0.25f));
    x(1, 0, 2) = T(-3.0f);
    c.update(x.cview());
    CHECK(c.threshold() == 3.0f);
    x(1, 0, 2) = T(1.0f);
    c.update(x.cview(), "q");
    CHECK(c.threshold() == 2.0f);  // 3 - 0.5 * (3 - 1)
    x(0, 1, 1) = T(std::numeric_limits<float>::quiet_NaN());
    try {
        c.update(x.cview(), "q");
        FAIL("no exception");
    } catch (deq::numeric_error const& e) {
        CHECK(std::string(e.what()).find("'q'") != std::string::npos);
        CHECK(std::string(e.what()).find("[0, 1, 1]") != std::string::npos);
    }
    CHECK(c.steps() == 2);  // the failed update changed nothing
    deq::tensor<T, 3> empty({2, 0, 3});
    CHECK_THROWS_AS(c.update(empty.cview()), deq::shape_error);
}

TEST_CASE("EMA calibrator: eval mode is a no-op, decay edge cases, bad input") {
    ema_calibrator c(0.9);
    c.set_calibrating(false);
    c.update(5.0f);  // no-op
    CHECK_FALSE(c.has_threshold());
    CHECK(c.steps() == 0);
    c.update(std::numeric_limits<float>::quiet_NaN());  // not even inspected in eval mode
    c.set_calibrating(true);
    c.update(2.0f);
    c.set_calibrating(false);
    c.update(100.0f);
    CHECK(c.threshold() == 2.0f);
    CHECK(c.steps() == 1);

    ema_calibrator zero_decay(0.0), one_decay(1.0);
    for (float m : {1.0f, 4.0f, 2.5f}) {
        zero_decay.update(m);
        one_decay.update(m);
    }
    CHECK(zero_decay.threshold() == 2.5f);  // follows the latest batch
    CHECK(one_decay.threshold() == 1.0f);   // frozen after the first batch

    CHECK_THROWS_AS(ema_calibrator(1.5), deq::invalid_argument);
    CHECK_THROWS_AS(ema_calibrator(-0.1), deq::invalid_argument);
    CHECK_THROWS_AS(ema_calibrator(std::nan("")), deq::invalid_argument);
    ema_calibrator d;
    CHECK_THROWS_AS(d.update(std::numeric_limits<float>::infinity()), deq::numeric_error);
    CHECK_THROWS_AS(d.update(-1.0f), deq::invalid_argument);
    CHECK_THROWS_AS(d.set_threshold(-1.0f), deq::invalid_argument);
    CHECK_THROWS_AS(d.set_threshold(std::nanf("")), deq::invalid_argument);
    CHECK_THROWS_AS(ema_calibrator(1.0f, -1), deq::invalid_argument);

    // A threshold set by hand (e.g. from a checkpoint) is used as is; with steps() == 0 the first
    // calibration step replaces it, as the reference's first step does.
    ema_calibrator e;
    e.set_threshold(0.75f);
    CHECK(e.threshold() == 0.75f);
    e.update(0.25f);
    CHECK(e.threshold() == 0.25f);
    ema_calibrator f(0.75f, 10, 0.5, true);
    f.update(0.25f);
    CHECK(f.threshold() == 0.5f);
    CHECK(f.steps() == 11);
}

TEST_CASE("EMA state serializes to a versioned line and round-trips exactly") {
    ema_calibrator c;
    c.update(0.9f);
    CHECK(c.to_string() == "deq-ema v1 threshold=0.9 steps=1 decay=0.9999 calibrating=1");
    CHECK(ema_calibrator().to_string() == "deq-ema v1 threshold=none steps=0 decay=0.9999 calibrating=1");

    std::mt19937 gen(5);
    std::uniform_real_distribution<float> dist(0.01f, 10.0f);
    for (double decay : {0.9999, 0.9, 0.123456789012345}) {
        ema_calibrator a(decay);
        for (int i = 0; i < 50; ++i) {
            a.update(dist(gen));
            ema_calibrator const b = ema_calibrator::from_string(a.to_string());
            REQUIRE(b == a);
            REQUIRE(bits_of(b.threshold()) == bits_of(a.threshold()));
            REQUIRE(b.decay() == a.decay());
        }
        a.set_calibrating(false);
        CHECK(ema_calibrator::from_string(a.to_string()) == a);
        CHECK_FALSE(ema_calibrator::from_string(a.to_string()).calibrating());
    }
    // Whitespace and key order are free.
    ema_calibrator const parsed =
        ema_calibrator::from_string("  deq-ema\tv1\n calibrating=0 decay=0.5 steps=7 threshold=1.25\n");
    CHECK(parsed.threshold() == 1.25f);
    CHECK(parsed.steps() == 7);
    CHECK(parsed.decay() == 0.5);
    CHECK_FALSE(parsed.calibrating());
    // A zero threshold (all-zero first batch) round-trips too.
    ema_calibrator z;
    z.update(0.0f);
    CHECK(ema_calibrator::from_string(z.to_string()).threshold() == 0.0f);
}

TEST_CASE("EMA state from_string rejects malformed input with a format_error naming the problem") {
    CHECK(format_error_of("").find("empty") != std::string::npos);
    CHECK(format_error_of("   \n").find("empty") != std::string::npos);
    CHECK(format_error_of("deq-emma v1 threshold=1 steps=1 decay=0.9 calibrating=1").find("deq-ema") != std::string::npos);
    CHECK(format_error_of("deq-ema").find("version") != std::string::npos);
    CHECK(format_error_of("deq-ema v2 threshold=1 steps=1 decay=0.9 calibrating=1").find("'v2'") != std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 steps=1 decay=0.9").find("'calibrating'") != std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 threshold=2 steps=1 decay=0.9 calibrating=1").find("duplicate") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 steps=1 decay=0.9 calibrating=1 bits=4").find("'bits'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold steps=1 decay=0.9 calibrating=1").find("key=value") != std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=abc steps=1 decay=0.9 calibrating=1").find("'threshold'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1.5x steps=1 decay=0.9 calibrating=1").find("'threshold'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=-1 steps=1 decay=0.9 calibrating=1").find("'threshold'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=nan steps=1 decay=0.9 calibrating=1").find("'threshold'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=inf steps=1 decay=0.9 calibrating=1").find("'threshold'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold= steps=1 decay=0.9 calibrating=1").find("'threshold'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 steps=-1 decay=0.9 calibrating=1").find("'steps'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 steps=1.5 decay=0.9 calibrating=1").find("'steps'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=none steps=3 decay=0.9 calibrating=1").find("'steps'") !=
          std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 steps=1 decay=2 calibrating=1").find("'decay'") != std::string::npos);
    CHECK(format_error_of("deq-ema v1 threshold=1 steps=1 decay=0.9 calibrating=yes").find("'calibrating'") !=
          std::string::npos);
}

TEST_CASE("EMA state saves to and loads from a file") {
    auto const dir = std::filesystem::temp_directory_path();
    auto const path = dir / ("deq_ema_test_" + std::to_string(std::random_device{}()) + ".txt");
    ema_calibrator c(0.99);
    c.update(3.0f);
    c.update(1.0f);
    c.set_calibrating(false);
    c.save(path);
    ema_calibrator const back = ema_calibrator::load(path);
    CHECK(back == c);
    CHECK(back.threshold() == c.threshold());
    {
        std::ofstream out(path, std::ios::trunc);
        out << "deq-ema v9 threshold=1\n";
    }
    try {
        (void)ema_calibrator::load(path);
        FAIL("no exception");
    } catch (deq::format_error const& e) {
        std::string const msg = e.what();
        CHECK(msg.find("'v9'") != std::string::npos);
        CHECK(msg.find(path.string()) != std::string::npos);
    }
    { std::ofstream out(path, std::ios::trunc); }
    CHECK_THROWS_AS((void)ema_calibrator::load(path), deq::format_error);
    std::filesystem::remove(path);
    CHECK_THROWS_AS((void)ema_calibrator::load(path), deq::format_error);  // missing file
    CHECK_THROWS_AS(c.save(dir / "no_such_directory_deq" / "x.txt"), deq::format_error);
}
