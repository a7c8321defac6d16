"""Training losses: MDLM (absorbing-state masked diffusion, block-causal) and next-token prediction."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from airquill.server.models.block_mask import training_mask

T_MIN = 1e-3


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
    n_blocks = -(-length // block_size)
    u = torch.rand(1, generator=generator)
    t = (u + torch.arange(batch * n_blocks) / (batch * n_blocks)) % 1.0
    t = t[torch.randperm(batch * n_blocks, generator=generator)].view(batch, n_blocks).clamp_min(T_MIN)
    t_tok = t.repeat_interleave(block_size, dim=1)[:, :length]
    masked = torch.rand(batch, length, generator=generator) < t_tok
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    mask, pos = training_mask(length, block_size)
    hidden = model.model(
        input_ids=torch.cat([xt, x0], dim=1),
        attention_mask=mask[None, None].expand(batch, 1, -1, -1),
        position_ids=pos[None].expand(batch, -1),
        use_cache=False,
    ).last_hidden_state
    logits = model.lm_head(hidden[:, :length]).float()  # only the noisy half is scored
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), x0.reshape(-1), reduction="none").view(batch, length)
    return (ce * masked / t_tok).sum() / (batch * length)


def ar_loss(model: torch.nn.Module, x0: torch.Tensor, **_: object) -> torch.Tensor:
    out = model(input_ids=x0, use_cache=False)
    logits = out.logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), x0[:, 1:].reshape(-1))
