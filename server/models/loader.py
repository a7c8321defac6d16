"""Loading a denoiser: the shipped model, a local folder, or (only when a user names one) a hub id.

Our own models say `airquill_family` in their config and load as block-causal decoders; anything else loads
as a Hugging Face masked LM. Adapters for other checkpoint types plug in through `ADAPTERS` by model_type.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from airquill.assets import MODELS
from airquill.server.models.base import ModelAdapter
from airquill.server.models.bidirectional import BidirectionalAdapter
from airquill.server.models.block_diffusion import BlockDiffusionAdapter

DEFAULT_MODEL = "kjv-masked"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class RemoteCodeAdapter:
    """How to run a masked diffusion checkpoint that ships its own modelling code."""

    logit_shift: int = 0


ADAPTERS: dict[str, RemoteCodeAdapter] = {
    "llada": RemoteCodeAdapter(logit_shift=0),
    "Dream": RemoteCodeAdapter(logit_shift=1),
    "dream": RemoteCodeAdapter(logit_shift=1),
}


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device, dtype: str | None = None) -> torch.dtype:
    if dtype:
        return getattr(torch, dtype)
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def resolve(name: str | None) -> tuple[str, bool]:
    """(where to load from, whether a hub download is allowed). Shipped names and folders never download."""
    shipped = name is None or ("/" not in name and "\\" not in name and (MODELS / name).is_dir())
    if shipped:
        path = MODELS / (name or DEFAULT_MODEL)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"the shipped model is missing at {path}; reinstall airquill")
        return str(path), False
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a model folder (no config.json)")
        return str(path), False
    if HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return name, True
    raise FileNotFoundError(f"model path does not exist: {name}")


def model_config(source: str, **kwargs):
    """A model folder's config, our own model types included."""
    from transformers import AutoConfig

    from airquill.server.models import continuous

    continuous.register()
    return AutoConfig.from_pretrained(source, **kwargs)


def load_adapter(name: str | None = None, *, device: str | None = None, dtype: str | None = None) -> ModelAdapter:
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a terminal view is about to draw; no loader bars under it

    source, download = resolve(name)
    dev = pick_device(device)
    kwargs = {"local_files_only": not download}
    from airquill.server.models import continuous

    config = model_config(source, trust_remote_code=download, **kwargs)
    label = name or DEFAULT_MODEL
    if config.model_type == "diffusion_gemma":  # uniform noise, native in transformers: no mask token needed
        from airquill.server.models.diffusion_gemma import DiffusionGemmaAdapter

        return DiffusionGemmaAdapter.from_pretrained(source, name=label, device=dev,
                                                     dtype=pick_dtype(dev, dtype), local_files_only=not download)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=download, **kwargs)
    model_kwargs = {"dtype": pick_dtype(dev, dtype), **kwargs}
    family = getattr(config, "airquill_family", None)
    if family == "ar":
        raise ValueError(f"{label} is an autoregressive model; the diffusion sampler needs a masked model")
    if family == "masked":
        model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs).to(dev)
        return BlockDiffusionAdapter(model, tokenizer, name=label)
    if family == "continuous":
        model = continuous.ContinuousDiffusionModel.from_pretrained(source, **model_kwargs).to(dev)
        return continuous.ContinuousAdapter(model, tokenizer, name=label)
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{label}: the tokenizer has no mask token; a masked diffusion model needs one")
    remote = ADAPTERS.get(config.model_type)
    if remote is not None:
        model = AutoModel.from_pretrained(source, trust_remote_code=True, **model_kwargs).to(dev)
        return BidirectionalAdapter(model, tokenizer, name=label, logit_shift=remote.logit_shift)
    model = AutoModelForMaskedLM.from_pretrained(source, **model_kwargs).to(dev)
    return BidirectionalAdapter(model, tokenizer, name=label)
