"""The controls part of `airquill bench families`: for every family given (masked, uniform, continuous), the
share of samples that meet each control and what meeting it costs in quality (generative perplexity under the
AR twin, with the entropy gap to held-out text), against unconstrained samples of the same family at the same
settings, in one run.

Keywords come from a fixed list of the corpus's words (one per sample, in turn); the pinned baseline puts the
same keyword at a fixed place from the first step. The length target is half the token budget in words. Style
alternates question and statement by sample and is judged by the classifier that did not guide it. The
continuous family steers its latents (its default); rows for the gradient alone ("latents only") and for
rounding-logit guidance compare the ways. The headline figures are the worst family's.
"""
from __future__ import annotations

from dataclasses import replace

from airquill.server.bench.quality import mean_unigram_entropy
from airquill.server.bench.sampler import CONTINUOUS_BASE, DEFAULT, UNIFORM_BASE, quality, run_states
from airquill.server.sampling.continuous import ContinuousDenoiser
from airquill.server.sampling.controls import Controls, has_keyword, words
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.style import LABELS, load_classifier
from airquill.server.sampling.uniform import UniformDenoiser

KEYWORDS = ("Moses", "Jerusalem", "bread", "mountain", "Aaron", "king", "lamb", "fire", "David", "water")


CONTINUOUS_STEPS = 32  # per canvas


def _state(family: str, adapter, prompt: str, length: int, seed: int, controls, guidance: str):
    """One request of `family` at the controls' benchmark settings (fixed length: no stop at end-of-text)."""
    if family == "masked":
        options = replace(DEFAULT, steps=max(1, length // 2), seed=seed)
        return MaskedDenoiser.for_generation(adapter, prompt, length, options, controls=controls)
    if family == "uniform":
        return UniformDenoiser.for_generation(adapter, prompt, length, replace(UNIFORM_BASE, seed=seed),
                                              controls=controls)
    options = replace(CONTINUOUS_BASE, steps=CONTINUOUS_STEPS, seed=seed, guidance=guidance)
    return ContinuousDenoiser.for_generation(adapter, prompt, length, options, controls=controls)


def _per_sample(family: str, target: int) -> dict:
    """label -> (controls of sample i, continuous guidance)."""
    keyword = lambda i: Controls(keywords=(KEYWORDS[i % len(KEYWORDS)],))  # noqa: E731
    style = lambda i: Controls(style=LABELS[1 - i % 2])  # noqa: E731
    rows = {
        "unconstrained": (lambda i: None, "latents"),
        "keyword (guided placement)": (keyword, "latents"),
        "keyword (pinned, baseline)": (lambda i: replace(keyword(i), placement="pinned"), "latents"),
        f"length {target} words": (lambda i: Controls(length_words=target), "latents"),
        "style (question / statement)": (style, "latents"),
    }
    if family == "continuous":
        rows.update({"keyword (latents only)": (keyword, "latents-only"),
                     "keyword (rounding logits)": (keyword, "rounding"),
                     "style (latents only)": (style, "latents-only"),
                     "style (rounding logits)": (style, "rounding")})
    return rows


def control_rows(adapters: dict, scorer, prompts, held: dict, length: int) -> tuple[list[dict], dict]:
    target = max(4, length // 2)
    judge = load_classifier("judge")
    rows = []
    for family, adapter in adapters.items():
        family_rows = []
        for label, (controls_of, guidance) in _per_sample(family, target).items():
            states = []

            def make(i, prompt, controls_of=controls_of, guidance=guidance):
                state = _state(family, adapter, prompt, length, i, controls_of(i), guidance)
                states.append((i, state))
                return state

            run = run_states(adapter, prompts, make)
            met = []
            for i, state in states:
                controls = controls_of(i)
                if controls is None:
                    met.append(True)
                elif controls.keywords:
                    met.append(all(has_keyword(state.text, k) for k in controls.keywords))
                elif controls.length_words:
                    met.append(abs(words(state.text) - target) <= 0.05 * target)
                else:
                    met.append(judge.probability(state.output_ids, controls.style) > 0.5)
            family_rows.append({
                "family": family, "control": label, "success": sum(met) / len(met),
                "tokens_per_s": run["tokens_per_s"], **quality(scorer, prompts, run["samples"]),
                "entropy_gap": abs(mean_unigram_entropy(run["samples"]) - held["entropy"]) / held["entropy"]})
        for row in family_rows:
            row["quality_cost"] = row["genppl"] / family_rows[0]["genppl"] - 1
        rows += family_rows
    by_family = {family: _figures({r["control"]: r for r in rows if r["family"] == family}, target)
                 for family in adapters}
    summary = {key: (min if key.endswith("_success") else max)(f[key] for f in by_family.values())
               for key in next(iter(by_family.values()))}
    return rows, {**summary, "controls_by_family": by_family}


def _figures(by: dict, target: int) -> dict:
    return {
        "keyword_success": by["keyword (guided placement)"]["success"],
        "keyword_quality_cost": by["keyword (guided placement)"]["quality_cost"],
        "keyword_pinned_success": by["keyword (pinned, baseline)"]["success"],
        "keyword_pinned_quality_cost": by["keyword (pinned, baseline)"]["quality_cost"],
        "length_success": by[f"length {target} words"]["success"],
        "length_quality_cost": by[f"length {target} words"]["quality_cost"],
        "style_success": by["style (question / statement)"]["success"],
        "style_quality_cost": by["style (question / statement)"]["quality_cost"],
    }
