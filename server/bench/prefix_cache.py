"""`airquill bench cache`: what the exact prefix cache buys for long, block-wise generation.

The same request (same seed, same schedule) is generated with the cache on and off, at batch 1 and in a
batch, in one run; printed: tokens/s, forward passes and tokens run through the model per generated token,
and the speed-up ratio. Both runs must produce the same tokens (the cache is exact), which is checked.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace

import torch

from airquill.server.models.base import ForwardRequest
from airquill.server.models.loader import load_adapter
from airquill.server.sampling.drivers import Scheduler
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions

PROMPTS = ["And God said", "In the beginning", "The LORD is my shepherd", "And it came to pass",
           "Blessed are the", "Then answered Jesus", "Hear, O Israel", "And the angel said"]


def measure(adapter, options: SamplingOptions, *, length: int, batch: int) -> dict:
    scheduler = Scheduler(adapter, max_batch=batch)
    states = [scheduler.submit(MaskedDenoiser.for_generation(adapter, PROMPTS[i % len(PROMPTS)], length,
                                                             replace(options, seed=i)))
              for i in range(batch)]
    passes, processed = adapter.forward_passes, adapter.tokens_processed
    started = time.perf_counter()
    for _ in scheduler.run():
        pass
    seconds = time.perf_counter() - started
    generated = sum(len(s.output_ids) for s in states)
    return {
        "tokens_per_s": generated / seconds,
        "seconds": seconds,
        "forwards_per_token": (adapter.forward_passes - passes) * batch / generated,
        "model_tokens_per_token": (adapter.tokens_processed - processed) / generated,
        "outputs": [s.output_ids for s in states],
    }


def exactness(adapter, options: SamplingOptions, *, length: int) -> float:
    """Largest |logit difference| between cached and recomputed passes along one generation.

    The cache is exact while prompt + text fit the model's context window (past it, the cached run keeps
    states that saw older text while a recomputation sees only the window), so this looks within the window.
    """
    fits = min(length, getattr(adapter, "context", length) - 16)
    state = MaskedDenoiser.for_generation(adapter, PROMPTS[0], fits, options)
    worst = 0.0
    while not state.done:
        request = state.next_forward()
        (cached,) = adapter.forward([request])
        (full,) = adapter.forward([ForwardRequest(ids=request.ids, canvas=request.canvas,
                                                  block_size=request.block_size)])
        worst = max(worst, float((cached - full).abs().max()))
        state.advance(cached)
    return worst


def run(*, model: str | None, length: int, steps: int, block_size: int | None, batches: list[int],
        device: str | None) -> dict:
    adapter = load_adapter(model, device=device)
    base = SamplingOptions(steps=steps, block_size=block_size, temperature=0.8, top_p=0.95, stop_at_eos=False)
    results: dict = {"model": adapter.name, "length": length, "steps": steps,
                     "block_size": block_size or adapter.default_block_size, "threads": torch.get_num_threads()}
    measure(adapter, base, length=64, batch=1)  # warm-up
    results["max_logit_diff_within_window"] = exactness(adapter, base, length=length)
    for batch in batches:
        on = measure(adapter, base, length=length, batch=batch)
        off = measure(adapter, replace(base, prefix_cache=False), length=length, batch=batch)
        results[f"b{batch}"] = {
            "cache_on": {k: v for k, v in on.items() if k != "outputs"},
            "cache_off": {k: v for k, v in off.items() if k != "outputs"},
            "speedup": on["tokens_per_s"] / off["tokens_per_s"],
        }
    return results


def report(results: dict) -> str:
    lines = [f"prefix cache, {results['model']}: {results['length']} tokens, {results['steps']} steps, "
             f"block {results['block_size']}, {results['threads']} threads"]
    for key, row in results.items():
        if not key.startswith("b") or not isinstance(row, dict):
            continue
        on, off = row["cache_on"], row["cache_off"]
        lines.append(
            f"  batch {key[1:]:>3}: cache on {on['tokens_per_s']:8.1f} tok/s ({on['model_tokens_per_token']:.1f} model "
            f"tokens/token) | off {off['tokens_per_s']:8.1f} tok/s ({off['model_tokens_per_token']:.1f}) | "
            f"speed-up {row['speedup']:.2f}x")
    lines.append(f"  largest logit difference, cached vs recomputed, within the context window: "
                 f"{results['max_logit_diff_within_window']:.2e}")
    return "\n".join(lines)


def main(args) -> int:
    results = run(model=args.model, length=args.length, steps=args.steps, block_size=args.block_size,
                  batches=args.batch, device=args.device)
    print(json.dumps(results) if args.json else report(results))
    return 0
