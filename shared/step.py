"""What one denoising step changed: the unit every driver yields, the protocol carries and panels apply.

A position is an index into the request's output tokens. `noise` is 1.0 for a position that shows noise (a
masked token, or a uniform-noise token still being refined) and 0.0 for a settled token; families in between
(continuous embeddings) report their own level. Display strings of all positions concatenate to the text.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FinishReason(str, Enum):
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class TokenChange:
    position: int
    token_id: int
    text: str
    confidence: float
    noise: float


@dataclass(frozen=True, slots=True)
class Step:
    index: int  # 1-based count of forward passes so far
    total: int  # promised steps (fixed schedules) or the maximum (adaptive ones)
    length: int  # number of output positions
    changes: tuple[TokenChange, ...]
    finish: FinishReason | None = None

    @property
    def is_final(self) -> bool:
        return self.finish is not None
