"""`airquill bench families`: the masked family, the uniform-noise family and the AR twin on the same corpus.

In one run: quality (generative perplexity under the AR twin, unigram entropy, distinct-2) against sampling
steps and tokens/s for each family's settings at every batch size, with the qualifying gate of `bench sampler`
(`judge`: perplexity at most 1.5x the AR samples', unigram entropy within 5% of held-out text's); the prefix cache on and
off for long outputs; and, with `--device cuda`, a DiffusionGemma-shaped model at realistic size (random
weights: speed only) streamed at batch 1, every step encoded as the protocol's binary frame.

`uniform_speedup_b1` is the best qualifying uniform setting's tokens/s over the AR twin's at batch 1 (None when
no uniform setting qualifies). The controls (keywords, length, style) are measured on every family at the
largest batch (`bench/controls.py`).

With `--absorbing-model`, a twin of the uniform model trained with absorbing noise instead (`airquill train
--family uniform --noise absorbing`, same recipe otherwise) runs every uniform setting too, as the family
`absorbing`; `absorbing_vs_uniform_b<batch>` holds the medians over those settings of its perplexity and of its
unigram entropy over the uniform model's. `--families` limits which diffusion families run (the AR twin always
does); `--no-controls` skips the controls' rows.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from airquill.assets import MODELS
from airquill.server.bench.controls import control_rows
from airquill.server.bench.sampler import (CONTINUOUS_BASE, DEFAULT, UNIFORM_BASE, batch_lines, heldout_rounds,
                                           in_rounds, judge, load_twin, plot, quality, quality_cells, run_ar,
                                           run_masked, run_states)
from airquill.server.models.loader import load_adapter, pick_device
from airquill.server.sampling.options import SamplingOptions
from airquill.server.sampling.continuous import NOISE_SCHEDULES, SPACINGS, ContinuousDenoiser, ContinuousOptions
from airquill.server.sampling.uniform import UniformDenoiser, UniformOptions
from airquill.shared.protocol import encode_step

UNIFORM_MODEL = "kjv-uniform"
CONTINUOUS_MODEL = "kjv-continuous"
FAMILIES = ("masked", "uniform", "continuous", "absorbing")


@dataclass(frozen=True)
class Setting:
    label: str
    family: str  # masked | uniform | continuous | ar
    options: SamplingOptions | UniformOptions | ContinuousOptions | None = None


def family_settings(length: int, quick: bool) -> list[Setting]:
    """The AR twin first, then masked rows along the steps axis (tokens per step 1, 2, 4, 8)."""
    masked = replace(DEFAULT, steps=length)
    grid = [Setting("ar (generate, KV cache)", "ar")]
    per_step = (2, 8) if quick else (1, 2, 4, 8)
    return grid + [Setting(f"masked linear {length // k} steps", "masked", replace(masked, steps=max(1, length // k)))
                   for k in per_step]


def uniform_settings(canvas: int, quick: bool) -> list[Setting]:
    """Uniform rows along the per-canvas step limit and the acceptance rules, and fixed budgets of k steps per
    canvas (the count rule keeps canvas/k more proposals each step and the canvas ends after k steps)."""
    u = UNIFORM_BASE
    grid = [Setting("uniform default: entropy 0.1, <=48 steps/canvas", "uniform", u)]
    if not quick:
        for steps in (8, 16, 32):
            grid.append(Setting(f"uniform entropy 0.1, <={steps} steps/canvas", "uniform",
                                replace(u, max_steps=steps)))
        for bound in (0.5, 2.0):
            grid.append(Setting(f"uniform entropy {bound}", "uniform", replace(u, entropy_bound=bound)))
        grid.append(Setting("uniform threshold 0.7", "uniform", replace(u, acceptance="threshold", threshold=0.7)))
    for k in (2,) if quick else (2, 4, 8, 16):
        grid.append(Setting(f"uniform fixed {k} steps/canvas", "uniform",
                            replace(u, acceptance="count", per_step=-(-canvas // k), max_steps=k, stop_entropy=0.0)))
    return grid


def continuous_settings(adapter, *, quick: bool, last_batch: bool) -> list[Setting]:
    """Continuous rows: quality against steps per canvas (8 to 128) on the model's own schedule; every schedule
    (and the adaptive one, when the model recorded its losses) at 64 steps; any other spacings at 16 steps; and, at
    the largest batch only, the fast-sampling pair: T/20 steps against all T training steps."""
    c = CONTINUOUS_BASE
    own = adapter.noise_schedule
    grid = [Setting(f"continuous {own} {k} steps/canvas", "continuous", replace(c, steps=k))
            for k in ((8, 64) if quick else (8, 16, 32, 64, 128))]
    schedules = [] if quick else [n for n in NOISE_SCHEDULES if n != own]
    if getattr(adapter, "loss_table", None) is not None:
        schedules.append("adaptive")
    grid += [Setting(f"continuous {n} 64 steps/canvas", "continuous", replace(c, steps=64, noise_schedule=n))
             for n in schedules]
    if not quick:
        grid += [Setting(f"continuous {own} 16 steps/canvas, {sp} spacing", "continuous",
                         replace(c, steps=16, spacing=sp)) for sp in SPACINGS if sp != "uniform"]
    if last_batch:
        total = adapter.diffusion_steps
        grid += [Setting(f"continuous {own} T/20 = {total // 20} steps/canvas", "continuous",
                         replace(c, steps=max(1, total // 20))),
                 Setting(f"continuous {own} T = {total} steps/canvas", "continuous", replace(c, steps=total))]
    return grid


def run_uniform(adapter, options: UniformOptions, prompts, length: int) -> dict:
    return run_states(adapter, prompts, lambda i, prompt: UniformDenoiser.for_generation(
        adapter, prompt, length, replace(options, seed=i)))


def run_continuous(adapter, options: ContinuousOptions, prompts, length: int) -> dict:
    return run_states(adapter, prompts, lambda i, prompt: ContinuousDenoiser.for_generation(
        adapter, prompt, length, replace(options, seed=i)))


RUNS = {"masked": run_masked, "uniform": run_uniform, "continuous": run_continuous, "absorbing": run_uniform}


def absorbing_settings(canvas: int, quick: bool) -> list[Setting]:
    """The uniform settings, for the twin trained with absorbing noise (the sampler reads the noise from it)."""
    return [Setting(s.label.replace("uniform", "absorbing", 1), "absorbing", s.options)
            for s in uniform_settings(canvas, quick)]


def run_setting(setting: Setting, adapters: dict, scorer, prompts, length: int) -> dict:
    if setting.family == "ar":
        return run_ar(scorer, next(iter(adapters.values())).tokenizer, prompts, length, DEFAULT)
    return RUNS[setting.family](adapters[setting.family], setting.options, prompts, length)


def prefix_cache_rows(adapters: dict, prompt: list[int], *, length: int) -> list[dict]:
    """Each diffusion family at batch 1 with its prefix cache on and off, `length` tokens, 8 steps per block of 32
    or per canvas (a fixed budget, so both runs do the same number of forward passes)."""
    rows = []
    for family, adapter in adapters.items():
        if family == "absorbing":  # the uniform family's code path: its rows would say nothing new
            continue
        for cache in (True, False):
            if family == "masked":
                options = replace(DEFAULT, steps=length // 4, block_size=32, prefix_cache=cache)
                run = run_masked(adapter, options, [prompt], length)
            elif family == "uniform":
                options = replace(UNIFORM_BASE, acceptance="count", per_step=-(-adapter.canvas_length // 8),
                                  max_steps=8, prefix_cache=cache, stop_entropy=0.0)
                run = run_uniform(adapter, options, [prompt], length)
            else:
                run = run_continuous(adapter, replace(CONTINUOUS_BASE, steps=8, prefix_cache=cache), [prompt], length)
            rows.append({"family": family, "prefix_cache": cache, "tokens_per_s": run["tokens_per_s"],
                         "model_tokens_per_token": run["model_tokens_per_token"], "seconds": run["seconds"]})
    return rows


# --- a DiffusionGemma-shaped model at realistic size (speed only) ---------------------------------------------

REALISTIC = dict(  # after the published 26B-A4B config: 30 layers (5 sliding : 1 full), hidden 2816, head dims
    # 256 / 512, canvas 256, 262,144 tokens; the MoE (128 experts of 704, 8 active) is our assumption of its size
    hidden_size=2816, intermediate_size=2112, num_hidden_layers=30, num_attention_heads=16, num_key_value_heads=8,
    head_dim=256, global_head_dim=512, num_experts=128, top_k_experts=8, moe_intermediate_size=704,
    vocab_size=262_144, sliding_window=1024, canvas_length=256,
)
TINY = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            head_dim=16, global_head_dim=16, num_experts=2, top_k_experts=1, moe_intermediate_size=16,
            vocab_size=4096, sliding_window=64, canvas_length=32)


def shaped_model(tokenizer, size: dict, *, device: torch.device, dtype: torch.dtype):
    """A randomly initialised DiffusionGemma of the given size, built straight on `device` in `dtype`."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, DiffusionGemmaTextConfig
    from transformers import Gemma4VisionConfig

    size = dict(size)
    canvas, vocab = size.pop("canvas_length"), max(size.pop("vocab_size"), len(tokenizer))
    layers = size["num_hidden_layers"]
    text = DiffusionGemmaTextConfig(
        **size, vocab_size=vocab, max_position_embeddings=8192,
        layer_types=["full_attention" if (i + 1) % 6 == 0 or i == layers - 1 else "sliding_attention"
                     for i in range(layers)],
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        attn_implementation="sdpa")
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1,
                                num_key_value_heads=1, head_dim=16, patch_size=4, position_embedding_size=16)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas,
                                  image_token_id=vocab + 1, boi_token_id=vocab + 2, eoi_token_id=vocab + 3)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = DiffusionGemmaForBlockDiffusion(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def streamed_speed(tokenizer, *, size: dict, device: torch.device, length: int, runs: int = 2) -> dict:
    """Batch-1 tokens/s of a DiffusionGemma-shaped model with random weights through our adapter and sampler, every
    step encoded as the protocol's binary frame (what the server sends). The first run warms up and is not
    counted. Random weights never settle, so each canvas runs its full step budget: a worst case for steps."""
    from airquill.server.models.diffusion_gemma import DiffusionGemmaAdapter
    from airquill.server.sampling.drivers import iter_denoise

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = shaped_model(tokenizer, size, device=device, dtype=dtype)
    adapter = DiffusionGemmaAdapter(model, tokenizer, name="diffusion-gemma-shaped (random weights)")
    parameters = sum(p.numel() for p in model.parameters())
    options = replace(UNIFORM_BASE, max_steps=16)
    figures = []
    for run in range(runs + 1):
        state = UniformDenoiser.for_generation(adapter, "In the beginning", length, replace(options, seed=run))
        frames, sent = 0, 0
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for step in iter_denoise(adapter, state):
            sent += len(encode_step("bench", step))
            frames += 1
        seconds = time.perf_counter() - started
        if run:
            figures.append({"tokens_per_s": len(state.output_ids) / seconds, "steps": frames, "bytes": sent})
    best = max(figures, key=lambda f: f["tokens_per_s"])
    return {"device": str(device), "parameters": parameters, "canvas_length": adapter.canvas_length,
            "length": length, **best}


# --- the run ---------------------------------------------------------------------------------------------------


def load_families(*, model: str | None, uniform_model: str | None, continuous_model: str | None,
                  absorbing_model: str | None, families: tuple[str, ...], device: str | None) -> dict:
    """family -> adapter for each family asked for: the masked model (given, else the shipped one), the others
    when given or shipped; each checked to be what its family needs."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    adapters = {"masked": load_adapter(model, device=device)} if "masked" in families else {}
    for family, given, shipped in (("uniform", uniform_model, UNIFORM_MODEL),
                                   ("continuous", continuous_model, CONTINUOUS_MODEL),
                                   ("absorbing", absorbing_model, None)):
        if family in families and (given or (shipped and (MODELS / shipped).is_dir())):
            adapters[family] = load_adapter(given or shipped, device=device)
    for family, adapter in adapters.items():
        kind = "uniform" if family == "absorbing" else family
        if adapter.family != kind:
            raise ValueError(f"{adapter.name} is a {adapter.family} model, not {kind}")
        noise = getattr(adapter, "noise", None)
        if kind == "uniform" and noise != ("absorbing" if family == "absorbing" else "uniform"):
            raise ValueError(f"{adapter.name} was trained with {noise} noise: give it as the "
                             f"{'--absorbing-model' if noise == 'absorbing' else '--uniform-model'}")
    if "absorbing" in families and "absorbing" not in adapters:
        raise ValueError("the absorbing family needs --absorbing-model (a uniform-family model trained with "
                         "--noise absorbing)")
    if not adapters:
        raise ValueError(f"no model for the families {', '.join(families)}: give one (--uniform-model, "
                         f"--continuous-model)")
    return adapters


def measure(*, model: str | None, uniform_model: str | None, ar_model: str, length: int, batches: list[int],
            quick: bool, device: str | None, long_length: int, gpu_size: str | None,
            continuous_model: str | None = None, absorbing_model: str | None = None,
            families: tuple[str, ...] | None = None, controls: bool = True, samples: int = 1) -> dict:
    """`samples`: prompts per batch size at least, a smaller batch running in rounds (see `bench sampler`)."""
    dev = pick_device(device)
    if families is None:  # every family, the absorbing twin when one is given
        families = tuple(f for f in FAMILIES if f != "absorbing" or absorbing_model)
    adapters = load_families(model=model, uniform_model=uniform_model, continuous_model=continuous_model,
                             absorbing_model=absorbing_model, families=tuple(families), device=device)
    tokenizer = next(iter(adapters.values())).tokenizer  # all share the AR twin's (checked below)
    scorer = load_twin(ar_model, adapters.values(), device=device)
    results: dict = {"models": {k: a.name for k, a in adapters.items()}, "ar_model": str(ar_model),
                     "length": length, "batches": {},
                     "continuous_schedule": getattr(adapters.get("continuous"), "noise_schedule", None)}
    prompts_of: dict[int, list[list[int]]] = {}
    for batch in batches:
        prompts, references = heldout_rounds(tokenizer, batch=batch, samples=samples, length=length)
        prompts_of[batch] = prompts[:batch]
        held = quality(scorer, prompts, references)
        rows = []
        settings = family_settings(length, quick)
        if "masked" not in adapters:
            settings = settings[:1]  # the AR twin only
        if "uniform" in adapters:
            settings += uniform_settings(adapters["uniform"].canvas_length, quick)
        if "absorbing" in adapters:
            settings += absorbing_settings(adapters["absorbing"].canvas_length, quick)
        if "continuous" in adapters:
            settings += continuous_settings(adapters["continuous"], quick=quick, last_batch=batch == max(batches))
        for setting in settings:
            run = in_rounds(lambda part: run_setting(setting, adapters, scorer, part, length), prompts, batch)
            steps = run["forwards_per_token"] * length
            rows.append({"setting": setting.label, "family": setting.family, "steps": steps,
                         **{k: v for k, v in run.items() if k != "samples"}, **quality(scorer, prompts, run["samples"])})
        results["batches"][batch] = {"heldout": held, "rows": judge(rows, held)}
    last = max(batches)
    controlled = {family: adapter for family, adapter in adapters.items() if family != "absorbing"}
    results["controls"] = {"batch": last, "rows": []}
    if controlled and controls:
        rows, figures = control_rows(controlled, scorer, prompts_of[last], results["batches"][last]["heldout"],
                                     length)
        results["controls"]["rows"] = rows
        results.update(figures)
    prompt = prompts_of[last][0]  # the held-out prompts come in a fixed order: the first is every batch's first
    results["prefix_cache"] = {"length": long_length,
                               "rows": prefix_cache_rows(adapters, prompt, length=long_length)}
    if gpu_size:
        size = REALISTIC if gpu_size == "realistic" else TINY
        results["diffusion_gemma_shaped"] = streamed_speed(tokenizer, size=size, device=dev, length=size["canvas_length"])
    return summarize(results)


def continuous_figures(results: dict) -> dict:
    """The continuous family's ratios, at the largest batch (the most samples): continuous (its own schedule) ÷
    masked generative perplexity at 64 steps (per canvas; the masked row's 64 steps cover the whole output), the quality lost
    sampling with T/20 steps instead of all T, and the adaptive schedule ÷ the best fixed one at 64 steps."""
    rows = results["batches"][max(results["batches"])]["rows"]
    continuous = {r["setting"]: r for r in rows if r["family"] == "continuous"}
    if not continuous:
        return {"continuous_genppl_vs_masked_64": None, "fast_sampling_quality_loss": None,
                "adaptive_vs_best_fixed": None}

    def genppl(pick):
        found = [r["genppl"] for label, r in continuous.items() if pick(label)]
        return found[0] if found else None

    masked_64 = next((r["genppl"] for r in rows if r["setting"] == "masked linear 64 steps"), None)
    at_64 = {label.split()[1]: r["genppl"] for label, r in continuous.items() if label.endswith(" 64 steps/canvas")}
    fast = genppl(lambda label: " T/20 = " in label)
    full = genppl(lambda label: " T = " in label)
    fixed = [v for k, v in at_64.items() if k != "adaptive"]
    return {
        "continuous_genppl_vs_masked_64": (at_64[results["continuous_schedule"]] / masked_64
                                           if masked_64 and results["continuous_schedule"] in at_64 else None),
        "fast_sampling_quality_loss": fast / full - 1 if fast and full else None,
        "adaptive_vs_best_fixed": at_64["adaptive"] / min(fixed) if "adaptive" in at_64 and fixed else None,
    }


def absorbing_vs_uniform(rows: list[dict]) -> dict | None:
    """Medians over the uniform settings both twins ran of the absorbing twin's figure over the uniform one's:
    perplexity (below 1: text the AR twin finds likelier) and unigram entropy (below 1: fewer distinct words —
    read the perplexity with it, as the qualifying gate does)."""
    uniform = {r["setting"]: r for r in rows if r["family"] == "uniform"}
    pairs = [(r, uniform[label]) for r in rows if r["family"] == "absorbing"
             and (label := r["setting"].replace("absorbing", "uniform", 1)) in uniform]
    if not pairs:
        return None
    return {key: statistics.median(a[key] / u[key] for a, u in pairs) for key in ("genppl", "entropy")}


def summarize(results: dict) -> dict:
    for batch, data in results["batches"].items():
        results[f"absorbing_vs_uniform_b{batch}"] = absorbing_vs_uniform(data["rows"])
        for family in FAMILIES:
            qualified = [r for r in data["rows"] if r["family"] == family and r["qualifies"]]
            best = max(qualified, key=lambda r: r["tokens_per_s"]) if qualified else None
            results[f"{family}_speedup_b{batch}"] = best["speedup"] if best else None
            results[f"{family}_best_setting_b{batch}"] = best["setting"] if best else None
        uniform = [r for r in data["rows"] if r["family"] == "uniform"]
        if uniform:
            closest = min(uniform, key=lambda r: r["genppl_ratio"])
            results[f"uniform_closest_b{batch}"] = {k: closest[k] for k in ("setting", "genppl_ratio",
                                                                           "entropy_gap", "speedup")}
    for family in FAMILIES:
        rows = [r for r in results["prefix_cache"]["rows"] if r["family"] == family]
        if rows:
            on, off = (next(r for r in rows if r["prefix_cache"] is c) for c in (True, False))
            results[f"prefix_cache_speedup_{family}"] = on["tokens_per_s"] / off["tokens_per_s"]
    results.update(continuous_figures(results))
    shaped = results.get("diffusion_gemma_shaped")
    results["diffusion_gemma_shaped_tokens_per_s"] = shaped["tokens_per_s"] if shaped else None
    return results


def report(results: dict) -> str:
    lines = [f"bench families: {results['models']} vs {results['ar_model']}, {results['length']} tokens"]
    lines += batch_lines(results, lambda r: (
        f"  {r['setting']:<46} {r['tokens_per_s']:8.1f} tok/s x{r['speedup']:5.2f} | steps {r['steps']:6.1f} | "
        + quality_cells(r)))
    controls = results["controls"]
    if controls["rows"]:
        lines.append(f"controls (batch {controls['batch']}; headline figures: the worst family's):")
    for r in controls["rows"]:
        lines.append(f"  {r['family']:<10} {r['control']:<30} success {r['success']:5.2f} | genppl {r['genppl']:8.1f} "
                     f"(cost {r['quality_cost']:+6.1%}) | entropy gap {r['entropy_gap']:5.1%} | "
                     f"{r['tokens_per_s']:7.1f} tok/s")
    cache = results["prefix_cache"]
    lines.append(f"prefix cache, {cache['length']} tokens at batch 1:")
    for r in cache["rows"]:
        lines.append(f"  {r['family']:<10} cache {'on ' if r['prefix_cache'] else 'off'} {r['tokens_per_s']:8.1f} tok/s"
                     f" | model tok/tok {r['model_tokens_per_token']:7.1f}")
    shaped = results.get("diffusion_gemma_shaped")
    if shaped:
        lines.append(f"DiffusionGemma-shaped, {shaped['parameters'] / 1e9:.2f} B parameters (random) on "
                     f"{shaped['device']}: {shaped['tokens_per_s']:.0f} tok/s streamed at batch 1, "
                     f"{shaped['steps']} steps, {shaped['bytes']:,} bytes of frames")
    summary = {k: v for k, v in results.items() if k not in ("batches", "models", "ar_model", "length",
                                                             "prefix_cache", "diffusion_gemma_shaped",
                                                             "continuous_schedule", "controls")}
    lines.append(json.dumps(summary, indent=1))
    return "\n".join(lines)


def main(args) -> int:
    gpu_size = args.shaped or ("realistic" if pick_device(args.device).type == "cuda" else None)
    results = measure(model=args.model, uniform_model=args.uniform_model, continuous_model=args.continuous_model,
                      ar_model=args.ar_model or str(MODELS / "kjv-ar"), length=args.length, batches=args.batch,
                      quick=args.quick, device=args.device, long_length=args.long_length, gpu_size=gpu_size,
                      absorbing_model=args.absorbing_model, families=tuple(args.families) if args.families else None,
                      controls=not args.no_controls, samples=args.samples)
    if args.plot:
        plot(results, Path(args.plot))
    print(json.dumps(results) if args.json else report(results))
    return 0
