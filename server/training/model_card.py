"""A model card written next to every model `airquill train` saves."""
from __future__ import annotations

import platform
import sys

import torch

ARCHITECTURE = {
    "masked": ("Llama-style pre-norm decoder (RMSNorm, RoPE, SwiGLU, tied embeddings) trained as a masked "
               "diffusion model with a block-causal mask (BD3-LM): noisy tokens see their own block and the "
               "clean tokens of earlier blocks; clean tokens see clean tokens of their own and earlier blocks. "
               "The sampler's prefix cache is therefore exact. Objective: MDLM's continuous-time ELBO with the "
               "linear schedule (mask ratio t per block, masked cross-entropy weighted by 1/t)."),
    "ar": ("The same Llama-style decoder trained causally with next-token cross-entropy: the autoregressive "
           "twin (same tokenizer, corpus, size and token budget) that benchmarks compare against."),
    "uniform": ("DiffusionGemma's shape (transformers' `DiffusionGemmaForBlockDiffusion`), small: a causal encoder "
                "and a bidirectional decoder sharing their weights (five sliding-window layers to one full-attention "
                "layer, a dense MLP beside a two-expert MoE with one expert active, tied embeddings, logit "
                "soft-capping), and a self-conditioning block that feeds the previous step's prediction back in. "
                "The encoder caches the clean prefix; the decoder refines a canvas of random tokens. Objective: "
                "each canvas of a training window gets a noise ratio t ~ U(0, 1]; each token is replaced by a "
                "uniformly random ordinary token with probability t; the decoder predicts the clean token at every "
                "canvas position (mean cross-entropy: the validation loss is that, not an ELBO, so it is not "
                "comparable with the masked model's). Half the steps train with self-conditioning. The sampler's "
                "prefix cache is exact: the encoder is causal and the decoder only reads its cache."),
    "continuous": ("The same Llama-style decoder and block-causal mask as the masked model (so the prefix cache is "
                   "exact), diffusing in a small learned token-embedding space (DiffuSeq / Diffusion-LM): a canvas "
                   "position enters as its noisy point plus a time embedding, the model predicts the clean "
                   "embedding, and rounding to the nearest token embedding gives text. Objective per token: squared "
                   "error of the predicted embedding, cross-entropy of rounding it, cross-entropy of rounding the "
                   "clean embedding, and the prior term; one time t in 1..T per block."),
}


SAMPLE_PROMPTS = ("And God said", "In the beginning", "The LORD is my shepherd")


def sample_texts(model_dir, family: str, *, length: int = 64) -> list[tuple[str, str]]:
    """A few samples at the demo's settings (masked: linear schedule, 2 tokens per step, temperature 0.8,
    top-p 0.95; uniform: the sampler's defaults; AR: the same temperature and top-p), seeds 0, 1, 2."""
    if family in ("masked", "uniform", "continuous"):
        from airquill.server.models.loader import load_adapter
        from airquill.server.sampling.drivers import denoise
        from airquill.server.sampling.masked import MaskedDenoiser
        from airquill.server.sampling.options import SamplingOptions
        from airquill.server.sampling.continuous import ContinuousDenoiser, ContinuousOptions
        from airquill.server.sampling.uniform import UniformDenoiser, UniformOptions

        adapter = load_adapter(str(model_dir), device="cpu")
        out = []
        for seed, prompt in enumerate(SAMPLE_PROMPTS):
            if family == "masked":
                state = MaskedDenoiser.for_generation(adapter, prompt, length,
                                                      SamplingOptions(steps=length // 2, seed=seed))
            elif family == "uniform":
                state = UniformDenoiser.for_generation(adapter, prompt, length,
                                                       UniformOptions.for_adapter(adapter, seed=seed))
            else:
                state = ContinuousDenoiser.for_generation(adapter, prompt, length, ContinuousOptions(seed=seed))
            denoise(adapter, state)
            out.append((prompt, state.text))
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for seed, prompt in enumerate(SAMPLE_PROMPTS):
        torch.manual_seed(seed)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        generated = model.generate(ids, max_new_tokens=length, do_sample=True, temperature=0.8, top_p=0.95,
                                   top_k=0, pad_token_id=tokenizer.pad_token_id)
        out.append((prompt, tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)))
    return out


def model_card(stats: dict, *, parameters: int, command: str, samples: list[tuple[str, str]] = ()) -> str:
    cfg = stats["config"]
    shape = cfg["shape"]
    history = stats["history"]
    val = f"{history[-1]['val_loss']:.4f} (step {history[-1]['step']})" if history else "not measured"
    sample_text = "\n\n".join(f"> **{p}**{t.replace(chr(10), ' / ')}" for p, t in samples) or "(none)"
    experts = ""
    if stats["family"] == "uniform":
        experts = (f" (dense {shape['intermediate'] - shape['expert_intermediate']} + {shape['experts']} experts "
                   f"of {shape['expert_intermediate']}, one active; canvas {cfg['default_block_size']})")
        if cfg.get("noise") == "absorbing":
            experts += ("; **absorbing noise** (the comparison twin): a noised canvas token becomes the mask "
                        "instead of a random token, and the sampler noises with the mask too")
    elif stats["family"] == "continuous":
        experts = (f"; embeddings of {shape['embedding_dim']}, T = {cfg['diffusion_steps']}, "
                   f"{cfg['noise_schedule']} noise schedule")
    budget = "".join(f"; the token budget changed at step {c['step']} from {c['from']:,} to {c['to']:,} (the cosine "
                     f"schedule follows the new budget from there)" for c in stats.get("budget_changes", []))
    start = ""
    if cfg.get("init_from"):
        how = "fine-tuned from it"
        if stats.get("adapted_from"):
            how = (f"a model of the {stats['adapted_from']!r} family, adapted (AR-to-diffusion adaptation, as "
                   f"DiffuLLaMA and Dream do: its weights, trained from there with this family's objective and "
                   f"attention mask; no shift, so position i still predicts token i)")
        start = f"\n| started from | `{cfg['init_from']}`: {how} |"
    curve = "\n".join(f"| {h['step']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} |" for h in history)
    return f"""# {stats['name']}

{ARCHITECTURE[stats['family']]}

| | |
| --- | --- |
| family | {stats['family']} |
| corpus | `{cfg['data']}` (every 50th document held out for validation) |
| tokenizer | byte-level BPE, {stats['vocab_size']} tokens (tokenizers library), special tokens `<pad> <mask> <eos> <bos>` |
| shape | {shape['layers']} layers, hidden {shape['hidden']}, {shape['heads']} heads, MLP {shape['intermediate']}{experts}; {parameters / 1e6:.2f} M parameters, stored as fp16 safetensors |
| training | {stats['steps']} steps × {cfg['batch_size']} × {cfg['seq_len']} tokens = {stats['tokens']:,} tokens; AdamW lr {cfg['lr']} (warm-up {cfg['warmup']}, cosine to 10 %), clip {cfg['clip']}; block sizes {cfg['block_sizes']}{budget} |
| wall time | {stats['wall_seconds'] / 3600:.2f} h on {stats['hardware']} |
| validation loss | {val} |
| command | `{command}` |
| licence | MIT (weights); trained only on public-domain text |{start}

## Loss curve

| step | train | validation |
| --- | --- | --- |
{curve}

## Samples (seeds 0–2, the demo's settings)

{sample_text}
"""


def hardware(device: torch.device | None = None) -> str:
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), Python {sys.version.split()[0]}"
