"""Shared fixtures: a tiny tokenizer trained on the spot, a tiny deterministic denoiser, a tiny random
block-diffusion model (real transformers code, random weights)."""
from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter, PrefixCache
from airquill.server.training.architecture import ModelShape, build_model
from airquill.server.training.tokenizer import train_tokenizer

SAMPLE_TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "Привет, мир! Как дела? Всё хорошо.",
    "日本語のテキストと中文文本。",
    "Emoji too: 🙂🚀✨ and mixed text.",
] * 4


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(SAMPLE_TEXTS, vocab_size=400)


class TinyDeterministic(ModelAdapter):
    """Logits are a fixed function of (position, the clean tokens before the canvas, the canvas's fixed
    tokens), computed per request, so a batch gives exactly what one-by-one runs give."""

    family = "masked"

    def __init__(self, tokenizer, *, max_length: int = 512, block: int = 8, use_cache: bool = True):
        self.tokenizer, self.name = tokenizer, "tiny-deterministic"
        self.mask_id = tokenizer.mask_token_id
        self.max_length, self.default_block_size, self.widest_block_size = max_length, block, 64
        self.device = torch.device("cpu")
        self.use_cache = use_cache
        self.calls: list[int] = []  # batch size of every forward pass
        vocab = len(tokenizer)
        special = torch.tensor(sorted(tokenizer.all_special_ids))
        self.bias = torch.zeros(vocab)
        self.bias[special] = -1e4  # never propose special tokens

    def new_cache(self):
        return PrefixCache() if self.use_cache else None

    def forward(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        self.calls.append(len(requests))
        vocab = len(self.tokenizer)
        out = []
        for r in requests:
            start, end = r.canvas
            if r.cache is not None:
                r.cache.length = start
            context = int(r.ids[:start].sum()) % 97
            canvas = r.ids[start:end]
            fixed = int(canvas[canvas != self.mask_id].sum()) % 89
            pos = torch.arange(start, end, dtype=torch.float64)[:, None]
            v = torch.arange(vocab, dtype=torch.float64)[None, :]
            logits = 4 * torch.sin(v * 0.731 + pos * 1.37 + context * 0.11 + fixed * 0.07) + self.bias.double()
            out.append(logits.float())
        return out


@pytest.fixture()
def tiny(tokenizer):
    return TinyDeterministic(tokenizer)


@pytest.fixture(scope="session")
def make_tiny(tokenizer):  # session-scoped: a factory holds no state
    """A factory for fresh tiny deterministic models (each counts its own forward passes)."""
    return lambda **options: TinyDeterministic(tokenizer, **options)


@pytest.fixture(scope="session")
def tiny_llama(tokenizer):
    """Real transformers Llama code, random weights, used block-causally."""
    from airquill.server.models.block_diffusion import BlockDiffusionAdapter

    torch.manual_seed(0)
    model = build_model(ModelShape(hidden=32, layers=2, heads=2, intermediate=64, max_positions=512),
                        tokenizer, "masked", block_size=8)
    model.config.airquill_block_sizes = [8, 16, 64]
    return BlockDiffusionAdapter(model, tokenizer, name="tiny-llama")
