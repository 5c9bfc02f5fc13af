#!/usr/bin/env python3
"""Writes the reference test cases that tests/reference/ compares deq against.

Usage: generate_cases.py --out DIR [--list]

For every case DIR/<name>/ receives .npy files (inputs, parameters and the reference's outputs) and
DIR/index.json lists the cases with their parameters and reference statistics.  Files per case:

  q.npy k.npy v.npy       inputs [B, H, L, d] (float32 or float64)
  valid.npy               padding, uint8 [B, Lk] (1 = real token); always written (all ones = no padding)
  predicted.npy           Ŝ = quant_qk_matmul(q, kᵀ) / sqrt(d)            (modes with a predictor)
  kept.npy, refined.npy   uint8 [B, H, Lq, Lk] masks as computed by the reference (static: [Lq, Lk])
  kept_ties.npy, refined_ties.npy
                          uint8 masks of the elements whose selection is a tie (compared value within 1e-6
                          relative of the threshold; see reference.rule_ties): the only places where deq's
                          masks may differ from the reference's
  out.npy                 reference attention output [B, H, Lq, dv]
  sensitive_direct.npy, sensitive_pipeline.npy
                          uint8 [B, H, Lq]: rows whose output depends on how s - 10000 rounds (rows whose every
                          key carries a penalty; in float32 the penalty does not cancel exactly) *and* where a
                          last-bit difference of the score could change that rounding.  'direct' assumes the
                          same Ŝ as the reference; 'pipeline' allows deq's own Ŝ to differ in the last bits.

Inputs are random; some cases use 'grid' inputs (multiples of 1/64) whose dot products are exact in float32
in any summation order.  Inputs are nudged so that no normalised q/k element lies within 1e-4 of a
quantization rounding boundary (such a tie would make the predicted scores of two correct implementations
differ by a whole quantization step).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from deq_reference import reference as ref  # noqa: E402


def rule(kind, value=0.0, k=0, granularity="sequence", before_softmax=True):
    return {"kind": kind, "value": value, "k": k, "granularity": granularity, "before_softmax": before_softmax}


def sanger(theta):
    return rule("probability", theta)


def adamax(alpha, granularity, before_softmax):
    return rule("adaptive_maximum", alpha, granularity=granularity, before_softmax=before_softmax)


def case(name, mode, B, H, L, d, **kw):
    c = {"name": name, "mode": mode, "B": B, "H": H, "Lq": L, "Lk": kw.pop("Lk", L), "d": d,
         "dv": kw.pop("dv", d), "dtype": kw.pop("dtype", "float32"), "padding": kw.pop("padding", False),
         "grid": kw.pop("grid", False), "scale": kw.pop("scale", 1.0), "thresholds": kw.pop("thresholds", "calibrate"),
         "bits": kw.pop("bits", 4), "prune": kw.pop("prune", None), "refine": kw.pop("refine", None),
         "static": kw.pop("static", None), "zero_rows": kw.pop("zero_rows", False), "seed": kw.pop("seed", 0)}
    assert not kw, kw
    return c


CASES = [
    # dense (no predictor)
    case("dense_L1_d1", "dense", 1, 1, 1, 1, seed=1),
    case("dense_L7_d16_pad", "dense", 2, 3, 7, 16, padding=True, seed=2),
    case("dense_L64_d64", "dense", 1, 2, 64, 64, seed=3),
    case("dense_L100_d80_pad", "dense", 3, 1, 100, 80, padding=True, scale=1.5, seed=4),
    case("dense_Lq7_Lk64_dv24_pad", "dense", 2, 2, 7, 16, Lk=64, dv=24, padding=True, seed=5),
    case("dense_f64_L64_pad", "dense", 2, 2, 64, 64, padding=True, dtype="float64", seed=6),
    # Sanger (predictor + probability threshold + masked attention)
    case("sanger_2e-2_L64_d64_pad", "sanger", 2, 4, 64, 64, padding=True, prune=sanger(0.02), scale=1.5, seed=10),
    case("sanger_2e-3_L100_d80_pad_fixed", "sanger", 3, 2, 100, 80, padding=True, prune=sanger(0.002),
         thresholds=(0.55, 0.6), scale=1.5, seed=11),
    case("sanger_2e-2_L7_d1", "sanger", 2, 2, 7, 1, prune=sanger(0.02), seed=12),
    case("sanger_2e-2_L64_grid", "sanger", 2, 2, 64, 16, padding=True, grid=True, prune=sanger(0.02), scale=2.0, seed=13),
    case("sanger_fully_pruned_L7", "sanger", 2, 2, 7, 16, padding=True, grid=True, prune=sanger(0.9), seed=14),
    case("sanger_fully_pruned_L64", "sanger", 1, 3, 64, 64, padding=True, prune=sanger(0.995), scale=0.5, seed=15),
    case("sanger_fully_pruned_L64_grid", "sanger", 2, 2, 64, 16, padding=True, grid=True, prune=sanger(0.995),
         scale=0.5, seed=19),
    case("sanger_zero_norm_rows", "sanger", 2, 2, 64, 16, padding=True, grid=True, prune=sanger(0.02),
         zero_rows=True, seed=16),
    case("sanger_bits8_L64", "sanger", 1, 2, 64, 64, prune=sanger(0.02), bits=8, scale=1.5, seed=17),
    case("sanger_f64_L64_pad", "sanger", 2, 2, 64, 64, padding=True, dtype="float64", prune=sanger(0.02),
         scale=1.5, seed=18),
    # DEQ (predictor + refinement rule + mixed-precision attention)
    case("deq_adamax_nb80_pad", "deq", 2, 3, 64, 64, padding=True, refine=adamax(0.8, "sequence", True), seed=20),
    case("deq_adamax_nh80", "deq", 2, 2, 64, 64, refine=adamax(0.8, "head", True), seed=21),
    case("deq_adamax_ns80_pad", "deq", 2, 2, 100, 80, padding=True, refine=adamax(0.8, "row", True), seed=22),
    case("deq_adamax_b80_pad", "deq", 2, 2, 64, 64, padding=True, refine=adamax(0.8, "sequence", False), seed=23),
    case("deq_adamax_h80", "deq", 1, 4, 64, 16, refine=adamax(0.8, "head", False), seed=24),
    case("deq_adamax_s80_pad", "deq", 3, 1, 64, 64, padding=True, refine=adamax(0.8, "row", False), seed=25),
    case("deq_inv_adamax_b80", "deq", 2, 2, 64, 64, refine=rule("inverse_adaptive_maximum", 0.8, before_softmax=False),
         seed=26),
    case("deq_inv_adamax_ns80_logits", "deq", 2, 2, 64, 64, padding=True,
         refine=rule("inverse_adaptive_maximum", 0.8, granularity="row", before_softmax=True), seed=27),
    case("deq_refine_2e-2_pad", "deq", 2, 2, 64, 64, padding=True, refine=rule("probability", 0.02), seed=28),
    case("deq_refine_2e-3_fixed", "deq", 2, 2, 100, 64, refine=rule("probability", 0.002), thresholds=(0.5, 0.5), seed=29),
    case("deq_refine_inv_2e-2", "deq", 2, 2, 64, 64, padding=True, refine=rule("inverse_probability", 0.02), seed=30),
    case("deq_topk8_pad", "deq", 2, 2, 64, 64, padding=True, refine=rule("top_k", k=8), seed=31),
    case("deq_cumprob90_pad", "deq", 2, 2, 64, 64, padding=True, refine=rule("cumulative_probability", 0.9),
         scale=1.5, seed=32),
    case("deq_all_4bit", "deq", 2, 2, 64, 64, padding=True, refine=rule("none"), seed=33),
    case("deq_all_refined", "deq", 2, 2, 64, 64, padding=True, refine=rule("all"), seed=34),
    case("deq_zero_norm_rows", "deq", 2, 2, 64, 16, padding=True, grid=True, zero_rows=True,
         refine=adamax(0.8, "row", True), seed=35),
    case("deq_d1_L7", "deq", 1, 2, 7, 1, refine=adamax(0.8, "sequence", True), seed=36),
    case("deq_f64_nb80_pad", "deq", 2, 2, 64, 64, padding=True, dtype="float64",
         refine=adamax(0.8, "sequence", True), seed=37),
    case("deq_bits2_L64", "deq", 1, 2, 64, 64, refine=adamax(0.8, "sequence", True), bits=2, seed=38),
    # three-level (pruned / low-bit / high precision)
    case("three_level_2e-3_ns80_pad", "three_level", 2, 3, 64, 64, padding=True, prune=sanger(0.002),
         refine=adamax(0.8, "row", True), scale=1.5, seed=40),
    case("three_level_2e-2_refine1e-1", "three_level", 2, 2, 100, 64, padding=True, prune=sanger(0.02),
         refine=rule("probability", 0.1), scale=1.5, seed=41),
    case("three_level_topk_prune_grid", "three_level", 1, 2, 64, 16, grid=True, prune=rule("top_k", k=16),
         refine=adamax(0.8, "sequence", True), seed=42),
    case("three_level_fully_pruned_L7", "three_level", 2, 2, 7, 16, padding=True, grid=True, prune=sanger(0.9),
         refine=adamax(0.8, "row", True), seed=43),
    # static patterns
    case("static_longformer_L100_pad", "static", 2, 2, 100, 64, padding=True, static="longformer", seed=50),
    case("static_fixed_L64", "static", 2, 2, 64, 64, static="fixed", scale=1.5, seed=51),
    case("static_fixed_L100_grid_pad", "static", 1, 3, 100, 16, padding=True, grid=True, static="fixed", seed=52),
]


# ----------------------------------------------------------------------------------------------------------
def make_inputs(c, gen):
    dtype = torch.float64 if c["dtype"] == "float64" else torch.float32
    B, H, Lq, Lk, d, dv = c["B"], c["H"], c["Lq"], c["Lk"], c["d"], c["dv"]

    def draw(*shape):
        x = torch.randn(*shape, generator=gen, dtype=torch.float64) * c["scale"]
        if c["grid"]:
            x = torch.round(x * 64) / 64
        return x

    q, k, v = draw(B, H, Lq, d), draw(B, H, Lk, d), draw(B, H, Lk, dv)
    if c["zero_rows"]:
        q[0, 0, 1, :] = 0
        q[B - 1, H - 1, Lq - 1, :] = 0
        k[0, 0, 2, :] = 0
        k[0, H - 1, 0, :] = 0
    valid = torch.ones(B, Lk, dtype=torch.uint8)
    if c["padding"]:
        for b in range(B):
            n = int(torch.randint(1, Lk + 1, (1,), generator=gen))
            if b == 0:
                n = max(1, Lk - max(1, Lk // 4))  # the first sequence always has some padding
            valid[b, n:] = 0
    return q.to(dtype), k.to(dtype), v.to(dtype), valid


def level_ties(x, dim, thresh, bits):
    """Elements of the L2-normalised x (over dim) within 1e-4 of a quantization rounding boundary."""
    x64 = x.double()
    norm = x64.norm(dim=dim, keepdim=True)
    xn = torch.where(norm == 0, torch.zeros_like(x64), x64 / norm)
    levels = xn * (ref.calc_max_quant_value(bits) / thresh)
    frac = levels - torch.floor(levels)
    near = ((frac - 0.5).abs() < 1e-4) & (levels.abs() < ref.calc_max_quant_value(bits) + 0.5)
    return near


def thresholds_for(c, q, k):
    if c["thresholds"] == "calibrate":
        return ref.calibrate_thresholds(q, k.transpose(-1, -2))
    return tuple(float(t) for t in c["thresholds"])


def avoid_quantization_ties(c, q, k, gen):
    """Nudges q/k elements until no normalised element sits within 1e-4 of a rounding boundary."""
    step = 1.0 / 64 if c["grid"] else None
    for _ in range(200):
        tq, tk = thresholds_for(c, q, k)
        nq = level_ties(q, -1, tq, c["bits"])
        nk = level_ties(k, -1, tk, c["bits"])
        if not bool(nq.any()) and not bool(nk.any()):
            return tq, tk
        for x, near in ((q, nq), (k, nk)):
            for idx in near.nonzero().tolist():
                idx = tuple(idx)
                delta = step if step is not None else 1e-3 * (abs(float(x[idx])) + 1e-3)
                x[idx] = x[idx] + (delta if torch.rand(1, generator=gen).item() < 0.5 else -delta)
    raise RuntimeError(f"{c['name']}: could not avoid quantization ties")


def sensitive_rows(c, q, k, info, refined, predicted_slack):
    """Rows whose every key is penalised (the row max carries a -10000 penalty, which does not cancel exactly
    in floating point) and where perturbing a contributing score by its possible rounding difference between
    two correct implementations changes fl(s - 10000)."""
    scores = info["scores"]
    dtype = scores.dtype
    eps = torch.finfo(dtype).eps
    m = scores.max(dim=-1, keepdim=True).values  # [B, H, Lq, 1]
    penalised_rows = m < -5000
    if not bool(penalised_rows.any()):
        return torch.zeros(scores.shape[:-1], dtype=torch.uint8)
    contributing = (scores - m) > -200
    d = q.shape[-1]
    exact = torch.matmul(q.double(), k.double().transpose(-1, -2)) / math.sqrt(d)
    if c["grid"]:
        delta = torch.zeros_like(exact)
    else:
        mag = torch.matmul(q.double().abs(), k.double().abs().transpose(-1, -2)) / math.sqrt(d)
        delta = 4 * eps * mag + 2 * eps * exact.abs()
    base = exact.to(dtype)
    if refined is not None:
        pred = info["predicted"]
        use_pred = ~refined.bool()
        base = torch.where(use_pred, pred, base)
        delta = torch.where(use_pred, predicted_slack * pred.double().abs(), delta)
    lo = (base.double() - delta).to(dtype)
    hi = (base.double() + delta).to(dtype)
    pen = torch.tensor(ref.PENALTY, dtype=dtype)
    unstable = ((lo + pen) != (hi + pen)) & contributing & penalised_rows
    return unstable.any(dim=-1).to(torch.uint8)


def save(path, name, tensor):
    np.save(os.path.join(path, name + ".npy"), tensor.detach().cpu().numpy())


def run_case(c, out_dir):
    gen = torch.Generator().manual_seed(1000 + c["seed"])
    q, k, v, valid = make_inputs(c, gen)
    dtype = q.dtype
    uses_predictor = c["mode"] in ("sanger", "deq", "three_level")
    tq = tk = None
    qm = None
    if uses_predictor:
        tq, tk = avoid_quantization_ties(c, q, k, gen)
        qm = ref.QuantizedMatMul(c["bits"], tq, tk, dtype=dtype)
    static = ref.static_mask(c["static"], c["Lq"]) if c["static"] else None

    out, info = ref.bert_self_attention(q.clone(), k.clone(), v.clone(), valid, quant_matmul=qm,
                                        prune=c["prune"], refine=c["refine"], static=static)
    if c["mode"] == "dense":
        # cross-check of the reference formulas with torch's own attention
        sdpa = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=ref.extended_attention_mask(valid, q.dtype))
        tol = 1e-12 if q.dtype == torch.float64 else 1e-5
        if not torch.allclose(out, sdpa, rtol=0, atol=tol * float(out.abs().max())):
            raise RuntimeError(f"{c['name']}: reference attention disagrees with scaled_dot_product_attention")

    path = os.path.join(out_dir, c["name"])
    os.makedirs(path, exist_ok=True)
    save(path, "q", q)
    save(path, "k", k)
    save(path, "v", v)
    save(path, "valid", valid)
    save(path, "out", out)

    entry = dict(c)
    entry.update({"threshold_q": tq, "threshold_k": tk})
    attn_mask = ref.extended_attention_mask(valid, dtype)
    kept, refined = info["kept"], info["refined"]
    if info["predicted"] is not None:
        save(path, "predicted", info["predicted"])
        entry["max_abs_predicted"] = float(info["predicted"].abs().max())
    ties = {}
    if kept is not None:
        save(path, "kept", kept.to(torch.uint8))
        kt = ref.rule_ties(c["prune"], info["predicted"], attn_mask, valid)
        save(path, "kept_ties", kt.to(torch.uint8))
        ties["kept"] = int(kt.sum())
    if refined is not None:
        save(path, "refined", refined.to(torch.uint8))
        rt = ref.rule_ties(c["refine"], info["predicted"], attn_mask, valid)
        if kept is not None:
            # refined = rule ∧ kept: a refine tie matters where the entry is (or may be) kept, and a kept tie
            # flips refined wherever the refinement rule itself selects the entry
            raw = ref.apply_rule(c["refine"], info["predicted"], attn_mask, valid)
            rt = (rt & (kept | kt)) | (kt & raw)
        save(path, "refined_ties", rt.to(torch.uint8))
        ties["refined"] = int(rt.sum())
    if static is not None:
        save(path, "static", static.to(torch.uint8))
    entry["ties"] = ties

    # statistics as the reference defines them (_eval_overall_sparsity / _eval_refinement)
    B, H, Lq, Lk = c["B"], c["H"], c["Lq"], c["Lk"]
    valid_q = valid if Lq == Lk else torch.ones(B, Lq, dtype=torch.uint8)
    ones = torch.ones(B, H, Lq, Lk, dtype=torch.bool)
    kept_set = kept if kept is not None else (static.bool()[None, None].expand(B, H, Lq, Lk) if static is not None else ones)
    high_set = kept_set & (refined if refined is not None else ones)
    valid_pairs, kept_pairs, empty_rows, rows = ref.pair_counts(kept_set, valid_q, valid, H)
    _, refined_pairs, _, _ = ref.pair_counts(high_set, valid_q, valid, H)
    entry["stats"] = {
        "valid_pairs": valid_pairs, "kept_pairs": kept_pairs, "refined_pairs": refined_pairs,
        "empty_rows": empty_rows, "rows": rows,
        "density": ref.eval_ratio(kept_set, valid_q, valid),
        "refinement_ratio": ref.eval_ratio(high_set, valid_q, valid),
    }

    sd = sensitive_rows(c, q, k, info, refined, predicted_slack=0.0)
    sp = sensitive_rows(c, q, k, info, refined, predicted_slack=1e-6)
    save(path, "sensitive_direct", sd)
    save(path, "sensitive_pipeline", sp)
    entry["sensitive_rows"] = {"direct": int(sd.sum()), "pipeline": int(sp.sum())}
    entry["max_abs_out"] = float(out.abs().max())
    entry["files"] = sorted(f[:-4] for f in os.listdir(path) if f.endswith(".npy"))
    return entry


# Densities of the reference's static masks over the full L x L square (research notes, algorithm.md §1.7).
STATIC_DENSITIES = {("longformer", 128): 0.531, ("longformer", 384): 0.198, ("longformer", 512): 0.150,
                    ("fixed", 128): 0.625, ("fixed", 384): 0.375, ("fixed", 512): 0.344}


def check_static_densities():
    """Self-check of the static layouts against the published densities (to the 3 decimals given)."""
    for (name, length), density in STATIC_DENSITIES.items():
        got = ref.static_mask(name, length).double().mean().item()
        if abs(got - density) > 5e-4:
            raise RuntimeError(f"static {name} L={length}: density {got:.4f}, expected {density}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args(argv)
    if args.list:
        for c in CASES:
            print(c["name"])
        return 0
    torch.set_num_threads(1)
    start = time.time()
    check_static_densities()
    os.makedirs(args.out, exist_ok=True)
    entries = [run_case(c, args.out) for c in CASES]
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"generator": "python/deq_reference/generate_cases.py", "torch": torch.__version__,
                   "cases": entries}, f, indent=1)
    print(f"wrote {len(entries)} cases to {args.out} in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
