/// @file
/// @brief The predictor's integer datapath as the hardware computes it: `deq::accel::systolic_matmul`
/// emulates an output-stationary systolic array of low-bit PEs cycle by cycle (operands enter skewed
/// from the left and the top, every PE multiplies and accumulates in an integer register of a given
/// width), and `deq::accel::predict_scores_on_array` produces Sanger's predicted scores Ŝ from it.
///
/// The levels come from the host quantizer of deq/predict (the hardware's quantizer unit is not
/// modelled separately); the dequantisation `S(dot) / (sx·sy) · (‖q_i‖·‖k_j‖) / √d` is the host
/// predictor's, in the same order, so Ŝ equals deq::predict_scores bit for bit (tested).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core/accumulator.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/serial.hpp"
#include "../predict/sanger_predictor.hpp"
#include "../quant/symmetric_scalar.hpp"
#include "architecture.hpp"
#include "datapath.hpp"

namespace deq::accel {

/// Result of systolic_matmul().
struct systolic_result {
    /// The products, `M × N`, row-major: `out[i·N + j] = Σ_t a[i·K + t] · b[j·K + t]`.
    std::vector<std::int64_t> out;
    /// Cycles the emulation ran: `K + R + C − 2` per tile (tiles run one after another here).
    index_t cycles = 0;
    /// Multiply-accumulates performed (`M·N·K`).
    index_t macs = 0;
};

/// Emulates `A · Bᵀ` (A: M × K, B: N × K, row-major integers) on an output-stationary `R × C`
/// systolic array, cycle by cycle: row r of a tile receives `a[r][t]` at cycle `t + r` from the left,
/// column c receives `b[c][t]` at cycle `t + c` from the top, operands move one PE per cycle, and
/// each PE accumulates its products in a `acc_bits`-bit two's-complement register.
/// @param a         A, M × K.
/// @param b         B, N × K.
/// @param M         Rows of A.
/// @param N         Rows of B.
/// @param K         Reduction length.
/// @param R         Array rows.
/// @param C         Array columns.
/// @param operand_bits Operand width (every operand must be a symmetric level of this width).
/// @param acc_bits  Accumulator width.
/// @return The products, the cycles and the MAC count.
/// @throws deq::invalid_argument for an operand outside `±(2^(operand_bits−1) − 1)` (naming the matrix and
///         index) or an array of zero size; deq::numeric_error if an accumulator overflows.
inline systolic_result systolic_matmul(std::vector<int> const& a, std::vector<int> const& b, index_t M, index_t N,
                                       index_t K, index_t R, index_t C, int operand_bits, int acc_bits) {
    if (R < 1) ::deq::detail::throw_invalid_argument("rows", R, "must be >= 1");
    if (C < 1) ::deq::detail::throw_invalid_argument("cols", C, "must be >= 1");
    if (static_cast<index_t>(a.size()) != M * K || static_cast<index_t>(b.size()) != N * K) {
        ::deq::detail::throw_shape_error(::deq::detail::concat("systolic_matmul: A has ", a.size(), " elements, B ", b.size(),
                                                               ", expected ", M * K, " and ", N * K));
    }
    std::int64_t const lim = (std::int64_t{1} << (operand_bits - 1)) - 1;
    for (std::size_t x = 0; x < a.size(); ++x)
        if (a[x] < -lim || a[x] > lim) ::deq::detail::throw_invalid_argument(::deq::detail::concat("A[", x, "]"), a[x], "does not fit the operand width");
    for (std::size_t x = 0; x < b.size(); ++x)
        if (b[x] < -lim || b[x] > lim) ::deq::detail::throw_invalid_argument(::deq::detail::concat("B[", x, "]"), b[x], "does not fit the operand width");
    systolic_result res;
    res.out.assign(static_cast<std::size_t>(M * N), 0);
    std::vector<int> areg(static_cast<std::size_t>(R * C)), breg(areg.size());
    std::vector<char> aval(areg.size()), bval(areg.size());
    std::vector<std::int64_t> acc(areg.size());
    for (index_t i0 = 0; i0 < M; i0 += R) {
        for (index_t j0 = 0; j0 < N; j0 += C) {
            std::fill(acc.begin(), acc.end(), 0);
            std::fill(aval.begin(), aval.end(), 0);
            std::fill(bval.begin(), bval.end(), 0);
            index_t const steps = K + R + C - 2;
            for (index_t t = 0; t < steps; ++t) {
                // Shift: a moves right, b moves down (update far PEs first).
                for (index_t r = R - 1; r >= 0; --r) {
                    for (index_t c = C - 1; c >= 0; --c) {
                        std::size_t const p = static_cast<std::size_t>(r * C + c);
                        if (c > 0) {
                            areg[p] = areg[p - 1];
                            aval[p] = aval[p - 1];
                        } else {
                            index_t const k = t - r, i = i0 + r;
                            aval[p] = (k >= 0 && k < K && i < M) ? 1 : 0;
                            areg[p] = aval[p] ? a[static_cast<std::size_t>(i * K + k)] : 0;
                        }
                        if (r > 0) {
                            breg[p] = breg[p - static_cast<std::size_t>(C)];
                            bval[p] = bval[p - static_cast<std::size_t>(C)];
                        } else {
                            index_t const k = t - c, j = j0 + c;
                            bval[p] = (k >= 0 && k < K && j < N) ? 1 : 0;
                            breg[p] = bval[p] ? b[static_cast<std::size_t>(j * K + k)] : 0;
                        }
                    }
                }
                for (std::size_t p = 0; p < acc.size(); ++p) {
                    if (!(aval[p] && bval[p])) continue;
                    acc[p] += static_cast<std::int64_t>(areg[p]) * static_cast<std::int64_t>(breg[p]);
                    ++res.macs;
                    if (!fits_signed(acc[p], acc_bits)) {
                        throw numeric_error(::deq::detail::concat("deq: the ", acc_bits, "-bit accumulator of PE (", p / static_cast<std::size_t>(C),
                                                                  ", ", p % static_cast<std::size_t>(C), ") overflows (value ", acc[p], ")"));
                    }
                }
                ++res.cycles;
            }
            for (index_t r = 0; r < R && i0 + r < M; ++r)
                for (index_t c = 0; c < C && j0 + c < N; ++c)
                    res.out[static_cast<std::size_t>((i0 + r) * N + j0 + c)] = acc[static_cast<std::size_t>(r * C + c)];
        }
    }
    return res;
}

/// Sanger's predicted scores computed on the emulated predictor array of @p arch
/// (`predictor_rows × predictor_cols` PEs of `low_bits`, `predictor_accumulator_bits` accumulators).
/// @tparam T Element type of q and k.
/// @param arch   The architecture (validated).
/// @param q      Queries [B, H, Lq, d].
/// @param k      Keys [B, H, Lk, d].
/// @param config Predictor thresholds and bit width.
/// @return Ŝ [B, H, Lq, Lk] in `accum_t<T>`, equal to deq::predict_scores.
/// @throws deq::invalid_argument when `config.bits` exceeds `low_bits` or the accumulator cannot hold
///         `qmax² · d`; otherwise as deq::predict_scores.
template <class T>
tensor<accum_t<T>, 4> predict_scores_on_array(architecture const& arch, tensor_view<T const, 4> q,
                                              tensor_view<T const, 4> k, predictor_config const& config) {
    using S = accum_t<T>;
    arch.validate();
    config.validate();
    ::deq::detail::predictor_check_shapes(q, k);
    if (config.bits > arch.low_bits) {
        ::deq::detail::throw_invalid_argument("predictor_config.bits", config.bits,
                                              ::deq::detail::concat("exceeds the datapath's low_bits = ", arch.low_bits));
    }
    index_t const dim = q.extent(3);
    std::int64_t const qmax = quant::max_symmetric_level(config.bits);
    if (bit_length(static_cast<std::uint64_t>(qmax * qmax * dim)) + 1 > arch.predictor_accumulator_bits) {
        ::deq::detail::throw_invalid_argument("architecture.predictor_accumulator_bits", arch.predictor_accumulator_bits,
                                              ::deq::detail::concat("cannot hold qmax² · d = ", qmax * qmax * dim));
    }
    S const sx = ::deq::detail::predictor_scale<S>("predictor_config.threshold_q", config.threshold_q, config.bits);
    S const sy = ::deq::detail::predictor_scale<S>("predictor_config.threshold_k", config.threshold_k, config.bits);
    S const sxy = sx * sy;
    std::vector<std::int16_t> ql, kl;
    std::vector<S> qn, kn;
    ::deq::detail::predictor_quantize(exec::serial{}, "q", q, sx, config.bits, ql, qn);
    ::deq::detail::predictor_quantize(exec::serial{}, "k", k, sy, config.bits, kl, kn);
    index_t const B = q.extent(0), H = q.extent(1), Lq = q.extent(2), Lk = k.extent(2);
    S const sqrt_d = static_cast<S>(std::sqrt(static_cast<double>(dim)));
    tensor<S, 4> scores({B, H, Lq, Lk});
    for (index_t bh = 0; bh < B * H; ++bh) {
        std::vector<int> a(static_cast<std::size_t>(Lq * dim)), bm(static_cast<std::size_t>(Lk * dim));
        for (std::size_t x = 0; x < a.size(); ++x) a[x] = ql[static_cast<std::size_t>(bh * Lq * dim) + x];
        for (std::size_t x = 0; x < bm.size(); ++x) bm[x] = kl[static_cast<std::size_t>(bh * Lk * dim) + x];
        systolic_result const r = systolic_matmul(a, bm, Lq, Lk, dim, arch.predictor_rows, arch.predictor_cols,
                                                  arch.low_bits, arch.predictor_accumulator_bits);
        index_t const b = bh / H, h = bh % H;
        for (index_t i = 0; i < Lq; ++i) {
            S const qni = qn[static_cast<std::size_t>(bh * Lq + i)];
            for (index_t j = 0; j < Lk; ++j) {
                std::int64_t const dot = r.out[static_cast<std::size_t>(i * Lk + j)];
                scores(b, h, i, j) = ::deq::detail::predictor_score_from_dot(static_cast<S>(dot), qni, kn[static_cast<std::size_t>(bh * Lk + j)], sxy, sqrt_d);
            }
        }
    }
    return scores;
}

}  // namespace deq::accel
