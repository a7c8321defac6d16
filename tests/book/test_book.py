"""Book mode with the shipped model: parallel generation into files, resume after kill -9, fine-tuning,
outline errors, and the same through a real server on loopback."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airquill.shared.book import Book, OutlineError, parse_outline

OFFLINE = {"HF_HUB_OFFLINE": "1"}


def make_book(root: Path, chapters: int) -> Book:
    book = Book(root)
    book.init(title="Test")
    entries = "\n".join(f"{i}. And it came to pass on day {i}" for i in range(1, chapters + 1))
    book.outline_path.write_text(f"# Test\n\nStyle: plain.\n\n## Chapters\n\n{entries}\n", encoding="utf-8")
    return book


def airquill(*args: str, **kwargs) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "airquill", *args], capture_output=True, text=True,
                          env={**os.environ, **OFFLINE}, timeout=600, **kwargs)


def check_chapters(book: Book, count: int) -> None:
    files = sorted(book.output_dir.glob("chapter-*.md"))
    assert [f.name for f in files] == [f"chapter-{i:03d}.md" for i in range(1, count + 1)]
    assert not list(book.output_dir.glob(".*tmp"))
    for number, path in enumerate(files, start=1):
        text = path.read_text(encoding="utf-8")
        head, body = text.split("\n---\n", 1)
        assert f"chapter: {number}" in head and "outline: " in head and "seed: " in head and "steps: " in head
        assert body.strip()


def test_small_book_in_parallel(tmp_path):
    book = make_book(tmp_path / "book", 12)
    result = airquill("book", "generate", "--book", str(book.root), "--parallel", "4", "--length", "64",
                      "--steps", "16")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["chapters_written"] == 12
    check_chapters(book, 12)
    again = airquill("book", "generate", "--book", str(book.root), "--parallel", "4", "--length", "64")
    assert json.loads(again.stdout.strip().splitlines()[-1])["chapters_written"] == 0  # all skipped


def test_kill_9_mid_run_then_rerun(tmp_path):
    import os

    book = make_book(tmp_path / "book", 12)
    args = [sys.executable, "-m", "airquill", "book", "generate", "--book", str(book.root), "--parallel", "2",
            "--length", "96", "--steps", "48"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **OFFLINE})
    deadline = time.monotonic() + 300
    while len(book.finished()) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written_before = book.finished()
    assert 2 <= len(written_before) < 12, "the kill must land mid-run"
    result = airquill("book", "generate", "--book", str(book.root), "--parallel", "2", "--length", "96",
                      "--steps", "48")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["chapters_written"] == 12 - len(written_before)
    check_chapters(book, 12)


def test_finetune_then_generate_with_the_finetuned_model(tmp_path):
    book = make_book(tmp_path / "book", 2)
    for i in range(3):
        (book.chapters_dir / f"mine-{i}.md").write_text("The lighthouse keeper counted the waves. " * 20)
    tuned = airquill("book", "finetune", "--book", str(book.root), "--tokens", str(4 * 16 * 64), "--seq-len", "64",
                     "--batch-size", "16", "--threads", "1", "--eval-every", "2", "--checkpoint-every", "2")
    assert tuned.returncode == 0, tuned.stderr
    model = book.config()["model"]
    assert model and Path(model, "model.safetensors").exists()
    result = airquill("book", "generate", "--book", str(book.root), "--length", "32", "--steps", "8")
    assert result.returncode == 0, result.stderr
    head = book.chapter_path(1).read_text().split("\n---\n")[0]
    assert json.dumps(model) in head or model in head  # the chapter records the fine-tuned model


@pytest.mark.parametrize("text,line,message", [
    ("Title without hash\n", 1, "expected the title"),
    ("# T\n\n## Chapters\n1. one\n3. three\n", 5, "chapter 3 where chapter 2"),
    ("# T\n\n## Chapters\n1. one\nnot an entry\n", 5, "expected a chapter entry"),
    ("# T\nstyle only\n", 2, "no chapters"),
    ("", 1, "empty"),
])
def test_bad_outline_names_the_line(text, line, message):
    with pytest.raises(OutlineError, match=message) as err:
        parse_outline(text)
    assert err.value.line == line and f"line {line}" in str(err.value)


def test_outline_continuation_lines():
    outline = parse_outline("# Book\nStyle: terse.\n## Chapters\n1. first\n   and more\n2. second\n")
    assert outline.title == "Book" and outline.style == "Style: terse."
    assert [c.entry for c in outline.chapters] == ["first and more", "second"]


def test_bad_outline_through_the_command(tmp_path):
    book = make_book(tmp_path / "book", 1)
    book.outline_path.write_text("# T\n## Chapters\n1. a\n7. b\n")
    result = airquill("book", "generate", "--book", str(book.root))
    assert result.returncode == 2 and "outline.md line 4" in result.stderr


def test_book_against_a_remote_server(tmp_path):
    from airquill.demo import child_server

    book = make_book(tmp_path / "book", 6)
    with child_server() as (url, token):
        import os

        result = subprocess.run([sys.executable, "-m", "airquill", "book", "generate", "--book", str(book.root),
                                 "--server", url, "--parallel", "3", "--length", "48", "--steps", "12"],
                                capture_output=True, text=True, timeout=600,
                                env={**os.environ, **OFFLINE, "AIRQUILL_TOKEN": token})
    assert result.returncode == 0, result.stderr
    check_chapters(book, 6)
    assert f'server: "{url}"' in book.chapter_path(1).read_text()


def test_bench_book_runs_end_to_end(tmp_path):
    """A smoke run of `airquill bench book` with a small AR stand-in for the twin, at a threshold setting with its
    own block size (how a qualifying `bench sampler` setting is named): the JSON keys are there."""
    from transformers import AutoTokenizer

    from airquill.assets import MODELS
    from airquill.server.training.architecture import ModelShape, build_model

    tokenizer = AutoTokenizer.from_pretrained(str(MODELS / "kjv-masked"))
    build_model(ModelShape(hidden=32, layers=1, heads=2, intermediate=64), tokenizer, "ar", 8).save_pretrained(
        tmp_path / "ar")
    tokenizer.save_pretrained(tmp_path / "ar")
    result = airquill("bench", "book", "--json", "--chapters", "4", "--length", "16", "--steps", "4",
                      "--parallel", "1", "4", "--ar-model", str(tmp_path / "ar"), "--schedule", "threshold",
                      "--threshold", "0.7", "--block-size", "8")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in ("book_efficiency", "speedup_best", "chapters_per_min_best", "projection_999_minutes"):
        assert out[key] > 0
    assert set(out["rows"]) == {"1", "4"}
    assert out["setting"] == "threshold 0.7, block 8"


def test_book_mode_refuses_a_model_of_another_family(tmp_path):
    """The book runner drives the masked sampler; a uniform-noise or continuous model gets a clear error."""
    from airquill.server.book.runner import generate_local
    from airquill.server.sampling.options import SamplingOptions
    from airquill.shared.book import Chapter, Outline

    class Uniform:
        family, name = "uniform", "some-uniform-model"

    with pytest.raises(ValueError, match="some-uniform-model is a uniform model"):
        generate_local(Book(tmp_path), Outline("t", "", [Chapter(1, "In the beginning")]), Uniform(), parallel=1,
                       length=8, options=SamplingOptions())
