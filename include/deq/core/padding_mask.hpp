/// @file
/// @brief `deq::padding_mask`: an owning key padding built from a Hugging Face attention mask, either the
/// 0/1 `attention_mask` of a tokenizer or the additive mask of a model (0 for real tokens, -10000 or
/// -inf for padding).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "checked_size.hpp"
#include "error.hpp"
#include "padding.hpp"
#include "tensor.hpp"

namespace deq {

/// How padding_mask reads the values of a Hugging Face mask.
enum class hf_mask_kind {
    automatic,  ///< 0/1 when every value is 0 or 1, additive otherwise.
    binary,     ///< 1 (or any non-zero value) = real token, 0 = padding (`attention_mask`).
    additive    ///< A value > -1 = real token (the reference's `attn_mask > -1`), else padding.
};

/// Owns the [batch, length] validity flags of a deq::key_padding (a key_padding is a view; this keeps its
/// storage alive). Copying copies the flags.
class padding_mask {
public:
    /// No padding (every token real).
    padding_mask() = default;

    /// Builds the flags from a Hugging Face mask [batch, length] (a [batch, 1, 1, length] extended mask
    /// can be passed as a [batch, length] view of the same data).
    /// @tparam V Value type of the mask (an integer or floating-point type).
    /// @param mask The mask.
    /// @param kind How to read the values (see hf_mask_kind).
    /// @throws deq::shape_error for a zero extent; deq::invalid_argument (naming the index) for a NaN value.
    template <class V>
    explicit padding_mask(tensor_view<V const, 2> mask, hf_mask_kind kind = hf_mask_kind::automatic)
        : batch_(mask.extent(0)), length_(mask.extent(1)) {
        static_assert(std::is_arithmetic_v<V>, "deq::padding_mask: the mask must hold integers or floating-point values");
        if (batch_ == 0 || length_ == 0) {
            detail::throw_shape_error(detail::concat("attention mask of shape ", mask.shape_string(), ": no extent may be zero"));
        }
        bool binary = true;
        for (index_t b = 0; b < batch_; ++b)
            for (index_t j = 0; j < length_; ++j) {
                double const x = static_cast<double>(mask(b, j));
                if (std::isnan(x)) {
                    detail::throw_invalid_argument("attention mask", "NaN",
                                                   detail::concat("at index [", b, ", ", j, "]: a mask value must be a number"));
                }
                if (x != 0.0 && x != 1.0) binary = false;
            }
        if (kind == hf_mask_kind::automatic) kind = binary ? hf_mask_kind::binary : hf_mask_kind::additive;
        flags_.assign(static_cast<std::size_t>(detail::checked_size("attention mask", {batch_, length_})), 0);
        for (index_t b = 0; b < batch_; ++b)
            for (index_t j = 0; j < length_; ++j) {
                double const x = static_cast<double>(mask(b, j));
                bool const real = kind == hf_mask_kind::binary ? x != 0.0 : x > -1.0;
                flags_[static_cast<std::size_t>(b * length_ + j)] = real ? 1 : 0;
            }
    }

    /// @return The key padding (a view of this object's flags; valid while it lives), or none.
    key_padding padding() const {
        if (flags_.empty()) return {};
        return key_padding{tensor_view<std::uint8_t const, 2>(flags_.data(), {batch_, length_})};
    }
    /// @return Batch extent (0 without padding).
    index_t batch() const noexcept { return batch_; }
    /// @return Sequence length (0 without padding).
    index_t length() const noexcept { return length_; }

private:
    index_t batch_ = 0, length_ = 0;
    std::vector<std::uint8_t> flags_;
};

}  // namespace deq
