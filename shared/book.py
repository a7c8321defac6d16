"""The book layout and its outline, shared by the local runner and remote runs (no torch here).

book/
  outline.md      # "# Title", style notes, then one numbered entry per chapter
  book.json       # which model the book uses (set by `airquill book finetune`)
  chapters/       # the author's own chapters (.md/.txt), for fine-tuning
  output/         # chapter-NNN.md, written atomically as each chapter finishes
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

OUTLINE_TEMPLATE = """# {title}

Style: write in the manner of the chapters in book/chapters/.

## Chapters

1. And it came to pass in those days
2. And the word of the LORD came unto him
3. Then he arose and went into the city
"""

ENTRY = re.compile(r"^(\d+)\.\s+(.*\S)\s*$")


class OutlineError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(f"outline.md line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Chapter:
    number: int
    entry: str


@dataclass(frozen=True)
class Outline:
    title: str
    style: str
    chapters: list[Chapter] = field(default_factory=list)


def parse_outline(text: str) -> Outline:
    """Title line, style notes, a "## Chapters" heading, then `N. entry` lines numbered 1, 2, 3 …
    (indented lines continue the entry above). Errors name the line."""
    title, style, chapters, in_chapters = None, [], [], False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if title is None:
            if not line.startswith("# "):
                raise OutlineError(number, f"expected the title as '# Title', found {line.strip()[:40]!r}")
            title = line[2:].strip()
            continue
        if line.strip().lower() == "## chapters":
            in_chapters = True
            continue
        if not in_chapters:
            style.append(line.strip())
            continue
        match = ENTRY.match(line.strip())
        if match and not raw.startswith((" ", "\t")):
            expected = len(chapters) + 1
            if int(match.group(1)) != expected:
                raise OutlineError(number, f"chapter {match.group(1)} where chapter {expected} was expected")
            chapters.append(Chapter(expected, match.group(2)))
        elif raw.startswith((" ", "\t")) and chapters:
            last = chapters[-1]
            chapters[-1] = Chapter(last.number, f"{last.entry} {line.strip()}")
        else:
            raise OutlineError(number, f"expected a chapter entry like '{len(chapters) + 1}. …', found "
                                       f"{line.strip()[:40]!r}")
    if title is None:
        raise OutlineError(1, "the outline is empty; it starts with '# Title'")
    if not chapters:
        raise OutlineError(len(text.splitlines()) or 1, "no chapters: add '## Chapters' and '1. …' lines")
    return Outline(title=title, style=" ".join(style), chapters=chapters)


@dataclass(frozen=True)
class Book:
    root: Path

    @property
    def outline_path(self) -> Path:
        return self.root / "outline.md"

    @property
    def chapters_dir(self) -> Path:
        return self.root / "chapters"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def config_path(self) -> Path:
        return self.root / "book.json"

    def init(self, title: str = "Untitled") -> None:
        for folder in (self.chapters_dir, self.output_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.outline_path.exists():
            self.outline_path.write_text(OUTLINE_TEMPLATE.format(title=title), encoding="utf-8")
        if not self.config_path.exists():
            write_atomic(self.config_path, json.dumps({"model": None}, indent=2) + "\n")

    def outline(self) -> Outline:
        if not self.outline_path.exists():
            raise FileNotFoundError(f"{self.outline_path} not found; run `airquill book init` first")
        return parse_outline(self.outline_path.read_text(encoding="utf-8"))

    def config(self) -> dict:
        return json.loads(self.config_path.read_text(encoding="utf-8")) if self.config_path.exists() else {}

    def set_model(self, model: str) -> None:
        write_atomic(self.config_path, json.dumps({**self.config(), "model": model}, indent=2) + "\n")

    def chapter_path(self, number: int) -> Path:
        return self.output_dir / f"chapter-{number:03d}.md"

    def finished(self) -> set[int]:
        """Chapters already written. A file exists only once it is complete (it is renamed into place)."""
        found = set()
        for path in self.output_dir.glob("chapter-*.md"):
            match = re.fullmatch(r"chapter-(\d+)\.md", path.name)
            if match:
                found.add(int(match.group(1)))
        return found


def write_atomic(path: Path, data: str | bytes) -> None:
    """Temporary file in the same folder, fsync, rename: readers see the old file or the whole new one.
    The file gets ordinary permissions (0644 less the umask), not mkstemp's private 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chapter_markdown(chapter: Chapter, text: str, meta: dict) -> str:
    """Front matter (outline entry, model, seed, steps, time) then the text."""
    lines = ["---", f"chapter: {chapter.number}", f"outline: {json.dumps(chapter.entry, ensure_ascii=False)}"]
    lines += [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in meta.items()]
    return "\n".join(lines + ["---", "", text.strip(), ""])


def split_front_matter(markdown: str) -> tuple[str, str]:
    """(front matter block with the blank line after it, body) of a chapter file; ("", text) without one."""
    if markdown.startswith("---\n"):
        end = markdown.find("\n---\n", 4)
        if end >= 0:
            head_end = end + len("\n---\n")
            if markdown[head_end : head_end + 1] == "\n":
                head_end += 1
            return markdown[:head_end], markdown[head_end:]
    return "", markdown


class BookProgress:
    """A rich progress bar for chapters (done, chapters/min, tokens/s, ETA) and the closing summary."""

    def __init__(self, total: int, already: int, *, console=None):
        import time

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console or Console(stderr=True)
        self.total, self.already = total, already
        self.tokens, self.done = 0, 0
        self.started = time.perf_counter()
        self._clock = time.perf_counter
        self.progress = Progress(TextColumn("[bold]chapters"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.console)
        self.task = self.progress.add_task("book", total=total, completed=already, rate="")
        self.progress.start()

    def chapter_done(self, tokens: int) -> None:
        self.done += 1
        self.tokens += tokens
        minutes = max(1e-9, self._clock() - self.started) / 60
        self.progress.update(self.task, advance=1,
                             rate=f"{self.done / minutes:.1f} ch/min · {self.tokens / (minutes * 60):,.0f} tok/s")

    def close(self) -> dict:
        self.progress.stop()
        seconds = max(1e-9, self._clock() - self.started)
        return {"chapters_written": self.done, "chapters_skipped": self.already, "tokens": self.tokens,
                "seconds": round(seconds, 2), "chapters_per_min": round(self.done / seconds * 60, 2),
                "tokens_per_s": round(self.tokens / seconds, 1)}


def pending_chapters(book: Book, outline: Outline, limit: int | None) -> list[Chapter]:
    """Chapters still to write (finished ones are skipped), after removing leftovers of killed runs."""
    book.output_dir.mkdir(parents=True, exist_ok=True)
    for leftover in book.output_dir.glob(".chapter-*.tmp"):
        leftover.unlink(missing_ok=True)
    done = book.finished()
    chapters = outline.chapters[:limit] if limit else outline.chapters
    return [c for c in chapters if c.number not in done]


async def generate_remote(book: Book, outline: Outline, url: str, *, token: str, parallel: int, length: int,
                          sampling, seed: int, limit: int | None = None) -> dict:
    """Book generation on a remote `airquill serve`: `parallel` requests in flight, each chapter written as
    soon as its `done` arrives."""
    import asyncio
    import time

    import msgspec

    from airquill.shared.client import AirquillClient

    todo = pending_chapters(book, outline, limit)
    total = len(outline.chapters[:limit] if limit else outline.chapters)
    progress = BookProgress(total, total - len(todo))
    queue: asyncio.Queue = asyncio.Queue()
    for chapter in todo:
        queue.put_nowait(chapter)
    async with AirquillClient(url, token=token, reconnect=False) as client:
        model = client.welcome.capabilities.model

        async def worker() -> None:
            while not queue.empty():
                chapter = queue.get_nowait()
                chapter_sampling = msgspec.structs.replace(sampling, seed=seed + chapter.number)
                started = time.perf_counter()
                stream = await client.generate(chapter.entry, length, panel_id=f"chapter-{chapter.number}",
                                               sampling=chapter_sampling)
                done = await stream.result()
                meta = {"model": model, "seed": seed + chapter.number, "steps": done.stats.steps,
                        "ms": round((time.perf_counter() - started) * 1000, 1), "tokens": done.stats.tokens,
                        "server": url}
                write_atomic(book.chapter_path(chapter.number), chapter_markdown(chapter, done.text, meta))
                progress.chapter_done(done.stats.tokens)

        try:
            await asyncio.gather(*(worker() for _ in range(min(parallel, len(todo)) or 1)))
        finally:
            summary = progress.close()
    return summary
