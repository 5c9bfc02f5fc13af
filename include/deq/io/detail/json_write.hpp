/// @file
/// @brief Serialisation helpers for deq::io::json: string escaping and number formatting.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace deq::detail {

/// Appends @p text as a JSON string literal (quotes included) to @p out. `"`, `\` and the control
/// characters U+0000..U+001F are escaped; every other byte (UTF-8 included) is copied unchanged.
inline void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (char const ch : text) {
        unsigned char const c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 0xF];
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
}

/// Appends the decimal form of @p value to @p out.
inline void append_json_integer(std::string& out, std::int64_t value) {
    char buf[24];
    auto const res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
}

/// Appends the shortest decimal form of the finite @p value that reads back to the same double.
inline void append_json_double(std::string& out, double value) {
    char buf[32];
    auto const res = std::to_chars(buf, buf + sizeof buf, value);
    std::string_view const text(buf, static_cast<std::size_t>(res.ptr - buf));
    out += text;
    // "1" would read back as an integer: keep the number's floating nature visible.
    if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

}  // namespace deq::detail
