"""Drawing tokens from logits: temperature, top-p and the Gumbel-max trick in float64.

Float32 Gumbel noise is too coarse in its tails and silently lowers the effective temperature, so the noise
and the logits it is added to are float64. Each request owns its torch.Generator, which makes a request's
tokens independent of what else is in the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# what a noised canvas position of the DiffusionGemma-shaped family becomes: a random ordinary token, or the mask
# (a model trained with absorbing noise, for comparison); training and sampling read the model's choice
CANVAS_NOISES = ("uniform", "absorbing")


@dataclass(frozen=True)
class Draw:
    tokens: torch.Tensor  # [n] long
    confidence: torch.Tensor  # [n] float64, probability of the drawn token under the sampling distribution
    entropy: torch.Tensor  # [n] float64, entropy (nats) of the sampling distribution


def draw(logits: torch.Tensor, *, temperature: float, top_p: float, generator: torch.Generator,
         banned: list[int] = (), penalized: torch.Tensor | None = None, penalty: float = 1.0) -> Draw:
    """Draw one token per row; `banned` ids (mask, padding) are never drawn; `penalized` ids (the tokens
    already in the nearby text) have their logits pushed down by `penalty` (CTRL's repetition penalty:
    positive logits divided, negative ones multiplied)."""
    logits = logits.detach().to("cpu", torch.float64)
    if penalty != 1.0 and penalized is not None and penalized.numel():
        chosen = logits[:, penalized]
        logits[:, penalized] = torch.where(chosen > 0, chosen / penalty, chosen * penalty)
    if banned:
        logits[:, list(banned)] = float("-inf")
    if temperature > 0:
        logits = logits / temperature
    columns = None
    if top_p < 1.0:  # only the nucleus's columns go on: the same draw over a far narrower table
        columns, logits = nucleus(logits, top_p)
    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp()
    entropy = -(probs * torch.where(probs > 0, logp, torch.zeros_like(logp))).sum(-1)
    if temperature > 0:
        u = torch.rand(logits.shape, generator=generator, dtype=torch.float64).clamp_(1e-300, 1.0)
        picked = (logp - torch.log(-torch.log(u))).argmax(-1)
    else:
        picked = logp.argmax(-1)
    confidence = probs.gather(-1, picked[:, None]).squeeze(-1)
    tokens = picked if columns is None else columns.gather(-1, picked[:, None]).squeeze(-1)
    return Draw(tokens=tokens, confidence=confidence, entropy=entropy)


def tempered(logits: torch.Tensor, *, temperature: float, top_p: float) -> torch.Tensor:
    """The sampling distribution's logits, in the dtype and on the device given: divided by the temperature
    (unchanged when greedy), then cut to the top-p nucleus."""
    if temperature > 0:
        logits = logits / temperature
    return _top_p(logits, top_p) if top_p < 1.0 else logits


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    columns, kept = nucleus(logits, top_p)
    return torch.full_like(logits, float("-inf")).scatter(-1, columns, kept)


def nucleus(logits: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-p nucleus of each row: (columns [rows, k], their logits, those outside the nucleus at -inf) — the
    smallest set of the most likely tokens whose probability reaches top_p, as a full sort finds it, found by a
    partial one (topk) over the only tokens that can belong: a token under (1 - top_p) / vocabulary in
    probability never does, since all of those together hold less than 1 - top_p."""
    width = logits.shape[-1]
    normalizer = logits.logsumexp(-1, keepdim=True)
    floor = math.log((1.0 - top_p) / width)
    k = max(1, int((logits - normalizer >= floor).sum(-1).max()))
    values, columns = logits.topk(k, dim=-1)  # descending
    probs = (values - normalizer).exp()
    drop = probs.cumsum(-1) - probs >= top_p  # keep the smallest set reaching top_p
    return columns, values.masked_fill(drop, float("-inf"))


def ordinary_ids(tokenizer, vocab_size: int) -> torch.Tensor:
    """The ids uniform noise is drawn from: every id below `vocab_size` that is not a special token. The
    sampler's starting canvases and the uniform training objective use the same set."""
    special = set(tokenizer.all_special_ids)
    ids = torch.tensor([i for i in range(vocab_size) if i not in special], dtype=torch.long)
    if not len(ids):
        raise ValueError("the vocabulary has no ordinary tokens to draw noise from")
    return ids
