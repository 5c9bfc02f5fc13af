/// @file
/// @brief `deq::accel::attention_workload`: what the accelerator model costs for one attention call:
/// the geometry, the token padding, the kept and refined masks and whether a low-bit predictor ran.
#pragma once

#include "../core/bit_mask.hpp"
#include "../core/checked_size.hpp"
#include "../core/error.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"

namespace deq::accel {

/// One attention call as the cost model sees it. Masks follow deq::attention_options: empty `kept`
/// keeps every entry; empty `refined` computes every kept entry at high precision.
struct attention_workload {
    /// Sequences.
    index_t batch = 0;
    /// Heads.
    index_t heads = 0;
    /// Query rows per sequence.
    index_t lq = 0;
    /// Keys per sequence.
    index_t lk = 0;
    /// Head dimension of q and k.
    index_t dim = 0;
    /// Head dimension of v.
    index_t dv = 0;
    /// Key padding [batch, lk] (empty: all real).
    key_padding padding{};
    /// Query padding [batch, lq]; empty: `padding` when lq == lk (self-attention), else all real.
    key_padding query_padding{};
    /// Kept entries [batch or 1, heads or 1, lq, lk] or empty.
    const_bit_mask_view kept{};
    /// High-precision entries [batch or 1, heads or 1, lq, lk] or empty.
    const_bit_mask_view refined{};
    /// Bit width of the low-bit predictor that ran for this call, 0 when none ran.
    int predictor_bits = 0;

    /// The query padding in effect (see `query_padding`).
    /// @return The query validity.
    key_padding queries() const {
        if (!query_padding.none()) return query_padding;
        return lq == lk ? padding : key_padding{};
    }

    /// The largest head dimension (dim, dv) the cost model accepts.
    static constexpr index_t max_head_dim = index_t{1} << 20;

    /// Checks extents, padding, masks and the predictor width.
    /// @throws deq::shape_error naming the extent, the padding or the mask ("kept" / "refined") whose shape
    ///         does not fit; deq::invalid_argument for `predictor_bits` outside {0} ∪ [2, 16].
    void validate() const {
        if (batch < 1 || heads < 1 || lq < 1 || lk < 1 || dim < 1 || dv < 1) {
            ::deq::detail::throw_shape_error(::deq::detail::concat("attention_workload extents batch = ", batch, ", heads = ", heads,
                                                     ", lq = ", lq, ", lk = ", lk, ", dim = ", dim, ", dv = ", dv,
                                                     ": every extent must be >= 1"));
        }
        // The cost model multiplies these extents with each other and with the hardware parameters
        // (at most architecture::max_parameter): every operand and the score matrix must be countable,
        // and the head dimensions are bounded like a hardware parameter.
        ::deq::detail::checked_size("attention_workload scores [batch, heads, lq, lk]", {batch, heads, lq, lk});
        ::deq::detail::checked_size("attention_workload q [batch, heads, lq, dim]", {batch, heads, lq, dim});
        ::deq::detail::checked_size("attention_workload k [batch, heads, lk, dim]", {batch, heads, lk, dim});
        ::deq::detail::checked_size("attention_workload v [batch, heads, lk, dv]", {batch, heads, lk, dv});
        ::deq::detail::checked_size("attention_workload out [batch, heads, lq, dv]", {batch, heads, lq, dv});
        if (dim > max_head_dim || dv > max_head_dim) {
            ::deq::detail::throw_shape_error(::deq::detail::concat("attention_workload dim = ", dim, ", dv = ", dv,
                                                                 ": head dimensions above 2^20 are not modelled"));
        }
        padding.check(batch, lk, "padding");
        query_padding.check(batch, lq, "query_padding");
        check_mask("kept", kept);
        check_mask("refined", refined);
        if (predictor_bits != 0 && (predictor_bits < 2 || predictor_bits > 16)) {
            ::deq::detail::throw_invalid_argument("attention_workload.predictor_bits", predictor_bits, "must be 0 or in [2, 16]");
        }
    }

private:
    void check_mask(char const* name, const_bit_mask_view m) const {
        if (m.empty()) return;
        if ((m.batch() != 1 && m.batch() != batch) || (m.heads() != 1 && m.heads() != heads) || m.rows() != lq ||
            m.cols() != lk) {
            ::deq::detail::throw_shape_error(::deq::detail::concat("'", name, "' has shape [", m.batch(), ", ", m.heads(), ", ", m.rows(),
                                                     ", ", m.cols(), "], expected [", batch, " or 1, ", heads, " or 1, ",
                                                     lq, ", ", lk, "]"));
        }
    }
};

}  // namespace deq::accel
