#include <doctest/doctest.h>

#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>
#include <deq/numeric/finite.hpp>
#include <deq/numeric/float16.hpp>

#include <limits>
#include <string>

#include "support/type_names.hpp"

TEST_CASE_TEMPLATE("require_finite names the tensor and the first non-finite index", T, float, double, deq::float16) {
    deq::tensor<T, 3> t({2, 3, 4}, T(1.0f));
    CHECK_NOTHROW(deq::detail::require_finite("q", t.cview()));
    t(1, 2, 3) = T(std::numeric_limits<float>::infinity());
    t(1, 0, 2) = T(std::numeric_limits<float>::quiet_NaN());
    try {
        deq::detail::require_finite("q", t.cview());
        FAIL("no exception");
    } catch (deq::numeric_error const& e) {
        std::string const msg = e.what();
        CHECK(msg.find("'q'") != std::string::npos);
        CHECK(msg.find("[1, 0, 2]") != std::string::npos);
        CHECK(msg.find("nan") != std::string::npos);
    }
    CHECK(deq::is_finite_value(T(2.0f)));
    CHECK_FALSE(deq::is_finite_value(T(std::numeric_limits<float>::infinity())));
    CHECK(deq::is_finite_value(3));
}
