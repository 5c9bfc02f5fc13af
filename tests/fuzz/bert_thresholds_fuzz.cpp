// Fuzz target: deq::bert::predictor_thresholds (the thresholds JSON file: from_json, validate,
// config, to_json, save / load).
// Input: a thresholds JSON file. Properties: from_json returns thresholds that validate, whose
// per-layer predictor configs validate, or throws deq::format_error naming the field; to_json
// dumps to text that reads back to the same thresholds (bit-exact floats), also through save/load.
#include <bit>
#include <cstdint>
#include <string>

#include <deq/bert/thresholds.hpp>
#include <deq/io/json.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::bert::predictor_thresholds;

void check_same(predictor_thresholds const& a, predictor_thresholds const& b) {
    DEQ_FUZZ_CHECK(a.bits == b.bits && a.origin == b.origin && a.steps == b.steps && a.decay == b.decay);
    DEQ_FUZZ_CHECK(a.layers.size() == b.layers.size());
    for (std::size_t l = 0; l < a.layers.size(); ++l) {
        DEQ_FUZZ_CHECK(std::bit_cast<std::uint32_t>(a.layers[l].input_x_thresh) == std::bit_cast<std::uint32_t>(b.layers[l].input_x_thresh));
        DEQ_FUZZ_CHECK(std::bit_cast<std::uint32_t>(a.layers[l].input_y_thresh) == std::bit_cast<std::uint32_t>(b.layers[l].input_y_thresh));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const doc = deq_fuzz::attempt([&] { return deq::io::json::parse(deq_fuzz::as_text(data, size), "thresholds.json"); });
    if (!doc) return 0;
    auto const t = deq_fuzz::attempt([&] { return predictor_thresholds::from_json(*doc); });
    if (!t) return 0;
    auto const layers = static_cast<deq::index_t>(t->layers.size());
    t->validate(layers);
    for (deq::index_t l = 0; l < layers; ++l) {
        deq::predictor_config const c = t->config(l);
        DEQ_FUZZ_CHECK(c.bits == t->bits);
    }
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { t->validate(layers + 1); }));
    DEQ_FUZZ_CHECK(!deq_fuzz::guarded([&] { (void)t->config(layers); }));
    std::string const text = t->to_json().dump(2);
    check_same(*t, predictor_thresholds::from_json(deq::io::json::parse(text, "dumped.json")));
    std::filesystem::path const file = deq_fuzz::scratch_dir::path() / "thresholds.json";
    t->save(file);
    check_same(*t, predictor_thresholds::load(file));
    return 0;
}
