"""Layout constants shared by the panel text: the width of a noise glyph. The layout itself is incremental and
lives with the rows it produces (`render/panel_text.py`)."""
from __future__ import annotations

from airquill.shared.text_state import noise_width

NOISE_ADVANCE = 0.55  # em per noise glyph

__all__ = ["NOISE_ADVANCE", "noise_width"]
