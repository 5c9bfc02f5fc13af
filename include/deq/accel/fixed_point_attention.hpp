/// @file
/// @brief `deq::accel::fixed_point_attention`: attention computed the way the modelled datapath does it
/// (numerics_mode::fixed_point of the accelerator space): fixed-point operands, integer
/// multiply-accumulate, the exp unit in fixed point, un-normalised SpMM and one division per output.
///
/// Per query row (b, h, i), over its active keys A (kept real keys; see below):
///
///     q̃, k̃, ṽ = round(x · 2^F)                              (operand_bits wide, F = operand_frac_bits)
///     s_j = round(Σ_t q̃_t k̃_jt · 2^(Fs − 2F) / √d)          (exact entries; Fs = score_frac_bits)
///     s_j = round(Ŝ_ij · 2^Fs)                              (unrefined entries, DEQ: the predicted score)
///     e_j = exp_unit(s_j − max_A s)                          (exact or Sanger's LUT, Fs fraction bits)
///     o_t = (Σ_j e_j ṽ_jt) / (Σ_j e_j) · 2^-F               (integer sums; one division per output)
///
/// Pruned and padded keys are skipped (their weight is exactly 0 in the host kernels too). A row with no
/// kept real key follows the options' empty_row_policy: `reference` uses every real key without
/// penalty (the host's float32 penalty arithmetic is close to that, see deq/attention/options.hpp),
/// `uniform` weights the real keys equally, `zero` writes zeros; a row without any real key uses every key.
///
/// Nothing is clamped: an operand or score that does not fit its format throws deq::numeric_error naming
/// the tensor, the index and the format; accumulators too narrow for the shapes throw
/// deq::invalid_argument before any work. The error against the host float kernels is bounded in
/// docs/accelerator.md and tested.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../attention/options.hpp"
#include "../core/accumulator.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "architecture.hpp"
#include "datapath.hpp"

namespace deq::accel {

namespace detail {

/// Converts @p x to a checked fixed-point integer.
inline std::int64_t checked_fixed(double x, int frac, int bits, char const* tensor, index_t b, index_t h, index_t i,
                                  index_t t) {
    std::int64_t const v = to_fixed(x, frac);
    if (!std::isfinite(x) || !fits_signed(v, bits)) {
        throw numeric_error(::deq::detail::concat("deq: value ", x, " of '", tensor, "' at [", b, ", ", h, ", ", i, ", ", t,
                                                  "] does not fit the ", bits, "-bit fixed-point format with ", frac,
                                                  " fraction bits"));
    }
    return v;
}

}  // namespace detail

/// Computes attention on the fixed-point datapath of @p arch (see the file documentation).
/// @tparam T Element type.
/// @param arch    The architecture (its `operand_bits` and `numerics`; validated).
/// @param q       Queries [B, H, Lq, d].
/// @param k       Keys [B, H, Lk, d].
/// @param v       Values [B, H, Lk, dv].
/// @param out     Output [B, H, Lq, dv].
/// @param options Padding, kept / refined masks, predicted scores and the empty-row policy (shapes are
///                assumed validated, as attention() does).
/// @throws deq::invalid_argument when an accumulator cannot hold the sums of this shape;
///         deq::numeric_error for a value that does not fit its fixed-point format.
template <class T>
void fixed_point_attention(architecture const& arch, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                           tensor_view<T const, 4> v, tensor_view<T, 4> out, attention_options<accum_t<T>> const& options) {
    arch.validate();
    datapath_numerics const& nm = arch.numerics;
    int const W = arch.operand_bits, F = nm.operand_frac_bits, Fs = nm.score_frac_bits;
    index_t const B = q.extent(0), H = q.extent(1), Lq = q.extent(2), d = q.extent(3), Lk = k.extent(2), dv = v.extent(3);
    int const dot_bits = 2 * (W - 1) + bit_length(static_cast<std::uint64_t>(d)) + 1;
    int const av_bits = Fs + 1 + (W - 1) + bit_length(static_cast<std::uint64_t>(Lk)) + 1;
    if (dot_bits > nm.accumulator_bits || av_bits > nm.accumulator_bits) {
        ::deq::detail::throw_invalid_argument(
            "numerics.accumulator_bits", nm.accumulator_bits,
            ::deq::detail::concat("cannot hold the score sums (", dot_bits, " bits for d = ", d, ") and the exp·v sums (",
                                  av_bits, " bits for Lk = ", Lk, ")"));
    }
    exp_unit const unit(Fs, nm.exp, nm.lut_bits);
    double const score_scale = std::ldexp(1.0, Fs - 2 * F) / std::sqrt(static_cast<double>(d));
    std::vector<std::int64_t> qf(static_cast<std::size_t>(d)), kf(static_cast<std::size_t>(Lk * d)), vf(static_cast<std::size_t>(Lk * dv));
    std::vector<std::int64_t> s(static_cast<std::size_t>(Lk)), acc(static_cast<std::size_t>(dv));
    std::vector<index_t> active;
    for (index_t b = 0; b < B; ++b) {
        for (index_t h = 0; h < H; ++h) {
            for (index_t j = 0; j < Lk; ++j) {
                for (index_t t = 0; t < d; ++t)
                    kf[static_cast<std::size_t>(j * d + t)] = detail::checked_fixed(static_cast<double>(k(b, h, j, t)), F, W, "k", b, h, j, t);
                for (index_t t = 0; t < dv; ++t)
                    vf[static_cast<std::size_t>(j * dv + t)] = detail::checked_fixed(static_cast<double>(v(b, h, j, t)), F, W, "v", b, h, j, t);
            }
            for (index_t i = 0; i < Lq; ++i) {
                for (index_t t = 0; t < d; ++t)
                    qf[static_cast<std::size_t>(t)] = detail::checked_fixed(static_cast<double>(q(b, h, i, t)), F, W, "q", b, h, i, t);
                active.clear();
                bool any_real = false;
                for (index_t j = 0; j < Lk; ++j) {
                    bool const real = options.padding.is_valid(b, j);
                    any_real = any_real || real;
                    if (real && (options.kept.empty() || options.kept.test(b, h, i, j))) active.push_back(j);
                }
                bool uniform = false;
                if (active.empty()) {
                    if (options.empty_rows == empty_row_policy::zero) {
                        for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = static_cast<T>(0.0);
                        continue;
                    }
                    uniform = options.empty_rows == empty_row_policy::uniform;
                    for (index_t j = 0; j < Lk; ++j)
                        if (!any_real || options.padding.is_valid(b, j)) active.push_back(j);
                }
                std::int64_t mx = 0;
                bool first = true;
                for (index_t j : active) {
                    std::int64_t sj = 0;
                    bool const exact = options.refined.empty() || options.refined.test(b, h, i, j);
                    if (exact) {
                        std::int64_t dot = 0;
                        for (index_t t = 0; t < d; ++t) dot += qf[static_cast<std::size_t>(t)] * kf[static_cast<std::size_t>(j * d + t)];
                        sj = to_fixed(static_cast<double>(dot) * score_scale, 0);
                    } else {
                        sj = to_fixed(static_cast<double>(options.predicted(b, h, i, j)), Fs);
                    }
                    if (!fits_signed(sj, nm.score_bits)) {
                        throw numeric_error(::deq::detail::concat("deq: the score at [", b, ", ", h, ", ", i, ", ", j, "] (",
                                                                  std::ldexp(static_cast<double>(sj), -Fs), ") does not fit the ",
                                                                  nm.score_bits, "-bit score format with ", Fs, " fraction bits"));
                    }
                    s[static_cast<std::size_t>(j)] = sj;
                    mx = first ? sj : std::max(mx, sj);
                    first = false;
                }
                std::int64_t sum = 0;
                std::fill(acc.begin(), acc.end(), 0);
                for (index_t j : active) {
                    std::int64_t const e = uniform ? (std::int64_t{1} << Fs) : unit(s[static_cast<std::size_t>(j)] - mx);
                    sum += e;
                    for (index_t t = 0; t < dv; ++t) acc[static_cast<std::size_t>(t)] += e * vf[static_cast<std::size_t>(j * dv + t)];
                }
                for (index_t t = 0; t < dv; ++t) {
                    double const o = sum > 0 ? std::ldexp(static_cast<double>(acc[static_cast<std::size_t>(t)]) / static_cast<double>(sum), -F) : 0.0;
                    out(b, h, i, t) = static_cast<T>(o);
                }
            }
        }
    }
}

}  // namespace deq::accel
