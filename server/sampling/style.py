"""Style classifiers for the style control: linear bag-of-tokens logistic regressions over the shipped
tokenizer's vocabulary, question vs statement, two of them trained on disjoint halves of the corpus's verses
(`airquill train-style`): generation is guided by one (`guide`) and judged by the other (`judge`), so the
guidance cannot simply fool its own judge.

A verse is a question when it ends with "?"; every token that contains "?" is left out of the features, so a
classifier must read the wording ("why", "wherefore", "shall I"), and guidance cannot just add question marks.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from airquill.assets import MODELS

STYLE_MODEL = MODELS / "kjv-style"
LABELS = ("statement", "question")


@dataclass(frozen=True)
class StyleClassifier:
    weight: torch.Tensor  # [vocab]: the "question" direction
    bias: float

    def probability(self, ids: list[int], label: str = "question") -> float:
        """p(label | text) from the share of each token in the text."""
        if not ids:
            return 0.5
        counts = torch.bincount(torch.tensor(ids), minlength=len(self.weight)).float() / len(ids)
        p = float(torch.sigmoid(counts @ self.weight.float() + self.bias))
        return p if label == "question" else 1 - p


@functools.lru_cache(maxsize=8)
def load_classifier(which: str, folder: Path = STYLE_MODEL) -> StyleClassifier:
    """A shipped (or given) classifier, read once per process."""
    from safetensors.torch import load_file

    path = folder / f"{which}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"the style classifier is missing at {path}; reinstall airquill")
    tensors = load_file(path)
    return StyleClassifier(tensors["weight"], float(tensors["bias"]))


def style_weights(adapter, label: str, folder: Path = STYLE_MODEL) -> torch.Tensor:
    """The guide classifier's pull of each token towards `label` as a logit bias per vocabulary entry, scaled so
    the most telling token gets 1 (the control's strength multiplies it)."""
    if label not in LABELS:
        raise ValueError(f"unknown style {label!r}; choose from {', '.join(LABELS)}")
    guide = load_classifier("guide", folder)
    vocab = len(adapter.tokenizer)
    if len(guide.weight) != vocab:
        raise ValueError(f"the style classifier reads the shipped tokenizer ({len(guide.weight)} tokens); "
                         f"{adapter.name} has {vocab}")
    direction = guide.weight.float() / guide.weight.abs().max().clamp_min(1e-9)  # the strongest token moves 1
    return direction * (1.0 if label == "question" else -1.0)


# --- training ---------------------------------------------------------------------------------------------------


def labelled_verses(corpus: Path) -> list[tuple[str, int]]:
    """(verse without its final punctuation, 1 for a question) for every verse line of the corpus."""
    from airquill.server.training.corpus import load_corpus

    out = []
    data = load_corpus(corpus)
    for doc in data.train + data.heldout:
        for line in doc.splitlines()[1:]:  # the first line of a chapter is its title
            line = line.strip()
            if len(line.split()) >= 3:
                out.append((line.rstrip(".?!;:, "), int(line.endswith("?"))))
    return out


def _features(texts: list[str], tokenizer, excluded: torch.Tensor) -> torch.Tensor:
    vocab = len(tokenizer)
    rows = []
    for text in texts:
        ids = torch.tensor(tokenizer(" " + text, add_special_tokens=False)["input_ids"])
        counts = torch.bincount(ids, minlength=vocab).float()
        counts[excluded] = 0
        rows.append(counts / max(1, len(ids)))
    return torch.stack(rows)


def _fit(x: torch.Tensor, y: torch.Tensor, *, l2: float, steps: int) -> tuple[torch.Tensor, float]:
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.5)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weight + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        optimizer.step()
    return weight.detach(), float(bias.detach())


def train_style_classifiers(corpus: Path, tokenizer, out: Path, *, seed: int = 0, l2: float = 1e-4,
                            steps: int = 300) -> dict:
    """Train the guide on the even verses and the judge on the odd ones (classes balanced by subsampling
    statements), each tested on the other's half; save both and a card. Returns the accuracies."""
    from safetensors.torch import save_file

    verses = labelled_verses(corpus)
    excluded = torch.tensor([i for t, i in tokenizer.get_vocab().items() if "?" in tokenizer.convert_tokens_to_string([t])])
    generator = torch.Generator().manual_seed(seed)
    halves = {}
    for name, part in (("guide", verses[0::2]), ("judge", verses[1::2])):
        questions = [v for v in part if v[1]]
        statements = [v for v in part if not v[1]]
        keep = torch.randperm(len(statements), generator=generator)[: len(questions)].tolist()
        balanced = questions + [statements[i] for i in keep]
        halves[name] = (_features([t for t, _ in balanced], tokenizer, excluded),
                        torch.tensor([float(y) for _, y in balanced]))
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, other in (("guide", "judge"), ("judge", "guide")):
        x, y = halves[name]
        weight, bias = _fit(x, y, l2=l2, steps=steps)
        save_file({"weight": weight.half().float(), "bias": torch.tensor(bias)}, out / f"{name}.safetensors")
        tx, ty = halves[other]
        results[f"{name}_accuracy_on_{other}_half"] = float(((tx @ weight + bias > 0).float() == ty).float().mean())
    results.update(verses=len(verses), questions=sum(y for _, y in verses), labels=list(LABELS), l2=l2,
                   steps=steps, seed=seed)
    (out / "style.json").write_text(json.dumps(results, indent=2))
    return results
