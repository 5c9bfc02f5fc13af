/// @file
/// @brief `deq::select_elements`: applies a deq::mask_rule to predicted scores and writes the selected
/// entries into a bit mask (Sanger's kept set, DEQ's refined set, top-k, cumulative probability).
///
/// Semantics, per score row (b, h, i) of Ŝ [B, H, Lq, Lk], in the score type S:
/// - `P̂_ij = softmax_j(Ŝ_ij + pad_j)`, `pad_j = -10000` for padded keys and 0 otherwise, computed as
///   PyTorch does: subtract the row maximum, exp, sum, divide (exactly as defined in
///   deq/mask/detail/softmax_row.hpp: deq::exp_fused and 16 interleaved partial sums, so that every
///   instruction-set tier gives the same bits). Padded query rows are processed like the others.
/// - probability rules compare P̂ with `S(θ)`; `P̂ > θ` is strict, the inverse is `P̂ <= θ`.
/// - adaptive maximum: X = Ŝ (raw logits, no padding term) or X = P̂; m = max of X over the granularity
///   (sequence: every (h, i, j) of sample b, padded rows and columns included; head: every (i, j) of
///   (b, h); row: every j of (b, h, i)); selects `X > S(α)·m` (inverse: `X <= S(α)·m`). Computed with a
///   per-row maximum pass, a reduction per granularity, and a selection pass.
/// - top-k and cumulative probability rank the real keys of a row by P̂ (ties to the lower key index);
///   padded keys are never selected by them.
///
/// Results are identical on every execution space.
#pragma once

#include <algorithm>
#include <concepts>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../arch/isa.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../numeric/finite.hpp"
#include "detail/select_kernels.hpp"
#include "mask_rule.hpp"

namespace deq {

namespace detail {

/// Throws deq::numeric_error for the first row with a non-finite score.
/// @tparam S Score type.
/// @param scores The scores.
/// @param status Per-row status from the kernels.
/// @param value  Callable (b, h, i, j) -> double: the score (a device backend copies it from the device).
template <class S, class Value>
void select_check_status(tensor_view<S const, 4> scores, std::vector<index_t> const& status, Value const& value) {
    for (std::size_t r = 0; r < status.size(); ++r) {
        if (status[r] == select_row_ok) continue;
        index_t b = 0, h = 0, i = 0;
        select_split_row(static_cast<index_t>(r), scores.extent(1), scores.extent(2), b, h, i);
        index_t const j = status[r];
        throw_non_finite_element("scores", static_cast<double>(value(b, h, i, j)), b, h, i, j);
    }
}

/// Number of row chunks for the row kernels: a few per unit of concurrency, at most one per row.
/// @tparam Space Execution space.
/// @param space The space.
/// @param rows  Number of score rows.
/// @return The chunk count, in [1, rows].
template <class Space>
index_t select_chunk_count(Space const& space, index_t rows) {
    index_t const c = 4 * static_cast<index_t>(std::max(1, exec::backend<Space>::concurrency(space)));
    return std::max<index_t>(1, std::min(rows, c));
}

}  // namespace detail

namespace detail {

/// Scratch of select_elements_with() in host memory.
struct select_host_buffers {
    /// @return @p n copies of @p fill.
    template <class T>
    std::vector<T> make(index_t n, T fill) const {
        return std::vector<T>(static_cast<std::size_t>(n), fill);
    }
    /// @return The elements of @p v, for a kernel.
    template <class T>
    T* data(std::vector<T>& v) const {
        return v.data();
    }
    /// @return @p v, readable by the host.
    template <class T>
    std::vector<T> const& host(std::vector<T> const& v) const {
        return v;
    }
};

/// Throws deq::invalid_argument / deq::shape_error for a bad rule, scores shape, padding or mask shape
/// (the checks of select_elements(), in its order).
/// @param scores_shape The scores' extents.
/// @param padding      Key padding.
/// @param rule         The rule.
/// @param out          The output mask.
/// @param shape        The scores' shape string.
inline void select_check_arguments(index_t const (&scores_shape)[4], key_padding const& padding, mask_rule const& rule,
                                   bit_mask_view const& out, std::string const& shape) {
    rule.validate();
    for (int r = 0; r < 4; ++r) {
        if (scores_shape[r] == 0) throw_shape_error(concat("'scores' has shape ", shape, ": no extent may be zero"));
    }
    index_t const batch = scores_shape[0], heads = scores_shape[1], lq = scores_shape[2], lk = scores_shape[3];
    padding.check(batch, lk, "padding");
    if (out.empty() || out.batch() != batch || out.heads() != heads || out.rows() != lq || out.cols() != lk) {
        throw_shape_error(concat("'out' mask has shape [", out.batch(), ", ", out.heads(), ", ", out.rows(), ", ", out.cols(),
                                 "], expected ", shape));
    }
}

/// The kernels of select_elements() on any space, arguments already checked: the one sequence of
/// launches for every rule, whatever memory the buffers live in.
/// @tparam Space   Execution space.
/// @tparam S       Score type.
/// @tparam Buffers select_host_buffers, or a device backend's equivalent.
/// @tparam Value   Callable (b, h, i, j) -> double: a score, for the error message.
/// @param space        The space.
/// @param scores       Predicted scores (memory the space's kernels read).
/// @param padding      Key padding (the same memory).
/// @param padded_words detail::padded_key_words() of the padding, already in that memory (null: none).
/// @param rule         The rule.
/// @param out          The output mask.
/// @param chunks       Row chunks of the row kernels (each holds Lk scratch values).
/// @param tier         Instruction-set tier of the row kernels.
/// @param buffers      Allocates the scratch.
/// @param value        Reads a score for an error message.
template <class Space, class S, class Buffers, class Value>
void select_elements_with(Space const& space, tensor_view<S const, 4> scores, key_padding padding, std::uint64_t const* padded_words,
                          mask_rule const& rule, bit_mask_view out, index_t chunks, arch::isa tier, Buffers const& buffers,
                          Value const& value) {
    index_t const heads = scores.extent(1), lq = scores.extent(2), lk = scores.extent(3);
    index_t const rows = scores.extent(0) * heads * lq;
    using kind = mask_rule::kind;
    if (rule.type == kind::all || rule.type == kind::none) {
        exec::parallel_for(space, rows, select_fill_rows{out, rule.type == kind::all});
        return;
    }
    auto scratch = buffers.make(chunks * lk, S(0));
    auto status = buffers.make(rows, select_row_ok);
    bool const softmax = rule.uses_probabilities();
    select_padding_words const padded{padded_words, mask_words_per_row(lk)};
    auto check = [&] { select_check_status(scores, buffers.host(status), value); };

    switch (rule.type) {
        case kind::probability_threshold:
        case kind::inverse_probability_threshold: {
            exec::parallel_for(space, chunks,
                               select_threshold_rows<S>{scores, padded, out, true, rule.type == kind::inverse_probability_threshold,
                                                        static_cast<S>(rule.value), S(0), nullptr, 1, buffers.data(scratch),
                                                        buffers.data(status), chunks, tier});
            break;
        }
        case kind::adaptive_maximum:
        case kind::inverse_adaptive_maximum: {
            auto row_max = buffers.make(rows, S(0));
            exec::parallel_for(space, chunks,
                               select_row_max<S>{scores, padded, softmax, buffers.data(scratch), buffers.data(row_max),
                                                 buffers.data(status), chunks, tier});
            check();
            index_t const per_group = rule.granularity == max_granularity::sequence ? heads * lq
                                      : rule.granularity == max_granularity::head   ? lq
                                                                                     : 1;
            auto group_max = buffers.make(rows / per_group, S(0));
            exec::parallel_for(space, rows / per_group, select_group_max<S>{buffers.data(row_max), buffers.data(group_max), per_group});
            exec::parallel_for(space, chunks,
                               select_threshold_rows<S>{scores, padded, out, softmax, rule.type == kind::inverse_adaptive_maximum, S(0),
                                                        static_cast<S>(rule.value), buffers.data(group_max), per_group,
                                                        buffers.data(scratch), buffers.data(status), chunks, tier});
            break;
        }
        case kind::top_k:
        case kind::cumulative_probability: {
            auto heap = buffers.make(chunks * lk, index_t(0));
            exec::parallel_for(space, chunks,
                               select_rank_rows<S>{scores, padding, padded, out, rule.type == kind::cumulative_probability, rule.k,
                                                   static_cast<S>(rule.value), buffers.data(scratch), buffers.data(heap),
                                                   buffers.data(status), chunks, tier});
            break;
        }
        default: break;
    }
    check();
}

}  // namespace detail

/// Applies @p rule to the predicted scores and writes the selected set into @p out (see the file
/// documentation for the exact semantics of each rule). Every bit of @p out is written.
/// @tparam Space A host execution space (the function allocates host scratch buffers).
/// @tparam S     Score type (float or double).
/// @param space   Execution space.
/// @param scores  Predicted scores Ŝ, [B, H, Lq, Lk] (may be strided); must be finite (rules `all` and
///                `none` do not read them).
/// @param padding Key padding ([B, Lk]) or none.
/// @param rule    The rule (validated).
/// @param out     Output mask of exactly [B, H, Lq, Lk] (no broadcast extents).
/// @throws deq::invalid_argument for an invalid rule, deq::shape_error for mismatched or zero extents,
///         deq::numeric_error for a non-finite score (then the contents of @p out are unspecified).
template <exec::host_execution_space Space, std::floating_point S>
void select_elements(Space const& space, tensor_view<S const, 4> scores, key_padding padding, mask_rule const& rule,
                     bit_mask_view out) {
    index_t const shape[4] = {scores.extent(0), scores.extent(1), scores.extent(2), scores.extent(3)};
    detail::select_check_arguments(shape, padding, rule, out, scores.shape_string());
    index_t const rows = shape[0] * shape[1] * shape[2];
    std::vector<std::uint64_t> const padded_words = detail::padded_key_words(padding, shape[0], shape[3]);
    detail::select_elements_with(space, scores, padding, padded_words.empty() ? nullptr : padded_words.data(), rule, out,
                                 detail::select_chunk_count(space, rows), arch::active_isa(), detail::select_host_buffers{},
                                 [&](index_t b, index_t h, index_t i, index_t j) { return static_cast<double>(scores(b, h, i, j)); });
}

/// Convenience overload of select_elements() for a view of non-const scores.
/// @tparam Space A host execution space.
/// @tparam S     Score type.
/// @param space   Execution space.
/// @param scores  Predicted scores, [B, H, Lq, Lk].
/// @param padding Key padding or none.
/// @param rule    The rule.
/// @param out     Output mask, [B, H, Lq, Lk].
template <exec::host_execution_space Space, std::floating_point S>
    requires(!std::is_const_v<S>)
void select_elements(Space const& space, tensor_view<S, 4> scores, key_padding padding, mask_rule const& rule,
                     bit_mask_view out) {
    select_elements(space, tensor_view<S const, 4>(scores), padding, rule, out);
}

/// Applies @p rule to the predicted scores and returns the selected set as a new [B, H, Lq, Lk] mask
/// (see select_elements()).
/// @tparam Space A host execution space.
/// @tparam S     Score type.
/// @param space   Execution space.
/// @param scores  Predicted scores, [B, H, Lq, Lk].
/// @param padding Key padding or none.
/// @param rule    The rule.
/// @return The selected entries.
template <exec::host_execution_space Space, std::floating_point S>
bit_mask select_elements(Space const& space, tensor_view<S const, 4> scores, key_padding padding,
                         mask_rule const& rule) {
    rule.validate();
    bit_mask out(std::max<index_t>(1, scores.extent(0)), std::max<index_t>(1, scores.extent(1)), scores.extent(2),
                 scores.extent(3));
    select_elements(space, scores, padding, rule, out.view());
    return out;
}

}  // namespace deq
