"""`airquill bench parallelism`: how many tokens one diffusion step must commit to beat the autoregressive twin
`--target` times over at batch 1, how many the masked model commits at a quality that passes `bench sampler`'s
gate, and how many the text itself would allow an oracle.

At batch 1 a masked step costs one forward pass over its canvas block (and a draw); a token of the twin costs one
forward pass over that token with the KV cache. Beating the twin N times over therefore takes
N x (step cost / twin's forward cost) tokens per step, which this measures per setting (confidence threshold x
block size) beside the tokens per step each setting commits and its quality.

The oracle runs over the twin's own samples: each step commits the leftmost open token and every following one
that the twin's sampling distribution gave at least probability tau, given the true text before it. A parallel
step never sees that text, so this is an optimistic reference for what text sampled at this temperature allows
at that confidence, not a bound on every sampler.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from airquill.assets import MODELS
from airquill.server.bench.quality import drawn_probabilities
from airquill.server.bench.sampler import (DEFAULT, heldout_rounds, in_rounds, judge, load_twin, quality,
                                           quality_cells, run_ar, run_figures, run_masked, setting_label)
from airquill.server.models.loader import load_adapter


def oracle_tokens_per_step(probabilities: Sequence[Sequence[float]], tau: float) -> float:
    """Tokens per step when each step commits the leftmost open token and the run of tokens after it whose
    probability is at least `tau`: a step starts at each text's first token and at every token under `tau`."""
    tokens = sum(len(row) for row in probabilities)
    steps = sum(1 for row in probabilities for i, p in enumerate(row) if i == 0 or p < tau)
    if not steps:
        raise ValueError("no tokens to commit")
    return tokens / steps


def ms_per_forward(row: dict) -> float:
    """Milliseconds per forward pass of one request (a step, for diffusion), from a batch-1 row."""
    return 1000.0 / (row["tokens_per_s"] * row["forwards_per_token"])


def measure(*, model: str | None, ar_model: str, length: int, samples: int, thresholds: Sequence[float],
            blocks: Sequence[int], confidences: Sequence[float], target: float, device: str | None) -> dict:
    adapter = load_adapter(model, device=device)
    if adapter.family != "masked":
        raise ValueError(f"bench parallelism runs the masked family; {adapter.name} is {adapter.family!r}")
    twin = load_twin(ar_model, [adapter], device=device)
    prompts, references = heldout_rounds(adapter.tokenizer, batch=1, samples=samples, length=length)
    ar = in_rounds(lambda part: run_ar(twin, adapter.tokenizer, part, length, DEFAULT), prompts, 1)
    rows = [{"setting": "ar (generate, KV cache)", "family": "ar", **run_figures(twin, prompts, ar)}]
    for block in blocks:
        for threshold in thresholds:
            options = replace(DEFAULT, schedule="threshold", threshold=threshold, block_size=block)
            run = in_rounds(lambda part: run_masked(adapter, options, part, length), prompts, 1)
            rows.append({"setting": setting_label(options), "family": "masked", "block": block,
                         "threshold": threshold, **run_figures(twin, prompts, run)})
    held = quality(twin, prompts, references)
    judge(rows, held)
    twin_ms = ms_per_forward(rows[0])
    for row in rows:
        row["ms_per_forward"] = ms_per_forward(row)
        row["tokens_per_step"] = 1.0 / row["forwards_per_token"]
        row["tokens_per_step_needed"] = target * row["ms_per_forward"] / twin_ms
    drawn = drawn_probabilities(twin, prompts, ar["samples"], temperature=DEFAULT.temperature, top_p=DEFAULT.top_p)
    qualified = [r for r in rows if r["qualifies"]]
    best = max(qualified, key=lambda r: r["tokens_per_s"]) if qualified else None
    return {"model": adapter.name, "ar_model": str(ar_model), "length": length, "prompts": len(prompts),
            "target": target, "heldout": held, "rows": rows, "twin_ms_per_forward": twin_ms,
            "oracle_tokens_per_step": {str(tau): oracle_tokens_per_step(drawn, tau) for tau in confidences},
            "best_setting": best["setting"] if best else None,
            **{f"best_{key}": best[key] if best else None
               for key in ("speedup", "tokens_per_step", "tokens_per_step_needed", "genppl_ratio", "entropy_gap")}}


def report(results: dict) -> str:
    held = results["heldout"]
    lines = [f"bench parallelism: {results['model']} vs {results['ar_model']}, {results['length']} tokens, "
             f"{results['prompts']} prompts one at a time; target {results['target']:g}x the twin",
             f"held-out text: genppl {held['genppl']:.1f}, entropy {held['entropy']:.3f}; the twin's forward pass "
             f"{results['twin_ms_per_forward']:.2f} ms"]
    for r in results["rows"]:
        lines.append(f"  {r['setting']:<26} {r['tokens_per_s']:7.1f} tok/s x{r['speedup']:5.2f} | "
                     f"{r['ms_per_forward']:5.2f} ms/step | tokens/step {r['tokens_per_step']:4.2f}, needed "
                     f"{r['tokens_per_step_needed']:5.2f} | " + quality_cells(r))
    lines.append("oracle tokens/step on the twin's samples: " + ", ".join(
        f"p >= {tau}: {v:.2f}" for tau, v in results["oracle_tokens_per_step"].items()))
    summary = {k: v for k, v in results.items() if k not in ("rows", "heldout", "model", "ar_model")}
    lines.append(json.dumps(summary, indent=1))
    return "\n".join(lines)


def main(args) -> int:
    results = measure(model=args.model, ar_model=args.ar_model or str(MODELS / "kjv-ar"), length=args.length,
                      samples=args.samples, thresholds=args.thresholds, blocks=args.blocks,
                      confidences=args.confidences, target=args.target, device=args.device)
    print(json.dumps(results) if args.json else report(results))
    return 0
