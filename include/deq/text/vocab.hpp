/// @file
/// @brief `deq::text::vocab`: a WordPiece vocabulary (token ↔ id), loaded from BERT's vocab.txt.
///
/// vocab.txt holds one token per line; the id of a token is its 0-based line number, as in
/// transformers' `load_vocab`. Lines end with LF, CRLF or CR (Python's universal newlines); a final
/// line terminator does not start a token. Unlike Python, which silently lets a later duplicate win,
/// duplicate tokens, empty lines, a byte order mark and invalid UTF-8 are errors naming the file and
/// the line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/detail/utf8.hpp"

namespace deq::text {

/// Token id type (ids index the vocabulary and the embedding table).
using token_id = std::int32_t;

/// A vocabulary: tokens with consecutive ids 0, 1, ..., size() - 1.
class vocab {
public:
    /// An empty vocabulary.
    vocab() = default;

    /// Loads @p file (see the file comment for the format).
    /// @param file Path of vocab.txt.
    /// @return The vocabulary; deq::format_error naming the file (and line) when it is missing,
    ///         empty or malformed.
    static vocab load(std::filesystem::path const& file) {
        std::error_code ec;
        if (std::filesystem::is_directory(file, ec)) {
            throw format_error(detail::concat("deq: cannot open vocabulary file '", file.string(), "': it is a directory"));
        }
        std::ifstream in(file, std::ios::binary);
        if (!in) throw format_error(detail::concat("deq: cannot open vocabulary file '", file.string(), "'"));
        std::string text;
        try {
            text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        } catch (std::exception const&) {
            in.setstate(std::ios::badbit);
        }
        if (in.bad()) throw format_error(detail::concat("deq: cannot read vocabulary file '", file.string(), "'"));
        return parse(text, file.string());
    }

    /// Parses the content of a vocab.txt file.
    /// @param text   The file content.
    /// @param source Name used in error messages.
    /// @return The vocabulary; deq::format_error naming @p source and the line when malformed.
    static vocab parse(std::string_view text, std::string source) {
        if (text.empty()) throw format_error(detail::concat("deq: ", source, ": vocabulary file is empty"));
        if (text.substr(0, 3) == "\xEF\xBB\xBF") {
            throw format_error(detail::concat("deq: ", source, ":1: byte order mark before the first token"));
        }
        vocab v;
        v.source_ = std::move(source);
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t end = text.find_first_of("\r\n", pos);
            if (end == std::string_view::npos) end = text.size();
            std::string_view const token = text.substr(pos, end - pos);
            pos = end;
            if (pos < text.size()) pos += (text[pos] == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ? 2 : 1;
            v.append(token);
        }
        return v;
    }

    /// Builds a vocabulary from tokens given in id order.
    /// @param tokens The tokens; token i gets id i. Empty or repeated tokens throw deq::format_error.
    /// @param source Name used in error messages ("line" numbers are 1-based positions).
    /// @return The vocabulary.
    static vocab from_tokens(std::vector<std::string> const& tokens, std::string source = "<tokens>") {
        vocab v;
        v.source_ = std::move(source);
        for (auto const& t : tokens) v.append(t);
        return v;
    }

    /// @return The number of tokens.
    std::size_t size() const noexcept { return tokens_.size(); }
    /// @return True when the vocabulary holds no token.
    bool empty() const noexcept { return tokens_.empty(); }
    /// @return The file (or other source) the tokens came from.
    std::string const& source() const noexcept { return source_; }

    /// @param token A token.
    /// @return Its id, or std::nullopt when absent.
    std::optional<token_id> find(std::string_view token) const {
        auto const it = ids_.find(token);
        if (it == ids_.end()) return std::nullopt;
        return it->second;
    }
    /// @param token A token.
    /// @return True when the vocabulary holds @p token.
    bool contains(std::string_view token) const { return ids_.find(token) != ids_.end(); }
    /// @param token A token that must be present.
    /// @return Its id; deq::invalid_argument naming the token and the vocabulary when absent.
    token_id id(std::string_view token) const {
        auto const r = find(token);
        if (!r) detail::throw_invalid_argument("token", detail::concat("'", token, "'"), detail::concat("is not in the vocabulary ", source_));
        return *r;
    }
    /// @param id A token id.
    /// @return The token; deq::invalid_argument when @p id is outside [0, size()).
    std::string const& token(token_id id) const {
        if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size()) {
            detail::throw_invalid_argument("id", id, detail::concat("must be in [0, ", tokens_.size(), ") (vocabulary ", source_, ")"));
        }
        return tokens_[static_cast<std::size_t>(id)];
    }
    /// @return All tokens in id order.
    std::vector<std::string> const& tokens() const noexcept { return tokens_; }

private:
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    void append(std::string_view token) {
        std::size_t const line = tokens_.size() + 1;
        if (token.empty()) throw format_error(detail::concat("deq: ", source_, ":", line, ": empty token"));
        if (std::size_t const bad = detail::find_invalid_utf8(token); bad != std::string_view::npos) {
            throw format_error(detail::concat("deq: ", source_, ":", line, ": invalid UTF-8 at byte ", bad + 1, " of the token"));
        }
        auto const [it, inserted] = ids_.emplace(std::string(token), static_cast<token_id>(tokens_.size()));
        if (!inserted) {
            throw format_error(detail::concat("deq: ", source_, ":", line, ": duplicate token '", token, "' (first on line ", it->second + 1, ")"));
        }
        tokens_.emplace_back(token);
    }

    std::string source_;
    std::vector<std::string> tokens_;
    std::unordered_map<std::string, token_id, string_hash, std::equal_to<>> ids_;
};

}  // namespace deq::text
