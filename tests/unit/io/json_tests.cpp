// deq::io::json: RFC 8259 parsing, typed accessors with paths in their errors, syntax errors with
// line and column, unicode escapes, depth limit, files and serialisation.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include <deq/io/json.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using deq::io::json;

namespace {

std::string syntax_error(std::string_view text) {
    return deq_test::message_of<deq::format_error>([&] { (void)json::parse(text, "doc.json"); });
}

}  // namespace

TEST_CASE("json: scalars and numbers") {
    CHECK(json::parse("null").is_null());
    CHECK(json::parse(" true ").as_bool());
    CHECK_FALSE(json::parse("\tfalse\r\n").as_bool());

    json const big = json::parse("9223372036854775807");
    CHECK(big.is_integer());
    CHECK(big.as_int() == std::numeric_limits<std::int64_t>::max());
    CHECK(json::parse("-9223372036854775808").as_int() == std::numeric_limits<std::int64_t>::min());
    // One past INT64_MAX is a number but no longer an exact integer.
    json const over = json::parse("9223372036854775808");
    CHECK(over.is_number());
    CHECK_FALSE(over.is_integer());
    CHECK(over.as_double() == 9223372036854775808.0);

    CHECK(json::parse("0").as_int() == 0);
    CHECK(json::parse("-0").as_int() == 0);
    CHECK(json::parse("-12").as_int() == -12);
    CHECK(json::parse("1.5").as_double() == 1.5);
    CHECK(json::parse("-2.5e-3").as_double() == -0.0025);
    CHECK(json::parse("1E2").as_double() == 100.0);
    CHECK(json::parse("1e+2").as_int() == 100);  // integral double: exact
    CHECK(json::parse("2.0").as_int() == 2);
    CHECK(json::parse("0.1").as_double() == 0.1);
    CHECK(json::parse("4.9e-324").as_double() == std::numeric_limits<double>::denorm_min());
    CHECK(json::parse("1e-400").as_double() == 0.0);  // underflow reads as zero
    CHECK(json::parse("0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001").as_double() == 0.0);
    CHECK(json::parse("1.7976931348623157e308").as_double() == std::numeric_limits<double>::max());

    CHECK(json::parse("3").as<int>() == 3);
    CHECK(json::parse("3").as<float>() == 3.0f);
    CHECK(json::parse("255").as<std::uint8_t>() == 255);
    CHECK(json::parse("\"x\"").as<std::string>() == "x");
    CHECK(json::parse("true").as<bool>());
}

TEST_CASE("json: strings, escapes and unicode") {
    CHECK(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string() == "a\"b\\c/d\b\f\n\r\t");
    CHECK(json::parse(R"("\u0041\u00e9\u00E9")").as_string() == "A\xC3\xA9\xC3\xA9");
    CHECK(json::parse(R"("\u20ac")").as_string() == "\xE2\x82\xAC");               // U+20AC, 3 bytes
    CHECK(json::parse(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80");     // U+1F600 surrogate pair
    CHECK(json::parse(R"("\uD834\uDD1E")").as_string() == "\xF0\x9D\x84\x9E");     // U+1D11E
    CHECK(json::parse(R"("\udbff\udfff")").as_string() == "\xF4\x8F\xBF\xBF");     // U+10FFFF
    CHECK(json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));
    CHECK(json::parse(R"("\u007f\u0080\u07ff\u0800\uffff")").as_string() ==
          "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF");
    // Raw UTF-8 passes through unchanged.
    CHECK(json::parse("\"caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80\"").as_string() == "caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80");
    // A leading byte order mark is ignored.
    CHECK(json::parse("\xEF\xBB\xBF{\"a\":1}").at("a").as_int() == 1);
}

TEST_CASE("json: nested documents, paths and accessors") {
    json const doc = json::parse(R"({
  "name": "bert",
  "layers": [ {"heads": 12, "act": "gelu"}, {"heads": 6} ],
  "ratio": 0.5,
  "flag": false,
  "none": null,
  "empty_obj": {}, "empty_arr": []
})",
                                 "config.json");
    CHECK(doc.is_object());
    CHECK(doc.size() == 7);
    CHECK(doc.source() == "config.json");
    CHECK(doc.path().empty());
    CHECK(doc.at("name").as_string() == "bert");
    CHECK(doc.at("layers").size() == 2);
    CHECK(doc.at("layers").at(1).at("heads").as_int() == 6);
    CHECK(doc.at("layers").at(1).at("heads").path() == "layers[1].heads");
    CHECK(doc.at("layers").at(0).at("act").path() == "layers[0].act");
    CHECK(doc.at("none").is_null());
    CHECK(doc.at("empty_obj").size() == 0);
    CHECK(doc.at("empty_arr").as_array().empty());
    CHECK(doc.contains("ratio"));
    CHECK_FALSE(doc.contains("missing"));
    CHECK(doc.find("missing") == nullptr);
    CHECK(doc.value<double>("ratio", 1.0) == 0.5);
    CHECK(doc.value<double>("missing", 1.0) == 1.0);
    CHECK(doc.value<std::string>("name", "x") == "bert");
    // Members keep document order.
    auto const& members = doc.as_object();
    REQUIRE(members.size() == 7);
    CHECK(members[0].key == "name");
    CHECK(members[1].key == "layers");
    CHECK(members[6].key == "empty_arr");
}

TEST_CASE("json: typed accessor errors name the file and the field") {
    json const cfg = json::parse(R"({"num_attention_heads": "12", "hidden": 1.5, "big": 5000000000,
                                    "layers": [{"act": 3}], "list": [1, 2]})",
                                 "config.json");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("num_attention_heads").as_int(); }) ==
          "deq: config.json: field 'num_attention_heads': expected integer, got string");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("hidden").as_int(); }) ==
          "deq: config.json: field 'hidden': expected integer, got number 1.5");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("big").as<std::int32_t>(); }) ==
          "deq: config.json: field 'big': expected integer in [-2147483648, 2147483647], got 5000000000");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("hidden").as_int(1, 4); }) ==
          "deq: config.json: field 'hidden': expected integer, got number 1.5");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("big").as_int(1, 4); }) ==
          "deq: config.json: field 'big': expected integer in [1, 4], got 5000000000");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("layers").at(0).at("act").as_string(); }) ==
          "deq: config.json: field 'layers[0].act': expected string, got number");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("vocab_size"); }) == "deq: config.json: missing field 'vocab_size'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("layers").at(0).at("eps"); }) == "deq: config.json: missing field 'layers[0].eps'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("list").at(2); }) ==
          "deq: config.json: field 'list': index 2 out of range (array of 2)");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("list").at("x"); }) == "deq: config.json: field 'list': expected object, got array");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.as_array(); }) == "deq: config.json: expected array, got object");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("hidden").size(); }) ==
          "deq: config.json: field 'hidden': expected array or object, got number");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("hidden").as_bool(); }) == "deq: config.json: field 'hidden': expected boolean, got number");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("list").as_double(); }) == "deq: config.json: field 'list': expected number, got array");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.value<int>("hidden", 3); }) ==
          "deq: config.json: field 'hidden': expected integer, got number 1.5");
    CHECK(deq_test::message_of<deq::format_error>([&] { cfg.at("layers").at(0).fail("unsupported activation"); }) ==
          "deq: config.json: field 'layers[0]': unsupported activation");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse("-1").as<std::uint32_t>(); }) ==
          "deq: <string>: expected integer in [0, 4294967295], got -1");
    // Numbers outside float's finite range are an error for as<float>(), not infinity.
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse(R"({"t": 1e39})", "t.json").at("t").as<float>(); }) ==
          "deq: t.json: field 't': number 1e+39 is outside the range of float (largest finite 3.40282347e+38)");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse("-4e38").as<float>(); }).find("outside the range of float") !=
          std::string::npos);
    CHECK(json::parse("1e39").as<double>() == 1e39);
    CHECK(json::parse("3.4028234e38").as<float>() == std::numeric_limits<float>::max());
    CHECK(json::parse("1e-50").as<float>() == 0.0f);
    CHECK(cfg.value<float>("missing", 2.5f) == 2.5f);
}

TEST_CASE("json: syntax errors name the source, line and column") {
    CHECK(syntax_error("") == "deq: doc.json:1:1: JSON syntax error: expected a JSON value, got end of input");
    CHECK(syntax_error("  \n ") == "deq: doc.json:2:2: JSON syntax error: expected a JSON value, got end of input");
    CHECK(syntax_error("[1, 2,]") == "deq: doc.json:1:7: JSON syntax error: expected a JSON value, got ']'");
    CHECK(syntax_error("{\"a\": 1,}") == "deq: doc.json:1:9: JSON syntax error: expected a string key, got '}'");
    CHECK(syntax_error("{\"a\" 1}") == "deq: doc.json:1:6: JSON syntax error: expected ':' after an object key, got '1'");
    CHECK(syntax_error("{\"a\": 1 \"b\": 2}") ==
          "deq: doc.json:1:9: JSON syntax error: expected ',' or '}' after an object member, got '\"'");
    CHECK(syntax_error("[1 2]") == "deq: doc.json:1:4: JSON syntax error: expected ',' or ']' after an array element, got '2'");
    CHECK(syntax_error("[1,\n 2,\n  x]") == "deq: doc.json:3:3: JSON syntax error: expected a JSON value, got 'x'");
    CHECK(syntax_error("{'a': 1}") == "deq: doc.json:1:2: JSON syntax error: expected a string key, got '''");
    CHECK(syntax_error("[1] // c") == "deq: doc.json:1:5: JSON syntax error: unexpected '/' after the JSON value");
    CHECK(syntax_error("1 2") == "deq: doc.json:1:3: JSON syntax error: unexpected '2' after the JSON value");
    CHECK(syntax_error("{} x") == "deq: doc.json:1:4: JSON syntax error: unexpected 'x' after the JSON value");
    CHECK(syntax_error("[1]\x01") == "deq: doc.json:1:4: JSON syntax error: unexpected U+0001 after the JSON value");
    CHECK(syntax_error("{\"a\":1,\"b\":2,\"a\":3}") == "deq: doc.json:1:14: JSON syntax error: duplicate key \"a\"");
    CHECK(syntax_error("{\"o\":{\"k\":1,\"k\":2}}") == "deq: doc.json:1:13: JSON syntax error: duplicate key \"k\" in 'o'");
    // Literals.
    CHECK(syntax_error("tru") == "deq: doc.json:1:1: JSON syntax error: invalid literal (expected 'true')");
    CHECK(syntax_error("nulls") == "deq: doc.json:1:1: JSON syntax error: invalid literal (expected 'null')");
    CHECK(syntax_error("NaN") == "deq: doc.json:1:1: JSON syntax error: expected a JSON value, got 'N'");
    CHECK(syntax_error("[Infinity]") == "deq: doc.json:1:2: JSON syntax error: expected a JSON value, got 'I'");
    // Numbers.
    CHECK(syntax_error("01") == "deq: doc.json:1:1: JSON syntax error: invalid number (leading zero)");
    CHECK(syntax_error("-") == "deq: doc.json:1:1: JSON syntax error: invalid number (expected a digit after '-')");
    CHECK(syntax_error("[-a]") == "deq: doc.json:1:2: JSON syntax error: invalid number (expected a digit after '-')");
    CHECK(syntax_error("1.") == "deq: doc.json:1:1: JSON syntax error: invalid number (expected a digit after '.')");
    CHECK(syntax_error("1e") == "deq: doc.json:1:1: JSON syntax error: invalid number (expected a digit in the exponent)");
    CHECK(syntax_error("1e+") == "deq: doc.json:1:1: JSON syntax error: invalid number (expected a digit in the exponent)");
    CHECK(syntax_error(".5") == "deq: doc.json:1:1: JSON syntax error: expected a JSON value, got '.'");
    CHECK(syntax_error("+1") == "deq: doc.json:1:1: JSON syntax error: expected a JSON value, got '+'");
    CHECK(syntax_error("0x10") == "deq: doc.json:1:2: JSON syntax error: unexpected 'x' after the JSON value");
    CHECK(syntax_error("[1e400]") == "deq: doc.json:1:2: JSON syntax error: number 1e400 is out of the range of a double");
    CHECK(syntax_error("-1e400") == "deq: doc.json:1:1: JSON syntax error: number -1e400 is out of the range of a double");
    // Strings.
    CHECK(syntax_error("\"abc") == "deq: doc.json:1:1: JSON syntax error: unterminated string");
    CHECK(syntax_error("[\"a\\") == "deq: doc.json:1:2: JSON syntax error: unterminated string");
    CHECK(syntax_error("\"a\tb\"") == "deq: doc.json:1:3: JSON syntax error: unescaped control character U+0009 in a string");
    CHECK(syntax_error("\"a\nb\"") == "deq: doc.json:1:3: JSON syntax error: unescaped control character U+000A in a string");
    CHECK(syntax_error(R"("\x41")") == "deq: doc.json:1:2: JSON syntax error: invalid escape '\\'x''");
    CHECK(syntax_error(R"("\u12")") == "deq: doc.json:1:2: JSON syntax error: \\u escape needs 4 hexadecimal digits");
    CHECK(syntax_error(R"("\u12G4")") == "deq: doc.json:1:2: JSON syntax error: \\u escape needs 4 hexadecimal digits");
    CHECK(syntax_error(R"("\ud83d")") ==
          "deq: doc.json:1:2: JSON syntax error: high surrogate \\u escape not followed by a low surrogate");
    CHECK(syntax_error(R"("\ud83dx")") ==
          "deq: doc.json:1:2: JSON syntax error: high surrogate \\u escape not followed by a low surrogate");
    CHECK(syntax_error(R"("\ud83d\u0041")") ==
          "deq: doc.json:1:2: JSON syntax error: high surrogate \\u escape not followed by a low surrogate");
    CHECK(syntax_error(R"("ab\ude00")") == "deq: doc.json:1:4: JSON syntax error: unpaired low surrogate in \\u escape");
    CHECK(syntax_error("\"a\xC3(\"") == "deq: doc.json:1:3: JSON syntax error: invalid UTF-8 in a string");
    CHECK(syntax_error("\"\xC0\xAF\"") == "deq: doc.json:1:2: JSON syntax error: invalid UTF-8 in a string");          // overlong '/'
    CHECK(syntax_error("\"\xED\xA0\x80\"") == "deq: doc.json:1:2: JSON syntax error: invalid UTF-8 in a string");      // encoded surrogate
    CHECK(syntax_error("\"\xF4\x90\x80\x80\"") == "deq: doc.json:1:2: JSON syntax error: invalid UTF-8 in a string");  // > U+10FFFF
    CHECK(syntax_error("\"\xE2\x82\"") == "deq: doc.json:1:2: JSON syntax error: invalid UTF-8 in a string");          // truncated
    CHECK(syntax_error("\xFF") == "deq: doc.json:1:1: JSON syntax error: expected a JSON value, got invalid UTF-8 byte 0xFF");
    // Columns count code points: the two-byte 'é' and the four-byte emoji are one column each.
    CHECK(syntax_error("{\"\xC3\xA9\xF0\x9F\x98\x80\": x}") == "deq: doc.json:1:8: JSON syntax error: expected a JSON value, got 'x'");
    CHECK(syntax_error("[\"\xC3\xA9\" \xC3\xA9]") ==
          "deq: doc.json:1:6: JSON syntax error: expected ',' or ']' after an array element, got U+00E9");
}

TEST_CASE("json: nesting depth limit") {
    std::string deep(300, '[');
    deep += std::string(300, ']');
    CHECK(syntax_error(deep) == "deq: doc.json:1:257: JSON syntax error: nesting deeper than 256 levels");
    CHECK(json::parse(deep, "doc.json", {.max_depth = 300}).is_array());
    // Far deeper than any stack could recurse: rejected at the limit, no stack overflow.
    std::string const very_deep(1000000, '[');
    CHECK(syntax_error(very_deep) == "deq: doc.json:1:257: JSON syntax error: nesting deeper than 256 levels");
    std::string objects;
    for (int i = 0; i < 3; ++i) objects += "{\"a\":";
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse(objects + "1}}}", "o.json", {.max_depth = 2}); }) ==
          "deq: o.json:1:11: JSON syntax error: nesting deeper than 2 levels");
    CHECK(json::parse(objects + "1}}}", "o.json", {.max_depth = 3}).at("a").at("a").at("a").as_int() == 1);
}

TEST_CASE("json: files") {
    deq_test::scratch_dir dir("json_files");
    auto const good = dir.write("config.json", "{\n  \"vocab_size\": 30522,\n  \"hidden_act\": \"gelu\"\n}\n");
    json const cfg = json::parse_file(good);
    CHECK(cfg.at("vocab_size").as_int() == 30522);
    CHECK(cfg.source() == good.string());
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)cfg.at("hidden_act").as_int(); }) ==
          "deq: " + good.string() + ": field 'hidden_act': expected integer, got string");

    auto const missing = dir.path() / "nope.json";
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse_file(missing); }) == "deq: cannot open JSON file '" + missing.string() + "'");
    auto const empty = dir.write("empty.json", "");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse_file(empty); }) == "deq: JSON file '" + empty.string() + "' is empty");
    auto const blank = dir.write("blank.json", " \n\t\r\n");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse_file(blank); }) == "deq: JSON file '" + blank.string() + "' is empty");
    auto const bad = dir.write("bad.json", "{\n  \"a\": 1,\n  \"b\": [1, 2\n}\n");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse_file(bad); }) ==
          "deq: " + bad.string() + ":4:1: JSON syntax error: expected ',' or ']' after an array element, got '}'");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json::parse_file(dir.path()); }) ==
          "deq: cannot open JSON file '" + dir.path().string() + "': it is a directory");
}

TEST_CASE("json: building and serialising") {
    json doc = json::object({{"model", "bert"}, {"layers", 6}});
    doc["ratio"] = 0.25;
    doc["ok"] = true;
    doc["nothing"] = nullptr;
    doc["list"].push_back(1);
    doc["list"].push_back("two\n\"q\"\x01");
    doc["list"].push_back(json::array({3.5, json::object()}));
    doc["nested"]["x"] = -7;
    CHECK(doc.dump() ==
          R"({"model":"bert","layers":6,"ratio":0.25,"ok":true,"nothing":null,"list":[1,"two\n\"q\"\u0001",[3.5,{}]],"nested":{"x":-7}})");
    CHECK(json::parse(doc.dump()) == doc);
    CHECK(json::parse(doc.dump(2)) == doc);
    CHECK(json::object({{"a", json::array({1, 2})}, {"b", json::array()}}).dump(2) == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": []\n}");
    // Doubles: shortest round-trip form, and integral doubles keep a fraction so they stay doubles.
    CHECK(json(0.1).dump() == "0.1");
    CHECK(json(1.0).dump() == "1.0");
    CHECK(json(1e300).dump() == "1e+300");
    CHECK(json(-2.5f).dump() == "-2.5");
    CHECK(json(std::int64_t{-9223372036854775807 - 1}).dump() == "-9223372036854775808");
    CHECK(json::parse(json(0.1).dump()).as_double() == 0.1);
    CHECK(json("\xC3\xA9").dump() == "\"\xC3\xA9\"");
    // Equality: member order does not matter, values do.
    CHECK(json::parse(R"({"a":1,"b":[true,null]})") == json::parse(R"({"b":[true,null],"a":1.0})"));
    CHECK_FALSE(json::parse(R"({"a":1})") == json::parse(R"({"a":2})"));
    CHECK_FALSE(json::parse(R"({"a":1})") == json::parse(R"({"b":1})"));
    CHECK_FALSE(json::parse("[1]") == json::parse("[1,2]"));
    CHECK_FALSE(json::parse("\"1\"") == json::parse("1"));
    // A parsed object can be extended; its children carry paths.
    json parsed = json::parse(R"({"a": {}})", "p.json");
    parsed["a"]["b"] = json::array();
    CHECK(parsed.at("a").at("b").path() == "a.b");
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)parsed.at("a").at("b").as_string(); }) == "deq: p.json: field 'a.b': expected string, got array");
    // Bad construction.
    CHECK_THROWS_AS(json(std::numeric_limits<double>::quiet_NaN()), deq::numeric_error);
    CHECK_THROWS_AS(json(std::numeric_limits<float>::infinity()), deq::numeric_error);
    CHECK_THROWS_AS(json(std::uint64_t{1} << 63), deq::invalid_argument);
    CHECK_THROWS_AS(json::object({{"a", 1}, {"a", 2}}), deq::invalid_argument);
    json str = "x";
    CHECK_THROWS_AS(str["k"], deq::format_error);
    CHECK_THROWS_AS(str.push_back(1), deq::format_error);
    CHECK(deq_test::message_of<deq::format_error>([&] { (void)json(3).as_string(); }) == "deq: JSON value: expected string, got number");
}
