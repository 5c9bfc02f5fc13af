#include <doctest/doctest.h>

#include <deq/core/accumulator.hpp>
#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/numeric/int_b.hpp>
#include <deq/numeric/packed.hpp>
#include <deq/quant/quantizer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "support/test_util.hpp"
#include "support/type_names.hpp"

using deq::index_t;
using deq::quant::granularity;
using deq::quant::scheme;

static_assert(deq::quant::quantizer<deq::int4b_t>::kind == scheme::symmetric);
static_assert(deq::quant::quantizer<deq::uint4b_t>::kind == scheme::asymmetric);
static_assert(deq::quant::quantizer<deq::int6b_t>::bits == 6);

TEST_CASE_TEMPLATE("quantizer<Format> equals the run-time path and round-trips through packed storage", F,
                   DEQ_TEST_ALL_FORMATS) {
    deq::tensor<float, 4> x({2, 2, 5, 3});
    deq_test::fill_normal(x, 99);
    deq::quant::quantizer<F> const quant(granularity::per_block(2));
    CHECK(quant.spec().bits == F::bits);
    CHECK(quant.spec().kind == (F::is_signed ? scheme::symmetric : scheme::asymmetric));
    CHECK(quant.groups() == granularity::per_block(2));

    auto const p = quant.calibrate(deq::exec::threads{2}, x.cview());
    CHECK(p.bits == F::bits);
    deq::tensor<F, 4> levels({2, 2, 5, 3});
    quant.quantize(deq::exec::serial{}, x.cview(), p, levels.view());
    deq::tensor<std::int32_t, 4> ref({2, 2, 5, 3});
    deq::quant::quantize(deq::exec::serial{}, x.cview(), p, ref.view());
    bool same = true;
    for (index_t i = 0; i < ref.size(); ++i) same = same && levels.data()[i].value() == ref.data()[i];
    CHECK(same);
    // The levels use the format's range (symmetric: -qmax..qmax, so -2^(b-1) never appears).
    std::int32_t mn = 1 << 20, mx = -(1 << 20);
    for (auto const& v : levels.storage()) {
        mn = std::min(mn, v.value());
        mx = std::max(mx, v.value());
    }
    CHECK(mn >= p.level_min());
    CHECK(mx <= p.level_max());
    CHECK(mx == p.level_max());  // some group maximum maps onto the top level

    auto const packed = quant.quantize_packed(deq::exec::threads{3}, x.cview(), p);
    CHECK(packed.size() == x.size());
    CHECK(packed.byte_size() == (x.size() * F::bits + 7) / 8);
    CHECK(packed.to_levels() == ref.storage());

    deq::tensor<float, 4> a({2, 2, 5, 3}), b({2, 2, 5, 3}), c({2, 2, 5, 3});
    quant.dequantize(deq::exec::serial{}, levels.cview(), p, a.view());
    quant.dequantize_packed(deq::exec::serial{}, packed.cview(), p, b.view());
    deq::quant::fake_quantize(deq::exec::serial{}, x.cview(), p, c.view());
    CHECK(a.storage() == b.storage());
    CHECK(a.storage() == c.storage());

    // Parameters of another width or scheme are rejected.
    auto wrong_bits = p;
    wrong_bits.bits = F::bits == 16 ? 8 : F::bits + 1;
    CHECK_THROWS_AS(quant.quantize(deq::exec::serial{}, x.cview(), wrong_bits, levels.view()), deq::invalid_argument);
    auto wrong_kind = deq::quant::calibrate(
        deq::exec::serial{}, x.cview(),
        {F::is_signed ? scheme::asymmetric : scheme::symmetric, F::bits, granularity::per_block(2)});
    try {
        quant.dequantize(deq::exec::serial{}, levels.cview(), wrong_kind, a.view());
        FAIL("no exception");
    } catch (deq::invalid_argument const& e) {
        CHECK(std::string(e.what()).find("'params.kind'") != std::string::npos);
    }
    deq::packed_array<F> short_packed(x.size() - 1);
    CHECK_THROWS_AS(quant.dequantize_packed(deq::exec::serial{}, short_packed.cview(), p, b.view()), deq::shape_error);
}

TEST_CASE_TEMPLATE("Sanger's int4 quantizer on every element type", T, float, double, deq::float16) {
    using S = deq::accum_t<T>;
    deq::tensor<T, 4> x({1, 2, 4, 8});
    deq_test::fill_normal(x, 1234);
    deq::quant::quantizer<deq::int4b_t> const sanger;
    auto const p = sanger.calibrate(deq::exec::serial{}, x.cview());
    S const absmax = static_cast<S>(deq_test::max_abs(x));
    CHECK(p.scale[0] == S(7) / absmax);
    deq::tensor<deq::int4b_t, 4> q({1, 2, 4, 8});
    sanger.quantize(deq::exec::serial{}, x.cview(), p, q.view());
    bool ok = true;
    for (index_t i = 0; i < x.size(); ++i) {
        S const v = std::nearbyint(static_cast<S>(x.data()[i]) * p.scale[0]);
        ok = ok && q.data()[i].value() == static_cast<std::int32_t>(v);  // |v| <= 7: no clamping needed
    }
    CHECK(ok);
}
