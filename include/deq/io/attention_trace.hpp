/// @file
/// @brief `deq::io::attention_trace`: the attention masks (kept entries) and precision maps (refined
/// entries) of every layer for some examples of an evaluation, and its file format
/// (write_attention_trace / read_attention_trace), the input of the accelerator model.
///
/// **File format** (a safetensors file, deq/io/safetensors.hpp):
///
/// `__metadata__` (all values are strings):
///
/// | key | value |
/// |---|---|
/// | `format` | `deq-attention-trace` |
/// | `version` | `1` |
/// | `model`, `task`, `mode` | free text: the model folder, the task, the attention mode (canonical text) |
/// | `num_layers`, `num_heads`, `head_dim` | decimal integers >= 1: the encoder geometry |
/// | `num_records` | decimal integer >= 0 |
///
/// Tensors:
///
/// | name | dtype | shape | content |
/// |---|---|---|---|
/// | `records` | I64 | [num_records, 5] | per record: example, layer, length, has_kept (0/1), has_refined (0/1) |
/// | `records.R.kept` | U8 | [num_heads, length, ceil(length / 8)] | record R's kept mask, when has_kept |
/// | `records.R.refined` | U8 | [num_heads, length, ceil(length / 8)] | record R's refined mask, when has_refined |
///
/// R is the record's position (0-based decimal, no padding). A mask is packed row by row (query i of
/// head h): key j is bit `j % 8` (least significant first) of byte `j / 8`; the unused high bits of a
/// row's last byte are 0. In NumPy: `np.unpackbits(t, axis=-1, bitorder="little")[..., :length]`.
/// `length` is the example's real (unpadded) token count. A record without a kept mask keeps every
/// entry (dense and DEQ attention); a record without a refined mask refines none (Sanger, static
/// patterns: every kept entry is computed exactly). Layers are 0-based, examples are the 0-based
/// positions in the evaluated dev set. There are no other tensors.
///
/// read_attention_trace() validates all of this and throws deq::format_error naming the file and the
/// metadata field, tensor or record at fault; write_attention_trace() validates the trace first
/// (deq::invalid_argument / deq::shape_error naming the record).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "../core/bit_mask.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "safetensors.hpp"

namespace deq::io {

/// The masks of one layer for one example.
struct attention_trace_record {
    /// 0-based position of the example in the evaluated data.
    index_t example = 0;
    /// 0-based encoder layer.
    index_t layer = 0;
    /// Real (unpadded) token count of the example.
    index_t length = 0;
    /// Kept entries, [1, heads, length, length]; empty = every entry kept.
    bit_mask kept;
    /// Refined (full-precision) entries, [1, heads, length, length]; empty = none refined.
    bit_mask refined;
};

/// The masks of some examples of an evaluation, with the model geometry and mode.
struct attention_trace {
    /// The model (e.g. its folder).
    std::string model;
    /// The task (e.g. `mrpc`).
    std::string task;
    /// The attention mode (canonical text).
    std::string mode;
    /// Number of encoder layers, >= 1.
    index_t num_layers = 0;
    /// Number of attention heads, >= 1.
    index_t num_heads = 0;
    /// Head dimension, >= 1.
    index_t head_dim = 0;
    /// The records.
    std::vector<attention_trace_record> records;
};

}  // namespace deq::io

namespace deq::detail {

/// Format name stored in the metadata.
inline constexpr char const* attention_trace_format = "deq-attention-trace";

/// Bytes per packed mask row of @p length keys.
inline index_t trace_row_bytes(index_t length) noexcept { return length / 8 + (length % 8 != 0 ? 1 : 0); }

/// Packs a [1, heads, L, L] mask into row-wise bytes.
inline std::vector<std::byte> trace_pack(bit_mask const& m) {
    index_t const heads = m.heads(), rows = m.rows(), cols = m.cols(), rb = trace_row_bytes(cols);
    std::vector<std::byte> out(static_cast<std::size_t>(heads * rows * rb), std::byte{0});
    for (index_t h = 0; h < heads; ++h)
        for (index_t i = 0; i < rows; ++i) {
            std::uint64_t const* words = m.view().row(0, h, i);
            std::byte* dst = out.data() + (h * rows + i) * rb;
            for (index_t j = 0; j < rb; ++j) {
                dst[j] = static_cast<std::byte>((words[(8 * j) / mask_word_bits] >> ((8 * j) % mask_word_bits)) & 0xFFu);
            }
        }
    return out;
}

/// Checks that mask @p m of record @p index is empty or [1, heads, length, length].
inline void trace_check_mask(bit_mask const& m, char const* what, std::size_t index, index_t heads, index_t length) {
    if (m.empty()) return;
    if (m.batch() != 1 || m.heads() != heads || m.rows() != length || m.cols() != length) {
        throw_shape_error(concat("attention trace: records[", index, "].", what, " has shape [", m.batch(), ", ", m.heads(), ", ",
                                 m.rows(), ", ", m.cols(), "], expected [1, ", heads, ", ", length, ", ", length, "]"));
    }
}

/// Parses a metadata integer (decimal, >= @p lo).
inline index_t trace_meta_int(io::safetensors_file const& f, std::string const& key, index_t lo) {
    auto const it = f.metadata().find(key);
    if (it == f.metadata().end()) throw format_error(concat("deq: ", f.source(), ": attention trace metadata field '", key, "' is missing"));
    std::string const& s = it->second;
    index_t v = 0;
    auto const r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size() || v < lo) {
        throw format_error(concat("deq: ", f.source(), ": attention trace metadata field '", key, "' = \"", s,
                                  "\": expected a decimal integer >= ", lo));
    }
    return v;
}

/// The metadata string @p key (format_error when absent).
inline std::string trace_meta_string(io::safetensors_file const& f, std::string const& key) {
    auto const it = f.metadata().find(key);
    if (it == f.metadata().end()) throw format_error(concat("deq: ", f.source(), ": attention trace metadata field '", key, "' is missing"));
    return it->second;
}

/// Reads and unpacks mask tensor @p name of shape [heads, length, ceil(length/8)] into [1, heads, L, L].
inline bit_mask trace_unpack(io::safetensors_file const& f, std::string const& name, index_t heads, index_t length) {
    io::tensor_info const& t = f.info(name);
    auto fail = [&](std::string const& why) -> void { throw format_error(concat("deq: ", f.source(), ": tensor '", name, "' ", why)); };
    if (t.type != io::dtype::U8) fail(concat("has dtype ", io::dtype_name(t.type), ", expected U8 (packed bits)"));
    index_t const rb = trace_row_bytes(length);
    if (t.shape.size() != 3 || t.shape[0] != heads || t.shape[1] != length || t.shape[2] != rb) {
        fail(concat("has shape ", t.shape_string(), ", expected [", heads, ", ", length, ", ", rb, "] (heads, length, packed bytes)"));
    }
    auto const bytes = f.raw(name);
    bit_mask m(1, heads, length, length);
    auto v = m.view();
    for (index_t h = 0; h < heads; ++h)
        for (index_t i = 0; i < length; ++i) {
            std::byte const* src = bytes.data() + (h * length + i) * rb;
            std::uint64_t* words = v.row(0, h, i);
            for (index_t j = 0; j < rb; ++j) {
                auto const b = static_cast<std::uint64_t>(src[j]);
                index_t const valid = length - 8 * j < 8 ? length - 8 * j : 8;
                if (valid < 8 && (b >> valid) != 0) {
                    fail(concat("has bits set beyond key ", length - 1, " in row [", h, ", ", i, "] (the padding bits must be 0)"));
                }
                words[(8 * j) / mask_word_bits] |= b << ((8 * j) % mask_word_bits);
            }
        }
    return m;
}

}  // namespace deq::detail

namespace deq::io {

/// Writes @p trace to @p file (replacing it) in the format of the file documentation.
/// @param file  Destination path.
/// @param trace The trace.
/// @throws deq::invalid_argument for a geometry field < 1 or a record whose example is < 0, layer
///         outside [0, num_layers) or length < 1; deq::shape_error for a mask that is not
///         [1, num_heads, length, length] (each naming the record); deq::error when the file cannot
///         be written.
inline void write_attention_trace(std::filesystem::path const& file, attention_trace const& trace) {
    if (trace.num_layers < 1) detail::throw_invalid_argument("attention_trace.num_layers", trace.num_layers, "must be >= 1");
    if (trace.num_heads < 1) detail::throw_invalid_argument("attention_trace.num_heads", trace.num_heads, "must be >= 1");
    if (trace.head_dim < 1) detail::throw_invalid_argument("attention_trace.head_dim", trace.head_dim, "must be >= 1");
    safetensors_writer w;
    w.set_metadata("format", detail::attention_trace_format);
    w.set_metadata("version", "1");
    w.set_metadata("model", trace.model);
    w.set_metadata("task", trace.task);
    w.set_metadata("mode", trace.mode);
    w.set_metadata("num_layers", std::to_string(trace.num_layers));
    w.set_metadata("num_heads", std::to_string(trace.num_heads));
    w.set_metadata("head_dim", std::to_string(trace.head_dim));
    w.set_metadata("num_records", std::to_string(trace.records.size()));
    std::vector<std::int64_t> table;
    table.reserve(trace.records.size() * 5);
    for (std::size_t r = 0; r < trace.records.size(); ++r) {
        attention_trace_record const& rec = trace.records[r];
        std::string const base = "records." + std::to_string(r);
        if (rec.example < 0) detail::throw_invalid_argument(base + ".example", rec.example, "must be >= 0");
        if (rec.layer < 0 || rec.layer >= trace.num_layers) {
            detail::throw_invalid_argument(base + ".layer", rec.layer, detail::concat("must be in [0, num_layers = ", trace.num_layers, ")"));
        }
        if (rec.length < 1) detail::throw_invalid_argument(base + ".length", rec.length, "must be >= 1");
        detail::trace_check_mask(rec.kept, "kept", r, trace.num_heads, rec.length);
        detail::trace_check_mask(rec.refined, "refined", r, trace.num_heads, rec.length);
        table.insert(table.end(), {rec.example, rec.layer, rec.length, rec.kept.empty() ? 0 : 1, rec.refined.empty() ? 0 : 1});
        std::vector<index_t> const shape = {trace.num_heads, rec.length, detail::trace_row_bytes(rec.length)};
        if (!rec.kept.empty()) w.add_raw(base + ".kept", dtype::U8, shape, detail::trace_pack(rec.kept));
        if (!rec.refined.empty()) w.add_raw(base + ".refined", dtype::U8, shape, detail::trace_pack(rec.refined));
    }
    std::vector<std::byte> bytes(table.size() * sizeof(std::int64_t));
    for (std::size_t i = 0; i < table.size(); ++i) detail::store_le(bytes.data() + i * sizeof(std::int64_t), table[i]);
    w.add_raw("records", dtype::I64, {static_cast<index_t>(trace.records.size()), 5}, bytes);
    w.write(file);
}

/// Reads a trace written by write_attention_trace() and validates it completely.
/// @param file The file.
/// @return The trace; deq::format_error naming the file and the metadata field, tensor or record
///         for anything that does not follow the format (wrong format name or version, missing or
///         non-numeric metadata, a `records` table whose shape disagrees with num_records, a record
///         value out of range, a missing, misshapen or extra mask tensor, set padding bits).
inline attention_trace read_attention_trace(std::filesystem::path const& file) {
    safetensors_file const f = safetensors_file::open(file);
    auto fail = [&](std::string const& why) -> void { throw format_error(detail::concat("deq: ", f.source(), ": ", why)); };
    std::string const format = detail::trace_meta_string(f, "format");
    if (format != detail::attention_trace_format) {
        fail(detail::concat("metadata field 'format' = \"", format, "\": expected \"", detail::attention_trace_format, "\""));
    }
    std::string const version = detail::trace_meta_string(f, "version");
    if (version != "1") fail(detail::concat("metadata field 'version' = \"", version, "\": only version 1 is supported"));
    attention_trace t;
    t.model = detail::trace_meta_string(f, "model");
    t.task = detail::trace_meta_string(f, "task");
    t.mode = detail::trace_meta_string(f, "mode");
    t.num_layers = detail::trace_meta_int(f, "num_layers", 1);
    t.num_heads = detail::trace_meta_int(f, "num_heads", 1);
    t.head_dim = detail::trace_meta_int(f, "head_dim", 1);
    index_t const n = detail::trace_meta_int(f, "num_records", 0);
    tensor_info const& ri = f.info("records");
    if (ri.type != dtype::I64) fail(detail::concat("tensor 'records' has dtype ", dtype_name(ri.type), ", expected I64"));
    if (ri.shape.size() != 2 || ri.shape[0] != n || ri.shape[1] != 5) {
        fail(detail::concat("tensor 'records' has shape ", ri.shape_string(), ", expected [", n, ", 5] (metadata num_records = ", n, ")"));
    }
    auto const raw = f.raw("records");
    std::size_t expected_tensors = 1;
    for (index_t r = 0; r < n; ++r) {
        std::int64_t v[5];
        for (int c = 0; c < 5; ++c) v[c] = detail::load_le<std::int64_t>(raw.data() + (r * 5 + c) * 8);
        std::string const base = "records." + std::to_string(r);
        auto bad = [&](char const* field, std::int64_t value, std::string const& want) {
            fail(detail::concat("tensor 'records' row ", r, ": ", field, " = ", value, ": ", want));
        };
        if (v[0] < 0) bad("example", v[0], "must be >= 0");
        if (v[1] < 0 || v[1] >= t.num_layers) bad("layer", v[1], detail::concat("must be in [0, num_layers = ", t.num_layers, ")"));
        if (v[2] < 1 || v[2] > (std::int64_t{1} << 24)) bad("length", v[2], "must be in [1, 2^24]");
        if (v[3] != 0 && v[3] != 1) bad("has_kept", v[3], "must be 0 or 1");
        if (v[4] != 0 && v[4] != 1) bad("has_refined", v[4], "must be 0 or 1");
        attention_trace_record rec;
        rec.example = v[0];
        rec.layer = v[1];
        rec.length = v[2];
        for (auto [flag, suffix, target] : {std::tuple{v[3], ".kept", &rec.kept}, std::tuple{v[4], ".refined", &rec.refined}}) {
            std::string const name = base + suffix;
            if (flag == 1) {
                *target = detail::trace_unpack(f, name, t.num_heads, rec.length);
                ++expected_tensors;
            } else if (f.contains(name)) {
                fail(detail::concat("tensor '", name, "' is present but records row ", r, " says it is absent"));
            }
        }
        t.records.push_back(std::move(rec));
    }
    if (f.tensors().size() != expected_tensors) {
        for (auto const& info : f.tensors()) {
            bool known = info.name == "records";
            for (index_t r = 0; r < n && !known; ++r) {
                std::string const base = "records." + std::to_string(r);
                known = info.name == base + ".kept" || info.name == base + ".refined";
            }
            if (!known) fail(detail::concat("unexpected tensor '", info.name, "' in an attention trace"));
        }
    }
    return t;
}

}  // namespace deq::io
