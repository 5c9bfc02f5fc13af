/// @file
/// @brief Row offsets from row counts on deq::exec::cuda (internal; the device CSR and BSR builders):
/// cub::DeviceScan::ExclusiveSum, where the host builders use a sequential scan.
#pragma once

#if !defined(__CUDACC__)
#error "deq/sparse/cuda/detail/offsets.hpp is CUDA C++: compile this translation unit with nvcc"
#endif

#include <cub/device/device_scan.cuh>

#include <cstddef>

#include "../../../config.hpp"
#include "../../../cuda/device_array.hpp"
#include "../../../cuda/error.hpp"
#include "../../../exec/cuda.hpp"

namespace deq::detail {

/// Turns @p n per-row counts into n + 1 offsets (offsets[0] = 0, offsets[n] = the total).
/// @param space  The CUDA space.
/// @param counts Device counts, n + 1 entries (the last is overwritten with 0).
/// @param offsets Device output, n + 1 entries.
/// @param n      Rows.
/// @return The total, offsets[n].
inline index_t cuda_offsets_from_counts(exec::cuda const& space, index_t* counts, index_t* offsets, index_t n) {
    cuda_check(cudaMemsetAsync(counts + n, 0, sizeof(index_t), space.stream()), "cudaMemsetAsync (the last count)");
    std::size_t temp_bytes = 0;
    cuda_check(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, counts, offsets, n + 1, space.stream()),
               "cub::DeviceScan::ExclusiveSum (temporary storage size)");
    // (at least one byte: CUB reads a null temporary storage as a size query and would do nothing)
    cuda::device_array<unsigned char> temp(static_cast<index_t>(temp_bytes > 0 ? temp_bytes : 1), space.device());
    cuda_check(cub::DeviceScan::ExclusiveSum(temp.device_data(), temp_bytes, counts, offsets, n + 1, space.stream()),
               "cub::DeviceScan::ExclusiveSum");
    cuda_check(cudaStreamSynchronize(space.stream()), "cudaStreamSynchronize (after cub::DeviceScan::ExclusiveSum)");
    return cuda::copy_element_to_host(offsets + n);
}

}  // namespace deq::detail
