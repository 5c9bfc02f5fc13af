/// @file
/// @brief `deq::bert::attention_mode`: how the encoder's self-attention is computed (dense, static
/// pattern, Sanger, DEQ, three-level), and `deq::bert::parse_attention_mode`, its text form.
///
/// | text | mode | reference |
/// |---|---|---|
/// | `dense` | exact softmax attention | HF `BertSelfAttention` |
/// | `longformer`, `bigbird`, `fixed`, `hugebird`, `static:NAME` | static block-sparse pattern (deq::parse_static_pattern) | `configs/sparse_attn/*.json` |
/// | `sanger:THETA` | predict with the 4-bit predictor, keep `P̂ > θ`, prune the rest | `bert_base_sanger_2e-2.json` (θ = 0.02) |
/// | `deq:RULE` | predict, refine the entries selected by RULE (deq::parse_mask_rule: `adamax_nb80`, `refine_2e-2`, `adamax:0.8:head`, ...), 4-bit scores elsewhere | `bert_base_adamax_nb80.json`, ... |
/// | `three:PRUNE+REFINE` | predict, prune with PRUNE, refine the kept entries selected by REFINE (e.g. `three:sanger:0.002+adamax_nb80`) | deq extension |
///
/// Text is case-insensitive; surrounding white space is ignored.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "../mask/mask_rule.hpp"
#include "../mask/static_pattern.hpp"

namespace deq::detail {

/// The parse_static_pattern() name of @p pattern: the name whose pattern it equals ("hugebird" for
/// BigBird with block 32, 3 random and 2 global blocks), else its family name.
/// @param pattern A static pattern.
/// @return "longformer", "bigbird", "fixed", "hugebird" or pattern.name().
inline std::string attention_mode_pattern_name(static_pattern const& pattern) {
    for (char const* name : {"longformer", "bigbird", "fixed", "hugebird"}) {
        if (parse_static_pattern(name) == pattern) return name;
    }
    return pattern.name();
}

}  // namespace deq::detail

namespace deq::bert {

/// The attention mode of the encoder. Build with the factories or parse_attention_mode().
struct attention_mode {
    /// The mode family.
    enum class kind {
        dense,        ///< Exact dense attention.
        static_mask,  ///< A static block-sparse pattern (-10000 outside it).
        sanger,       ///< Sanger: predicted probabilities > θ are kept, the rest pruned.
        deq,          ///< DEQ: refined entries exact, the others the 4-bit predicted score.
        three_level   ///< Prune and refine: pruned / 4-bit / exact.
    };
    /// The mode family.
    kind type = kind::dense;
    /// The static pattern (static_mask only).
    static_pattern pattern{};
    /// Pruning rule: `probability(θ)` for Sanger, the PRUNE rule for three-level; unused otherwise.
    mask_rule prune = mask_rule::keep_all();
    /// Refinement rule (deq and three-level); unused otherwise.
    mask_rule refine = mask_rule::keep_all();

    /// Dense attention.
    /// @return The mode.
    static attention_mode dense() { return {}; }
    /// A static pattern.
    /// @param pattern The pattern (validated).
    /// @return The mode.
    static attention_mode static_sparse(static_pattern pattern) {
        pattern.validate();
        attention_mode m;
        m.type = kind::static_mask;
        m.pattern = std::move(pattern);
        return m;
    }
    /// Sanger pruning with threshold @p theta.
    /// @param theta θ in [0, 1] (deq::invalid_argument otherwise).
    /// @return The mode.
    static attention_mode sanger(double theta) {
        attention_mode m;
        m.type = kind::sanger;
        m.prune = mask_rule::probability(theta);
        return m;
    }
    /// DEQ mixed precision with refinement rule @p refine.
    /// @param refine The rule (validated).
    /// @return The mode.
    static attention_mode deq(mask_rule refine) {
        refine.validate();
        attention_mode m;
        m.type = kind::deq;
        m.refine = refine;
        return m;
    }
    /// Three-level prune + refine.
    /// @param prune  Rule selecting the kept entries (validated).
    /// @param refine Rule selecting the refined entries among the kept ones (validated).
    /// @return The mode.
    static attention_mode three_level(mask_rule prune, mask_rule refine) {
        prune.validate();
        refine.validate();
        attention_mode m;
        m.type = kind::three_level;
        m.prune = prune;
        m.refine = refine;
        return m;
    }

    /// Whether the mode runs the low-bit predictor (and so needs quantizer thresholds).
    /// @return True for sanger, deq and three_level.
    bool needs_predictor() const noexcept { return type == kind::sanger || type == kind::deq || type == kind::three_level; }

    /// Canonical text form, accepted by parse_attention_mode() (e.g. "dense", "static:hugebird",
    /// "sanger:0.02", "deq:adamax:0.8:sequence:logits", "three:prob:0.002+adamax:0.8:sequence:logits");
    /// parsing it gives back the mode. A static pattern that equals no named pattern (parameters set
    /// in code) is written as its family name, e.g. "static:bigbird".
    /// @return The text.
    std::string spec() const {
        switch (type) {
            case kind::dense: return "dense";
            case kind::static_mask: return "static:" + detail::attention_mode_pattern_name(pattern);
            case kind::sanger: return "sanger:" + detail::rule_format_number(prune.value);
            case kind::deq: return "deq:" + refine.spec();
            case kind::three_level: return "three:" + prune.spec() + "+" + refine.spec();
        }
        return "invalid";
    }

    /// Human-readable description, e.g. "deq(adamax(alpha=0.8, sequence, before_softmax))".
    /// @return The description.
    std::string describe() const {
        switch (type) {
            case kind::dense: return "dense";
            case kind::static_mask: return pattern.describe();
            case kind::sanger: return "sanger(" + prune.describe() + ")";
            case kind::deq: return "deq(" + refine.describe() + ")";
            case kind::three_level: return "three_level(prune=" + prune.describe() + ", refine=" + refine.describe() + ")";
        }
        return "invalid";
    }
};

/// The grammar accepted by parse_attention_mode(), as listed in its error messages.
inline constexpr char const* attention_mode_grammar =
    "dense | longformer | bigbird | fixed | hugebird | static:PATTERN | sanger:THETA | deq:RULE | three:PRUNE+REFINE "
    "(RULE, PRUNE, REFINE: deq::parse_mask_rule text such as adamax_nb80, refine_2e-2, sanger:0.002, adamax:0.8:head)";

/// Parses an attention mode (see the file documentation for the grammar).
/// @param text The mode text, e.g. "dense", "longformer", "sanger:0.02", "deq:adamax_nb80",
///             "three:sanger:0.002+adamax_nb80".
/// @return The mode.
/// @throws deq::invalid_argument naming the text for an unknown mode, a bad rule or an out-of-range
///         parameter.
inline attention_mode parse_attention_mode(std::string_view text) {
    std::string s(text);
    auto const not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto unknown = [&]() -> attention_mode { detail::throw_invalid_name("attention mode", text, attention_mode_grammar); };
    // Parses a component with deq's parsers, prefixing their errors with the whole mode text.
    auto component = [&](auto&& parse) -> attention_mode {
        try {
            return parse();
        } catch (invalid_argument const& e) {
            throw invalid_argument(detail::concat("deq: invalid argument 'attention mode' = \"", text, "\": ", e.what()));
        }
    };
    if (s == "dense") return attention_mode::dense();
    std::size_t const colon = s.find(':');
    if (colon == std::string::npos) {
        if (s == "longformer" || s == "bigbird" || s == "fixed" || s == "hugebird") {
            return attention_mode::static_sparse(parse_static_pattern(s));
        }
        return unknown();
    }
    std::string const head = s.substr(0, colon);
    std::string const rest = s.substr(colon + 1);
    if (rest.empty()) return unknown();
    if (head == "static") {
        return component([&] {
            static_pattern p = parse_static_pattern(rest);
            return p.type == static_pattern::kind::dense ? attention_mode::dense() : attention_mode::static_sparse(std::move(p));
        });
    }
    if (head == "sanger") return component([&] { return attention_mode::sanger(parse_mask_rule("prob:" + rest).value); });
    if (head == "deq") return component([&] { return attention_mode::deq(parse_mask_rule(rest)); });
    if (head == "three") {
        std::size_t const plus = rest.find('+');
        if (plus == std::string::npos || plus == 0 || plus + 1 == rest.size()) return unknown();
        return component([&] {
            return attention_mode::three_level(parse_mask_rule(rest.substr(0, plus)), parse_mask_rule(rest.substr(plus + 1)));
        });
    }
    return unknown();
}

}  // namespace deq::bert
