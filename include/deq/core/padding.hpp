/// @file
/// @brief `deq::key_padding`: which tokens of each sequence are real and which are padding.
#pragma once

#include <cstdint>
#include <vector>

#include "error.hpp"
#include "tensor.hpp"

namespace deq {

/// Token validity of each sequence, shape [batch, length]: 1 for a real token, 0 for padding (the
/// same convention as a Hugging Face `attention_mask`). An empty view means "no padding". In the
/// reference semantics a padded key adds -10000 to its score; a (query, key) pair is *valid* for
/// density statistics when both tokens are real.
struct key_padding {
    /// The validity flags, [batch, length]; empty for "all tokens real".
    tensor_view<std::uint8_t const, 2> valid;

    /// @return True when there is no padding information (every token is real).
    DEQ_HOST_DEVICE constexpr bool none() const { return valid.data() == nullptr; }
    /// Whether token @p j of sequence @p b is real.
    /// @param b Batch index.
    /// @param j Token index.
    /// @return True for a real token.
    DEQ_HOST_DEVICE constexpr bool is_valid(index_t b, index_t j) const { return none() || valid(b, j) != 0; }

    /// Checks the shape against @p batch and @p length; throws deq::shape_error naming @p what.
    /// @param batch  Expected batch extent.
    /// @param length Expected sequence length.
    /// @param what   Name used in the error message.
    void check(index_t batch, index_t length, char const* what = "padding") const {
        if (none()) return;
        if (valid.extent(0) != batch || valid.extent(1) != length) {
            detail::throw_shape_error(detail::concat("'", what, "' has shape ", valid.shape_string(), ", expected [", batch,
                                                     ", ", length, "]"));
        }
    }
};

namespace detail {

/// The padded keys of each sequence as bit words: bit j of words [b * ceil(length / 64), ...) is set when
/// key j of sequence b is padded; empty when @p padding is none.
/// @param padding The padding (shape checked by the caller).
/// @param batch   Batch extent.
/// @param length  Sequence length.
/// @return The words, ceil(length / 64) per sequence.
inline std::vector<std::uint64_t> padded_key_words(key_padding const& padding, index_t batch, index_t length) {
    std::vector<std::uint64_t> words;
    if (padding.none()) return words;
    index_t const per = length / 64 + (length % 64 != 0 ? 1 : 0);
    words.assign(static_cast<std::size_t>(batch * per), 0);
    for (index_t b = 0; b < batch; ++b)
        for (index_t j = 0; j < length; ++j)
            if (!padding.is_valid(b, j)) words[static_cast<std::size_t>(b * per + j / 64)] |= std::uint64_t{1} << (j % 64);
    return words;
}

}  // namespace detail

}  // namespace deq
