"""Layout constants shared by the panel text: the width of a noise glyph. The layout itself is incremental and
lives with the rows it produces (`render/panel_text.py`)."""
from __future__ import annotations

from airquill.shared.text_state import noise_width

NOISE_ADVANCE = 0.75  # em per noise glyph: 2–5 of them are about as wide as the token that replaces them

__all__ = ["NOISE_ADVANCE", "noise_width"]
