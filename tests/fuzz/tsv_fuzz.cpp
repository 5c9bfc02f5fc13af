// Fuzz target: deq::io::parse_tsv / read_tsv (include/deq/io/tsv.hpp).
// Input: one option byte (bit 0: header, bits 1-2: delimiter tab / ',' / ';' / '|', bits 3-5:
// required column count 0..7, bit 6: also read through a file), then the file text.
// Properties: every row has columns() fields and increasing line numbers; every accessor returns or
// throws a deq error; read_tsv of the same bytes gives the same table.
#include <cstdint>
#include <string>

#include <deq/io/tsv.hpp>

#include "fuzz_support.hpp"

namespace {

void check_table(deq::io::tsv_table const& t, deq::io::tsv_options const& o) {
    using deq_fuzz::guarded;
    if (o.columns != 0) DEQ_FUZZ_CHECK(t.columns() == o.columns);
    DEQ_FUZZ_CHECK(t.header().empty() || t.header().size() == t.columns());
    std::size_t last_line = t.header().empty() ? 0 : 1;
    for (std::size_t r = 0; r < t.size(); ++r) {
        deq::io::tsv_row const& row = t.row(r);
        DEQ_FUZZ_CHECK(row.fields.size() == t.columns());
        DEQ_FUZZ_CHECK(row.line > last_line);
        last_line = row.line;
        for (std::size_t c = 0; c < t.columns(); ++c) {
            DEQ_FUZZ_CHECK(&t.field(r, c) == &row.fields[c]);
            guarded([&] { (void)t.int_field(r, c); });
            guarded([&] { (void)t.number_field(r, c); });
        }
        guarded([&] { (void)t.field(r, t.columns()); });
    }
    guarded([&] { (void)t.row(t.size()); });
    for (std::string const& name : t.header()) {
        std::size_t const c = t.column(name);
        DEQ_FUZZ_CHECK(c < t.columns() && t.header()[c] == name);
    }
    guarded([&] { (void)t.column("\x1f no such column"); });
    if (!t.empty()) guarded([&] { t.fail(0, "fuzz"); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    deq_fuzz::byte_reader in(data, size);
    std::uint8_t const opt = in.byte();
    deq::io::tsv_options o;
    o.header = (opt & 1u) != 0;
    o.delimiter = "\t,;|"[(opt >> 1) & 3u];
    o.columns = (opt >> 3) & 7u;
    bool const via_file = (opt & 0x40u) != 0;
    std::string_view const text = in.rest();

    auto const table = deq_fuzz::attempt([&] { return deq::io::parse_tsv(text, "fuzz.tsv", o); });
    if (table) check_table(*table, o);
    if (via_file) {
        auto const file = deq_fuzz::write_scratch_file("fuzz.tsv", text);
        auto const read = deq_fuzz::attempt([&] { return deq::io::read_tsv(file, o); });
        DEQ_FUZZ_CHECK(read.has_value() == table.has_value());
        if (read) {
            DEQ_FUZZ_CHECK(read->header() == table->header() && read->size() == table->size());
            for (std::size_t r = 0; r < read->size(); ++r) {
                DEQ_FUZZ_CHECK(read->row(r).line == table->row(r).line && read->row(r).fields == table->row(r).fields);
            }
        }
    }
    return 0;
}
