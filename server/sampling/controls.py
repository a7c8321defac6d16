"""Controls that steer every denoising step (Diffusion-LM's point: the whole text is refined together, so a
constraint can act at each step): keywords, a length in words, a style. The masked sampler applies them to its
logits; the canvas families (uniform noise, continuous) to their proposal or rounding logits, per canvas.

Keywords: each keyword is given a place during denoising: in each block, while a keyword is still missing (and
the model has not written it by itself), every place it fits (contiguous free positions) is scored by the
model's own log-probabilities of the keyword's tokens there, and at the block whose turn it is (or earlier,
when a place scores well) the best place wins; from then on the logits at those positions are guided to the
keyword's tokens, so they commit like any confident proposal and the text around them is denoised knowing
they are there. `placement="pinned"` is the baseline: every keyword at a fixed place (spread evenly over the
output) from the first step. The end-of-text token is not drawn while a keyword is still to come.

Length: generation ends once the finished blocks hold the target number of words, cut after the sentence end
closest to the target within ±5% words, else after the target's last word; the end-of-text token is not drawn
before 95% of the words.

Style: a linear bag-of-tokens classifier's weight of each token, times a strength, is added to the logits of
every masked position: for a linear classifier that is exactly how much a token moves its score.

The continuous family steers its latents instead (Diffusion-LM): `objective` is the controls' log-likelihood of
a canvas's token distribution, and the sampler climbs its gradient (see `sampling/continuous.py`); keywords are
placed the same way.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.display import TokenDisplay

PLACEMENTS = ("guided", "pinned")
GUIDE = 30.0  # logit added to a placed keyword's token at its position: it commits like a sure proposal
EARLY_PLACE = math.log(0.05)  # place before a keyword's turn when its tokens average at least this log-prob
LENGTH_SLACK = 0.05
SENTENCE_END = re.compile(r"[.!?;:]\s*$")


@dataclass(frozen=True)
class Controls:
    """What a request asks of its text (all optional)."""

    keywords: tuple[str, ...] = ()
    length_words: int | None = None
    style: str | None = None  # a label of the style classifier, e.g. "question" or "statement"
    style_strength: float = 2.0  # logits per unit of the guide's strongest token (BENCHMARKS.md: 2 keeps text readable)
    placement: str = "guided"  # guided | pinned (the baseline)

    @classmethod
    def from_protocol(cls, given) -> Controls | None:
        """The sampler's controls for a protocol `Controls` (None: none asked)."""
        if given is None:
            return None
        strength = {} if given.style_strength is None else {"style_strength": given.style_strength}
        return cls(keywords=tuple(given.keywords), length_words=given.length_words, style=given.style, **strength)

    @property
    def active(self) -> bool:
        return bool(self.keywords or self.length_words or self.style)

    def validate(self) -> None:
        if len(self.keywords) > 8:
            raise ValueError(f"at most 8 keywords, got {len(self.keywords)}")
        for word in self.keywords:
            if not word.strip():
                raise ValueError("a keyword is empty")
        if self.length_words is not None and self.length_words < 1:
            raise ValueError(f"length_words must be at least 1, got {self.length_words}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"unknown keyword placement {self.placement!r}; choose from {', '.join(PLACEMENTS)}")
        if not 0 <= self.style_strength <= 20:
            raise ValueError(f"style_strength must be between 0 and 20, got {self.style_strength}")


def words(text: str) -> int:
    return len(text.split())


def tokens_for_words(n_words: int, block_size: int) -> int:
    """A token budget that holds `n_words` words of ordinary text with room to spare (byte-level BPE averages
    well under two tokens per English word); generation stops at the words, not at the budget."""
    return int(n_words * 2.0 * (1 + LENGTH_SLACK)) + block_size


def generation_length(controls: Controls | None, length: int, block: int, limit: int) -> int:
    """The tokens to generate: `length`, or with a length in words a budget that holds them (an error when the
    model and prompt leave less room than that)."""
    if controls is None or not controls.length_words:
        return length
    budget = tokens_for_words(controls.length_words, block)
    if budget > limit:
        raise ValueError(f"{controls.length_words} words need about {budget} tokens; this model and prompt leave "
                         f"room for {limit}")
    return budget


def check_edit_controls(controls: Controls | None) -> None:
    if controls is not None and controls.length_words:
        raise ValueError("a length in words applies to generation; give an edited span a new length in tokens")


def has_keyword(text: str, keyword: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(keyword.strip())}(?!\w)", text) is not None


@dataclass
class _Keyword:
    word: str
    ids: list[int]
    turn: int  # the block index by which it must be placed
    place: int | None = None  # document position of its first token, once placed


@dataclass
class ControlState:
    """The per-request side of `Controls`. Every sampler calls `guide` on its logits (before each draw, or on each
    canvas's proposal or rounding logits), `too_early_to_end` before the end-of-text token may be drawn and `cut`
    after each finished block or canvas; the continuous sampler also climbs `objective`."""

    controls: Controls
    adapter: ModelAdapter
    display: TokenDisplay
    output_start: int
    blocks: list[tuple[int, int]]  # [start, end) of each block holding generated positions
    style_bias: torch.Tensor | None = None
    keywords: list[_Keyword] = field(default_factory=list)
    joins: torch.Tensor | None = None  # tokens that would glue onto a word before them (no space, a letter)
    reach: int = 0  # blocks that keywords may go into
    limit: int = 0  # document position keywords must end before

    @classmethod
    def build(cls, controls: Controls, adapter: ModelAdapter, display: TokenDisplay, output_start: int,
              blocks: list[tuple[int, int]], output_length: int) -> ControlState:
        controls.validate()
        state = cls(controls, adapter, display, output_start, blocks)
        tokenizer = adapter.tokenizer
        # where keywords may go: a length in words ends the text early, but never before 95% of the words, and
        # every word takes at least one token, so the first 95%-of-the-words tokens always stay
        state.limit = blocks[-1][1]
        if controls.length_words:
            state.limit = min(state.limit, output_start + math.floor(controls.length_words * (1 - LENGTH_SLACK)))
        state.reach = sum(1 for start, _ in blocks if start < state.limit)
        room = min(output_length, state.limit - output_start)
        for i, word in enumerate(controls.keywords):
            ids = tokenizer(" " + word.strip(), add_special_tokens=False)["input_ids"]
            if len(ids) > room:
                raise ValueError(f"keyword {word!r} takes {len(ids)} tokens but the text has room for {room}")
            # blocks with room for it (before the limit); its turn comes at the share (i + 1) / (K + 1) of them
            fits = [b for b, (start, end) in enumerate(blocks) if min(end, state.limit) - start >= len(ids)]
            if not fits:
                raise ValueError(f"keyword {word!r} takes {len(ids)} tokens, more than any block holds")
            turn = fits[min(len(fits) - 1, (i + 1) * len(fits) // (len(controls.keywords) + 1))]
            state.keywords.append(_Keyword(word.strip(), ids, turn))
        if state.keywords:
            pieces = [display.strings([i])[0] for i in range(len(tokenizer))]
            state.joins = torch.tensor([bool(p) and (p[0].isalnum() or p[0] == "_") for p in pieces])
        total = sum(len(k.ids) for k in state.keywords)
        if total > room:
            raise ValueError(f"the keywords take {total} tokens but the text has room for {room}")
        if controls.style:
            from airquill.server.sampling.style import style_weights

            state.style_bias = style_weights(adapter, controls.style) * controls.style_strength
        if controls.placement == "pinned":
            state._pin()
        return state

    # --- keywords ----------------------------------------------------------------------------------

    def _pin(self) -> None:
        """The baseline: keyword i starts at the share (i + 1) / (K + 1) of the output, inside one block."""
        first, last = self.blocks[0][0], min(self.blocks[self.reach - 1][1], self.limit)
        taken: set[int] = set()
        for i, k in enumerate(self.keywords):
            p = first + (i + 1) * (last - first) // (len(self.keywords) + 1)
            start, end = next(b for b in self.blocks if b[0] <= p < b[1] or p < b[0])
            p = max(start, min(p, min(end, self.limit) - len(k.ids)))
            while any(q in taken for q in range(p, p + len(k.ids))):
                p += 1
            k.place = p
            taken.update(range(p, p + len(k.ids)))

    def _choose_places(self, ids: torch.Tensor, logits: torch.Tensor, block: int, start: int, end: int,
                       free: torch.Tensor) -> None:
        free = free.clone()
        logp = logits.float().log_softmax(-1)
        for k in self.keywords:
            if k.place is not None:
                continue
            if has_keyword(self.display.decode(ids[self.output_start : start].tolist()), k.word):
                k.place = -1  # the model already wrote it
                continue
            n = len(k.ids)
            best, where = -math.inf, None
            for p in range(0, min(end, self.limit) - start - n + 1):
                if bool(free[p : p + n].all()):
                    score = float(sum(logp[p + j, t] for j, t in enumerate(k.ids))) / n
                    if score > best:
                        best, where = score, p
            if where is not None and (block >= k.turn or best >= EARLY_PLACE):
                k.place = start + where
                free[where : where + n] = False

    def guide(self, ids: torch.Tensor, logits: torch.Tensor, block: int, start: int, end: int, free: torch.Tensor,
              first_step: bool, on_logits: bool = True) -> torch.Tensor:
        """The canvas logits with every control's guidance added (a copy). `free`: the canvas positions still
        being generated (masked, or of an unfinished canvas); `block`: the index of this block or canvas.
        `on_logits=False` only places keywords (a sampler that steers by `objective` instead)."""
        if not self.controls.active:
            return logits
        if self.keywords and first_step and self.controls.placement == "guided":
            self._choose_places(ids, logits, block, start, end, free)
        logits = logits.clone()
        if not on_logits:
            return logits
        if self.style_bias is not None:
            logits += self.style_bias.to(logits.device, logits.dtype)
        cells, glued = self._keyword_rows(start, end, free)
        for row, token in cells:
            logits[row, token] += GUIDE
        for row in glued:
            logits[row, : len(self.joins)] -= GUIDE * self.joins.to(logits.dtype)
        return logits

    def _keyword_rows(self, start: int, end: int, free: torch.Tensor) -> tuple[list[tuple[int, int]], list[int]]:
        """For the canvas [start, end): the (row, token) of every placed keyword token in it, and the free rows
        right after a keyword, whose token must not glue onto it ("Mosesly")."""
        cells, glued = [], []
        for k in self.keywords:
            if k.place is None or k.place < 0:
                continue
            cells += [(k.place + j - start, t) for j, t in enumerate(k.ids) if start <= k.place + j < end]
            after = k.place + len(k.ids)
            if start <= after < end and bool(free[after - start]):
                glued.append(after - start)
        return cells, glued

    def objective(self, logp: torch.Tensor, start: int, end: int, free: torch.Tensor) -> torch.Tensor:
        """log p(controls | canvas) up to a constant, differentiable in the canvas's token log-probabilities
        `logp` [width, vocab] (what gradient guidance climbs): each placed keyword token's log-probability at its
        place, the log-probability that the token after a keyword does not glue onto it, and the style guide's
        expected score (its linear weight of each token, times the strength, under the canvas's distribution)."""
        total = logp.new_zeros(())
        cells, glued = self._keyword_rows(start, end, free)
        for row, token in cells:
            total = total + logp[row, token]
        for row in glued:
            joins = self.joins.to(logp.device, logp.dtype).clone()  # clone: a plain tensor, even if built in
            glue = (logp[row, : len(joins)].exp() * joins).sum()  # inference mode
            total = total + torch.log1p(-glue.clamp(max=0.999))
        if self.style_bias is not None:
            probs = logp[free].exp()
            total = total + (probs @ self.style_bias.to(logp.device, logp.dtype).clone()).sum()
        return total

    # --- length ------------------------------------------------------------------------------------

    def too_early_to_end(self, settled: list[int]) -> bool:
        """Whether the end-of-text token must not be drawn yet: a keyword is still to come after the `settled`
        output tokens, or they hold fewer than 95% of the words asked for."""
        settled_end = self.output_start + len(settled)
        if any(k.place is None or k.place + len(k.ids) > settled_end for k in self.keywords if k.place != -1):
            return True
        if not self.controls.length_words:
            return False
        return words(self.display.decode(settled)) < self.controls.length_words * (1 - LENGTH_SLACK)

    def cut(self, output_ids: list[int], *, final: bool) -> int | None:
        """How many output tokens to keep once the finished output holds the target words (more than them, so
        the target's last word is complete, or all there will be), else None. Ends after the sentence end
        nearest the target within ±5% of its words, else right after the target's last word."""
        target = self.controls.length_words
        strings = self.display.strings(output_ids)
        if not target or (words("".join(strings)) <= target and not final):
            return None
        low, high = math.ceil(target * (1 - LENGTH_SLACK)), math.floor(target * (1 + LENGTH_SLACK))
        best, best_gap, exact, shown = None, None, None, ""
        for i, s in enumerate(strings):
            shown += s
            n = words(shown)
            if n > high:
                break
            ends_word = i + 1 == len(strings) or strings[i + 1][:1].isspace()
            if n == target and ends_word and exact is None:
                exact = i + 1
            if low <= n <= high and ends_word and SENTENCE_END.search(shown) and (
                    best_gap is None or abs(n - target) < best_gap):
                best, best_gap = i + 1, abs(n - target)
        return best or exact
