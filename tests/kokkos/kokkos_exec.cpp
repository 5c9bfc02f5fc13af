// deq::exec::kokkos<S>: the deq execution-space contract on every enabled Kokkos host space, and
// real deq kernels giving the same results as deq::exec::serial.
#include <doctest/doctest.h>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <deq/core/accumulator.hpp>
#include <deq/core/bit_mask.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/kokkos.hpp>
#include <deq/exec/serial.hpp>
#include <deq/quant/symmetric_scalar.hpp>

#include "support/test_util.hpp"

namespace {

// The Kokkos host execution spaces this Kokkos was built with (Debian's 3.4: Serial only).
#if defined(KOKKOS_ENABLE_SERIAL)
using serial_spaces = std::tuple<Kokkos::Serial>;
#else
using serial_spaces = std::tuple<>;
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
using openmp_spaces = std::tuple<Kokkos::OpenMP>;
#else
using openmp_spaces = std::tuple<>;
#endif
#if defined(KOKKOS_ENABLE_THREADS)
using threads_spaces = std::tuple<Kokkos::Threads>;
#else
using threads_spaces = std::tuple<>;
#endif
using host_spaces =
    decltype(std::tuple_cat(std::declval<serial_spaces>(), std::declval<openmp_spaces>(), std::declval<threads_spaces>()));
static_assert(std::tuple_size_v<host_spaces> > 0, "no Kokkos host execution space is enabled");

template <class T>
concept wrappable = requires { typename deq::exec::kokkos<T>; };

// Counts how often each work item runs.
struct count_hits {
    int* hits;
    DEQ_HOST_DEVICE void operator()(deq::index_t i) const { hits[i] += 1; }
};

// Softmax of each row of x into y, in accum_t<T> arithmetic (one work item per row).
template <class T>
struct row_softmax {
    deq::tensor_view<T const, 2> x;
    deq::tensor_view<T, 2> y;
    DEQ_HOST_DEVICE void operator()(deq::index_t i) const {
        using A = deq::accum_t<T>;
        deq::index_t const cols = x.extent(1);
        A row_max = static_cast<A>(x(i, 0));
        for (deq::index_t j = 1; j < cols; ++j) row_max = static_cast<A>(x(i, j)) > row_max ? static_cast<A>(x(i, j)) : row_max;
        A sum = 0;
        for (deq::index_t j = 0; j < cols; ++j) {
            A const e = std::exp(static_cast<A>(x(i, j)) - row_max);
            y(i, j) = static_cast<T>(e);
            sum += e;
        }
        for (deq::index_t j = 0; j < cols; ++j) y(i, j) = static_cast<T>(static_cast<A>(y(i, j)) / sum);
    }
};

// Marks the entries of row i whose value exceeds the row's threshold (one work item per row, so
// no two work items write the same 64-bit mask word).
struct mark_above {
    deq::tensor_view<float const, 2> x;
    deq::tensor_view<float const, 1> threshold;
    deq::bit_mask_view mask;
    DEQ_HOST_DEVICE void operator()(deq::index_t i) const {
        for (deq::index_t j = 0; j < x.extent(1); ++j) mask.set(0, 0, i, j, x(i, j) > threshold(i));
    }
};

// 4-bit symmetric quantization of a vector.
struct quantize4 {
    deq::tensor_view<float const, 1> x;
    deq::tensor_view<std::int32_t, 1> q;
    float scale;
    DEQ_HOST_DEVICE void operator()(deq::index_t i) const { q(i) = deq::quant::quantize_symmetric(x(i), scale, 4); }
};

template <class Space>
void check_softmax(Space const& space) {
    auto run = [&](auto tag) {
        using T = decltype(tag);
        deq::index_t const rows = 37, cols = 19;
        deq::tensor<T, 2> x({rows, cols});
        deq_test::fill_normal(x, 1234, 0.0, 3.0);
        // Hand-checked rows: softmax(0, ln 3) = (1/4, 3/4); a constant row is uniform.
        x(0, 0) = T(0);
        x(0, 1) = static_cast<T>(std::log(3.0));
        for (deq::index_t j = 2; j < cols; ++j) x(0, j) = T(-1000);
        for (deq::index_t j = 0; j < cols; ++j) x(1, j) = T(2.5);

        deq::tensor<T, 2> y_kokkos({rows, cols}, T(-1));
        deq::tensor<T, 2> y_serial({rows, cols}, T(-1));
        deq::exec::parallel_for(space, rows, row_softmax<T>{x.cview(), y_kokkos.view()});
        deq::exec::parallel_for(deq::exec::serial{}, rows, row_softmax<T>{x.cview(), y_serial.view()});

        // Same kernel, same per-row arithmetic: bit-identical to the serial space.
        CHECK(y_kokkos.storage() == y_serial.storage());

        double const tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
        CHECK(static_cast<double>(y_kokkos(0, 0)) == doctest::Approx(0.25).epsilon(tol));
        CHECK(static_cast<double>(y_kokkos(0, 1)) == doctest::Approx(0.75).epsilon(tol));
        CHECK(static_cast<double>(y_kokkos(0, 2)) == 0.0);
        for (deq::index_t j = 0; j < cols; ++j) CHECK(static_cast<double>(y_kokkos(1, j)) == doctest::Approx(1.0 / cols).epsilon(tol));

        // Independent long double softmax of every row.
        double worst = 0;
        for (deq::index_t i = 0; i < rows; ++i) {
            long double m = x(i, 0);
            for (deq::index_t j = 1; j < cols; ++j) m = std::fmax(m, static_cast<long double>(x(i, j)));
            long double s = 0;
            for (deq::index_t j = 0; j < cols; ++j) s += std::exp(static_cast<long double>(x(i, j)) - m);
            for (deq::index_t j = 0; j < cols; ++j) {
                long double const ref = std::exp(static_cast<long double>(x(i, j)) - m) / s;
                worst = std::fmax(worst, static_cast<double>(std::fabs(ref - static_cast<long double>(y_kokkos(i, j)))));
            }
        }
        CHECK(worst < tol);
    };
    run(float{});
    run(double{});
}

}  // namespace

TYPE_TO_STRING_AS("Serial", Kokkos::Serial);
#if defined(KOKKOS_ENABLE_OPENMP)
TYPE_TO_STRING_AS("OpenMP", Kokkos::OpenMP);
#endif
#if defined(KOKKOS_ENABLE_THREADS)
TYPE_TO_STRING_AS("Threads", Kokkos::Threads);
#endif

TEST_CASE_TEMPLATE_DEFINE("kokkos<S> satisfies the deq execution-space concepts", S, kokkos_concepts) {
    using space_t = deq::exec::kokkos<S>;
    static_assert(deq::exec::execution_space<space_t>);
    static_assert(deq::exec::host_execution_space<space_t>);
    static_assert(wrappable<S>);
    CHECK(std::string(deq::exec::name_of<space_t>()) == "kokkos");

    space_t const space{S{}};
    int const concurrency = deq::exec::backend<space_t>::concurrency(space);
    CHECK(concurrency >= 1);
    CHECK(concurrency == static_cast<int>(S{}.concurrency()));
#if defined(KOKKOS_ENABLE_SERIAL)
    if constexpr (std::is_same_v<S, Kokkos::Serial>) CHECK(concurrency == 1);
#endif
}

TEST_CASE_TEMPLATE_DEFINE("kokkos<S>::parallel_for runs every work item exactly once", S, kokkos_once) {
    deq::exec::kokkos<S> const space{S{}};
    for (deq::index_t n : {deq::index_t{1}, deq::index_t{7}, deq::index_t{1000}, deq::index_t{4099}}) {
        CAPTURE(n);
        std::vector<int> hits(static_cast<std::size_t>(n), 0);
        deq::exec::parallel_for(space, n, count_hits{hits.data()});
        std::size_t wrong = 0;
        for (int h : hits) wrong += h != 1;
        CHECK(wrong == 0);
    }

    // No work item runs for n <= 0, through the dispatcher or the backend itself.
    int sentinel = 0;
    deq::exec::parallel_for(space, 0, count_hits{&sentinel});
    deq::exec::parallel_for(space, -3, count_hits{&sentinel});
    deq::exec::backend<deq::exec::kokkos<S>>::parallel_for(space, 0, count_hits{&sentinel});
    CHECK(sentinel == 0);
}

TEST_CASE_TEMPLATE_DEFINE("row softmax through kokkos<S> matches the serial space and a long double reference", S,
                          kokkos_softmax) {
    check_softmax(deq::exec::kokkos<S>{S{}});
}

TEST_CASE_TEMPLATE_DEFINE("bit_mask kernel through kokkos<S> matches the serial space", S, kokkos_mask) {
    deq::index_t const rows = 5, cols = 130;   // three 64-bit words per row
    deq::tensor<float, 2> x({rows, cols});
    deq_test::fill_normal(x, 99);
    deq::tensor<float, 1> threshold({rows});
    for (deq::index_t i = 0; i < rows; ++i) threshold(i) = -0.5f + 0.25f * static_cast<float>(i);

    deq::bit_mask via_kokkos(1, 1, rows, cols);
    deq::bit_mask via_serial(1, 1, rows, cols);
    deq::exec::parallel_for(deq::exec::kokkos<S>{S{}}, rows, mark_above{x.cview(), threshold.cview(), via_kokkos.view()});
    deq::exec::parallel_for(deq::exec::serial{}, rows, mark_above{x.cview(), threshold.cview(), via_serial.view()});
    CHECK(via_kokkos == via_serial);

    // Counted directly from the data.
    for (deq::index_t i = 0; i < rows; ++i) {
        deq::index_t expected = 0;
        for (deq::index_t j = 0; j < cols; ++j) expected += x(i, j) > threshold(i);
        CHECK(via_kokkos.view().count_row(0, 0, i) == expected);
    }
}

TEST_CASE_TEMPLATE_APPLY(kokkos_concepts, host_spaces);
TEST_CASE_TEMPLATE_APPLY(kokkos_once, host_spaces);
TEST_CASE_TEMPLATE_APPLY(kokkos_softmax, host_spaces);
TEST_CASE_TEMPLATE_APPLY(kokkos_mask, host_spaces);

TEST_CASE("kokkos deduces its space type and runs a quantization kernel on the default host space") {
    deq::exec::kokkos space{Kokkos::DefaultHostExecutionSpace{}};
    static_assert(std::is_same_v<decltype(space), deq::exec::kokkos<Kokkos::DefaultHostExecutionSpace>>);
    static_assert(!wrappable<int>);
    static_assert(!wrappable<deq::exec::serial>);

    // scale 2: 1.25 -> 2.5 -> 2 (ties to even), 1.75 -> 3.5 -> 4, +-10 -> +-20 -> clamped to +-7.
    std::vector<float> xs = {1.25f, 1.75f, 10.0f, -10.0f, 0.25f, -1.25f, 0.0f};
    std::vector<std::int32_t> const expected = {2, 4, 7, -7, 0, -2, 0};
    std::vector<std::int32_t> q(xs.size(), 99);
    deq::index_t const n = static_cast<deq::index_t>(xs.size());
    deq::exec::parallel_for(space, n,
                            quantize4{deq::tensor_view<float const, 1>(xs.data(), {n}),
                                      deq::tensor_view<std::int32_t, 1>(q.data(), {n}), 2.0f});
    CHECK(q == expected);
}
