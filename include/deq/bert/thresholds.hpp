/// @file
/// @brief `deq::bert::predictor_thresholds`: the low-bit predictor's quantizer thresholds of every
/// encoder layer (from a fine-tuned checkpoint or from deq::bert::calibrate), saved as a small JSON file.
///
/// File format (UTF-8 JSON, written by save(), read by load()):
///
///     {"format": "deq-bert-predictor-thresholds", "version": 1, "bits": 4,
///      "origin": "calibration: 256 sentences of glue/STS-B/train.tsv, ...",
///      "steps": 8, "decay": 0.9999,
///      "layers": [{"input_x_thresh": 0.62, "input_y_thresh": 0.71}, ...]}
///
/// `input_x_thresh` is the threshold of the L2-normalised queries and `input_y_thresh` that of the keys
/// (the names of the reference's `QuantizedMatMul` buffers). Numbers are written in the shortest form that
/// reads back to the same float.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/json.hpp"
#include "../predict/sanger_predictor.hpp"
#include "weights.hpp"

namespace deq::bert {

/// Quantizer thresholds of every encoder layer, with their provenance.
struct predictor_thresholds {
    /// Magic string of the file format.
    static constexpr char const* format_name = "deq-bert-predictor-thresholds";
    /// Version of the file format.
    static constexpr int format_version = 1;

    /// One entry per encoder layer.
    std::vector<quantizer_thresholds> layers;
    /// Predictor bit width (the reference uses 4).
    int bits = 4;
    /// Where the thresholds come from (checkpoint file, calibration data), for reports.
    std::string origin;
    /// Calibration steps taken (0 for a checkpoint).
    std::int64_t steps = 0;
    /// EMA decay of the calibration (the reference's 0.9999).
    double decay = 0.9999;
    /// The file the thresholds were read from (from_json() / load()), named in errors; empty otherwise.
    /// Not written by to_json().
    std::string source;

    /// The predictor configuration of layer @p layer.
    /// @param layer Layer index in [0, layers.size()).
    /// @return `{input_x_thresh, input_y_thresh, bits}`.
    /// @throws deq::invalid_argument for a bad index or thresholds.
    predictor_config config(index_t layer) const {
        if (layer < 0 || layer >= static_cast<index_t>(layers.size())) {
            detail::throw_invalid_argument("layer", layer, detail::concat("must be in [0, ", layers.size(), ")"));
        }
        quantizer_thresholds const& t = layers[static_cast<std::size_t>(layer)];
        predictor_config c{t.input_x_thresh, t.input_y_thresh, bits};
        c.validate();
        return c;
    }

    /// Checks the number of layers, the bit width and every threshold.
    /// @param num_layers Expected number of layers.
    /// @throws deq::invalid_argument naming the field, its value and (when known) the source file.
    void validate(index_t num_layers) const {
        if (static_cast<index_t>(layers.size()) != num_layers) {
            detail::throw_invalid_argument(
                "predictor_thresholds.layers.size()", layers.size(),
                detail::concat("must equal the model's num_hidden_layers = ", num_layers,
                               source.empty() ? std::string() : detail::concat(" (the thresholds file '", source, "' lists ", layers.size(),
                                                                               " layers)")));
        }
        for (index_t l = 0; l < num_layers; ++l) config(l);
    }

    /// The thresholds stored in a checkpoint's weights.
    /// @param weights Weights loaded with bert_weights::load (every layer must have thresholds).
    /// @param origin  Provenance text (e.g. the file name).
    /// @return The thresholds (4 bits, the reference's width).
    /// @throws deq::invalid_argument when a layer has none.
    static predictor_thresholds from_weights(bert_weights const& weights, std::string origin) {
        predictor_thresholds t;
        t.origin = std::move(origin);
        for (std::size_t n = 0; n < weights.layers.size(); ++n) {
            if (!weights.layers[n].thresholds) {
                detail::throw_invalid_argument(detail::concat("layers[", n, "].thresholds"), "<none>",
                                               "the checkpoint has no quantizer thresholds for this layer");
            }
            t.layers.push_back(*weights.layers[n].thresholds);
        }
        return t;
    }

    /// The thresholds as a JSON document (see the file documentation).
    /// @return The document.
    io::json to_json() const {
        io::json doc = io::json::object();
        doc["format"] = format_name;
        doc["version"] = format_version;
        doc["bits"] = bits;
        doc["origin"] = origin;
        doc["steps"] = steps;
        doc["decay"] = decay;
        io::json list = io::json::array();
        for (auto const& l : layers) {
            io::json e = io::json::object();
            e["input_x_thresh"] = static_cast<double>(l.input_x_thresh);
            e["input_y_thresh"] = static_cast<double>(l.input_y_thresh);
            list.push_back(std::move(e));
        }
        doc["layers"] = std::move(list);
        return doc;
    }

    /// Reads the thresholds from a JSON document (see the file documentation).
    /// @param doc The parsed document.
    /// @return The thresholds (source() is the document's source); deq::format_error naming the source
    ///         and field when malformed (wrong format or version, missing fields or fields of the wrong
    ///         type, thresholds not finite and > 0, bits outside 2..8 or 16).
    static predictor_thresholds from_json(io::json const& doc) {
        if (!doc.is_object()) doc.fail(detail::concat("expected a JSON object, got ", doc.type_name()));
        io::json const& fmt = doc.at("format");
        if (fmt.as_string() != format_name) fmt.fail(detail::concat("expected \"", format_name, "\", got \"", fmt.as_string(), "\""));
        doc.at("version").as_int(format_version, format_version);
        predictor_thresholds t;
        t.source = doc.source();
        io::json const& bits = doc.at("bits");
        t.bits = static_cast<int>(bits.as_int(2, 16));
        if (t.bits > 8 && t.bits != 16) bits.fail(detail::concat("expected 2..8 or 16, got ", t.bits));
        t.origin = doc.value<std::string>("origin", "");
        t.steps = doc.value<std::int64_t>("steps", 0);
        t.decay = doc.value<double>("decay", 0.9999);
        for (io::json const& e : doc.at("layers").as_array()) {
            auto read = [&](char const* key) {
                io::json const& v = e.at(key);
                auto const f = static_cast<float>(v.as_double());
                if (!(std::isfinite(f) && f > 0.0f)) v.fail(detail::concat("must be finite and > 0 as a float, got ", v.dump()));
                return f;
            };
            t.layers.push_back({read("input_x_thresh"), read("input_y_thresh")});
        }
        if (t.layers.empty()) doc.at("layers").fail("must list at least one layer");
        return t;
    }

    /// Writes the thresholds to @p file as JSON (replacing it).
    /// @param file Destination path.
    /// @throws deq::error when the file cannot be written.
    void save(std::filesystem::path const& file) const {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        if (!out) throw error(detail::concat("deq: cannot create thresholds file '", file.string(), "'"));
        out << to_json().dump(2) << '\n';
        out.close();
        if (!out) throw error(detail::concat("deq: cannot write thresholds file '", file.string(), "'"));
    }

    /// Reads a file written by save().
    /// @param file The file.
    /// @return The thresholds (source() is @p file); deq::format_error naming the file (and field) when
    ///         missing or malformed. Whether they fit a model (number of layers) is checked by validate(),
    ///         e.g. in bert_model::set_thresholds(), whose error names the file.
    static predictor_thresholds load(std::filesystem::path const& file) { return from_json(io::json::parse_file(file)); }
};

}  // namespace deq::bert
