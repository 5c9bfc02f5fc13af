// deq::io attention traces: round trip of masks / precision maps, the documented byte layout checked by hand,
// and validation errors on write and read (each naming the record, tensor or metadata field).
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <deq/io/attention_trace.hpp>
#include <deq/io/safetensors.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using deq::bit_mask;
using deq::index_t;
using deq::io::attention_trace;
using deq::io::attention_trace_record;
using deq_test::message_of;

namespace {

bit_mask random_mask(index_t heads, index_t length, std::uint32_t seed) {
    std::mt19937 gen(seed);
    bit_mask m(1, heads, length, length);
    for (index_t h = 0; h < heads; ++h)
        for (index_t i = 0; i < length; ++i)
            for (index_t j = 0; j < length; ++j)
                if (gen() % 3 == 0) m.set(0, h, i, j);
    return m;
}

attention_trace sample_trace() {
    attention_trace t;
    t.model = "build/finetune/mrpc/model";
    t.task = "mrpc";
    t.mode = "three:prob:0.002+adamax:0.8:sequence:logits";
    t.num_layers = 2;
    t.num_heads = 3;
    t.head_dim = 4;
    t.records.push_back({0, 0, 70, random_mask(3, 70, 1), bit_mask()});  // crosses a 64-bit word, not a multiple of 8
    t.records.push_back({0, 1, 70, bit_mask(), random_mask(3, 70, 2)});
    t.records.push_back({5, 1, 9, random_mask(3, 9, 3), random_mask(3, 9, 4)});
    t.records.push_back({6, 0, 1, bit_mask(), bit_mask()});
    return t;
}

// A minimal valid trace file image with one record; `edit` may change the writer before serialisation.
template <class Edit>
std::filesystem::path craft(deq_test::scratch_dir const& dir, std::string const& name, Edit edit) {
    deq::io::safetensors_writer w;
    for (auto const& [k, v] : std::vector<std::pair<std::string, std::string>>{{"format", "deq-attention-trace"},
                                                                               {"version", "1"},
                                                                               {"model", "m"},
                                                                               {"task", "t"},
                                                                               {"mode", "sanger:0.02"},
                                                                               {"num_layers", "1"},
                                                                               {"num_heads", "1"},
                                                                               {"head_dim", "8"},
                                                                               {"num_records", "1"}}) {
        w.set_metadata(k, v);
    }
    std::vector<std::int64_t> rec = {0, 0, 3, 1, 0};
    std::vector<std::uint8_t> kept = {0x07, 0x01, 0x04};  // 3 rows of 3 keys
    edit(w, rec, kept);
    if (!kept.empty()) w.add("records.0.kept", deq::tensor_view<std::uint8_t const, 3>(kept.data(), {1, 3, static_cast<index_t>(kept.size() / 3)}));
    if (!rec.empty()) w.add("records", deq::tensor_view<std::int64_t const, 2>(rec.data(), {static_cast<index_t>(rec.size() / 5), 5}));
    auto const file = dir.path() / name;
    w.write(file);
    return file;
}

}  // namespace

TEST_CASE("attention trace: write / read round trip") {
    deq_test::scratch_dir dir("trace");
    attention_trace const t = sample_trace();
    auto const file = dir.path() / "t.safetensors";
    deq::io::write_attention_trace(file, t);
    attention_trace const r = deq::io::read_attention_trace(file);
    CHECK(r.model == t.model);
    CHECK(r.task == t.task);
    CHECK(r.mode == t.mode);
    CHECK(r.num_layers == 2);
    CHECK(r.num_heads == 3);
    CHECK(r.head_dim == 4);
    REQUIRE(r.records.size() == t.records.size());
    for (std::size_t i = 0; i < t.records.size(); ++i) {
        INFO("record ", i);
        CHECK(r.records[i].example == t.records[i].example);
        CHECK(r.records[i].layer == t.records[i].layer);
        CHECK(r.records[i].length == t.records[i].length);
        CHECK(r.records[i].kept == t.records[i].kept);
        CHECK(r.records[i].refined == t.records[i].refined);
    }
    // An empty trace is valid too.
    attention_trace e = t;
    e.records.clear();
    deq::io::write_attention_trace(dir.path() / "e.safetensors", e);
    CHECK(deq::io::read_attention_trace(dir.path() / "e.safetensors").records.empty());
}

TEST_CASE("attention trace: the documented layout (metadata, records table, LSB-first packed rows)") {
    deq_test::scratch_dir dir("trace_layout");
    attention_trace t;
    t.model = "m";
    t.task = "rte";
    t.mode = "deq:adamax:0.8:sequence:logits";
    t.num_layers = 6;
    t.num_heads = 2;
    t.head_dim = 32;
    bit_mask refined(1, 2, 10, 10);
    refined.set(0, 0, 0, 0);
    refined.set(0, 0, 0, 9);
    refined.set(0, 1, 3, 8);
    t.records.push_back({7, 5, 10, bit_mask(), refined});
    auto const file = dir.path() / "layout.safetensors";
    deq::io::write_attention_trace(file, t);

    auto const f = deq::io::safetensors_file::open(file);
    CHECK(f.metadata().at("format") == "deq-attention-trace");
    CHECK(f.metadata().at("version") == "1");
    CHECK(f.metadata().at("num_layers") == "6");
    CHECK(f.metadata().at("num_heads") == "2");
    CHECK(f.metadata().at("head_dim") == "32");
    CHECK(f.metadata().at("num_records") == "1");
    CHECK(f.metadata().at("mode") == t.mode);
    auto const rec = f.get<std::int64_t, 2>("records", {1, 5});
    CHECK(rec(0, 0) == 7);
    CHECK(rec(0, 1) == 5);
    CHECK(rec(0, 2) == 10);
    CHECK(rec(0, 3) == 0);
    CHECK(rec(0, 4) == 1);
    CHECK_FALSE(f.contains("records.0.kept"));
    auto const& info = f.info("records.0.refined");
    CHECK(info.type == deq::io::dtype::U8);
    CHECK(info.shape == std::vector<index_t>{2, 10, 2});
    auto const bytes = f.get<std::uint8_t, 3>("records.0.refined");
    CHECK(bytes(0, 0, 0) == 0x01);  // key 0
    CHECK(bytes(0, 0, 1) == 0x02);  // key 9 = bit 1 of byte 1
    CHECK(bytes(1, 3, 0) == 0x00);
    CHECK(bytes(1, 3, 1) == 0x01);  // key 8
    int set = 0;
    for (index_t h = 0; h < 2; ++h)
        for (index_t i = 0; i < 10; ++i)
            for (index_t b = 0; b < 2; ++b) set += bytes(h, i, b) != 0;
    CHECK(set == 3);
}

TEST_CASE("attention trace: write rejects inconsistent records, naming them") {
    deq_test::scratch_dir dir("trace_write");
    auto const file = dir.path() / "w.safetensors";
    attention_trace t = sample_trace();
    t.records[2].kept = bit_mask(1, 3, 9, 8);
    CHECK(message_of<deq::shape_error>([&] { deq::io::write_attention_trace(file, t); }).find("records[2].kept has shape [1, 3, 9, 8]") !=
          std::string::npos);
    t = sample_trace();
    t.records[1].refined = bit_mask(2, 3, 70, 70);  // a batch of two
    CHECK_THROWS_AS(deq::io::write_attention_trace(file, t), deq::shape_error);
    t = sample_trace();
    t.records[3].layer = 2;
    CHECK(message_of<deq::invalid_argument>([&] { deq::io::write_attention_trace(file, t); }).find("records.3.layer") != std::string::npos);
    t = sample_trace();
    t.records[0].length = 0;
    CHECK_THROWS_AS(deq::io::write_attention_trace(file, t), deq::invalid_argument);
    t = sample_trace();
    t.num_heads = 0;
    CHECK_THROWS_AS(deq::io::write_attention_trace(file, t), deq::invalid_argument);
}

TEST_CASE("attention trace: read validates metadata, the records table and every mask tensor") {
    deq_test::scratch_dir dir("trace_read");
    auto const good = craft(dir, "good.safetensors", [](auto&, auto&, auto&) {});
    auto const t = deq::io::read_attention_trace(good);
    REQUIRE(t.records.size() == 1);
    CHECK(t.records[0].kept.test(0, 0, 0, 2));
    CHECK(t.records[0].kept.test(0, 0, 2, 2));
    CHECK_FALSE(t.records[0].kept.test(0, 0, 1, 1));
    CHECK(t.records[0].refined.empty());

    auto expect = [&](std::string const& name, auto edit, std::string const& needle) {
        auto const file = craft(dir, name, edit);
        std::string const msg = message_of<deq::format_error>([&] { deq::io::read_attention_trace(file); });
        INFO(name, ": ", msg);
        CHECK(msg.find(needle) != std::string::npos);
        CHECK(msg.find(name) != std::string::npos);
    };
    expect("format.st", [](auto& w, auto&, auto&) { w.set_metadata("format", "other"); }, "metadata field 'format'");
    expect("version.st", [](auto& w, auto&, auto&) { w.set_metadata("version", "2"); }, "metadata field 'version'");
    expect("heads.st", [](auto& w, auto&, auto&) { w.set_metadata("num_heads", "x"); }, "metadata field 'num_heads' = \"x\"");
    expect("count.st", [](auto& w, auto&, auto&) { w.set_metadata("num_records", "2"); }, "tensor 'records' has shape [1, 5], expected [2, 5]");
    expect("flag.st", [](auto&, auto& rec, auto&) { rec[3] = 2; }, "has_kept = 2");
    expect("layer.st", [](auto&, auto& rec, auto&) { rec[1] = 1; }, "layer = 1");
    expect("padding.st", [](auto&, auto&, auto& kept) { kept[1] = 0x09; }, "bits set beyond key 2");
    expect("missing.st", [](auto&, auto&, auto& kept) { kept.clear(); }, "records.0.kept");
    expect("absent.st", [](auto&, auto& rec, auto&) { rec[4] = 0; rec[3] = 0; }, "is present but records row 0 says it is absent");
    expect("extra.st", [](auto& w, auto&, auto&) { w.add_scalar("records.9.kept", std::uint8_t{1}); }, "unexpected tensor 'records.9.kept'");
    expect("shape.st", [](auto&, auto& rec, auto&) { rec[2] = 4; }, "expected [1, 4, 1]");
    expect("norecords.st", [](auto&, auto& rec, auto&) { rec.clear(); }, "'records'");
}
