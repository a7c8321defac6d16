"""The block-causal attention rule shared by training and sampling.

Masked (BD3-LM style) training feeds a noisy copy and a clean copy of each sequence. A noisy token sees the
noisy tokens of its own block and the clean tokens of earlier blocks; a clean token sees clean tokens of its
own and earlier blocks. At sampling time the cached prefix and newly committed blocks are "clean" and the
canvas being denoised is "noisy", so the same rule makes the prefix cache exact.
"""
from __future__ import annotations

import torch


def block_diffusion_mask(
    q_pos: torch.Tensor,
    q_clean: torch.Tensor,
    k_pos: torch.Tensor,
    k_clean: torch.Tensor,
    block_size: int,
) -> torch.Tensor:
    """Boolean mask [..., q, k]: True where query may attend to key.

    Positions are absolute token positions; inputs may carry leading batch dimensions.
    """
    qb = torch.div(q_pos, block_size, rounding_mode="floor").unsqueeze(-1)
    kb = torch.div(k_pos, block_size, rounding_mode="floor").unsqueeze(-2)
    qc = q_clean.unsqueeze(-1)
    kc = k_clean.unsqueeze(-2)
    noisy_query = (~qc) & (((~kc) & (kb == qb)) | (kc & (kb < qb)))
    clean_query = qc & kc & (kb <= qb)
    return noisy_query | clean_query


def training_mask(seq_len: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask [2L, 2L] and position ids [2L] for a doubled (noisy ‖ clean) training input."""
    pos = torch.arange(seq_len).repeat(2)
    clean = torch.cat([torch.zeros(seq_len, dtype=torch.bool), torch.ones(seq_len, dtype=torch.bool)])
    return block_diffusion_mask(pos, clean, pos, clean, block_size), pos
