"""Uniform-noise sampler invariants on a tiny deterministic denoiser whose canvases converge (TinyUniform)."""
from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter, PrefixCache
from airquill.server.sampling.drivers import Scheduler, denoise, iter_denoise
from airquill.server.sampling.masked import Span
from airquill.server.sampling.uniform import (
    ACCEPTANCE,
    PROVISIONAL_NOISE,
    ConfidenceThreshold,
    EntropyBound,
    FixedCount,
    UniformDenoiser,
    UniformOptions,
    make_acceptance,
)
from airquill.server.sampling.canvas import plan_canvases
from airquill.shared.text_state import TextState

PROMPT = "In the beginning"
NO_EARLY_STOP = {"stop_entropy": 0.0}


class TinyUniform(ModelAdapter):
    """Logits pull each canvas position towards a target token fixed by (position, the clean prefix), more
    sharply the more of the canvas already shows its targets and once self-conditioning is passed: a denoiser
    whose canvases converge. Computed per request, so a batch gives exactly what one-by-one runs give."""

    family = "uniform"
    self_conditioning = True

    def __init__(self, tokenizer, *, canvas_length: int = 8, max_length: int = 512, eos_at: int | None = None):
        self.tokenizer, self.name = tokenizer, "tiny-uniform"
        self.mask_id = tokenizer.mask_token_id
        self.max_length, self.canvas_length = max_length, canvas_length
        self.default_block_size = self.widest_block_size = canvas_length
        self.device = torch.device("cpu")
        self.eos_at = eos_at  # document position whose target is the end-of-text token
        self.calls: list[int] = []  # batch size of every forward pass
        self.conditioned: list[bool] = []  # whether each request came with self-conditioning
        vocab = len(tokenizer)
        special = set(tokenizer.all_special_ids)
        self.ordinary = torch.tensor([i for i in range(vocab) if i not in special])
        self.bias = torch.zeros(vocab, dtype=torch.float64)
        self.bias[sorted(special - {tokenizer.eos_token_id})] = -1e4

    def new_cache(self):
        return PrefixCache()

    def forward(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        self.calls.append(len(requests))
        vocab = len(self.tokenizer)
        out = []
        for r in requests:
            start, end = r.canvas
            if r.cache is not None:
                assert r.cache.length <= start
                r.cache.length = start
            previous = getattr(r, "self_conditioning", None)
            self.conditioned.append(previous is not None)
            context = int(r.ids[:start].sum()) % 97
            pos = torch.arange(start, end)
            target = self.ordinary[(pos * 31 + context * 7) % len(self.ordinary)]
            if self.eos_at is not None and start <= self.eos_at < end:
                target[self.eos_at - start] = self.tokenizer.eos_token_id
            agree = float((r.ids[start:end] == target).double().mean())
            sharp = 2.0 + 10.0 * agree + (2.0 if previous is not None else 0.0)
            v = torch.arange(vocab, dtype=torch.float64)[None, :]
            logits = 2 * torch.sin(v * 0.731 + pos[:, None] * 1.37 + context * 0.11) + self.bias
            logits[torch.arange(end - start), target] += 3 * sharp
            out.append(logits.float())
        return out


@pytest.fixture()
def tiny(tokenizer):
    return TinyUniform(tokenizer)


def run(model, options, length=20, prompt=PROMPT):
    state = UniformDenoiser.for_generation(model, prompt, length, options)
    return state, list(iter_denoise(model, state))


def test_acceptance_rules_come_from_a_registry():
    assert set(ACCEPTANCE) == {"entropy", "threshold", "count"}
    assert UniformOptions(acceptance="entropy", entropy_bound=0.3).acceptance_rule() == EntropyBound(0.3)
    assert UniformOptions(acceptance="threshold", threshold=0.7).acceptance_rule() == ConfidenceThreshold(0.7)
    assert UniformOptions(acceptance="count", per_step=5).acceptance_rule() == FixedCount(5)
    with pytest.raises(ValueError, match="unknown acceptance rule"):
        make_acceptance("sticky")
    for bad in ({"max_steps": 0}, {"acceptance": "nope"}, {"temperature": -1}, {"final_temperature": -0.1},
                {"top_p": 0}, {"stop_entropy": -1}, {"per_step": 0}, {"canvas_length": 0}):
        with pytest.raises(ValueError):
            UniformOptions(**bad).validate()


def test_acceptance_rules_keep_what_they_promise():
    entropy = torch.tensor([0.5, 0.01, 0.2, 3.0, 0.02], dtype=torch.float64)
    confidence = torch.tensor([0.5, 0.99, 0.8, 0.1, 0.95], dtype=torch.float64)
    # sorted entropies 0.01, 0.02, 0.2, 0.5, 3.0: sums without the largest 0, .01, .03, .23, .73
    assert EntropyBound(0.1).accept(confidence, entropy, step=0, steps=4).tolist() == [False, True, True, False, True]
    assert EntropyBound(1e-9).accept(confidence, entropy, step=0, steps=4).sum() == 1  # always one
    assert ConfidenceThreshold(0.9).accept(confidence, entropy, step=0, steps=4).tolist() == [
        False, True, False, False, True]
    assert ConfidenceThreshold(0.999).accept(confidence, entropy, step=0, steps=4).tolist() == [
        False, True, False, False, False]
    counts = [int(FixedCount(2).accept(confidence, entropy, step=s, steps=4).sum()) for s in range(4)]
    assert counts == [2, 4, 5, 5]


def test_initial_canvas_and_renoising_never_use_special_ids(tokenizer, tiny):
    special = set(tokenizer.all_special_ids)
    for seed in range(3):
        state = UniformDenoiser.for_generation(tiny, PROMPT, 30, UniformOptions(seed=seed, max_steps=6,
                                                                               **NO_EARLY_STOP))
        assert not special & set(state.output_ids)
        assert all(c.noise == 1.0 for c in state.initial_step().changes)
        for _ in iter_denoise(tiny, state):
            random = [t for t, n in zip(state.output_ids, state.noise[state.output_start :].tolist()) if n == 1.0]
            assert not special & set(random)


@pytest.mark.parametrize("acceptance", ["entropy", "threshold", "count"])
@pytest.mark.parametrize("max_steps", [1, 3, 7])
def test_without_early_stop_every_canvas_takes_exactly_max_steps(tiny, acceptance, max_steps):
    options = UniformOptions(max_steps=max_steps, acceptance=acceptance, per_step=3, **NO_EARLY_STOP)
    state, trace = run(tiny, options, length=20)  # 3 canvases of 8
    assert len(trace) == 3 * max_steps == trace[0].total == trace[-1].total
    assert [s.index for s in trace] == list(range(1, len(trace) + 1))
    assert trace[-1].is_final and not any(s.is_final for s in trace[:-1])
    assert len(state.output_ids) == 20 and all(s.length == 20 for s in trace)


def test_adaptive_stop_ends_canvases_early(tiny):
    state, trace = run(tiny, UniformOptions(max_steps=40, stability_steps=2), length=24)
    assert len(trace) < trace[0].total == 3 * 40
    assert len(trace) >= 3 * 3  # stability over 2 previous steps needs at least 3 steps per canvas
    assert trace[-1].is_final


def test_prefix_and_final_canvases_never_change(tiny):
    state = UniformDenoiser.for_generation(tiny, PROMPT, 30, UniformOptions(temperature=1.0, seed=3))
    prefix = state.ids[: state.output_start].clone()
    settled: dict[int, int] = {}
    for step in iter_denoise(tiny, state):
        assert torch.equal(state.ids[: state.output_start], prefix)
        for change in step.changes:  # a settled token's string may still change: a character ending in it arrives
            if change.position in settled:
                assert (change.token_id, change.noise) == (settled[change.position], 0.0), "a settled token changed"
        for pos, (token, noise) in enumerate(zip(state.output_ids, state.noise[state.output_start :].tolist())):
            if noise == 0.0:
                assert settled.setdefault(pos, token) == token
            else:
                assert pos >= state.canvas()[0] - state.output_start  # only the current canvas and later ones
    assert len(settled) == 30


def test_noise_levels_say_random_provisional_or_final(tiny):
    state = UniformDenoiser.for_generation(tiny, PROMPT, 16, UniformOptions(max_steps=6, **NO_EARLY_STOP))
    panel = TextState()
    panel.apply(state.initial_step())
    provisional_seen = False
    for step in iter_denoise(tiny, state):
        panel.apply(step)
        start = state.canvas()[0] - state.output_start if not state.done else 16
        levels = [cell.noise for cell in panel.cells]
        assert set(levels) <= {0.0, PROVISIONAL_NOISE, 1.0}
        assert all(n == 0.0 for n in levels[:start])
        assert all(n == 1.0 for n in levels[start + 8 :])  # later canvases: still their random start
        provisional_seen |= PROVISIONAL_NOISE in levels
    assert provisional_seen and panel.settled == 16


def test_a_model_trained_with_absorbing_noise_starts_and_renoises_with_its_mask(tokenizer):
    """`airquill train --noise absorbing` (the comparison) records the noise in the config; the adapter carries it
    and the sampler then noises free positions with the mask, shown as blanks, and never proposes the mask."""
    model = TinyUniform(tokenizer)
    model.noise = "absorbing"
    mask = tokenizer.mask_token_id
    state = UniformDenoiser.for_generation(model, PROMPT, 16, UniformOptions(max_steps=6, seed=3, **NO_EARLY_STOP))
    first = state.initial_step()
    assert set(state.output_ids) == {mask} and {(c.text, c.noise) for c in first.changes} == {("", 1.0)}
    panel = TextState()
    panel.apply(first)
    noised_seen = 0
    for step in iter_denoise(model, state):
        panel.apply(step)
        out, noise = state.output_ids, state.noise[state.output_start :].tolist()
        noised = [(t, cell.text) for t, n, cell in zip(out, noise, panel.cells) if n == 1.0]
        assert all(t == mask and text == "" for t, text in noised)
        assert all(t != mask for t, n in zip(out, noise) if n < 1.0)
        noised_seen += len(noised)
    assert noised_seen > 0 and panel.finished and mask not in state.output_ids
    assert panel.text == state.text == state.display.decode(state.output_ids)


def test_fixed_count_shows_a_growing_share_of_proposals(tiny):
    state = UniformDenoiser.for_generation(tiny, PROMPT, 8, UniformOptions(acceptance="count", per_step=3,
                                                                          max_steps=5, **NO_EARLY_STOP))
    shown = []
    for _ in iter_denoise(tiny, state):
        shown.append(int((state.noise[state.output_start :] == PROVISIONAL_NOISE).sum()))
    assert shown == [3, 6, 8, 8, 0]  # the last step makes the canvas final


def test_every_step_lists_exactly_what_changed(tiny):
    """Applying only the changes keeps a panel equal to the sampler's full state at every step."""
    state = UniformDenoiser.for_generation(tiny, PROMPT, 20, UniformOptions(temperature=1.0, seed=5))
    panel = TextState()
    panel.apply(state.initial_step())
    for step in iter_denoise(tiny, state):
        panel.apply(step)
        strings, ids, noise = state._display()
        assert [c.token_id for c in panel.cells] == ids
        assert [c.text for c in panel.cells] == strings
        assert [c.noise for c in panel.cells] == noise


def test_last_step_equals_drained_result(tiny):
    options = UniformOptions(seed=1, temperature=0.9)
    state = UniformDenoiser.for_generation(tiny, PROMPT, 30, options)
    panel = TextState()
    panel.apply(state.initial_step())
    for step in iter_denoise(tiny, state):
        panel.apply(step)
    assert panel.finished and panel.text == state.text
    assert [c.token_id for c in panel.cells] == state.output_ids
    assert panel.text == state.display.decode(state.output_ids)  # nothing random left
    again = UniformDenoiser.for_generation(tiny, PROMPT, 30, options)
    assert denoise(tiny, again).is_final and again.output_ids == state.output_ids and again.text == state.text


def test_reproducible_with_a_seed(make_tiny_uniform):
    def result(seed):
        model = make_tiny_uniform()
        return run(model, UniformOptions(seed=seed, temperature=1.0), length=24)[0].output_ids

    assert result(7) == result(7)
    first = UniformDenoiser.for_generation(make_tiny_uniform(), PROMPT, 24, UniformOptions(seed=1))
    second = UniformDenoiser.for_generation(make_tiny_uniform(), PROMPT, 24, UniformOptions(seed=2))
    assert first.output_ids != second.output_ids  # different random canvases


def test_cancel_stops_within_one_step(tiny, cancel_after):
    state = UniformDenoiser.for_generation(tiny, PROMPT, 40, UniformOptions(max_steps=10, **NO_EARLY_STOP))
    seen = cancel_after(tiny, state, 5)
    assert len(seen) == 6 and seen[-1].finish.value == "cancelled"
    assert len(tiny.calls) == 5  # no forward pass after the cancel


def test_scheduler_batches_equal_one_by_one(make_tiny_uniform):
    prompts = ["In the beginning", "And the earth", "Привет, мир", "日本語", "🙂 emoji"]
    rules = ["entropy", "threshold", "count", "entropy", "threshold"]
    settings = zip([0.9, 0.0, 1.2, 0.5, 0.8], rules, [6, 9, 4, 12, 7])
    options = [UniformOptions(seed=i, temperature=t, acceptance=a, max_steps=m, per_step=2)
               for i, (t, a, m) in enumerate(settings)]
    batched_model = make_tiny_uniform()
    scheduler = Scheduler(batched_model, max_batch=3)
    batched = [scheduler.submit(UniformDenoiser.for_generation(batched_model, p, 10 + 3 * i, o))
               for i, (p, o) in enumerate(zip(prompts, options))]
    steps = {id(s): 0 for s in batched}
    for state, _ in scheduler.run():
        steps[id(state)] += 1
    assert max(batched_model.calls) == 3  # really batched
    for i, (p, o) in enumerate(zip(prompts, options)):
        single_model = make_tiny_uniform()
        single = UniformDenoiser.for_generation(single_model, p, 10 + 3 * i, o)
        trace = list(iter_denoise(single_model, single))
        assert single.output_ids == batched[i].output_ids
        assert steps[id(batched[i])] == len(trace)


def test_self_conditioning_starts_afresh_with_every_canvas(tiny):
    state, trace = run(tiny, UniformOptions(max_steps=3, **NO_EARLY_STOP), length=16)
    assert tiny.conditioned == [False, True, True] * 2


def test_self_conditioning_is_not_kept_for_models_without_it(tiny):
    tiny.self_conditioning = False
    run(tiny, UniformOptions(max_steps=3, **NO_EARLY_STOP), length=8)
    assert tiny.conditioned == [False] * 3


def test_greedy_self_conditioning_is_the_one_hot_of_the_best_guess(tiny):
    state = UniformDenoiser.for_generation(tiny, PROMPT, 8, UniformOptions(temperature=0.0, final_temperature=None))
    (logits,) = tiny.forward([state.next_forward()])
    state.advance(logits)
    sc = state.next_forward().self_conditioning
    assert torch.equal(sc.softmax(-1).argmax(-1), logits.argmax(-1))
    assert torch.equal(sc.softmax(-1).max(-1).values, torch.ones(8))


def test_temperature_schedule_is_linear_towards_the_final_temperature():
    options = UniformOptions(max_steps=4, temperature=0.8, final_temperature=0.4)
    assert [round(options.temperature_at(s), 6) for s in range(4)] == [0.8, 0.7, 0.6, 0.5]
    assert UniformOptions(temperature=0.3, final_temperature=None).temperature_at(10) == 0.3


def test_generation_stops_at_the_end_token(tokenizer):
    model = TinyUniform(tokenizer, eos_at=None)
    state = UniformDenoiser.for_generation(model, PROMPT, 24, UniformOptions(temperature=0.0))
    model.eos_at = state.output_start + 11  # in the second canvas
    trace = list(iter_denoise(model, state))
    assert len(state.output_ids) == 11 and trace[-1].length == 11 and trace[-1].is_final
    assert tokenizer.eos_token_id not in state.output_ids
    assert model.calls and state.canvas_index == 2  # the third canvas was never computed


def test_length_need_not_fill_the_last_canvas(tiny):
    state, trace = run(tiny, UniformOptions(), length=13)
    assert len(state.output_ids) == 13 and trace[-1].length == 13
    assert not (state.noise[state.output_start :] != 0).any()


def test_the_prefix_cache_follows_the_canvases(tiny):
    state = UniformDenoiser.for_generation(tiny, PROMPT, 24, UniformOptions(max_steps=2, **NO_EARLY_STOP))
    starts = []
    while not state.done:
        request = state.next_forward()
        starts.append(request.canvas[0])
        assert request.cache is state.cache and request.ids.shape[0] == request.canvas[1]
        (logits,) = tiny.forward([request])
        state.advance(logits)
    first = state.output_start
    assert starts == [first, first, first + 8, first + 8, first + 16, first + 16]
    nocache = UniformDenoiser.for_generation(tiny, PROMPT, 8, UniformOptions(prefix_cache=False))
    assert nocache.next_forward().cache is None


def test_bad_requests_raise_clear_errors(tiny):
    with pytest.raises(ValueError, match="prompt is empty"):
        UniformDenoiser.for_generation(tiny, "  ", 8, UniformOptions())
    with pytest.raises(ValueError, match="length must be between"):
        UniformDenoiser.for_generation(tiny, PROMPT, 0, UniformOptions())
    with pytest.raises(ValueError, match="length must be between"):
        UniformDenoiser.for_generation(tiny, PROMPT, 10_000, UniformOptions())
    state = UniformDenoiser.for_generation(tiny, PROMPT, 8, UniformOptions())
    with pytest.raises(ValueError, match="expected logits for 8"):
        state.advance(torch.zeros(5, len(tiny.tokenizer)))


@pytest.mark.parametrize("text,span", [
    ("In the beginning God created the heaven and the earth.", (7, 16)),
    ("Привет, мир! Как дела? Всё хорошо.", (8, 12)),
    ("日本語のテキストと中文文本。", (3, 7)),
    ("Emoji too: 🙂🚀✨ and mixed text.", (11, 14)),
    ("Edge at the end", (12, 15)),
])
def test_infill_leaves_the_rest_byte_identical(tiny, text, span):
    start, end = span
    state = UniformDenoiser.for_infill(tiny, text, [Span(start, end)], UniformOptions(temperature=1.0, max_steps=4))
    context = state.ids[~state.free].clone()
    assert all(c.noise == (1.0 if state.free[i] else 0.0) for i, c in enumerate(state.initial_step().changes))
    trace = list(iter_denoise(tiny, state))
    assert torch.equal(state.ids[~state.free], context)  # fixed tokens inside canvases too
    assert state.text.encode().startswith(text[:start].encode())
    assert state.text.encode().endswith(text[end:].encode())
    assert trace[-1].is_final and len(trace) <= trace[0].total
    assert not (state.noise != 0).any()


def test_infill_canvases_start_at_each_span_and_carry_the_context_after_it(tiny):
    text = "one two three four five six seven eight nine ten eleven twelve"
    spans = [Span(4, 7, new_length=2), Span(14, 18, new_length=12), Span(len(text), len(text), new_length=3)]
    state = UniformDenoiser.for_infill(tiny, text, spans, UniformOptions(max_steps=3))
    free = state.free.nonzero().squeeze(-1).tolist()
    starts = [s for s, _ in state.canvases]
    assert starts[0] == free[0] and all(e - s <= 8 for s, e in state.canvases)
    assert set(free) <= {i for s, e in state.canvases for i in range(s, e)}  # every free position is refined
    assert state.canvases[-1][1] == len(state.ids)  # the empty span at the end: a canvas cut short by the text
    list(iter_denoise(tiny, state))
    assert " three " in state.text and " five six seven eight nine ten eleven twelve" in state.text


def test_plan_canvases():
    free = torch.tensor([False, True, True, False, False, True, True, True, True, True, False, True])
    assert plan_canvases(free, 4) == [(1, 5), (5, 9), (9, 12)]
    assert plan_canvases(free, 16) == [(1, 12)]


def test_infill_needs_context_before_the_first_span(tiny):
    with pytest.raises(ValueError, match="clean context before it"):
        UniformDenoiser.for_infill(tiny, "Edge at the start", [Span(0, 4)], UniformOptions())
    with pytest.raises(ValueError, match="overlaps the span before it"):
        UniformDenoiser.for_infill(tiny, "abcdef", [Span(1, 3), Span(2, 5)], UniformOptions())
    with pytest.raises(ValueError, match="no spans"):
        UniformDenoiser.for_infill(tiny, "abcdef", [], UniformOptions())


@pytest.fixture(scope="session")
def make_tiny_uniform(tokenizer):
    return lambda **options: TinyUniform(tokenizer, **options)
