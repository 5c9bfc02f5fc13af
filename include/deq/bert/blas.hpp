/// @file
/// @brief `deq::bert::linear`: the fully connected layers of the encoder on a CBLAS `sgemm` (OpenBLAS on
/// Debian), and `deq::bert::set_blas_threads`.
///
/// Activations (x, y) are float, or double for the reference-precision forward pass (deq::bert::activation);
/// weights and biases are float32, the checkpoint's type. In double, each call widens the weight (exactly)
/// and runs `dgemm`: the result is PyTorch's `model.double()` arithmetic, at the cost of one conversion
/// per call.
///
/// Needs a CBLAS header (`cblas.h`) and library: link the `deq::bert` target, which finds OpenBLAS.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"

namespace deq::bert {

/// Activation types of the BERT encoder: float (the default) or double (reference precision).
/// @tparam T Candidate type.
template <class T>
concept activation = std::same_as<T, float> || std::same_as<T, double>;

}  // namespace deq::bert

namespace deq::detail {

/// Checks the operands of deq::bert::linear; see deq::bert::linear.
/// @tparam T Activation type.
/// @param x Input rows.
/// @param w Weight.
/// @param b Bias (may be empty).
/// @param y Output rows.
template <bert::activation T>
void bert_check_linear(tensor_view<T const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b, tensor_view<T, 2> y) {
    index_t const n = x.extent(0), in = x.extent(1), out = w.extent(0);
    if (w.extent(1) != in) {
        detail::throw_shape_error(detail::concat("linear: 'w' has shape ", w.shape_string(), " but 'x' has shape ", x.shape_string(),
                                                 ": the input features must agree"));
    }
    if (y.extent(0) != n || y.extent(1) != out) {
        detail::throw_shape_error(detail::concat("linear: 'y' has shape ", y.shape_string(), ", expected [", n, ", ", out, "]"));
    }
    if (!b.empty() && b.extent(0) != out) {
        detail::throw_shape_error(detail::concat("linear: 'b' has shape ", b.shape_string(), ", expected [", out, "]"));
    }
    if ((in > 1 && x.stride(1) != 1) || (out > 1 && y.stride(1) != 1) || !w.is_contiguous() || (!b.empty() && b.stride(0) != 1)) {
        detail::throw_shape_error("linear: the inner dimension of 'x', 'y', 'w' and 'b' must be contiguous");
    }
    if (n > 1 && (x.stride(0) < in || y.stride(0) < out)) {
        detail::throw_shape_error("linear: rows of 'x' or 'y' overlap (stride(0) smaller than the row)");
    }
}

/// deq::bert::linear without the checks (operands already checked by bert_check_linear()).
/// @tparam T Activation type.
/// @param x Input rows.
/// @param w Weight.
/// @param b Bias (may be empty).
/// @param y Output rows.
template <bert::activation T>
void bert_linear_unchecked(tensor_view<T const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b, tensor_view<T, 2> y) {
    index_t const n = x.extent(0), in = x.extent(1), out = w.extent(0);
    if (n == 0 || out == 0) return;
    index_t const ldx = n > 1 ? x.stride(0) : in;
    index_t const ldy = n > 1 ? y.stride(0) : out;
    if (ldx < in || ldy < out) detail::throw_shape_error("linear: rows of 'x' or 'y' overlap (stride(0) smaller than the row)");
    T beta = 0;
    if (!b.empty()) {
        for (index_t r = 0; r < n; ++r) std::copy(b.data(), b.data() + out, y.data() + r * ldy);
        beta = 1;
    }
    if (in == 0) {
        if (b.empty())
            for (index_t r = 0; r < n; ++r) std::fill(y.data() + r * ldy, y.data() + r * ldy + out, T(0));
        return;
    }
    if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out), static_cast<int>(in), 1.0f,
                    x.data(), static_cast<int>(ldx), w.data(), static_cast<int>(in), beta, y.data(), static_cast<int>(ldy));
    } else {
        std::vector<double> const wide(w.data(), w.data() + out * in);  // float -> double is exact
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out), static_cast<int>(in), 1.0,
                    x.data(), static_cast<int>(ldx), wide.data(), static_cast<int>(in), beta, y.data(), static_cast<int>(ldy));
    }
}

}  // namespace deq::detail

namespace deq::bert {


/// `y = x · wᵀ + b` with one `cblas_sgemm` (`cblas_dgemm` for double activations; row-major; the weight
/// is `[out, in]` as PyTorch's `nn.Linear` stores it). Rows of @p x and @p y may be strided (their leading
/// dimension is `stride(0)`), the inner dimension must be contiguous. @p y must not overlap the inputs.
/// @tparam T Activation type (float or double).
/// @param x Input rows, [n, in].
/// @param w Weight, [out, in], contiguous.
/// @param b Bias, [out], contiguous; an empty view means no bias.
/// @param y Output rows, [n, out].
/// @throws deq::shape_error for mismatched extents or a non-contiguous inner dimension.
template <activation T>
void linear(tensor_view<T const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b, tensor_view<T, 2> y) {
    detail::bert_check_linear(x, w, b, y);
    detail::bert_linear_unchecked(x, w, b, y);
}

/// The largest number of parts linear_concat() splits one call into (parts are scheduled dynamically
/// over the space's threads; the split itself does not depend on them).
inline constexpr index_t linear_parts = 16;

/// Several linear layers on the same input whose outputs are concatenated along the columns of @p y
/// (e.g. the query, key and value projections written into one [n, 3·hidden] buffer), as one
/// parallel_for over a host execution space: `y[:, off_s : off_s + out_s] = x · w_sᵀ + b_s`.
///
/// Work split (each part is one single-threaded `cblas_sgemm` per segment it touches, so use it with
/// the BLAS library set to one thread, set_blas_threads(1)): when there are fewer rows than output
/// columns, the output columns (all segments together) are split into contiguous ranges, so that every
/// weight is packed by the BLAS once per call; otherwise the rows are. Boundaries are at multiples of
/// 32 rows or columns, and the parts (at most linear_parts) depend on the shapes only, never on the
/// number of threads: the BLAS library chooses its kernels by matrix size, so a split that followed
/// the thread count would change the last bits. The result is therefore bit-identical on every host
/// space and thread count.
/// @tparam Space A host execution space.
/// @tparam Segments Number of layers.
/// @tparam T Activation type (float or double).
/// @param space The execution space.
/// @param x     Input rows, [n, in].
/// @param w     Weights, each [out_s, in], contiguous.
/// @param b     Biases, each [out_s] contiguous or empty (no bias).
/// @param y     Output rows, [n, Σ out_s].
/// @throws deq::shape_error as linear() for any segment.
template <exec::host_execution_space Space, std::size_t Segments, activation T>
void linear_concat(Space const& space, tensor_view<T const, 2> x, std::array<tensor_view<float const, 2>, Segments> const& w,
                   std::array<tensor_view<float const, 1>, Segments> const& b, tensor_view<T, 2> y) {
    index_t const n = x.extent(0);
    std::array<index_t, Segments + 1> offset{};
    for (std::size_t s = 0; s < Segments; ++s) offset[s + 1] = offset[s] + w[s].extent(0);
    index_t const total = offset[Segments];
    if (y.extent(0) != n || y.extent(1) != total) {
        detail::throw_shape_error(detail::concat("linear: 'y' has shape ", y.shape_string(), ", expected [", n, ", ", total, "]"));
    }
    auto const part_view = [&](std::size_t s, index_t r0, index_t r1, index_t c0, index_t c1) {
        return tensor_view<T, 2>(y.data() + r0 * y.stride(0) + offset[s] + c0, {r1 - r0, c1 - c0}, {y.stride(0), 1});
    };
    for (std::size_t s = 0; s < Segments; ++s) detail::bert_check_linear(x, w[s], b[s], part_view(s, 0, n, 0, w[s].extent(0)));
    constexpr index_t unit = 32;
    bool const by_columns = n < total;
    index_t const units = (by_columns ? total : n) / unit;
    index_t const blocks = std::max<index_t>(1, std::min<index_t>(linear_parts, units));
    auto const run = [&](index_t blk) {
        index_t const lo = units * blk / blocks * unit;
        index_t const hi = blk + 1 == blocks ? (by_columns ? total : n) : units * (blk + 1) / blocks * unit;
        if (!by_columns) {
            tensor_view<T const, 2> xs(x.data() + lo * x.stride(0), {hi - lo, x.extent(1)}, {x.stride(0), 1});
            for (std::size_t s = 0; s < Segments; ++s) detail::bert_linear_unchecked(xs, w[s], b[s], part_view(s, lo, hi, 0, w[s].extent(0)));
            return;
        }
        for (std::size_t s = 0; s < Segments; ++s) {  // the part of [lo, hi) inside segment s
            index_t const c0 = std::max(lo, offset[s]) - offset[s], c1 = std::min(hi, offset[s + 1]) - offset[s];
            if (c0 >= c1) continue;
            index_t const in = w[s].extent(1);
            tensor_view<float const, 2> ws(w[s].data() + c0 * in, {c1 - c0, in});
            tensor_view<float const, 1> bs = b[s].empty() ? b[s] : tensor_view<float const, 1>(b[s].data() + c0, {c1 - c0});
            detail::bert_linear_unchecked(x, ws, bs, part_view(s, 0, n, c0, c1));
        }
    };
    if (blocks == 1) {
        run(0);
        return;
    }
    exec::parallel_for(space, blocks, run);
}

/// linear() split across the threads of a host execution space: linear_concat() with one layer (the
/// output columns are split when there are fewer rows than columns, the rows otherwise; each part one
/// `cblas_sgemm` called from that part's thread). Use it with the BLAS library set to one thread
/// (set_blas_threads(1)), so the execution space is the only thread pool: a multi-threaded BLAS whose
/// idle workers spin while the space runs attention costs more than it gains at BERT sizes. With one
/// part this is linear().
/// @tparam Space A host execution space.
/// @tparam T Activation type (float or double).
/// @param space The execution space.
/// @param x     Input rows, [n, in].
/// @param w     Weight, [out, in], contiguous.
/// @param b     Bias, [out], contiguous; an empty view means no bias.
/// @param y     Output rows, [n, out].
/// @throws deq::shape_error as linear().
template <exec::host_execution_space Space, activation T>
void linear(Space const& space, tensor_view<T const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b, tensor_view<T, 2> y) {
    detail::bert_check_linear(x, w, b, y);
    linear_concat<Space, 1, T>(space, x, {w}, {b}, y);
}

/// Sets the number of threads the BLAS library uses (OpenBLAS only; other CBLAS libraries ignore it).
/// @param threads Number of threads, >= 1.
/// @return True when the library honoured the request (OpenBLAS), false otherwise.
inline bool set_blas_threads(int threads) {
    if (threads < 1) detail::throw_invalid_argument("threads", threads, "must be >= 1");
#if defined(OPENBLAS_VERSION)
    openblas_set_num_threads(threads);
    return true;
#else
    return false;
#endif
}

}  // namespace deq::bert
