/// @file
/// @brief `deq::bert::linear`: the fully connected layers of the encoder on a CBLAS `sgemm` (OpenBLAS on
/// Debian), and `deq::bert::set_blas_threads`.
///
/// Needs a CBLAS header (`cblas.h`) and library: link the `deq::bert` target, which finds OpenBLAS.
#pragma once

#include <cblas.h>

#include <algorithm>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"

namespace deq::detail {


/// Checks the operands of deq::bert::linear; see deq::bert::linear.
/// @param x Input rows.
/// @param w Weight.
/// @param b Bias (may be empty).
/// @param y Output rows.
inline void bert_check_linear(tensor_view<float const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b,
                         tensor_view<float, 2> y) {
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
/// @param x Input rows.
/// @param w Weight.
/// @param b Bias (may be empty).
/// @param y Output rows.
inline void bert_linear_unchecked(tensor_view<float const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b,
                             tensor_view<float, 2> y) {
    index_t const n = x.extent(0), in = x.extent(1), out = w.extent(0);
    if (n == 0 || out == 0) return;
    index_t const ldx = n > 1 ? x.stride(0) : in;
    index_t const ldy = n > 1 ? y.stride(0) : out;
    if (ldx < in || ldy < out) detail::throw_shape_error("linear: rows of 'x' or 'y' overlap (stride(0) smaller than the row)");
    float beta = 0.0f;
    if (!b.empty()) {
        for (index_t r = 0; r < n; ++r) std::copy(b.data(), b.data() + out, y.data() + r * ldy);
        beta = 1.0f;
    }
    if (in == 0) {
        if (b.empty())
            for (index_t r = 0; r < n; ++r) std::fill(y.data() + r * ldy, y.data() + r * ldy + out, 0.0f);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out), static_cast<int>(in), 1.0f,
                x.data(), static_cast<int>(ldx), w.data(), static_cast<int>(in), beta, y.data(), static_cast<int>(ldy));
}

}  // namespace deq::detail

namespace deq::bert {


/// `y = x · wᵀ + b` with one `cblas_sgemm` (row-major; the weight is `[out, in]` as PyTorch's
/// `nn.Linear` stores it). Rows of @p x and @p y may be strided (their leading dimension is
/// `stride(0)`), the inner dimension must be contiguous. @p y must not overlap the inputs.
/// @param x Input rows, [n, in].
/// @param w Weight, [out, in], contiguous.
/// @param b Bias, [out], contiguous; an empty view means no bias.
/// @param y Output rows, [n, out].
/// @throws deq::shape_error for mismatched extents or a non-contiguous inner dimension.
inline void linear(tensor_view<float const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b,
                   tensor_view<float, 2> y) {
    detail::bert_check_linear(x, w, b, y);
    detail::bert_linear_unchecked(x, w, b, y);
}

/// linear() with the rows split across the threads of a host execution space: each of up to
/// `concurrency(space)` contiguous row blocks (at least 32 rows each, boundaries at multiples of 32) is one `cblas_sgemm` called from
/// that block's thread. Use it with the BLAS library set to one thread (set_blas_threads(1)), so the
/// execution space is the only thread pool: a multi-threaded BLAS whose idle workers spin while the
/// space runs attention costs more than it gains at BERT sizes. With one block this is linear().
/// @tparam Space A host execution space.
/// @param space The execution space.
/// @param x     Input rows, [n, in].
/// @param w     Weight, [out, in], contiguous.
/// @param b     Bias, [out], contiguous; an empty view means no bias.
/// @param y     Output rows, [n, out].
/// @throws deq::shape_error as linear().
template <exec::host_execution_space Space>
void linear(Space const& space, tensor_view<float const, 2> x, tensor_view<float const, 2> w, tensor_view<float const, 1> b,
            tensor_view<float, 2> y) {
    detail::bert_check_linear(x, w, b, y);
    index_t const n = x.extent(0);
    // Block boundaries are multiples of 32 rows, so every row is computed by the same sgemm micro-kernel
    // as in one unsplit call: the results do not depend on the number of threads.
    constexpr index_t unit = 32;
    index_t const units = n / unit;
    index_t const blocks = std::max<index_t>(1, std::min<index_t>(exec::backend<Space>::concurrency(space), units));
    if (blocks == 1) {
        detail::bert_linear_unchecked(x, w, b, y);
        return;
    }
    exec::parallel_for(space, blocks, [=](index_t blk) {
        index_t const r0 = units * blk / blocks * unit;
        index_t const r1 = blk + 1 == blocks ? n : units * (blk + 1) / blocks * unit;
        tensor_view<float const, 2> xs(x.data() + r0 * x.stride(0), {r1 - r0, x.extent(1)}, {x.stride(0), 1});
        tensor_view<float, 2> ys(y.data() + r0 * y.stride(0), {r1 - r0, y.extent(1)}, {y.stride(0), 1});
        detail::bert_linear_unchecked(xs, w, b, ys);
    });
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
