/// @file
/// @brief CLOTH (cloze test) evaluation: the passage reader, masked-LM inputs with [MASK] at every
/// blank (split into windows when a passage exceeds the model length), option scoring by the
/// masked-LM logit of each option's first word-piece, and accuracy.
///
/// **Reader.** One JSON file per passage: `article` (blanks written as `_`), `options` (one array of
/// four option strings per blank), `answers` (one letter "A".."D" per blank), optional `source`; other
/// fields are ignored. A split is the folder `<root>/<split>` with the levels `high/` and `middle/`,
/// files in sorted path order. Errors are deq::format_error naming the file and field, e.g.
/// `deq: valid/high/high0.json: field 'answers[3]': expected one of "A", "B", "C", "D", got "E"`;
/// read_cloth_split() counts and lists unreadable files instead of stopping (never silently).
///
/// **Inputs** (reference `run_cloth.py`): the article is tokenized with the BERT tokenizer, every
/// blank token `_` becomes [MASK], and the number of blanks must equal the number of questions
/// (deq::format_error otherwise). A passage of at most `max_length - 2` (510) tokens is one input
/// `[CLS] article [SEP]`. A longer passage is split into windows of `max_length - 2` tokens whose
/// starts advance by half a window (the last window ends at the article's end), each `[CLS] window
/// [SEP]`, and every blank is scored in the window where it has the most context on its shorter side
/// (min(tokens before, tokens after) in the window; ties: the earlier window), the rule BERT's SQuAD
/// code uses for overlapping windows. The reference instead cuts long articles at 512 tokens (the last
/// token set to [SEP]); the windows score every blank, that cut does not.
///
/// **Scoring.** Each option is represented by the first word-piece of its tokenization; the predicted
/// option is the one whose first word-piece has the largest masked-LM logit at the blank (ties: the
/// earlier option). Accuracy = correct / questions.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/json.hpp"
#include "../text/vocab.hpp"

namespace deq::eval {

/// One CLOTH passage.
struct cloth_passage {
    std::string file;                                 ///< Source file.
    std::string article;                              ///< Article text, blanks written as `_`.
    std::vector<std::array<std::string, 4>> options;  ///< The four options of every blank.
    std::vector<int> answers;                         ///< Correct option per blank, 0..3 (A..D).
    std::string source;                               ///< The `source` field ("" when absent).
};

/// Reads one parsed CLOTH passage.
/// @param doc The parsed JSON object (its source names the file in errors).
/// @return The passage; deq::format_error naming the source and field when malformed.
inline cloth_passage parse_cloth(io::json const& doc) {
    if (!doc.is_object()) doc.fail(detail::concat("expected an object, got ", doc.type_name()));
    cloth_passage p;
    p.file = doc.source();
    p.article = doc.at("article").as_string();
    if (io::json const* s = doc.find("source"); s != nullptr && !s->is_null()) p.source = s->as_string();
    io::json const& options = doc.at("options");
    io::json const& answers = doc.at("answers");
    for (io::json const& o : options.as_array()) {
        if (o.as_array().size() != 4) o.fail(detail::concat("expected 4 options, got ", o.as_array().size()));
        std::array<std::string, 4> four;
        for (std::size_t j = 0; j < 4; ++j) four[j] = o.at(j).as_string();
        p.options.push_back(std::move(four));
    }
    for (io::json const& a : answers.as_array()) {
        std::string const& s = a.as_string();
        if (s.size() != 1 || s[0] < 'A' || s[0] > 'D') a.fail(detail::concat("expected one of \"A\", \"B\", \"C\", \"D\", got \"", s, "\""));
        p.answers.push_back(s[0] - 'A');
    }
    if (p.answers.size() != p.options.size()) {
        answers.fail(detail::concat("has ", p.answers.size(), " answers but 'options' has ", p.options.size(), " blanks"));
    }
    if (p.answers.empty()) answers.fail("no question in the passage");
    return p;
}

/// Reads one CLOTH passage file.
/// @param file Path of the JSON file.
/// @return The passage; deq::format_error naming the file (and field) when missing or malformed.
inline cloth_passage read_cloth_file(std::filesystem::path const& file) { return parse_cloth(io::json::parse_file(file)); }

/// A file of a split that could not be read.
struct cloth_skipped_file {
    std::string file;    ///< Path.
    std::string reason;  ///< The error message.
};

/// The passages of one split.
struct cloth_split {
    std::vector<cloth_passage> passages;      ///< Readable passages, in sorted path order.
    std::vector<cloth_skipped_file> skipped;  ///< Unreadable files, with the reason (counted, never silent).
    std::size_t files = 0;                    ///< JSON files found.
};

/// Reads `<root>/<split>/{high,middle}/*.json` (the levels that exist), sorted by path.
/// @param root  The CLOTH folder (holding train/, valid/, ...).
/// @param split Split name, e.g. "train" or "valid".
/// @return The passages and the unreadable files; deq::format_error when the split folder has no
///         level folder or no JSON file.
inline cloth_split read_cloth_split(std::filesystem::path const& root, std::string_view split) {
    namespace fs = std::filesystem;
    fs::path const dir = root / std::string(split);
    std::vector<fs::path> files;
    bool any_level = false;
    for (char const* level : {"high", "middle"}) {
        std::error_code ec;
        fs::path const d = dir / level;
        if (!fs::is_directory(d, ec)) continue;
        any_level = true;
        for (auto const& entry : fs::directory_iterator(d, ec)) {
            if (entry.path().extension() == ".json") files.push_back(entry.path());
        }
    }
    if (!any_level) throw format_error(detail::concat("deq: CLOTH split folder '", dir.string(), "' has neither high/ nor middle/"));
    if (files.empty()) throw format_error(detail::concat("deq: CLOTH split folder '", dir.string(), "' holds no .json file"));
    std::sort(files.begin(), files.end());
    cloth_split s;
    s.files = files.size();
    for (auto const& f : files) {
        try {
            s.passages.push_back(read_cloth_file(f));
        } catch (format_error const& e) {
            s.skipped.push_back({f.string(), e.what()});
        }
    }
    return s;
}

/// A tokenizer usable for CLOTH inputs (deq::text::bert_tokenizer is one).
/// @tparam T Candidate type.
template <class T>
concept cloth_tokenizer = requires(T const& t, std::string_view s) {
    { t.tokenize(s) } -> std::same_as<std::vector<text::token_id>>;
    { t.cls_id() } -> std::convertible_to<text::token_id>;
    { t.sep_id() } -> std::convertible_to<text::token_id>;
    { t.mask_id() } -> std::convertible_to<text::token_id>;
};

/// Options of make_cloth_inputs.
struct cloth_input_options {
    std::size_t max_length = 512;  ///< Tokens per input, [CLS] and [SEP] included (at least 4).
    std::string blank = "_";       ///< Text of a blank; it must tokenize to one token.
};

/// One model input of a passage.
struct cloth_window {
    std::vector<text::token_id> input_ids;  ///< `[CLS] tokens [SEP]` with [MASK] at the blanks.
    std::vector<std::size_t> positions;     ///< Positions (in input_ids) of the blanks scored in this window.
    std::vector<std::size_t> questions;     ///< Question index of each of those positions.
};

/// The model inputs of one passage.
struct cloth_inputs {
    std::vector<cloth_window> windows;                        ///< One or more inputs; together they score every question once.
    std::vector<std::array<text::token_id, 4>> option_ids;    ///< First word-piece of every option.
    std::size_t article_tokens = 0;                           ///< Tokens of the article (no special tokens).
};

/// Builds the masked-LM inputs of a passage (see the file documentation).
/// @tparam Tokenizer A cloth_tokenizer.
/// @param tokenizer The tokenizer.
/// @param passage   The passage.
/// @param options   Length and blank text.
/// @return The inputs; deq::format_error naming the file when the blank count differs from the number
///         of questions or an option has no token; deq::invalid_argument for a bad max_length or blank.
template <cloth_tokenizer Tokenizer>
cloth_inputs make_cloth_inputs(Tokenizer const& tokenizer, cloth_passage const& passage, cloth_input_options const& options = {}) {
    if (options.max_length < 4) detail::throw_invalid_argument("max_length", options.max_length, "must be at least 4");
    std::vector<text::token_id> const blank = tokenizer.tokenize(options.blank);
    if (blank.size() != 1) detail::throw_invalid_argument("blank", options.blank, "must tokenize to exactly one token");
    auto const mask = static_cast<text::token_id>(tokenizer.mask_id());
    cloth_inputs in;
    std::vector<text::token_id> ids = tokenizer.tokenize(passage.article);
    in.article_tokens = ids.size();
    std::vector<std::size_t> blanks;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] == blank[0]) {
            ids[i] = mask;
            blanks.push_back(i);
        }
    }
    if (blanks.size() != passage.answers.size()) {
        throw format_error(detail::concat("deq: ", passage.file, ": field 'article': has ", blanks.size(), " blanks '", options.blank,
                                          "' but the passage has ", passage.answers.size(), " questions"));
    }
    for (std::size_t q = 0; q < passage.options.size(); ++q) {
        std::array<text::token_id, 4> first{};
        for (std::size_t j = 0; j < 4; ++j) {
            std::vector<text::token_id> const t = tokenizer.tokenize(passage.options[q][j]);
            if (t.empty()) {
                throw format_error(detail::concat("deq: ", passage.file, ": field 'options[", q, "][", j, "]': option \"",
                                                  passage.options[q][j], "\" has no token"));
            }
            first[j] = t.front();
        }
        in.option_ids.push_back(first);
    }
    std::size_t const body = options.max_length - 2;
    std::vector<std::pair<std::size_t, std::size_t>> ranges;  // [start, stop) of the article tokens
    if (ids.size() <= body) {
        ranges.emplace_back(0, ids.size());
    } else {
        std::size_t const step = body / 2;
        for (std::size_t start = 0;; start += step) {
            std::size_t const s = std::min(start, ids.size() - body);
            ranges.emplace_back(s, s + body);
            if (s + body >= ids.size()) break;
        }
    }
    std::vector<cloth_window> windows(ranges.size());
    for (std::size_t q = 0; q < blanks.size(); ++q) {
        std::size_t best = 0, best_context = 0;
        bool found = false;
        for (std::size_t w = 0; w < ranges.size(); ++w) {
            auto const [s, e] = ranges[w];
            if (blanks[q] < s || blanks[q] >= e) continue;
            std::size_t const context = std::min(blanks[q] - s, e - 1 - blanks[q]);
            if (!found || context > best_context) {
                best = w;
                best_context = context;
                found = true;
            }
        }
        windows[best].positions.push_back(blanks[q] - ranges[best].first + 1);
        windows[best].questions.push_back(q);
    }
    for (std::size_t w = 0; w < ranges.size(); ++w) {
        if (windows[w].positions.empty()) continue;
        cloth_window win = std::move(windows[w]);
        win.input_ids.push_back(static_cast<text::token_id>(tokenizer.cls_id()));
        win.input_ids.insert(win.input_ids.end(), ids.begin() + static_cast<std::ptrdiff_t>(ranges[w].first),
                             ids.begin() + static_cast<std::ptrdiff_t>(ranges[w].second));
        win.input_ids.push_back(static_cast<text::token_id>(tokenizer.sep_id()));
        in.windows.push_back(std::move(win));
    }
    return in;
}

/// The option with the largest masked-LM logit of its first word-piece.
/// @param logits     Masked-LM logits at the blank, one per vocabulary entry.
/// @param option_ids First word-piece of each option.
/// @return The chosen option, 0..3 (ties: the earlier option); deq::invalid_argument when an id is
///         outside the logits.
inline int cloth_choose(std::span<float const> logits, std::array<text::token_id, 4> const& option_ids) {
    int best = 0;
    for (int j = 0; j < 4; ++j) {
        auto const id = option_ids[static_cast<std::size_t>(j)];
        if (id < 0 || static_cast<std::size_t>(id) >= logits.size()) {
            detail::throw_invalid_argument("option id", id, detail::concat("must index the ", logits.size(), " logits"));
        }
        if (logits[static_cast<std::size_t>(id)] > logits[static_cast<std::size_t>(option_ids[static_cast<std::size_t>(best)])]) best = j;
    }
    return best;
}

/// Accuracy of predicted options.
/// @param predictions Predicted option per question (0..3).
/// @param answers     Correct option per question.
/// @return correct / questions; deq::invalid_argument when empty, deq::shape_error when the lengths differ.
inline double cloth_accuracy(std::span<int const> predictions, std::span<int const> answers) {
    if (predictions.size() != answers.size()) {
        detail::throw_shape_error(detail::concat("cloth_accuracy: ", predictions.size(), " predictions for ", answers.size(), " answers"));
    }
    if (answers.empty()) detail::throw_invalid_argument("answers", "<empty>", "must hold at least one question");
    std::size_t correct = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) correct += predictions[i] == answers[i] ? 1 : 0;
    return static_cast<double>(correct) / static_cast<double>(answers.size());
}

}  // namespace deq::eval
