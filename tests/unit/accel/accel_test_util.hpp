// Helpers shared by the accelerator-model tests: small architectures, masks and workloads.
#pragma once

#include <deq/accel/architecture.hpp>
#include <deq/accel/workload.hpp>
#include <deq/core/bit_mask.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace accel_test {

using deq::index_t;

/// A [1, 1, rows.size(), cols] mask from rows of '0' / '1'.
inline deq::bit_mask mask_from(std::vector<std::string> const& rows) {
    index_t const cols = rows.empty() ? 0 : static_cast<index_t>(rows[0].size());
    deq::bit_mask m(1, 1, static_cast<index_t>(rows.size()), cols);
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = 0; j < rows[i].size(); ++j)
            if (rows[i][j] == '1') m.set(0, 0, static_cast<index_t>(i), static_cast<index_t>(j));
    return m;
}

/// A mask with every bit set with probability @p p (seeded); rows get a skewed probability so rows
/// are imbalanced (row i uses p · (0.25 + 1.5 · ((i * 7) % 5) / 4)).
inline deq::bit_mask random_mask(index_t batch, index_t heads, index_t rows, index_t cols, double p, std::uint64_t seed) {
    deq::bit_mask m(batch, heads, rows, cols);
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (index_t b = 0; b < batch; ++b)
        for (index_t h = 0; h < heads; ++h)
            for (index_t i = 0; i < rows; ++i) {
                double const pi = p * (0.25 + 1.5 * static_cast<double>((i * 7) % 5) / 4.0);
                for (index_t j = 0; j < cols; ++j)
                    if (u(gen) < pi) m.set(b, h, i, j);
            }
    return m;
}

/// A copy of @p m with each set bit cleared with probability @p drop (a subset of @p m).
inline deq::bit_mask thin(deq::bit_mask const& m, double drop, std::uint64_t seed) {
    deq::bit_mask out = m;
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (index_t b = 0; b < m.batch(); ++b)
        for (index_t h = 0; h < m.heads(); ++h)
            for (index_t i = 0; i < m.rows(); ++i)
                for (index_t j = 0; j < m.cols(); ++j)
                    if (m.test(b, h, i, j) && u(gen) < drop) out.set(b, h, i, j, false);
    return out;
}

/// A tiny architecture of design @p d: 4 x 4 PEs, 4 exp units, 4-column windows, a 4 x 4 predictor array.
inline deq::accel::architecture tiny(deq::accel::design d) {
    deq::accel::architecture a = deq::accel::architecture::of(d);
    a.rows = 4;
    a.cols = 4;
    a.exp_units = 4;
    a.window = 4;
    a.predictor_rows = 4;
    a.predictor_cols = 4;
    return a;
}

/// A workload without padding.
inline deq::accel::attention_workload workload(index_t batch, index_t heads, index_t L, index_t d, index_t dv,
                                               deq::const_bit_mask_view kept, deq::const_bit_mask_view refined,
                                               int predictor_bits) {
    deq::accel::attention_workload w;
    w.batch = batch;
    w.heads = heads;
    w.lq = L;
    w.lk = L;
    w.dim = d;
    w.dv = dv;
    w.kept = kept;
    w.refined = refined;
    w.predictor_bits = predictor_bits;
    return w;
}

}  // namespace accel_test
