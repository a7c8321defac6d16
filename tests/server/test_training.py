"""`airquill train`: a few steps on a tiny corpus, killed with SIGKILL, resumed with the same data order."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TINY = ["--vocab-size", "300", "--hidden", "32", "--layers", "2", "--heads", "2", "--intermediate", "64",
        "--seq-len", "32", "--batch-size", "4", "--warmup", "5", "--eval-every", "40", "--threads", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    texts = ["In the beginning God created the heaven and the earth. " * 6,
             "And the earth was without form, and void. " * 8,
             "В начале сотворил Бог небо и землю. " * 5]
    for i, text in enumerate(texts * 3):
        (root / f"chapter-{i:02d}.md").write_text(text, encoding="utf-8")
    return root


def _train(corpus, out, tokens, family="masked", checkpoint_every=1):
    return [sys.executable, "-m", "airquill", "train", str(corpus), "--out", str(out), "--family", family,
            "--tokens", str(tokens), "--checkpoint-every", str(checkpoint_every), *TINY]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


@pytest.mark.parametrize("family", ["masked", "ar"])
def test_killed_training_resumes_with_the_same_data_order(corpus, tmp_path, family):
    steps = 60
    tokens = steps * 4 * 32
    straight = tmp_path / "straight"
    subprocess.run(_train(corpus, straight, tokens, family), check=True, capture_output=True)

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(_train(corpus, resumed, tokens, family), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = resumed / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(checkpoint, weights_only=False)
    assert 0 < state["step"] < steps, "the kill must land mid-run"
    assert not (resumed / "model").exists()
    subprocess.run(_train(corpus, resumed, tokens, family), check=True, capture_output=True)

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_result_loads_through_transformers_and_samples(corpus, tmp_path):
    from airquill.server.models.loader import load_adapter
    from airquill.server.sampling.drivers import denoise
    from airquill.server.sampling.masked import MaskedDenoiser
    from airquill.server.sampling.options import SamplingOptions

    out = tmp_path / "model-run"
    subprocess.run(_train(corpus, out, 10 * 4 * 32, checkpoint_every=5), check=True, capture_output=True)
    adapter = load_adapter(str(out / "model"))
    state = MaskedDenoiser.for_generation(adapter, "In the beginning", 16, SamplingOptions(steps=4))
    assert denoise(adapter, state).is_final and adapter.mask_id not in state.output_ids


def test_bad_training_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "airquill", "train", str(empty), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no .txt or .md files" in result.stderr
