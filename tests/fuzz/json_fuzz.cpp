// Fuzz target: deq::io::json (parser, writer, typed accessors).
// Input: a JSON document. Properties: parse either succeeds or throws deq::format_error; a parsed
// document dumps (compact and indented) to text that parses back to an equal document and dumps to
// the same text again; every accessor on every value returns or throws a deq error.
#include <cmath>
#include <cstdint>
#include <string>

#include <deq/io/json.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::io::json;
using deq_fuzz::guarded;

// Calls every typed accessor of @p v (each may throw a deq error), then recurses.
void visit(json const& v, int depth) {
    (void)v.type_name();
    (void)v.path();
    (void)v.source();
    guarded([&] { (void)v.as_bool(); });
    guarded([&] { (void)v.as_double(); });
    guarded([&] {
        std::int64_t const i = v.as_int();
        DEQ_FUZZ_CHECK(v.is_integer());
        DEQ_FUZZ_CHECK(v.as_int(i, i) == i);
    });
    guarded([&] { (void)v.as_int(-5, 5); });
    guarded([&] { DEQ_FUZZ_CHECK(std::isfinite(v.as<float>())); });  // beyond float's range: an error, not inf
    guarded([&] { (void)v.as<std::int8_t>(); });
    guarded([&] { (void)v.as<std::uint64_t>(); });
    guarded([&] { (void)v.as<std::string>(); });
    guarded([&] { (void)v.size(); });
    guarded([&] { (void)v.at(std::size_t{0}); });
    guarded([&] { (void)v.at(std::size_t{1} << 40); });
    guarded([&] { (void)v.at("a"); });
    guarded([&] { (void)v.value<int>("a", 7); });
    guarded([&] { v.fail("fuzz"); });
    if (depth > 64) return;  // the parser allows 256 levels; the accessors are the same below
    if (v.is_array()) {
        for (json const& e : v.as_array()) visit(e, depth + 1);
    } else if (v.is_object()) {
        for (auto const& m : v.as_object()) {
            json const* found = v.find(m.key);
            DEQ_FUZZ_CHECK(found == &m.value);
            DEQ_FUZZ_CHECK(&v.at(m.key) == &m.value);
            visit(m.value, depth + 1);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text = deq_fuzz::as_text(data, size);
    auto const doc = deq_fuzz::attempt([&] { return json::parse(text, "fuzz.json"); });
    if (!doc) return 0;

    std::string const compact = doc->dump();
    std::string const pretty = doc->dump(2);
    json const again = json::parse(compact, "compact.json");
    DEQ_FUZZ_CHECK_MSG(again == *doc, compact);
    DEQ_FUZZ_CHECK_MSG(again.dump() == compact, compact);
    json const again_pretty = json::parse(pretty, "pretty.json");
    DEQ_FUZZ_CHECK_MSG(again_pretty == *doc, pretty);
    DEQ_FUZZ_CHECK(again_pretty.dump() == compact);

    visit(*doc, 0);

    // Copies and edits keep the value semantics.
    json copy = *doc;
    DEQ_FUZZ_CHECK(copy == *doc);
    guarded([&] {
        copy["fuzz"] = 1;  // throws for non-objects (null becomes an object)
        DEQ_FUZZ_CHECK(copy.at("fuzz").as_int() == 1);
    });
    guarded([&] {
        json list = *doc;
        list.push_back(*doc);
        DEQ_FUZZ_CHECK(list.as_array().back() == *doc);
    });
    return 0;
}
