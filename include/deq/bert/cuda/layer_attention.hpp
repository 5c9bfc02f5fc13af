/// @file
/// @brief `deq::bert::cuda_layer_attention`: a forward_options::layer_attention runner that computes every
/// layer's attention of the BERT encoder on a GPU (deq::exec::cuda), in every attention mode.
///
/// Per layer it copies q, k and v (strided views into the encoder's fused QKV buffer, gathered into
/// contiguous [B, heads, L, d] arrays), the key padding and the static pattern to the device, runs the
/// mode's device call (run_layer_attention() with the overloads of deq/attention/cuda/), and copies the context layer and the masks back. The
/// linear layers, layer norms and GELU stay on forward()'s host execution space. Masks are the host's bit
/// for bit; outputs agree with the host's to rounding (1e-5 relative per layer).
#pragma once

#if !defined(__CUDACC__)
#error "deq/bert/cuda/layer_attention.hpp is CUDA C++: compile this translation unit with nvcc (link deq::cuda and deq::bert)"
#endif

#include <cstdint>
#include <vector>

#include "../../attention/cuda/attention.hpp"
#include "../../attention/cuda/pipelines.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/error.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../cuda/device_array.hpp"
#include "../../exec/cuda.hpp"
#include "../attention_mode.hpp"
#include "../layer_attention.hpp"

namespace deq::bert {

namespace detail {

/// A contiguous device copy of a host view [B, H, L, d] (any strides).
/// @param x      Host view.
/// @param space  The CUDA space.
/// @return The device array, row-major [B, H, L, d].
inline cuda::device_array<float> cuda_gather_to_device(tensor_view<float const, 4> x, exec::cuda const& space) {
    std::vector<float> host(static_cast<std::size_t>(x.size()));
    std::size_t e = 0;
    for (index_t a = 0; a < x.extent(0); ++a)
        for (index_t b = 0; b < x.extent(1); ++b)
            for (index_t c = 0; c < x.extent(2); ++c)
                for (index_t d = 0; d < x.extent(3); ++d) host[e++] = x(a, b, c, d);
    return cuda::to_device(host, space.device(), space.stream());
}

/// One layer's attention on the device (see the file documentation).
/// @param space The CUDA space.
/// @param call  The layer's call.
/// @return Its statistics.
inline attention_stats cuda_run_layer_attention(exec::cuda const& space, layer_attention_call const& call) {
    if (call.mode == nullptr) ::deq::detail::throw_invalid_argument("mode", "<null>", "is required");
    index_t const batch = call.q.extent(0), heads = call.q.extent(1), length = call.q.extent(2), dim = call.q.extent(3);
    index_t const lk = call.k.extent(2), dv = call.v.extent(3);
    cuda::device_array<float> const q = cuda_gather_to_device(call.q, space), k = cuda_gather_to_device(call.k, space),
                                    v = cuda_gather_to_device(call.v, space);
    cuda::device_array<float> out(batch * heads * length * dv, space.device());
    tensor_view<float const, 4> const dq(q.device_data(), {batch, heads, length, dim}), dk(k.device_data(), {batch, heads, lk, dim}),
        dvv(v.device_data(), {batch, heads, lk, dv});
    tensor_view<float, 4> const dout(out.device_data(), {batch, heads, length, dv});

    cuda::device_array<std::uint8_t> valid;
    key_padding padding;
    if (!call.padding.none()) {
        std::vector<std::uint8_t> flags(static_cast<std::size_t>(batch * lk));
        for (index_t b = 0; b < batch; ++b)
            for (index_t j = 0; j < lk; ++j) flags[static_cast<std::size_t>(b * lk + j)] = call.padding.is_valid(b, j) ? 1 : 0;
        valid = cuda::to_device(flags, space.device(), space.stream());
        padding = key_padding{tensor_view<std::uint8_t const, 2>(valid.device_data(), {batch, lk})};
    }
    cuda::device_array<std::uint64_t> pattern_words;
    const_bit_mask_view pattern;
    if (!call.static_mask.empty()) {
        const_bit_mask_view const m = call.static_mask;
        std::vector<std::uint64_t> const words(m.words(), m.words() + m.batch() * m.heads() * m.rows() * m.words_per_row());
        pattern_words = cuda::to_device(words, space.device(), space.stream());
        pattern = const_bit_mask_view(pattern_words.device_data(), m.batch(), m.heads(), m.rows(), m.cols());
    }
    attention_stats const st =
        run_layer_attention(space, *call.mode, dq, dk, dvv, dout, padding, pattern, call.config, call.empty_rows, call.masks);
    std::vector<float> const host = cuda::to_host(out, space.stream());
    std::size_t e = 0;
    for (index_t a = 0; a < batch; ++a)
        for (index_t b = 0; b < heads; ++b)
            for (index_t c = 0; c < length; ++c)
                for (index_t d = 0; d < dv; ++d) call.out(a, b, c, d) = host[e++];
    return st;
}

}  // namespace detail

/// A forward_options::layer_attention runner on @p space: every layer's attention of bert_model::forward
/// runs on the GPU (see the file documentation).
/// @param space The CUDA space (device and stream).
/// @return The runner (it holds a copy of the space).
inline layer_attention_runner cuda_layer_attention(exec::cuda const& space) {
    return [space](layer_attention_call const& call) { return detail::cuda_run_layer_attention(space, call); };
}

}  // namespace deq::bert
