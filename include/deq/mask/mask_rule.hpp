/// @file
/// @brief `deq::mask_rule`: one element-selection rule over predicted scores (Sanger pruning, DEQ
/// refinement, top-k, cumulative probability), and `deq::parse_mask_rule`, its text form.
///
/// Every rule reads the predicted scores Ŝ of one attention call ([B, H, Lq, Lk]) and the key padding,
/// and selects a set of (b, h, i, j) entries (see deq/mask/select.hpp). The predicted probabilities are
/// `P̂_ij = softmax_j(Ŝ_ij + pad_j)` with `pad_j = -10000` for padded keys, as in the reference.
/// Thresholds are converted to the score type before comparing (as PyTorch does with a Python scalar).
///
/// | kind | selects | parameter |
/// |---|---|---|
/// | all / none | every entry / nothing | |
/// | probability_threshold | `P̂ > θ` (Sanger's mask, DEQ `refine_*`) | θ in [0, 1] |
/// | inverse_probability_threshold | `P̂ <= θ` | θ in [0, 1] |
/// | adaptive_maximum | `X > α · max_g X` (DEQ `adamax_*`) | α in [0, 1], granularity g, X = Ŝ or P̂ |
/// | inverse_adaptive_maximum | `X <= α · max_g X` | as above |
/// | top_k | the k largest P̂ of each row among real keys | k >= 1 |
/// | cumulative_probability | the shortest prefix of the row's real-key P̂, sorted descending, with mass >= p | p in (0, 1] |
///
/// The reference's all-4-bit ablation `refine_2e1` uses θ = 20; since P̂ <= 1 always, it is the same as
/// θ = 1 here (nothing is selected), and parse_mask_rule() maps reference names with θ > 1 to θ = 1.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "detail/rule_text.hpp"

namespace deq {

/// The set of entries over which the adaptive-maximum rules take their maximum.
enum class max_granularity {
    sequence,  ///< All (h, i, j) of one sample b (the reference's `granuality = 'batch'`).
    head,      ///< All (i, j) of one (b, h) (the reference's `'head'`).
    row        ///< All j of one (b, h, i) (the reference's `'seq'`).
};

/// Name of a granularity: "sequence", "head" or "row".
/// @param g The granularity.
/// @return A static string.
inline char const* to_string(max_granularity g) {
    switch (g) {
        case max_granularity::sequence: return "sequence";
        case max_granularity::head: return "head";
        case max_granularity::row: return "row";
    }
    return "invalid";
}

/// One element-selection rule, used for Sanger pruning (which entries are kept) and for DEQ refinement
/// (which entries are recomputed at high precision). Build rules with the static factories (they validate
/// their arguments) or with parse_mask_rule().
struct mask_rule {
    /// The rule family.
    enum class kind {
        all,                            ///< Select every entry.
        none,                           ///< Select nothing.
        probability_threshold,          ///< `P̂ > θ`.
        inverse_probability_threshold,  ///< `P̂ <= θ`.
        adaptive_maximum,               ///< `X > α · max_g X`.
        inverse_adaptive_maximum,       ///< `X <= α · max_g X`.
        top_k,                          ///< k largest P̂ per row among real keys.
        cumulative_probability          ///< Shortest descending prefix of a row's real-key P̂ with mass >= p.
    };

    /// The rule family.
    kind type = kind::all;
    /// θ (probability rules), α (adaptive maximum) or p (cumulative probability); 0 otherwise.
    double value = 0;
    /// k of the top-k rule; 0 otherwise.
    index_t k = 0;
    /// Granularity of the maximum (adaptive maximum rules only; `sequence` otherwise).
    max_granularity granularity = max_granularity::sequence;
    /// Adaptive maximum: X = raw predicted logits Ŝ (true; no padding term, padded rows and columns take
    /// part in the maximum) or X = P̂ (false). True for every other kind.
    bool before_softmax = true;

    /// Sanger's probability threshold: selects `P̂ > theta` (strict).
    /// @param theta Threshold in [0, 1] (reference configs: 0.02, 0.002, 0.01).
    /// @return The validated rule.
    static mask_rule probability(double theta) {
        return checked({kind::probability_threshold, theta, 0, max_granularity::sequence, true});
    }
    /// Inverse probability threshold (ablation): selects `P̂ <= theta`.
    /// @param theta Threshold in [0, 1].
    /// @return The validated rule.
    static mask_rule inverse_probability(double theta) {
        return checked({kind::inverse_probability_threshold, theta, 0, max_granularity::sequence, true});
    }
    /// DEQ's adaptive maximum: selects `X > alpha · max_g X`.
    /// @param alpha          Fraction of the maximum, in [0, 1] (reference: 0.7, 0.8, 0.9, 0.5).
    /// @param g              Granularity of the maximum.
    /// @param before_softmax X = Ŝ (true, the reference's `adamax_n*` configs) or X = P̂ (false).
    /// @return The validated rule.
    static mask_rule adaptive_maximum(double alpha, max_granularity g, bool before_softmax = true) {
        return checked({kind::adaptive_maximum, alpha, 0, g, before_softmax});
    }
    /// Inverse adaptive maximum (ablation): selects `X <= alpha · max_g X`.
    /// @param alpha          Fraction of the maximum, in [0, 1].
    /// @param g              Granularity of the maximum.
    /// @param before_softmax X = Ŝ (true) or X = P̂ (false, the only form the reference uses).
    /// @return The validated rule.
    static mask_rule inverse_adaptive_maximum(double alpha, max_granularity g, bool before_softmax = false) {
        return checked({kind::inverse_adaptive_maximum, alpha, 0, g, before_softmax});
    }
    /// Top-k: the @p k largest P̂ of each row among real keys, ties to the lower key index. When a row has
    /// at most k real keys, all of them are selected; padded keys never are.
    /// @param k Number of entries per row, >= 1.
    /// @return The validated rule.
    static mask_rule top_k(index_t k) { return checked({kind::top_k, 0, k, max_granularity::sequence, true}); }
    /// Cumulative probability: sorts a row's real-key P̂ descending (ties to the lower key index) and selects
    /// the shortest prefix whose running sum (in the score type) reaches @p p; if the whole row sums to less
    /// than p through rounding, every real key. Padded keys are never selected.
    /// @param p Probability mass, in (0, 1].
    /// @return The validated rule.
    static mask_rule cumulative_probability(double p) {
        return checked({kind::cumulative_probability, p, 0, max_granularity::sequence, true});
    }
    /// Selects every entry.
    /// @return The rule of kind `all`.
    static mask_rule keep_all() { return {kind::all, 0, 0, max_granularity::sequence, true}; }
    /// Selects nothing.
    /// @return The rule of kind `none`.
    static mask_rule keep_none() { return {kind::none, 0, 0, max_granularity::sequence, true}; }

    /// Checks the parameters for the rule's kind; throws deq::invalid_argument naming the parameter
    /// ("theta", "alpha", "k", "p", "granularity" or "kind") and its value.
    void validate() const {
        switch (type) {
            case kind::all:
            case kind::none: return;
            case kind::probability_threshold:
            case kind::inverse_probability_threshold: detail::require_in_range("theta", value, 0.0, 1.0); return;
            case kind::adaptive_maximum:
            case kind::inverse_adaptive_maximum:
                detail::require_in_range("alpha", value, 0.0, 1.0);
                if (granularity != max_granularity::sequence && granularity != max_granularity::head &&
                    granularity != max_granularity::row) {
                    detail::throw_invalid_argument("granularity", static_cast<int>(granularity),
                                                   "must be sequence, head or row");
                }
                return;
            case kind::top_k:
                if (k < 1) detail::throw_invalid_argument("k", k, "must be >= 1");
                return;
            case kind::cumulative_probability:
                if (!(value > 0 && value <= 1)) detail::throw_invalid_argument("p", value, "must be in (0, 1]");
                return;
        }
        detail::throw_invalid_argument("kind", static_cast<int>(type), "is not a mask_rule::kind");
    }

    /// Whether applying the rule needs the predicted probabilities P̂ (a softmax of the scores).
    /// @return True for the probability, top-k and cumulative rules and for adaptive maximum over P̂.
    bool uses_probabilities() const {
        switch (type) {
            case kind::probability_threshold:
            case kind::inverse_probability_threshold:
            case kind::top_k:
            case kind::cumulative_probability: return true;
            case kind::adaptive_maximum:
            case kind::inverse_adaptive_maximum: return !before_softmax;
            default: return false;
        }
    }

    /// Human-readable description of the rule.
    /// @return E.g. "adamax(alpha=0.8, sequence, before_softmax)" or "probability(theta=0.02)".
    std::string describe() const {
        auto const num = detail::rule_format_number;
        switch (type) {
            case kind::all: return "all";
            case kind::none: return "none";
            case kind::probability_threshold: return "probability(theta=" + num(value) + ")";
            case kind::inverse_probability_threshold: return "inverse_probability(theta=" + num(value) + ")";
            case kind::adaptive_maximum:
            case kind::inverse_adaptive_maximum:
                return std::string(type == kind::adaptive_maximum ? "adamax" : "inverse_adamax") + "(alpha=" +
                       num(value) + ", " + to_string(granularity) + ", " +
                       (before_softmax ? "before_softmax" : "after_softmax") + ")";
            case kind::top_k: return "top_k(k=" + std::to_string(k) + ")";
            case kind::cumulative_probability: return "cumulative_probability(p=" + num(value) + ")";
        }
        return "invalid";
    }

    /// Canonical text form accepted by parse_mask_rule(), e.g. "adamax:0.8:sequence:logits"; parsing it
    /// gives back an equal rule.
    /// @return The spec text.
    std::string spec() const {
        auto const num = detail::rule_format_number;
        switch (type) {
            case kind::all: return "all";
            case kind::none: return "none";
            case kind::probability_threshold: return "prob:" + num(value);
            case kind::inverse_probability_threshold: return "invprob:" + num(value);
            case kind::adaptive_maximum:
            case kind::inverse_adaptive_maximum:
                return std::string(type == kind::adaptive_maximum ? "adamax:" : "invadamax:") + num(value) + ":" +
                       to_string(granularity) + ":" + (before_softmax ? "logits" : "probs");
            case kind::top_k: return "topk:" + std::to_string(k);
            case kind::cumulative_probability: return "cumprob:" + num(value);
        }
        return "invalid";
    }

    /// Field-wise equality.
    /// @param a First rule.
    /// @param b Second rule.
    /// @return True when every field is equal.
    friend bool operator==(mask_rule const& a, mask_rule const& b) = default;

private:
    static mask_rule checked(mask_rule rule) {
        rule.validate();
        return rule;
    }
};

/// The grammar accepted by parse_mask_rule(), as listed in its error messages.
inline constexpr char const* mask_rule_grammar =
    "all | none | prob:THETA | sanger:THETA | invprob:THETA | adamax:ALPHA[:sequence|head|row][:logits|probs] "
    "(default sequence, logits) | invadamax:ALPHA[:sequence|head|row][:probs|logits] (default sequence, probs) | "
    "topk:K | cumprob:P | reference config names [bert_base_|bart_base_|gpt2_]adamax_[n]{b,h,s}NN (alpha = NN/100; "
    "n = logits, b/h/s = sequence/head/row), refine_THETA, refine_inv_THETA, sanger_THETA (THETA > 1 means 1)";

namespace detail {

/// Throws deq::invalid_argument for unknown rule text, listing the grammar.
/// @param spec The text.
[[noreturn]] inline void rule_unknown(std::string_view spec) { throw_invalid_name("mask rule", spec, mask_rule_grammar); }

/// Parses a numeric rule parameter or throws deq::invalid_argument naming it.
/// @param name Parameter name.
/// @param text Parameter text.
/// @return The value (not range-checked).
inline double rule_number(std::string_view name, std::string_view text) {
    auto const v = rule_parse_double(text);
    if (!v) throw_invalid_argument(name, concat("\"", text, "\""), concat("is not a number; grammar: ", mask_rule_grammar));
    return *v;
}

/// Parses the reference config names (adamax_nb80, refine_2e-2, sanger_2e-3, ...).
/// @param name Lower-case name.
/// @return The rule, or nullopt if @p name is not a reference name.
inline std::optional<mask_rule> rule_parse_reference_name(std::string_view name) {
    rule_consume_prefix(name, "bert_base_") || rule_consume_prefix(name, "bart_base_") ||
        rule_consume_prefix(name, "gpt2_");
    if (rule_consume_prefix(name, "adamax_")) {
        bool const logits = rule_consume_prefix(name, "n");
        if (name.empty()) return std::nullopt;
        max_granularity g{};
        switch (name.front()) {
            case 'b': g = max_granularity::sequence; break;
            case 'h': g = max_granularity::head; break;
            case 's': g = max_granularity::row; break;
            default: return std::nullopt;
        }
        name.remove_prefix(1);
        for (char c : name)
            if (c < '0' || c > '9') return std::nullopt;
        auto const pct = rule_parse_integer(name);
        if (!pct) return std::nullopt;
        return mask_rule::adaptive_maximum(static_cast<double>(*pct) / 100.0, g, logits);
    }
    bool inverse = false;
    if (rule_consume_prefix(name, "refine_inv_")) {
        inverse = true;
    } else if (!rule_consume_prefix(name, "refine_") && !rule_consume_prefix(name, "sanger_")) {
        return std::nullopt;
    }
    auto const theta = rule_parse_double(name);
    if (!theta) return std::nullopt;
    double const t = *theta > 1.0 ? 1.0 : *theta;
    return inverse ? mask_rule::inverse_probability(t) : mask_rule::probability(t);
}

}  // namespace detail

/// Parses a mask rule from text (case-insensitive, surrounding white space ignored). Grammar:
///
///     all | none
///     prob:THETA | sanger:THETA           P̂ > THETA
///     invprob:THETA                       P̂ <= THETA
///     adamax:ALPHA[:G][:logits|probs]     X > ALPHA·max_G X, G in sequence|head|row (default sequence, logits)
///     invadamax:ALPHA[:G][:probs|logits]  X <= ALPHA·max_G X (default sequence, probs)
///     topk:K | cumprob:P
///
/// and the reference config names: `adamax_nb80` (α 0.8, sequence, logits), `adamax_nh80`, `adamax_ns70`
/// (head, row), `adamax_b80`, `adamax_h50`, `adamax_s80` (probabilities), `refine_2e-2` (probability 0.02),
/// `refine_inv_2e-3`, `sanger_2e-3`, optionally prefixed by `bert_base_`, `bart_base_` or `gpt2_`. Reference
/// probability thresholds above 1 (`refine_2e1`, θ = 20, the all-low-precision ablation) become 1.
/// @param spec The text.
/// @return The validated rule.
/// @throws deq::invalid_argument for unknown text (listing the grammar) or out-of-range parameters.
inline mask_rule parse_mask_rule(std::string_view spec) {
    std::string const text = detail::rule_normalize(spec);
    auto const parts = detail::rule_split(text, ':');
    std::string_view const head = parts[0];
    std::size_t const n = parts.size();
    if (head == "all" || head == "none") {
        if (n != 1) detail::rule_unknown(spec);
        return head == "all" ? mask_rule::keep_all() : mask_rule::keep_none();
    }
    if (head == "prob" || head == "sanger" || head == "probability" || head == "invprob") {
        if (n != 2) detail::rule_unknown(spec);
        double const theta = detail::rule_number("theta", parts[1]);
        return head == "invprob" ? mask_rule::inverse_probability(theta) : mask_rule::probability(theta);
    }
    if (head == "adamax" || head == "invadamax") {
        if (n < 2 || n > 4) detail::rule_unknown(spec);
        bool const inverse = head == "invadamax";
        double const alpha = detail::rule_number("alpha", parts[1]);
        std::optional<max_granularity> g;
        std::optional<bool> before;
        for (std::size_t p = 2; p < n; ++p) {
            std::string_view const opt = parts[p];
            if (!g && (opt == "sequence" || opt == "head" || opt == "row")) {
                g = opt == "sequence" ? max_granularity::sequence
                                      : (opt == "head" ? max_granularity::head : max_granularity::row);
            } else if (!before && (opt == "logits" || opt == "probs")) {
                before = opt == "logits";
            } else {
                detail::rule_unknown(spec);
            }
        }
        max_granularity const gran = g.value_or(max_granularity::sequence);
        return inverse ? mask_rule::inverse_adaptive_maximum(alpha, gran, before.value_or(false))
                       : mask_rule::adaptive_maximum(alpha, gran, before.value_or(true));
    }
    if (head == "topk") {
        if (n != 2) detail::rule_unknown(spec);
        auto const k = detail::rule_parse_integer(parts[1]);
        if (!k) {
            detail::throw_invalid_argument("k", detail::concat("\"", parts[1], "\""),
                                           detail::concat("is not an integer; grammar: ", mask_rule_grammar));
        }
        return mask_rule::top_k(*k);
    }
    if (head == "cumprob") {
        if (n != 2) detail::rule_unknown(spec);
        return mask_rule::cumulative_probability(detail::rule_number("p", parts[1]));
    }
    if (n == 1) {
        if (auto rule = detail::rule_parse_reference_name(head)) return *rule;
    }
    detail::rule_unknown(spec);
}

}  // namespace deq
