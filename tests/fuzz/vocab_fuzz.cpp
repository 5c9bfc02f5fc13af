// Fuzz target: deq::text::vocab (vocab.txt parsing, include/deq/text/vocab.hpp).
// Input: a vocab.txt. Properties: parse returns a vocabulary or throws deq::format_error; ids and
// tokens map to each other; lookups of absent tokens and out-of-range ids throw deq errors;
// from_tokens(tokens()) rebuilds the same vocabulary.
#include <cstdint>
#include <string>

#include <deq/text/vocab.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    using deq::text::token_id;
    using deq_fuzz::guarded;
    std::string_view const text = deq_fuzz::as_text(data, size);
    auto const v = deq_fuzz::attempt([&] { return deq::text::vocab::parse(text, "vocab.txt"); });
    if (!v) return 0;
    DEQ_FUZZ_CHECK(!v->empty() && v->size() == v->tokens().size());
    for (std::size_t i = 0; i < v->size(); ++i) {
        auto const id = static_cast<token_id>(i);
        std::string const& t = v->token(id);
        DEQ_FUZZ_CHECK(!t.empty());
        DEQ_FUZZ_CHECK(v->contains(t) && v->find(t) == id && v->id(t) == id);
    }
    DEQ_FUZZ_CHECK(!guarded([&] { (void)v->token(-1); }));
    DEQ_FUZZ_CHECK(!guarded([&] { (void)v->token(static_cast<token_id>(v->size())); }));
    if (!v->contains("\n")) DEQ_FUZZ_CHECK(!guarded([&] { (void)v->id("\n"); }));
    deq::text::vocab const copy = deq::text::vocab::from_tokens(v->tokens(), "copy");
    DEQ_FUZZ_CHECK(copy.tokens() == v->tokens());
    return 0;
}
