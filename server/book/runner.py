"""Local book generation: chapters in parallel through the Scheduler (continuous batching), each written
atomically as soon as it is finished; a rerun skips finished chapters."""
from __future__ import annotations

import time
from dataclasses import replace

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.drivers import Scheduler
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions
from airquill.shared.book import Book, BookProgress, Outline, chapter_markdown, pending_chapters, write_atomic


def generate_local(book: Book, outline: Outline, adapter: ModelAdapter, *, parallel: int, length: int,
                   options: SamplingOptions, limit: int | None = None, progress: bool = True) -> dict:
    if adapter.family != "masked":
        raise ValueError(f"book mode runs masked-diffusion models so far; {adapter.name} is a {adapter.family} "
                         "model")
    todo = pending_chapters(book, outline, limit)
    total = len(outline.chapters[:limit] if limit else outline.chapters)
    bar = BookProgress(total, total - len(todo)) if progress else None
    scheduler = Scheduler(adapter, max_batch=parallel)
    live: dict[int, tuple] = {}
    written = tokens = 0
    started_all = time.perf_counter()
    try:
        while todo or live:
            while todo and len(live) < parallel:  # chapters join the batch as others finish
                chapter = todo.pop(0)
                chapter_options = replace(options, seed=options.seed + chapter.number)
                state = MaskedDenoiser.for_generation(adapter, chapter.entry, length, chapter_options)
                scheduler.submit(state)
                live[id(state)] = (chapter, state, time.perf_counter(), chapter_options.seed)
            for state, step in scheduler.tick():
                if not step.is_final:
                    continue
                chapter, _, started, seed = live.pop(id(state))
                meta = {"model": adapter.name, "seed": seed, "steps": step.index,
                        "ms": round((time.perf_counter() - started) * 1000, 1), "tokens": len(state.output_ids)}
                write_atomic(book.chapter_path(chapter.number), chapter_markdown(chapter, state.text, meta))
                written, tokens = written + 1, tokens + len(state.output_ids)
                if bar:
                    bar.chapter_done(len(state.output_ids))
    finally:
        if bar:
            summary = bar.close()
    if not bar:
        seconds = time.perf_counter() - started_all
        summary = {"chapters_written": written, "tokens": tokens, "seconds": seconds,
                   "chapters_per_min": written / seconds * 60, "tokens_per_s": tokens / seconds}
    return summary
