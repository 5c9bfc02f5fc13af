/// @file
/// @brief Minimal UTF-8 decoding, validation and encoding (RFC 3629) for the readers in deq::io.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace deq::detail {

/// Returned by decode_utf8 for an ill-formed sequence.
inline constexpr char32_t utf8_invalid = 0xFFFFFFFFu;

/// Decodes the code point starting at @p text[pos] and advances @p pos past it. Rejects overlong
/// forms, surrogates (U+D800..U+DFFF), values above U+10FFFF and truncated sequences: it then
/// returns utf8_invalid and leaves @p pos unchanged.
inline char32_t decode_utf8(std::string_view text, std::size_t& pos) noexcept {
    auto const byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char const b0 = byte(pos);
    if (b0 < 0x80) {
        ++pos;
        return b0;
    }
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2, cp = b0 & 0x1Fu, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, cp = b0 & 0x0Fu, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, cp = b0 & 0x07u, min = 0x10000;
    } else {
        return utf8_invalid;
    }
    if (pos + len > text.size()) return utf8_invalid;
    for (std::size_t i = 1; i < len; ++i) {
        unsigned char const b = byte(pos + i);
        if ((b & 0xC0) != 0x80) return utf8_invalid;
        cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return utf8_invalid;
    pos += len;
    return cp;
}

/// Appends the UTF-8 encoding of the scalar value @p cp (must not be a surrogate) to @p out.
inline void encode_utf8(char32_t cp, std::string& out) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

/// Byte offset of the first ill-formed UTF-8 sequence in @p text, or std::string_view::npos.
inline std::size_t find_invalid_utf8(std::string_view text) noexcept {
    std::size_t pos = 0;
    while (pos < text.size()) {
        if (static_cast<unsigned char>(text[pos]) < 0x80) {
            ++pos;
            continue;
        }
        std::size_t const at = pos;
        if (decode_utf8(text, pos) == utf8_invalid) return at;
    }
    return std::string_view::npos;
}

/// 1-based line and column (in code points) of byte offset @p offset in @p text; lines end at LF.
struct text_position {
    std::size_t line = 1;    ///< 1-based line number.
    std::size_t column = 1;  ///< 1-based column, counted in code points.
};

/// Computes the text_position of byte @p offset (clamped to the text size) in @p text.
inline text_position position_of(std::string_view text, std::size_t offset) noexcept {
    text_position p;
    if (offset > text.size()) offset = text.size();
    for (std::size_t i = 0; i < offset; ++i) {
        unsigned char const c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            ++p.line;
            p.column = 1;
        } else if ((c & 0xC0) != 0x80) {
            ++p.column;
        }
    }
    return p;
}

}  // namespace deq::detail
