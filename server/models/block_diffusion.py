"""Our masked diffusion models: a Llama-style decoder run with a block-causal mask (BD3-LM).

Because clean tokens attend block-causally and never to the canvas, their keys and values do not depend on
anything that comes later, so the prefix cache is exact. One forward pass appends the newly finished clean
tokens to a request's cache and denoises its canvas in the same call.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from airquill.server.models.base import ForwardRequest, ModelAdapter, PrefixCache, required_special_id
from airquill.server.models.block_mask import block_diffusion_mask


class BlockDiffusionAdapter(ModelAdapter):
    family = "masked"

    def __init__(self, model, tokenizer, *, name: str):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        config = model.config
        self.mask_id = required_special_id(tokenizer, "mask_token_id", name)
        self.max_length = int(config.max_position_embeddings)
        self.default_block_size = int(getattr(config, "airquill_block_size", 32))
        self.widest_block_size = int(max(getattr(config, "airquill_block_sizes", [self.default_block_size])))
        self.device = next(model.parameters()).device
        self.layers = int(config.num_hidden_layers)
        self.kv_heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
        self.dtype = next(model.parameters()).dtype
        # RoPE attention depends on distances: keep them within what training showed the model
        self.context = int(getattr(config, "airquill_context", None) or self.max_length)
        self.forward_passes = 0  # counters for benchmarks
        self.tokens_processed = 0

    def new_cache(self) -> PrefixCache:
        return PrefixCache()

    @torch.inference_mode()
    def forward(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        dev = self.device
        plans = [self._plan(r) for r in requests]
        p_max = max(p.used for p in plans)
        n_max = max(len(p.new) for p in plans)
        batch = len(requests)
        self.forward_passes += 1
        self.tokens_processed += sum(len(p.new) for p in plans)

        input_ids = torch.full((batch, n_max), self.mask_id, dtype=torch.long)
        q_pos = torch.zeros(batch, n_max, dtype=torch.long)
        q_clean = torch.zeros(batch, n_max, dtype=torch.bool)
        q_valid = torch.zeros(batch, n_max, dtype=torch.bool)
        k_pos = torch.zeros(batch, p_max, dtype=torch.long)
        k_valid = torch.zeros(batch, p_max, dtype=torch.bool)
        for b, p in enumerate(plans):
            n = len(p.new)
            input_ids[b, :n] = p.new
            q_pos[b, :n] = torch.arange(p.first, p.first + n)
            q_clean[b, : p.n_clean] = True
            q_valid[b, :n] = True
            k_pos[b, p_max - p.used :] = torch.arange(p.first - p.used, p.first)  # caches are left-padded
            k_valid[b, p_max - p.used :] = True

        block = torch.tensor([r.block_size for r in requests])[:, None]
        q_block = torch.div(q_pos, block, rounding_mode="floor")
        mask_new = block_diffusion_mask(q_block, q_clean, q_block, q_clean, 1) & q_valid[:, None, :]
        mask_old = k_valid[:, None, :] & q_valid[:, :, None]
        mask = torch.cat([mask_old, mask_new], dim=-1)
        mask[:, :, p_max:] |= torch.diag_embed(~q_valid)  # padded queries look at themselves: no empty row

        cache = DynamicCache()
        if p_max:
            for layer in range(self.layers):
                k = torch.stack([self._cached(r, p, layer, 0, p_max) for r, p in zip(requests, plans)])
                v = torch.stack([self._cached(r, p, layer, 1, p_max) for r, p in zip(requests, plans)])
                cache.update(k, v, layer)
        embeds = self._inputs_embeds(requests, plans, input_ids)
        tokens = {"input_ids": input_ids.to(dev)} if embeds is None else {"inputs_embeds": embeds}
        hidden = self.model.model(
            **tokens,
            attention_mask=mask[:, None].to(dev),
            position_ids=q_pos.to(dev),
            cache=cache,
            use_cache=True,
        ).last_hidden_state

        outputs = []
        for b, (r, p) in enumerate(zip(requests, plans)):
            if r.cache is not None and p.n_clean:
                _append(r.cache, cache, b, p_max, p.n_clean, keep=self.context)
            width = r.canvas[1] - r.canvas[0]
            outputs.append(self._head(hidden[b, p.n_clean : p.n_clean + width]))
        return outputs

    def _inputs_embeds(self, requests: Sequence[ForwardRequest], plans: list[_Plan],
                       input_ids: torch.Tensor) -> torch.Tensor | None:
        """Inputs as embeddings [batch, tokens, hidden], for families whose canvas is not tokens; None: token ids."""
        return None

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """What the pass returns for one canvas: logits [width, vocab]."""
        return self.model.lm_head(hidden).float()

    def _plan(self, r: ForwardRequest) -> _Plan:
        """Which tokens this pass runs and how much cached prefix it attends to, within the context window."""
        start, end = r.canvas
        window = max(0, self.context - (end - start))  # prefix tokens the canvas may see
        if r.cache is None:  # recompute the visible prefix
            first = max(0, start - window)
            return _Plan(new=r.ids[first:end], first=first, n_clean=start - first, used=0)
        n_clean = start - r.cache.length
        used = min(r.cache.kept, max(0, window - n_clean))
        return _Plan(new=r.ids[r.cache.length : end], first=r.cache.length, n_clean=n_clean, used=used)

    def _cached(self, request: ForwardRequest, plan: _Plan, layer: int, kv: int, length: int) -> torch.Tensor:
        """The last `plan.used` cached keys (kv=0) or values (kv=1) of one layer, left-padded to `length`."""
        if not plan.used:
            return torch.zeros(self.kv_heads, length, self.head_dim, dtype=self.dtype, device=self.device)
        return _left_pad(request.cache.layers[layer][kv][:, -plan.used :], length)


@dataclass(frozen=True)
class _Plan:
    new: torch.Tensor  # tokens this pass runs: not-yet-cached clean tokens, then the canvas
    first: int  # position of new[0]
    n_clean: int  # how many of `new` are clean
    used: int  # cached tokens attended to (the most recent ones)


def _left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
    if t.shape[-2] == length:
        return t
    pad = t.new_zeros(*t.shape[:-2], length - t.shape[-2], t.shape[-1])
    return torch.cat([pad, t], dim=-2)


def _append(prefix: PrefixCache, batched: DynamicCache, b: int, p_max: int, n: int, *, keep: int) -> None:
    """Add a request's newly cached clean tokens, keeping only the most recent `keep` (the window)."""
    for layer_idx, layer in enumerate(batched.layers):
        k_new = layer.keys[b, :, p_max : p_max + n]
        v_new = layer.values[b, :, p_max : p_max + n]
        if layer_idx < len(prefix.layers):
            k_old, v_old = prefix.layers[layer_idx]
            k_new, v_new = torch.cat([k_old, k_new], dim=-2), torch.cat([v_old, v_new], dim=-2)
        prefix.layers[layer_idx:layer_idx + 1] = [(k_new[:, -keep:].clone(), v_new[:, -keep:].clone())]
    prefix.length += n
