// Fuzz target: deq::bert::parse_attention_mode and deq::parse_static_pattern.
// Input: mode text. Properties: parsing returns a mode or throws deq::invalid_argument; the
// canonical spec() of a parsed mode parses back to a mode with the same spec; a static mode builds
// its token mask (make_static_mask) with clean padding bits.
#include <algorithm>
#include <cstdint>
#include <string>

#include <deq/bert/attention_mode.hpp>
#include <deq/exec/serial.hpp>
#include <deq/mask/static_pattern.hpp>

#include "fuzz_support.hpp"

namespace {

void check_static_mask(deq::static_pattern const& pattern) {
    deq::index_t const length = std::min<deq::index_t>(pattern.max_position, 40);
    deq::bit_mask const m = deq::make_static_mask(deq::exec::serial{}, pattern, length, 2);
    DEQ_FUZZ_CHECK(m.batch() == 1 && m.heads() == 2 && m.rows() == length && m.cols() == length);
    for (deq::index_t h = 0; h < 2; ++h)
        for (deq::index_t i = 0; i < length; ++i) {
            std::uint64_t const* row = m.view().row(0, h, i);
            if (length % deq::mask_word_bits != 0) {
                DEQ_FUZZ_CHECK((row[m.words_per_row() - 1] >> (length % deq::mask_word_bits)) == 0);
            }
        }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text = deq_fuzz::as_text(data, size);
    if (auto const pattern = deq_fuzz::attempt([&] { return deq::parse_static_pattern(text); })) {
        pattern->validate();
        DEQ_FUZZ_CHECK(!pattern->name().empty() && !pattern->describe().empty());
    }
    auto const mode = deq_fuzz::attempt([&] { return deq::bert::parse_attention_mode(text); });
    if (!mode) return 0;
    using kind = deq::bert::attention_mode::kind;
    std::string const spec = mode->spec();
    deq::bert::attention_mode const again = deq::bert::parse_attention_mode(spec);
    DEQ_FUZZ_CHECK_MSG(again.spec() == spec, spec);
    DEQ_FUZZ_CHECK(again.type == mode->type);
    DEQ_FUZZ_CHECK(again.describe() == mode->describe());
    DEQ_FUZZ_CHECK(mode->needs_predictor() == (mode->type == kind::sanger || mode->type == kind::deq || mode->type == kind::three_level));
    if (mode->type == kind::sanger || mode->type == kind::three_level) DEQ_FUZZ_CHECK(again.prune == mode->prune);
    if (mode->type == kind::deq || mode->type == kind::three_level) DEQ_FUZZ_CHECK(again.refine == mode->refine);
    if (mode->type == kind::static_mask) check_static_mask(mode->pattern);
    return 0;
}
