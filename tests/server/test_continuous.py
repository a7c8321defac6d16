"""The continuous family (DiffuSeq-style diffusion on embeddings): schedules, rounding, the DDIM sampler's
invariants on a tiny random model (real code, random weights) and on an oracle that knows the clean
embeddings, and a round trip through the real server on loopback."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from airquill.server.models.continuous import ContinuousAdapter
from airquill.server.sampling.continuous import (NOISE_SCHEDULES, SPACINGS, ContinuousDenoiser, ContinuousOptions,
                                                 adaptive_alpha_bar, alpha_bar, model_times, sampling_times)
from airquill.server.sampling.drivers import denoise, iter_denoise
from airquill.server.training.architecture import ModelShape, build_model
from airquill.shared.text_state import TextState

PROMPT = "In the beginning"
BLOCK = 8
OPTIONS = ContinuousOptions(steps=5, stop_at_eos=False)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    shape = ModelShape(hidden=32, layers=2, heads=2, intermediate=64, embedding_dim=16)
    return build_model(shape, tokenizer, "continuous", BLOCK, (BLOCK,), 128, diffusion_steps=200).eval()


@pytest.fixture(scope="module")
def adapter(model, tokenizer):
    return ContinuousAdapter(model, tokenizer, name="tiny-continuous")


class Oracle(ContinuousAdapter):
    """Predicts exactly the clean embeddings of fixed target tokens (a function of position only): DDIM with an
    exact x0 must land on those tokens, whatever the schedule and spacing."""

    def __init__(self, model, tokenizer, targets: torch.Tensor):
        super().__init__(model, tokenizer, name="oracle")
        self.targets = targets

    def forward(self, requests):
        self.forward_passes += 1
        return [self.embeddings(self.targets[r.canvas[0] : r.canvas[1]]) for r in requests]


@pytest.mark.parametrize("name", sorted(NOISE_SCHEDULES))
def test_noise_schedules_fall_from_clean_to_noise(name):
    abar = alpha_bar(name, 2000)
    assert abar[0] == 1.0 and len(abar) == 2001
    assert torch.all(abar[1:] < abar[:-1]) and 0 < abar[-1] < 0.01


@pytest.mark.parametrize("spacing", sorted(SPACINGS))
@pytest.mark.parametrize("steps", [1, 2, 8, 40, 2000])
def test_sampling_times_are_distinct_and_descend_from_t(spacing, steps):
    times = sampling_times(spacing, steps, 2000)
    assert times[0] == 2000 and len(times) == steps and all(a > b >= 1 for a, b in zip(times, times[1:]))


@pytest.mark.parametrize("name", sorted(NOISE_SCHEDULES))
def test_model_times_invert_the_training_schedule(name):
    trained = alpha_bar(name, 500)
    t = torch.tensor([0, 1, 7, 250, 499, 500])
    assert torch.allclose(model_times(trained[t], trained), t.double(), atol=1e-6)
    # another schedule's level maps to the training time with that level
    other = alpha_bar("cosine" if name != "cosine" else "linear", 500)[100]
    assert torch.isclose(trained[int(model_times(other[None], trained).round())], other, rtol=0.05)


def test_adaptive_schedule_evens_out_each_positions_loss():
    trained = alpha_bar("sqrt", 400)
    buckets = 10
    centres = (torch.arange(buckets) + 0.5) / buckets
    linear = centres.expand(3, -1)  # loss already rises linearly with t: keep the training schedule
    adaptive = adaptive_alpha_bar(linear, trained)
    inner = slice(30, 371)  # inside the first and last bucket centres
    assert torch.allclose(adaptive[:, inner], trained[inner].expand(3, -1), atol=1e-3)
    early = torch.stack([centres.sqrt(), centres ** 2])  # one position gets hard early, one late
    adaptive = adaptive_alpha_bar(early, trained)
    assert torch.all(adaptive[:, 0] == 1) and torch.all(adaptive[:, 1:] <= adaptive[:, :-1])
    assert adaptive[0, 200] > trained[200] > adaptive[1, 200]  # less noise where loss rises early


def test_adaptive_schedule_needs_recorded_losses(adapter):
    with pytest.raises(ValueError, match="no recorded training losses"):
        ContinuousDenoiser.for_generation(adapter, PROMPT, BLOCK, ContinuousOptions(noise_schedule="adaptive"))


def test_rounding_maps_each_embedding_to_its_own_token(adapter, tokenizer):
    table = adapter.model.embed.weight.detach()
    assert torch.equal(adapter.rounding_logits(table).argmax(-1), torch.arange(len(tokenizer)))


@pytest.mark.parametrize("spacing", sorted(SPACINGS))
@pytest.mark.parametrize("schedule", sorted(NOISE_SCHEDULES))
def test_an_exact_denoiser_lands_on_its_tokens(model, tokenizer, spacing, schedule):
    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    targets = ordinary[torch.randperm(len(ordinary), generator=torch.Generator().manual_seed(3))[:64]]
    oracle = Oracle(model, tokenizer, targets)  # by absolute position; the prompt's part is never asked for
    for clamp in (True, False):
        options = ContinuousOptions(steps=6, spacing=spacing, noise_schedule=schedule, clamp=clamp,
                                    stop_at_eos=False)
        state = ContinuousDenoiser.for_generation(oracle, PROMPT, 2 * BLOCK, options)
        denoise(oracle, state)
        start = state.output_start
        assert state.output_ids == oracle.targets[start : start + 2 * BLOCK].tolist()


def test_sampler_invariants(adapter):
    state = ContinuousDenoiser.for_generation(adapter, PROMPT, 2 * BLOCK + 3, OPTIONS)
    prefix = state.ids[: state.output_start].clone()
    panel = TextState()
    panel.apply(state.initial_step())
    assert all(cell.noise == 1.0 for cell in panel.cells)  # blank noise before the first step
    trace = []
    for step in iter_denoise(adapter, state):
        panel.apply(step)
        trace.append(step)
        assert torch.equal(state.ids[: state.output_start], prefix)  # the prompt is never touched
        assert all(c.noise < 1 for c in step.changes)  # once a canvas starts, its positions show tokens
    assert len(trace) == trace[0].total == 3 * OPTIONS.steps  # three canvases, five steps each
    blurred = [c.noise for s in trace for c in s.changes if 0 < c.noise < 1]
    assert len(blurred) >= 2 * BLOCK + 3  # every output position is shown blurred before it settles
    assert panel.finished and panel.text == state.text and [c.token_id for c in panel.cells] == state.output_ids
    assert all(cell.noise == 0.0 for cell in panel.cells) and len(state.output_ids) == 2 * BLOCK + 3
    again = ContinuousDenoiser.for_generation(adapter, PROMPT, 2 * BLOCK + 3, OPTIONS)
    denoise(adapter, again)
    assert again.output_ids == state.output_ids  # reproducible with a seed


def test_prefix_cache_gives_what_recomputation_gives(adapter):
    cached = ContinuousDenoiser.for_generation(adapter, PROMPT, 3 * BLOCK, OPTIONS)
    recomputed = ContinuousDenoiser.for_generation(adapter, PROMPT, 3 * BLOCK, replace(OPTIONS, prefix_cache=False))
    denoise(adapter, cached)
    denoise(adapter, recomputed)
    assert cached.output_ids == recomputed.output_ids


def test_cancel_ends_within_one_step(adapter, cancel_after):
    state = ContinuousDenoiser.for_generation(adapter, PROMPT, 2 * BLOCK, OPTIONS)
    seen = cancel_after(adapter, state, 1)
    assert len(seen) == 2 and seen[-1].finish == "cancelled" and state.done


def test_scheduler_batches_equal_one_by_one(adapter, batched_equals_one_by_one):
    prompts = ["In the beginning", "And the earth was without form", "Привет, мир!"]
    options = [replace(OPTIONS, seed=i, steps=s) for i, s in enumerate([3, 5, 4])]
    batched_equals_one_by_one(adapter, lambda: [ContinuousDenoiser.for_generation(adapter, p, 2 * BLOCK, o)
                                                for p, o in zip(prompts, options)])


def test_bad_options_raise_clear_errors(adapter):
    with pytest.raises(ValueError, match="unknown spacing"):
        ContinuousDenoiser.for_generation(adapter, PROMPT, BLOCK, ContinuousOptions(spacing="fibonacci"))
    with pytest.raises(ValueError, match="unknown noise schedule"):
        ContinuousDenoiser.for_generation(adapter, PROMPT, BLOCK, ContinuousOptions(noise_schedule="exp"))
    with pytest.raises(ValueError, match="steps must be at least 1"):
        ContinuousDenoiser.for_generation(adapter, PROMPT, BLOCK, ContinuousOptions(steps=0))


def test_served_through_load_adapter_and_the_real_server(model, tokenizer, tmp_path, stream_once):
    """`load_adapter(<folder>)` picks the continuous adapter by model type, and the real WebSocket server on
    loopback streams every step: blurred tokens (0 < noise < 1) sharpen into the final text, which equals `done`."""
    from airquill.server.models.loader import load_adapter
    from airquill.shared.protocol import Sampling

    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = load_adapter(str(tmp_path), device="cpu")
    assert isinstance(loaded, ContinuousAdapter) and loaded.family == "continuous"

    capabilities, steps, done, state = stream_once(loaded, PROMPT, 2 * BLOCK, Sampling(steps=4, seed=3))
    assert capabilities.families == ["continuous"]
    assert any(0 < c.noise < 1 for s in steps for c in s.changes)  # blurred tokens on the way
    assert steps[-1].is_final and state.text == done.text and all(cell.noise == 0.0 for cell in state.cells)
    assert len(steps) <= 1 + 2 * 4  # four steps per canvas, two canvases (the relay may merge some)
