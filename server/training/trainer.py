"""`airquill train`: tokenizer + masked-diffusion, uniform-noise, continuous or autoregressive model on a folder
of text.

Checkpoints are written atomically every `checkpoint_every` steps and on Ctrl-C; a rerun with the same output
folder resumes from the last one with the same data order (every batch is drawn from a generator seeded by
the step number, so no iterator state needs saving). The result is saved with `save_pretrained`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from airquill.server.models.loader import pick_device
from airquill.server.training.architecture import FAMILIES, ModelShape, build_model, mark_family
from airquill.server.training.corpus import load_corpus
from airquill.server.training.model_card import hardware, model_card, sample_texts
from airquill.server.sampling.continuous import alpha_bar
from airquill.server.sampling.noise import CANVAS_NOISES, ordinary_ids
from airquill.server.training.objectives import ar_loss, canvas_loss, continuous_loss, mdlm_loss
from airquill.server.training.tokenizer import train_tokenizer

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    family: str = "masked"
    init_from: str | None = None
    vocab_size: int = 4096
    shape: ModelShape = field(default_factory=ModelShape)
    seq_len: int = 256
    batch_size: int = 16
    block_sizes: tuple[int, ...] = (16, 32, 64, 256)
    default_block_size: int = 32  # uniform family: the canvas length
    noise: str = "uniform"  # uniform family: uniform | absorbing (the comparison)
    self_conditioning: float = 0.5  # uniform family: share of steps trained with self-conditioning
    diffusion_steps: int = 2000  # continuous family: training timesteps T
    noise_schedule: str = "sqrt"  # continuous family: abar(t) during training
    tokens: int = 20_000_000
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_every: int = 250
    checkpoint_every: int = 100
    eval_batches: int = 8
    seed: int = 0
    threads: int | None = None
    device: str | None = None  # None: CUDA when available, else the CPU

    @property
    def steps(self) -> int:
        return max(1, self.tokens // (self.batch_size * self.seq_len))


class LossTable:
    """The continuous family's denoising loss per position in a block (the first `rows`) and training-time
    bucket, decayed so it follows the model as it learns; the adaptive noise schedule is built from it."""

    def __init__(self, rows: int, steps: int, buckets: int = 20, decay: float = 0.99):
        self.rows, self.steps, self.buckets, self.decay = rows, steps, buckets, decay
        self.sum = torch.zeros(rows, buckets, dtype=torch.float64)
        self.count = torch.zeros(rows, buckets, dtype=torch.float64)

    def add(self, t: torch.Tensor, loss: torch.Tensor, block_size: int) -> None:
        self.sum *= self.decay
        self.count *= self.decay
        position = (torch.arange(t.shape[1]) % block_size).expand_as(t)
        keep = position < self.rows
        bucket = ((t - 1) * self.buckets // self.steps).clamp(0, self.buckets - 1)
        cell = (position * self.buckets + bucket)[keep]
        self.sum.view(-1).index_add_(0, cell, loss[keep].double())
        self.count.view(-1).index_add_(0, cell, torch.ones_like(cell, dtype=torch.float64))

    def means(self) -> list[list[float]]:
        """Mean loss per cell; a cell never seen takes its bucket's mean over positions."""
        seen = self.count > 0
        column = self.sum.sum(0) / self.count.sum(0).clamp_min(1e-12)
        table = torch.where(seen, self.sum / self.count.clamp_min(1e-12), column.expand_as(self.sum))
        return table.tolist()

    def state(self) -> dict:
        return {"sum": self.sum, "count": self.count}

    def load(self, state: dict) -> None:
        self.sum, self.count = state["sum"], state["count"]


class TokenStream:
    """Random fixed-length windows over the concatenated, EOS-separated corpus."""

    def __init__(self, docs: list[str], tokenizer, seq_len: int):
        ids: list[int] = []
        for doc in docs:
            ids.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
            ids.append(tokenizer.eos_token_id)
        if len(ids) <= seq_len:
            ids = ids * (seq_len // max(1, len(ids)) + 2)
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.seq_len = seq_len

    def batch(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        starts = torch.randint(0, len(self.ids) - self.seq_len, (batch_size,), generator=generator)
        return torch.stack([self.ids[s : s + self.seq_len] for s in starts.tolist()])


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _step_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 7919 + salt)


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Trainer:
    def __init__(self, cfg: TrainConfig, *, command: str = "airquill train"):
        if cfg.family not in FAMILIES:
            raise ValueError(f"unknown family {cfg.family!r}; choose from {', '.join(FAMILIES)}")
        if cfg.noise not in CANVAS_NOISES:
            raise ValueError(f"unknown noise {cfg.noise!r}; choose from {', '.join(CANVAS_NOISES)}")
        if not 0 <= cfg.self_conditioning <= 1:
            raise ValueError(f"self-conditioning must be a share between 0 and 1, got {cfg.self_conditioning}")
        self.cfg, self.command = cfg, command
        self.adapted_from: str | None = None  # the family of the --init-from model, when it was another one
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # float32 weights, TF32 matrix products
        corpus = load_corpus(Path(cfg.data))
        self.tokenizer, self.model = self._tokenizer_and_model(corpus.train)
        self.model.to(self.device)
        self.noise_ids = ordinary_ids(self.tokenizer, len(self.tokenizer))
        self.abar = alpha_bar(cfg.noise_schedule, cfg.diffusion_steps)
        self.loss_table = LossTable(cfg.default_block_size, cfg.diffusion_steps) if cfg.family == "continuous" else None
        self.train_stream = TokenStream(corpus.train, self.tokenizer, cfg.seq_len)
        self.eval_stream = TokenStream(corpus.heldout, self.tokenizer, cfg.seq_len)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
        )
        self.step = 0
        self.history: list[dict] = []
        self.elapsed = 0.0
        self.budget_changes: list[dict] = []
        self._resume()

    def _tokenizer_and_model(self, train_docs: list[str]):
        cfg = self.cfg
        if cfg.init_from:
            tokenizer = AutoTokenizer.from_pretrained(cfg.init_from)
            model = load_trained(cfg.init_from, cfg.family, adapt=ADAPTABLE.get(cfg.family))
            if _family(model) != cfg.family:
                self.adapted_from = _family(model)
                self._adapt(tokenizer, model)
            return tokenizer, model
        tok_dir = self.out / "tokenizer"
        if (tok_dir / "tokenizer.json").exists():
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        else:
            tokenizer = train_tokenizer(train_docs, cfg.vocab_size)
            tokenizer.save_pretrained(tok_dir)
        torch.manual_seed(cfg.seed)
        return tokenizer, build_model(cfg.shape, tokenizer, cfg.family, cfg.default_block_size, cfg.block_sizes,
                                      cfg.seq_len, diffusion_steps=cfg.diffusion_steps,
                                      noise_schedule=cfg.noise_schedule)

    def _adapt(self, tokenizer, model) -> None:
        """An autoregressive model as the start of a masked one (AR-to-diffusion adaptation, as DiffuLLaMA and Dream
        do): the same weights, from here on trained block-causally with the masked objective. Position i still
        predicts token i (no shift), so the output layer relearns its target while the rest keeps what it knew.
        A tokenizer without a mask token gets one."""
        cfg = self.cfg
        if tokenizer.mask_token_id is None:
            tokenizer.add_special_tokens({"mask_token": "<mask>"})
            model.resize_token_embeddings(len(tokenizer))
        print(f"adapting the {_family(model)!r} model {cfg.init_from} to the {cfg.family!r} family", file=sys.stderr)
        mark_family(model.config, cfg.family, tokenizer, cfg.default_block_size, cfg.block_sizes, cfg.seq_len)

    def _resume(self) -> None:
        path = self.out / CHECKPOINT
        if not path.exists():
            return
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = {**ADDED_LATER, **state["config"]}
        saved["shape"] = {**asdict(ModelShape()), **saved["shape"]}  # shape fields added later take defaults
        if _recipe(saved) != _recipe(_jsonable(self.cfg)):
            raise ValueError(f"{path} was written with different settings; use another --out or remove it")
        self.budget_changes = state.get("budget_changes", [])
        if saved["tokens"] != self.cfg.tokens:  # a run may be shortened or extended; the schedule follows
            self.budget_changes.append({"step": state["step"], "from": saved["tokens"], "to": self.cfg.tokens})
            print(f"token budget changed at step {state['step']}: {saved['tokens']:,} -> {self.cfg.tokens:,} "
                  f"({self.cfg.steps} steps); the learning rate follows the new schedule from here",
                  file=sys.stderr)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.history, self.elapsed = state["step"], state["history"], state["elapsed"]
        if self.loss_table is not None and "loss_table" in state:
            self.loss_table.load(state["loss_table"])
        if "--export-only" in self.command and state.get("command"):
            self.command = state["command"]  # the card names the command that trained the model

    def checkpoint(self) -> None:
        _save_atomic(
            {
                "config": _jsonable(self.cfg),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
                "history": self.history,
                "elapsed": self.elapsed,
                "command": self.command,
                "budget_changes": self.budget_changes,
                **({"loss_table": self.loss_table.state()} if self.loss_table is not None else {}),
            },
            self.out / CHECKPOINT,
        )

    def loss(self, x0: torch.Tensor, generator: torch.Generator, block_size: int) -> torch.Tensor:
        cfg = self.cfg
        if cfg.family == "ar":
            return ar_loss(self.model, x0)
        if cfg.family == "continuous":
            table = self.loss_table if self.model.training else None
            record = (lambda t, loss: table.add(t, loss, block_size)) if table is not None else None
            return continuous_loss(self.model, x0, block_size=block_size, generator=generator, abar=self.abar,
                                   record=record)
        if cfg.family == "uniform":  # the canvas length is the model's, whatever block was drawn
            return canvas_loss(self.model, x0, canvas=cfg.default_block_size, generator=generator, noise=cfg.noise,
                               noise_ids=self.noise_ids, mask_id=self.tokenizer.mask_token_id,
                               self_conditioning=cfg.self_conditioning if self.model.training else 0.0)
        return mdlm_loss(
            self.model, x0, mask_id=self.tokenizer.mask_token_id, block_size=block_size, generator=generator
        )

    def train_step(self) -> float:
        cfg = self.cfg
        gen = _step_generator(cfg.seed, self.step)
        block = cfg.block_sizes[int(torch.randint(len(cfg.block_sizes), (1,), generator=gen))]
        x0 = self.train_stream.batch(cfg.batch_size, gen)
        for group in self.optimizer.param_groups:
            group["lr"] = _lr(cfg, self.step)
        self.model.train()
        loss = self.loss(x0, gen, block)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.optimizer.step()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self) -> float:
        """Held-out loss with fixed batches and noise, so values are comparable across the run."""
        self.model.eval()
        losses = []
        for i in range(self.cfg.eval_batches):
            gen = _step_generator(self.cfg.seed, i, salt=1)
            x0 = self.eval_stream.batch(self.cfg.batch_size, gen)
            losses.append(float(self.loss(x0, gen, self.cfg.default_block_size)))
        return sum(losses) / len(losses)

    def run(self) -> Path:
        cfg = self.cfg
        tokens_per_step = cfg.batch_size * cfg.seq_len
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.family}", unit="step", dynamic_ncols=True)
        started, start_step = time.monotonic(), self.step
        try:
            while self.step < cfg.steps:
                loss = self.train_step()
                rate = (self.step - start_step) * tokens_per_step / max(1e-9, time.monotonic() - started)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}")
                bar.update(1)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    val = self.evaluate()
                    self.history.append({"step": self.step, "train_loss": loss, "val_loss": val})
                    bar.write(f"step {self.step}: train {loss:.4f} val {val:.4f}")
                if self.step % cfg.checkpoint_every == 0:
                    self.elapsed += time.monotonic() - started
                    started, start_step = time.monotonic(), self.step
                    self.checkpoint()
        except KeyboardInterrupt:
            self.elapsed += time.monotonic() - started
            self.checkpoint()
            bar.write(f"interrupted at step {self.step}; checkpoint saved, rerun the same command to resume")
            raise
        finally:
            bar.close()
        self.elapsed += time.monotonic() - started
        self.checkpoint()
        return self.save()

    def save(self) -> Path:
        final = self.out / "model"
        if self.loss_table is not None:
            self.model.config.airquill_loss_table = self.loss_table.means()
        if self.cfg.family == "uniform":
            self.model.config.airquill_noise = self.cfg.noise  # the sampler noises the canvas the same way
        self.model.half().save_pretrained(final, safe_serialization=True)
        self.model.float()
        self.tokenizer.save_pretrained(final)
        stats = {
            "name": final.name if final.name != "model" else self.out.name,
            "family": self.cfg.family,
            "vocab_size": len(self.tokenizer),
            "hardware": hardware(self.device),
            "steps": self.step,
            "tokens": self.step * self.cfg.batch_size * self.cfg.seq_len,
            "wall_seconds": round(self.elapsed, 1),
            "threads": torch.get_num_threads(),
            "history": self.history,
            "budget_changes": self.budget_changes,
            "adapted_from": self.adapted_from,
            "config": _jsonable(self.cfg),
        }
        (final / "training.json").write_text(json.dumps(stats, indent=2))
        parameters = sum(p.numel() for p in self.model.parameters())
        samples = sample_texts(final, self.cfg.family)
        (final / "README.md").write_text(model_card(stats, parameters=parameters, command=self.command,
                                                    samples=samples))
        return final


ADDED_LATER = {"noise": "uniform", "self_conditioning": 0.5, "diffusion_steps": 2000, "noise_schedule": "sqrt"}  # settings older checkpoints do not record
NOT_RECIPE = ("out", "threads", "device", "eval_every", "checkpoint_every", "eval_batches", "tokens")


ADAPTABLE = {"masked": "ar"}  # family trained -> the family whose model may start it (same architecture)


def load_trained(path: str, family: str, *, adapt: str | None = None):
    """A model `airquill train` saved, in float32 for training; refuses a model of another family unless it is
    the `adapt` family (then it is loaded as that family, for the caller to adapt)."""
    from airquill.server.models.loader import model_config

    found = getattr(model_config(path), "airquill_family", None)
    if found != family and (adapt is None or found != adapt):
        also = f" (or of the {adapt!r} family, to adapt)" if adapt else ""
        raise ValueError(f"{path} is a {found!r} model; --init-from needs a model of the {family!r} family{also}")
    if found == "uniform":
        from transformers import DiffusionGemmaForBlockDiffusion

        return DiffusionGemmaForBlockDiffusion.from_pretrained(path, dtype=torch.float32)
    if found == "continuous":
        from airquill.server.models.continuous import ContinuousDiffusionModel

        return ContinuousDiffusionModel.from_pretrained(path, dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def _family(model) -> str | None:
    return getattr(model.config, "airquill_family", None)


def _recipe(config: dict) -> dict:
    """The settings that change what is trained; the others may differ on resume."""
    return {k: v for k, v in config.items() if k not in NOT_RECIPE}


def _jsonable(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))
