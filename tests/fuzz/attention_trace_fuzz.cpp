// Fuzz target: deq::io::read_attention_trace / write_attention_trace (include/deq/io/attention_trace.hpp).
// Input: an attention-trace file (a safetensors image), read from a scratch file. Properties: the
// reader returns a trace or throws deq::format_error; a trace has consistent records (layer in
// range, masks empty or [1, heads, length, length] with clean padding bits); writing it and reading
// the result gives back the same trace.
#include <cstdint>
#include <string>

#include <deq/io/attention_trace.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::io::attention_trace;

void check_mask(deq::bit_mask const& m, attention_trace const& t, deq::index_t length) {
    if (m.empty()) return;
    DEQ_FUZZ_CHECK(m.batch() == 1 && m.heads() == t.num_heads && m.rows() == length && m.cols() == length);
    if (length % deq::mask_word_bits == 0) return;
    for (deq::index_t h = 0; h < m.heads(); ++h)
        for (deq::index_t i = 0; i < length; ++i) {
            DEQ_FUZZ_CHECK((m.view().row(0, h, i)[m.words_per_row() - 1] >> (length % deq::mask_word_bits)) == 0);
        }
}

void check_same(attention_trace const& a, attention_trace const& b) {
    DEQ_FUZZ_CHECK(a.model == b.model && a.task == b.task && a.mode == b.mode);
    DEQ_FUZZ_CHECK(a.num_layers == b.num_layers && a.num_heads == b.num_heads && a.head_dim == b.head_dim);
    DEQ_FUZZ_CHECK(a.records.size() == b.records.size());
    for (std::size_t r = 0; r < a.records.size(); ++r) {
        auto const& x = a.records[r];
        auto const& y = b.records[r];
        DEQ_FUZZ_CHECK(x.example == y.example && x.layer == y.layer && x.length == y.length);
        DEQ_FUZZ_CHECK(x.kept.words() == y.kept.words() && x.refined.words() == y.refined.words());
        DEQ_FUZZ_CHECK(x.kept.empty() == y.kept.empty() && x.refined.empty() == y.refined.empty());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    auto const file = deq_fuzz::write_scratch_file("trace.safetensors", deq_fuzz::as_text(data, size));
    auto const t = deq_fuzz::attempt([&] { return deq::io::read_attention_trace(file); });
    if (!t) return 0;
    DEQ_FUZZ_CHECK(t->num_layers >= 1 && t->num_heads >= 1 && t->head_dim >= 1);
    for (auto const& rec : t->records) {
        DEQ_FUZZ_CHECK(rec.example >= 0 && rec.layer >= 0 && rec.layer < t->num_layers && rec.length >= 1);
        check_mask(rec.kept, *t, rec.length);
        check_mask(rec.refined, *t, rec.length);
    }
    auto const copy = deq_fuzz::scratch_dir::path() / "trace-copy.safetensors";
    deq::io::write_attention_trace(copy, *t);
    check_same(*t, deq::io::read_attention_trace(copy));
    return 0;
}
