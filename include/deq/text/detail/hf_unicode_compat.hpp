/// @file
/// @brief Where the Hugging Face `tokenizers` BERT normaliser / pre-tokeniser deviates from current
/// Unicode data (utf8proc), so that deq's tokenizer reproduces it on every code point.
///
/// `tokenizers` takes general categories from the Rust crate `unicode_categories` 0.1 (Unicode 8.0
/// tables), lower-casing from the Rust standard library (Unicode 16 in tokenizers 0.22/0.23 wheels)
/// and canonical decompositions from `unicode-normalization`. Against utf8proc 2.8 (Unicode 15.0)
/// this gives the exceptions below, found by running both over all 1,112,064 scalar values (the
/// unicode sweep test in tests/tokenizer checks that none is left):
/// - punctuation (P*) and non-spacing marks (Mn) assigned after Unicode 8.0 are ordinary letters for
///   `tokenizers` (not split, not stripped), as are format characters (Cf) assigned after 8.0 (not
///   removed);
/// - characters whose category changed since 8.0: U+166D (Po -> So) and U+111C9 (Po -> Mn) are
///   still punctuation, U+1734 (Mn -> Mc) is still a non-spacing mark;
/// - lower-case mappings added in Unicode 16 (not in utf8proc 2.8);
/// - U+11938 (canonical decomposition added in Unicode 13) is not decomposed.
/// None of these code points occurs in the GLUE, SQuAD or CLOTH data.
#pragma once

#include <algorithm>
#include <cstddef>

namespace deq::detail {

/// The Unicode version of the utf8proc data the tables below were derived against.
inline constexpr char hf_compat_unicode_version[] = "15.0.0";

/// An inclusive range of code points.
struct code_point_range {
    char32_t first;  ///< First code point.
    char32_t last;   ///< Last code point (inclusive).
};

/// A code point and its lower-case mapping.
struct code_point_mapping {
    char32_t from;  ///< Code point.
    char32_t to;    ///< Its lower-case form.
};

/// P* code points that `tokenizers` does not treat as punctuation (assigned after Unicode 8.0).
inline constexpr code_point_range hf_not_punctuation[] = {
    {0x61D, 0x61D}, {0x9FD, 0x9FD}, {0xA76, 0xA76}, {0xC77, 0xC77}, {0xC84, 0xC84}, {0x1B7D, 0x1B7E},
    {0x2E43, 0x2E4F}, {0x2E52, 0x2E5D}, {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59}, {0x10F86, 0x10F89},
    {0x1144B, 0x1144F}, {0x1145A, 0x1145B}, {0x1145D, 0x1145D}, {0x11660, 0x1166C}, {0x116B9, 0x116B9},
    {0x1183B, 0x1183B}, {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F, 0x11A46}, {0x11A9A, 0x11A9C},
    {0x11A9E, 0x11AA2}, {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71}, {0x11EF7, 0x11EF8},
    {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x16E97, 0x16E9A}, {0x16FE2, 0x16FE2},
    {0x1E95E, 0x1E95F},
};

/// Code points that `tokenizers` treats as punctuation although they are not P* in Unicode 15.
inline constexpr code_point_range hf_extra_punctuation[] = {
    {0x166D, 0x166D}, {0x111C9, 0x111C9},
};

/// Mn code points that `tokenizers` does not strip as accents.
inline constexpr code_point_range hf_not_nonspacing_mark[] = {
    {0x7FD, 0x7FD}, {0x898, 0x89F}, {0x8CA, 0x8E1}, {0x9FE, 0x9FE}, {0xAFA, 0xAFF}, {0xB55, 0xB55},
    {0xC04, 0xC04}, {0xC3C, 0xC3C}, {0xD00, 0xD00}, {0xD3B, 0xD3C}, {0xD81, 0xD81}, {0xEBA, 0xEBA},
    {0xECE, 0xECE}, {0x180F, 0x180F}, {0x1885, 0x1886}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFB}, {0xA82C, 0xA82C},
    {0xA8C5, 0xA8C5}, {0xA8FF, 0xA8FF}, {0xA9BD, 0xA9BD}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC},
    {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x11073, 0x11074},
    {0x110C2, 0x110C2}, {0x111C9, 0x111C9}, {0x111CF, 0x111CF}, {0x1123E, 0x1123E}, {0x11241, 0x11241},
    {0x1133B, 0x1133B}, {0x11438, 0x1143F}, {0x11442, 0x11444}, {0x11446, 0x11446}, {0x1145E, 0x1145E},
    {0x1182F, 0x11837}, {0x11839, 0x1183A}, {0x1193B, 0x1193C}, {0x1193E, 0x1193E}, {0x11943, 0x11943},
    {0x119D4, 0x119D7}, {0x119DA, 0x119DB}, {0x119E0, 0x119E0}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A38},
    {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47}, {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96},
    {0x11A98, 0x11A99}, {0x11C30, 0x11C36}, {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7},
    {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3}, {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A},
    {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45}, {0x11D47, 0x11D47}, {0x11D90, 0x11D91}, {0x11D95, 0x11D95},
    {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4}, {0x11F00, 0x11F01}, {0x11F36, 0x11F3A}, {0x11F40, 0x11F40},
    {0x11F42, 0x11F42}, {0x13440, 0x13440}, {0x13447, 0x13455}, {0x16F4F, 0x16F4F}, {0x16FE4, 0x16FE4},
    {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46}, {0x1E000, 0x1E006}, {0x1E008, 0x1E018}, {0x1E01B, 0x1E021},
    {0x1E023, 0x1E024}, {0x1E026, 0x1E02A}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF}, {0x1E944, 0x1E94A},
};

/// Code points that `tokenizers` strips as non-spacing marks although they are not Mn in Unicode 15.
inline constexpr code_point_range hf_extra_nonspacing_mark[] = {
    {0x1734, 0x1734},
};

/// Cf code points that `tokenizers` does not remove as control characters.
inline constexpr code_point_range hf_not_control[] = {
    {0x890, 0x891}, {0x8E2, 0x8E2}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
};

/// Code points that `tokenizers` does not decompose in NFD.
inline constexpr code_point_range hf_no_decomposition[] = {
    {0x11938, 0x11938},
};

/// Lower-case mappings of Unicode 16 that utf8proc 2.8 lacks (sorted by code point).
inline constexpr code_point_mapping hf_extra_lowercase[] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0x264}, {0xA7CC, 0xA7CD}, {0xA7CE, 0xA7CF}, {0xA7D2, 0xA7D3}, {0xA7D4, 0xA7D5},
    {0xA7DA, 0xA7DB}, {0xA7DC, 0x19B}, {0x10D50, 0x10D70}, {0x10D51, 0x10D71}, {0x10D52, 0x10D72},
    {0x10D53, 0x10D73}, {0x10D54, 0x10D74}, {0x10D55, 0x10D75}, {0x10D56, 0x10D76}, {0x10D57, 0x10D77},
    {0x10D58, 0x10D78}, {0x10D59, 0x10D79}, {0x10D5A, 0x10D7A}, {0x10D5B, 0x10D7B}, {0x10D5C, 0x10D7C},
    {0x10D5D, 0x10D7D}, {0x10D5E, 0x10D7E}, {0x10D5F, 0x10D7F}, {0x10D60, 0x10D80}, {0x10D61, 0x10D81},
    {0x10D62, 0x10D82}, {0x10D63, 0x10D83}, {0x10D64, 0x10D84}, {0x10D65, 0x10D85}, {0x16EA0, 0x16EBB},
    {0x16EA1, 0x16EBC}, {0x16EA2, 0x16EBD}, {0x16EA3, 0x16EBE}, {0x16EA4, 0x16EBF}, {0x16EA5, 0x16EC0},
    {0x16EA6, 0x16EC1}, {0x16EA7, 0x16EC2}, {0x16EA8, 0x16EC3}, {0x16EA9, 0x16EC4}, {0x16EAA, 0x16EC5},
    {0x16EAB, 0x16EC6}, {0x16EAC, 0x16EC7}, {0x16EAD, 0x16EC8}, {0x16EAE, 0x16EC9}, {0x16EAF, 0x16ECA},
    {0x16EB0, 0x16ECB}, {0x16EB1, 0x16ECC}, {0x16EB2, 0x16ECD}, {0x16EB3, 0x16ECE}, {0x16EB4, 0x16ECF},
    {0x16EB5, 0x16ED0}, {0x16EB6, 0x16ED1}, {0x16EB7, 0x16ED2}, {0x16EB8, 0x16ED3},
};

/// True when @p c lies in one of the sorted, disjoint @p ranges.
template <std::size_t N>
constexpr bool in_ranges(code_point_range const (&ranges)[N], char32_t c) noexcept {
    auto const it = std::upper_bound(ranges, ranges + N, c, [](char32_t v, code_point_range const& r) { return v < r.first; });
    return it != ranges && c <= (it - 1)->last;
}

/// The extra lower-case mapping of @p c, or @p c itself when it has none.
constexpr char32_t hf_extra_lower(char32_t c) noexcept {
    constexpr std::size_t n = sizeof(hf_extra_lowercase) / sizeof(hf_extra_lowercase[0]);
    auto const it = std::lower_bound(hf_extra_lowercase, hf_extra_lowercase + n, c,
                                     [](code_point_mapping const& m, char32_t v) { return m.from < v; });
    return it != hf_extra_lowercase + n && it->from == c ? it->to : c;
}

}  // namespace deq::detail
