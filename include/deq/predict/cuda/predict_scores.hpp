/// @file
/// @brief predict_scores() on deq::exec::cuda: Sanger's predictor on a GPU, with the host's bits.
///
/// The same validation, the same kernels and the same messages as the host predict_scores()
/// (deq/predict/sanger_predictor.hpp): the rows are normalised and quantized by the host's
/// predictor_quantize_rows functor (portable tier), and every score is predictor_score_value() of the
/// two level rows, which uses products and IEEE quotients only, so each Ŝ is bit-identical to the host's.
/// This first device version computes one score per thread (no tensor cores yet).
/// q, k and scores must be device memory; the levels and norms live in device_arrays for the call.
#pragma once

#if !defined(__CUDACC__)
#error "deq/predict/cuda/predict_scores.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cstdint>
#include <vector>

#include "../../core/accumulator.hpp"
#include "../../core/checked_size.hpp"
#include "../../core/error.hpp"
#include "../../core/tensor.hpp"
#include "../../cuda/device_array.hpp"
#include "../../exec/cuda.hpp"
#include "../../numeric/finite.hpp"
#include "../sanger_predictor.hpp"

namespace deq {

namespace detail {

/// Splits a flat index of a [B, H, Lq, Lk] grid into (b, h, i, j).
DEQ_HOST_DEVICE inline void predictor_split_score(index_t item, index_t heads, index_t lq, index_t lk, index_t& b, index_t& h,
                                                  index_t& i, index_t& j) {
    j = item % lk;
    predictor_split_row(item / lk, heads, lq, b, h, i);
}

/// Kernel: one predicted score per work item, Ŝ(b, h, i, j) = predictor_score_value() of query row
/// (b, h, i) and key row (b, h, j), written to a [B, H, Lq, Lk] view (any strides). A score that is
/// not finite lowers @p first_bad to its flat index (the host reports the first one in that order).
/// @tparam S     Score type.
/// @tparam Level Level storage.
template <class S, class Level>
struct predictor_score_elements {
    Level const* q_levels;         ///< [B·H·Lq][dim].
    Level const* k_levels;         ///< [B·H·Lk][dim].
    S const* q_norms;              ///< [B·H·Lq].
    S const* k_norms;              ///< [B·H·Lk].
    tensor_view<S, 4> scores;      ///< Output.
    index_t dim;                   ///< Head dimension.
    bool fits_int32;               ///< predictor_dot_fits_int32<Level>(dim).
    S sxy;                         ///< Product of the scales.
    S sqrt_d;                      ///< sqrt(d) in S.
    unsigned long long* first_bad; ///< Smallest flat index of a non-finite score (device memory).

    DEQ_HOST_DEVICE void operator()(index_t item) const {
        index_t const lk = scores.extent(3), row = item / lk;  // row = (b · H + h) · Lq + i
        index_t b = 0, h = 0, i = 0, j = 0;
        predictor_split_score(item, scores.extent(1), scores.extent(2), lk, b, h, i, j);
        index_t const bh = b * scores.extent(1) + h;
        S const v = predictor_score_value(q_levels + row * dim, k_levels + (bh * lk + j) * dim, dim, fits_int32, q_norms[row],
                                          k_norms[bh * lk + j], sxy, sqrt_d);
        scores(b, h, i, j) = v;
#if DEQ_DEVICE_PASS
        if (!is_finite_value(v)) atomicMin(first_bad, static_cast<unsigned long long>(item));
#else
        if (!is_finite_value(v) && static_cast<unsigned long long>(item) < *first_bad) *first_bad = static_cast<unsigned long long>(item);
#endif
    }
};

/// Normalises and quantizes the rows of a device tensor on the device, then checks them on the host
/// (the same messages as the host path).
/// @tparam T     Element type.
/// @tparam S     Score type.
/// @tparam Level Level storage.
/// @param space  The CUDA space.
/// @param name   Tensor name.
/// @param x      Device rows.
/// @param scale  Quantization scale.
/// @param bits   Bit width.
/// @param levels Output levels (allocated here).
/// @param norms  Output norms (allocated here).
/// @return The norms, copied to the host.
template <class T, class S, class Level>
std::vector<S> cuda_predictor_quantize(exec::cuda const& space, char const* name, tensor_view<T const, 4> x, S scale, int bits,
                                       cuda::device_array<Level>& levels, cuda::device_array<S>& norms) {
    index_t const rows = checked_size("predictor rows", {x.extent(0), x.extent(1), x.extent(2)});
    index_t const dim = x.extent(3);
    levels = cuda::device_array<Level>(checked_size("predictor levels", {rows, dim}), space.device());
    norms = cuda::device_array<S>(rows, space.device());
    cuda::device_array<index_t> status(rows, space.device());
    exec::parallel_for(space, rows,
                       predictor_quantize_rows<T, S, Level>{x, levels.device_data(), norms.device_data(), status.device_data(), scale, bits,
                                                            dim, arch::isa::portable});
    predictor_check_rows(name, x, cuda::to_host(status, space.stream()),
                         [&](index_t b, index_t h, index_t i, index_t t) { return static_cast<double>(cuda::copy_element_to_host(&x(b, h, i, t))); });
    return cuda::to_host(norms, space.stream());
}

/// predict_scores() on the device with a given level storage type (arguments validated).
template <class T, class S, class Level>
void cuda_predict_scores_with(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                              predictor_config const& config, tensor_view<S, 4> scores) {
    auto const [sx, sy, sxy] = predictor_scales<S>(config);
    cuda::device_array<Level> q_levels, k_levels;
    cuda::device_array<S> q_norms, k_norms;
    std::vector<S> const qn = cuda_predictor_quantize(space, "q", q, sx, config.bits, q_levels, q_norms);
    std::vector<S> const kn = cuda_predictor_quantize(space, "k", k, sy, config.bits, k_levels, k_norms);
    predictor_check_norm_product(qn, kn);
    index_t const dim = q.extent(3);
    index_t const count = checked_size("predicted scores", {q.extent(0), q.extent(1), q.extent(2), k.extent(2)});
    std::vector<unsigned long long> const none{~0ull};
    cuda::device_array<unsigned long long> first_bad = cuda::to_device(none, space.device(), space.stream());
    exec::parallel_for(space, count,
                       predictor_score_elements<S, Level>{q_levels.device_data(), k_levels.device_data(), q_norms.device_data(),
                                                          k_norms.device_data(), scores, dim, predictor_dot_fits_int32<Level>(dim), sxy,
                                                          static_cast<S>(std::sqrt(static_cast<double>(dim))), first_bad.device_data()});
    unsigned long long const bad = cuda::to_host(first_bad, space.stream())[0];
    if (bad != ~0ull) {
        index_t b = 0, h = 0, i = 0, j = 0;
        predictor_split_score(static_cast<index_t>(bad), scores.extent(1), scores.extent(2), scores.extent(3), b, h, i, j);
        throw_predicted_score_overflow(b, h, i, j, static_cast<double>(cuda::copy_element_to_host(&scores(b, h, i, j))));
    }
}

}  // namespace detail

/// predict_scores() on a GPU: the same arguments, checks, messages and bits as the host version, with
/// @p q, @p k and @p scores in device memory (e.g. deq::cuda::device_array).
/// @tparam T Element type of q and k (float or double).
/// @param space  The CUDA space (device and stream).
/// @param q      Queries, [B, H, Lq, d], device memory.
/// @param k      Keys, [B, H, Lk, d], device memory.
/// @param config Thresholds and bit width (validated).
/// @param scores Output Ŝ, [B, H, Lq, Lk], in `accum_t<T>`, device memory; may be strided.
/// @throws everything the host predict_scores() throws, deq::invalid_argument when an argument is host
///         memory, and deq::cuda_error when the device fails.
template <class T>
void predict_scores(exec::cuda const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k, predictor_config const& config,
                    tensor_view<accum_t<T>, 4> scores) {
    config.validate();
    detail::predictor_check_shapes(q, k);
    if (scores.extent(0) != q.extent(0) || scores.extent(1) != q.extent(1) || scores.extent(2) != q.extent(2) ||
        scores.extent(3) != k.extent(2)) {
        detail::throw_shape_error(detail::concat("'scores' has shape ", scores.shape_string(), ", expected [", q.extent(0), ", ",
                                                 q.extent(1), ", ", q.extent(2), ", ", k.extent(2), "]"));
    }
    cuda::require_device_memory("q", q.data(), 1);  // non-empty: checked above
    cuda::require_device_memory("k", k.data(), 1);  // non-empty: checked above
    cuda::require_device_memory("scores", scores.data(), 1);  // non-empty: checked above
    ::deq::cuda::device_scope const scope(space.device());
    if (config.bits <= 8) {
        detail::cuda_predict_scores_with<T, accum_t<T>, std::int8_t>(space, q, k, config, scores);
    } else {
        detail::cuda_predict_scores_with<T, accum_t<T>, std::int16_t>(space, q, k, config, scores);
    }
}

}  // namespace deq
