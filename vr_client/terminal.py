"""The live terminal view: a panel's TextState drawn with rich, masked positions as flickering noise.

It knows nothing about where steps come from (a local sampler or a server): it draws a `TextState`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from airquill.shared.text_state import TextState, noise_width, random_token_glyphs

NOISE_GLYPHS = "░▒▓·•∙◦⋅╌╍abcdefghijklmnopqrstuvwxyzßþæœ"


@dataclass
class Status:
    model: str = ""
    tokens_per_s: float = 0.0
    title: str = "airquill"


def render_state(state: TextState, status: Status, *, frame: int, fresh: set[int] = frozenset(), prompt: str = "") -> Panel:
    rng = random.Random(frame)
    body = Text(prompt, style="bold cyan")
    for i, cell in enumerate(state.cells):
        if cell.noise >= 1.0:
            shown = random_token_glyphs(cell.text, i)  # uniform noise shows its random tokens' own letters
            shown = shown or "".join(rng.choice(NOISE_GLYPHS) for _ in range(noise_width(i)))
            body.append(shown, style="grey39")
        elif cell.noise > 0:  # provisional (uniform) or blurred (continuous): the blurrier, the dimmer
            body.append(cell.text, style="grey46" if cell.noise > 0.5 else "grey62")
        else:
            style = "bold green" if i in fresh else ("white" if cell.confidence >= 0.5 else "yellow")
            body.append(cell.text, style=style)
    line = Text(
        f"step {state.step}/{state.total} · {state.settled}/{len(state.cells)} tokens · "
        f"{status.tokens_per_s:,.0f} tok/s · {status.model}",
        style="dim",
    )
    return Panel(Group(body, line), title=status.title, border_style="blue")
