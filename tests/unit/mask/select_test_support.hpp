// Helpers shared by the mask-rule / selection / precision-map tests.
#pragma once

#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/core/error.hpp>
#include <deq/core/padding.hpp>
#include <deq/core/tensor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace deq_select_test {

/// A [B, H, Lq, Lk] score tensor from row-major values.
template <class S>
deq::tensor<S, 4> scores(deq::index_t b, deq::index_t h, deq::index_t lq, deq::index_t lk, std::vector<double> const& v) {
    deq::tensor<S, 4> t({b, h, lq, lk});
    REQUIRE(static_cast<deq::index_t>(v.size()) == t.size());
    for (std::size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<S>(v[i]);
    return t;
}

/// Owned padding flags [B, L] plus the key_padding view on them.
struct padding_holder {
    deq::tensor<std::uint8_t, 2> flags;
    deq::key_padding get() const { return deq::key_padding{flags.cview()}; }
};

inline padding_holder padding(deq::index_t b, deq::index_t l, std::vector<int> const& v) {
    padding_holder p{deq::tensor<std::uint8_t, 2>({b, l})};
    REQUIRE(static_cast<deq::index_t>(v.size()) == b * l);
    for (std::size_t i = 0; i < v.size(); ++i) p.flags.data()[i] = static_cast<std::uint8_t>(v[i]);
    return p;
}

/// The bits of a mask as a flat row-major vector of 0/1.
inline std::vector<int> bits(deq::bit_mask const& m) {
    std::vector<int> out;
    for (deq::index_t b = 0; b < m.batch(); ++b)
        for (deq::index_t h = 0; h < m.heads(); ++h)
            for (deq::index_t i = 0; i < m.rows(); ++i)
                for (deq::index_t j = 0; j < m.cols(); ++j) out.push_back(m.test(b, h, i, j) ? 1 : 0);
    return out;
}

/// The message of the deq::error thrown by f, or "<no exception>".
template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (deq::error const& e) {
        return e.what();
    }
    return "<no exception>";
}

}  // namespace deq_select_test
