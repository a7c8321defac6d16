"""DiffusionGemma through our adapter, sampler and drivers, on a tiny randomly initialised checkpoint (real
transformers code, random weights, built from a config: no download), and compared with transformers' own
DiffusionGemma `generate`.

The tiny model has two layers (one sliding-window, one full attention), a two-expert MoE (the architecture always
has one) and a one-layer vision tower (the encoder always builds one; nothing here feeds it images). The rows of
the special tokens in its (tied) embedding are zeroed, so their logits are 0 and never the best guess; that keeps
transformers' sampler, which may propose any id, comparable with ours, which never proposes pad or mask.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    DiffusionGemmaConfig,
    DiffusionGemmaForBlockDiffusion,
    DiffusionGemmaTextConfig,
    Gemma4VisionConfig,
)
from transformers.generation.streamers import BaseStreamer
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
    EntropyBoundSampler,
    EntropyBoundSamplerConfig,
    LinearTemperatureScheduleLogitsProcessor,
    StableAndConfidentStoppingCriteria,
)

from airquill.server.models.diffusion_gemma import DiffusionGemmaAdapter, EncoderCache
from airquill.server.sampling.drivers import iter_denoise
from airquill.server.sampling.masked import Span
from airquill.server.sampling.noise import draw
from airquill.server.sampling.uniform import EntropyBound, UniformDenoiser, UniformOptions
from airquill.shared.text_state import TextState

CANVAS = 8
PROMPT = "In the beginning"
PROMPTS = ["In the beginning", "And the earth was without form",
           "Привет, мир! Как дела? Всё хорошо."]  # three prefix lengths


def tiny_config(tokenizer, *, canvas_length: int = CANVAS) -> DiffusionGemmaConfig:
    vocab = len(tokenizer)
    text = DiffusionGemmaTextConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, global_head_dim=16, max_position_embeddings=256,
        sliding_window=12, layer_types=["sliding_attention", "full_attention"],
        num_experts=2, top_k_experts=1, moe_intermediate_size=16,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
    )
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1,
                                num_key_value_heads=1, head_dim=16, patch_size=4, position_embedding_size=16)
    # multimodal ids outside the tiny vocabulary: no text token is an image placeholder
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length,
                                image_token_id=vocab + 1, boi_token_id=vocab + 2, eoi_token_id=vocab + 3)


def tiny_model(tokenizer, *, seed: int = 0) -> DiffusionGemmaForBlockDiffusion:
    torch.manual_seed(seed)
    model = DiffusionGemmaForBlockDiffusion(tiny_config(tokenizer)).eval()
    special = sorted(tokenizer.all_special_ids)
    embeddings = (model.lm_head.weight, model.model.decoder.embed_tokens.weight,
                  model.model.encoder.language_model.embed_tokens.weight)
    with torch.no_grad():
        for weight in {id(w): w for w in embeddings}.values():
            weight[special] = 0.0
    return model


@pytest.fixture(scope="module")
def gemma(tokenizer):
    return DiffusionGemmaAdapter(tiny_model(tokenizer), tokenizer, name="tiny-diffusion-gemma")


def drive(adapter, state):
    """Run a request by hand; returns the logits of every step and the canvas after it."""
    trace = []
    while not state.done:
        request = state.next_forward()
        (logits,) = adapter.forward([request])
        state.advance(logits)
        start, end = request.canvas
        trace.append((logits, state.ids[start:end].tolist()))
    return trace


def test_the_adapter_reads_the_checkpoint(gemma, tokenizer):
    assert gemma.family == "uniform" and gemma.self_conditioning
    assert gemma.canvas_length == gemma.default_block_size == CANVAS
    assert gemma.vocab_size == len(tokenizer) and gemma.max_length == 256
    assert gemma.prompt_prefix == (tokenizer.bos_token_id,)
    assert gemma.never_propose == ()  # the multimodal ids lie outside the vocabulary
    assert gemma.attention == "bool"  # sdpa: requests with different prefixes share a pass
    assert isinstance(gemma.new_cache(), EncoderCache)
    assert UniformOptions.for_adapter(gemma) == UniformOptions()  # no generation_config: transformers' defaults


def test_generation_config_sets_the_sampler_defaults(gemma):
    config = gemma.model.generation_config.__class__(
        max_denoising_steps=12, sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.3), t_min=0.2, t_max=0.9,
        stability_threshold=2, confidence_threshold=0.01)
    options = UniformOptions.for_adapter(SimpleNamespace(generation_config=config), seed=4)
    assert options == UniformOptions(max_steps=12, acceptance="entropy", entropy_bound=0.3, temperature=0.9,
                                     final_temperature=0.2, stability_steps=2, stop_entropy=0.01, seed=4)


def test_cached_prefix_equals_recomputation(gemma):
    """Three canvases after the prompt reach past the sliding window (12): its cache drops old tokens too."""
    options = UniformOptions(max_steps=2, temperature=0.0, stop_entropy=0.0)
    cached = UniformDenoiser.for_generation(gemma, PROMPT, 3 * CANVAS, options)
    fresh = UniformDenoiser.for_generation(gemma, PROMPT, 3 * CANVAS, replace(options, prefix_cache=False))
    while not cached.done:
        (a,) = gemma.forward([cached.next_forward()])
        (b,) = gemma.forward([fresh.next_forward()])
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        cached.advance(a)
        fresh.advance(b)
    assert cached.output_ids == fresh.output_ids
    assert cached.cache.length == cached.output_start + 2 * CANVAS


def test_batched_forward_equals_one_by_one(gemma):
    """Different prefix lengths (padded, masked caches), with and without self-conditioning in one pass."""
    states = [UniformDenoiser.for_generation(gemma, p, 3 * CANVAS, UniformOptions(max_steps=2, seed=i,
                                                                                 stop_entropy=0.0))
              for i, p in enumerate(PROMPTS)]
    for state, steps in zip(states, [0, 3, 1]):  # canvas 0 step 0, canvas 1 step 1, canvas 0 step 1
        for _ in range(steps):
            (logits,) = gemma.forward([state.next_forward()])
            state.advance(logits)
    requests = [s.next_forward() for s in states]
    assert [r.self_conditioning is not None for r in requests] == [False, True, True]
    assert len({r.canvas[0] for r in requests}) == 3
    together = gemma.forward(requests)
    for request, logits in zip(requests, together):
        (alone,) = gemma.forward([request])
        torch.testing.assert_close(logits, alone, atol=1e-5, rtol=1e-5)


def test_sampler_invariants_on_tiny_gemma(gemma, tokenizer):
    special = set(tokenizer.all_special_ids)
    options = UniformOptions(max_steps=3, seed=11, stop_entropy=7.0)  # random weights: high entropy everywhere
    state = UniformDenoiser.for_generation(gemma, PROMPT, 2 * CANVAS + 3, options)
    assert not special & set(state.output_ids)
    prefix = state.ids[: state.output_start].clone()
    panel = TextState()
    panel.apply(state.initial_step())
    trace = []
    for step in iter_denoise(gemma, state):
        panel.apply(step)
        trace.append(step)
        assert torch.equal(state.ids[: state.output_start], prefix)
    assert len(trace) <= trace[0].total == 3 * 3
    assert panel.finished and panel.text == state.text and [c.token_id for c in panel.cells] == state.output_ids
    assert len(state.output_ids) == 2 * CANVAS + 3 and not {tokenizer.pad_token_id, tokenizer.mask_token_id} & set(
        state.output_ids)
    again = UniformDenoiser.for_generation(gemma, PROMPT, 2 * CANVAS + 3, options)
    list(iter_denoise(gemma, again))
    assert again.output_ids == state.output_ids  # reproducible with a seed


def test_scheduler_batches_equal_one_by_one(gemma, batched_equals_one_by_one):
    options = [UniformOptions(max_steps=m, seed=i, temperature=t, stop_entropy=7.0)
               for i, (m, t) in enumerate(zip([2, 4, 3], [0.9, 0.0, 1.1]))]
    batched_equals_one_by_one(gemma, lambda: [UniformDenoiser.for_generation(gemma, p, 2 * CANVAS, o)
                                              for p, o in zip(PROMPTS, options)])


def test_infill_on_tiny_gemma_keeps_the_context(gemma):
    """The BOS prefix lets a span start the text; a canvas cut short by the text's end is decoded too."""
    text = "In the beginning God created the heaven and the earth."
    spans = [Span(0, 6), Span(20, 27), Span(len(text), len(text), new_length=2)]
    state = UniformDenoiser.for_infill(gemma, text, spans, UniformOptions(max_steps=2, seed=2))
    assert state.output_start == 1 and state.canvases[-1][1] - state.canvases[-1][0] < CANVAS
    list(iter_denoise(gemma, state))
    assert text[6:20] in state.text and text[27:] in state.text
    assert state.done and not (state.noise != 0).any()


class DraftRecorder(BaseStreamer):
    """Keeps the best-guess canvas transformers streams after every denoising step."""

    def __init__(self):
        self.drafts: list[list[int]] = []

    def put(self, value):
        pass

    def put_draft(self, value):
        self.drafts.append(value[0].tolist())

    def end(self):
        pass


class StartsFrom(EntropyBoundSampler):
    """transformers' sampler, starting every canvas from a given random canvas (ours) instead of drawing one from
    the global RNG; re-noising keeps drawing its own random tokens."""

    def __init__(self, canvases, **kwargs):
        super().__init__(**kwargs)
        self.canvases = list(canvases)

    def initialize_canvas(self, batch_size, device):
        return self.canvases.pop(0)[None].to(device)

    def renoise_canvas(self, accepted_canvas, cur_step):
        noise = torch.randint(0, self.vocab_size, accepted_canvas.shape, device=accepted_canvas.device)
        return torch.where(self.accepted_token_mask, accepted_canvas, noise)


def test_greedy_run_matches_transformers_generate(gemma, monkeypatch):
    """Same tokens, same steps, three canvases, where the two samplers are truly comparable.

    Settings: greedy proposals (ours: temperature 0; transformers always samples, so its linear temperature
    schedule runs from 1e-20 towards 0, which makes the softmax one-hot and its multinomial draw the argmax), every
    proposal accepted (entropy bound 1e9 in both), stop when the best guesses equal those of the previous step
    (stability 1; the confidence bound 1e9 always holds), at most 8 steps per canvas. Transformers' random canvases
    come from the global RNG over the whole vocabulary; here its sampler starts each canvas from ours, the one
    thing injected. Then both runs feed the decoder the same canvas, the same self-conditioning (the one-hot of
    the previous best guesses) and the same encoder cache, so every step's best guesses must be equal.

    Not comparable, so not asserted: sampled runs (transformers draws with torch.multinomial from the global RNG,
    we draw Gumbel-max in float64 from the request's own generator, with top-p and without pad/mask ids, and
    random tokens that are never special ids), and partial acceptance (it needs a temperature > 0, hence sampling).
    """
    options = UniformOptions(temperature=0.0, acceptance="entropy", entropy_bound=1e9, stability_steps=1,
                             stop_entropy=1e9, max_steps=8, stop_at_eos=False)
    state = UniformDenoiser.for_generation(gemma, PROMPT, 3 * CANVAS, options)
    prompt = state.ids[: state.output_start].clone()
    starts = state.ids[state.output_start :].clone().view(3, CANVAS)
    ours = [canvas for _, canvas in drive(gemma, state)]

    model = gemma.model
    monkeypatch.setattr(model, "_prepare_sampler", lambda config: StartsFrom(
        starts, config=config.sampler_config, canvas_length=CANVAS, vocab_size=gemma.vocab_size,
        max_denoising_steps=config.max_denoising_steps))
    recorder = DraftRecorder()
    out = model.generate(prompt[None], max_new_tokens=3 * CANVAS, max_denoising_steps=8,
                         sampler_config=EntropyBoundSamplerConfig(entropy_bound=1e9), t_min=0.0, t_max=1e-20,
                         stability_threshold=1, confidence_threshold=1e9, streamer=recorder)
    assert recorder.drafts == ours  # every step of every canvas, hence the same number of steps
    assert len(ours) < 3 * 8  # at least one canvas stopped early (the first one after 6 steps)
    assert out.sequences[0, len(prompt) :].tolist() == state.output_ids


def test_entropy_bound_accepts_what_transformers_accepts():
    generator = torch.Generator().manual_seed(0)
    for scale in (0.5, 2.0, 8.0):
        logits = torch.randn(1, 64, 50, generator=generator) * scale
        ours = draw(logits[0], temperature=1.0, top_p=1.0, generator=generator)
        for bound in (0.05, 0.5, 3.0, 40.0):
            theirs = EntropyBoundSampler(EntropyBoundSamplerConfig(entropy_bound=bound), 64, 50, 1)
            theirs.accept_canvas(torch.zeros(1, 64, dtype=torch.long), torch.ones(1, 64, dtype=torch.long), logits, 1)
            mask = EntropyBound(bound).accept(ours.confidence, ours.entropy, step=0, steps=1)
            assert mask.tolist() == theirs.accepted_token_mask[0].tolist()


def test_temperature_schedule_is_transformers_linear_schedule():
    options = UniformOptions(max_steps=10, temperature=0.8, final_temperature=0.4)
    theirs = LinearTemperatureScheduleLogitsProcessor(t_min=0.4, t_max=0.8, max_denoising_steps=10)
    for step in range(10):  # transformers counts steps down: cur_step = 10 .. 1
        scaled = theirs(None, torch.ones(1), cur_step=10 - step)
        assert abs(1 / float(scaled) - options.temperature_at(step)) < 1e-6


@pytest.mark.parametrize("stability,bound", [(1, 100.0), (2, 100.0), (0, 100.0), (1, 0.0)])
def test_adaptive_stop_is_transformers_stop_rule(gemma, stability, bound):
    """Our stop decision at each step equals transformers' StableAndConfidentStoppingCriteria fed the same best
    guesses and temperature-scaled logits (bounds far from the tiny model's entropies, ~log(vocab): ours is
    computed without pad and mask ids, a difference too small to matter there)."""
    options = UniformOptions(max_steps=4, temperature=0.9, final_temperature=0.3, seed=3,
                             stability_steps=stability, stop_entropy=bound)
    state = UniformDenoiser.for_generation(gemma, PROMPT, 2 * CANVAS, options)
    theirs = StableAndConfidentStoppingCriteria(stability_threshold=stability, confidence_threshold=max(bound, 1e-9))
    while not state.done:
        canvas_before, step_before = state.canvas_index, state.canvas_step
        (logits,) = gemma.forward([state.next_forward()])
        state.advance(logits)
        scaled = logits[None] / options.temperature_at(step_before)
        stop = bool(theirs(scaled.argmax(-1), scaled)[0])
        ended = state.canvas_index != canvas_before
        assert ended == (stop or step_before + 1 == options.max_steps)
        if ended:
            theirs.reset()


def test_loads_a_saved_checkpoint_from_a_folder(gemma, tokenizer, tmp_path):
    gemma.model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = DiffusionGemmaAdapter.from_pretrained(str(tmp_path), device="cpu")
    assert loaded.model.dtype == torch.float32 and loaded.canvas_length == CANVAS
    options = UniformOptions(max_steps=2, seed=5)
    request = UniformDenoiser.for_generation(loaded, PROMPT, CANVAS, options).next_forward()
    (a,) = loaded.forward([request])
    (b,) = gemma.forward([UniformDenoiser.for_generation(gemma, PROMPT, CANVAS, options).next_forward()])
    torch.testing.assert_close(a, b)


def test_served_through_load_adapter_and_the_real_server(gemma, tokenizer, tmp_path, stream_once):
    """The path a user runs: `load_adapter(<folder>)` picks the DiffusionGemma adapter by model type, and the
    real WebSocket server on loopback streams every step of a uniform-noise request: random tokens (noise 1)
    condense into the final text, which equals `done`."""

    from airquill.server.models.loader import load_adapter
    from airquill.shared.protocol import Sampling

    gemma.model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    adapter = load_adapter(str(tmp_path), device="cpu")
    assert isinstance(adapter, DiffusionGemmaAdapter) and adapter.family == "uniform"

    capabilities, steps, done, state = stream_once(adapter, PROMPT, CANVAS * 2, Sampling(steps=4, seed=3))
    assert capabilities.families == ["uniform"]
    assert steps[0].index == 0 and any(c.noise == 1.0 for c in steps[0].changes)  # the canvas starts as noise
    assert steps[-1].is_final and state.text == done.text and all(cell.noise == 0.0 for cell in state.cells)
    assert 1 < len(steps) <= 1 + 2 * 4  # at most 4 steps per canvas, two canvases


def test_airquill_generate_runs_a_uniform_model(gemma, tokenizer, tmp_path):
    """`airquill generate --model <folder>` on a DiffusionGemma checkpoint: the terminal's step stream."""
    from airquill.server.generate import run_generate
    from airquill.server.sampling.options import SamplingOptions

    gemma.model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    steps, info = run_generate(model=str(tmp_path), prompt=PROMPT, length=CANVAS,
                               options=SamplingOptions(steps=3, seed=1), device="cpu")
    trace = list(steps)
    assert trace[0].index == 0 and trace[-1].is_final and 2 <= len(trace) <= 4
