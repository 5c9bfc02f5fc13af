/// @file
/// @brief `deq::io::read_tsv`: a strict reader of tab-separated files such as the GLUE data sets.
///
/// Rules (those of the GLUE readers, which use Python's csv module with `quotechar=None`):
/// - lines end with LF; a CR before the LF is dropped (CRLF files read the same);
/// - the last line may lack its newline; a final newline does not start an empty row;
/// - fields are split at every delimiter, with no quoting or escaping (a `"` is an ordinary character);
/// - a UTF-8 byte order mark at the start of the file is dropped (GLUE's MRPC header has one);
/// - the text must be valid UTF-8;
/// - every row must have the same number of fields: the header's, or with no header the first row's
///   (or tsv_options::columns when given). A row that does not is an error naming the file and line;
///   rows are never skipped silently.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "detail/utf8.hpp"

namespace deq::io {

/// Options of read_tsv / parse_tsv.
struct tsv_options {
    /// Whether the first line is a header naming the columns.
    bool header = true;
    /// Required number of fields per line; 0 takes the header's count (or the first row's).
    std::size_t columns = 0;
    /// The field separator.
    char delimiter = '\t';
};

/// One data row: its 1-based line number in the file and its fields.
struct tsv_row {
    std::size_t line = 0;             ///< 1-based line number in the source.
    std::vector<std::string> fields;  ///< The fields, one per column.
};

/// The rows of a tab-separated file, all with the same number of fields.
class tsv_table {
public:
    /// An empty table.
    tsv_table() = default;

    /// @return The file (or other source) name used in error messages.
    std::string const& source() const noexcept { return source_; }
    /// @return The header fields (empty when the file has no header).
    std::vector<std::string> const& header() const noexcept { return header_; }
    /// @return The number of fields of every row.
    std::size_t columns() const noexcept { return columns_; }
    /// @return The number of data rows (the header is not counted).
    std::size_t size() const noexcept { return rows_.size(); }
    /// @return True when there is no data row.
    bool empty() const noexcept { return rows_.empty(); }
    /// @return The data rows.
    std::vector<tsv_row> const& rows() const noexcept { return rows_; }
    /// @return Iterator to the first data row.
    auto begin() const noexcept { return rows_.begin(); }
    /// @return Iterator past the last data row.
    auto end() const noexcept { return rows_.end(); }

    /// Data row @p index.
    /// @param index Row position in [0, size()).
    /// @return The row; deq::invalid_argument when out of range.
    tsv_row const& row(std::size_t index) const {
        if (index >= rows_.size()) detail::throw_invalid_argument("row", index, detail::concat("must be < ", rows_.size(), " (rows of ", source_, ")"));
        return rows_[index];
    }

    /// The position of the header column named @p name.
    /// @param name A header field.
    /// @return Its 0-based position; deq::format_error naming the file and the columns when absent.
    std::size_t column(std::string_view name) const {
        for (std::size_t c = 0; c < header_.size(); ++c) {
            if (header_[c] == name) return c;
        }
        std::string known;
        for (auto const& h : header_) known += (known.empty() ? "" : ", ") + h;
        throw format_error(detail::concat("deq: ", source_, ": no column '", name, "' in the header",
                                          header_.empty() ? std::string(" (the file has no header)") : " (columns: " + known + ")"));
    }

    /// Field @p col of data row @p index.
    /// @param index Row position in [0, size()).
    /// @param col   Column position in [0, columns()).
    /// @return The field text; deq::invalid_argument when either position is out of range.
    std::string const& field(std::size_t index, std::size_t col) const {
        tsv_row const& r = row(index);
        if (col >= columns_) detail::throw_invalid_argument("col", col, detail::concat("must be < ", columns_, " (columns of ", source_, ")"));
        return r.fields[col];
    }

    /// Field @p col of data row @p index parsed as an integer (the whole field, optional sign).
    /// @param index Row position.
    /// @param col   Column position.
    /// @return The value; deq::format_error naming the file, line and column when it is not an integer.
    std::int64_t int_field(std::size_t index, std::size_t col) const {
        std::string const& text = field(index, col);
        std::int64_t value = 0;
        auto const r = std::from_chars(number_start(text), text.data() + text.size(), value);
        if (text.empty() || r.ec != std::errc{} || r.ptr != text.data() + text.size()) {
            fail(index, detail::concat(column_name(col), ": expected an integer, got '", text, "'"));
        }
        return value;
    }

    /// Field @p col of data row @p index parsed as a finite decimal number.
    /// @param index Row position.
    /// @param col   Column position.
    /// @return The value; deq::format_error naming the file, line and column when it is not a number.
    double number_field(std::size_t index, std::size_t col) const {
        std::string const& text = field(index, col);
        double value = 0;
        auto const r = std::from_chars(number_start(text), text.data() + text.size(), value);
        if (text.empty() || r.ec != std::errc{} || r.ptr != text.data() + text.size() || !std::isfinite(value)) {
            fail(index, detail::concat(column_name(col), ": expected a finite number, got '", text, "'"));
        }
        return value;
    }

    /// Throws deq::format_error "deq: <source>:<line>: <message>" for data row @p index.
    /// @param index   Row position.
    /// @param message What is wrong with the row.
    [[noreturn]] void fail(std::size_t index, std::string_view message) const {
        throw format_error(detail::concat("deq: ", source_, ":", row(index).line, ": ", message));
    }

    /// Parses @p text (see the file comment for the rules).
    /// @param text    The whole file content.
    /// @param source  Name used in error messages.
    /// @param options Header, column count and delimiter.
    /// @return The table.
    static tsv_table parse(std::string_view text, std::string_view source, tsv_options const& options = {}) {
        tsv_table t;
        t.source_ = std::string(source);
        if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
        if (text.empty()) throw format_error(detail::concat("deq: ", source, ": TSV file is empty"));
        std::size_t expected = options.columns;
        std::size_t line = 0;
        std::size_t pos = 0;
        while (pos < text.size()) {
            ++line;
            std::size_t eol = text.find('\n', pos);
            if (eol == std::string_view::npos) eol = text.size();
            std::string_view content = text.substr(pos, eol - pos);
            pos = eol + 1;
            if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
            if (std::size_t const bad = detail::find_invalid_utf8(content); bad != std::string_view::npos) {
                throw format_error(detail::concat("deq: ", source, ":", line, ": invalid UTF-8 at byte ", bad + 1, " of the line"));
            }
            std::vector<std::string> fields;
            std::size_t start = 0;
            while (true) {
                std::size_t const d = content.find(options.delimiter, start);
                fields.emplace_back(content.substr(start, d == std::string_view::npos ? std::string_view::npos : d - start));
                if (d == std::string_view::npos) break;
                start = d + 1;
            }
            if (expected == 0) expected = fields.size();
            if (fields.size() != expected) {
                throw format_error(detail::concat("deq: ", source, ":", line, ": expected ", expected, " fields separated by ",
                                                  options.delimiter == '\t' ? std::string("tabs") : detail::concat("'", options.delimiter, "'"),
                                                  ", got ", fields.size()));
            }
            if (options.header && line == 1) {
                t.header_ = std::move(fields);
            } else {
                t.rows_.push_back({line, std::move(fields)});
            }
        }
        t.columns_ = expected;
        return t;
    }

private:
    // Where from_chars starts: past a leading '+' that is followed by a digit or '.' (from_chars
    // accepts '-' but not '+').
    static char const* number_start(std::string const& text) noexcept {
        bool const plus = text.size() > 1 && text[0] == '+' && ((text[1] >= '0' && text[1] <= '9') || text[1] == '.');
        return text.data() + (plus ? 1 : 0);
    }

    std::string column_name(std::size_t col) const {
        if (col < header_.size()) return detail::concat("column '", header_[col], "'");
        return detail::concat("column ", col + 1);
    }

    std::string source_;
    std::vector<std::string> header_;
    std::vector<tsv_row> rows_;
    std::size_t columns_ = 0;
};

/// Parses tab-separated @p text.
/// @param text    The whole file content.
/// @param source  Name used in error messages.
/// @param options Header, column count and delimiter.
/// @return The table; deq::format_error naming the source and line for a malformed line.
inline tsv_table parse_tsv(std::string_view text, std::string_view source = "<string>", tsv_options const& options = {}) {
    return tsv_table::parse(text, source, options);
}

/// Reads the tab-separated file @p file.
/// @param file    Path of the file.
/// @param options Header, column count and delimiter.
/// @return The table; deq::format_error naming the file for a missing or empty file, and the file
///         and line for a malformed line.
inline tsv_table read_tsv(std::filesystem::path const& file, tsv_options const& options = {}) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) {
        throw format_error(detail::concat("deq: cannot open TSV file '", file.string(), "': it is a directory"));
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) throw format_error(detail::concat("deq: cannot open TSV file '", file.string(), "'"));
    std::string text;
    try {
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } catch (std::exception const&) {
        in.setstate(std::ios::badbit);
    }
    if (in.bad()) throw format_error(detail::concat("deq: cannot read TSV file '", file.string(), "'"));
    return tsv_table::parse(text, file.string(), options);
}

}  // namespace deq::io
