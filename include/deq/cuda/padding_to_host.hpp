/// @file
/// @brief `deq::cuda::padding_to_host`: a host copy of a key padding that lives in device memory (for the
/// host-side parts of the device calls: padded-key words, statistics).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "error.hpp"

namespace deq::cuda {

/// Copies a device key padding [B, L] (any strides) to the host, contiguous.
/// @param padding Device padding, or none.
/// @param storage Receives the B · L flags, row-major.
/// @param stream  The stream of the copies.
/// @return A host padding over @p storage (none for none).
/// @throws deq::cuda_error when a copy fails.
inline key_padding padding_to_host(key_padding const& padding, std::vector<std::uint8_t>& storage, cudaStream_t stream = nullptr) {
    if (padding.none()) return {};
    tensor_view<std::uint8_t const, 2> const& v = padding.valid;
    index_t const batch = v.extent(0), length = v.extent(1);
    storage.assign(static_cast<std::size_t>(batch * length), 0);
    if (v.stride(0) >= 0 && v.stride(1) >= 0) {
        // one copy of the bytes the view spans, then compacted
        std::size_t const span = static_cast<std::size_t>((batch - 1) * v.stride(0) + (length - 1) * v.stride(1) + 1);
        std::vector<std::uint8_t> bytes(span);
        deq::detail::cuda_check(cudaMemcpyAsync(bytes.data(), v.data(), span, cudaMemcpyDeviceToHost, stream),
                                "cudaMemcpyAsync(padding, device to host)");
        deq::detail::cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (after copying the padding)");
        for (index_t b = 0; b < batch; ++b)
            for (index_t j = 0; j < length; ++j)
                storage[static_cast<std::size_t>(b * length + j)] = bytes[static_cast<std::size_t>(b * v.stride(0) + j * v.stride(1))];
    } else {
        for (index_t b = 0; b < batch; ++b)  // negative strides: one flag per copy
            for (index_t j = 0; j < length; ++j)
                deq::detail::cuda_check(cudaMemcpy(&storage[static_cast<std::size_t>(b * length + j)], &v(b, j), 1, cudaMemcpyDeviceToHost),
                                        "cudaMemcpy(padding flag, device to host)");
    }
    return key_padding{tensor_view<std::uint8_t const, 2>(storage.data(), {batch, length})};
}

}  // namespace deq::cuda
