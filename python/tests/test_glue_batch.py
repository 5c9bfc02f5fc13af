"""glue_batch.py (many fine-tune + C++ evaluation jobs in parallel): job naming and ordering, the deadline
(jobs not started are reported, never dropped), a real tiny fine-tuning job, and full-precision labels in
dev_predictions.tsv (STS-B labels such as 2.33333333 must survive the round trip for bert_glue's check)."""

import json
import os

from deq_train import finetune_glue, glue, glue_batch

from test_finetune_cli import DATA, tiny_model_dir


def test_job_names_and_order():
    jobs = [glue_batch.Job("mrpc", "dense", 42), glue_batch.Job("sst2", "sanger:0.02", 42),
            glue_batch.Job("rte", "deq:adamax_nb80", 1)]
    assert [j.name for j in jobs] == ["mrpc_dense", "sst2_sanger_0.02", "rte_deq_adamax_nb80_seed1"]
    order = sorted(jobs, key=lambda j: (j.seed != glue_batch.MAIN_SEED, -j.cost))
    assert [j.task for j in order] == ["sst2", "mrpc", "rte"]


def test_bad_lists_are_rejected(tmp_path):
    import pytest
    with pytest.raises(SystemExit):
        glue_batch.parse_task_list(["qnli:1,2"], "--extra-seeds")
    with pytest.raises(SystemExit):
        glue_batch.parse_task_list(["mrpc"], "--extra-jobs")
    with pytest.raises(SystemExit):
        glue_batch.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])  # no glue/ folder
    assert glue_batch.parse_eval_as(["deq:adamax_nb50=deq:adamax_nb80"]) == [("deq:adamax_nb50", "deq:adamax_nb80")]
    for bad in (["deq:adamax_nb50"], ["=dense"], ["dense="]):
        with pytest.raises(SystemExit):
            glue_batch.parse_eval_as(bad)
    with pytest.raises(SystemExit, match="no job is trained in mode 'sanger:0.1'"):
        glue_batch.main(["--tasks", "rte", "--modes", "dense", "--data-dir", DATA, "--eval-as", "sanger:0.1=dense",
                         "--out", str(tmp_path / "o2"), "--no-plot"])


def test_deadline_reports_jobs_not_run(tmp_path):
    out = tmp_path / "out"
    rc = glue_batch.main(["--tasks", "rte", "--modes", "dense", "sanger:0.02", "--data-dir", DATA,
                          "--deadline-seconds", "-1", "--out", str(out), "--no-plot"])
    assert rc == 1
    summary = json.loads((out / "results" / "glue_summary.json").read_text())
    assert sorted((r["mode"], r["status"], r["error"]) for r in summary["rows"]) == [
        ("dense", "not run", "deadline"), ("sanger:0.02", "not run", "deadline")]
    assert "not run (deadline)" in (out / "results" / "glue_summary.md").read_text()


def test_tiny_stsb_job_writes_full_precision_labels(tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    out = tmp_path / "out"
    rc = glue_batch.main(["--tasks", "stsb", "--modes", "dense", "--data-dir", DATA, "--model", model_dir,
                          "--epochs", "1", "--max-train-examples", "16", "--max-eval-examples", "40",
                          "--out", str(out), "--no-plot"])
    assert rc == 0
    rows = (out / "finetune" / "stsb_dense" / "dev_predictions.tsv").read_text().strip().split("\n")[1:]
    labels = [float(r.split("\t")[1]) for r in rows]
    dev = glue.read_examples(glue.task_file(DATA, "stsb", "dev"), "stsb")[:40]
    assert labels == [e.label for e in dev]
    summary = json.loads((out / "results" / "glue_summary.json").read_text())
    assert summary["rows"][0]["status"] == "done"
    assert set(summary["rows"][0]["torch_metrics"]) == {"pearson", "spearmanr"}
    assert os.path.isfile(out / "logs" / "stsb_dense.log")


def test_prediction_rows_keep_values_exact():
    dev = glue.read_examples(glue.task_file(DATA, "stsb", "dev"), "stsb")
    long_labels = [e.label for e in dev if len(repr(e.label)) > 8]
    assert long_labels, "STS-B dev has labels with more than 6 significant digits"
    for label in long_labels:
        row = finetune_glue.prediction_row(0, label, 1.5, [1.5])
        assert float(row.split("\t")[1]) == label
    assert finetune_glue.prediction_row(3, 1, 0, [0.25, -1.0]) == "3\t1\t0\t0.25 -1.0\n"
    # predictions and logits round-trip exactly too (float64 evaluations are compared to ~1e-12)
    x = 1.0 / 3.0
    fields = finetune_glue.prediction_row(0, 2.5, x, [x]).rstrip("\n").split("\t")
    assert float(fields[2]) == x and float(fields[3]) == x


def test_needs_calibration(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"deq": {"attention_mode": "dense", "threshold_tensors": []}}))
    assert glue_batch.needs_calibration(model, "deq:adamax_nb80")
    assert glue_batch.needs_calibration(model, "sanger:0.02") and glue_batch.needs_calibration(model, "three:0.02+all")
    assert not glue_batch.needs_calibration(model, "dense") and not glue_batch.needs_calibration(model, "bigbird")
    (model / "config.json").write_text(json.dumps({"deq": {"threshold_tensors": ["a", "b"]}}))
    assert not glue_batch.needs_calibration(model, "deq:adamax_nb80")
