// Shared helpers for deq's tests: random tensors and tolerance checks.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>

#include <deq/core/tensor.hpp>

namespace deq_test {

/// Fills @p t with N(mean, stddev) values from a seeded generator (values converted to T).
template <class T, int Rank>
void fill_normal(deq::tensor<T, Rank>& t, std::uint64_t seed, double mean = 0.0, double stddev = 1.0) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> dist(mean, stddev);
    for (auto& x : t.storage()) x = static_cast<T>(dist(gen));
}

/// Largest absolute value of a tensor, in double.
template <class T, int Rank>
double max_abs(deq::tensor<T, Rank> const& t) {
    double m = 0;
    for (auto const& x : t.storage()) m = std::fmax(m, std::fabs(static_cast<double>(x)));
    return m;
}

/// The message of the @p Exception thrown by @p f, or "<no exception>" when it throws nothing.
template <class Exception, class F>
std::string message_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (Exception const& e) {
        return e.what();
    }
    return "<no exception>";
}

}  // namespace deq_test
