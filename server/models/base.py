"""The interface between samplers and models: one batched forward pass over requests' canvases."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerBase


@dataclass
class PrefixCache:
    """Keys and values of a request's clean prefix, one (k, v) pair per layer, each [heads, length, dim]."""

    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    length: int = 0  # tokens of the prefix that have passed through the cache

    @property
    def kept(self) -> int:
        """How many of them are still held (a sliding window may have dropped the oldest)."""
        return self.layers[0][0].shape[-2] if self.layers else 0


@dataclass(frozen=True)
class ForwardRequest:
    """What one request needs from the next forward pass.

    `ids` is the request's whole document: positions before `canvas[0]` are clean and final (cacheable),
    positions in `canvas` are being denoised (some may be fixed context), later positions are still masked.
    The adapter returns logits for the canvas positions only.
    """

    ids: torch.Tensor
    canvas: tuple[int, int]
    block_size: int
    cache: PrefixCache | None = None


class ModelAdapter(ABC):
    """A denoiser: given requests, one forward pass, logits for each canvas."""

    name: str
    family: str = "masked"
    tokenizer: PreTrainedTokenizerBase
    mask_id: int
    max_length: int
    default_block_size: int
    widest_block_size: int
    device: torch.device
    forward_passes: int = 0  # counted by adapters, read by benchmarks
    tokens_processed: int = 0

    def new_cache(self) -> PrefixCache | None:
        """A fresh prefix cache, or None when the model cannot reuse its prefix exactly."""
        return None

    @abstractmethod
    def forward(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        """Logits [canvas length, vocab] for every request, in one batched pass where the model allows."""


def required_special_id(tokenizer: PreTrainedTokenizerBase, attribute: str, model: str) -> int:
    token_id = getattr(tokenizer, attribute, None)
    if token_id is None:
        raise ValueError(f"{model}: the tokenizer has no {attribute.removesuffix('_id').replace('_', ' ')}; "
                         "a masked diffusion model needs one")
    return int(token_id)
