"""`airquill bench book`: chapters/min and tokens/s for N chapters x L tokens at several parallelisms — the book
runner (files, metadata, progress off), the scheduler driven directly on the same requests, and the AR twin
at the same parallelism — in one run, with the projection to a 999-chapter book."""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from airquill.assets import MODELS
from airquill.server.bench.sampler import load_twin, run_ar, setting_label
from airquill.server.book.runner import generate_local
from airquill.server.models.loader import load_adapter
from airquill.server.sampling.drivers import Scheduler
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions
from airquill.shared.book import Book, Chapter, Outline


def _outline(n: int) -> Outline:
    return Outline("bench", "", [Chapter(i, f"And it came to pass on the {i}th day") for i in range(1, n + 1)])


def _direct(adapter, outline: Outline, *, parallel: int, length: int, options: SamplingOptions) -> float:
    scheduler = Scheduler(adapter, max_batch=parallel)
    todo, live, tokens = list(outline.chapters), 0, 0
    started = time.perf_counter()
    while todo or live:
        while todo and live < parallel:
            chapter = todo.pop(0)
            scheduler.submit(MaskedDenoiser.for_generation(adapter, chapter.entry, length,
                                                           replace(options, seed=options.seed + chapter.number)))
            live += 1
        for state, step in scheduler.tick():
            if step.is_final:
                live -= 1
                tokens += len(state.output_ids)
    return tokens / (time.perf_counter() - started)


def measure(*, model, ar_model, chapters: int, length: int, parallelism: list[int], options: SamplingOptions,
            device) -> dict:
    adapter = load_adapter(model, device=device)
    ar = load_twin(ar_model, [adapter], device=device)
    outline = _outline(chapters)
    prompts = [adapter.tokenizer(c.entry, add_special_tokens=False)["input_ids"] for c in outline.chapters]
    rows = {}
    for k in parallelism:
        with tempfile.TemporaryDirectory() as tmp:
            book = Book(Path(tmp))
            summary = generate_local(book, outline, adapter, parallel=k, length=length, options=options,
                                     progress=False)
        direct_tps = _direct(adapter, outline, parallel=k, length=length, options=options)
        started, ar_tokens = time.perf_counter(), 0
        for first in range(0, len(prompts), k):
            ar_tokens += sum(len(s) for s in run_ar(ar, adapter.tokenizer, prompts[first : first + k], length,
                                                    options)["samples"])
        ar_seconds = time.perf_counter() - started
        rows[k] = {"chapters_per_min": summary["chapters_per_min"], "tokens_per_s": summary["tokens_per_s"],
                   "direct_tokens_per_s": direct_tps, "ar_chapters_per_min": chapters / ar_seconds * 60,
                   "ar_tokens_per_s": ar_tokens / ar_seconds}
    best = max(rows, key=lambda k: rows[k]["chapters_per_min"])
    best_ar = max(rows, key=lambda k: rows[k]["ar_chapters_per_min"])
    out = {"model": adapter.name, "chapters": chapters, "length": length, "setting": setting_label(options),
           "rows": rows, "best_parallel": best,
           "book_efficiency": rows[best]["tokens_per_s"] / rows[best]["direct_tokens_per_s"],
           "speedup_best": rows[best]["chapters_per_min"] / rows[best_ar]["ar_chapters_per_min"],
           "chapters_per_min_best": rows[best]["chapters_per_min"]}
    out["projection_999_minutes"] = 999 / out["chapters_per_min_best"]
    out["projection_999_ar_minutes"] = 999 / rows[best_ar]["ar_chapters_per_min"]
    return out


def main(args) -> int:
    options = SamplingOptions(steps=args.steps, schedule=args.schedule, threshold=args.threshold,
                              block_size=args.block_size, stop_at_eos=False)
    out = measure(model=args.model, ar_model=args.ar_model or str(MODELS / "kjv-ar"), chapters=args.chapters,
                  length=args.length, parallelism=args.parallel, options=options, device=args.device)
    if args.json:
        print(json.dumps(out))
    else:
        for k, row in out["rows"].items():
            print(f"parallel {k:>3}: book {row['chapters_per_min']:7.1f} ch/min {row['tokens_per_s']:8.1f} tok/s | "
                  f"direct {row['direct_tokens_per_s']:8.1f} tok/s | AR {row['ar_chapters_per_min']:7.1f} ch/min")
        print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    return 0
