"""DiffusionGemma checkpoints (transformers' `DiffusionGemmaForBlockDiffusion`) as a uniform-noise denoiser.

The model is an encoder-decoder sharing its weights: a causal encoder turns the clean prefix into keys and
values (its cache), and a bidirectional decoder refines a canvas of `config.canvas_length` tokens while reading
that cache without changing it. The decoder also takes the previous step's logits (self-conditioning), which
`UniformDenoiser` passes in its forward requests. Each request keeps its own encoder cache (a transformers
`DynamicCache`, batch of one): a finished canvas is encoded once, at the first pass of the next canvas.

One forward pass decodes the canvases of all requests together. Caches of different lengths are stacked
left-padded and the padding masked out; when every cache has the same length (one request, or equal
prompts) no mask is passed at all, which is exactly the call transformers' own `generate` makes.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter, PrefixCache
from airquill.server.sampling.noise import CANVAS_NOISES

PADDED_MASKS = {"sdpa": "bool", "eager": "additive"}  # attention backends we can hand a padding mask


@dataclass
class EncoderCache(PrefixCache):
    """The encoder's keys and values of one request's clean prefix (`length` tokens, all encoded)."""

    states: object | None = None  # a transformers DynamicCache

    @property
    def kept(self) -> int:
        return self.length  # full-attention layers keep all of it; sliding layers keep their window


class DiffusionGemmaAdapter(ModelAdapter):
    family = "uniform"
    self_conditioning = True  # the decoder takes the previous step's logits

    def __init__(self, model, tokenizer, *, name: str):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        config = model.config
        self.text_config = config.get_text_config()
        self.vocab_size = int(self.text_config.vocab_size)
        self.canvas_length = int(config.canvas_length)
        self.default_block_size = self.widest_block_size = self.canvas_length
        self.max_length = int(self.text_config.max_position_embeddings)
        self.mask_id = tokenizer.mask_token_id  # None for most checkpoints: uniform noise needs no mask
        # what a noised canvas position holds: a random token (DiffusionGemma), or the mask for a model trained
        # with absorbing noise (`airquill train --noise absorbing`, the comparison)
        self.noise = getattr(config, "airquill_noise", "uniform")
        if self.noise not in CANVAS_NOISES:
            raise ValueError(f"{name}: unknown canvas noise {self.noise!r}; expected one of {', '.join(CANVAS_NOISES)}")
        if self.noise == "absorbing" and self.mask_id is None:
            raise ValueError(f"{name} was trained with absorbing noise but its tokenizer has no mask token")
        bos = tokenizer.bos_token_id
        self.prompt_prefix = (int(bos),) if bos is not None else ()
        multimodal = (config.image_token_id, config.boi_token_id, config.eoi_token_id)
        self.never_propose = tuple(int(i) for i in multimodal if i is not None and i < self.vocab_size)
        self.generation_config = model.generation_config  # the checkpoint's sampler settings
        self.device = next(model.parameters()).device
        self.dtype = model.model.decoder.embed_tokens.weight.dtype
        self.attention = PADDED_MASKS.get(self.text_config._attn_implementation)
        self.forward_passes = 0  # counters for benchmarks
        self.tokens_processed = 0

    @classmethod
    def from_pretrained(cls, source: str, *, name: str | None = None, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None, local_files_only: bool = True) -> DiffusionGemmaAdapter:
        """Load a checkpoint from a folder (or a hub id, when `local_files_only` is off): bf16 on CUDA, else
        float32. Only the tokenizer is loaded, not the multimodal processor, so no vision packages are needed."""
        try:
            from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
        except ImportError:
            raise ValueError("DiffusionGemma needs a transformers version that includes it "
                             "(DiffusionGemmaForBlockDiffusion); upgrade transformers") from None
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        # with accelerate, weights load straight onto the device instead of passing through host memory
        placement = {"device_map": str(device)} if importlib.util.find_spec("accelerate") else {}
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(source, dtype=dtype, local_files_only=local_files_only,
                                                                **placement)
        return cls(model.to(device), tokenizer, name=name or str(source))

    def new_cache(self) -> EncoderCache:
        return EncoderCache(states=self._empty_cache())

    @torch.inference_mode()
    def forward(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        self.forward_passes += 1
        caches = [self._encode(r) for r in requests]
        outputs: list[torch.Tensor | None] = [None] * len(requests)
        for group in self._groups(requests, caches):
            logits = self._decode([requests[i] for i in group], [caches[i] for i in group])
            for i, row in zip(group, logits):
                outputs[i] = row
        return outputs

    # --- encoder: the clean prefix -----------------------------------------------------------------

    def _empty_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.text_config)

    def _encode(self, r: ForwardRequest):
        """The request's cache holding its whole clean prefix, encoding what is not in it yet (everything, when
        the request keeps no cache)."""
        start = r.canvas[0]
        kept = r.cache if isinstance(r.cache, EncoderCache) else None
        states, done = (kept.states, kept.length) if kept is not None else (self._empty_cache(), 0)
        if done > start:
            raise ValueError(f"the prefix cache holds {done} tokens but the canvas starts at {start}")
        if done == start == 0:
            raise ValueError("DiffusionGemma needs a non-empty prefix (at least a BOS token) before the canvas")
        if start > done:
            self._run_encoder(r.ids[done:start], states, done)
            self.tokens_processed += start - done
        if kept is not None:
            kept.length = start
        return states

    def _run_encoder(self, ids: torch.Tensor, states, first: int) -> None:
        """Append `ids` (positions first, first+1, ...) to `states`, building the masks as `generate` does."""
        dev, end = self.device, first + len(ids)
        positions = torch.arange(first, end, dtype=torch.int32, device=dev)[None]
        encoder = self.model.model.encoder
        masks = encoder.create_masks_for_generate(
            config=self.model.config,
            inputs_embeds=torch.empty((1, len(ids), 0), dtype=self.dtype, device=dev),
            attention_mask=torch.ones((1, end), dtype=torch.bool, device=dev),
            cache=states,
            position_ids=positions,
        )
        encoder(input_ids=ids[None].to(dev), attention_mask=masks, cache=states, position_ids=positions)

    # --- decoder: the canvases ---------------------------------------------------------------------

    def _groups(self, requests: Sequence[ForwardRequest], caches: list) -> list[list[int]]:
        """Requests decoded together: same canvas width, and (for backends we cannot mask) same cache lengths."""
        groups: dict[tuple, list[int]] = {}
        for i, (r, c) in enumerate(zip(requests, caches)):
            key = (r.canvas[1] - r.canvas[0],) + (() if self.attention else tuple(_stored(c)))
            groups.setdefault(key, []).append(i)
        return list(groups.values())

    def _decode(self, requests: Sequence[ForwardRequest], caches: list) -> list[torch.Tensor]:
        dev = self.device
        canvas = torch.stack([r.ids[r.canvas[0] : r.canvas[1]] for r in requests]).to(dev)
        positions = torch.stack([torch.arange(*r.canvas, dtype=torch.int32) for r in requests]).to(dev)
        self.tokens_processed += canvas.numel()
        previous = [getattr(r, "self_conditioning", None) for r in requests]
        sc, sc_mask = None, None
        if any(p is not None for p in previous):
            blank = torch.zeros((canvas.shape[1], self.vocab_size), dtype=self.dtype, device=dev)  # masked out
            sc = torch.stack([p.to(dev, self.dtype) if p is not None else blank for p in previous])
            sc_mask = torch.tensor([p is not None for p in previous], device=dev)
        states, masks = self._stack(caches, canvas.shape[1])
        logits = self.model(decoder_input_ids=canvas, cache=states, self_conditioning_logits=sc,
                            self_conditioning_mask=sc_mask, decoder_attention_mask=masks,
                            decoder_position_ids=positions).logits
        return list(logits.float())

    def _stack(self, caches: list, width: int):
        """One cache for the batch, and the decoder's masks per layer type (None: attend to everything)."""
        types = sorted(set(self.text_config.layer_types))
        no_masks = {t: None for t in types}
        if len(caches) == 1:
            return caches[0], no_masks
        stored = [_stored(c) for c in caches]
        stacked = self._empty_cache()
        for layer in range(len(caches[0].layers)):
            longest = max(s[layer] for s in stored)
            keys = torch.cat([_left_pad(c.layers[layer].keys, longest) for c in caches])
            values = torch.cat([_left_pad(c.layers[layer].values, longest) for c in caches])
            stacked.update(keys, values, layer)
        if all(s == stored[0] for s in stored):
            return stacked, no_masks
        masks = {}
        for layer_type in types:
            layer = self.text_config.layer_types.index(layer_type)
            lengths = torch.tensor([s[layer] for s in stored])
            longest = int(lengths.max())
            slots = torch.arange(longest + width)
            valid = (slots[None, :] >= longest - lengths[:, None]).to(self.device)  # [batch, keys]
            valid = valid[:, None, None, :].expand(-1, 1, width, -1)
            if self.attention == "bool":
                masks[layer_type] = valid
            else:
                zero = torch.zeros((), dtype=self.dtype, device=self.device)
                masks[layer_type] = torch.where(valid, zero, torch.finfo(self.dtype).min)
        return stacked, masks


def _stored(states) -> list[int]:
    """Tokens each layer of a cache holds (sliding-window layers hold at most their window)."""
    return [layer.keys.shape[-2] if layer.keys is not None else 0 for layer in states.layers]


def _left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
    if t.shape[-2] == length:
        return t
    pad = t.new_zeros(*t.shape[:-2], length - t.shape[-2], t.shape[-1])
    return torch.cat([pad, t], dim=-2)
