/// @file
/// @brief Sanger's low-bit attention-score predictor (`quant_qk_matmul` of the reference):
/// `deq::predictor_config`, `deq::calibrate_predictor` and `deq::predict_scores`.
///
/// For every query row q_i and key row k_j of one (batch, head), over the head dimension d:
///
///     qn_i = ‖q_i‖₂,  q̂_i = q_i / qn_i,      kn_j = ‖k_j‖₂,  k̂_j = k_j / kn_j
///     sx = (2^(bits-1) - 1) / threshold_q,    sy = (2^(bits-1) - 1) / threshold_k
///     Q = clamp(round_half_even(q̂ · sx), ±(2^(bits-1) - 1)),   K likewise with sy
///     Ŝ_ij = S(Σ_t Q[i,t]·K[j,t]) / (sx·sy) · (qn_i · kn_j) / sqrt(d)
///
/// The dot product of the levels is exact (integer accumulation); the rest runs in the score type
/// `S = deq::accum_t<T>` (float for float and 16-bit inputs, double for double) in the order above,
/// which matches the reference's float matmul of dequantized values `(Q/sx)·(K/sy)` followed by
/// `· qn·kn` and `/ sqrt(d)` to within rounding of the reference's own summation (about 1e-6 relative
/// for float). Norms are computed from a sum of squares accumulated in double and rounded once to S.
///
/// **Zero-norm rows.** The reference divides by the norm without an epsilon, so an all-zero q_i or k_j
/// gives NaN scores. deq defines the normalised vector of a zero-norm row as 0 (all levels 0), hence
/// Ŝ_ij = 0 for the whole row i (zero q_i) or column j (zero k_j).
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <tuple>
#include <vector>

#include "../core/accumulator.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../numeric/finite.hpp"
#include "../quant/symmetric_scalar.hpp"
#include "../core/checked_size.hpp"
#include "detail/predictor_kernels.hpp"
#include "detail/predictor_tiles.hpp"

namespace deq {

/// Parameters of Sanger's low-bit score predictor (the reference `QuantizedMatMul`, symmetric,
/// one threshold per operand and attention layer, shared over batch, heads and positions).
struct predictor_config {
    /// Clipping threshold of the L2-normalised q rows (the reference buffer `input_x_thresh`); finite, > 0.
    double threshold_q = 0;
    /// Clipping threshold of the L2-normalised k rows (the reference buffer `input_y_thresh`); finite, > 0.
    double threshold_k = 0;
    /// Bit width of the quantized q and k: 2..8 or 16 (the reference uses 4, i.e. levels in [-7, 7]).
    int bits = 4;

    /// Checks every field; throws deq::invalid_argument naming the field and its value.
    void validate() const {
        check_threshold("predictor_config.threshold_q", threshold_q);
        check_threshold("predictor_config.threshold_k", threshold_k);
        if (!((bits >= 2 && bits <= 8) || bits == 16)) {
            detail::throw_invalid_argument("predictor_config.bits", bits, "must be in [2, 8] or 16");
        }
    }

private:
    static void check_threshold(char const* name, double value) {
        if (!(std::isfinite(value) && value > 0)) detail::throw_invalid_argument(name, value, "must be finite and > 0");
    }
};

namespace detail {

/// Throws deq::numeric_error for the first non-finite element of tensor @p name, given per-row statuses.
/// @tparam T Element type.
/// @param name   Tensor name.
/// @param x      The tensor.
/// @param status Per-row status from predictor_quantize_rows.
/// @param value  The element (b, h, i, t) of @p x as a double (a device backend copies it from the device).
template <class T, class Value>
void predictor_check_rows(char const* name, tensor_view<T const, 4> x, std::vector<index_t> const& status, Value const& value) {
    index_t const heads = x.extent(1), length = x.extent(2);
    for (std::size_t r = 0; r < status.size(); ++r) {
        index_t const st = status[r];
        if (st == predictor_row_ok) continue;
        index_t b = 0, h = 0, i = 0;
        predictor_split_row(static_cast<index_t>(r), heads, length, b, h, i);
        if (st == predictor_row_norm_overflow) {
            throw numeric_error(concat("deq: the L2 norm of row [", b, ", ", h, ", ", i, "] of '", name,
                                       "' overflows the score type"));
        }
        throw_non_finite_element(name, value(b, h, i, st), b, h, i, st);
    }
}

/// predictor_check_rows() of host rows.
/// @tparam T Element type.
/// @param name   Tensor name.
/// @param x      The tensor.
/// @param status Per-row status from predictor_quantize_rows.
template <class T>
void predictor_check_rows(char const* name, tensor_view<T const, 4> x, std::vector<index_t> const& status) {
    predictor_check_rows(name, x, status, [&](index_t b, index_t h, index_t i, index_t t) { return static_cast<double>(x(b, h, i, t)); });
}

/// Checks that q is [B, H, Lq, d] and k is [B, H, Lk, d] with no zero extent.
/// @tparam T Element type.
/// @param q Queries.
/// @param k Keys.
template <class T>
void predictor_check_shapes(tensor_view<T const, 4> q, tensor_view<T const, 4> k) {
    for (int r = 0; r < 4; ++r) {
        if (q.extent(r) == 0) throw_shape_error(concat("'q' has shape ", q.shape_string(), ": no extent may be zero"));
        if (k.extent(r) == 0) throw_shape_error(concat("'k' has shape ", k.shape_string(), ": no extent may be zero"));
    }
    if (q.extent(0) != k.extent(0) || q.extent(1) != k.extent(1) || q.extent(3) != k.extent(3)) {
        throw_shape_error(concat("'q' has shape ", q.shape_string(), " and 'k' has shape ", k.shape_string(),
                                 ": batch, heads and head dimension must agree"));
    }
}

/// Converts a threshold to the score type and returns its scale, throwing if either is unusable in S.
/// @tparam S Score type.
/// @param name      Field name for errors.
/// @param threshold The threshold.
/// @param bits      Bit width.
/// @return `(2^(bits-1) - 1) / S(threshold)`.
template <class S>
S predictor_scale(char const* name, double threshold, int bits) {
    S const t = static_cast<S>(threshold);
    S const scale = quant::symmetric_scale<S>(bits, t);
    if (!(t > S(0) && std::isfinite(t) && std::isfinite(scale) && scale > S(0))) {
        throw_invalid_argument(name, threshold, "is not representable as a usable threshold in the score type");
    }
    return scale;
}

/// The two quantization scales and their product, checked in the score type.
/// @tparam S Score type.
/// @param config The predictor configuration (validated).
/// @return {sx, sy, sx · sy}.
template <class S>
std::tuple<S, S, S> predictor_scales(predictor_config const& config) {
    S const sx = predictor_scale<S>("predictor_config.threshold_q", config.threshold_q, config.bits);
    S const sy = predictor_scale<S>("predictor_config.threshold_k", config.threshold_k, config.bits);
    S const sxy = sx * sy;
    if (!(std::isfinite(sxy) && sxy > S(0))) {
        throw_invalid_argument("predictor_config.threshold_q * threshold_k", config.threshold_q * config.threshold_k,
                               "gives a product of scales outside the range of the score type");
    }
    return {sx, sy, sxy};
}

/// Throws deq::numeric_error when the product of the largest query and key norms overflows S.
/// @tparam S Score type.
/// @param q_norms The query rows' norms.
/// @param k_norms The key rows' norms.
template <class S>
void predictor_check_norm_product(std::vector<S> const& q_norms, std::vector<S> const& k_norms) {
    S q_max = 0, k_max = 0;
    for (S n : q_norms) q_max = n > q_max ? n : q_max;
    for (S n : k_norms) k_max = n > k_max ? n : k_max;
    if (!std::isfinite(q_max * k_max)) {
        throw numeric_error(concat("deq: the product of the largest row norms of 'q' (", static_cast<double>(q_max), ") and 'k' (",
                                   static_cast<double>(k_max), ") overflows the score type"));
    }
}

/// Throws the deq::numeric_error of a predicted score (b, h, i, j) that is not finite.
/// @param b Batch.
/// @param h Head.
/// @param i Query row.
/// @param j Key.
/// @param v The score.
[[noreturn]] inline void throw_predicted_score_overflow(index_t b, index_t h, index_t i, index_t j, double v) {
    throw numeric_error(concat("deq: predicted score [", b, ", ", h, ", ", i, ", ", j, "] = ", v, " overflows the score type (row [", b,
                               ", ", h, ", ", i, "] of 'q' and row [", b, ", ", h, ", ", j, "] of 'k' have too large norms)"));
}

/// Throws deq::numeric_error for the first predicted score that is not finite: rows whose norms multiply
/// to a finite value can still overflow the score type, because the dequantized dot product of two unit
/// rows can exceed 1 (rounding to the levels lengthens them).
/// @tparam S Score type.
/// @param scores The predicted scores.
template <class S>
void predictor_check_scores(tensor_view<S, 4> const& scores) {
    for (index_t b = 0; b < scores.extent(0); ++b)
        for (index_t h = 0; h < scores.extent(1); ++h)
            for (index_t i = 0; i < scores.extent(2); ++i)
                for (index_t j = 0; j < scores.extent(3); ++j) {
                    S const v = scores(b, h, i, j);
                    if (!std::isfinite(v)) throw_predicted_score_overflow(b, h, i, j, static_cast<double>(v));
                }
}

/// Quantizes the rows of @p x into @p levels / @p norms on @p space and checks them.
/// @tparam Space Execution space.
/// @tparam T     Element type.
/// @tparam S     Score type.
/// @tparam Level Level storage type.
/// @param space  The space.
/// @param name   Tensor name for errors.
/// @param x      The rows.
/// @param scale  Quantization scale.
/// @param bits   Bit width.
/// @param levels Output levels, [rows][ld] (entries past d are 0).
/// @param norms  Output norms.
/// @param ld     Row stride of the levels (0: the head dimension).
template <class Space, class T, class S, class Level>
void predictor_quantize(Space const& space, char const* name, tensor_view<T const, 4> x, S scale, int bits,
                        std::vector<Level>& levels, std::vector<S>& norms, index_t ld = 0,
                        arch::isa tier = arch::isa::portable) {
    if (ld == 0) ld = x.extent(3);
    index_t const rows = x.extent(0) * x.extent(1) * x.extent(2);
    levels.assign(checked_bytes("predictor levels", checked_size("predictor levels", {rows, ld}), sizeof(Level)) / sizeof(Level),
                  Level(0));
    norms.assign(static_cast<std::size_t>(rows), S(0));
    std::vector<index_t> status(static_cast<std::size_t>(rows), predictor_row_ok);
    index_t const blocks = rows / predictor_quantize_block + (rows % predictor_quantize_block != 0 ? 1 : 0);
    exec::parallel_for(space, blocks,
                       predictor_quantize_blocks<T, S, Level>{
                           predictor_quantize_rows<T, S, Level>{x, levels.data(), norms.data(), status.data(), scale, bits, ld, tier}, rows});
    predictor_check_rows(name, x, status);
}

/// Validates, normalises and quantizes q and k for the active tier (see predictor_tiles.hpp).
/// @tparam Space Execution space.
/// @tparam T     Element type.
/// @tparam S     Score type.
/// @tparam Level Level storage type.
/// @param space  The space.
/// @param q      Queries.
/// @param k      Keys.
/// @param config Predictor configuration (validated by the caller).
/// @return The operands of the score tiles.
template <class Space, class T, class S, class Level>
predictor_operands<S, Level> make_predictor_operands(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                                     predictor_config const& config) {
    auto const [sx, sy, sxy] = predictor_scales<S>(config);
    predictor_operands<S, Level> o;
    o.batch = q.extent(0);
    o.heads = q.extent(1);
    o.lq = q.extent(2);
    o.lk = k.extent(2);
    o.dim = q.extent(3);
    o.tier = std::is_same_v<Level, std::int8_t> && o.dim < 65536 ? predictor_tier(config.bits) : arch::isa::portable;
    o.ld = o.tier == arch::isa::portable ? o.dim : predictor_level_stride(o.dim);
    o.scale_product = sxy;
    o.sqrt_d = static_cast<S>(std::sqrt(static_cast<double>(o.dim)));
    predictor_quantize(space, "q", q, sx, config.bits, o.q_levels, o.q_norms, o.ld, o.tier);
    predictor_quantize(space, "k", k, sy, config.bits, o.k_levels, o.k_norms, o.ld, o.tier);

    predictor_check_norm_product(o.q_norms, o.k_norms);
    index_t const bh = o.batch * o.heads;
    if (o.tier != arch::isa::portable) {
        index_t const block = o.tier == arch::isa::avx512 ? 16 : 8;
        index_t const blocks = o.lk / block + (o.lk % block != 0 ? 1 : 0);
        o.k_packed_stride = checked_size("packed predictor keys", {blocks, block, o.ld});
        std::size_t const bytes = checked_bytes("packed predictor keys", checked_size("packed predictor keys", {bh, o.k_packed_stride}), 1);
        if (o.tier == arch::isa::avx512) {
            o.k_packed.assign(bytes, 0);
            o.q_offset.assign(o.q_norms.size(), 0);
            exec::parallel_for(space, bh * o.lq, predictor_offset_kernel<Level>{o.q_levels.data(), o.ld, o.q_offset.data()});
        } else {
            o.k_packed_s8.assign(bytes, 0);
        }
        exec::parallel_for(space, bh, predictor_pack_kernel<S, Level>{&o});
        o.reciprocal = predictor_reciprocal(o);
        std::tie(o.sqrt_d_hi, o.sqrt_d_lo) = predictor_sqrt_d_split(o);
    }
    return o;
}

/// The predictor with a given level storage type (arguments already validated).
/// @tparam Space Execution space.
/// @tparam T     Element type.
/// @tparam S     Score type.
/// @tparam Level Level storage type.
/// @param space  The space.
/// @param q      Queries.
/// @param k      Keys.
/// @param config Predictor configuration.
/// @param scores Output scores.
template <class Space, class T, class S, class Level>
void predict_scores_with(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                         predictor_config const& config, tensor_view<S, 4> scores) {
    predictor_operands<S, Level> const o = make_predictor_operands<Space, T, S, Level>(space, q, k, config);
    index_t const blocks = o.lq / predictor_tile_rows + (o.lq % predictor_tile_rows != 0 ? 1 : 0);
    exec::parallel_for(space, o.batch * o.heads * blocks, predictor_scores_kernel<S, Level>{&o, scores});
    predictor_check_scores(scores);
}

}  // namespace detail

/// Calibrates the predictor thresholds from data: the absolute maximum of the L2-normalised rows of
/// @p q and of @p k (what the reference's first calibration step stores in `input_x_thresh` /
/// `input_y_thresh`). Normalisation is computed exactly as in predict_scores(); zero-norm rows contribute 0.
/// If every row of a tensor has zero norm, its threshold is 1 (any positive threshold gives all-zero levels).
/// @tparam T Element type.
/// @param q    Queries, [B, H, Lq, d].
/// @param k    Keys, [B, H, Lk, d].
/// @param bits Bit width stored in the result (validated: 2..8 or 16).
/// @return `{threshold_q, threshold_k, bits}`.
template <class T>
predictor_config calibrate_predictor(tensor_view<T const, 4> q, tensor_view<T const, 4> k, int bits = 4) {
    using S = accum_t<T>;
    detail::predictor_check_shapes(q, k);
    auto absmax = [](char const* name, tensor_view<T const, 4> x) {
        S m = 0;
        for (index_t b = 0; b < x.extent(0); ++b)
            for (index_t h = 0; h < x.extent(1); ++h)
                for (index_t i = 0; i < x.extent(2); ++i) {
                    S norm = 0;
                    index_t bad = detail::predictor_row_ok;
                    if (!detail::predictor_row_norm(x, b, h, i, norm, bad)) {
                        detail::throw_non_finite_element(name, static_cast<double>(x(b, h, i, bad)), b, h, i, bad);
                    }
                    if (!std::isfinite(norm)) {
                        throw numeric_error(detail::concat("deq: the L2 norm of row [", b, ", ", h, ", ", i, "] of '",
                                                           name, "' overflows the score type"));
                    }
                    if (norm == S(0)) continue;
                    for (index_t t = 0; t < x.extent(3); ++t) {
                        S const a = std::fabs(static_cast<S>(x(b, h, i, t)) / norm);
                        m = a > m ? a : m;
                    }
                }
        return m == S(0) ? 1.0 : static_cast<double>(m);
    };
    predictor_config config{absmax("q", q), absmax("k", k), bits};
    config.validate();
    return config;
}

/// Predicts the attention scores with Sanger's low-bit predictor (see the file documentation for the
/// exact formula, and for zero-norm rows, which give Ŝ = 0).
///
/// Each row of q and k is normalised and quantized once (one work item per row), then one work item
/// computes each score row (b, h, i). Results do not depend on the execution space.
/// @tparam Space A host execution space (the function allocates host buffers for the levels).
/// @tparam T     Element type of q and k.
/// @param space  Execution space.
/// @param q      Queries, [B, H, Lq, d].
/// @param k      Keys, [B, H, Lk, d] (not transposed).
/// @param config Thresholds and bit width (validated).
/// @param scores Output Ŝ, [B, H, Lq, Lk], in `accum_t<T>`; may be strided.
/// @throws deq::invalid_argument for a bad @p config, deq::shape_error for mismatched or zero extents,
///         deq::numeric_error for NaN/Inf in q or k (naming the tensor and the index), overflowing norms or a
///         predicted score that overflows the score type (naming the score's index).
template <exec::host_execution_space Space, class T>
void predict_scores(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                    predictor_config const& config, tensor_view<accum_t<T>, 4> scores) {
    config.validate();
    detail::predictor_check_shapes(q, k);
    if (scores.extent(0) != q.extent(0) || scores.extent(1) != q.extent(1) || scores.extent(2) != q.extent(2) ||
        scores.extent(3) != k.extent(2)) {
        detail::throw_shape_error(detail::concat("'scores' has shape ", scores.shape_string(), ", expected [", q.extent(0),
                                                 ", ", q.extent(1), ", ", q.extent(2), ", ", k.extent(2), "]"));
    }
    if (config.bits <= 8) {
        detail::predict_scores_with<Space, T, accum_t<T>, std::int8_t>(space, q, k, config, scores);
    } else {
        detail::predict_scores_with<Space, T, accum_t<T>, std::int16_t>(space, q, k, config, scores);
    }
}

/// Convenience overload of predict_scores() for views of non-const q and/or k.
/// @tparam Space A host execution space.
/// @tparam TQ    Element type of the q view (const or not).
/// @tparam TK    Element type of the k view (same type up to const).
/// @param space  Execution space.
/// @param q      Queries, [B, H, Lq, d].
/// @param k      Keys, [B, H, Lk, d].
/// @param config Thresholds and bit width.
/// @param scores Output Ŝ, [B, H, Lq, Lk].
template <exec::host_execution_space Space, class TQ, class TK>
    requires(std::same_as<std::remove_const_t<TQ>, std::remove_const_t<TK>> &&
             (!std::is_const_v<TQ> || !std::is_const_v<TK>))
void predict_scores(Space const& space, tensor_view<TQ, 4> q, tensor_view<TK, 4> k, predictor_config const& config,
                    tensor_view<accum_t<std::remove_const_t<TQ>>, 4> scores) {
    using T = std::remove_const_t<TQ>;
    predict_scores(space, tensor_view<T const, 4>(q), tensor_view<T const, 4>(k), config, scores);
}

/// Predicts the attention scores into a new tensor (see predict_scores()).
/// @tparam Space A host execution space.
/// @tparam T     Element type of q and k.
/// @param space  Execution space.
/// @param q      Queries, [B, H, Lq, d].
/// @param k      Keys, [B, H, Lk, d].
/// @param config Thresholds and bit width.
/// @return Ŝ, [B, H, Lq, Lk], in `accum_t<T>`.
template <exec::host_execution_space Space, class T>
tensor<accum_t<T>, 4> predict_scores(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                                     predictor_config const& config) {
    detail::predictor_check_shapes(q, k);
    tensor<accum_t<T>, 4> scores({q.extent(0), q.extent(1), q.extent(2), k.extent(2)});
    predict_scores(space, q, k, config, scores.view());
    return scores;
}

}  // namespace deq
