"""The uniform-noise family as a per-request state machine: D3PM-uniform / DiffusionGemma sampling.

Generation is a run of canvases of `canvas_length` tokens after the prompt. Every canvas starts as uniformly
random tokens (never special ids). Each step the denoiser proposes a token for every canvas position; an
acceptance rule keeps some proposals and every other position is re-noised with a fresh random token. A canvas
is final when the denoiser's best guesses are stable and confident (adaptive stop) or after `max_steps`; its
final tokens are those best guesses (argmax), as in DiffusionGemma. A final canvas joins the clean prefix
(cached by adapters that can) and the next canvas starts, until `length` tokens.

Acceptance is not sticky: a proposal kept at one step is proposed afresh at the next and may be re-noised then.
Progress is carried by the canvas itself and, for models that take it, by the previous step's proposal
distribution (self-conditioning), so confident positions get more confident and the accepted share grows.

What a client sees, per output position (`TokenChange.noise`):
  1.0                a random token: the position shows noise (its own random token's string, decoded alone)
  PROVISIONAL_NOISE  a proposal accepted at this step, still being refined: provisional text
  0.0                a token of a final canvas: settled, never changes again
Positions of later canvases show their random starting tokens (noise 1.0) from step 0, so a panel keeps its
layout while canvases condense one after another.

A model trained with absorbing noise instead (`airquill train --noise absorbing`: the comparison the family's
benchmark draws) is sampled the same way, except that free positions start, and are re-noised, as its mask token
and show as blanks, as in the masked family.

Infilling re-noises spans of a text with random tokens and refines only them: a canvas starts at the first span
position not yet covered and takes the context after it along as fixed tokens (never re-noised), so the
denoiser sees both sides of a short span.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter
from airquill.server.sampling.display import TokenDisplay
from airquill.server.sampling.canvas import CanvasDenoiser
from airquill.server.sampling.noise import draw, ordinary_ids, tempered
from airquill.shared.step import Step

PROVISIONAL_NOISE = 0.5


# --- acceptance rules ----------------------------------------------------------------------------------


class AcceptanceRule(Protocol):
    def accept(self, confidence: torch.Tensor, entropy: torch.Tensor, *, step: int, steps: int) -> torch.Tensor:
        """A bool mask over the canvas: which proposals to keep at `step` (0-based) of at most `steps`, given
        each proposal's probability and its distribution's entropy (nats)."""


@dataclass(frozen=True)
class EntropyBound:
    """Keep the k lowest-entropy proposals with sum(entropy) - max(entropy) <= `bound`: an upper bound on their
    mutual information, so the kept tokens are roughly independent given the canvas (EB-sampler,
    arXiv 2505.24857; DiffusionGemma's sampler). Always keeps at least one."""

    bound: float = 0.1

    def accept(self, confidence, entropy, *, step, steps):
        ordered, order = torch.sort(entropy, stable=True)
        keep = ordered.cumsum(0) - ordered <= self.bound
        return torch.zeros_like(keep).scatter(0, order, keep)


@dataclass(frozen=True)
class ConfidenceThreshold:
    """Keep every proposal whose probability is at least `threshold`, and always the most probable one."""

    threshold: float = 0.9

    def accept(self, confidence, entropy, *, step, steps):
        keep = confidence >= self.threshold
        keep[int(torch.argmax(confidence))] = True
        return keep


@dataclass(frozen=True)
class FixedCount:
    """Keep the `per_step` * (step + 1) most probable proposals: a linear share of the canvas, all of it from
    step ceil(length / per_step) on."""

    per_step: int = 16

    def accept(self, confidence, entropy, *, step, steps):
        k = min(confidence.numel(), self.per_step * (step + 1))
        keep = torch.zeros(confidence.numel(), dtype=torch.bool)
        keep[torch.sort(-confidence, stable=True).indices[:k]] = True
        return keep


ACCEPTANCE = {"entropy": EntropyBound, "threshold": ConfidenceThreshold, "count": FixedCount}


def make_acceptance(name: str, **options) -> AcceptanceRule:
    try:
        factory = ACCEPTANCE[name]
    except KeyError:
        raise ValueError(f"unknown acceptance rule {name!r}; choose from {', '.join(ACCEPTANCE)}") from None
    return factory(**options)


# --- options -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UniformOptions:
    """Sampling settings for one uniform-noise request. Defaults are DiffusionGemma's."""

    max_steps: int = 48  # per canvas
    acceptance: str = "entropy"  # entropy | threshold | count
    entropy_bound: float = 0.1  # entropy rule (nats)
    threshold: float = 0.9  # threshold rule
    per_step: int = 16  # count rule: proposals kept per step, cumulatively
    temperature: float = 0.8  # at a canvas's first step; 0: greedy proposals at every step
    final_temperature: float | None = 0.4  # linear schedule towards this (DiffusionGemma's t_min); None: constant
    top_p: float = 1.0
    stability_steps: int = 1  # the best guesses must equal those of this many previous steps to stop early
    stop_entropy: float = 0.005  # ...and their mean entropy (nats) be below this; 0: never stop early
    seed: int = 0
    canvas_length: int | None = None  # None: the model's
    prefix_cache: bool = True
    stop_at_eos: bool = True  # end at the first end-of-text token of a final canvas

    @classmethod
    def for_adapter(cls, adapter: ModelAdapter, **overrides) -> UniformOptions:
        """The checkpoint's own sampler settings (a DiffusionGemma `generation_config`), then `overrides`."""
        config = getattr(adapter, "generation_config", None)
        found = {}
        sampler = getattr(config, "sampler_config", None)
        if getattr(sampler, "entropy_bound", None) is not None:
            found.update(acceptance="entropy", entropy_bound=float(sampler.entropy_bound))
        for ours, theirs in (("max_steps", "max_denoising_steps"), ("temperature", "t_max"),
                             ("final_temperature", "t_min"), ("stability_steps", "stability_threshold"),
                             ("stop_entropy", "confidence_threshold")):
            value = getattr(config, theirs, None)
            if value is not None:
                found[ours] = value
        return cls(**{**found, **overrides})

    def acceptance_rule(self) -> AcceptanceRule:
        by_name = {
            "entropy": {"bound": self.entropy_bound},
            "threshold": {"threshold": self.threshold},
            "count": {"per_step": self.per_step},
        }
        return make_acceptance(self.acceptance, **by_name.get(self.acceptance, {}))

    @classmethod
    def for_request(cls, adapter: ModelAdapter, *, steps: int | None = None, schedule: str | None = None,
                    **given) -> UniformOptions:
        """The checkpoint's settings, then what a request or the command line asked for (None: not asked). The
        step budget is the most steps per canvas; schedule `threshold` / `entropy` picks the acceptance rule."""
        overrides = {k: v for k, v in {"max_steps": steps, **given}.items() if v is not None}
        if schedule in ("threshold", "entropy"):
            overrides["acceptance"] = schedule
        return cls.for_adapter(adapter, **overrides)

    def temperature_at(self, step: int) -> float:
        """DiffusionGemma's linear schedule: `temperature` at step 0, approaching `final_temperature` at the last
        (reached one step after it). Greedy (temperature 0) stays greedy."""
        if self.final_temperature is None or self.temperature == 0:
            return self.temperature
        remaining = (self.max_steps - step) / self.max_steps
        return self.final_temperature + (self.temperature - self.final_temperature) * remaining

    def validate(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        self.acceptance_rule()
        if self.entropy_bound <= 0:
            raise ValueError(f"entropy_bound must be > 0, got {self.entropy_bound}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.per_step < 1:
            raise ValueError(f"per_step must be at least 1, got {self.per_step}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.final_temperature is not None and self.final_temperature < 0:
            raise ValueError(f"final_temperature must be >= 0, got {self.final_temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.stability_steps < 0:
            raise ValueError(f"stability_steps must be >= 0, got {self.stability_steps}")
        if self.stop_entropy < 0:
            raise ValueError(f"stop_entropy must be >= 0, got {self.stop_entropy}")
        if self.canvas_length is not None and self.canvas_length < 1:
            raise ValueError(f"canvas_length must be at least 1, got {self.canvas_length}")


@dataclass(frozen=True)
class UniformForwardRequest(ForwardRequest):
    """A forward request that also carries the previous step's proposal logits [canvas, vocab] (None at a
    canvas's first step), for models with self-conditioning."""

    self_conditioning: torch.Tensor | None = None


# --- the state machine ---------------------------------------------------------------------------------


class UniformDenoiser(CanvasDenoiser):
    """State of one uniform-noise request (see `CanvasDenoiser` for generation and infilling). Free positions
    start, and are re-noised, as random ordinary tokens; positions still showing noise display their random
    token's own string, decoded alone, so a random piece of a UTF-8 character never merges into the text
    around it. A model trained with absorbing noise gets its mask instead, shown as a blank."""

    def __init__(self, adapter: ModelAdapter, document: Sequence[int], free: Sequence[bool], output_start: int,
                 length: int, options: UniformOptions, *, display: TokenDisplay,
                 controls=None):
        tokenizer = adapter.tokenizer
        self.steps_per_canvas = options.max_steps
        self.vocab = min(len(tokenizer), int(getattr(adapter, "vocab_size", None) or len(tokenizer)))
        self.noise_ids = ordinary_ids(tokenizer, self.vocab)
        self.absorbing = getattr(adapter, "noise", "uniform") == "absorbing"
        if self.absorbing:
            self.noise_ids = torch.tensor([tokenizer.mask_token_id])  # every noised position: the mask
        never = {tokenizer.pad_token_id, tokenizer.mask_token_id, *getattr(adapter, "never_propose", ())}
        self.banned = sorted(i for i in never if i is not None and i < self.vocab)
        self.rule = options.acceptance_rule()
        self.uses_self_conditioning = bool(getattr(adapter, "self_conditioning", False))
        self.self_conditioning: torch.Tensor | None = None
        self.history: list[torch.Tensor] = []  # best guesses of the previous steps (stability)
        self._bias: torch.Tensor | None = None  # -inf on banned ids, on the logits' device
        super().__init__(adapter, document, free, output_start, length, options, display=display,
                         controls=controls)

    def _fill(self) -> None:
        self.ids[self.free] = self._random(int(self.free.sum()))

    def _start_canvas(self) -> None:
        self.self_conditioning, self.history = None, []

    def _noise_strings(self, ids: list[int]) -> list[str]:
        if self.absorbing:  # a mask shows as a blank
            return super()._noise_strings(ids)
        return [self.display.strings([t])[0] for t in ids]

    def next_forward(self) -> UniformForwardRequest:
        if self.done:
            raise RuntimeError("request already finished")
        start, end = self.canvas()
        return UniformForwardRequest(ids=self.ids[:end], canvas=(start, end), block_size=self.canvas_length,
                                     cache=self.cache, self_conditioning=self.self_conditioning)

    def advance(self, logits: torch.Tensor) -> Step:
        """Turn the forward pass's canvas logits into one step."""
        start, end = self._check_output(logits)
        logits = self._guided(logits, start, end)
        options = self.options
        free = self.free[start:end].nonzero().squeeze(-1)
        positions = free + start
        temperature = options.temperature_at(self.canvas_step)
        drawn = draw(logits[free, : self.vocab], temperature=temperature, top_p=options.top_p,
                     generator=self.generator, banned=self.banned)
        proposal = self._proposal_logits(logits, temperature)
        best_confidence, best = (t.cpu()[free] for t in proposal.softmax(-1).max(-1))
        accepted = self.rule.accept(drawn.confidence, drawn.entropy, step=self.canvas_step, steps=options.max_steps)
        renoised = torch.where(accepted, drawn.tokens, self._random(len(free)))

        stable = len(self.history) >= options.stability_steps and all(torch.equal(best, h) for h in self.history)
        confident = float(drawn.entropy.mean()) < options.stop_entropy
        self.history = (self.history + [best])[-options.stability_steps :] if options.stability_steps else []
        self.index += 1
        self.canvas_step += 1
        if (stable and confident) or self.canvas_step >= options.max_steps:
            self.ids[positions] = best
            self.noise[positions] = 0.0
            self.confidence[positions] = best_confidence.double()
            self._finish_canvas(start, end)
        else:
            self.ids[positions] = renoised
            self.noise[positions] = torch.where(accepted, PROVISIONAL_NOISE, 1.0).double()
            self.confidence[positions] = torch.where(accepted, drawn.confidence, 0.0)
            if self.uses_self_conditioning:
                self.self_conditioning = self._self_conditioning(proposal, temperature, start, end)
        return self._step()

    def _proposal_logits(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        """The distribution proposals are drawn from, as float32 logits on the model's device: banned ids and ids
        past the vocabulary at -inf, then temperature (none when greedy) and top-p, as `draw` does."""
        if self._bias is None or self._bias.shape[0] != logits.shape[-1] or self._bias.device != logits.device:
            bias = torch.zeros(logits.shape[-1], dtype=torch.float32)
            bias[self.banned] = float("-inf")
            bias[self.vocab :] = float("-inf")
            self._bias = bias.to(logits.device)
        return tempered(logits.float() + self._bias, temperature=temperature, top_p=self.options.top_p)

    def _self_conditioning(self, proposal: torch.Tensor, temperature: float, start: int, end: int) -> torch.Tensor:
        """The proposal distribution as logits for the next step. Greedy proposals give its limit, a one-hot of the
        best guess; a fixed context token gives its own one-hot."""
        fixed = ~self.free[start:end]
        if temperature > 0 and not fixed.any():
            return proposal
        chosen = torch.where(fixed, self.ids[start:end], proposal.argmax(-1).cpu())
        one_hot = torch.full_like(proposal, float("-inf")).scatter(-1, chosen.to(proposal.device)[:, None], 0.0)
        if temperature == 0:
            return one_hot
        return torch.where(fixed.to(proposal.device)[:, None], one_hot, proposal)

    def _random(self, n: int) -> torch.Tensor:
        """n tokens drawn uniformly from the ordinary (non-special) vocabulary with the request's generator (the
        mask n times for a model trained with absorbing noise; the generator advances all the same)."""
        return self.noise_ids[torch.randint(len(self.noise_ids), (n,), generator=self.generator)]
