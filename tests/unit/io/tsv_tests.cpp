// deq::io::read_tsv: GLUE-style tab-separated files (no quoting, BOM, CRLF, missing final newline)
// and errors naming the file and line.
#include <doctest/doctest.h>

#include <string>

#include <deq/io/tsv.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using deq::io::parse_tsv;
using deq::io::read_tsv;

TEST_CASE("tsv: header, rows and line numbers") {
    auto const t = parse_tsv("sentence\tlabel\nit 's a \"charming\" film . \t1\nbleak\t0\n", "sst.tsv");
    CHECK(t.source() == "sst.tsv");
    REQUIRE(t.header().size() == 2);
    CHECK(t.header()[0] == "sentence");
    CHECK(t.columns() == 2);
    REQUIRE(t.size() == 2);
    CHECK(t.row(0).line == 2);
    CHECK(t.row(1).line == 3);
    // Quotes are ordinary characters; trailing spaces are kept.
    CHECK(t.field(0, 0) == "it 's a \"charming\" film . ");
    CHECK(t.field(1, 0) == "bleak");
    CHECK(t.column("label") == 1);
    CHECK(t.int_field(0, 1) == 1);
    CHECK(t.int_field(1, 1) == 0);
    std::size_t n = 0;
    for (auto const& row : t) n += row.fields.size();
    CHECK(n == 4);
}

TEST_CASE("tsv: no header, BOM, CRLF, last line without newline, empty fields") {
    // CoLA layout: no header, an empty third field, no newline at the end.
    auto const cola = parse_tsv("gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tThe rope stretch.", "cola.tsv", {.header = false});
    CHECK(cola.header().empty());
    REQUIRE(cola.size() == 2);
    CHECK(cola.columns() == 4);
    CHECK(cola.field(0, 2).empty());
    CHECK(cola.field(1, 3) == "The rope stretch.");
    CHECK(cola.row(1).line == 2);

    // MRPC header starts with a byte order mark, which is dropped.
    auto const mrpc = parse_tsv("\xEF\xBB\xBFQuality\t#1 String\r\n1\tHe said .\r\n", "mrpc.tsv");
    CHECK(mrpc.header()[0] == "Quality");
    CHECK(mrpc.column("Quality") == 0);
    REQUIRE(mrpc.size() == 1);
    CHECK(mrpc.field(0, 1) == "He said .");  // CR dropped

    // A header-only file has no rows; UTF-8 text passes through.
    auto const header_only = parse_tsv("a\tb\n", "h.tsv");
    CHECK(header_only.empty());
    CHECK(parse_tsv("x\n\xC3\xA9t\xC3\xA9\n", "u.tsv").field(0, 0) == "\xC3\xA9t\xC3\xA9");

    // Other delimiters and an explicit column count.
    auto const csv = parse_tsv("1,2,3\n4,5,6\n", "c.csv", {.header = false, .columns = 3, .delimiter = ','});
    CHECK(csv.field(1, 2) == "6");
    CHECK(csv.number_field(1, 1) == 5.0);
}

TEST_CASE("tsv: malformed rows name the file and line") {
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("a\tb\n1\t2\n3\n", "x.tsv"); }) == "deq: x.tsv:3: expected 2 fields separated by tabs, got 1");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("a\tb\n1\t2\t3\n", "x.tsv"); }) == "deq: x.tsv:2: expected 2 fields separated by tabs, got 3");
    // A blank line is a row with one empty field, not something to skip.
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("a\tb\n\n1\t2\n", "x.tsv"); }) == "deq: x.tsv:2: expected 2 fields separated by tabs, got 1");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("1\t2\n3\t4\t5", "y.tsv", {.header = false}); }) ==
          "deq: y.tsv:2: expected 2 fields separated by tabs, got 3");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("1,2\n", "c.csv", {.header = false, .columns = 3, .delimiter = ','}); }) ==
          "deq: c.csv:1: expected 3 fields separated by ',', got 2");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("", "e.tsv"); }) == "deq: e.tsv: TSV file is empty");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("\xEF\xBB\xBF", "e.tsv"); }) == "deq: e.tsv: TSV file is empty");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)parse_tsv("a\n\xC3\x28\n", "bad.tsv"); }) == "deq: bad.tsv:2: invalid UTF-8 at byte 1 of the line");

    auto const t = parse_tsv("sentence\tlabel\nfine\tx1\nok\t2.5\n", "s.tsv");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)t.int_field(0, 1); }) == "deq: s.tsv:2: column 'label': expected an integer, got 'x1'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)t.int_field(1, 1); }) == "deq: s.tsv:3: column 'label': expected an integer, got '2.5'");
    CHECK(t.number_field(1, 1) == 2.5);
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)t.number_field(0, 1); }) == "deq: s.tsv:2: column 'label': expected a finite number, got 'x1'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)t.column("score"); }) == "deq: s.tsv: no column 'score' in the header (columns: sentence, label)");
    CHECK(deq_test::message_of<deq::format_error>([&] { t.fail(1, "label out of range"); }) == "deq: s.tsv:3: label out of range");
    CHECK_THROWS_AS((void)t.row(2), deq::invalid_argument);
    CHECK_THROWS_AS((void)t.field(0, 2), deq::invalid_argument);
    auto const signs = parse_tsv("+7\t-3\t+-4\t+\t+.5\tinf\n", "p.tsv", {.header = false});
    CHECK(signs.int_field(0, 0) == 7);
    CHECK(signs.int_field(0, 1) == -3);
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)signs.int_field(0, 2); }) == "deq: p.tsv:1: column 3: expected an integer, got '+-4'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)signs.int_field(0, 3); }) == "deq: p.tsv:1: column 4: expected an integer, got '+'");
    CHECK(signs.number_field(0, 4) == 0.5);
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)signs.number_field(0, 5); }) == "deq: p.tsv:1: column 6: expected a finite number, got 'inf'");
    auto const nh = parse_tsv("1\tnan\n", "n.tsv", {.header = false});
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)nh.number_field(0, 1); }) == "deq: n.tsv:1: column 2: expected a finite number, got 'nan'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)nh.column("a"); }) == "deq: n.tsv: no column 'a' in the header (the file has no header)");
}

TEST_CASE("tsv: files") {
    deq_test::scratch_dir dir("tsv_files");
    auto const file = dir.write("dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA man.\tA dog.\tentailment\n");
    auto const t = read_tsv(file);
    CHECK(t.source() == file.string());
    CHECK(t.field(0, t.column("sentence2")) == "A dog.");
    auto const missing = dir.path() / "missing.tsv";
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)read_tsv(missing); }) == "deq: cannot open TSV file '" + missing.string() + "'");
    auto const empty = dir.write("empty.tsv", "");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)read_tsv(empty); }) == "deq: " + empty.string() + ": TSV file is empty");
    auto const bad = dir.write("bad.tsv", "a\tb\n1\t2\n3\t4\n5\n");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)read_tsv(bad); }) == "deq: " + bad.string() + ":4: expected 2 fields separated by tabs, got 1");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)read_tsv(dir.path()); }) == "deq: cannot open TSV file '" + dir.path().string() + "': it is a directory");
}
