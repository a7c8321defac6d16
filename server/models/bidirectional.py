"""Plain bidirectional masked LMs (BERT-style MDLM, LLaDA, Dream): the whole document every step, no cache.

A bidirectional encoder's prefix states change whenever the canvas changes, so reusing them would only be
approximate; these adapters recompute the prefix. `logit_shift=1` serves models whose logits at i predict
token i+1 (Dream, which was adapted from an autoregressive model).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter, required_special_id


class BidirectionalAdapter(ModelAdapter):
    family = "masked"

    def __init__(self, model, tokenizer, *, name: str, logit_shift: int = 0, default_block_size: int = 32):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.mask_id = required_special_id(tokenizer, "mask_token_id", name)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.mask_id
        self.logit_shift = logit_shift
        config = model.config
        self.max_length = int(getattr(config, "max_position_embeddings", 0) or getattr(config, "max_sequence_length", 2048))
        self.default_block_size = default_block_size
        self.widest_block_size = self.max_length
        self.device = next(model.parameters()).device
        self.forward_passes = 0  # counters for benchmarks
        self.tokens_processed = 0

    @torch.inference_mode()
    def forward(self, requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
        length = max(len(r.ids) for r in requests)
        self.forward_passes += 1
        self.tokens_processed += sum(len(r.ids) for r in requests)
        ids = torch.full((len(requests), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros(len(requests), length, dtype=torch.long)
        for b, r in enumerate(requests):
            ids[b, : len(r.ids)] = r.ids
            attention[b, : len(r.ids)] = 1
        logits = self.model(input_ids=ids.to(self.device), attention_mask=attention.to(self.device)).logits
        if self.logit_shift:  # logits at i - shift predict token i; the first tokens get flat logits
            logits = torch.cat([logits.new_zeros(len(requests), self.logit_shift, logits.shape[-1]), logits], dim=1)
        return [logits[b, r.canvas[0] : r.canvas[1]].float() for b, r in enumerate(requests)]
