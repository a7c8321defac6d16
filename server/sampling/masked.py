"""The masked (absorbing-state) family as a per-request state machine: MDLM / LLaDA / BD3-LM sampling.

A request is a document of token ids in which some positions are masked: the tail after a prompt
(generation) or spans inside a text (infilling). Blocks aligned to `block_size` are denoised in order; the
finished blocks before the current one form the clean, cacheable prefix. Each call pair
`next_forward()` -> `advance(logits)` is one forward pass and returns one `Step`. A committed token never
changes; predictions for positions not committed are discarded and made afresh at the next step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter
from airquill.server.sampling.controls import Controls, ControlState, check_edit_controls, generation_length
from airquill.server.sampling.display import TokenDisplay
from airquill.server.sampling.noise import draw
from airquill.server.sampling.options import SamplingOptions
from airquill.shared.step import FinishReason, Step, TokenChange


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a text to regenerate, optionally with a new length in tokens."""

    start: int
    end: int
    new_length: int | None = None


class MaskedDenoiser:
    """State of one masked-diffusion request."""

    def __init__(
        self,
        adapter: ModelAdapter,
        document: Sequence[int],
        output_start: int,
        options: SamplingOptions,
        *,
        block_size: int,
        display: TokenDisplay,
        controls: Controls | None = None,
    ):
        options.validate()
        self.adapter, self.options, self.display = adapter, options, display
        self.mask_id = adapter.mask_id
        pad_id = adapter.tokenizer.pad_token_id
        self.banned = sorted({self.mask_id} | ({pad_id} if pad_id is not None else set()))
        self.ids = torch.tensor(list(document), dtype=torch.long)
        self.output_start = output_start
        self.block_size = block_size
        self.schedule = options.commit_schedule()
        self.generator = torch.Generator().manual_seed(options.seed)
        self.cache = adapter.new_cache() if options.prefix_cache else None
        self.confidence = torch.zeros(len(self.ids), dtype=torch.float64)
        self.confidence[~self._masked()] = 1.0
        self.blocks = self._plan_blocks()
        self.block_index, self.block_step = 0, 0
        self.index = 0
        self.total = sum(steps for _, _, steps, _ in self.blocks)
        self.finish: FinishReason | None = None
        self.cancel_requested = False
        self.end_id = None  # set by for_generation when options.stop_at_eos
        self.control: ControlState | None = None
        if controls is not None and controls.active:
            masked = int(self._masked()[output_start:].sum())
            self.control = ControlState.build(controls, adapter, display, output_start,
                                              [(b[0], b[1]) for b in self.blocks], masked)
        self.strings = self.display.strings(self._visible_ids())
        self.shown = self.output_ids

    # --- construction ------------------------------------------------------------------------------

    @classmethod
    def for_generation(cls, adapter: ModelAdapter, prompt: str, length: int, options: SamplingOptions, *,
                       display: TokenDisplay | None = None, controls: Controls | None = None) -> MaskedDenoiser:
        """`length` tokens after the prompt; with a length in words (`controls`), a budget that holds them."""
        prompt_ids = prompt_tokens(adapter, prompt)
        block = options.block_size or adapter.default_block_size
        limit = adapter.max_length - len(prompt_ids)
        length = generation_length(controls, length, block, limit)
        check_length(length, limit)
        state = cls(adapter, prompt_ids + [adapter.mask_id] * length, len(prompt_ids), options,
                    block_size=block, display=display or TokenDisplay(adapter.tokenizer), controls=controls)
        state.end_id = adapter.tokenizer.eos_token_id if options.stop_at_eos else None
        return state

    @classmethod
    def for_infill(cls, adapter: ModelAdapter, text: str, spans: Sequence[Span], options: SamplingOptions, *,
                   display: TokenDisplay | None = None, controls: Controls | None = None) -> MaskedDenoiser:
        check_edit_controls(controls)
        display = display or TokenDisplay(adapter.tokenizer)
        pieces, tail = infill_layout(adapter, display, text, spans)
        document: list[int] = []
        for context, n in pieces:
            document += context + [adapter.mask_id] * n
        document += tail
        check_document_length(adapter, len(document))
        block = options.block_size or adapter.widest_block_size
        return cls(adapter, document, 0, options, block_size=block, display=display, controls=controls)

    def _plan_blocks(self) -> list[tuple[int, int, int, int]]:
        """(start, end, steps, masked count) for each block holding masked positions, in order."""
        masked = self._masked()
        spans = []
        for start in range(0, len(self.ids), self.block_size):
            end = min(start + self.block_size, len(self.ids))
            n = int(masked[start:end].sum())
            if n:
                spans.append((start, end, n))
        if not spans:
            raise ValueError("nothing to generate: no masked positions")
        if self.schedule.adaptive:
            return [(s, e, self.schedule.block_steps(n, 0), n) for s, e, n in spans]
        if self.options.steps < len(spans):
            raise ValueError(f"steps must be at least the number of blocks ({len(spans)}), got {self.options.steps}")
        budget = split_budget([n for _, _, n in spans], self.options.steps)
        return [(s, e, self.schedule.block_steps(n, b), n) for (s, e, n), b in zip(spans, budget)]

    # --- the state machine -------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.finish is not None

    def cancel(self) -> None:
        """Ask to stop; the driver ends the request before its next forward pass."""
        self.cancel_requested = True

    def next_forward(self) -> ForwardRequest:
        if self.done:
            raise RuntimeError("request already finished")
        start, end, _, _ = self.blocks[self.block_index]
        return ForwardRequest(ids=self.ids, canvas=(start, end), block_size=self.block_size, cache=self.cache)

    def advance(self, logits: torch.Tensor) -> Step:
        """Turn the forward pass's canvas logits into one step."""
        start, end, steps, block_total = self.blocks[self.block_index]
        if logits.shape[0] != end - start:
            raise ValueError(f"expected logits for {end - start} canvas positions, got {logits.shape[0]}")
        masked = (self.ids[start:end] == self.mask_id).nonzero().squeeze(-1)
        logits = self._no_early_end(logits, start)
        if self.control is not None:
            logits = self.control.guide(self.ids, logits, self.block_index, start, end,
                                        self.ids[start:end] == self.mask_id, first_step=self.block_step == 0)
        drawn = draw(logits[masked], temperature=self.options.temperature, top_p=self.options.top_p,
                     generator=self.generator, banned=self.banned, penalized=self._recent_tokens(end),
                     penalty=self.options.repetition_penalty)
        chosen = self.schedule.select(drawn.confidence, drawn.entropy, step=self.block_step, steps=steps,
                                      block_total=block_total, generator=self.generator)
        positions = masked[chosen] + start
        self.ids[positions] = drawn.tokens[chosen]
        self.confidence[positions] = drawn.confidence[chosen]
        self.index += 1
        self.block_step += 1
        if not bool((self.ids[start:end] == self.mask_id).any()):
            self.block_index, self.block_step = self.block_index + 1, 0
            self._stop_at_end_token(end)
            self._stop_at_words(end)
        elif self.block_step >= steps:
            raise AssertionError(f"schedule left masked tokens after its {steps} steps")
        if self.block_index == len(self.blocks):
            self.finish = FinishReason.DONE
        return self._step()

    def _no_early_end(self, logits: torch.Tensor, start: int) -> torch.Tensor:
        """Generation never ends within its first `min_tokens` output tokens (an empty chapter helps no one):
        the end token is not drawn for canvas rows before that point."""
        early = self.output_start + self.options.min_tokens - start  # canvas rows [0, early) are too early
        if self.control is not None:
            settled = self.ids[self.output_start :]
            if self.control.too_early_to_end(settled[settled != self.mask_id].tolist()):
                early = logits.shape[0]  # a keyword still to come, or too few of the words asked for
        if self.end_id is None or early <= 0:
            return logits
        logits = logits.clone()
        logits[:early, self.end_id] = float("-inf")
        return logits

    def _recent_tokens(self, end: int) -> torch.Tensor | None:
        """The distinct tokens already settled in the window before `end` (for the repetition penalty)."""
        if self.options.repetition_penalty == 1.0:
            return None
        window = self.ids[max(0, end - self.options.repetition_window) : end]
        return window[window != self.mask_id].unique()

    def _stop_at_end_token(self, finished_until: int) -> None:
        """Generation ends at the first end-of-text token in a finished block: the text stops there and no
        further block is computed."""
        if self.end_id is None:
            return
        hits = (self.ids[self.output_start : finished_until] == self.end_id).nonzero()
        if len(hits):
            self._end_after(int(hits[0]))

    def _stop_at_words(self, finished_until: int) -> None:
        """With a length in words: end once the finished blocks hold them (see `ControlState.cut`)."""
        if self.control is None:
            return
        finished = self.ids[self.output_start : finished_until].tolist()
        keep = self.control.cut(finished, final=self.block_index == len(self.blocks))
        if keep is not None:
            self._end_after(keep)

    def _end_after(self, kept: int) -> None:
        """The text ends after its first `kept` output tokens; no further block is computed."""
        self.ids = self.ids[: self.output_start + kept]
        self.confidence = self.confidence[: len(self.ids)]
        self.block_index = len(self.blocks)

    def finish_cancelled(self) -> Step:
        self.finish = FinishReason.CANCELLED
        return self._step()

    # --- results -----------------------------------------------------------------------------------

    def _masked(self) -> torch.Tensor:
        return self.ids == self.mask_id

    def _visible_ids(self) -> list[int | None]:
        return [None if t == self.mask_id else t for t in self.ids[self.output_start :].tolist()]

    def _step(self) -> Step:
        strings = self.display.strings(self._visible_ids())
        out = self.ids[self.output_start :].tolist()
        conf = self.confidence[self.output_start :].tolist()
        changes = tuple(
            TokenChange(i, out[i], s, conf[i], 1.0 if out[i] == self.mask_id else 0.0)
            for i, s in enumerate(strings)
            if s != self.strings[i] or out[i] != self.shown[i]
        )
        self.strings, self.shown = strings, out
        return Step(index=self.index, total=self.total, length=len(out), changes=changes, finish=self.finish)

    def initial_step(self) -> Step:
        """Step 0: the starting canvas (every position with its noise), for clients that draw it first."""
        out = self.ids[self.output_start :].tolist()
        conf = self.confidence[self.output_start :].tolist()
        changes = tuple(
            TokenChange(i, t, self.strings[i], conf[i], 1.0 if t == self.mask_id else 0.0) for i, t in enumerate(out)
        )
        return Step(index=0, total=self.total, length=len(out), changes=changes)

    @property
    def output_ids(self) -> list[int]:
        return self.ids[self.output_start :].tolist()

    @property
    def text(self) -> str:
        return "".join(self.display.strings(self._visible_ids()))


def prompt_tokens(adapter: ModelAdapter, prompt: str) -> list[int]:
    """The prompt's token ids (no special tokens); an empty prompt is a clear error."""
    if not prompt or not prompt.strip():
        raise ValueError("prompt is empty")
    return adapter.tokenizer(prompt, add_special_tokens=False)["input_ids"]


def check_length(length: int, limit: int) -> None:
    if length < 1 or length > limit:
        raise ValueError(f"length must be between 1 and {limit} tokens for this prompt and model, got {length}")


def infill_layout(adapter: ModelAdapter, display: TokenDisplay, text: str,
                  spans: Sequence[Span]) -> tuple[list[tuple[list[int], int]], list[int]]:
    """Check the spans (character offsets, in order, not overlapping) and lay the text out around them: for each
    span the exact tokens of the text before it and how many tokens it gets, then the tokens after the last."""
    spans = sorted(spans, key=lambda s: s.start)
    if not spans:
        raise ValueError("no spans to regenerate")
    pieces, cursor = [], 0
    for span in spans:
        if not 0 <= span.start <= span.end <= len(text):
            raise ValueError(f"span [{span.start}, {span.end}) lies outside the text (length {len(text)})")
        if span.start < cursor:
            raise ValueError(f"span [{span.start}, {span.end}) overlaps the span before it")
        if span.new_length is not None and span.new_length < 1:
            raise ValueError(f"a span's new length must be at least 1 token, got {span.new_length}")
        if span.end == span.start and span.new_length is None:
            raise ValueError(f"the empty span at {span.start} needs a new length")
        original = adapter.tokenizer(text[span.start : span.end], add_special_tokens=False)["input_ids"]
        context = _exact_tokens(adapter, display, text[cursor : span.start])
        pieces.append((context, span.new_length or max(1, len(original))))
        cursor = span.end
    return pieces, _exact_tokens(adapter, display, text[cursor:])


def check_document_length(adapter: ModelAdapter, length: int) -> None:
    if length > adapter.max_length:
        raise ValueError(f"the text is {length} tokens; this model takes at most {adapter.max_length}")


def split_budget(counts: Sequence[int], steps: int) -> list[int]:
    """Share `steps` among blocks with `counts` masked tokens: at least one each, never more than a block's
    count, and as even a number of tokens per step as possible. Sums to min(steps, sum(counts))."""
    alloc = [1] * len(counts)
    for _ in range(min(steps, sum(counts)) - len(counts)):
        best = max((i for i, n in enumerate(counts) if alloc[i] < n), key=lambda i: counts[i] / alloc[i])
        alloc[best] += 1
    return alloc


def _exact_tokens(adapter: ModelAdapter, display: TokenDisplay, text: str) -> list[int]:
    """Tokens of a context segment, refusing tokenizers that cannot give the segment back byte for byte."""
    if not text:
        return []
    ids = adapter.tokenizer(text, add_special_tokens=False)["input_ids"]
    if display.decode(ids) != text:
        raise ValueError("this model's tokenizer does not reproduce the text exactly, so an edit could alter "
                         "text outside the spans; use a byte-level tokenizer")
    return ids
