"""The shipped model shapes: a small pre-norm Llama-style decoder, used block-causally for masked diffusion
and causally for the autoregressive twin (same size, same tokenizer)."""
from __future__ import annotations

from dataclasses import dataclass

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

FAMILIES = ("masked", "ar")


@dataclass(frozen=True)
class ModelShape:
    hidden: int = 256
    layers: int = 6
    heads: int = 4
    intermediate: int = 704
    max_positions: int = 4096


def build_model(shape: ModelShape, tokenizer: PreTrainedTokenizerBase, family: str, block_size: int,
                block_sizes: tuple[int, ...] = (), context: int | None = None) -> LlamaForCausalLM:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=shape.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="sdpa",
    )
    config.airquill_family = family
    config.airquill_context = context or shape.max_positions  # the longest distance training showed
    if family == "masked":
        config.airquill_block_size = block_size
        config.airquill_block_sizes = sorted({block_size, *block_sizes})
        config.mask_token_id = tokenizer.mask_token_id
    return LlamaForCausalLM(config)
