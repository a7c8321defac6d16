"""`airquill bench sampler`: does diffusion earn its speed? The masked model across schedules, step counts,
thresholds, block sizes and the prefix cache, against its autoregressive twin (transformers `generate` with
its KV cache), at batch 1 and 32, in one run: tokens/s, forward passes and model tokens per generated token,
and quality (generative perplexity under the AR twin, unigram entropy, distinct-2) beside held-out text.

A setting qualifies when its generative perplexity is at most 1.5x the AR samples' and its unigram entropy is
within 5% of held-out text's (low entropy would flatter perplexity; the gate stops that).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from airquill.assets import CORPUS, MODELS
from airquill.server.bench.quality import distinct_n, generative_perplexity, mean_unigram_entropy
from airquill.server.models.loader import load_adapter, pick_device
from airquill.server.sampling.drivers import Scheduler
from airquill.server.sampling.continuous import ContinuousOptions
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions
from airquill.server.sampling.uniform import UniformOptions
from airquill.server.training.corpus import load_corpus

PPL_GATE, ENTROPY_GATE = 1.5, 0.05
DEFAULT = SamplingOptions(schedule="linear", steps=128, temperature=0.8, top_p=0.95, stop_at_eos=False)
# every family's benchmark sampling is fixed-length (no stop at end-of-text), so rows compare equal outputs
UNIFORM_BASE = UniformOptions(stop_at_eos=False)
CONTINUOUS_BASE = ContinuousOptions(stop_at_eos=False)


@dataclass(frozen=True)
class Setting:
    label: str
    options: SamplingOptions | None  # None: the autoregressive twin


def settings(quick: bool) -> list[Setting]:
    base = replace(DEFAULT)
    grid = [Setting("ar (generate, KV cache)", None), Setting("masked default: linear 128 steps", base)]
    if quick:
        return grid + [Setting("threshold 0.7", replace(base, schedule="threshold", threshold=0.7))]
    for steps in (256, 64, 32):
        grid.append(Setting(f"linear {steps} steps", replace(base, steps=steps)))
    grid.append(Setting("cosine 128 steps", replace(base, schedule="cosine")))
    for threshold in (0.9, 0.7, 0.5):
        grid.append(Setting(f"threshold {threshold}", replace(base, schedule="threshold", threshold=threshold)))
    for bound in (0.5, 1.0, 2.0):
        grid.append(Setting(f"entropy bound {bound}", replace(base, schedule="entropy", entropy_bound=bound)))
    for block in (8, 16, 64):
        grid.append(Setting(f"threshold 0.7, block {block}",
                            replace(base, schedule="threshold", threshold=0.7, block_size=block)))
    grid.append(Setting("linear 128 steps, no prefix cache", replace(base, prefix_cache=False)))
    return grid


def heldout_prompts(tokenizer, *, count: int, prompt_tokens: int, length: int) -> tuple[list[list[int]], list[list[int]]]:
    """Prompts and their true continuations, cut from held-out chapters (never trained on)."""
    ids = []
    for doc in load_corpus(CORPUS).heldout:
        ids.append(tokenizer(doc, add_special_tokens=False)["input_ids"])
    prompts, references = [], []
    window = prompt_tokens + length
    while len(prompts) < count:
        for doc in ids:
            offset = (len(prompts) // len(ids)) * window
            if offset + window <= len(doc) and len(prompts) < count:
                prompts.append(doc[offset : offset + prompt_tokens])
                references.append(doc[offset + prompt_tokens : offset + window])
        if offset + window > max(len(d) for d in ids):
            raise ValueError("held-out text too short for this many prompts")
    return prompts, references


def run_masked(adapter, options: SamplingOptions, prompts, length: int) -> dict:
    return run_states(adapter, prompts, lambda i, prompt: MaskedDenoiser.for_generation(
        adapter, prompt, length, replace(options, seed=i)))


def run_states(adapter, prompts, make_state) -> dict:
    """Run one sampler state per prompt (`make_state(index, prompt text)`) through one scheduler: speed, forward
    passes per generated token (per request) and model tokens per generated token."""
    tokenizer = adapter.tokenizer
    scheduler = Scheduler(adapter, max_batch=len(prompts))
    states = [scheduler.submit(make_state(i, tokenizer.decode(p))) for i, p in enumerate(prompts)]
    passes, processed = adapter.forward_passes, adapter.tokens_processed
    started = time.perf_counter()
    for _ in scheduler.run():
        pass
    seconds = time.perf_counter() - started
    samples = [s.output_ids for s in states]
    generated = sum(len(s) for s in samples)
    return {"samples": samples, "seconds": seconds, "tokens_per_s": generated / seconds,
            "forwards_per_token": (adapter.forward_passes - passes) * len(prompts) / generated,
            "model_tokens_per_token": (adapter.tokens_processed - processed) / generated}


@torch.inference_mode()
def run_ar(model, tokenizer, prompts, length: int, options: SamplingOptions) -> dict:
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, p in enumerate(prompts):  # left padding
        ids[row, width - len(p) :] = torch.tensor(p)
        attention[row, width - len(p) :] = 1
    calls = {"n": 0, "tokens": 0}

    def count(module, args, kwargs):
        calls["n"] += 1
        calls["tokens"] += int(kwargs["input_ids"].numel()) if kwargs.get("input_ids") is not None else 0

    hook = model.register_forward_pre_hook(count, with_kwargs=True)
    torch.manual_seed(0)
    started = time.perf_counter()
    try:
        out = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device), max_new_tokens=length,
                             min_new_tokens=length, do_sample=True, temperature=options.temperature,
                             top_p=options.top_p, top_k=0, use_cache=True, pad_token_id=tokenizer.pad_token_id)
    finally:
        hook.remove()
    seconds = time.perf_counter() - started
    samples = [row[width:].tolist() for row in out.cpu()]
    generated = sum(len(s) for s in samples)
    return {"samples": samples, "seconds": seconds, "tokens_per_s": generated / seconds,
            "forwards_per_token": calls["n"] * len(prompts) / generated,
            "model_tokens_per_token": calls["tokens"] / generated}


def load_twin(ar_model: str, adapters, *, device: str | None):
    """The AR twin (float32, for timing and as the perplexity scorer); every diffusion model it is compared with
    must share its tokenizer."""
    from transformers import AutoModelForCausalLM

    twin = AutoModelForCausalLM.from_pretrained(ar_model, local_files_only=True, dtype=torch.float32)
    twin = twin.to(pick_device(device)).eval()
    for adapter in adapters:
        if len(adapter.tokenizer) != twin.config.vocab_size:
            raise ValueError(f"{adapter.name} does not share the AR twin's tokenizer")
    return twin


def quality(scorer, prompts, samples) -> dict:
    return {"genppl": generative_perplexity(scorer, prompts, samples), "entropy": mean_unigram_entropy(samples),
            "distinct2": distinct_n(samples, 2)}


def run_figures(scorer, prompts, run: dict) -> dict:
    """A run's figures for its row: speed and per-token counts, how many prompts it ran, and its samples' quality."""
    return {**{k: v for k, v in run.items() if k != "samples"}, "prompts": len(run["samples"]),
            **quality(scorer, prompts, run["samples"])}


def setting_label(options: SamplingOptions) -> str:
    """How a threshold or fixed-step setting is named in the benchmarks' rows (`threshold 0.5, block 32`)."""
    label = f"threshold {options.threshold}" if options.schedule == "threshold" else \
        f"{options.schedule} {options.steps} steps"
    return label + (f", block {options.block_size}" if options.block_size else "")


def heldout_rounds(tokenizer, *, batch: int, samples: int, length: int) -> tuple[list[list[int]], list[list[int]]]:
    """Held-out prompts (16 tokens) and their continuations for whole rounds of `batch`, at least `samples` in all."""
    return heldout_prompts(tokenizer, count=batch * -(-samples // batch), prompt_tokens=16, length=length)


def in_rounds(run, prompts: list, batch: int) -> dict:
    """`run(prompts)` over `prompts` taken `batch` at a time, one round after another, as one result: every round's
    samples, its seconds added up, and the per-token figures over all the tokens generated."""
    parts = [run(prompts[first : first + batch]) for first in range(0, len(prompts), batch)]
    generated = [sum(len(s) for s in part["samples"]) for part in parts]
    total, seconds = sum(generated), sum(part["seconds"] for part in parts)
    return {"samples": [s for part in parts for s in part["samples"]], "seconds": seconds,
            "tokens_per_s": total / seconds,
            **{key: sum(part[key] * n for part, n in zip(parts, generated)) / total
               for key in ("forwards_per_token", "model_tokens_per_token")}}


def measure(*, model: str | None, ar_model: str, length: int, batches: list[int], quick: bool,
            device: str | None, samples: int = 1) -> dict:
    """Each batch size runs at least `samples` prompts (a batch of 1 runs 16 rounds of one prompt for 16): one
    128-token sample judges a setting's quality by chance, and one second of generation its speed."""
    adapter = load_adapter(model, device=device)
    scorer = load_twin(ar_model, [adapter], device=device)
    results: dict = {"model": adapter.name, "ar_model": str(ar_model), "length": length, "batches": {},
                     "samples": samples}
    for batch in batches:
        prompts, references = heldout_rounds(adapter.tokenizer, batch=batch, samples=samples, length=length)
        held = quality(scorer, prompts, references)
        rows = []
        for setting in settings(quick):
            if setting.options is None:
                run = in_rounds(lambda part: run_ar(scorer, adapter.tokenizer, part, length, DEFAULT), prompts, batch)
            else:
                run = in_rounds(lambda part: run_masked(adapter, setting.options, part, length), prompts, batch)
            rows.append({"setting": setting.label, "family": "ar" if setting.options is None else "masked",
                         **run_figures(scorer, prompts, run)})
        results["batches"][batch] = {"heldout": held, "rows": judge(rows, held)}
    return summarize(results)


def judge(rows: list[dict], held: dict) -> list[dict]:
    """Each row against the AR twin's (the first row): perplexity ratio, entropy gap to held-out text, speedup,
    and whether a diffusion row qualifies."""
    ar = rows[0]
    for row in rows:
        row["genppl_ratio"] = row["genppl"] / ar["genppl"]
        row["entropy_gap"] = abs(row["entropy"] - held["entropy"]) / held["entropy"]
        row["qualifies"] = row["family"] != "ar" and row["genppl_ratio"] <= PPL_GATE \
            and row["entropy_gap"] <= ENTROPY_GATE
        row["speedup"] = row["tokens_per_s"] / ar["tokens_per_s"]
    return rows


def summarize(results: dict) -> dict:
    for batch, data in results["batches"].items():
        qualified = [r for r in data["rows"] if r["qualifies"]]
        best = max(qualified, key=lambda r: r["tokens_per_s"]) if qualified else None
        key = f"b{batch}"
        results[f"speedup_{key}"] = best["speedup"] if best else None
        results[f"best_setting_{key}"] = best["setting"] if best else None
        if best:
            results[f"genppl_ratio_{key}"] = best["genppl_ratio"]
            results[f"entropy_gap_{key}"] = best["entropy_gap"]
            results[f"forwards_per_token_{key}"] = best["forwards_per_token"]
    first = results["batches"][min(results["batches"])]
    default = first["rows"][1]
    results["default_genppl_vs_heldout"] = default["genppl"] / first["heldout"]["genppl"]
    results["default_entropy_gap"] = default["entropy_gap"]
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results["batches"]), figsize=(6 * len(results["batches"]), 4.5), squeeze=False)
    for ax, (batch, data) in zip(axes[0], results["batches"].items()):
        families = dict.fromkeys(r["family"] for r in data["rows"])
        for family, marker in zip(families, "osD^v"):
            rows = [r for r in data["rows"] if r["family"] == family]
            ax.scatter([r["tokens_per_s"] for r in rows], [r["genppl"] for r in rows], marker=marker, label=family)
            front, best = [], float("inf")
            for r in sorted(rows, key=lambda r: -r["tokens_per_s"]):
                if r["genppl"] < best:
                    front.append(r)
                    best = r["genppl"]
            ax.plot([r["tokens_per_s"] for r in front], [r["genppl"] for r in front], linestyle="--")
        ax.axhline(data["heldout"]["genppl"], color="grey", linewidth=0.8, label="held-out text")
        ax.set(xscale="log", xlabel="tokens/s", ylabel="generative perplexity (AR twin)", title=f"batch {batch}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def batch_lines(results: dict, row_line) -> list[str]:
    """Per batch size: the held-out text's figures, then `row_line(row)` for each setting."""
    lines = []
    for batch, data in results["batches"].items():
        held = data["heldout"]
        lines.append(f"batch {batch}: held-out text genppl {held['genppl']:.1f}, entropy {held['entropy']:.3f}, "
                     f"distinct-2 {held['distinct2']:.3f}")
        lines += [row_line(r) for r in data["rows"]]
    return lines


def quality_cells(r: dict) -> str:
    return (f"genppl {r['genppl']:8.1f} ({r['genppl_ratio']:5.2f}x AR) | entropy {r['entropy']:.3f} | "
            f"d2 {r['distinct2']:.3f} | {'qualifies' if r['qualifies'] else '-'}")


def report(results: dict) -> str:
    lines = [f"bench sampler: {results['model']} vs {results['ar_model']}, {results['length']} tokens, "
             f"at least {results['samples']} samples per batch size"]
    lines += batch_lines(results, lambda r: (
        f"  {r['setting']:<38} {r['tokens_per_s']:8.1f} tok/s x{r['speedup']:5.2f} | "
        f"fwd/tok {r['forwards_per_token']:5.3f} | model tok/tok {r['model_tokens_per_token']:6.1f} | "
        + quality_cells(r)))
    summary = {k: v for k, v in results.items() if k not in ("batches", "model", "ar_model", "length")}
    lines.append(json.dumps(summary, indent=1))
    return "\n".join(lines)


def main(args) -> int:
    results = measure(model=args.model, ar_model=args.ar_model or str(MODELS / "kjv-ar"), length=args.length,
                      batches=args.batch, quick=args.quick, device=args.device, samples=args.samples)
    if args.plot:
        plot(results, Path(args.plot))
    print(json.dumps(results) if args.json else report(results))
    return 0
