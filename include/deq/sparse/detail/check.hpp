/// @file
/// @brief Internal input checks shared by the sparse-format headers.
#pragma once

#include "../../core/bit_mask.hpp"
#include "../../core/error.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"

namespace deq::detail {

/// Throws deq::shape_error when a mask view has invalid extents or no storage for a non-empty shape.
inline void check_mask_view(const_bit_mask_view mask, char const* name = "mask") {
    if (mask.batch() < 1 || mask.heads() < 1 || mask.rows() < 0 || mask.cols() < 0 ||
        (mask.words() == nullptr && mask.batch() * mask.heads() * mask.rows() * mask.words_per_row() > 0)) {
        throw_shape_error(concat("'", name, "' has extents [", mask.batch(), ", ", mask.heads(), ", ", mask.rows(), ", ",
                                 mask.cols(), "]: batch and heads must be >= 1 and the storage present"));
    }
}

/// Checks @p padding against a self-attention @p mask and returns the effective batch: the padding's
/// batch when the mask's batch extent is 1 (broadcast), else the mask's. With padding the mask must
/// be square (queries and keys share the padding) and its length must match the padding's.
inline index_t padded_batch(const_bit_mask_view mask, key_padding padding) {
    if (padding.none()) return mask.batch();
    index_t const pb = padding.valid.extent(0);
    index_t const pl = padding.valid.extent(1);
    if (mask.rows() != mask.cols()) {
        throw_shape_error(concat("'mask' is ", mask.rows(), " x ", mask.cols(),
                                 ": with padding it must be square (self-attention: queries and keys share the padding)"));
    }
    if (pl != mask.cols() || (mask.batch() != 1 && pb != mask.batch())) {
        throw_shape_error(concat("'padding' has shape ", padding.valid.shape_string(), ", expected [",
                                 mask.batch() == 1 ? concat("any") : concat(mask.batch()), ", ", mask.cols(), "]"));
    }
    return mask.batch() == 1 ? pb : mask.batch();
}

}  // namespace deq::detail
