"""python/deq_bench/attention_gpu.py without a GPU: the issue-14 targets judged from given rows (met,
missed, not measured) and the table, so that the one device run reports them right."""

from deq_bench import attention_gpu


def row(method, ms, L=4096, dtype="fp16", d=64, density=1.0):
    return {"dtype": dtype, "d": d, "L": L, "B": 4, "H": 32, "method": method, "ms": ms, "density": density, "tflops": 1.0}


def test_targets_met_and_missed():
    rows = [
        row("sdpa-flash", 10.0), row("deq dense", 10.5), row("deq predictor", 1.0),
        row("deq sanger", 3.0, density=0.2), row("deq block-sparse", 5.0, density=0.3),
        row("flex (deq block mask)", 4.0), row("deq deq", 12.0),
    ]
    lines = attention_gpu.targets(rows)
    assert lines[0].startswith("- dense FP16 within 10% of SDPA-flash at L >= 2048: met (1/1")
    assert lines[1].startswith("- predictor <= 15% of dense at L >= 2048: met")
    # Sanger at density 0.2: 10 / 3 = 3.33x flash (met); block-sparse at 0.3 is not a case
    assert lines[2].startswith("- Sanger / block-sparse at density <= 0.25 >= 2.5x SDPA-flash at L >= 4096: met (1/1")
    assert lines[3].startswith("- Sanger / block-sparse faster than FlexAttention on the same block mask: met (1/1")
    assert lines[4].startswith("- DEQ (adamax_nb80) faster than deq dense at L >= 4096: missed (0/1")


def test_targets_not_measured_below_the_lengths():
    rows = [row("sdpa-flash", 1.0, L=512), row("deq dense", 2.0, L=512), row("deq deq", 1.0, L=512)]
    assert all(line.endswith("not measured") for line in attention_gpu.targets(rows))


def test_markdown_has_every_row():
    rows = [row("sdpa-flash", 10.0), row("deq dense", None)]
    md = attention_gpu.markdown(rows, "header")
    assert md[0] == "header" and len(md) == 4 + len(rows)  # header, blank line, column names, separator
    assert "| deq dense | - |" in md[-1]
