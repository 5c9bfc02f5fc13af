/// @file
/// @brief SQuAD v1.1 evaluation: the dataset reader, feature creation (question + sliding context
/// windows), n-best span decoding back to the context text, and the official EM / F1 metric. Needs
/// utf8proc for the metric's lower-casing (link the deq::text target).
///
/// **Reader.** `{"version": ..., "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
/// "question", "answers": [{"text", "answer_start"}]}]}]}]}`; every question needs at least one answer
/// and a unique id. Errors are deq::format_error naming the file and the field, e.g.
/// `deq: dev.json: field 'data[3].paragraphs[0].qas[2].answers': expected array, got string`.
///
/// **Features** (transformers' `run_qa.py` `prepare_validation_features`, which the reference's
/// `run_squad.py` uses, with the legacy `max_query_length`): the question's tokens are cut to
/// `max_query_length` (64); each feature is `[CLS] question [SEP] window [SEP]`, type ids 0 for the
/// question part and 1 for the window part, at most `max_length` (384) tokens. The context is cut into
/// windows of `w = max_length - question - 3` tokens that overlap by `doc_stride` (128) tokens: window k
/// starts at `k (w - doc_stride)`, and windows stop at the first one reaching the end of the context
/// (the `tokenizers` overflow rule with `stride = doc_stride`). Features are not padded. Every context
/// token keeps its byte range in the context (bert_tokenizer::tokenize_with_offsets).
///
/// **Decoding** (`postprocess_qa_predictions` of `utils_qa.py`): in each feature, the `n_best` (20)
/// largest start and end logits (ties: the later position first, numpy's stable argsort reversed);
/// every pair with both tokens in the context, `end >= start` and at most `max_answer_length` (30)
/// tokens is a candidate scored `start + end` (float). The candidates of all features are sorted by
/// score (stable, descending) and the best one's text is `context[start.begin, end.end)`; with no
/// candidate the prediction is "empty", as in utils_qa.py.
///
/// **Metric** (the official `evaluate-v1.1.py`): `normalize_answer` = lower-case (Python's `str.lower`:
/// the full Unicode mapping per character, without the final-sigma rule), remove ASCII punctuation
/// (`string.punctuation`), replace the words a / an / the (regex `\b(a|an|the)\b`, Unicode word
/// characters L*, N* and '_') by a space, then split at Python white space (`str.split()`) and join with
/// single spaces. EM = normalised strings equal; F1 = token-overlap F1 of the normalised tokens (0 when
/// nothing is shared); per question the maximum over the gold answers; totals are ×100 means.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <utf8proc.h>

#include "../core/error.hpp"
#include "../io/detail/utf8.hpp"
#include "../io/json.hpp"
#include "../text/detail/unicode.hpp"
#include "../text/offsets.hpp"
#include "../text/vocab.hpp"

namespace deq::eval {

// ---------------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------------

/// One SQuAD question with its paragraph and gold answers.
struct squad_example {
    std::string id;                          ///< Question id (`qas[].id`).
    std::string title;                       ///< Article title.
    std::string question;                    ///< Question text.
    std::string context;                     ///< Paragraph text.
    std::size_t article = 0;                 ///< Index of the article in the file (`data[article]`).
    std::size_t paragraph = 0;               ///< Index of the paragraph in its article.
    std::vector<std::string> answers;        ///< Gold answer texts (at least one).
    std::vector<std::int64_t> answer_starts; ///< Their `answer_start` (code-point index in the context).
};

/// A SQuAD file.
struct squad_dataset {
    std::string source;                  ///< File name.
    std::string version;                 ///< The `version` field ("" when absent).
    std::size_t articles = 0;            ///< Number of articles (`data` entries).
    std::vector<squad_example> examples; ///< Every question, in file order.
};

/// Reads a parsed SQuAD document (see the file documentation for the format).
/// @param doc The parsed JSON document (its source names the file in errors).
/// @return The dataset; deq::format_error naming the source and field when malformed.
inline squad_dataset parse_squad(io::json const& doc) {
    if (!doc.is_object()) doc.fail(detail::concat("expected an object, got ", doc.type_name()));
    squad_dataset d;
    d.source = doc.source();
    if (io::json const* v = doc.find("version")) d.version = v->as_string();
    auto const& data = doc.at("data").as_array();
    d.articles = data.size();
    std::unordered_set<std::string> ids;
    for (std::size_t a = 0; a < data.size(); ++a) {
        io::json const& article = data[a];
        std::string const& title = article.at("title").as_string();
        auto const& paragraphs = article.at("paragraphs").as_array();
        for (std::size_t p = 0; p < paragraphs.size(); ++p) {
            std::string const& context = paragraphs[p].at("context").as_string();
            for (io::json const& qa : paragraphs[p].at("qas").as_array()) {
                squad_example e;
                e.id = qa.at("id").as_string();
                e.title = title;
                e.question = qa.at("question").as_string();
                e.context = context;
                e.article = a;
                e.paragraph = p;
                io::json const& answers = qa.at("answers");
                if (answers.as_array().empty()) answers.fail("expected at least one gold answer");
                for (io::json const& ans : answers.as_array()) {
                    e.answers.push_back(ans.at("text").as_string());
                    e.answer_starts.push_back(ans.at("answer_start").as_int(0, static_cast<std::int64_t>(context.size())));
                }
                if (!ids.insert(e.id).second) qa.at("id").fail(detail::concat("duplicate question id '", e.id, "'"));
                d.examples.push_back(std::move(e));
            }
        }
    }
    if (d.examples.empty()) doc.at("data").fail("no question in the file");
    return d;
}

/// Reads a SQuAD v1.1 JSON file.
/// @param file Path, e.g. `dev-v1.1.json`.
/// @return The dataset; deq::format_error naming the file (and field) when missing or malformed.
inline squad_dataset read_squad(std::filesystem::path const& file) { return parse_squad(io::json::parse_file(file)); }

/// The questions of the articles `[first, last)` of @p data (an article-level split: no paragraph of
/// one side is seen by the other).
/// @param data  The dataset.
/// @param first First article index.
/// @param last  One past the last article index (at most data.articles).
/// @return The questions, in file order; deq::invalid_argument when the range is empty or too large.
inline std::vector<squad_example> squad_articles(squad_dataset const& data, std::size_t first, std::size_t last) {
    if (last > data.articles) detail::throw_invalid_argument("last article", last, detail::concat("must be at most ", data.articles));
    if (first >= last) detail::throw_invalid_argument("first article", first, detail::concat("must be below the last article ", last));
    std::vector<squad_example> out;
    for (auto const& e : data.examples) {
        if (e.article >= first && e.article < last) out.push_back(e);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------------------

/// A tokenizer usable for SQuAD features (deq::text::bert_tokenizer is one).
/// @tparam T Candidate type.
template <class T>
concept squad_tokenizer = requires(T const& t, std::string_view s) {
    { t.tokenize_with_offsets(s) } -> std::same_as<std::vector<text::offset_token>>;
    { t.cls_id() } -> std::convertible_to<text::token_id>;
    { t.sep_id() } -> std::convertible_to<text::token_id>;
};

/// Options of make_squad_features (the reference's values by default).
struct squad_feature_options {
    std::size_t max_length = 384;       ///< Tokens per feature, special tokens included.
    std::size_t doc_stride = 128;       ///< Overlap of consecutive context windows, in tokens.
    std::size_t max_query_length = 64;  ///< Question tokens kept.
};

/// One model input: the question and one context window.
struct squad_feature {
    std::size_t example = 0;                   ///< Index of the example (as passed to make_squad_features).
    std::size_t window = 0;                    ///< Window number within the example.
    std::vector<text::token_id> input_ids;     ///< `[CLS] question [SEP] window [SEP]`.
    std::vector<text::token_id> token_type_ids;///< 0 up to the first [SEP], 1 after.
    std::vector<text::byte_range> offsets;     ///< Byte range in the context of every token (zero outside the window).
    std::size_t context_begin = 0;             ///< Position of the first context token.
    std::size_t context_end = 0;               ///< One past the last context token.
    std::size_t query_truncated = 0;           ///< Question tokens removed by max_query_length.

    /// @param position A token position.
    /// @return Whether the token at @p position belongs to the context.
    bool in_context(std::size_t position) const noexcept { return position >= context_begin && position < context_end; }
};

/// The features of one question (see the file documentation).
/// @tparam Tokenizer A squad_tokenizer.
/// @param tokenizer     The tokenizer.
/// @param example       The question and its context.
/// @param example_index Stored in every feature's `example`.
/// @param options       Lengths and stride.
/// @return One feature per context window (at least one).
/// @throws deq::invalid_argument when the question leaves no room for a window longer than doc_stride.
template <squad_tokenizer Tokenizer>
std::vector<squad_feature> make_squad_features(Tokenizer const& tokenizer, squad_example const& example, std::size_t example_index,
                                               squad_feature_options const& options = {}) {
    std::vector<text::offset_token> question = tokenizer.tokenize_with_offsets(example.question);
    std::size_t truncated = 0;
    if (question.size() > options.max_query_length) {
        truncated = question.size() - options.max_query_length;
        question.resize(options.max_query_length);
    }
    std::vector<text::offset_token> const context = tokenizer.tokenize_with_offsets(example.context);
    std::size_t const fixed = question.size() + 3;
    if (options.max_length <= fixed + options.doc_stride) {
        detail::throw_invalid_argument("max_length", options.max_length,
                                       detail::concat("leaves no context window longer than doc_stride = ", options.doc_stride, " after ",
                                                      question.size(), " question tokens and 3 special tokens (question id '", example.id,
                                                      "')"));
    }
    std::size_t const window = options.max_length - fixed;
    std::size_t const step = window - options.doc_stride;
    std::vector<squad_feature> out;
    std::size_t start = 0;
    while (true) {
        std::size_t const stop = std::min(start + window, context.size());
        squad_feature f;
        f.example = example_index;
        f.window = out.size();
        f.query_truncated = truncated;
        auto push = [&](text::token_id id, text::token_id type, text::byte_range r) {
            f.input_ids.push_back(id);
            f.token_type_ids.push_back(type);
            f.offsets.push_back(r);
        };
        push(static_cast<text::token_id>(tokenizer.cls_id()), 0, {});
        for (auto const& t : question) push(t.id, 0, {});
        push(static_cast<text::token_id>(tokenizer.sep_id()), 0, {});
        f.context_begin = f.input_ids.size();
        for (std::size_t i = start; i < stop; ++i) push(context[i].id, 1, context[i].range);
        f.context_end = f.input_ids.size();
        push(static_cast<text::token_id>(tokenizer.sep_id()), 1, {});
        out.push_back(std::move(f));
        if (stop >= context.size()) break;
        start += step;
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------

/// Options of decode_squad (the reference's values by default).
struct squad_decode_options {
    std::size_t n_best = 20;             ///< Start / end positions considered per feature, and candidates kept.
    std::size_t max_answer_length = 30;  ///< Longest answer, in tokens.
};

/// The logits of one feature of a question.
struct squad_feature_logits {
    squad_feature const* feature = nullptr; ///< The feature (not owned).
    std::span<float const> start;           ///< Start logits, one per token of the feature.
    std::span<float const> end;             ///< End logits, one per token of the feature.
};

/// The decoded answer of one question.
struct squad_prediction {
    std::string text;            ///< Answer text ("empty" when no candidate exists).
    float score = 0;             ///< start + end logit of the answer.
    bool has_candidate = false;  ///< False when the "empty" fallback was used.
    std::size_t window = 0;      ///< Window of the answer.
    text::byte_range range;      ///< Bytes of the answer in the context.
};

}  // namespace deq::eval

namespace deq::detail {

/// Positions of the @p n largest values of @p v, largest first; equal values: later position first.
inline std::vector<std::size_t> squad_top_positions(std::span<float const> v, std::size_t n) {
    std::vector<std::size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return v[a] > v[b] || (v[a] == v[b] && a > b); });
    if (idx.size() > n) idx.resize(n);
    return idx;
}

}  // namespace deq::detail

namespace deq::eval {

/// Decodes the answer of one question from the logits of all its features (see the file
/// documentation).
/// @param context  The paragraph text the offsets refer to.
/// @param features The logits of every feature of the question.
/// @param options  n-best and maximum answer length.
/// @return The prediction.
/// @throws deq::shape_error when logits and feature lengths differ; deq::invalid_argument for a null
///         feature, no feature, or an offset outside @p context.
inline squad_prediction decode_squad(std::string_view context, std::span<squad_feature_logits const> features,
                                     squad_decode_options const& options = {}) {
    if (features.empty()) detail::throw_invalid_argument("features", "<empty>", "a question needs at least one feature");
    struct candidate {
        float score;
        std::size_t window;
        text::byte_range range;
    };
    std::vector<candidate> cands;
    for (auto const& fl : features) {
        if (fl.feature == nullptr) detail::throw_invalid_argument("feature", "nullptr", "must point to a feature");
        squad_feature const& f = *fl.feature;
        std::size_t const n = f.input_ids.size();
        if (fl.start.size() != n || fl.end.size() != n || f.offsets.size() != n) {
            detail::throw_shape_error(detail::concat("decode_squad: feature of ", n, " tokens with ", fl.start.size(), " start and ",
                                                     fl.end.size(), " end logits and ", f.offsets.size(), " offsets"));
        }
        auto const starts = detail::squad_top_positions(fl.start, options.n_best);
        auto const ends = detail::squad_top_positions(fl.end, options.n_best);
        for (std::size_t s : starts) {
            for (std::size_t e : ends) {
                if (!f.in_context(s) || !f.in_context(e) || e < s || e - s + 1 > options.max_answer_length) continue;
                text::byte_range const r{f.offsets[s].begin, f.offsets[e].end};
                if (r.end > context.size() || r.begin > r.end) {
                    detail::throw_invalid_argument("offsets", detail::concat("[", r.begin, ", ", r.end, ")"),
                                                   detail::concat("must lie inside the context of ", context.size(), " bytes"));
                }
                cands.push_back({fl.start[s] + fl.end[e], f.window, r});
            }
        }
    }
    std::stable_sort(cands.begin(), cands.end(), [](candidate const& a, candidate const& b) { return a.score > b.score; });
    squad_prediction p;
    if (cands.empty()) {
        p.text = "empty";
        return p;
    }
    p.has_candidate = true;
    p.score = cands.front().score;
    p.window = cands.front().window;
    p.range = cands.front().range;
    p.text = std::string(context.substr(p.range.begin, p.range.size()));
    return p;
}

// ---------------------------------------------------------------------------------------------------
// Metric
// ---------------------------------------------------------------------------------------------------

}  // namespace deq::eval

namespace deq::detail {

/// Python's `str.isspace()` (the separators of `str.split()`).
inline bool squad_is_python_space(char32_t c) noexcept {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// Python regex `\w` on str: letters (L*), numbers (N*) and '_'.
inline bool squad_is_word(char32_t c) noexcept {
    if (c == U'_') return true;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
        case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return true;
        default: return false;
    }
}

/// The normalised tokens of an answer (normalize_answer(s).split()).
inline std::vector<std::u32string> squad_normalized_tokens(std::string_view s) {
    std::u32string lower;
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t const at = pos;
        char32_t const c = decode_utf8(s, pos);
        if (c == utf8_invalid) throw_invalid_argument("answer", detail::concat("<", s.size(), " bytes>"), detail::concat("must be valid UTF-8 (invalid byte at offset ", at, ")"));
        append_lowercase(c, lower);
    }
    std::u32string nopunc;
    for (char32_t c : lower) {
        bool const punct = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
        if (!punct) nopunc += c;
    }
    // re.sub(r'\b(a|an|the)\b', ' ', text): non-overlapping, left to right.
    std::u32string noart;
    std::size_t i = 0;
    auto word_at = [&](std::size_t k) { return k < nopunc.size() && squad_is_word(nopunc[k]); };
    while (i < nopunc.size()) {
        if (i == 0 || !squad_is_word(nopunc[i - 1])) {
            std::size_t len = 0;
            for (std::u32string_view w : {std::u32string_view(U"a"), std::u32string_view(U"an"), std::u32string_view(U"the")}) {
                if (std::u32string_view(nopunc).substr(i, w.size()) == w && !word_at(i + w.size())) {
                    len = w.size();
                    break;
                }
            }
            if (len > 0) {
                noart += U' ';
                i += len;
                continue;
            }
        }
        noart += nopunc[i++];
    }
    std::vector<std::u32string> tokens;
    std::u32string cur;
    for (char32_t c : noart) {
        if (squad_is_python_space(c)) {
            if (!cur.empty()) tokens.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) tokens.push_back(std::move(cur));
    return tokens;
}

}  // namespace deq::detail

namespace deq::eval {

/// The official `normalize_answer` of SQuAD v1.1 (see the file documentation).
/// @param s UTF-8 text (invalid UTF-8 throws deq::invalid_argument).
/// @return The normalised text.
inline std::string squad_normalize_answer(std::string_view s) {
    std::string out;
    for (auto const& t : detail::squad_normalized_tokens(s)) {
        if (!out.empty()) out += ' ';
        for (char32_t c : t) detail::encode_utf8(c, out);
    }
    return out;
}

/// Exact match of one prediction against one gold answer (after normalisation).
/// @param prediction Predicted text.
/// @param gold       Gold answer text.
/// @return 1 when the normalised texts are equal, else 0.
inline double squad_exact_match(std::string_view prediction, std::string_view gold) {
    return detail::squad_normalized_tokens(prediction) == detail::squad_normalized_tokens(gold) ? 1.0 : 0.0;
}

/// Token-overlap F1 of one prediction against one gold answer (the official `f1_score`).
/// @param prediction Predicted text.
/// @param gold       Gold answer text.
/// @return F1 in [0, 1]; 0 when no normalised token is shared (also when either side is empty).
inline double squad_f1(std::string_view prediction, std::string_view gold) {
    auto const p = detail::squad_normalized_tokens(prediction);
    auto const g = detail::squad_normalized_tokens(gold);
    std::map<std::u32string, std::size_t> counts;
    for (auto const& t : g) ++counts[t];
    std::size_t same = 0;
    for (auto const& t : p) {
        auto it = counts.find(t);
        if (it != counts.end() && it->second > 0) {
            --it->second;
            ++same;
        }
    }
    if (same == 0) return 0.0;
    double const precision = static_cast<double>(same) / static_cast<double>(p.size());
    double const recall = static_cast<double>(same) / static_cast<double>(g.size());
    return 2.0 * precision * recall / (precision + recall);
}

/// EM and F1 over a set of questions (×100), as evaluate-v1.1.py reports them.
struct squad_score {
    double exact_match = 0;        ///< Mean of the per-question maximum EM, ×100.
    double f1 = 0;                 ///< Mean of the per-question maximum F1, ×100.
    std::size_t questions = 0;     ///< Questions scored.
    std::size_t unanswered = 0;    ///< Questions without a prediction (scored 0, as the official script does).
};

/// Scores predictions against the gold answers of @p examples.
/// @param examples    The questions (with their gold answers).
/// @param predictions Predicted text per question id; ids not among the questions are ignored.
/// @return EM / F1 ×100 over all questions; questions without a prediction count as 0 and are counted
///         in `unanswered`. deq::invalid_argument when @p examples is empty.
inline squad_score squad_evaluate(std::span<squad_example const> examples, std::unordered_map<std::string, std::string> const& predictions) {
    if (examples.empty()) detail::throw_invalid_argument("examples", "<empty>", "must hold at least one question");
    squad_score s;
    double em = 0, f1 = 0;
    for (auto const& e : examples) {
        ++s.questions;
        auto const it = predictions.find(e.id);
        if (it == predictions.end()) {
            ++s.unanswered;
            continue;
        }
        double best_em = 0, best_f1 = 0;
        for (auto const& g : e.answers) {
            best_em = std::max(best_em, squad_exact_match(it->second, g));
            best_f1 = std::max(best_f1, squad_f1(it->second, g));
        }
        em += best_em;
        f1 += best_f1;
    }
    s.exact_match = 100.0 * em / static_cast<double>(s.questions);
    s.f1 = 100.0 * f1 / static_cast<double>(s.questions);
    return s;
}

}  // namespace deq::eval
