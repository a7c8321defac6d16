"""The shipped model shapes: a small pre-norm Llama-style decoder, used block-causally for masked diffusion
and causally for the autoregressive twin (same size, same tokenizer); and, for the uniform-noise family, a small
model in DiffusionGemma's shape (transformers' `DiffusionGemmaForBlockDiffusion`), so the shipped uniform model
and a real DiffusionGemma checkpoint run through one adapter."""
from __future__ import annotations

from dataclasses import dataclass

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

FAMILIES = ("masked", "ar", "uniform", "continuous")


@dataclass(frozen=True)
class ModelShape:
    hidden: int = 256
    layers: int = 6
    heads: int = 4
    intermediate: int = 704
    max_positions: int = 4096
    experts: int = 2  # uniform family (DiffusionGemma shape): its MoE block, one expert active per token
    expert_intermediate: int = 192
    embedding_dim: int = 64  # continuous family: the space diffusion runs in


def build_model(shape: ModelShape, tokenizer: PreTrainedTokenizerBase, family: str, block_size: int,
                block_sizes: tuple[int, ...] = (), context: int | None = None, *, diffusion_steps: int = 2000,
                noise_schedule: str = "sqrt"):
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    if family == "uniform":
        return build_uniform_model(shape, tokenizer, canvas_length=block_size, context=context)
    config_class = LlamaConfig
    extra = {}
    if family == "continuous":
        from airquill.server.models.continuous import ContinuousConfig

        config_class = ContinuousConfig
        extra = {"embedding_dim": shape.embedding_dim, "diffusion_steps": diffusion_steps,
                 "noise_schedule": noise_schedule}
    config = config_class(
        **extra,
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
    mark_family(config, family, tokenizer, block_size, block_sizes, context or shape.max_positions)
    if family == "continuous":
        from airquill.server.models.continuous import ContinuousDiffusionModel

        return ContinuousDiffusionModel(config)
    return LlamaForCausalLM(config)


def mark_family(config, family: str, tokenizer: PreTrainedTokenizerBase, block_size: int,
                block_sizes: tuple[int, ...], context: int) -> None:
    """What the loader and the sampler read from a Llama-shaped model's config: its family, the longest distance
    training showed and, for the diffusion families, the block sizes and the mask token."""
    config.airquill_family = family
    config.airquill_context = context
    if family in ("masked", "continuous"):
        config.airquill_block_size = block_size
        config.airquill_block_sizes = sorted({block_size, *block_sizes})
        config.mask_token_id = tokenizer.mask_token_id


def build_uniform_model(shape: ModelShape, tokenizer: PreTrainedTokenizerBase, *, canvas_length: int,
                        context: int | None = None):
    """A DiffusionGemma-shaped model: a causal encoder and a bidirectional decoder sharing their weights, five
    sliding-window layers to one full-attention layer, a dense MLP beside a small MoE in every layer, and
    self-conditioning. The dense MLP and the one active expert together are as wide as the Llama shape's MLP, so
    the parameters active per token roughly match.
    DiffusionGemma always builds a vision tower; ours is one tiny layer that nothing feeds, and the image
    token ids lie outside the vocabulary, so no text token is ever taken for an image."""
    from transformers import (DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, DiffusionGemmaTextConfig,
                              Gemma4VisionConfig)

    if shape.hidden % shape.heads:
        raise ValueError(f"hidden size {shape.hidden} is not divisible by {shape.heads} heads")
    if not 0 < shape.expert_intermediate < shape.intermediate:
        raise ValueError(f"the expert width ({shape.expert_intermediate}) must be below the MLP width "
                         f"({shape.intermediate}): the dense MLP gets the difference")
    vocab = len(tokenizer)
    head_dim = shape.hidden // shape.heads
    window = 2 * (context or 256)  # longer than any training window: sliding layers see all of it in training
    text = DiffusionGemmaTextConfig(
        vocab_size=vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate - shape.expert_intermediate,  # + one active expert = the Llama MLP
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=max(1, shape.heads // 2),
        head_dim=head_dim,
        global_head_dim=head_dim,
        max_position_embeddings=shape.max_positions,
        sliding_window=window,
        layer_types=[("full_attention" if (i + 1) % 6 == 0 or i == shape.layers - 1 else "sliding_attention")
                     for i in range(shape.layers)],
        num_experts=shape.experts,
        top_k_experts=1,
        moe_intermediate_size=shape.expert_intermediate,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        attn_implementation="sdpa",
    )
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1,
                                num_key_value_heads=1, head_dim=16, patch_size=4, position_embedding_size=16)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length,
                                  image_token_id=vocab + 1, boi_token_id=vocab + 2, eoi_token_id=vocab + 3)
    config.airquill_family = "uniform"
    config.airquill_context = context or shape.max_positions
    config.mask_token_id = tokenizer.mask_token_id  # only the absorbing-noise comparison uses it
    return DiffusionGemmaForBlockDiffusion(config)
