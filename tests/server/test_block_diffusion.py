"""The block-causal decoder adapter with real transformers Llama code (random weights)."""
from __future__ import annotations

import torch

from airquill.server.models.block_mask import block_diffusion_mask, training_mask
from airquill.server.sampling.drivers import Scheduler, iter_denoise
from airquill.server.sampling.masked import MaskedDenoiser, Span
from airquill.server.sampling.options import SamplingOptions


def test_mask_rule():
    mask, pos = training_mask(seq_len=4, block_size=2)
    # noisy token 2 (block 1): sees noisy 2,3 and clean 0,1; clean token 2 sees clean 0..3's blocks <= 1
    assert mask[2].tolist() == [False, False, True, True, True, True, False, False]
    assert mask[4 + 1].tolist() == [False] * 4 + [True, True, False, False]
    assert pos.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    q = torch.tensor([5]); k = torch.tensor([0, 4, 5, 6])
    rule = block_diffusion_mask(q, torch.tensor([False]), k, torch.tensor([True, True, False, False]), 4)
    assert rule.tolist() == [[True, False, True, True]]  # clean prefix of earlier block, own noisy block


def _trace(adapter, **options):
    state = MaskedDenoiser.for_generation(adapter, "In the beginning God", 30, SamplingOptions(steps=12, **options))
    logits = []
    while not state.done:
        (out,) = adapter.forward([state.next_forward()])
        logits.append(out)
        state.advance(out)
    return state, logits


def test_prefix_cache_is_exact(tiny_llama):
    cached, with_cache = _trace(tiny_llama, temperature=0)
    recomputed, without = _trace(tiny_llama, temperature=0, prefix_cache=False)
    assert cached.cache.length > 0 and recomputed.cache is None
    assert cached.output_ids == recomputed.output_ids
    for a, b in zip(with_cache, without):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_batched_forward_matches_single(tiny_llama):
    prompts = ["In the", "And the earth was without form", "Привет"]
    scheduler = Scheduler(tiny_llama)
    batched = [scheduler.submit(MaskedDenoiser.for_generation(tiny_llama, p, 20, SamplingOptions(steps=6, seed=i)))
               for i, p in enumerate(prompts)]
    list(scheduler.run())
    for i, p in enumerate(prompts):
        single = MaskedDenoiser.for_generation(tiny_llama, p, 20, SamplingOptions(steps=6, seed=i))
        list(iter_denoise(tiny_llama, single))
        assert single.output_ids == batched[i].output_ids


def test_infill_with_real_model(tiny_llama):
    text = "In the beginning God created the heaven and the earth."
    state = MaskedDenoiser.for_infill(tiny_llama, text, [Span(17, 20)], SamplingOptions(steps=3))
    list(iter_denoise(tiny_llama, state))
    assert state.text.startswith("In the beginning ") and state.text.endswith(" created the heaven and the earth.")


def test_long_text_keeps_distances_within_the_trained_window(tokenizer):
    """Past the context window the cache slides: memory stays bounded and generation goes on."""
    from airquill.server.models.block_diffusion import BlockDiffusionAdapter
    from airquill.server.training.architecture import ModelShape, build_model

    torch.manual_seed(1)
    model = build_model(ModelShape(hidden=32, layers=2, heads=2, intermediate=64, max_positions=512),
                        tokenizer, "masked", block_size=8, context=24)
    adapter = BlockDiffusionAdapter(model, tokenizer, name="windowed")
    assert adapter.context == 24
    kept = []
    state = MaskedDenoiser.for_generation(adapter, "In the beginning", 120, SamplingOptions(steps=60))
    while not state.done:
        (logits,) = adapter.forward([state.next_forward()])
        state.advance(logits)
        kept.append(state.cache.kept)
    assert max(kept) <= 24 and state.cache.length > 100
    assert adapter.mask_id not in state.output_ids
