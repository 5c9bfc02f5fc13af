/// @file
/// @brief Token-to-text offsets: `deq::text::byte_range` and `deq::text::offset_token`, the result of
/// bert_tokenizer::tokenize_with_offsets (transformers' `return_offsets_mapping=True`, in bytes).
///
/// An offset is the half-open byte range `[begin, end)` of the original UTF-8 text that produced a
/// token: for a WordPiece piece, from the first byte of the first character to the last byte of the
/// last character it came from (characters removed or expanded by normalisation map to the original
/// character that produced them). Byte offsets select the same substring as the character offsets of
/// the Hugging Face fast tokenizer's `offset_mapping`. This header needs no Unicode library.
#pragma once

#include <cstddef>

#include "vocab.hpp"

namespace deq::text {

/// A half-open byte range `[begin, end)` of a UTF-8 text.
struct byte_range {
    std::size_t begin = 0;  ///< First byte.
    std::size_t end = 0;    ///< One past the last byte.

    /// @return The number of bytes.
    std::size_t size() const noexcept { return end - begin; }
    /// @param a First range.
    /// @param b Second range.
    /// @return Whether both ranges are equal.
    friend bool operator==(byte_range const& a, byte_range const& b) noexcept = default;
};

/// A token id with the byte range of the original text it came from.
struct offset_token {
    token_id id = 0;   ///< Token id.
    byte_range range;  ///< Bytes of the original text.
};

}  // namespace deq::text
