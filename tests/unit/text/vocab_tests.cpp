// deq::text::vocab: vocab.txt parsing (line terminators, ids = line numbers) and its errors.
#include <doctest/doctest.h>

#include <string>

#include <deq/text/vocab.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using deq::text::vocab;

TEST_CASE("vocab: ids are line numbers, and LF, CRLF and CR all end lines") {
    auto const lf = vocab::parse("[PAD]\n[UNK]\nhello\n##lo\n", "v.txt");
    CHECK(lf.size() == 4);
    CHECK(lf.id("[PAD]") == 0);
    CHECK(lf.id("##lo") == 3);
    CHECK(lf.token(2) == "hello");
    CHECK(lf.contains("hello"));
    CHECK_FALSE(lf.contains("hell"));
    CHECK_FALSE(lf.find("Hello").has_value());
    CHECK(lf.source() == "v.txt");

    auto const crlf = vocab::parse("a\r\nb\r\n\xC3\xA9", "v.txt");  // no final newline
    CHECK(crlf.size() == 3);
    CHECK(crlf.id("b") == 1);
    CHECK(crlf.id("\xC3\xA9") == 2);
    auto const cr = vocab::parse("a\rb\r", "v.txt");
    CHECK(cr.size() == 2);
    CHECK(cr.id("b") == 1);
    // Tokens are kept byte for byte (a space inside a token is part of it).
    auto const spaced = vocab::parse("a b\n c\n", "v.txt");
    CHECK(spaced.id("a b") == 0);
    CHECK(spaced.id(" c") == 1);
    auto const built = vocab::from_tokens({"x", "y"});
    CHECK(built.id("y") == 1);
    CHECK(built.tokens().size() == 2);
}

TEST_CASE("vocab: malformed files name the file and line") {
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::parse("", "v.txt"); }) == "deq: v.txt: vocabulary file is empty");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::parse("a\nb\nc\nb\n", "v.txt"); }) == "deq: v.txt:4: duplicate token 'b' (first on line 2)");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::parse("a\r\nb\r\n\r\nc\r\n", "v.txt"); }) == "deq: v.txt:3: empty token");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::parse("a\n\n", "v.txt"); }) == "deq: v.txt:2: empty token");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::parse("\xEF\xBB\xBF[PAD]\n", "v.txt"); }) == "deq: v.txt:1: byte order mark before the first token");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::parse("a\nb\xFF\n", "v.txt"); }) == "deq: v.txt:2: invalid UTF-8 at byte 2 of the token");
    CHECK(deq_test::message_of<deq::format_error>([] { (void)vocab::from_tokens({"x", "x"}); }) == "deq: <tokens>:2: duplicate token 'x' (first on line 1)");

    auto const v = vocab::parse("a\nb\n", "v.txt");
    CHECK_THROWS_WITH_AS((void)v.id("zz"), "deq: invalid argument 'token' = 'zz': is not in the vocabulary v.txt", deq::invalid_argument);
    CHECK_THROWS_WITH_AS((void)v.token(2), "deq: invalid argument 'id' = 2: must be in [0, 2) (vocabulary v.txt)", deq::invalid_argument);
    CHECK_THROWS_AS((void)v.token(-1), deq::invalid_argument);
}

TEST_CASE("vocab: files") {
    deq_test::scratch_dir dir("vocab_files");
    auto const file = dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n");
    auto const v = vocab::load(file);
    CHECK(v.size() == 3);
    CHECK(v.source() == file.string());
    auto const missing = dir.path() / "missing.txt";
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)vocab::load(missing); }) == "deq: cannot open vocabulary file '" + missing.string() + "'");
    auto const empty = dir.write("empty.txt", "");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)vocab::load(empty); }) == "deq: " + empty.string() + ": vocabulary file is empty");
    auto const dup = dir.write("dup.txt", "x\ny\nx\n");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)vocab::load(dup); }) == "deq: " + dup.string() + ":3: duplicate token 'x' (first on line 1)");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)vocab::load(dir.path()); }) ==
          "deq: cannot open vocabulary file '" + dir.path().string() + "': it is a directory");
}
