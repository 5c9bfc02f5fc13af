// deq::eval GLUE tasks: task table, the strict TSV reader (headers, MRPC's BOM, CRLF, labels), errors naming
// file:line, the skip-and-record policy, and the task metrics against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <deq/eval/glue.hpp>

#include "support/scratch.hpp"
#include "support/test_util.hpp"

using deq::eval::glue_metrics;
using deq::eval::glue_row_policy;
using deq::eval::glue_task;
using deq::eval::parse_glue;
using deq_test::message_of;

namespace {

std::string const mrpc_header = "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
std::string const stsb_header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
std::string const stsb_cols = "main-captions\tMSRvid\t2012test\t0000\tnone\tnone";

}  // namespace

TEST_CASE("glue: task names and layouts") {
    CHECK(deq::eval::parse_glue_task("mrpc") == glue_task::mrpc);
    CHECK(deq::eval::parse_glue_task("STS-B") == glue_task::stsb);
    CHECK(deq::eval::parse_glue_task("SST-2") == glue_task::sst2);
    CHECK(deq::eval::parse_glue_task("CoLA") == glue_task::cola);
    CHECK(deq::eval::parse_glue_task("rte") == glue_task::rte);
    CHECK(message_of<deq::invalid_argument>([] { deq::eval::parse_glue_task("qnli"); }).find("\"qnli\"") != std::string::npos);
    auto const& stsb = deq::eval::glue_task_spec(glue_task::stsb);
    CHECK(stsb.is_regression());
    CHECK(stsb.num_labels() == 1);
    CHECK(stsb.main_metric == "pearson");
    auto const& rte = deq::eval::glue_task_spec(glue_task::rte);
    CHECK(rte.num_labels() == 2);
    CHECK(rte.labels[1] == "not_entailment");
    CHECK(deq::eval::glue_task_file("/d", glue_task::sst2, "dev") == std::filesystem::path("/d/glue/SST-2/dev.tsv"));
    CHECK_THROWS_AS(deq::eval::glue_task_file("/d", glue_task::sst2, "test"), deq::invalid_argument);
}

TEST_CASE("glue: MRPC with its byte order mark, CRLF line ends and sentence pairs") {
    std::string const text = mrpc_header + "1\t1\t2\tHe said hi .\tHe greeted us .\r\n0\t3\t4\tA \"quoted\" word\tAnother one\r\n";
    auto const d = parse_glue(text, "MRPC/dev.tsv", glue_task::mrpc);
    REQUIRE(d.examples.size() == 2);
    CHECK(d.rows == 2);
    CHECK(d.skipped.empty());
    CHECK(d.examples[0].line == 2);
    CHECK(d.examples[0].text_a == "He said hi .");
    REQUIRE(d.examples[0].text_b.has_value());
    CHECK(*d.examples[0].text_b == "He greeted us .");
    CHECK(d.examples[0].label == 1.0);
    CHECK(d.examples[1].label == 0.0);
    CHECK(d.examples[1].text_a == "A \"quoted\" word");  // no quoting
    CHECK(d.labels() == std::vector<double>{1.0, 0.0});
}

TEST_CASE("glue: CoLA has no header and may lack the final newline; RTE and SST-2 labels") {
    auto const cola = parse_glue("gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe more we study verbs.",
                                 "CoLA/dev.tsv", glue_task::cola);
    REQUIRE(cola.examples.size() == 2);
    CHECK(cola.examples[0].line == 1);
    CHECK_FALSE(cola.examples[0].text_b.has_value());
    CHECK(cola.examples[1].label == 0.0);
    CHECK(cola.examples[1].text_a == "The more we study verbs.");

    auto const rte = parse_glue("index\tsentence1\tsentence2\tlabel\n0\tA b.\tC d.\tnot_entailment\n1\tE.\tF.\tentailment\n", "RTE/dev.tsv",
                                glue_task::rte);
    REQUIRE(rte.examples.size() == 2);
    CHECK(rte.examples[0].label == 1.0);
    CHECK(rte.examples[1].label == 0.0);

    auto const sst = parse_glue("sentence\tlabel\nit 's a charming film . \t1\n", "SST-2/dev.tsv", glue_task::sst2);
    REQUIRE(sst.examples.size() == 1);
    CHECK(sst.examples[0].text_a == "it 's a charming film . ");
}

TEST_CASE("glue: STS-B scores are finite numbers in [0, 5]") {
    std::string const text = stsb_header + "0\t" + stsb_cols + "\tA man plays.\tA man is playing.\t4.800\n1\t" + stsb_cols +
                             "\tA cat.\tA dog.\t 0.000 \n";
    auto const d = parse_glue(text, "STS-B/dev.tsv", glue_task::stsb);
    REQUIRE(d.examples.size() == 2);
    CHECK(d.examples[0].label == doctest::Approx(4.8));
    CHECK(d.examples[1].label == 0.0);
    for (std::string const bad : {"5.5", "-0.1", "n/a", "nan", ""}) {
        std::string const t = stsb_header + "0\t" + stsb_cols + "\tA.\tB.\t" + bad + "\n";
        std::string const msg = message_of<deq::format_error>([&] { parse_glue(t, "s.tsv", glue_task::stsb); });
        INFO(bad, " -> ", msg);
        CHECK(msg.find("s.tsv:2: score") != std::string::npos);
    }
}

TEST_CASE("glue: malformed rows name the file and line (strict) or are counted and listed (skip_and_record)") {
    std::string const text = std::string("index\tsentence1\tsentence2\tlabel\n") +
                             "0\tGood one.\tFine.\tentailment\n"
                             "1\tMissing a field.\tentailment\n"
                             "2\tBad label.\tHere.\tmaybe\n"
                             "3\t  \tEmpty first sentence.\tentailment\n"
                             "4\tAlso good.\tYes.\tnot_entailment\n";
    std::string const msg = message_of<deq::format_error>([&] { parse_glue(text, "RTE/dev.tsv", glue_task::rte); });
    CHECK(msg.find("RTE/dev.tsv:3: expected 4 tab-separated fields for RTE, got 3") != std::string::npos);

    deq::eval::glue_read_options opt;
    opt.policy = glue_row_policy::skip_and_record;
    auto const d = parse_glue(text, "RTE/dev.tsv", glue_task::rte, opt);
    CHECK(d.rows == 5);
    REQUIRE(d.examples.size() == 2);
    CHECK(d.examples[0].line == 2);
    CHECK(d.examples[1].line == 6);
    REQUIRE(d.skipped.size() == 3);
    CHECK(d.skipped[0].line == 3);
    CHECK(d.skipped[1].line == 4);
    CHECK(d.skipped[1].reason.find("label \"maybe\" is not one of entailment, not_entailment") != std::string::npos);
    CHECK(d.skipped[2].line == 5);
    CHECK(d.skipped[2].reason.find("empty sentence in column 2") != std::string::npos);
}

TEST_CASE("glue: wrong header, invalid UTF-8 and empty files always throw") {
    deq::eval::glue_read_options skip;
    skip.policy = glue_row_policy::skip_and_record;
    std::string const msg = message_of<deq::format_error>([&] { parse_glue("sentence\tlbl\nok\t1\n", "SST-2/dev.tsv", glue_task::sst2, skip); });
    CHECK(msg.find("SST-2/dev.tsv:1: header \"sentence|lbl\" is not the SST-2 header \"sentence|label\"") != std::string::npos);
    // MRPC without its columns' header (e.g. data of another task).
    CHECK_THROWS_AS(parse_glue("0\t1\t2\ta\tb\n", "m.tsv", glue_task::mrpc), deq::format_error);
    std::string const utf = message_of<deq::format_error>([&] { parse_glue("sentence\tlabel\nok\t1\nbad \xC3\x28\t0\n", "u.tsv", glue_task::sst2, skip); });
    CHECK(utf.find("u.tsv:3: invalid UTF-8") != std::string::npos);
    CHECK(message_of<deq::format_error>([] { parse_glue("", "e.tsv", glue_task::cola); }).find("e.tsv:1: empty file") != std::string::npos);
    CHECK(message_of<deq::format_error>([] { parse_glue("sentence\tlabel\n", "h.tsv", glue_task::sst2); }).find("no data rows") !=
          std::string::npos);
}

TEST_CASE("glue: read_glue reads files and names missing ones") {
    deq_test::scratch_dir dir("glue");
    auto const file = dir.write("dev.tsv", mrpc_header + "1\t1\t2\tA.\tB.\n");
    auto const d = deq::eval::read_glue(file, glue_task::mrpc);
    CHECK(d.source == file.string());
    CHECK(d.examples.size() == 1);
    std::string const msg = message_of<deq::format_error>([&] { deq::eval::read_glue(dir.path() / "nope.tsv", glue_task::mrpc); });
    CHECK(msg.find("nope.tsv") != std::string::npos);
    CHECK_THROWS_AS(deq::eval::read_glue(dir.path(), glue_task::mrpc), deq::format_error);
}

TEST_CASE("glue: metrics of every task against hand-computed values") {
    std::vector<double> const y = {1, 0, 0, 1, 1}, p = {1, 1, 0, 0, 1};
    // TP 2, FP 1, FN 1, TN 1.
    auto const mrpc = glue_metrics(glue_task::mrpc, p, y);
    CHECK(mrpc.at("accuracy") == doctest::Approx(0.6));
    CHECK(mrpc.at("f1") == doctest::Approx(4.0 / 6.0));
    CHECK(glue_metrics(glue_task::rte, p, y).at("accuracy") == doctest::Approx(0.6));
    CHECK(glue_metrics(glue_task::sst2, p, y).size() == 1);
    // MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 − 1) / sqrt(3·3·2·2) = 1/6.
    CHECK(glue_metrics(glue_task::cola, p, y).at("mcc") == doctest::Approx(1.0 / 6.0));
    // Pearson of (1,2,3) and (1,2,4): 9 / sqrt(84); Spearman 1.
    auto const stsb = glue_metrics(glue_task::stsb, {1.0, 2.0, 3.0}, {1.0, 2.0, 4.0});
    CHECK(stsb.at("pearson") == doctest::Approx(9.0 / std::sqrt(84.0)).epsilon(1e-12));
    CHECK(stsb.at("spearmanr") == doctest::Approx(1.0));
    CHECK_THROWS_AS(glue_metrics(glue_task::mrpc, {0.5, 1.0}, {0.0, 1.0}), deq::invalid_argument);
    CHECK_THROWS_AS(glue_metrics(glue_task::mrpc, {1.0}, {0.0, 1.0}), deq::shape_error);
    CHECK_THROWS_AS(glue_metrics(glue_task::stsb, {}, {}), deq::invalid_argument);
}
