"""`airquill train`: a few steps on a tiny corpus, killed with SIGKILL, resumed with the same data order; the
uniform family's training view of a canvas equals what the sampler computes for it."""
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


def _train(corpus, out, tokens, family="masked", checkpoint_every=1, *extra):
    experts = ["--expert-intermediate", "16"] if family == "uniform" else []
    return [sys.executable, "-m", "airquill", "train", str(corpus), "--out", str(out), "--family", family,
            "--tokens", str(tokens), "--checkpoint-every", str(checkpoint_every), *TINY, *experts, *extra]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


@pytest.mark.parametrize("family", ["masked", "ar", "uniform", "continuous"])
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
    # the device is not part of the recipe: a run may resume on another one (here named, the same CPU)
    subprocess.run(_train(corpus, resumed, tokens, family, 1, "--device", "cpu"), check=True, capture_output=True)

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_a_run_can_be_extended_but_not_changed(corpus, tmp_path):
    """A finished or interrupted run resumes under a new token budget (the card says where it changed); any
    other change to what is trained is refused, and the checkpoint is left as it was."""
    import json

    out = tmp_path / "run"
    subprocess.run(_train(corpus, out, 8 * 4 * 32, "masked", 4), check=True, capture_output=True)
    extended = subprocess.run(_train(corpus, out, 12 * 4 * 32, "masked", 4), check=True, capture_output=True,
                              text=True)
    assert "token budget changed at step 8" in extended.stderr
    stats = json.loads((out / "model" / "training.json").read_text())
    assert stats["steps"] == 12 and stats["budget_changes"] == [{"step": 8, "from": 1024, "to": 1536}]
    assert "budget changed at step 8 from 1,024 to 1,536" in (out / "model" / "README.md").read_text()

    before = (out / "checkpoint.pt").read_bytes()
    refused = subprocess.run(_train(corpus, out, 12 * 4 * 32, "masked", 4, "--lr", "0.002"), capture_output=True,
                             text=True)
    assert refused.returncode != 0 and "written with different settings" in refused.stderr
    assert (out / "checkpoint.pt").read_bytes() == before


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


def test_a_masked_model_starts_from_its_autoregressive_twin(corpus, tmp_path):
    """`--family masked --init-from AR` adapts the AR model: one step on, its weights are the twin's, give or take
    that step (a model trained from scratch with another seed is nowhere near); the config says masked, the card
    says where it started, the sampler runs it, and the adapted run resumes. Any other family mismatch is
    refused."""
    import json

    from airquill.server.models.loader import load_adapter
    from airquill.server.sampling.drivers import denoise
    from airquill.server.sampling.masked import MaskedDenoiser
    from airquill.server.sampling.options import SamplingOptions

    twin = tmp_path / "ar"
    subprocess.run(_train(corpus, twin, 6 * 4 * 32, "ar", 6, "--seed", "7"), check=True, capture_output=True)
    adapted, scratch = tmp_path / "adapted", tmp_path / "scratch"
    done = subprocess.run(_train(corpus, adapted, 1 * 4 * 32, "masked", 1, "--init-from", str(twin / "model")),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    subprocess.run(_train(corpus, scratch, 1 * 4 * 32, "masked", 1), check=True, capture_output=True)
    start, after, fresh = _weights(twin), _weights(adapted), _weights(scratch)
    assert start.keys() == after.keys()
    assert max(float((after[k].float() - start[k].float()).abs().max()) for k in start) < 5e-3
    assert max(float((fresh[k].float() - start[k].float()).abs().max()) for k in start) > 5e-2

    config = json.loads((adapted / "model" / "config.json").read_text())
    assert config["airquill_family"] == "masked" and config["airquill_block_sizes"] and config["mask_token_id"] >= 0
    assert "`: a model of the 'ar' family, adapted" in (adapted / "model" / "README.md").read_text()
    adapter = load_adapter(str(adapted / "model"))
    state = MaskedDenoiser.for_generation(adapter, "In the beginning", 16, SamplingOptions(steps=4))
    assert denoise(adapter, state).is_final and adapter.mask_id not in state.output_ids

    resumed = subprocess.run(_train(corpus, adapted, 3 * 4 * 32, "masked", 1, "--init-from", str(twin / "model")),
                             capture_output=True, text=True)
    assert resumed.returncode == 0 and "budget changed at step 1" in resumed.stderr
    assert json.loads((adapted / "model" / "training.json").read_text())["adapted_from"] == "ar"

    refused = subprocess.run(_train(corpus, tmp_path / "no", 4 * 32, "ar", 1, "--init-from", str(adapted / "model")),
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "is a 'masked' model; --init-from needs a model of the 'ar' family" in refused.stderr


@pytest.mark.parametrize("noise", ["uniform", "absorbing"])
def test_uniform_family_trains_and_samples_through_the_diffusion_gemma_adapter(corpus, tmp_path, noise):
    from airquill.server.models.diffusion_gemma import DiffusionGemmaAdapter
    from airquill.server.models.loader import load_adapter
    from airquill.server.sampling.drivers import denoise
    from airquill.server.sampling.uniform import UniformDenoiser, UniformOptions

    out = tmp_path / "uniform-run"
    done = subprocess.run(_train(corpus, out, 10 * 4 * 32, "uniform", 5, "--noise", noise), capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    card = (out / "model" / "README.md").read_text()
    assert "DiffusionGemma" in card and "## Samples" in card
    assert ("**absorbing noise**" in card) == (noise == "absorbing")
    adapter = load_adapter(str(out / "model"))
    assert isinstance(adapter, DiffusionGemmaAdapter) and adapter.family == "uniform"
    assert adapter.noise == noise  # recorded in the config: the sampler noises as the model was trained
    state = UniformDenoiser.for_generation(adapter, "In the beginning", 12, UniformOptions(max_steps=3))
    if noise == "absorbing":
        assert set(state.output_ids) == {adapter.mask_id}
    assert denoise(adapter, state).is_final and 0 < len(state.output_ids) <= 12
    assert adapter.mask_id not in state.output_ids


def test_continuous_family_trains_and_samples(corpus, tmp_path):
    from airquill.server.models.continuous import ContinuousAdapter
    from airquill.server.models.loader import load_adapter
    from airquill.server.sampling.continuous import ContinuousDenoiser, ContinuousOptions
    from airquill.server.sampling.drivers import denoise

    out = tmp_path / "continuous-run"
    done = subprocess.run(_train(corpus, out, 10 * 4 * 32, "continuous", 5, "--embedding-dim", "16",
                                 "--noise-schedule", "cosine", "--diffusion-steps", "500"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    card = (out / "model" / "README.md").read_text()
    assert "DiffuSeq" in card and "T = 500, cosine noise schedule" in card
    adapter = load_adapter(str(out / "model"))
    assert isinstance(adapter, ContinuousAdapter) and adapter.diffusion_steps == 500
    assert adapter.loss_table is not None and adapter.loss_table.shape == (32, 20)  # for the adaptive schedule
    for schedule in ("adaptive", "sqrt"):
        options = ContinuousOptions(steps=3, noise_schedule=schedule)
        state = ContinuousDenoiser.for_generation(adapter, "In the beginning", 12, options)
        assert denoise(adapter, state).is_final and 0 < len(state.output_ids) <= 12


def test_uniform_training_view_of_each_canvas_equals_the_samplers(tokenizer):
    """One training pass decodes every canvas of a window under the block mask; each canvas's logits must equal
    the adapter's sampling pass over the same canvas after the same clean prefix (encoded on its own)."""
    from airquill.server.models.base import ForwardRequest
    from airquill.server.models.diffusion_gemma import DiffusionGemmaAdapter
    from airquill.server.training.architecture import ModelShape, build_model
    from airquill.server.training.objectives import canvas_masks
    from transformers import DynamicCache

    torch.manual_seed(0)
    shape = ModelShape(hidden=32, layers=2, heads=2, intermediate=64, expert_intermediate=16)
    canvas, length = 8, 32
    model = build_model(shape, tokenizer, "uniform", canvas, context=length).eval()
    adapter = DiffusionGemmaAdapter(model, tokenizer, name="tiny")
    generator = torch.Generator().manual_seed(1)
    clean = torch.randint(5, len(tokenizer), (2, length), generator=generator)
    noisy = torch.randint(5, len(tokenizer), (2, length), generator=generator)
    positions = torch.arange(length)[None].expand(2, -1)
    cache = DynamicCache(config=model.config.get_text_config())
    with torch.no_grad():
        model.model.encoder(input_ids=clean, cache=cache, position_ids=positions)
        trained = model(decoder_input_ids=noisy, cache=cache, decoder_position_ids=positions,
                        decoder_attention_mask=canvas_masks(model.config.get_text_config(), 2, length, canvas)).logits
    for row in range(2):
        for start in range(canvas, length, canvas):  # the first canvas has no prefix, which sampling never has
            ids = torch.cat([clean[row, :start], noisy[row, start:start + canvas]])
            (sampled,) = adapter.forward([ForwardRequest(ids=ids, canvas=(start, start + canvas), block_size=canvas)])
            assert torch.allclose(sampled, trained[row, start:start + canvas], atol=1e-4), (row, start)


def test_bad_training_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "airquill", "train", str(empty), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no .txt or .md files" in result.stderr
