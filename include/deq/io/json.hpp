/// @file
/// @brief `deq::io::json`: a strict RFC 8259 JSON value type, parser and writer.
///
/// Parsing accepts exactly RFC 8259 (no comments, trailing commas, NaN, single quotes or leading
/// zeros; strings must be valid UTF-8 without raw control characters; `\uXXXX` escapes, surrogate
/// pairs included, are decoded to UTF-8; duplicate object keys are rejected). A leading UTF-8 byte
/// order mark is ignored, as RFC 8259 §8.1 permits. Numbers are kept as double and, when the
/// literal is an integer that fits, also as an exact int64.
///
/// Every parsed value remembers its source (file name) and its path in the document, so typed
/// accessors report errors such as
/// `deq: config.json: field 'num_attention_heads': expected integer, got string`; syntax errors
/// name the source, line and column:
/// `deq: config.json:3:14: JSON syntax error: expected ',' or '}' after an object member, got ']'`.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "../core/error.hpp"
#include "detail/json_parser.hpp"
#include "detail/json_write.hpp"

namespace deq::io {

/// Options of json::parse and json::parse_file.
struct json_parse_options {
    /// Deepest nesting of arrays and objects accepted (protects the recursive parser's stack).
    std::size_t max_depth = 256;
};

/// One member of a JSON object (the member type of json::object_type).
/// @tparam Json The value type (deq::io::json).
template <class Json>
struct basic_json_member {
    std::string key;  ///< The member name.
    Json value;       ///< The member value.
};

/// A JSON value: null, boolean, number, string, array or object (members in document order).
///
/// Values are built by json::parse / json::parse_file or programmatically (constructors, json::array,
/// json::object, push_back, operator[]) and written back with dump(). Typed accessors (as_int,
/// as_string, at, ...) throw deq::format_error naming the source and the value's path.
class json {
public:
    /// The kind of value held.
    enum class kind : std::uint8_t {
        null,     ///< `null`
        boolean,  ///< `true` / `false`
        number,   ///< a number (double, and int64 when exact)
        string,   ///< a UTF-8 string
        array,    ///< an ordered list of values
        object    ///< an ordered list of uniquely named members
    };

    /// One object member: `key` and `value`.
    using member = basic_json_member<json>;
    /// Storage of an array.
    using array_type = std::vector<json>;
    /// Storage of an object's members, in document (insertion) order.
    using object_type = std::vector<member>;

    /// A null value.
    json() noexcept = default;
    /// A null value.
    /// @param n nullptr.
    json(std::nullptr_t n) noexcept { (void)n; }
    /// A boolean value.
    /// @param b The value.
    json(bool b) noexcept : value_(b) {}
    /// An integer value (exact).
    /// @tparam Int An integral type other than bool.
    /// @param i The value; unsigned values above INT64_MAX are rejected with deq::invalid_argument.
    template <std::integral Int>
        requires(!std::same_as<Int, bool>)
    json(Int i) {
        if constexpr (std::is_unsigned_v<Int> && sizeof(Int) >= sizeof(std::int64_t)) {
            if (i > static_cast<Int>(std::numeric_limits<std::int64_t>::max())) {
                detail::throw_invalid_argument("json integer", i, "must fit in int64");
            }
        }
        value_ = number_type{static_cast<double>(i), static_cast<std::int64_t>(i), true};
    }
    /// A floating-point value.
    /// @tparam Float A floating-point type.
    /// @param f The value; NaN and infinity have no JSON form and throw deq::numeric_error.
    template <std::floating_point Float>
    json(Float f) {
        if (!std::isfinite(f)) throw numeric_error(detail::concat("deq: JSON cannot represent the number ", f));
        value_ = number_type{static_cast<double>(f), 0, false};
    }
    /// A string value.
    /// @param s The UTF-8 text.
    json(std::string s) noexcept : value_(std::move(s)) {}
    /// A string value.
    /// @param s The UTF-8 text.
    json(std::string_view s) : value_(std::string(s)) {}
    /// A string value.
    /// @param s Null-terminated UTF-8 text.
    json(char const* s) : value_(std::string(s)) {}
    /// An array value.
    /// @param items The elements.
    json(array_type items) noexcept : value_(std::move(items)) {}

    /// Copies @p other, source and path included.
    /// @param other The value to copy.
    json(json const& other) = default;
    /// Moves @p other, source and path included.
    /// @param other The value to move from.
    json(json&& other) noexcept = default;
    /// Destroys the value.
    ~json() = default;
    /// Replaces the value with a copy of @p other. A value built in code (no source) takes over
    /// this slot's source and path, so `doc["a"] = 3` still reports errors as field 'a'.
    /// @param other The new value.
    /// @return *this.
    json& operator=(json const& other) {
        if (this != &other) *this = json(other);
        return *this;
    }
    /// Replaces the value with @p other (source and path as for the copy assignment).
    /// @param other The new value.
    /// @return *this.
    json& operator=(json&& other) noexcept {
        value_ = std::move(other.value_);
        if (other.source_ || source_ == nullptr) {
            source_ = std::move(other.source_);
            path_ = std::move(other.path_);
        }
        return *this;
    }

    /// @param items The elements.
    /// @return An array holding @p items.
    static json array(std::initializer_list<json> items = {}) { return json(array_type(items)); }
    /// @param members Key/value pairs; a repeated key throws deq::invalid_argument.
    /// @return An object holding @p members in the given order.
    static json object(std::initializer_list<std::pair<std::string_view, json>> members = {}) {
        json v;
        v.value_ = object_storage{};
        for (auto const& [key, value] : members) {
            if (v.find(key) != nullptr) detail::throw_invalid_argument("json object key", key, "appears twice");
            v[key] = value;
        }
        return v;
    }

    /// Parses @p text as one JSON document.
    /// @param text    The document.
    /// @param source  Name used in error messages (a file name, "<string>", ...).
    /// @param options Parser limits.
    /// @return The root value.
    static json parse(std::string_view text, std::string_view source = "<string>", json_parse_options options = {}) {
        auto name = std::make_shared<std::string const>(source);
        return detail::json_parser<json>(text, std::move(name), options.max_depth).parse_document();
    }

    /// Reads and parses the JSON file @p file. A missing, unreadable or empty file throws
    /// deq::format_error naming the file.
    /// @param file    Path of the file.
    /// @param options Parser limits.
    /// @return The root value.
    static json parse_file(std::filesystem::path const& file, json_parse_options options = {}) {
        std::error_code ec;
        if (std::filesystem::is_directory(file, ec)) {
            throw format_error(detail::concat("deq: cannot open JSON file '", file.string(), "': it is a directory"));
        }
        std::ifstream in(file, std::ios::binary);
        if (!in) throw format_error(detail::concat("deq: cannot open JSON file '", file.string(), "'"));
        std::string text;
        try {
            text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        } catch (std::exception const&) {
            in.setstate(std::ios::badbit);
        }
        if (in.bad()) throw format_error(detail::concat("deq: cannot read JSON file '", file.string(), "'"));
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
            throw format_error(detail::concat("deq: JSON file '", file.string(), "' is empty"));
        }
        return parse(text, file.string(), options);
    }

    /// @return The kind of value held.
    kind type() const noexcept { return static_cast<kind>(value_.index()); }
    /// @return The name of the kind held ("null", "boolean", "number", "string", "array", "object").
    char const* type_name() const noexcept { return kind_name(type()); }
    /// @return True for null.
    bool is_null() const noexcept { return type() == kind::null; }
    /// @return True for a boolean.
    bool is_bool() const noexcept { return type() == kind::boolean; }
    /// @return True for a number.
    bool is_number() const noexcept { return type() == kind::number; }
    /// @return True for a number with an exact int64 value (see as_int).
    bool is_integer() const noexcept {
        std::int64_t i = 0;
        return is_number() && integer_value(std::get<number_type>(value_), i);
    }
    /// @return True for a string.
    bool is_string() const noexcept { return type() == kind::string; }
    /// @return True for an array.
    bool is_array() const noexcept { return type() == kind::array; }
    /// @return True for an object.
    bool is_object() const noexcept { return type() == kind::object; }

    /// @return The file (or other source) the value was parsed from; empty for built values.
    std::string const& source() const noexcept {
        static std::string const none;
        return source_ ? *source_ : none;
    }
    /// @return The value's path in its document, e.g. "layers[2].name"; empty for the root.
    std::string const& path() const noexcept { return path_; }

    /// Throws deq::format_error with @p message prefixed by the value's source and path, for
    /// semantic checks done by the caller (e.g. `field 'hidden_act': unsupported activation`).
    /// @param message What is wrong with the value.
    [[noreturn]] void fail(std::string_view message) const { throw format_error(detail::concat(location(), ": ", message)); }

    /// @return The boolean held; throws deq::format_error for other kinds.
    bool as_bool() const {
        if (!is_bool()) type_error("boolean");
        return std::get<bool>(value_);
    }
    /// @return The number held, as double; throws deq::format_error for other kinds.
    double as_double() const {
        if (!is_number()) type_error("number");
        return std::get<number_type>(value_).value;
    }
    /// The number held as an exact int64: integer literals that fit in int64, and other numbers
    /// whose double value is integral and inside the int64 range (e.g. `1e3`, `2.0`).
    /// @return The integer; throws deq::format_error for other kinds and non-integral numbers.
    std::int64_t as_int() const {
        if (!is_number()) type_error("integer");
        std::int64_t i = 0;
        if (!integer_value(std::get<number_type>(value_), i)) fail(detail::concat("expected integer, got number ", dump()));
        return i;
    }
    /// as_int() with a range check.
    /// @param lo Smallest accepted value.
    /// @param hi Largest accepted value.
    /// @return The integer, in [lo, hi]; otherwise deq::format_error naming the value and range.
    std::int64_t as_int(std::int64_t lo, std::int64_t hi) const {
        std::int64_t const i = as_int();
        if (i < lo || i > hi) fail(detail::concat("expected integer in [", lo, ", ", hi, "], got ", i));
        return i;
    }
    /// @return The string held; throws deq::format_error for other kinds.
    std::string const& as_string() const {
        if (!is_string()) type_error("string");
        return std::get<std::string>(value_);
    }
    /// @return The elements of the array held; throws deq::format_error for other kinds.
    array_type const& as_array() const {
        if (!is_array()) type_error("array");
        return std::get<array_type>(value_);
    }
    /// @return The members of the object held, in document order; throws for other kinds.
    object_type const& as_object() const {
        if (!is_object()) type_error("object");
        return std::get<object_storage>(value_).members;
    }

    /// The value converted to @p T with range checking.
    /// @tparam T bool, an integral type (as_int, range-checked against T), a floating-point type
    ///           (as_double), or std::string (as_string).
    /// @return The converted value; deq::format_error when the kind or range does not fit.
    template <class T>
    T as() const {
        if constexpr (std::same_as<T, bool>) {
            return as_bool();
        } else if constexpr (std::integral<T>) {
            std::int64_t const lo = static_cast<std::int64_t>(std::numeric_limits<T>::min());
            std::int64_t const hi = std::numeric_limits<T>::max() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                                        ? std::numeric_limits<std::int64_t>::max()
                                        : static_cast<std::int64_t>(std::numeric_limits<T>::max());
            return static_cast<T>(as_int(lo, hi));
        } else if constexpr (std::floating_point<T>) {
            double const d = as_double();
            if constexpr (sizeof(T) < sizeof(double)) {
                // Numbers beyond T's finite range are an error, not infinity (those below its smallest
                // subnormal read as zero, as in the parser).
                if (std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max()) &&
                    std::isinf(static_cast<T>(d))) {
                    fail(detail::concat("number ", dump(), " is outside the range of ", sizeof(T) == 4 ? "float" : "the type",
                                        " (largest finite ", static_cast<double>(std::numeric_limits<T>::max()), ")"));
                }
            }
            return static_cast<T>(d);
        } else {
            static_assert(std::same_as<T, std::string>, "json::as<T>: T must be bool, arithmetic or std::string");
            return as_string();
        }
    }

    /// @return The number of elements (array) or members (object); throws for other kinds.
    std::size_t size() const {
        if (is_array()) return std::get<array_type>(value_).size();
        if (is_object()) return std::get<object_storage>(value_).members.size();
        type_error("array or object");
    }

    /// The member named @p key of an object.
    /// @param key The member name.
    /// @return The member's value, or nullptr when absent; throws when this is not an object.
    json const* find(std::string_view key) const {
        if (!is_object()) type_error("object");
        auto const& obj = std::get<object_storage>(value_);
        std::size_t const i = obj.lookup(key);
        return i == obj.members.size() ? nullptr : &obj.members[i].value;
    }
    /// @param key The member name.
    /// @return True when this object has a member named @p key; throws when this is not an object.
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    /// The member named @p key of an object.
    /// @param key The member name.
    /// @return The member's value; deq::format_error "missing field" when absent.
    json const& at(std::string_view key) const {
        json const* v = find(key);
        if (v == nullptr) {
            throw format_error(detail::concat(source_prefix(), ": missing field '", child_path(key), "'"));
        }
        return *v;
    }
    /// Element @p index of an array.
    /// @param index Position in the array.
    /// @return The element; deq::format_error when out of range or not an array.
    json const& at(std::size_t index) const {
        auto const& items = as_array();
        if (index >= items.size()) fail(detail::concat("index ", index, " out of range (array of ", items.size(), ")"));
        return items[index];
    }
    /// The member @p key converted with as<T>(), or @p fallback when the object has no such member
    /// (a present member of the wrong kind still throws).
    /// @tparam T See as().
    /// @param key      The member name.
    /// @param fallback Value returned when the member is absent.
    /// @return The value.
    template <class T>
    T value(std::string_view key, T fallback) const {
        json const* v = find(key);
        return v == nullptr ? fallback : v->template as<T>();
    }

    /// The member named @p key of an object, inserted as null when absent; a null value first
    /// becomes an empty object. Throws deq::format_error for other kinds.
    /// @param key The member name.
    /// @return A reference to the member's value.
    json& operator[](std::string_view key) {
        if (is_null()) value_ = object_storage{};
        if (!is_object()) type_error("object");
        auto& obj = std::get<object_storage>(value_);
        std::size_t const i = obj.lookup(key);
        if (i != obj.members.size()) return obj.members[i].value;
        json child;
        child.source_ = source_;
        child.path_ = child_path(key);
        obj.insert(std::string(key), std::move(child));
        return obj.members.back().value;
    }
    /// Appends @p item to an array (a null value first becomes an empty array).
    /// @param item The new element.
    void push_back(json item) {
        if (is_null()) value_ = array_type{};
        if (!is_array()) type_error("array");
        std::get<array_type>(value_).push_back(std::move(item));
    }

    /// Serialises the value as JSON text (object members in insertion order).
    /// @param indent Spaces per nesting level; negative for the compact single-line form.
    /// @return The text.
    std::string dump(int indent = -1) const {
        std::string out;
        write(out, indent, 0);
        return out;
    }

    /// Structural equality: same kind and value; objects compare members independently of order;
    /// numbers compare by value (and by exact integer when both are integers).
    /// @param a First value.
    /// @param b Second value.
    /// @return True when equal.
    friend bool operator==(json const& a, json const& b) {
        if (a.type() != b.type()) return false;
        switch (a.type()) {
            case kind::null: return true;
            case kind::boolean: return a.as_bool() == b.as_bool();
            case kind::number: {
                auto const& x = std::get<number_type>(a.value_);
                auto const& y = std::get<number_type>(b.value_);
                if (x.is_integer && y.is_integer) return x.integer == y.integer;
                return x.value == y.value;
            }
            case kind::string: return a.as_string() == b.as_string();
            case kind::array: return a.as_array() == b.as_array();
            case kind::object: {
                if (a.size() != b.size()) return false;
                for (auto const& m : a.as_object()) {
                    json const* other = b.find(m.key);
                    if (other == nullptr || !(*other == m.value)) return false;
                }
                return true;
            }
        }
        return false;
    }

private:
    template <class>
    friend class ::deq::detail::json_parser;

    struct null_type {};
    struct number_type {
        double value = 0;
        std::int64_t integer = 0;
        bool is_integer = false;
    };
    struct object_storage {
        object_type members;
        std::vector<std::uint32_t> index;  // member positions sorted by key

        // Position of @p key in members, or members.size().
        std::size_t lookup(std::string_view key) const {
            auto const it = std::lower_bound(index.begin(), index.end(), key,
                                             [&](std::uint32_t i, std::string_view k) { return std::string_view(members[i].key) < k; });
            if (it != index.end() && members[*it].key == key) return *it;
            return members.size();
        }
        void insert(std::string key, json value) {
            auto const it = std::lower_bound(index.begin(), index.end(), std::string_view(key),
                                             [&](std::uint32_t i, std::string_view k) { return std::string_view(members[i].key) < k; });
            index.insert(it, static_cast<std::uint32_t>(members.size()));
            members.push_back({std::move(key), std::move(value)});
        }
        // Builds the index after bulk insertion; returns the position (in document order) of the
        // first repeated key's second occurrence, or members.size() when all keys are unique.
        std::size_t build_index() {
            index.resize(members.size());
            for (std::size_t i = 0; i < index.size(); ++i) index[i] = static_cast<std::uint32_t>(i);
            std::stable_sort(index.begin(), index.end(), [&](std::uint32_t a, std::uint32_t b) { return members[a].key < members[b].key; });
            std::size_t dup = members.size();
            for (std::size_t i = 1; i < index.size(); ++i) {
                if (members[index[i]].key == members[index[i - 1]].key) dup = std::min<std::size_t>(dup, index[i]);
            }
            return dup;
        }
    };

    static char const* kind_name(kind k) noexcept {
        switch (k) {
            case kind::null: return "null";
            case kind::boolean: return "boolean";
            case kind::number: return "number";
            case kind::string: return "string";
            case kind::array: return "array";
            case kind::object: return "object";
        }
        return "?";
    }

    static bool integer_value(number_type const& n, std::int64_t& out) noexcept {
        if (n.is_integer) {
            out = n.integer;
            return true;
        }
        // 2^63 is exactly representable; [-2^63, 2^63) is the int64 range.
        if (n.value == std::trunc(n.value) && n.value >= -9223372036854775808.0 && n.value < 9223372036854775808.0) {
            out = static_cast<std::int64_t>(n.value);
            return true;
        }
        return false;
    }

    std::string source_prefix() const { return detail::concat("deq: ", source_ ? *source_ : std::string("JSON value")); }
    std::string location() const {
        return path_.empty() ? source_prefix() : detail::concat(source_prefix(), ": field '", path_, "'");
    }
    std::string child_path(std::string_view key) const {
        return path_.empty() ? std::string(key) : detail::concat(path_, ".", key);
    }

    [[noreturn]] void type_error(char const* expected) const {
        fail(detail::concat("expected ", expected, ", got ", type_name()));
    }

    void write(std::string& out, int indent, int level) const {
        auto newline = [&](int lvl) {
            if (indent < 0) return;
            out += '\n';
            out.append(static_cast<std::size_t>(indent) * static_cast<std::size_t>(lvl), ' ');
        };
        switch (type()) {
            case kind::null: out += "null"; break;
            case kind::boolean: out += std::get<bool>(value_) ? "true" : "false"; break;
            case kind::number: {
                auto const& n = std::get<number_type>(value_);
                if (n.is_integer) {
                    detail::append_json_integer(out, n.integer);
                } else {
                    detail::append_json_double(out, n.value);
                }
                break;
            }
            case kind::string: detail::append_json_string(out, std::get<std::string>(value_)); break;
            case kind::array: {
                auto const& items = std::get<array_type>(value_);
                out += '[';
                for (std::size_t i = 0; i < items.size(); ++i) {
                    if (i) out += ',';
                    newline(level + 1);
                    items[i].write(out, indent, level + 1);
                }
                if (!items.empty()) newline(level);
                out += ']';
                break;
            }
            case kind::object: {
                auto const& members = std::get<object_storage>(value_).members;
                out += '{';
                for (std::size_t i = 0; i < members.size(); ++i) {
                    if (i) out += ',';
                    newline(level + 1);
                    detail::append_json_string(out, members[i].key);
                    out += indent < 0 ? ":" : ": ";
                    members[i].value.write(out, indent, level + 1);
                }
                if (!members.empty()) newline(level);
                out += '}';
                break;
            }
        }
    }

    std::variant<null_type, bool, number_type, std::string, array_type, object_storage> value_;
    std::shared_ptr<std::string const> source_;
    std::string path_;
};

}  // namespace deq::io
