"""Sampler invariants on a tiny deterministic model (see conftest.TinyDeterministic)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from airquill.server.sampling.drivers import Scheduler, denoise, iter_denoise
from airquill.server.sampling.masked import MaskedDenoiser, Span
from airquill.server.sampling.options import SamplingOptions

PROMPT = "In the beginning"


def run(tiny, options, length=24, prompt=PROMPT):
    state = MaskedDenoiser.for_generation(tiny, prompt, length, options)
    return state, list(iter_denoise(tiny, state))


@pytest.mark.parametrize("schedule", ["linear", "cosine", "random"])
@pytest.mark.parametrize("steps", [4, 7, 12, 24, 50])
def test_fixed_schedules_take_exactly_the_promised_steps(tiny, schedule, steps):
    state, trace = run(tiny, SamplingOptions(steps=steps, schedule=schedule), length=24)
    assert len(trace) == min(steps, 24) == trace[0].total == trace[-1].total
    assert [s.index for s in trace] == list(range(1, len(trace) + 1))
    assert trace[-1].is_final and not any(s.is_final for s in trace[:-1])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    schedule=st.sampled_from(["threshold", "entropy"]),
    min_per_step=st.integers(1, 4),
    max_per_step=st.integers(4, 12),
    threshold=st.floats(0.05, 0.95),
    bound=st.floats(0.1, 8.0),
    length=st.integers(1, 40),
    seed=st.integers(0, 1000),
)
def test_adaptive_schedules_respect_their_limits(make_tiny, schedule, min_per_step, max_per_step, threshold, bound,
                                                 length, seed):
    tiny = make_tiny()
    options = SamplingOptions(schedule=schedule, min_per_step=min_per_step, max_per_step=max_per_step,
                              threshold=threshold, entropy_bound=bound, seed=seed)
    state = MaskedDenoiser.for_generation(tiny, PROMPT, length, options)
    trace = []
    while not state.done:  # drive the state machine by hand to see each block's canvas
        request = state.next_forward()
        start, end = request.canvas
        before = state.ids.clone()
        block_left = int((before[start:end] == tiny.mask_id).sum())
        (logits,) = tiny.forward([request])
        trace.append(state.advance(logits))
        newly = int((state.ids != before).sum())
        assert min(min_per_step, block_left) <= newly <= max_per_step
    assert len(trace) <= trace[0].total
    assert tiny.mask_id not in state.output_ids


def test_committed_tokens_never_change_and_prompt_untouched(tiny):
    state = MaskedDenoiser.for_generation(tiny, PROMPT, 40, SamplingOptions(steps=20, temperature=1.0, seed=3))
    prompt_ids = state.ids[: state.output_start].clone()
    committed: dict[int, int] = {}
    for step in iter_denoise(tiny, state):
        assert torch.equal(state.ids[: state.output_start], prompt_ids)
        for pos, token in enumerate(state.output_ids):
            if token != tiny.mask_id:
                assert committed.setdefault(pos, token) == token
    assert tiny.mask_id not in state.output_ids
    assert len(committed) == 40


def test_last_step_equals_drained_result(tiny):
    from airquill.shared.text_state import TextState

    state = MaskedDenoiser.for_generation(tiny, PROMPT, 30, SamplingOptions(steps=10, seed=1))
    panel = TextState()
    panel.apply(state.initial_step())
    for step in iter_denoise(tiny, state):
        panel.apply(step)
    assert panel.finished and panel.text == state.text
    assert [c.token_id for c in panel.cells] == state.output_ids
    again = MaskedDenoiser.for_generation(tiny, PROMPT, 30, SamplingOptions(steps=10, seed=1))
    assert denoise(tiny, again).is_final and again.text == state.text


def test_cancel_stops_within_one_step(tiny, cancel_after):
    state = MaskedDenoiser.for_generation(tiny, PROMPT, 40, SamplingOptions(steps=40))
    seen = cancel_after(tiny, state, 5)
    assert len(seen) == 6 and seen[-1].finish.value == "cancelled"
    assert len(tiny.calls) == 5  # no forward pass after the cancel


def test_scheduler_batches_equal_one_by_one(make_tiny):
    prompts = ["In the beginning", "And the earth", "Привет, мир", "日本語", "🙂 emoji"]
    options = [SamplingOptions(steps=s, seed=i, temperature=0.9, schedule=sch)
               for i, (s, sch) in enumerate(zip([8, 12, 16, 9, 30], ["linear", "cosine", "threshold", "entropy", "random"]))]
    batched_model = make_tiny()
    scheduler = Scheduler(batched_model, max_batch=3)
    batched = [scheduler.submit(MaskedDenoiser.for_generation(batched_model, p, 20 + i, o))
               for i, (p, o) in enumerate(zip(prompts, options))]
    steps_per_request = {id(s): 0 for s in batched}
    for state, step in scheduler.run():
        steps_per_request[id(state)] += 1
    assert max(batched_model.calls) == 3  # really batched
    for i, (p, o) in enumerate(zip(prompts, options)):
        single_model = make_tiny()
        single = MaskedDenoiser.for_generation(single_model, p, 20 + i, o)
        trace = list(iter_denoise(single_model, single))
        assert single.output_ids == batched[i].output_ids
        assert steps_per_request[id(batched[i])] == len(trace)


def test_scheduler_cancel_frees_the_slot_next_tick(tiny):
    scheduler = Scheduler(tiny, max_batch=1)
    first = scheduler.submit(MaskedDenoiser.for_generation(tiny, PROMPT, 30, SamplingOptions(steps=30)))
    second = scheduler.submit(MaskedDenoiser.for_generation(tiny, PROMPT, 30, SamplingOptions(steps=30)))
    scheduler.tick()
    first.cancel()
    results = scheduler.tick()
    assert [(s is first, s is second, step.finish is not None) for s, step in results] == [(True, False, True), (False, True, False)]


@pytest.mark.parametrize("text,span", [
    ("In the beginning God created the heaven and the earth.", (7, 16)),
    ("Привет, мир! Как дела? Всё хорошо.", (8, 12)),
    ("日本語のテキストと中文文本。", (3, 7)),
    ("Emoji too: 🙂🚀✨ and mixed text.", (11, 14)),
    ("Edge at the start", (0, 4)),
    ("Edge at the end", (12, 15)),
])
def test_infill_leaves_the_rest_byte_identical(tiny, text, span):
    start, end = span
    state = MaskedDenoiser.for_infill(tiny, text, [Span(start, end)], SamplingOptions(steps=6, temperature=1.0))
    list(iter_denoise(tiny, state))
    result = state.text
    suffix = text[end:]
    assert result.encode().startswith(text[:start].encode())
    assert result.encode().endswith(suffix.encode())
    assert tiny.mask_id not in state.output_ids


def test_infill_several_spans_with_new_lengths(tiny):
    text = "one two three four five six"
    spans = [Span(0, 3, new_length=2), Span(8, 13), Span(27, 27, new_length=3)]
    state = MaskedDenoiser.for_infill(tiny, text, spans, SamplingOptions(steps=12))
    list(iter_denoise(tiny, state))
    out = state.text
    assert out.endswith("")
    middle = out[out.index(" two ") :]
    assert middle.startswith(" two ") and " four five six" in middle


@pytest.mark.parametrize("call,message", [
    (lambda t: MaskedDenoiser.for_generation(t, "", 10, SamplingOptions()), "prompt is empty"),
    (lambda t: MaskedDenoiser.for_generation(t, "   ", 10, SamplingOptions()), "prompt is empty"),
    (lambda t: MaskedDenoiser.for_generation(t, "Hi", 0, SamplingOptions()), "length must be between"),
    (lambda t: MaskedDenoiser.for_generation(t, "Hi", 10_000, SamplingOptions()), "length must be between"),
    (lambda t: MaskedDenoiser.for_generation(t, "Hi", 10, SamplingOptions(steps=0)), "steps must be at least 1"),
    (lambda t: MaskedDenoiser.for_generation(t, "Hi", 64, SamplingOptions(steps=2)), "number of blocks"),
    (lambda t: MaskedDenoiser.for_generation(t, "Hi", 10, SamplingOptions(schedule="zigzag")), "unknown schedule"),
    (lambda t: MaskedDenoiser.for_infill(t, "abc", [Span(2, 9)], SamplingOptions()), "outside the text"),
    (lambda t: MaskedDenoiser.for_infill(t, "abc", [Span(-1, 2)], SamplingOptions()), "outside the text"),
    (lambda t: MaskedDenoiser.for_infill(t, "abcdef", [Span(0, 3), Span(2, 5)], SamplingOptions()), "overlaps"),
    (lambda t: MaskedDenoiser.for_infill(t, "abcdef", [], SamplingOptions()), "no spans"),
])
def test_bad_inputs_get_clear_errors(tiny, call, message):
    with pytest.raises(ValueError, match=message):
        call(tiny)


def test_seed_makes_runs_reproducible(tiny):
    a, _ = run(tiny, SamplingOptions(steps=8, temperature=1.0, seed=7))
    b, _ = run(tiny, SamplingOptions(steps=8, temperature=1.0, seed=7))
    c, _ = run(tiny, SamplingOptions(steps=8, temperature=1.0, seed=8))
    assert a.output_ids == b.output_ids != c.output_ids


def test_random_order_commits_positions_the_confidence_order_would_not():
    """The ancestral ("random") order picks positions from the request's own random stream, regardless of
    confidence; the confidence order always takes the most confident. Same seed, same picks."""
    from airquill.server.sampling.schedules import make_schedule

    confidence = torch.linspace(1.0, 0.0, 32)  # position 0 is the most confident
    entropy = torch.zeros(32)
    confident = make_schedule("linear").select(confidence, entropy, step=0, steps=8, block_total=32)
    assert sorted(confident.tolist()) == [0, 1, 2, 3]
    picks = [make_schedule("random").select(confidence, entropy, step=0, steps=8, block_total=32,
                                            generator=torch.Generator().manual_seed(seed)).tolist() for seed in (1, 1, 2)]
    assert len(picks[0]) == 4 and picks[0] == picks[1] != picks[2] and sorted(picks[0]) != [0, 1, 2, 3]


def test_generation_stops_at_the_end_token(make_tiny, tokenizer):
    tiny = make_tiny()
    eos = tokenizer.eos_token_id
    tiny.bias[eos] = 0.0
    original = tiny.forward

    def eos_at_position_10(requests):  # the model is sure that the text ends at position 10
        out = original(requests)
        for r, logits in zip(requests, out):
            start, end = r.canvas
            if start <= 10 < end:
                logits[10 - start, eos] = 1e3
        return out

    tiny.forward = eos_at_position_10
    state = MaskedDenoiser.for_generation(tiny, PROMPT, 40, SamplingOptions(steps=40, min_tokens=0))
    trace = list(iter_denoise(tiny, state))
    prompt_len = state.output_start
    assert len(state.output_ids) == 10 - prompt_len and eos not in state.output_ids
    assert trace[-1].is_final and trace[-1].length == 10 - prompt_len
    assert len(trace) < trace[0].total  # the blocks after the end were never computed
    keep_going = MaskedDenoiser.for_generation(tiny, PROMPT, 40, SamplingOptions(steps=40, stop_at_eos=False))
    list(iter_denoise(tiny, keep_going))
    assert len(keep_going.output_ids) == 40


def test_no_end_token_before_min_tokens(make_tiny, tokenizer):
    """A model sure that the text ends right after the prompt still writes `min_tokens` tokens first."""
    tiny = make_tiny()
    eos = tokenizer.eos_token_id
    original = tiny.forward

    def eos_everywhere(requests):
        out = original(requests)
        for logits in out:
            logits[:, eos] = 1e3
        return out

    tiny.forward = eos_everywhere
    state = MaskedDenoiser.for_generation(tiny, PROMPT, 40, SamplingOptions(steps=40, min_tokens=6))
    list(iter_denoise(tiny, state))
    assert len(state.output_ids) == 6 and eos not in state.output_ids


def test_repetition_penalty_pushes_down_tokens_already_nearby():
    """CTRL's rule on the logits of tokens in the window: positive logits divided, negative multiplied."""
    from airquill.server.sampling.noise import draw

    logits = torch.tensor([[2.0, 2.0, -1.0, -1.0]])
    plain = draw(logits, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(0))
    pushed = draw(logits, temperature=1.0, top_p=1.0, generator=torch.Generator().manual_seed(0),
                  penalized=torch.tensor([0, 2]), penalty=2.0)
    p_plain = torch.softmax(torch.tensor([2.0, 2.0, -1.0, -1.0], dtype=torch.float64), -1)
    p_pushed = torch.softmax(torch.tensor([1.0, 2.0, -2.0, -1.0], dtype=torch.float64), -1)
    assert torch.allclose(plain.entropy, -(p_plain * p_plain.log()).sum())
    assert torch.allclose(pushed.entropy, -(p_pushed * p_pushed.log()).sum())
    with pytest.raises(ValueError, match="repetition_penalty"):
        SamplingOptions(repetition_penalty=0.5).validate()


def _sorted_nucleus(logits: torch.Tensor, top_p: float) -> list[set[int]]:
    """The nucleus as its definition reads, by a full sort: the fewest most likely tokens reaching top_p."""
    rows = []
    for row in logits:
        probs, order = row.softmax(-1).sort(descending=True)
        before = probs.cumsum(-1) - probs
        rows.append(set(order[before < top_p].tolist()))
    return rows


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), scale=st.sampled_from([0.05, 1.0, 4.0, 30.0]),
       top_p=st.sampled_from([0.5, 0.9, 0.95, 0.999]), width=st.sampled_from([7, 300, 4096]))
def test_nucleus_is_the_top_p_set_a_full_sort_finds(seed, scale, top_p, width):
    """The partial sort keeps exactly the tokens the definition keeps, for flat and peaked rows alike, and a draw
    only ever returns one of them, with its probability renormalised over the nucleus."""
    from airquill.server.sampling.noise import draw, nucleus

    logits = torch.randn(5, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    columns, kept = nucleus(logits, top_p)
    ours = [set(c[k > float("-inf")].tolist()) for c, k in zip(columns, kept)]
    assert ours == _sorted_nucleus(logits, top_p)
    drawn = draw(logits, temperature=1.0, top_p=top_p, generator=torch.Generator().manual_seed(seed))
    for row, token, confidence, allowed in zip(logits, drawn.tokens.tolist(), drawn.confidence, ours):
        assert token in allowed
        inside = torch.tensor(sorted(allowed))
        expected = row[token].exp() / row[inside].exp().sum()
        assert torch.isclose(confidence, expected)
