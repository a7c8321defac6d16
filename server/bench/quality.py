"""Quality figures for generated text: generative perplexity under a scorer (the AR twin), per-sample unigram
entropy, distinct-n. Low entropy (repetition) makes perplexity look good, so figures travel together."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from airquill.server.sampling.noise import tempered


def unigram_entropy(tokens: Sequence[int]) -> float:
    """Entropy (nats) of one sample's token unigram distribution."""
    if not tokens:
        return 0.0
    counts = Counter(tokens)
    n = len(tokens)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def mean_unigram_entropy(samples: Sequence[Sequence[int]]) -> float:
    return sum(unigram_entropy(s) for s in samples) / max(1, len(samples))


def distinct_n(samples: Sequence[Sequence[int]], n: int = 2) -> float:
    """Share of n-grams (over all samples) that are unique: 1.0 means no n-gram repeats."""
    grams = [tuple(s[i : i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _scored(scorer, prompts: Sequence[Sequence[int]], samples: Sequence[Sequence[int]], batch_size: int):
    """The scorer over (prompt + sample) texts, a chunk at a time: its logits for each next token, the next
    tokens, and which of them are sample tokens (rows with an empty sample are left out)."""
    device = next(scorer.parameters()).device
    pairs = [(list(p), list(s)) for p, s in zip(prompts, samples) if s]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        width = max(len(p) + len(s) for p, s in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        attention = torch.zeros(len(chunk), width, dtype=torch.long)
        scored = torch.zeros(len(chunk), width, dtype=torch.bool)
        for row, (p, s) in enumerate(chunk):
            seq = p + s
            ids[row, : len(seq)] = torch.tensor(seq)
            attention[row, : len(seq)] = 1
            scored[row, len(p) : len(seq)] = True
        logits = scorer(input_ids=ids.to(device), attention_mask=attention.to(device)).logits.float().cpu()
        yield logits[:, :-1], ids[:, 1:], scored[:, 1:]


@torch.inference_mode()
def generative_perplexity(scorer, prompts: Sequence[Sequence[int]], samples: Sequence[Sequence[int]], *,
                          batch_size: int = 16) -> float:
    """exp(mean negative log-likelihood) of the sample tokens given their prompts, under a causal LM."""
    total_nll, total_tokens = 0.0, 0
    for logits, targets, mask in _scored(scorer, prompts, samples, batch_size):
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        total_nll += float(nll[mask].sum())
        total_tokens += int(mask.sum())
    return math.exp(total_nll / max(1, total_tokens))


@torch.inference_mode()
def drawn_probabilities(scorer, prompts: Sequence[Sequence[int]], samples: Sequence[Sequence[int]], *,
                        temperature: float, top_p: float, batch_size: int = 16) -> list[list[float]]:
    """Per sample, each token's probability under the scorer's sampling distribution (tempered, cut to the top-p
    nucleus) given the text before it: how sure a sampler with the whole left context could have been."""
    out = []
    for logits, targets, mask in _scored(scorer, prompts, samples, batch_size):
        probs = torch.softmax(tempered(logits, temperature=temperature, top_p=top_p), dim=-1)
        drawn = probs.gather(-1, targets[..., None]).squeeze(-1)
        out += [row[keep].tolist() for row, keep in zip(drawn, mask)]
    return out
