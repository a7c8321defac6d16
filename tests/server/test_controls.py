"""Controls (keywords, a length in words, a style) on a tiny deterministic model and on the shipped model, through
the sampler, the protocol (version 2) and the real server on loopback."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from airquill.server.sampling.controls import Controls, has_keyword, words
from airquill.server.sampling.drivers import Scheduler
from airquill.server.sampling.masked import MaskedDenoiser, Span
from airquill.server.sampling.options import SamplingOptions
from airquill.server.sampling.style import load_classifier
from airquill.shared.text_state import TextState

OPTIONS = SamplingOptions(steps=32, seed=0)


@pytest.fixture(scope="module")
def shipped():
    from airquill.server.models.loader import load_adapter

    return load_adapter(None, device="cpu")


def run_all(adapter, prompt: str, length: int, controls: Controls, seeds=range(4), options=OPTIONS):
    scheduler = Scheduler(adapter, max_batch=len(seeds))
    states = [scheduler.submit(MaskedDenoiser.for_generation(adapter, prompt, length, replace(options, seed=seed),
                                                             controls=controls)) for seed in seeds]
    list(scheduler.run())
    return states


@pytest.mark.parametrize("placement", ["guided", "pinned"])
def test_keywords_appear_on_the_tiny_model(tiny, placement):
    controls = Controls(keywords=("beginning", "earth"), placement=placement)
    for state in run_all(tiny, "In the", 40, controls):
        assert has_keyword(state.text, "beginning") and has_keyword(state.text, "earth"), state.text


def test_keywords_appear_on_the_shipped_model_and_steps_still_stream(shipped):
    controls = Controls(keywords=("Moses", "lamb"))
    state = MaskedDenoiser.for_generation(shipped, "And God said", 96, OPTIONS, controls=controls)
    panel = TextState()
    panel.apply(state.initial_step())
    from airquill.server.sampling.drivers import iter_denoise

    for step in iter_denoise(shipped, state):
        panel.apply(step)
    assert panel.finished and panel.text == state.text
    assert has_keyword(state.text, "Moses") and has_keyword(state.text, "lamb")
    assert state.text.index("Moses") < state.text.index("lamb")  # each at its turn, spread over the text


@pytest.mark.parametrize("target", [12, 40])
def test_length_in_words_is_met_within_five_percent(shipped, target):
    for state in run_all(shipped, "And God said", 1, Controls(length_words=target)):
        assert abs(words(state.text) - target) <= 0.05 * target + 1e-9, state.text


def test_length_and_keywords_together(shipped):
    for state in run_all(shipped, "In the beginning", 1, Controls(length_words=30, keywords=("Aaron",))):
        assert abs(words(state.text) - 30) <= 1.5 and has_keyword(state.text, "Aaron"), state.text


@pytest.mark.parametrize("label", ["question", "statement"])
def test_style_guidance_is_judged_by_the_other_classifier(shipped, label):
    judge = load_classifier("judge")
    guided = run_all(shipped, "And God said", 64, Controls(style=label), seeds=range(6))
    plain = run_all(shipped, "And God said", 64, Controls(style=label, style_strength=0.0), seeds=range(6))
    guided_p = [judge.probability(s.output_ids, label) for s in guided]
    plain_p = [judge.probability(s.output_ids, label) for s in plain]
    assert sum(p > 0.5 for p in guided_p) >= 5  # the held-out judge agrees with the guidance
    assert sum(guided_p) > sum(plain_p)  # and the guidance moved the text towards the label


def test_the_two_style_classifiers_were_trained_apart_and_both_work():
    guide, judge = load_classifier("guide"), load_classifier("judge")
    assert not torch.equal(guide.weight, judge.weight)
    assert torch.nn.functional.cosine_similarity(guide.weight, judge.weight, dim=0) > 0.5  # same task


def test_unsatisfiable_controls_get_clear_errors(tiny):
    with pytest.raises(ValueError, match="takes .* tokens but the text has room for 2"):
        MaskedDenoiser.for_generation(tiny, "In the", 2, OPTIONS, controls=Controls(keywords=("beginning earth",)))
    with pytest.raises(ValueError, match="words need about"):
        MaskedDenoiser.for_generation(tiny, "In the", 1, OPTIONS, controls=Controls(length_words=10_000))
    with pytest.raises(ValueError, match="at most 8 keywords"):
        MaskedDenoiser.for_generation(tiny, "In the", 64, OPTIONS, controls=Controls(keywords=("a",) * 9))
    with pytest.raises(ValueError, match="applies to generation"):
        MaskedDenoiser.for_infill(tiny, "In the beginning", [Span(3, 7)], OPTIONS,
                                  controls=Controls(length_words=5))
    with pytest.raises(ValueError, match="unknown style"):
        MaskedDenoiser.for_generation(tiny, "In the", 8, OPTIONS, controls=Controls(style="sonnet"))


def test_controls_travel_in_protocol_version_2_and_version_1_refuses_them(stream_once, shipped):
    from airquill.shared.protocol import Capabilities, Controls as Wire, Generate, Hello, Limits, decode_client, encode
    from airquill.shared.session import ServerSession

    message = Generate(request_id="r", prompt="In", length=8, controls=Wire(keywords=["Moses"], length_words=20,
                                                                          style="question"))
    assert decode_client(encode(message)) == message
    limits = Limits(max_message_bytes=10_000, max_prompt_chars=100, max_length=64, max_steps=64,
                    max_requests_per_client=4, max_live_requests=8)
    session = ServerSession(token="", capabilities=Capabilities(model="m", families=["masked"], schedules=[],
                                                                limits=limits))
    session.receive(encode(Hello(versions=[1])))
    session.data_to_send()
    assert session.receive(encode(message)) == []
    assert "controls need protocol version 2" in session.data_to_send()[0]

    from airquill.shared.protocol import Sampling

    capabilities, steps, done, state = stream_once(
        shipped, "And God said", 64, Sampling(steps=32), controls=Wire(keywords=["Moses"], length_words=25))
    assert capabilities.controls == ["keywords", "length_words", "style"]
    assert has_keyword(done.text, "Moses") and abs(words(done.text) - 25) <= 1.25 and state.text == done.text


def test_the_canvas_families_take_the_same_controls(tokenizer):
    """Uniform noise (a tiny DiffusionGemma-shaped model) and continuous diffusion (a tiny block-causal model):
    with random weights keywords land; with oracles that denoise towards a fixed text (random weights write
    almost no spaces, so no words) the length in words holds, cut at a word."""
    from airquill.server.models.continuous import ContinuousAdapter
    from airquill.server.models.diffusion_gemma import DiffusionGemmaAdapter
    from airquill.server.sampling.continuous import ContinuousDenoiser, ContinuousOptions
    from airquill.server.sampling.drivers import denoise
    from airquill.server.sampling.uniform import UniformDenoiser, UniformOptions
    from airquill.server.training.architecture import ModelShape, build_model

    torch.manual_seed(0)
    shape = ModelShape(hidden=32, layers=2, heads=2, intermediate=64, expert_intermediate=16, embedding_dim=16)
    uniform_model = build_model(shape, tokenizer, "uniform", 8, context=64).eval()
    continuous_model = build_model(shape, tokenizer, "continuous", 8, (8,), 256, diffusion_steps=100).eval()
    text = " And the earth was without form, and void; and darkness was upon the face of the deep." * 6
    target = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])

    class UniformOracle(DiffusionGemmaAdapter):
        def forward(self, requests):
            return [10.0 * torch.nn.functional.one_hot(target[r.canvas[0] : r.canvas[1]], len(tokenizer)).float()
                    for r in requests]

    class ContinuousOracle(ContinuousAdapter):
        def forward(self, requests):
            return [self.embeddings(target[r.canvas[0] : r.canvas[1]]) for r in requests]

    runs = [(DiffusionGemmaAdapter(uniform_model, tokenizer, name="u"), UniformOracle(uniform_model, tokenizer, name="u"),
             UniformDenoiser, UniformOptions(max_steps=4, stop_entropy=0.0)),
            (ContinuousAdapter(continuous_model, tokenizer, name="c"), ContinuousOracle(continuous_model, tokenizer,
                                                                                        name="c"),
             ContinuousDenoiser, ContinuousOptions(steps=4))]
    for adapter, oracle, denoiser, options in runs:
        state = denoiser.for_generation(adapter, "In the beginning", 24, options,
                                        controls=Controls(keywords=("earth", "beginning")))
        denoise(adapter, state)
        assert has_keyword(state.text, "earth") and has_keyword(state.text, "beginning"), state.text
        for n in (12, 20):
            state = denoiser.for_generation(oracle, "In the beginning", 1, options, controls=Controls(length_words=n))
            denoise(oracle, state)
            assert n * 0.95 <= words(state.text) <= n * 1.05, state.text


def test_continuous_latent_guidance_alone_writes_the_keyword(tokenizer):
    """Diffusion-LM's gradient on the latents, with no help from the rounding logits ("latents-only"): a model
    that denoises by reading its input (an echo: the canvas point divided by sqrt(abar), a stand-in for a trained
    denoiser, which random weights are not) writes the keywords where guidance pulls the latents, and without the
    gradient (strength 0) it does not."""
    from airquill.server.models.continuous import ContinuousAdapter
    from airquill.server.sampling.continuous import ContinuousDenoiser, ContinuousOptions, alpha_bar
    from airquill.server.sampling.drivers import denoise
    from airquill.server.training.architecture import ModelShape, build_model

    torch.manual_seed(0)
    shape = ModelShape(hidden=32, layers=2, heads=2, intermediate=64, embedding_dim=16)
    model = build_model(shape, tokenizer, "continuous", 8, (8,), 256, diffusion_steps=100).eval()

    class Echo(ContinuousAdapter):
        def forward(self, requests):
            abar = alpha_bar(self.noise_schedule, self.diffusion_steps)
            out = []
            for r in requests:
                width = r.canvas[1] - r.canvas[0]
                t = torch.as_tensor(r.time).expand(width).round().long()
                out.append(r.latents / abar[t].sqrt()[:, None])
            return out

    echo = Echo(model, tokenizer, name="echo")
    controls = Controls(keywords=("earth", "beginning"))
    for strength, expected in ((1.0, True), (0.0, False)):
        options = ContinuousOptions(steps=8, guidance="latents-only", guidance_strength=strength)
        hits = []
        for seed in range(2):
            state = ContinuousDenoiser.for_generation(echo, "In the beginning", 24, replace(options, seed=seed),
                                                      controls=controls)
            denoise(echo, state)
            hits.append(has_keyword(state.text, "earth") and has_keyword(state.text, "beginning"))
        assert hits == [expected] * 2, (strength, hits)
    for bad in (dict(guidance="gradient"), dict(guidance_strength=-1.0)):
        with pytest.raises(ValueError, match="guidance"):
            ContinuousOptions(**bad).validate()


@pytest.mark.parametrize("family", ["uniform", "continuous"])
def test_controls_on_the_shipped_canvas_families(family):
    """The shipped uniform-noise and continuous models take the same controls: keywords appear, the length holds
    within ±5% of the words, and style guidance moves the text towards its label as the held-out judge sees it."""
    from airquill.assets import SHIPPED
    from airquill.server.models.loader import load_adapter
    from airquill.server.sampling.continuous import ContinuousDenoiser, ContinuousOptions
    from airquill.server.sampling.uniform import UniformDenoiser, UniformOptions

    adapter = load_adapter(SHIPPED[family], device="cpu")
    denoiser, options = ((UniformDenoiser, UniformOptions(max_steps=8)) if family == "uniform"
                         else (ContinuousDenoiser, ContinuousOptions(steps=8)))

    def run(length: int, controls: Controls, seeds=range(2)):
        scheduler = Scheduler(adapter, max_batch=len(seeds))
        states = [scheduler.submit(denoiser.for_generation(adapter, "And God said", length,
                                                           replace(options, seed=seed), controls=controls))
                  for seed in seeds]
        list(scheduler.run())
        return states

    for state in run(64, Controls(keywords=("Moses", "lamb"))):
        assert has_keyword(state.text, "Moses") and has_keyword(state.text, "lamb"), state.text
    for state in run(1, Controls(length_words=30)):
        assert abs(words(state.text) - 30) <= 1.5, state.text
    judge = load_classifier("judge")
    guided = run(64, Controls(style="question"), seeds=range(4))
    plain = run(64, Controls(style="question", style_strength=0.0), seeds=range(4))
    assert sum(judge.probability(s.output_ids) for s in guided) > sum(judge.probability(s.output_ids) for s in plain)
