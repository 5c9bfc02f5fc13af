/// @file
/// @brief `deq::attention_options` (what the attention kernel does with each score) and
/// `deq::empty_row_policy` (what it does with a query row whose every real key is pruned).
///
/// ### Why `reference` and `uniform` differ for fully pruned rows
/// The reference adds -10000 to every pruned score and softmaxes the row. When a row has no kept real
/// key, every real key carries the same -10000, which mathematically cancels in the softmax. In
/// float32 it does not cancel exactly: `s - 10000` is rounded to the float grid near 10000 (spacing
/// 2^-10 ≈ 0.001), so the row becomes the softmax of the *rounded* values `fl(s_j - 10000)`, which is
/// close to the dense row over the real keys and far from uniform (padded keys, carrying -20000, still
/// get 0). In 16-bit floating point the grid spacing near 10000 is 8, so the same row becomes nearly
/// uniform. Hence three policies:
/// - `reference` reproduces the reference's arithmetic exactly (this is what the PyTorch model does
///   and what the comparison tests check);
/// - `uniform` gives exactly uniform weights `1/n` over the n real keys (the behaviour the research
///   notes and the issue describe, and the limit of the reference in low precision);
/// - `zero` writes a zero output row (the row attends to nothing).
#pragma once

#include "../core/accumulator.hpp"
#include "../core/bit_mask.hpp"
#include "../core/padding.hpp"
#include "../core/tensor.hpp"

namespace deq {

/// What attention() does with a query row that has no kept real key (every real key pruned, or no real
/// key at all). See the file documentation for why `reference` is not uniform in float32.
enum class empty_row_policy {
    reference,  ///< The reference's -10000 penalty arithmetic, bit for bit in the score type.
    uniform,    ///< Exactly uniform weights over the row's real keys (over all keys if none is real).
    zero        ///< A zero output row.
};

/// Name of a policy: "reference", "uniform" or "zero" ("invalid" otherwise).
/// @param policy The policy.
/// @return "reference", "uniform" or "zero" (a string literal); "invalid" for a value outside the enumeration.
inline char const* to_string(empty_row_policy policy) {
    switch (policy) {
        case empty_row_policy::reference: return "reference";
        case empty_row_policy::uniform: return "uniform";
        case empty_row_policy::zero: return "zero";
    }
    return "invalid";
}

/// What the attention kernel does with each score; one kernel definition serves every mode:
/// - dense: no mask (`kept` and `refined` empty);
/// - masked sparse (Sanger, static patterns, pruning): `kept` given, entries not kept get -10000;
/// - DEQ mixed precision: `refined` and `predicted` given, refined entries use the exact score
///   `q·k/√d`, the others the predicted score Ŝ;
/// - three-level: both.
///
/// Score of entry (b, h, i, j), in this order (the reference's order of floating-point operations):
/// `s = dot(q_i, k_j) / S(sqrt(d))`; `s = refined ? s : Ŝ_ij`; `s = s + (kept ? 0 : -10000)`;
/// `s = s + (padded_j ? -10000 : 0)`; then `P = softmax_j(s)` and `o_i = Σ_j P_ij v_j`.
/// @tparam S The score type, `deq::accum_t<T>` of the element type T.
template <class S>
struct attention_options {
    /// Key padding [B, Lk] (1 = real): padded keys get -10000 added to their score (reference).
    key_padding padding{};
    /// Query validity [B, Lq] used only for the statistics (which pairs and rows are *valid*). When
    /// empty, the key padding is used if Lq == Lk (self-attention, as the reference does), and every
    /// query is real otherwise. Padded query rows are computed like any other row.
    key_padding query_padding{};
    /// Optional kept set ([B or 1, H or 1, Lq, Lk]; extent 1 broadcasts): entries not kept get -10000.
    const_bit_mask_view kept{};
    /// Optional refined set ([B or 1, H or 1, Lq, Lk]): refined entries use the exact score, the others
    /// the predicted score. Requires `predicted`.
    const_bit_mask_view refined{};
    /// Predicted scores Ŝ [B, H, Lq, Lk] (already divided by √d), required with `refined`; ignored
    /// (but shape-checked) otherwise.
    tensor_view<S const, 4> predicted{};
    /// What to do with query rows that have no kept real key.
    empty_row_policy empty_rows = empty_row_policy::reference;
    /// Reject NaN/Inf in q, k, v (and in `predicted` when it is used) with deq::numeric_error naming the
    /// tensor and the index, and finite inputs whose scores or outputs overflow the score type (naming
    /// the row) instead of returning a non-finite output. With `false` neither check runs and
    /// non-finite inputs (or overflowing scores) give unspecified results.
    bool check_finite = true;
    /// Allow the kernel to skip computing pruned scores where that is exact: in a row with a kept real
    /// key, a pruned entry is skipped only when a bound on |q_i·k_j|/√d (from the row's q norm and the
    /// head's largest k norm) proves `exp(s_ij - 10000 - max)` is exactly 0 in the score type. Results
    /// are bit-identical with and without skipping; `false` only costs time (used by the tests).
    bool skip_pruned = true;
};

/// The options of attention() for element type @p T, without spelling out its score type:
/// `deq::attention_options_for<float16> o;` is `deq::attention_options<float>`.
/// @tparam T Element type.
template <class T>
using attention_options_for = attention_options<accum_t<T>>;

}  // namespace deq
