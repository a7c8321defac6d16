"""The continuous family as a per-request state machine: DiffuSeq-style Gaussian diffusion on token embeddings,
sampled with DDIM's deterministic update and far fewer steps than training.

A canvas starts as Gaussian noise in the embedding space. Each step the model predicts every canvas position's
clean embedding x0; rounding (the nearest token embedding) turns that into the tokens the client sees; with
the clamping trick (DiffuSeq) the prediction is replaced by the rounded token's own embedding; DDIM then moves
the canvas to the next, less noisy time. At the last time the rounded tokens are final, the canvas joins the
clean prefix (cached) and the next canvas starts.

Noise schedules (`NOISE_SCHEDULES`: abar(t) for t = 0..T) and sampling time spacings (`SPACINGS`: which of the
T training times the K sampling steps visit) are registries, measured in `airquill bench families`.

What a client sees, per output position (`TokenChange.noise`):
  1.0        a canvas not started yet: blank noise
  (0, 1)     the rounded token of the current prediction, blurred by how far the canvas point still is from
             that token's embedding (the distance after the step, relative to the embedding's own length)
  0.0        a token of a final canvas

Controls (`sampling/controls.py`) steer the latents, as Diffusion-LM does: after each DDIM step the new canvas
point x is moved towards the maximum of  log p(controls | x) - |x - mu|^2 / (2 sigma^2),  where mu is the DDIM
proposal, sigma^2 = 1 - abar(t_next) the noise the step leaves, and p(controls | x) is read from the rounding
distribution of x / sqrt(abar): a few fixed-point steps x <- mu + strength * sigma^2 * grad log p(controls | x).
With `guidance="latents"` (the default) the canvas's last rounding also carries the controls, so a keyword the
latents did not bring out is still written (a writer's "must mention" is a hard constraint); `"latents-only"`
is Diffusion-LM's pure form (what the gradient alone achieves); `"rounding"` adds the controls to the rounding
logits at every step, as the discrete families do. `airquill bench families` compares the three.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.canvas import CanvasDenoiser
from airquill.server.sampling.display import TokenDisplay
from airquill.shared.step import Step

MIN_NOISE = 0.02  # a provisional token never looks settled before its canvas is final
GUIDANCES = ("latents", "latents-only", "rounding")
LATENT_ITERATIONS = 3  # fixed-point steps of latent guidance per sampling step


# --- noise schedules: abar(t), t = 0..T ------------------------------------------------------------------------


def _linear(steps: int) -> torch.Tensor:
    """DDPM's linear betas (1e-4 to 0.02 at T = 1000), rescaled to T steps."""
    scale = 1000.0 / steps
    betas = torch.linspace(scale * 1e-4, min(0.999, scale * 0.02), steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


def _from_curve(curve: torch.Tensor) -> torch.Tensor:
    """abar for t = 1..T from a curve over t = 0..T, through betas clipped to 0.999 (Improved DDPM), so abar
    falls strictly and stays positive."""
    betas = (1.0 - curve[1:] / curve[:-1]).clamp(0.0, 0.999)
    return torch.cumprod(1.0 - betas, 0)


def _cosine(steps: int) -> torch.Tensor:
    """Improved DDPM's cosine schedule (offset s = 0.008)."""
    s = torch.arange(0, steps + 1, dtype=torch.float64) / steps
    return _from_curve(torch.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2)


def _sqrt(steps: int) -> torch.Tensor:
    """Diffusion-LM's sqrt schedule, abar = 1 - sqrt(t/T + 1e-4): noise rises fast at first."""
    s = torch.arange(0, steps + 1, dtype=torch.float64) / steps
    return _from_curve(1.0 - torch.sqrt(s + 1e-4))


NOISE_SCHEDULES = {"linear": _linear, "cosine": _cosine, "sqrt": _sqrt}


def alpha_bar(name: str, steps: int) -> torch.Tensor:
    """abar for t = 0..T (abar[0] = 1: clean) under a named fixed schedule."""
    try:
        schedule = NOISE_SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown noise schedule {name!r}; choose from {', '.join(NOISE_SCHEDULES)}") from None
    return torch.cat([torch.ones(1, dtype=torch.float64), schedule(steps)])


def interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of (xp, fp) at x; xp increasing; clamped at the ends."""
    x = x.to(torch.float64).clamp(float(xp[0]), float(xp[-1]))
    right = torch.searchsorted(xp, x).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    return f0 + (f1 - f0) * ((x - x0) / (x1 - x0).clamp_min(1e-12))


def model_times(levels: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    """The training time (fractional, 0..T) at which the training schedule `trained` had each noise level
    abar: what the model's time embedding must be told when sampling walks another schedule."""
    times = torch.arange(len(trained), dtype=torch.float64)
    return interpolate(-levels.to(torch.float64), -trained, times)  # abar falls with t: flip to increase


def adaptive_alpha_bar(table: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    """SeqDiffuSeq's adaptive schedule, per canvas position [C, T+1]: at time t a position gets the noise level
    at which its recorded training loss is the share t/T of the way from its lowest to its highest value (over
    the recorded range of times), so every step raises every position's difficulty by the same amount. `table` [C, B]: mean denoising loss per
    position and training-time bucket (B equal buckets of 1..T) under the training schedule `trained`."""
    steps = len(trained) - 1
    buckets = table.shape[1]
    centres = (torch.arange(buckets, dtype=torch.float64) + 0.5) * steps / buckets
    times = torch.arange(steps + 1, dtype=torch.float64)
    rows = []
    for row in table.to(torch.float64):
        loss = torch.cummax(row, 0).values + 1e-9 * torch.arange(buckets)  # rising with t, strictly
        first, last = float(centres[0]), float(centres[-1])
        target = loss[0] + (loss[-1] - loss[0]) * (times - first) / (last - first)
        inside = (times >= first) & (times <= last)  # outside the recorded range: the training schedule's time
        when = torch.where(inside, interpolate(target, loss, centres), times)  # training time with that loss
        levels = interpolate(when, times, trained)
        levels[0] = 1.0
        rows.append(torch.minimum(levels, torch.cummin(levels, 0).values))
    return torch.stack(rows)


# --- which training times the sampling steps visit -------------------------------------------------------------

def _uniform_times(steps: int, total: int) -> list[float]:
    return [total * (steps - k) / steps for k in range(steps)]


# DDIM's quadratic spacing and the seed's golden-ratio spacing were measured here and removed: at 16 steps per
# canvas both gave worse text than uniform spacing on the shipped model (BENCHMARKS.md, "Families"). A new
# spacing goes in this registry, and stays if `airquill bench families` supports it.
SPACINGS = {"uniform": _uniform_times}


def sampling_times(spacing: str, steps: int, total: int) -> list[int]:
    """K distinct training times (K <= T), descending from T, each >= 1; the step after the last goes to t = 0."""
    try:
        times = SPACINGS[spacing](steps, total)
    except KeyError:
        raise ValueError(f"unknown spacing {spacing!r}; choose from {', '.join(SPACINGS)}") from None
    out: list[int] = []
    for k, t in enumerate(times):
        t = max(steps - k, min(total, round(t)))  # leave a distinct time >= 1 for every remaining step
        if out and t >= out[-1]:
            t = out[-1] - 1
        out.append(t)
    return out


# --- options -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContinuousOptions:
    steps: int = 32  # per canvas
    noise_schedule: str | None = None  # linear | cosine | sqrt | adaptive; None: the model's training schedule
    spacing: str = "uniform"  # a name in SPACINGS
    clamp: bool = True  # DiffuSeq's clamping trick: continue from the rounded token's embedding
    seed: int = 0
    canvas_length: int | None = None  # None: the model's block size
    prefix_cache: bool = True
    stop_at_eos: bool = True
    guidance: str = "latents"  # how controls steer: latents | latents-only | rounding (module notes)
    guidance_strength: float = 1.0  # latent guidance: multiplies sigma^2 * grad log p(controls | x)

    def validate(self) -> None:
        if self.guidance not in GUIDANCES:
            raise ValueError(f"unknown guidance {self.guidance!r}; choose from {', '.join(GUIDANCES)}")
        if not 0 <= self.guidance_strength <= 100:
            raise ValueError(f"guidance_strength must be between 0 and 100, got {self.guidance_strength}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.noise_schedule is not None and self.noise_schedule not in (*NOISE_SCHEDULES, "adaptive"):
            raise ValueError(f"unknown noise schedule {self.noise_schedule!r}; choose from "
                             f"{', '.join(NOISE_SCHEDULES)}, adaptive")
        if self.spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {self.spacing!r}; choose from {', '.join(SPACINGS)}")
        if self.canvas_length is not None and self.canvas_length < 1:
            raise ValueError(f"canvas_length must be at least 1, got {self.canvas_length}")


# --- the state machine -------------------------------------------------------------------------------------


class ContinuousDenoiser(CanvasDenoiser):
    """State of one continuous-family request (see `CanvasDenoiser` for generation and infilling)."""

    def __init__(self, adapter: ModelAdapter, document: Sequence[int], free: Sequence[bool], output_start: int,
                 length: int, options: ContinuousOptions, *, display: TokenDisplay,
                 controls=None):
        options.validate()
        total = int(adapter.diffusion_steps)
        self.times = sampling_times(options.spacing, min(options.steps, total), total)
        self.steps_per_canvas = len(self.times)
        self.trained = alpha_bar(adapter.noise_schedule, total)
        self.abar = self._schedule(adapter, options.noise_schedule or adapter.noise_schedule)
        tokenizer = adapter.tokenizer
        never = {tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.bos_token_id}
        self.banned = sorted(i for i in never if i is not None)
        self.latents: torch.Tensor | None = None
        super().__init__(adapter, document, free, output_start, length, options, display=display,
                         controls=controls)

    def _schedule(self, adapter: ModelAdapter, name: str) -> torch.Tensor:
        """abar [T+1] for a fixed schedule, or [C, T+1] per canvas position for the adaptive one."""
        if name != "adaptive":
            return alpha_bar(name, len(self.trained) - 1)
        table = getattr(adapter, "loss_table", None)
        if table is None:
            raise ValueError(f"{adapter.name} has no recorded training losses, so no adaptive schedule; "
                             "retrain it with this version of airquill train")
        return adaptive_alpha_bar(table, self.trained)

    def _levels(self, t: int, width: int) -> torch.Tensor:
        """abar of each canvas position at time t (positions past the adaptive table use its last row)."""
        if self.abar.dim() == 1:
            return self.abar[t].expand(width).clone()
        rows = torch.arange(width).clamp_max(self.abar.shape[0] - 1)
        return self.abar[rows, t]

    def _fill(self) -> None:
        self.ids[self.free] = int(self.adapter.mask_id)  # blank until a canvas shows its rounded tokens
        self._start_canvas()

    def _start_canvas(self) -> None:
        """The current canvas starts as Gaussian noise; fixed context positions carry their clean embeddings."""
        start, end = self.canvas()
        width = end - start
        noise = torch.randn(width, self.adapter.embedding_dim, generator=self.generator, dtype=torch.float32)
        clean = self.adapter.embeddings(self.ids[start:end]).cpu()
        self.latents = torch.where(self.free[start:end, None], noise, clean)

    def next_forward(self):
        from airquill.server.models.continuous import ContinuousForwardRequest

        if self.done:
            raise RuntimeError("request already finished")
        start, end = self.canvas()
        levels = self._levels(self.times[self.canvas_step], end - start)
        return ContinuousForwardRequest(ids=self.ids[:end], canvas=(start, end), block_size=self.canvas_length,
                                        cache=self.cache, latents=self.latents,
                                        time=model_times(levels, self.trained).float(), fixed=~self.free[start:end])

    def advance(self, predicted: torch.Tensor) -> Step:
        """Turn the pass's predicted clean embeddings [width, dim] into one DDIM step."""
        start, end = self._check_output(predicted)
        free = self.free[start:end]
        predicted = predicted.float().cpu()
        t = self.times[self.canvas_step]
        t_next = self.times[self.canvas_step + 1] if self.canvas_step + 1 < len(self.times) else 0
        guidance = self.options.guidance
        on_logits = guidance == "rounding" or (guidance == "latents" and t_next == 0)
        logits = self._guided(self.adapter.rounding_logits(predicted).float().cpu(), start, end, on_logits)
        logits[:, self.banned] = float("-inf")
        confidence, tokens = logits.softmax(-1).max(-1)
        nearest = self.adapter.embeddings(tokens).cpu()
        x0 = nearest if self.options.clamp else predicted
        a = self._levels(t, end - start).float()[:, None]
        a_next = self._levels(t_next, end - start).float()[:, None]
        eps = (self.latents - a.sqrt() * x0) / (1.0 - a).sqrt()
        latents = a_next.sqrt() * x0 + (1.0 - a_next).sqrt() * eps
        latents = torch.where(free[:, None], latents, self.latents)  # fixed context stays clean
        if t_next and self.control is not None and guidance != "rounding":
            latents = self._steer(latents, a_next, start, end)
        positions = free.nonzero().squeeze(-1) + start
        self.ids[positions] = tokens[free]
        self.confidence[positions] = confidence[free].double()
        self.index += 1
        self.canvas_step += 1
        if t_next == 0:
            self.noise[positions] = 0.0
            self._finish_canvas(start, end)
        else:
            # how far the canvas point (noise removed at this time's scale) still is from its token's embedding
            distance = (latents / a_next.sqrt() - nearest).norm(dim=-1)
            blur = (distance / nearest.norm(dim=-1).clamp_min(1e-6)).clamp(MIN_NOISE, 0.99)
            self.noise[positions] = blur[free].double()
            self.latents = latents
        return self._step()

    def _steer(self, proposal: torch.Tensor, a: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """Latent guidance (see the module notes): the free canvas points moved up the controls' gradient,
        held near the DDIM proposal by the noise the step leaves."""
        from airquill.server.models.continuous import nearest_logits

        free = self.free[start:end]
        table, squared = self.adapter.rounding_table()
        sigma2 = 1.0 - a
        x = proposal.detach().clone()
        with torch.inference_mode(False), torch.enable_grad():
            for _ in range(LATENT_ITERATIONS):
                x = x.detach().clone().requires_grad_(True)
                logp = nearest_logits(x / a.sqrt(), table, squared).log_softmax(-1)
                objective = self.control.objective(logp, start, end, free)
                if not objective.requires_grad:
                    return proposal
                (grad,) = torch.autograd.grad(objective, x)
                x = proposal + self.options.guidance_strength * sigma2 * grad
        return torch.where(free[:, None], x.detach(), proposal)

