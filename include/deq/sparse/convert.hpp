/// @file
/// @brief Lossless conversions between the sparse mask formats (CSR, BSR, pack & split), through
/// the `deq::bit_mask` interchange format. Including this header brings in every format.
#pragma once

#include "../core/bit_mask.hpp"
#include "../exec/execution_space.hpp"
#include "bsr.hpp"
#include "csr.hpp"
#include "pack_split.hpp"

namespace deq {

/// CSR to BSR with `BR × BC` blocks.
/// @tparam BR    Block height in rows.
/// @tparam BC    Block width in columns.
/// @tparam Space A host execution space.
/// @param space Execution space running the kernels.
/// @param m     The CSR mask (validated).
/// @return The BSR form of @p m.
template <index_t BR, index_t BC, exec::host_execution_space Space>
    requires(BR >= 1 && BC >= 1)
bsr<BR, BC> to_bsr(Space const& space, csr const& m) {
    bit_mask const mask = to_bit_mask(space, m);
    return to_bsr<BR, BC>(space, mask.view());
}

/// Pack & split to BSR with `BR × BC` blocks.
/// @tparam BR    Block height in rows.
/// @tparam BC    Block width in columns.
/// @tparam Space A host execution space.
/// @param space Execution space running the kernels.
/// @param m     The pack & split mask (validated).
/// @return The BSR form of @p m.
template <index_t BR, index_t BC, exec::host_execution_space Space>
    requires(BR >= 1 && BC >= 1)
bsr<BR, BC> to_bsr(Space const& space, pack_split const& m) {
    bit_mask const mask = to_bit_mask(space, m);
    return to_bsr<BR, BC>(space, mask.view());
}

/// BSR to CSR.
/// @tparam Space A host execution space.
/// @tparam BR    Block height in rows.
/// @tparam BC    Block width in columns.
/// @param space Execution space running the kernels.
/// @param m     The BSR mask (validated).
/// @return The CSR form of @p m.
template <exec::host_execution_space Space, index_t BR, index_t BC>
csr to_csr(Space const& space, bsr<BR, BC> const& m) {
    bit_mask const mask = to_bit_mask(space, m);
    return to_csr(space, mask.view());
}

/// Pack & split to CSR.
/// @tparam Space A host execution space.
/// @param space Execution space running the kernels.
/// @param m     The pack & split mask (validated).
/// @return The CSR form of @p m.
template <exec::host_execution_space Space>
csr to_csr(Space const& space, pack_split const& m) {
    bit_mask const mask = to_bit_mask(space, m);
    return to_csr(space, mask.view());
}

/// CSR to pack & split.
/// @tparam Space A host execution space.
/// @param space  Execution space running the kernels.
/// @param m      The CSR mask (validated).
/// @param params Group height, window and PEs per row.
/// @return The pack & split form of @p m.
template <exec::host_execution_space Space>
pack_split to_pack_split(Space const& space, csr const& m, pack_split_params const& params = {}) {
    bit_mask const mask = to_bit_mask(space, m);
    return to_pack_split(space, mask.view(), params);
}

/// BSR to pack & split.
/// @tparam Space A host execution space.
/// @tparam BR    Block height in rows.
/// @tparam BC    Block width in columns.
/// @param space  Execution space running the kernels.
/// @param m      The BSR mask (validated).
/// @param params Group height, window and PEs per row.
/// @return The pack & split form of @p m.
template <exec::host_execution_space Space, index_t BR, index_t BC>
pack_split to_pack_split(Space const& space, bsr<BR, BC> const& m, pack_split_params const& params = {}) {
    bit_mask const mask = to_bit_mask(space, m);
    return to_pack_split(space, mask.view(), params);
}

}  // namespace deq
