"""Reading a training corpus: a folder (or file) of .txt/.md/.txt.gz documents, split into train and held-out."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".txt", ".md", ".txt.gz", ".md.gz")


@dataclass(frozen=True)
class Corpus:
    train: list[str]
    heldout: list[str]


def read_text(path: Path) -> str:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def documents(source: Path) -> list[str]:
    """Every document under `source`. A file holding blank-line separated chapters yields one per chapter."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"corpus not found: {source}")
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)
    )
    if not files:
        raise ValueError(f"no .txt or .md files under {source}")
    docs: list[str] = []
    for path in files:
        text = read_text(path).strip()
        if not text:
            continue
        parts = [part.strip() for part in text.split("\n\n") if part.strip()] if len(files) == 1 else [text]
        docs.extend(parts)
    if not docs:
        raise ValueError(f"the corpus at {source} holds no text")
    return docs


def split(docs: list[str], heldout_every: int = 50) -> Corpus:
    """Every `heldout_every`-th document is held out (same style as the training text), at least one."""
    if len(docs) < 2:
        return Corpus(train=docs, heldout=docs)
    held = [d for i, d in enumerate(docs) if i % heldout_every == heldout_every - 1] or [docs[-1]]
    train = [d for i, d in enumerate(docs) if i % heldout_every != heldout_every - 1] if len(held) < len(docs) else docs
    return Corpus(train=train or docs, heldout=held)


def load_corpus(source: Path, heldout_every: int = 50) -> Corpus:
    return split(documents(source), heldout_every)
