/// @file
/// @brief predict_scores() on deq::exec::cuda: Sanger's predictor on a GPU, with the host's bits.
///
/// The same validation, the same kernels and the same messages as the host predict_scores()
/// (deq/predict/sanger_predictor.hpp): the rows are normalised and quantized by the host's
/// predictor_quantize_rows functor (portable tier), and every score is predictor_score_value() of the
/// two level rows, which uses products and IEEE quotients only, so each Ŝ is bit-identical to the host's.
/// With int8 levels (4 and 8 bits) the dot products run in tiles of 32 x 32 scores with __dp4a from shared
/// memory (cuda_predictor_dp4a_tiles); with int16 levels one score per thread. No tensor cores yet.
/// q, k and scores must be device memory; the levels and norms live in device_arrays for the call.
#pragma once

#if !defined(__CUDACC__)
#error "deq/predict/cuda/predict_scores.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda)"
#endif

#include <cstdint>
#include <type_traits>
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

/// Query and key rows per tile of cuda_predictor_dp4a_tiles (a block of 32 x 8 threads, 4 scores each).
inline constexpr int predictor_dp4a_tile = 32;
/// Levels per chunk of the head dimension that a tile holds in shared memory (16 words of 4 levels).
inline constexpr int predictor_dp4a_chunk = 64;

/// Four int8 levels of a row starting at level @p t, packed into one word for __dp4a (levels at or past
/// @p dim read as 0, which adds nothing to the dot product).
__device__ inline int predictor_pack4(std::int8_t const* row, index_t t, index_t dim) {
    unsigned w = 0;
    for (int u = 0; u < 4; ++u) {
        unsigned const byte = t + u < dim ? static_cast<unsigned char>(row[t + u]) : 0u;
        w |= byte << (8 * u);
    }
    return static_cast<int>(w);
}

/// The predictor's scores of int8 levels whose dot products fit int32, in tiles of 32 query x 32 key
/// rows: the block stages the tiles' levels in shared memory, 16 words of 4 levels per row and chunk,
/// and every thread accumulates 4 dot products with __dp4a (exact integer arithmetic, so the same
/// integers as the host's loop), then applies predictor_score_from_dot(): the host's bits.
/// Each block loops over the tiles in steps of the grid.
/// @tparam S Score type.
/// @param k_scores The element kernel's arguments (levels, norms, output, scales, first_bad).
template <class S>
__global__ void cuda_predictor_dp4a_tiles(predictor_score_elements<S, std::int8_t> k_scores) {
    constexpr int tile = predictor_dp4a_tile, words = predictor_dp4a_chunk / 4;
    __shared__ int qs[tile][words];
    __shared__ int ks[tile][words + 1];
    tensor_view<S, 4> const& out = k_scores.scores;
    index_t const heads = out.extent(1), lq = out.extent(2), lk = out.extent(3), dim = k_scores.dim;
    index_t const qt = (lq + tile - 1) / tile, kt = (lk + tile - 1) / tile;
    index_t const tiles = out.extent(0) * heads * qt * kt;
    int const tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y), flat = ty * tile + tx;
    for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        index_t const bh = t / (qt * kt), rem = t - bh * (qt * kt), i0 = (rem / kt) * tile, j0 = (rem % kt) * tile;
        int dot[4] = {0, 0, 0, 0};
        for (index_t c = 0; c < dim; c += predictor_dp4a_chunk) {
            __syncthreads();  // the previous chunk's reads are done
            for (int e = flat; e < tile * words; e += tile * 8) {
                int const r = e / words, w = e - r * words;
                index_t const i = i0 + r, j = j0 + r;
                qs[r][w] = i < lq ? predictor_pack4(k_scores.q_levels + (bh * lq + i) * dim, c + 4 * w, dim) : 0;
                ks[r][w] = j < lk ? predictor_pack4(k_scores.k_levels + (bh * lk + j) * dim, c + 4 * w, dim) : 0;
            }
            __syncthreads();
            for (int w = 0; w < words; ++w) {
                int const kw = ks[tx][w];
                for (int u = 0; u < 4; ++u) dot[u] = __dp4a(qs[ty + 8 * u][w], kw, dot[u]);
            }
        }
        index_t const b = bh / heads, h = bh - b * heads, j = j0 + tx;
        for (int u = 0; u < 4; ++u) {
            index_t const i = i0 + ty + 8 * u;
            if (i >= lq || j >= lk) continue;
            S const v = predictor_score_from_dot(static_cast<S>(dot[u]), k_scores.q_norms[bh * lq + i], k_scores.k_norms[bh * lk + j], k_scores.sxy,
                                                 k_scores.sqrt_d);
            out(b, h, i, j) = v;
            if (!is_finite_value(v)) atomicMin(k_scores.first_bad, static_cast<unsigned long long>((bh * lq + i) * lk + j));
        }
    }
}

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
    predictor_score_elements<S, Level> const kernel{q_levels.device_data(), k_levels.device_data(), q_norms.device_data(),
                                                    k_norms.device_data(), scores, dim, predictor_dot_fits_int32<Level>(dim), sxy,
                                                    static_cast<S>(std::sqrt(static_cast<double>(dim))), first_bad.device_data()};
    if constexpr (std::is_same_v<Level, std::int8_t>) {
        if (kernel.fits_int32) {  // int8 levels: the dp4a tiles
            index_t const tile = predictor_dp4a_tile;
            index_t const tiles = q.extent(0) * q.extent(1) * ((q.extent(2) + tile - 1) / tile) * ((k.extent(2) + tile - 1) / tile);
            unsigned const grid = static_cast<unsigned>(tiles < (index_t{1} << 30) ? tiles : (index_t{1} << 30));
            cuda_predictor_dp4a_tiles<S><<<grid, dim3(predictor_dp4a_tile, 8), 0, space.stream()>>>(kernel);
            cuda_check(cudaGetLastError(), "kernel launch (deq::predict_scores on exec::cuda)");
            cuda_check(cudaStreamSynchronize(space.stream()), "cudaStreamSynchronize (after deq::predict_scores on exec::cuda)");
        } else {
            exec::parallel_for(space, count, kernel);
        }
    } else {
        exec::parallel_for(space, count, kernel);
    }
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
