// Tokenizer identity: deq::text::bert_tokenizer against transformers' BertTokenizer.
//
// python/deq_reference/tokenize_glue.py (CTest fixture tokenizer.reference) writes the reference into
// $DEQ_TOKENIZER_REFERENCE; this program reads the GLUE dev TSV files itself (deq::io::read_tsv,
// data folder $DEQ_DATA_DIR) and asserts identical ids on every row, on random texts, and identical
// pre-tokenisation on every Unicode scalar value.
#include <doctest/doctest.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <deq/io/detail/utf8.hpp>
#include <deq/io/json.hpp>
#include <deq/io/tsv.hpp>
#include <deq/text/bert_tokenizer.hpp>

namespace fs = std::filesystem;
using deq::text::token_id;

namespace {

fs::path env_path(char const* var, char const* fallback) {
    if (char const* v = std::getenv(var); v != nullptr && *v != '\0') return v;
    return fallback;
}

#ifndef DEQ_TOKENIZER_REFERENCE_DIR
#define DEQ_TOKENIZER_REFERENCE_DIR "tokenizer_reference"
#endif
#ifndef DEQ_TEST_DATA_DIR
#define DEQ_TEST_DATA_DIR "../shared/data"
#endif

fs::path reference_dir() { return env_path("DEQ_TOKENIZER_REFERENCE", DEQ_TOKENIZER_REFERENCE_DIR); }
fs::path data_dir() { return env_path("DEQ_DATA_DIR", DEQ_TEST_DATA_DIR); }

deq::io::json const& manifest() {
    static deq::io::json const m = deq::io::json::parse_file(reference_dir() / "manifest.json");
    return m;
}

deq::text::bert_tokenizer const& tokenizer() {
    static deq::text::bert_tokenizer const t = deq::text::bert_tokenizer::from_directory(manifest().at("model_dir").as_string());
    return t;
}

// The GLUE dev sets and their text columns (those of transformers' GLUE processors).
struct glue_task {
    char const* name;
    char const* file;
    bool header;
    int first;
    int second;  // -1: single sentence
};
constexpr glue_task glue_tasks[] = {
    {"CoLA", "glue/CoLA/dev.tsv", false, 3, -1},  {"SST-2", "glue/SST-2/dev.tsv", true, 0, -1}, {"MRPC", "glue/MRPC/dev.tsv", true, 3, 4},
    {"STS-B", "glue/STS-B/dev.tsv", true, 7, 8}, {"RTE", "glue/RTE/dev.tsv", true, 1, 2},
};

template <class T>
std::vector<T> parse_numbers(deq::io::tsv_table const& t, std::size_t row, std::size_t col) {
    std::string const& s = t.field(row, col);
    std::vector<T> out;
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t end = s.find(' ', pos);
        if (end == std::string::npos) end = s.size();
        T v{};
        auto const r = std::from_chars(s.data() + pos, s.data() + end, v);
        if (r.ec != std::errc{} || r.ptr != s.data() + end) t.fail(row, "malformed number list in column " + std::to_string(col + 1));
        out.push_back(v);
        pos = end + 1;
    }
    return out;
}

template <class T>
std::vector<T> json_numbers(deq::io::json const& a) {
    std::vector<T> out;
    for (auto const& x : a.as_array()) out.push_back(x.as<T>());
    return out;
}

template <class T>
std::string join(std::vector<T> const& v) {
    std::ostringstream s;
    for (std::size_t i = 0; i < v.size(); ++i) s << (i ? " " : "") << +v[i];
    return s.str();
}

// Printable form of a text for failure messages: non-ASCII and control characters as \u{...}.
std::string printable(std::string_view text) {
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        char32_t const c = deq::detail::decode_utf8(text, pos);
        if (c == deq::detail::utf8_invalid) return "<invalid UTF-8>";
        if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
        } else {
            std::ostringstream s;
            s << "\\u{" << std::hex << static_cast<std::uint32_t>(c) << "}";
            out += s.str();
        }
    }
    return out;
}

}  // namespace

TEST_CASE("GLUE dev sets: identical input_ids, token_type_ids and attention_mask on every row") {
    auto const& m = manifest();
    auto const& tok = tokenizer();
    std::size_t const max_length = static_cast<std::size_t>(m.at("max_length").as_int(3, 100000));
    deq::text::encode_options const options{.max_length = max_length,
                                            .truncation = deq::text::truncation_strategy::longest_first,
                                            .padding = deq::text::padding_strategy::max_length};
    MESSAGE("reference: transformers " << m.at("transformers").as_string() << ", tokenizers " << m.at("tokenizers").as_string() << " ("
                                       << m.at("tokenizer_class").as_string() << "), vocabulary " << tok.vocabulary().source());
    std::size_t total = 0;
    for (glue_task const& task : glue_tasks) {
        auto const table = deq::io::read_tsv(data_dir() / task.file, {.header = task.header});
        auto const& info = m.at("tasks").at(task.name);
        auto const ref = deq::io::read_tsv(reference_dir() / info.at("ids").as_string(), {.header = false, .columns = 4});
        REQUIRE(table.size() == static_cast<std::size_t>(info.at("rows").as_int()));
        REQUIRE(ref.size() == table.size());
        std::size_t differ = 0;
        std::size_t truncated = 0;
        for (std::size_t r = 0; r < table.size(); ++r) {
            REQUIRE(static_cast<std::size_t>(std::stoull(ref.field(r, 0))) == table.row(r).line);
            std::string const& a = table.field(r, static_cast<std::size_t>(task.first));
            auto const e = task.second < 0 ? tok.encode(a, options) : tok.encode(a, table.field(r, static_cast<std::size_t>(task.second)), options);
            auto const ids = parse_numbers<token_id>(ref, r, 1);
            auto const types = parse_numbers<token_id>(ref, r, 2);
            auto const mask = parse_numbers<unsigned>(ref, r, 3);
            std::vector<unsigned> const got_mask(e.attention_mask.begin(), e.attention_mask.end());
            truncated += e.truncated > 0;
            if (e.input_ids != ids || e.token_type_ids != types || got_mask != mask) {
                ++differ;
                if (differ <= 5) {
                    MESSAGE(std::string(task.name) << " " << table.source() << ":" << table.row(r).line << " differs\n  text: " << printable(a)
                                      << "\n  transformers: " << join(ids) << "\n  deq:          " << join(e.input_ids)
                                      << "\n  types ok: " << (e.token_type_ids == types) << ", mask ok: " << (got_mask == mask));
                }
            }
        }
        MESSAGE(std::string(task.name) << ": " << table.size() << " rows compared, " << differ << " differ (" << truncated << " truncated to " << max_length
                          << " tokens)");
        CHECK(differ == 0);
        total += table.size();
    }
    MESSAGE("GLUE dev: " << total << " rows compared");
}

TEST_CASE("random texts and pairs: identical ids with random max_length") {
    auto const& m = manifest();
    auto const* fuzz = m.find("fuzz");
    if (fuzz == nullptr) {
        MESSAGE("the reference has no fuzz texts (tokenize_glue.py --fuzz N): skipped");
        return;
    }
    auto const& tok = tokenizer();
    fs::path const file = reference_dir() / fuzz->at("file").as_string();
    std::ifstream in(file, std::ios::binary);
    REQUIRE(in);
    std::string line;
    std::size_t n = 0;
    std::size_t differ = 0;
    std::size_t truncated = 0;
    while (std::getline(in, line)) {
        ++n;
        auto const j = deq::io::json::parse(line, file.string() + ":" + std::to_string(n));
        std::string const& a = j.at("a").as_string();
        deq::text::encode_options const o{.max_length = static_cast<std::size_t>(j.at("max_length").as_int(2, 512))};
        auto const e = j.at("b").is_null() ? tok.encode(a, o) : tok.encode(a, j.at("b").as_string(), o);
        auto const ids = json_numbers<token_id>(j.at("input_ids"));
        auto const types = json_numbers<token_id>(j.at("token_type_ids"));
        auto const mask = json_numbers<std::uint8_t>(j.at("attention_mask"));
        truncated += e.truncated > 0;
        if (e.input_ids != ids || e.token_type_ids != types || e.attention_mask != mask) {
            ++differ;
            if (differ <= 5) {
                MESSAGE(file.string() << ":" << n << " differs\n  a: " << printable(a)
                                      << (j.at("b").is_null() ? std::string() : "\n  b: " + printable(j.at("b").as_string()))
                                      << "\n  transformers: " << join(ids) << "\n  deq:          " << join(e.input_ids));
            }
        }
    }
    CHECK(n == static_cast<std::size_t>(fuzz->at("count").as_int()));
    MESSAGE("random texts: " << n << " compared, " << differ << " differ (" << truncated << " truncated)");
    CHECK(differ == 0);
}

TEST_CASE("every Unicode scalar value: identical normalisation and pre-tokenisation") {
    auto const& m = manifest();
    auto const* sweep = m.find("sweep");
    if (sweep == nullptr) {
        MESSAGE("the reference has no sweep (tokenize_glue.py --sweep): skipped");
        return;
    }
    auto const& o = tokenizer().options();
    deq::text::basic_tokenizer const bt(deq::text::basic_tokenizer_options{o.lower_case, o.strip_accents, o.tokenize_chinese_chars, o.clean_text, {}});
    fs::path const file = reference_dir() / sweep->at("file").as_string();
    std::ifstream in(file, std::ios::binary);
    REQUIRE(in);
    std::string line;
    std::size_t n = 0;
    std::size_t differ = 0;
    std::vector<std::string> expected;
    std::vector<deq::text::basic_token> got;
    while (std::getline(in, line)) {
        ++n;
        std::size_t const tab = line.find('\t');
        REQUIRE(tab != std::string::npos);
        std::uint32_t cp = 0;
        std::from_chars(line.data(), line.data() + tab, cp, 16);
        expected.clear();
        for (std::size_t pos = tab + 1; pos < line.size();) {
            std::size_t end = line.find(' ', pos);
            if (end == std::string::npos) end = line.size();
            expected.emplace_back(line, pos, end - pos);
            pos = end + 1;
        }
        std::string text = "a";
        deq::detail::encode_utf8(cp, text);
        text += "b";
        got.clear();
        bt.tokenize(text, got);
        bool same = got.size() == expected.size();
        for (std::size_t i = 0; same && i < got.size(); ++i) same = got[i].text == expected[i];
        if (!same) {
            ++differ;
            if (differ <= 10) {
                std::string g;
                for (auto const& t : got) g += (g.empty() ? "" : " ") + printable(t.text);
                std::string x;
                for (auto const& t : expected) x += (x.empty() ? "" : " ") + printable(t);
                MESSAGE("U+" << std::hex << cp << std::dec << ": transformers [" << x << "], deq [" << g << "]");
            }
        }
    }
    CHECK(n == static_cast<std::size_t>(sweep->at("count").as_int()));
    MESSAGE("unicode sweep: " << n << " code points compared, " << differ << " differ (utf8proc " << std::string(utf8proc_version()) << ", Unicode "
                              << std::string(utf8proc_unicode_version()) << ")");
    // The compatibility table (text/detail/hf_unicode_compat.hpp) is relative to one Unicode version
    // of utf8proc; with another, characters assigned in between may differ (reported, not failed).
    if (std::string_view(utf8proc_unicode_version()) == deq::detail::hf_compat_unicode_version) {
        CHECK(differ == 0);
    } else {
        MESSAGE("utf8proc's Unicode " << std::string(utf8proc_unicode_version()) << " is not the " << std::string(deq::detail::hf_compat_unicode_version)
                                      << " of the compatibility table: differences are reported only");
        WARN(differ == 0);
    }
}
