"""Training losses: MDLM (absorbing-state masked diffusion, block-causal), next-token prediction, and the
DiffusionGemma-shaped model's canvas denoising with uniform (or, for comparison, absorbing) noise.

Every random choice (noise ratios, which tokens are noised, the noise itself) is drawn on the CPU from the step's
generator, then moved to the model's device: a run draws the same noise whether it trains on a CPU or a GPU."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from airquill.server.models.block_mask import training_mask
from airquill.server.sampling.noise import CANVAS_NOISES

T_MIN = 1e-3


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def mdlm_loss(
    model: torch.nn.Module,
    x0: torch.Tensor,
    *,
    mask_id: int,
    block_size: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Negative ELBO of a block-causal masked diffusion model (BD3-LM training with MDLM's linear schedule).

    Each block of each sequence gets its own masking ratio t ~ U(0, 1] (antithetic across the batch); each
    token is masked with probability t and a masked token's cross-entropy is weighted by 1/t, as the
    continuous-time ELBO for alpha_t = 1 - t asks. The loss is averaged per token.
    """
    batch, length = x0.shape
    t_tok = block_ratios(batch, length, block_size, generator)
    masked = torch.rand(batch, length, generator=generator) < t_tok
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    mask, pos = training_mask(length, block_size)
    device = _device(model)
    x0, xt, t_tok, masked, mask, pos = (v.to(device) for v in (x0, xt, t_tok, masked, mask, pos))
    hidden = model.model(
        input_ids=torch.cat([xt, x0], dim=1),
        attention_mask=mask[None, None].expand(batch, 1, -1, -1),
        position_ids=pos[None].expand(batch, -1),
        use_cache=False,
    ).last_hidden_state
    logits = model.lm_head(hidden[:, :length]).float()  # only the noisy half is scored
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), x0.reshape(-1), reduction="none").view(batch, length)
    return (ce * masked / t_tok).sum() / (batch * length)


def block_ratios(batch: int, length: int, block_size: int, generator: torch.Generator) -> torch.Tensor:
    """A noise ratio t ~ U(T_MIN, 1] per block of each sequence (antithetic across the batch: the ratios are
    evenly spread with one random offset), repeated over the block's tokens: [batch, length]."""
    n_blocks = -(-length // block_size)
    u = torch.rand(1, generator=generator)
    t = (u + torch.arange(batch * n_blocks) / (batch * n_blocks)) % 1.0
    t = t[torch.randperm(batch * n_blocks, generator=generator)].view(batch, n_blocks).clamp_min(T_MIN)
    return t.repeat_interleave(block_size, dim=1)[:, :length]


def canvas_loss(
    model: torch.nn.Module,
    x0: torch.Tensor,
    *,
    canvas: int,
    generator: torch.Generator,
    noise: str = "uniform",
    noise_ids: torch.Tensor | None = None,
    mask_id: int | None = None,
    self_conditioning: float = 0.5,
) -> torch.Tensor:
    """Canvas denoising for a DiffusionGemma-shaped model, every canvas of a window in one pass.

    The causal encoder reads the clean window once into its cache. The window is cut into canvases of `canvas`
    tokens, each with its own noise ratio t (as `block_ratios`); the decoder refines all noisy canvases
    together, each one attending to the clean cache before it and bidirectionally to itself, exactly what it
    sees when sampling a canvas after that prefix. `noise`:
      uniform    a noised token becomes a random ordinary token (`noise_ids`); the decoder cannot tell which
                 tokens were noised, so every position is scored: mean cross-entropy of the clean token.
      absorbing  a noised token becomes `mask_id`; MDLM's ELBO (masked cross-entropy weighted by 1/t).
    With probability `self_conditioning` a step first decodes without self-conditioning (no gradient) and then
    decodes again with those logits as the self-conditioning signal, so the model learns to use the previous
    step's prediction that the sampler hands it.
    """
    from transformers import DynamicCache

    batch, length = x0.shape
    t_tok = block_ratios(batch, length, canvas, generator)
    noised = torch.rand(batch, length, generator=generator) < t_tok
    if noise == "uniform":
        if noise_ids is None:
            raise ValueError("uniform noise needs the ids to draw from")
        random = noise_ids[torch.randint(len(noise_ids), (batch, length), generator=generator)]
        xt = torch.where(noised, random, x0)
    elif noise == "absorbing":
        if mask_id is None:
            raise ValueError("absorbing noise needs a mask token")
        xt = torch.where(noised, torch.full_like(x0, mask_id), x0)
    else:
        raise ValueError(f"unknown noise {noise!r}; choose from {', '.join(CANVAS_NOISES)}")
    device = _device(model)
    x0, xt, t_tok, noised = (v.to(device) for v in (x0, xt, t_tok, noised))
    positions = torch.arange(length, device=device)[None].expand(batch, -1)
    cache = DynamicCache(config=model.config.get_text_config())
    model.model.encoder(input_ids=x0, cache=cache, position_ids=positions)
    masks = {k: v.to(device) for k, v in canvas_masks(model.config.get_text_config(), batch, length, canvas).items()}

    def decode(previous: torch.Tensor | None) -> torch.Tensor:
        return model(decoder_input_ids=xt, cache=cache, self_conditioning_logits=previous,
                     decoder_attention_mask=masks, decoder_position_ids=positions).logits

    previous = None
    if float(torch.rand(1, generator=generator)) < self_conditioning:
        with torch.no_grad():
            previous = decode(None).detach()
    logits = decode(previous).float()
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), x0.reshape(-1), reduction="none").view(batch, length)
    if noise == "uniform":
        return ce.mean()
    return (ce * noised / t_tok).sum() / (batch * length)


def continuous_loss(
    model: torch.nn.Module,
    x0: torch.Tensor,
    *,
    block_size: int,
    generator: torch.Generator,
    abar: torch.Tensor,
    record=None,
) -> torch.Tensor:
    """DiffuSeq's objective on a block-causal window (the masked family's BD3-LM layout: noisy blocks, then the
    clean copy). Each block gets a time t in 1..T; its tokens' embeddings are noised to
    sqrt(abar_t) e + sqrt(1 - abar_t) eps; the model predicts the clean embeddings. Per token: the squared error
    of that prediction, the cross-entropy of rounding the prediction to the right token, the cross-entropy of
    rounding the clean embedding itself (keeps embeddings apart, as Diffusion-LM's decoder term), and the prior
    term (abar_T e^2: x_T should carry nothing of x_0). `record(t, loss)`, if given, receives each token's time
    and denoising loss (the adaptive schedule is built from them)."""
    batch, length = x0.shape
    steps = len(abar) - 1
    t = (block_ratios(batch, length, block_size, generator) * steps).ceil().long().clamp(1, steps)
    device = _device(model)
    a = abar.to(torch.float32)[t][..., None].to(device)
    x0 = x0.to(device)
    clean = model.embed(x0)
    eps = torch.randn(clean.shape, generator=generator).to(device)
    noisy = a.sqrt() * clean + (1 - a).sqrt() * eps
    mask, pos = (v.to(device) for v in training_mask(length, block_size))
    hidden = model.model(
        inputs_embeds=torch.cat([model.inputs(noisy, t.to(device)), model.inputs(clean, None)], dim=1),
        attention_mask=mask[None, None].expand(batch, 1, -1, -1),
        position_ids=pos[None].expand(batch, -1),
        use_cache=False,
    ).last_hidden_state
    predicted = model.predict_clean(hidden[:, :length])
    vocab = model.config.vocab_size

    def rounding(points: torch.Tensor) -> torch.Tensor:
        logits = model.rounding_logits(points)
        return F.cross_entropy(logits.reshape(-1, vocab), x0.reshape(-1), reduction="none").view(batch, length)

    mse = ((predicted - clean) ** 2).mean(-1)
    if record is not None:
        record(t, mse.detach().cpu())
    prior = float(abar[-1]) * (clean ** 2).mean(-1)
    return (mse + rounding(predicted) + rounding(clean) + prior).mean()


def canvas_masks(text_config, batch: int, length: int, canvas: int) -> dict[str, torch.Tensor]:
    """The decoder's attention masks (True: attend) over [clean cache | noisy canvases] for every layer type:
    a canvas sees the clean tokens before it and all of itself."""
    block = torch.arange(length) // canvas
    sees_cache = torch.arange(length)[None, :] < (block * canvas)[:, None]
    sees_canvas = block[None, :] == block[:, None]
    mask = torch.cat([sees_cache, sees_canvas], dim=1)[None, None].expand(batch, 1, -1, -1)
    return {layer_type: mask for layer_type in set(text_config.layer_types)}


def ar_loss(model: torch.nn.Module, x0: torch.Tensor, **_: object) -> torch.Tensor:
    x0 = x0.to(_device(model))
    out = model(input_ids=x0, use_cache=False)
    logits = out.logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), x0[:, 1:].reshape(-1))
