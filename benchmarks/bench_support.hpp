// Command-line helpers shared by deq's benchmark programs.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include <deq/core/error.hpp>

namespace deq_bench {

/// Splits @p s at every @p sep (empty fields kept).
inline std::vector<std::string> split(std::string const& s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        auto const end = s.find(sep, start);
        out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}

/// The positive integer @p value of command-line flag @p flag; deq::invalid_argument otherwise.
inline long positive(std::string const& flag, std::string const& value) {
    char* end = nullptr;
    long const v = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || v < 1) throw deq::invalid_argument(flag + ": expected a positive integer, got '" + value + "'");
    return v;
}

}  // namespace deq_bench
