"""Continuous diffusion on token embeddings (DiffuSeq / Diffusion-LM), block-wise after a clean prefix.

The model is a Llama-style decoder run with the same block-causal mask as our masked models (BD3-LM), so its
prefix cache is exact, but its canvas is not tokens: every canvas position carries a point of the embedding
space, noised with Gaussian noise (`x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`). A clean token enters as
its own embedding; a canvas position enters as its noisy point plus an embedding of the diffusion time. The
model predicts each canvas position's clean embedding `x_0`; rounding maps a point to the token whose
embedding is nearest (`rounding_logits`: minus the squared distance, up to a per-point constant).

The embedding table is small (`embedding_dim`, 64 by default) and separate from the backbone's width, as in
DiffuSeq: a low-dimensional space is easier to diffuse in. Loaded through the Auto classes after `register()`
(model type `airquill_continuous`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, LlamaConfig, LlamaModel, PreTrainedModel

from airquill.server.models.base import ForwardRequest
from airquill.server.models.block_diffusion import BlockDiffusionAdapter


class ContinuousConfig(LlamaConfig):
    model_type = "airquill_continuous"

    def __init__(self, embedding_dim: int = 64, diffusion_steps: int = 2000, noise_schedule: str = "sqrt",
                 **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = embedding_dim
        self.diffusion_steps = diffusion_steps  # T: training timesteps 1..T
        self.noise_schedule = noise_schedule  # the schedule the model was trained with (sampling may differ)


class ContinuousDiffusionModel(PreTrainedModel):
    config_class = ContinuousConfig
    base_model_prefix = "model"
    _supports_sdpa = True

    def __init__(self, config: ContinuousConfig):
        super().__init__(config)
        no_tokens = {"vocab_size": 1, "pad_token_id": None, "bos_token_id": None, "eos_token_id": None,
                     "mask_token_id": None}
        backbone = LlamaConfig(**{**config.to_dict(), **no_tokens})  # tokens enter as our own embeddings
        backbone._attn_implementation = config._attn_implementation
        self.model = LlamaModel(backbone)
        width, dim = config.hidden_size, config.embedding_dim
        self.embed = nn.Embedding(config.vocab_size, dim)
        self.input_proj = nn.Linear(dim, width)
        self.time_mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.SiLU(), nn.Linear(4 * width, width))
        self.output_proj = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, dim))
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is getattr(self, "embed", None):
            nn.init.normal_(module.weight, std=1.0 / math.sqrt(self.config.embedding_dim))

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """Sinusoidal features of t / T (scaled to 0..1000), through an MLP: [..., hidden]."""
        half = self.config.hidden_size // 2
        scaled = t.float() / self.config.diffusion_steps * 1000.0
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
        angles = scaled[..., None] * freqs
        features = torch.cat([angles.sin(), angles.cos()], dim=-1).to(self.input_proj.weight.dtype)
        return self.time_mlp(features)

    def inputs(self, points: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        """Backbone inputs for embedding-space points; with a time (canvas positions), its embedding is added."""
        hidden = self.input_proj(points.to(self.input_proj.weight.dtype))
        return hidden if t is None else hidden + self.time_embedding(t)

    def predict_clean(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output_proj(hidden).float()

    def rounding_logits(self, points: torch.Tensor) -> torch.Tensor:
        return nearest_logits(points, self.embed.weight.float())

    def forward(self, *args, **kwargs):
        raise TypeError("a continuous diffusion model is run through its adapter or training objective, not called")


def nearest_logits(points: torch.Tensor, table: torch.Tensor, squared: torch.Tensor | None = None) -> torch.Tensor:
    """-|x - e_v|^2 + |x|^2 for every token v of the embedding `table` (`squared`: its rows' squared norms, when
    already known): the nearest embedding has the largest logit."""
    if squared is None:
        squared = (table * table).sum(-1)
    return 2.0 * points.float() @ table.T - squared


def register() -> None:
    """Make the Auto classes know our model type (idempotent); `loader.model_config` calls it."""
    AutoConfig.register(ContinuousConfig.model_type, ContinuousConfig, exist_ok=True)
    AutoModel.register(ContinuousConfig, ContinuousDiffusionModel, exist_ok=True)


@dataclass(frozen=True)
class ContinuousForwardRequest(ForwardRequest):
    """A forward request whose canvas is points of the embedding space at diffusion time `time` (0..T, on the
    schedule the model was trained with). Fixed context positions carry their clean embeddings (never noised)."""

    latents: torch.Tensor | None = None  # [canvas width, embedding_dim]
    time: torch.Tensor | float = 0.0  # the model's (training-schedule) time of each canvas position, or one for all
    fixed: torch.Tensor | None = None  # [canvas width] bool: positions given clean (not noised, no time)


class ContinuousAdapter(BlockDiffusionAdapter):
    """The block-causal adapter with embedding-space canvases: `forward` returns each canvas's predicted clean
    embeddings [width, embedding_dim] rather than logits; `rounding_logits` turns points into token logits."""

    family = "continuous"

    def __init__(self, model: ContinuousDiffusionModel, tokenizer, *, name: str):
        super().__init__(model, tokenizer, name=name)  # the mask id only pads batched passes here
        config = model.config
        self.embedding_dim = int(config.embedding_dim)
        self.diffusion_steps = int(config.diffusion_steps)
        self.noise_schedule = str(config.noise_schedule)
        table = getattr(config, "airquill_loss_table", None)  # recorded by airquill train: adaptive schedule
        self.loss_table = torch.tensor(table, dtype=torch.float64) if table else None
        bos = tokenizer.bos_token_id
        self.prompt_prefix = (int(bos),) if bos is not None else ()
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.inference_mode()
    def rounding_logits(self, points: torch.Tensor) -> torch.Tensor:
        return self.model.rounding_logits(points.to(self.device))

    def rounding_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every token's embedding [vocab, dim] and its squared norm, float32 on the CPU, read once: what latent
        guidance rounds with (`nearest_logits`), differentiably."""
        if self._table is None:
            with torch.inference_mode(False):  # plain tensors, so gradients may flow through them
                table = self.model.embed.weight.detach().float().cpu().clone()
                self._table = (table, (table * table).sum(-1))
        return self._table

    @torch.inference_mode()
    def embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed(ids.to(self.device)).float()

    def _inputs_embeds(self, requests: Sequence[ForwardRequest], plans, input_ids: torch.Tensor) -> torch.Tensor:
        model = self.model
        embeds = model.inputs(model.embed(input_ids.to(self.device)), None)
        for b, (r, p) in enumerate(zip(requests, plans)):
            latents = getattr(r, "latents", None)
            if latents is None:
                raise ValueError("a continuous model needs the canvas as embedding-space points")
            width = r.canvas[1] - r.canvas[0]
            fixed = r.fixed if r.fixed is not None else torch.zeros(width, dtype=torch.bool)
            t = torch.as_tensor(r.time, dtype=torch.float32).expand(width).to(self.device)
            noisy = model.inputs(latents.to(self.device), t)
            rows = slice(p.n_clean, p.n_clean + width)
            embeds[b, rows] = torch.where(fixed.to(self.device)[:, None], embeds[b, rows], noisy)
        return embeds

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.predict_clean(hidden)
