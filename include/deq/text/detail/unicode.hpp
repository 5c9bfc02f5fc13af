/// @file
/// @brief Unicode character classes, canonical decomposition and lower-casing for the BERT
/// tokenizer, on top of utf8proc (categories, decompositions, case mappings).
///
/// The classes are those of the Hugging Face `tokenizers` BERT normalizer and pre-tokenizer, which
/// transformers' BertTokenizer (fast) uses:
/// - whitespace: TAB, LF, CR and the Unicode White_Space property (Rust `char::is_whitespace`);
/// - control: general categories Cc, Cf and Co, except TAB, LF and CR (the `unicode_categories`
///   crate's `is_other`, which leaves out unassigned code points, Cn);
/// - punctuation: ASCII 33-47, 58-64, 91-96, 123-126, plus general categories Pc, Pd, Ps, Pe, Pi,
///   Pf and Po;
/// - CJK ideographs: the blocks listed in is_cjk_ideograph;
/// - lower-casing: the full (unconditional) Unicode mapping, character by character, so U+0130 'İ'
///   becomes "i" + U+0307 and a final capital sigma becomes 'σ' (not 'ς'). utf8proc_tolower is the
///   simple mapping; over all code points it agrees with Python 3.11's `chr(c).lower()` except for
///   U+0130 (simple mapping 'i'), which append_lowercase special-cases. Python's `str.lower()` on a
///   whole word also applies the final-sigma rule; Rust's per-character lower-casing, used by
///   `tokenizers`, does not, and neither does deq.
/// The few code points where `tokenizers`' Unicode data differs from utf8proc's are listed, and
/// handled, in hf_unicode_compat.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include <utf8proc.h>

#include "hf_unicode_compat.hpp"

namespace deq::detail {

/// TAB, LF, CR and the code points with the Unicode White_Space property.
inline bool is_bert_whitespace(char32_t c) noexcept {
    switch (c) {
        case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0: case 0x1680:
        case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: return true;
        default: return c >= 0x2000 && c <= 0x200A;
    }
}

/// Control characters removed by the BERT text cleaning: categories Cc, Cf, Co except TAB, LF, CR.
inline bool is_bert_control(char32_t c) noexcept {
    if (c == 0x09 || c == 0x0A || c == 0x0D) return false;
    auto const cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO) && !in_ranges(hf_not_control, c);
}

/// CJK ideographs that the BERT normalizer surrounds with spaces (the ranges of the original BERT).
inline bool is_cjk_ideograph(char32_t c) noexcept {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/// BERT punctuation: the ASCII punctuation ranges and the Unicode P* categories.
inline bool is_bert_punctuation(char32_t c) noexcept {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
        case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO: return !in_ranges(hf_not_punctuation, c);
        default: return in_ranges(hf_extra_punctuation, c);
    }
}

/// Non-spacing marks (category Mn), removed by accent stripping.
inline bool is_nonspacing_mark(char32_t c) noexcept {
    if (utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_MN) return !in_ranges(hf_not_nonspacing_mark, c);
    return in_ranges(hf_extra_nonspacing_mark, c);
}

/// Appends the full lower-case mapping of @p c to @p out.
inline void append_lowercase(char32_t c, std::u32string& out) {
    if (c == 0x130) {  // the only unconditional multi-character lower-case mapping (SpecialCasing.txt)
        out += U'i';
        out += char32_t{0x307};
        return;
    }
    char32_t const lower = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    out += lower != c ? lower : hf_extra_lower(c);
}

/// Canonical combining class of @p c.
inline int combining_class(char32_t c) noexcept {
    return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

/// Appends the canonical decomposition (NFD) of @p in to @p out: full recursive canonical
/// decomposition of every code point (Hangul syllables included), then the canonical ordering of
/// every run of non-starters.
inline void append_nfd(std::u32string const& in, std::u32string& out) {
    std::size_t const start = out.size();
    utf8proc_int32_t buf[32];
    for (char32_t c : in) {
        if (in_ranges(hf_no_decomposition, c)) {
            out += c;
            continue;
        }
        utf8proc_ssize_t const n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32, UTF8PROC_DECOMPOSE, nullptr);
        if (n < 0 || n > 32) {  // cannot happen for valid scalar values (longest decomposition: 4)
            out += c;
            continue;
        }
        for (utf8proc_ssize_t i = 0; i < n; ++i) out += static_cast<char32_t>(buf[i]);
    }
    // Canonical ordering: stable sort of each maximal run of code points with combining class > 0.
    std::size_t i = start;
    while (i < out.size()) {
        if (combining_class(out[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < out.size() && combining_class(out[j]) != 0) ++j;
        if (j - i > 1) {
            std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                             [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
        }
        i = j;
    }
}

}  // namespace deq::detail
