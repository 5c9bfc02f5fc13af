/// @file
/// @brief Number formatting and parsing helpers for mask-rule specs (internal; see deq/mask/mask_rule.hpp).
#pragma once

#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace deq::detail {

/// Shortest decimal text that reads back as exactly @p value.
inline std::string rule_format_number(double value) {
    char buffer[64];
    auto const result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
}

/// Parses all of @p text as a double (decimal or scientific notation); nullopt otherwise.
inline std::optional<double> rule_parse_double(std::string_view text) {
    if (text.empty() || text.front() == '+') return std::nullopt;
    double value = 0;
    auto const result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc{} || result.ptr != text.data() + text.size()) return std::nullopt;
    return value;
}

/// Parses all of @p text as a decimal integer; nullopt otherwise.
inline std::optional<std::int64_t> rule_parse_integer(std::string_view text) {
    if (text.empty()) return std::nullopt;
    std::int64_t value = 0;
    auto const result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc{} || result.ptr != text.data() + text.size()) return std::nullopt;
    return value;
}

/// Lower-cases @p text and strips surrounding white space.
inline std::string rule_normalize(std::string_view text) {
    std::size_t begin = 0, end = text.size();
    while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
    while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
    std::string out(text.substr(begin, end - begin));
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// Splits @p text at every @p sep (empty fields kept).
inline std::vector<std::string_view> rule_split(std::string_view text, char sep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        std::size_t const pos = text.find(sep, start);
        if (pos == std::string_view::npos) {
            parts.push_back(text.substr(start));
            return parts;
        }
        parts.push_back(text.substr(start, pos - start));
        start = pos + 1;
    }
}

/// If @p text starts with @p prefix, removes it and returns true.
inline bool rule_consume_prefix(std::string_view& text, std::string_view prefix) {
    if (text.substr(0, prefix.size()) != prefix) return false;
    text.remove_prefix(prefix.size());
    return true;
}

}  // namespace deq::detail
