#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>

#include <atomic>
#include <vector>

TEST_CASE("tensor_view indexes row-major and strided data") {
    deq::tensor<float, 3> t({2, 3, 4});
    for (deq::index_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i);
    auto v = t.view();
    CHECK(v(1, 2, 3) == 23.0f);
    CHECK(v.is_contiguous());
    deq::tensor_view<float const, 2> col(t.data() + 1, {6, 2}, {4, 2});
    CHECK(col(5, 1) == 23.0f);
    CHECK_FALSE(col.is_contiguous());
    CHECK(v.shape_string() == "[2, 3, 4]");
    CHECK_THROWS_AS((deq::tensor<float, 2>({2, -1})), deq::shape_error);
}

TEST_CASE("bit_mask sets, tests, counts and broadcasts") {
    deq::bit_mask m(1, 2, 3, 70);
    m.set(0, 1, 2, 69);
    m.set(0, 0, 0, 0);
    CHECK(m.test(0, 1, 2, 69));
    CHECK(m.test(5, 1, 2, 69));  // batch extent 1 broadcasts
    CHECK_FALSE(m.test(0, 1, 2, 68));
    CHECK(m.count() == 2);
    m.fill(true);
    CHECK(m.count() == 2 * 3 * 70);
    CHECK(m.view().count_row(0, 1, 1) == 70);
}

TEST_CASE("execution spaces run every work item exactly once") {
    std::vector<std::atomic<int>> hits(1000);
    auto kernel = [&](deq::index_t i) { hits[static_cast<std::size_t>(i)]++; };
    deq::exec::parallel_for(deq::exec::serial{}, 1000, kernel);
    deq::exec::parallel_for(deq::exec::threads{3}, 1000, kernel);
    for (auto& h : hits) CHECK(h.load() == 2);
    CHECK_THROWS_AS(deq::exec::threads{0}, deq::invalid_argument);
    CHECK_THROWS_AS(deq::exec::parallel_for(deq::exec::threads{2}, 10,
                                            [](deq::index_t i) {
                                                if (i == 7) throw deq::error("boom");
                                            }),
                    deq::error);
}
