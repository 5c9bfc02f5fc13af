// Fuzz target: deq::parse_mask_rule (the mask-rule text grammar).
// Input: rule text. Properties: parsing returns a valid rule or throws deq::invalid_argument; the
// canonical spec() of a parsed rule parses back to the same rule (and the same spec).
#include <cstdint>
#include <string>

#include <deq/mask/mask_rule.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text = deq_fuzz::as_text(data, size);
    auto const rule = deq_fuzz::attempt([&] { return deq::parse_mask_rule(text); });
    if (!rule) return 0;
    rule->validate();
    std::string const spec = rule->spec();
    deq::mask_rule const again = deq::parse_mask_rule(spec);
    DEQ_FUZZ_CHECK_MSG(again == *rule, spec);
    DEQ_FUZZ_CHECK_MSG(again.spec() == spec, spec);
    DEQ_FUZZ_CHECK(!rule->describe().empty() && rule->describe() != "invalid");
    DEQ_FUZZ_CHECK(again.uses_probabilities() == rule->uses_probabilities());
    return 0;
}
