"""What the canvas-by-canvas families share: a document whose free positions are generated one canvas at a time
after a clean prefix (uniform noise, continuous embeddings).

A `CanvasDenoiser` holds the document, the plan of canvases, the prefix cache, the per-position noise and
confidence the client sees, and the bookkeeping of steps, cancellation and the end of text. A family adds how
free positions start (`_fill`), what a forward pass needs (`next_forward`) and how its output becomes a step
(`advance`, which calls `_finish_canvas` when a canvas is final).

Generation: a clean prefix, then canvases for `length` output tokens (the last canvas is computed whole; what
lies past `length` is not shown). Infilling: the whole text is output, its spans are free, and a canvas
starts at the first free position not yet covered; the context tokens inside a canvas stay fixed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.controls import Controls, ControlState, check_edit_controls, generation_length
from airquill.server.sampling.display import TokenDisplay
from airquill.server.sampling.masked import (Span, check_document_length, check_length, infill_layout,
                                             prompt_tokens)
from airquill.shared.step import FinishReason, Step, TokenChange


class CanvasDenoiser:
    """State of one request of a canvas-by-canvas family. `options` needs `validate()`, `canvas_length`,
    `prefix_cache` and `stop_at_eos`; `steps_per_canvas` is the most steps a canvas takes."""

    steps_per_canvas: int

    def __init__(self, adapter: ModelAdapter, document: Sequence[int], free: Sequence[bool], output_start: int,
                 length: int, options, *, display: TokenDisplay, controls: Controls | None = None):
        options.validate()
        if len(document) != len(free) or not any(free):
            raise ValueError("nothing to generate: no free positions")
        if free[0] or any(free[:output_start]):
            raise ValueError("a canvas needs clean context before it (a prompt, or text before the first span)")
        if not 1 <= length <= len(document) - output_start:
            raise ValueError(f"length must be between 1 and {len(document) - output_start}, got {length}")
        self.adapter, self.options, self.display = adapter, options, display
        self.canvas_length = options.canvas_length or canvas_length_of(adapter)
        self.generator = torch.Generator().manual_seed(options.seed)
        self.output_start, self.length = output_start, length
        self.free = torch.tensor(list(free), dtype=torch.bool)
        self.ids = torch.tensor(list(document), dtype=torch.long)
        self.noise = torch.where(self.free, 1.0, 0.0).double()
        self.confidence = torch.where(self.free, 0.0, 1.0).double()
        self.canvases = plan_canvases(self.free, self.canvas_length)
        self.cache = adapter.new_cache() if options.prefix_cache else None
        self.canvas_index, self.canvas_step, self.index = 0, 0, 0
        self.total = len(self.canvases) * self.steps_per_canvas
        self.finish: FinishReason | None = None
        self.cancel_requested = False
        self.end_id: int | None = None  # set by for_generation when options.stop_at_eos
        self.control: ControlState | None = None
        if controls is not None and controls.active:
            self.control = ControlState.build(controls, adapter, display, output_start, self.canvases,
                                              int(self.free[output_start:].sum()))
        self._fill()
        self.strings, self.shown, self.shown_noise = self._display()

    def _fill(self) -> None:
        """Give the free positions their starting state (ids, and whatever else the family keeps)."""
        raise NotImplementedError

    # --- construction ------------------------------------------------------------------------------

    @classmethod
    def for_generation(cls, adapter: ModelAdapter, prompt: str, length: int, options, *,
                       display: TokenDisplay | None = None, controls: Controls | None = None):
        """`length` tokens after the prompt; with a length in words (`controls`), a budget that holds them."""
        prefix = list(getattr(adapter, "prompt_prefix", ())) + prompt_tokens(adapter, prompt)
        canvas = options.canvas_length or canvas_length_of(adapter)
        limit = (adapter.max_length - len(prefix)) // canvas * canvas
        length = generation_length(controls, length, canvas, limit)
        check_length(length, limit)
        n = math.ceil(length / canvas) * canvas
        state = cls(adapter, prefix + [0] * n, [False] * len(prefix) + [True] * n, len(prefix), length, options,
                    display=display or TokenDisplay(adapter.tokenizer), controls=controls)
        state.end_id = adapter.tokenizer.eos_token_id if options.stop_at_eos else None
        return state

    @classmethod
    def for_infill(cls, adapter: ModelAdapter, text: str, spans: Sequence[Span], options, *,
                   display: TokenDisplay | None = None, controls: Controls | None = None):
        """Re-noise the spans of `text` and refine only them; the rest stays byte-identical."""
        check_edit_controls(controls)
        display = display or TokenDisplay(adapter.tokenizer)
        pieces, tail = infill_layout(adapter, display, text, spans)
        prefix = list(getattr(adapter, "prompt_prefix", ()))
        document, free = list(prefix), [False] * len(prefix)
        for context, n in pieces:
            document += context + [0] * n
            free += [False] * len(context) + [True] * n
        document, free = document + tail, free + [False] * len(tail)
        check_document_length(adapter, len(document))
        return cls(adapter, document, free, len(prefix), len(document) - len(prefix), options, display=display,
                   controls=controls)

    # --- the state machine -------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.finish is not None

    def cancel(self) -> None:
        """Ask to stop; the driver ends the request before its next forward pass."""
        self.cancel_requested = True

    def canvas(self) -> tuple[int, int]:
        """[start, end) of the canvas being refined (after the last one when done)."""
        if self.canvas_index < len(self.canvases):
            return self.canvases[self.canvas_index]
        return len(self.ids), len(self.ids)

    def _check_output(self, output: torch.Tensor) -> tuple[int, int]:
        start, end = self.canvas()
        if output.shape[0] != end - start:
            raise ValueError(f"expected logits for {end - start} canvas positions, got {output.shape[0]}")
        return start, end

    def _guided(self, logits: torch.Tensor, start: int, end: int, on_logits: bool = True) -> torch.Tensor:
        """The canvas's logits with the request's controls applied (keywords, style; no end of text before a
        length in words is nearly reached); `on_logits=False`: keywords are only placed, not pushed."""
        if self.control is None:
            return logits
        logits = self.control.guide(self.ids, logits, self.canvas_index, start, end, self.free[start:end],
                                    first_step=self.canvas_step == 0, on_logits=on_logits)
        settled = self.ids[self.output_start : start].tolist()
        if self.end_id is not None and self.control.too_early_to_end(settled):
            logits[:, self.end_id] = float("-inf")
        return logits

    def _finish_canvas(self, start: int, end: int) -> None:
        """The canvas is final: it joins the prefix; stop at an end-of-text token, at a length in words, or after
        the last canvas."""
        self.canvas_index, self.canvas_step = self.canvas_index + 1, 0
        visible_end = min(end, self.output_start + self.length)
        if self.end_id is not None:
            hits = (self.ids[start:visible_end] == self.end_id).nonzero()
            if len(hits):
                self.length = start - self.output_start + int(hits[0])
                self.finish = FinishReason.DONE
        if self.control is not None and self.finish is None:
            last = self.canvas_index == len(self.canvases)
            keep = self.control.cut(self.ids[self.output_start : visible_end].tolist(), final=last)
            if keep is not None:
                self.length, self.finish = keep, FinishReason.DONE
        if self.canvas_index == len(self.canvases):
            self.finish = FinishReason.DONE
        if self.finish is not None:  # drop what lies past the output (the last canvas's tail, text after the end)
            kept = self.output_start + self.length
            self.ids, self.noise, self.confidence = self.ids[:kept], self.noise[:kept], self.confidence[:kept]
        else:
            self._start_canvas()

    def _start_canvas(self) -> None:
        """Called when the next canvas becomes the current one."""

    def finish_cancelled(self) -> Step:
        self.finish = FinishReason.CANCELLED
        return self._step()

    # --- results -----------------------------------------------------------------------------------

    def _noise_strings(self, ids: list[int]) -> list[str]:
        """What positions that still show noise display: nothing (a blank, drawn as noise glyphs)."""
        return [""] * len(ids)

    def _display(self) -> tuple[list[str], list[int], list[float]]:
        """Display strings, token ids and noise of the output."""
        end = self.output_start + self.length
        out = self.ids[self.output_start : end].tolist()
        noise = self.noise[self.output_start : end].tolist()
        runs = self.display.strings([None if n >= 1.0 else t for t, n in zip(out, noise)])
        noisy = [i for i, n in enumerate(noise) if n >= 1.0]
        for i, s in zip(noisy, self._noise_strings([out[i] for i in noisy])):
            runs[i] = s
        return runs, out, noise

    def _step(self) -> Step:
        strings, out, noise = self._display()
        conf = self.confidence[self.output_start : self.output_start + self.length].tolist()
        changes = tuple(
            TokenChange(i, out[i], strings[i], conf[i], noise[i])
            for i in range(len(out))
            if out[i] != self.shown[i] or strings[i] != self.strings[i] or noise[i] != self.shown_noise[i]
        )
        self.strings, self.shown, self.shown_noise = strings, out, noise
        return Step(index=self.index, total=self.total, length=len(out), changes=changes, finish=self.finish)

    def initial_step(self) -> Step:
        """Step 0: the starting canvases, for clients that draw it first."""
        conf = self.confidence[self.output_start : self.output_start + self.length].tolist()
        changes = tuple(TokenChange(i, t, self.strings[i], conf[i], self.shown_noise[i])
                        for i, t in enumerate(self.shown))
        return Step(index=0, total=self.total, length=len(self.shown), changes=changes)

    @property
    def output_ids(self) -> list[int]:
        return self.ids[self.output_start : self.output_start + self.length].tolist()

    @property
    def text(self) -> str:
        """What the output shows now (the generated text once finished)."""
        return "".join(self._display()[0])


def canvas_length_of(adapter: ModelAdapter) -> int:
    """The canvas a model was trained on, else its default block size."""
    return int(getattr(adapter, "canvas_length", None) or adapter.default_block_size)


def plan_canvases(free: torch.Tensor, canvas_length: int) -> list[tuple[int, int]]:
    """[start, end) of each canvas, in order: one starts at every free position not yet covered by an earlier
    canvas and spans `canvas_length` positions (fewer at the end of the document)."""
    canvases, covered = [], 0
    for i in free.nonzero().squeeze(-1).tolist():
        if i >= covered:
            covered = min(i + canvas_length, len(free))
            canvases.append((i, covered))
    return canvases
