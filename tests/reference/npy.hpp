// A small reader for NumPy .npy files (format versions 1-3, little-endian, C order) and a minimal JSON
// parser, enough for the reference cases written by python/deq_reference/generate_cases.py.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ref_io {

/// One array read from a .npy file.
struct npy_array {
    std::string descr;                 // e.g. "<f4", "<f8", "|u1"
    std::vector<std::int64_t> shape;   // C order
    std::vector<unsigned char> bytes;  // raw little-endian data

    std::int64_t size() const {
        std::int64_t n = 1;
        for (auto e : shape) n *= e;
        return n;
    }

    /// The elements converted to T.
    template <class T>
    std::vector<T> as() const {
        std::int64_t const n = size();
        std::vector<T> out(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = static_cast<T>(at(i));
        return out;
    }

    /// Element i as double.
    double at(std::int64_t i) const {
        auto const* p = bytes.data();
        if (descr == "<f4") {
            float x;
            std::memcpy(&x, p + 4 * i, 4);
            return x;
        }
        if (descr == "<f8") {
            double x;
            std::memcpy(&x, p + 8 * i, 8);
            return x;
        }
        if (descr == "|u1" || descr == "|b1") return p[i];
        if (descr == "<i8") {
            std::int64_t x;
            std::memcpy(&x, p + 8 * i, 8);
            return static_cast<double>(x);
        }
        throw std::runtime_error("npy: unsupported dtype " + descr);
    }
};

inline std::string npy_field(std::string const& header, std::string const& key) {
    auto const pos = header.find("'" + key + "'");
    if (pos == std::string::npos) throw std::runtime_error("npy: header lacks " + key + ": " + header);
    auto const colon = header.find(':', pos);
    return header.substr(colon + 1);
}

/// Reads a .npy file.
inline npy_array read_npy(std::string const& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("npy: cannot open " + path);
    char magic[6];
    in.read(magic, 6);
    if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error("npy: bad magic in " + path);
    unsigned char version[2];
    in.read(reinterpret_cast<char*>(version), 2);
    std::uint32_t header_len = 0;
    if (version[0] == 1) {
        unsigned char l[2];
        in.read(reinterpret_cast<char*>(l), 2);
        header_len = static_cast<std::uint32_t>(l[0] | (l[1] << 8));
    } else {
        unsigned char l[4];
        in.read(reinterpret_cast<char*>(l), 4);
        header_len = static_cast<std::uint32_t>(l[0] | (l[1] << 8) | (l[2] << 16) | (static_cast<std::uint32_t>(l[3]) << 24));
    }
    std::string header(header_len, '\0');
    in.read(header.data(), header_len);
    npy_array a;
    std::string d = npy_field(header, "descr");
    auto const q1 = d.find('\'');
    a.descr = d.substr(q1 + 1, d.find('\'', q1 + 1) - q1 - 1);
    if (npy_field(header, "fortran_order").find("True") < npy_field(header, "fortran_order").find(',')) {
        throw std::runtime_error("npy: Fortran order not supported in " + path);
    }
    std::string s = npy_field(header, "shape");
    s = s.substr(s.find('(') + 1, s.find(')') - s.find('(') - 1);
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.find_first_not_of(" ") == std::string::npos) continue;
        a.shape.push_back(std::stoll(item));
    }
    std::size_t const elem = (a.descr == "<f8" || a.descr == "<i8") ? 8 : (a.descr == "<f4" ? 4 : 1);
    a.bytes.resize(static_cast<std::size_t>(a.size()) * elem);
    in.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size()));
    if (!in) throw std::runtime_error("npy: truncated data in " + path);
    return a;
}

/// A parsed JSON value.
struct json {
    enum class type { null, boolean, number, string, array, object };
    type kind = type::null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<json> items;
    std::vector<std::string> keys;  // object keys, in file order
    std::vector<json> values;       // object values (vector allows the incomplete element type)

    bool is_null() const { return kind == type::null; }
    bool has(std::string const& key) const {
        for (auto const& k : keys)
            if (k == key) return true;
        return false;
    }
    json const& operator[](std::string const& key) const {
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return values[i];
        throw std::runtime_error("json: missing key " + key);
    }
    json const& operator[](std::size_t i) const { return items.at(i); }
    std::size_t size() const { return kind == type::array ? items.size() : keys.size(); }
    double number() const {
        if (kind != type::number) throw std::runtime_error("json: not a number");
        return num;
    }
    std::int64_t integer() const { return static_cast<std::int64_t>(number()); }
    std::string const& string() const {
        if (kind != type::string) throw std::runtime_error("json: not a string");
        return str;
    }
    bool boolean() const {
        if (kind != type::boolean) throw std::runtime_error("json: not a boolean");
        return b;
    }
};

class json_parser {
public:
    explicit json_parser(std::string text) : s_(std::move(text)) {}
    json parse() {
        json v = value();
        skip();
        if (p_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(char const* what) const {
        throw std::runtime_error(std::string("json: ") + what + " at offset " + std::to_string(p_));
    }
    void skip() {
        while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\t' || s_[p_] == '\r')) ++p_;
    }
    bool eat(char const* word) {
        std::size_t const n = std::strlen(word);
        if (s_.compare(p_, n, word) == 0) {
            p_ += n;
            return true;
        }
        return false;
    }
    std::string string_literal() {
        if (s_[p_] != '"') fail("expected a string");
        ++p_;
        std::string out;
        while (p_ < s_.size() && s_[p_] != '"') {
            char c = s_[p_++];
            if (c == '\\') {
                char const e = s_[p_++];
                switch (e) {
                    case 'n': c = '\n'; break;
                    case 't': c = '\t'; break;
                    case 'u': p_ += 4; c = '?'; break;
                    default: c = e;
                }
            }
            out += c;
        }
        if (p_ >= s_.size()) fail("unterminated string");
        ++p_;
        return out;
    }
    json value() {
        skip();
        if (p_ >= s_.size()) fail("unexpected end");
        json v;
        char const c = s_[p_];
        if (c == '{') {
            v.kind = json::type::object;
            ++p_;
            skip();
            if (s_[p_] == '}') {
                ++p_;
                return v;
            }
            for (;;) {
                skip();
                std::string key = string_literal();
                skip();
                if (s_[p_++] != ':') fail("expected ':'");
                v.keys.push_back(key);
                v.values.push_back(value());
                skip();
                if (s_[p_] == ',') {
                    ++p_;
                    continue;
                }
                if (s_[p_++] != '}') fail("expected '}'");
                return v;
            }
        }
        if (c == '[') {
            v.kind = json::type::array;
            ++p_;
            skip();
            if (s_[p_] == ']') {
                ++p_;
                return v;
            }
            for (;;) {
                v.items.push_back(value());
                skip();
                if (s_[p_] == ',') {
                    ++p_;
                    continue;
                }
                if (s_[p_++] != ']') fail("expected ']'");
                return v;
            }
        }
        if (c == '"') {
            v.kind = json::type::string;
            v.str = string_literal();
            return v;
        }
        if (eat("true")) {
            v.kind = json::type::boolean;
            v.b = true;
            return v;
        }
        if (eat("false")) {
            v.kind = json::type::boolean;
            return v;
        }
        if (eat("null")) return v;
        std::size_t used = 0;
        v.num = std::stod(s_.substr(p_, 40), &used);
        if (used == 0) fail("bad number");
        p_ += used;
        v.kind = json::type::number;
        return v;
    }

    std::string s_;
    std::size_t p_ = 0;
};

/// Reads and parses a JSON file.
inline json read_json(std::string const& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("json: cannot open " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return json_parser(ss.str()).parse();
}

}  // namespace ref_io
