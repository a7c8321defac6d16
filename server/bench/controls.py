"""The controls part of `airquill bench families`: for the masked family, the share of samples that meet each
control and what meeting it costs in quality (generative perplexity under the AR twin, with the entropy gap to
held-out text), against unconstrained samples at the same settings, in one run.

Keywords come from a fixed list of the corpus's words (one per sample, in turn); the pinned baseline puts the
same keyword at a fixed place from the first step. The length target is half the token budget in words. Style
alternates question and statement by sample and is judged by the classifier that did not guide it.
"""
from __future__ import annotations

from dataclasses import replace

from airquill.server.bench.quality import mean_unigram_entropy
from airquill.server.bench.sampler import DEFAULT, quality, run_states
from airquill.server.sampling.controls import Controls, has_keyword, words
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.style import LABELS, load_classifier

KEYWORDS = ("Moses", "Jerusalem", "bread", "mountain", "Aaron", "king", "lamb", "fire", "David", "water")


def control_rows(adapter, scorer, prompts, held: dict, length: int) -> tuple[list[dict], dict]:
    options = replace(DEFAULT, steps=max(1, length // 2))
    target = max(4, length // 2)
    judge = load_classifier("judge")
    per_sample = {
        "unconstrained": lambda i: None,
        "keyword (guided placement)": lambda i: Controls(keywords=(KEYWORDS[i % len(KEYWORDS)],)),
        "keyword (pinned, baseline)": lambda i: Controls(keywords=(KEYWORDS[i % len(KEYWORDS)],),
                                                         placement="pinned"),
        f"length {target} words": lambda i: Controls(length_words=target),
        "style (question / statement)": lambda i: Controls(style=LABELS[1 - i % 2]),
    }
    rows = []
    for label, controls_of in per_sample.items():
        states = []

        def make(i, prompt, controls_of=controls_of):
            state = MaskedDenoiser.for_generation(adapter, prompt, length, replace(options, seed=i),
                                                  controls=controls_of(i))
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
        rows.append({"control": label, "success": sum(met) / len(met), "tokens_per_s": run["tokens_per_s"],
                     **quality(scorer, prompts, run["samples"]),
                     "entropy_gap": abs(mean_unigram_entropy(run["samples"]) - held["entropy"]) / held["entropy"]})
    base = rows[0]
    for row in rows:
        row["quality_cost"] = row["genppl"] / base["genppl"] - 1
    by = {r["control"]: r for r in rows}
    summary = {
        "keyword_success": by["keyword (guided placement)"]["success"],
        "keyword_quality_cost": by["keyword (guided placement)"]["quality_cost"],
        "keyword_pinned_success": by["keyword (pinned, baseline)"]["success"],
        "keyword_pinned_quality_cost": by["keyword (pinned, baseline)"]["quality_cost"],
        "length_success": by[f"length {target} words"]["success"],
        "length_quality_cost": by[f"length {target} words"]["quality_cost"],
        "style_success": by["style (question / statement)"]["success"],
        "style_quality_cost": by["style (question / statement)"]["quality_cost"],
    }
    return rows, summary
