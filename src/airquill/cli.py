"""The `airquill` command: the composition root. Only this module imports both `server` and `vr_client`,
and only lazily, inside the subcommand that needs them."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _train(args: argparse.Namespace) -> int:
    from airquill.server.training.architecture import ModelShape
    from airquill.server.training.trainer import Trainer, TrainConfig

    shape = ModelShape(hidden=args.hidden, layers=args.layers, heads=args.heads, intermediate=args.intermediate)
    cfg = TrainConfig(
        data=args.data,
        out=args.out,
        family=args.family,
        init_from=args.init_from,
        vocab_size=args.vocab_size,
        shape=shape,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        tokens=args.tokens,
        lr=args.lr,
        warmup=args.warmup,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        threads=args.threads,
    )
    try:
        trainer = Trainer(cfg, command="airquill " + " ".join(sys.argv[1:]))
        final = trainer.save() if args.export_only else trainer.run()
    except (ValueError, FileNotFoundError) as err:
        print(f"airquill train: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"saved {final}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a tokenizer and a diffusion (or autoregressive) model on text files")
    p.add_argument("data", help="folder of .txt/.md files (or one file of blank-line separated chapters)")
    p.add_argument("--out", required=True, help="output folder; rerunning resumes from its checkpoint")
    p.add_argument("--family", default="masked", choices=["masked", "ar"])
    p.add_argument("--init-from", help="fine-tune this model folder instead of training from scratch")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=704)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tokens", type=int, default=20_000_000, help="token budget (same for both families)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--export-only", action="store_true", help="save the last checkpoint as a model and stop")
    p.set_defaults(handler=_train)


def _generate(args: argparse.Namespace) -> int:
    from airquill.server.generate import run_generate
    from airquill.vr_client.terminal_app import show_steps

    try:
        steps, info = run_generate(
            model=args.model, prompt=args.prompt, length=args.length, options=_sampling_options(args),
            device=args.device,
        )
        final = show_steps(steps, prompt=args.prompt, model=info["model"], pace=args.pace, live=args.live)
    except (ValueError, FileNotFoundError) as err:
        print(f"airquill generate: {err}", file=sys.stderr)
        return 2
    print(args.prompt + final)
    return 0


def _sampling_options(args: argparse.Namespace):
    from airquill.server.sampling.options import SamplingOptions

    schedule = args.schedule or ("threshold" if args.threshold is not None else "linear")
    return SamplingOptions(
        steps=args.steps, schedule=schedule, threshold=args.threshold if args.threshold is not None else 0.9,
        entropy_bound=args.entropy_bound, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
        block_size=args.block_size, prefix_cache=not args.no_cache,
    )


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="watch text condense from noise in the terminal")
    p.add_argument("prompt")
    p.add_argument("--model", help="shipped model name, model folder, or a hub id (downloads only then)")
    p.add_argument("--length", type=int, default=128, help="tokens to generate")
    p.add_argument("--steps", type=int, default=64, help="step budget for fixed schedules")
    p.add_argument("--schedule", choices=["linear", "cosine", "threshold", "entropy"])
    p.add_argument("--threshold", type=float, help="commit every token above this confidence (threshold schedule)")
    p.add_argument("--entropy-bound", type=float, default=1.0, help="entropy schedule: nats committed per step")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block-size", type=int, help="tokens per block (default: the model's)")
    p.add_argument("--no-cache", action="store_true", help="recompute the prefix every step")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    p.add_argument("--pace", type=float, default=0.05, help="minimum seconds per shown step, to watch it")
    p.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                   help="live view (default: when stdout is a terminal)")
    p.set_defaults(handler=_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airquill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_generate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
