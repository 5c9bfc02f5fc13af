/// @file
/// @brief The strict RFC 8259 recursive-descent parser behind deq::io::json::parse.
///
/// Templated on the value type so that this header does not depend on json.hpp; the value type
/// befriends the parser, which fills its private members (value, source name, path).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "utf8.hpp"

namespace deq::detail {

/// Printable description of the byte at @p offset of @p text, for syntax error messages.
inline std::string describe_json_char(std::string_view text, std::size_t offset) {
    if (offset >= text.size()) return "end of input";
    unsigned char const c = static_cast<unsigned char>(text[offset]);
    if (c >= 0x20 && c < 0x7F) return concat("'", static_cast<char>(c), "'");
    std::size_t pos = offset;
    char32_t const cp = decode_utf8(text, pos);
    if (cp == utf8_invalid) return concat("invalid UTF-8 byte 0x", "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 0xF]);
    char buf[16];
    auto const res = std::to_chars(buf, buf + sizeof buf, static_cast<std::uint32_t>(cp), 16);
    std::string hex(buf, res.ptr);
    for (auto& h : hex) h = static_cast<char>(h >= 'a' ? h - 'a' + 'A' : h);
    return "U+" + std::string(hex.size() < 4 ? 4 - hex.size() : 0, '0') + hex;
}

/// Recursive-descent parser for one JSON document (RFC 8259, no extensions).
/// @tparam Json The value type (deq::io::json).
template <class Json>
class json_parser {
public:
    /// Prepares to parse @p text, whose errors name @p source; nesting deeper than @p max_depth
    /// arrays/objects is rejected.
    json_parser(std::string_view text, std::shared_ptr<std::string const> source, std::size_t max_depth)
        : text_(text), source_(std::move(source)), max_depth_(max_depth) {}

    /// Parses the whole text as one JSON value (a leading UTF-8 byte order mark is ignored).
    Json parse_document() {
        if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
        skip_ws();
        Json root = parse_value(std::string{}, 0);
        skip_ws();
        if (pos_ != text_.size()) fail(pos_, concat("unexpected ", describe_json_char(text_, pos_), " after the JSON value"));
        return root;
    }

private:
    [[noreturn]] void fail(std::size_t offset, std::string const& what) const {
        text_position const p = position_of(text_, offset);
        throw format_error(concat("deq: ", *source_, ":", p.line, ":", p.column, ": JSON syntax error: ", what));
    }

    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    void skip_ws() {
        while (!at_end()) {
            char const c = text_[pos_];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
            ++pos_;
        }
    }

    void expect(char c, char const* context) {
        if (at_end() || text_[pos_] != c) {
            fail(pos_, concat("expected '", c, "' ", context, ", got ", describe_json_char(text_, pos_)));
        }
        ++pos_;
    }

    Json make(std::string&& path) const {
        Json v;
        v.source_ = source_;
        v.path_ = std::move(path);
        return v;
    }

    Json parse_value(std::string path, std::size_t depth) {
        if (at_end()) fail(pos_, "expected a JSON value, got end of input");
        char const c = text_[pos_];
        if (c == '{') return parse_object(std::move(path), depth + 1);
        if (c == '[') return parse_array(std::move(path), depth + 1);
        Json v = make(std::move(path));
        if (c == '"') {
            v.value_ = parse_string();
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            v.value_ = parse_number();
        } else if (c == 't' || c == 'f' || c == 'n') {
            std::string_view const word = c == 't' ? "true" : c == 'f' ? "false" : "null";
            if (text_.substr(pos_, word.size()) != word) fail(pos_, concat("invalid literal (expected '", word, "')"));
            std::size_t const end = pos_ + word.size();
            if (end < text_.size() && ((text_[end] >= 'a' && text_[end] <= 'z') || (text_[end] >= 'A' && text_[end] <= 'Z') ||
                                       (text_[end] >= '0' && text_[end] <= '9') || text_[end] == '_')) {
                fail(pos_, concat("invalid literal (expected '", word, "')"));
            }
            pos_ = end;
            if (c == 'n') {
                v.value_ = typename Json::null_type{};
            } else {
                v.value_ = c == 't';
            }
        } else {
            fail(pos_, concat("expected a JSON value, got ", describe_json_char(text_, pos_)));
        }
        return v;
    }

    void check_depth(std::size_t depth) const {
        if (depth > max_depth_) fail(pos_, concat("nesting deeper than ", max_depth_, " levels"));
    }

    Json parse_array(std::string path, std::size_t depth) {
        check_depth(depth);
        ++pos_;  // '['
        typename Json::array_type items;
        skip_ws();
        if (peek() == ']') {
            ++pos_;
        } else {
            while (true) {
                skip_ws();
                items.push_back(parse_value(concat(path, "[", items.size(), "]"), depth));
                skip_ws();
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                if (peek() == ']') {
                    ++pos_;
                    break;
                }
                fail(pos_, concat("expected ',' or ']' after an array element, got ", describe_json_char(text_, pos_)));
            }
        }
        Json v = make(std::move(path));
        v.value_ = std::move(items);
        return v;
    }

    Json parse_object(std::string path, std::size_t depth) {
        check_depth(depth);
        ++pos_;  // '{'
        typename Json::object_storage obj;
        std::vector<std::size_t> key_offsets;
        skip_ws();
        if (peek() == '}') {
            ++pos_;
        } else {
            while (true) {
                skip_ws();
                if (peek() != '"') {
                    fail(pos_, concat("expected a string key, got ", describe_json_char(text_, pos_)));
                }
                key_offsets.push_back(pos_);
                std::string key = parse_string();
                skip_ws();
                expect(':', "after an object key");
                skip_ws();
                std::string child_path = path.empty() ? key : concat(path, ".", key);
                Json value = parse_value(std::move(child_path), depth);
                obj.members.push_back({std::move(key), std::move(value)});
                skip_ws();
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                if (peek() == '}') {
                    ++pos_;
                    break;
                }
                fail(pos_, concat("expected ',' or '}' after an object member, got ", describe_json_char(text_, pos_)));
            }
        }
        std::size_t const dup = obj.build_index();
        if (dup != obj.members.size()) {
            fail(key_offsets[dup], concat("duplicate key \"", obj.members[dup].key, "\"", path.empty() ? "" : " in '", path,
                                          path.empty() ? "" : "'"));
        }
        Json v = make(std::move(path));
        v.value_ = std::move(obj);
        return v;
    }

    static int hex_value(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // Reads the 4 hex digits of a \u escape whose backslash is at @p escape_at.
    char32_t read_hex4(std::size_t escape_at) {
        char32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            int const h = pos_ < text_.size() ? hex_value(text_[pos_]) : -1;
            if (h < 0) fail(escape_at, "\\u escape needs 4 hexadecimal digits");
            v = (v << 4) | static_cast<char32_t>(h);
            ++pos_;
        }
        return v;
    }

    std::string parse_string() {
        std::size_t const open = pos_;
        ++pos_;  // '"'
        std::string out;
        while (true) {
            if (at_end()) fail(open, "unterminated string");
            unsigned char const c = static_cast<unsigned char>(text_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) fail(pos_, concat("unescaped control character ", describe_json_char(text_, pos_), " in a string"));
            if (c >= 0x80) {
                std::size_t const at = pos_;
                if (decode_utf8(text_, pos_) == utf8_invalid) fail(at, "invalid UTF-8 in a string");
                out.append(text_.substr(at, pos_ - at));
                continue;
            }
            if (c != '\\') {
                out += static_cast<char>(c);
                ++pos_;
                continue;
            }
            std::size_t const esc = pos_;
            ++pos_;
            if (at_end()) fail(open, "unterminated string");
            char const e = text_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    char32_t cp = read_hex4(esc);
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail(esc, "unpaired low surrogate in \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (text_.substr(pos_, 2) != "\\u") fail(esc, "high surrogate \\u escape not followed by a low surrogate");
                        std::size_t const esc2 = pos_;
                        pos_ += 2;
                        char32_t const low = read_hex4(esc2);
                        if (low < 0xDC00 || low > 0xDFFF) fail(esc, "high surrogate \\u escape not followed by a low surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    encode_utf8(cp, out);
                    break;
                }
                default: fail(esc, concat("invalid escape '\\", describe_json_char(text_, pos_ - 1), "'"));
            }
        }
    }

    // True when the (syntactically valid) number literal @p lit has magnitude below 1.
    static bool magnitude_below_one(std::string_view lit) {
        std::size_t const e = lit.find_first_of("eE");
        std::string_view const mant = lit.substr(0, e);
        long long exp10 = 0;
        if (e != std::string_view::npos) {
            std::size_t i = e + 1;
            bool neg = false;
            if (lit[i] == '+' || lit[i] == '-') neg = lit[i++] == '-';
            for (; i < lit.size(); ++i) {
                if (exp10 < 100000000) exp10 = exp10 * 10 + (lit[i] - '0');
            }
            if (neg) exp10 = -exp10;
        }
        // Decimal exponent of the leading non-zero digit: position relative to the point.
        std::size_t const point = mant.find('.');
        std::size_t const int_end = point == std::string_view::npos ? mant.size() : point;
        long long lead = 0;
        bool found = false;
        long long index = 0;  // digit index counted from the start of the integer part
        for (char const c : mant) {
            if (c < '0' || c > '9') continue;
            if (c != '0') {
                found = true;
                break;
            }
            ++index;
        }
        if (!found) return true;  // zero
        std::size_t const int_start = mant[0] == '-' ? 1 : 0;
        lead = static_cast<long long>(int_end - int_start) - index - 1;
        return lead + exp10 < 0;
    }

    typename Json::number_type parse_number() {
        std::size_t const start = pos_;
        auto digit = [&] { return !at_end() && text_[pos_] >= '0' && text_[pos_] <= '9'; };
        if (peek() == '-') ++pos_;
        if (!digit()) fail(start, "invalid number (expected a digit after '-')");
        if (text_[pos_] == '0') {
            ++pos_;
            if (digit()) fail(start, "invalid number (leading zero)");
        } else {
            while (digit()) ++pos_;
        }
        bool integral = true;
        if (peek() == '.') {
            integral = false;
            ++pos_;
            if (!digit()) fail(start, "invalid number (expected a digit after '.')");
            while (digit()) ++pos_;
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            ++pos_;
            if (peek() == '+' || peek() == '-') ++pos_;
            if (!digit()) fail(start, "invalid number (expected a digit in the exponent)");
            while (digit()) ++pos_;
        }
        std::string_view const lit = text_.substr(start, pos_ - start);
        typename Json::number_type n{};
        auto const r = std::from_chars(lit.data(), lit.data() + lit.size(), n.value);
        if (r.ec == std::errc::result_out_of_range) {
            // Underflow reads as (signed) zero; overflow is an error.
            if (!magnitude_below_one(lit)) fail(start, concat("number ", lit, " is out of the range of a double"));
            n.value = lit[0] == '-' ? -0.0 : 0.0;
        } else if (r.ec != std::errc{} || r.ptr != lit.data() + lit.size()) {
            fail(start, concat("invalid number ", lit));
        }
        if (integral) {
            std::int64_t i = 0;
            auto const ri = std::from_chars(lit.data(), lit.data() + lit.size(), i);
            if (ri.ec == std::errc{} && ri.ptr == lit.data() + lit.size()) {
                n.integer = i;
                n.is_integer = true;
            }
        }
        return n;
    }

    std::string_view text_;
    std::shared_ptr<std::string const> source_;
    std::size_t max_depth_;
    std::size_t pos_ = 0;
};

}  // namespace deq::detail
