"""Driving the terminal view from a stream of steps (local sampler or server)."""
from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Console
from rich.live import Live

from airquill.shared.step import Step
from airquill.shared.text_state import TextState
from airquill.vr_client.terminal import Status, render_state

FLICKER_S = 0.05


def show_steps(steps: Iterable[Step], *, prompt: str, model: str, pace: float = 0.0, live: bool | None = None,
               console: Console | None = None) -> str:
    """Show every step as it arrives; return the final text. `pace` is a minimum time per shown step so a
    fast model can be watched; the noise keeps flickering while waiting."""
    if console is None:  # an explicit --live draws frames even into a pipe (tests, recordings)
        console = Console(stderr=True, force_terminal=True if live else None)
    live = console.is_terminal if live is None else live
    state, status = TextState(), Status(model=model)
    if not live:
        for step in steps:
            state.apply(step)
        return state.text
    waited, generated, frame = 0.0, 0, 0
    stream = iter(steps)
    with Live(console=console, auto_refresh=False, transient=False) as view:
        while True:
            asked = time.perf_counter()
            step = next(stream, None)
            shown_at = time.perf_counter()
            waited += shown_at - asked  # time spent producing steps, not watching them
            if step is None:
                break
            fresh = {c.position for c in step.changes if c.noise == 0.0}
            generated += len(fresh)
            state.apply(step)
            status.tokens_per_s = generated / max(1e-9, waited)
            while True:
                frame += 1
                view.update(render_state(state, status, frame=frame, fresh=fresh, prompt=prompt), refresh=True)
                left = pace - (time.perf_counter() - shown_at)
                if left <= 0:
                    break
                time.sleep(min(FLICKER_S, left))
    return state.text
