"""The `airquill` command: the composition root. Only this module imports both `server` and `vr_client`,
and only lazily, inside the subcommand that needs them."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _train(args: argparse.Namespace) -> int:
    from airquill.server.training.architecture import ModelShape
    from airquill.server.training.trainer import Trainer, TrainConfig

    shape = ModelShape(hidden=args.hidden, layers=args.layers, heads=args.heads, intermediate=args.intermediate,
                       expert_intermediate=args.expert_intermediate, embedding_dim=args.embedding_dim)
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
        device=args.device,
        noise=args.noise,
        self_conditioning=args.self_conditioning,
        diffusion_steps=args.diffusion_steps,
        noise_schedule=args.noise_schedule,
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
    p.add_argument("--family", default="masked", choices=["masked", "ar", "uniform", "continuous"],
                   help="masked diffusion, its autoregressive twin, uniform noise (DiffusionGemma's shape) or "
                        "continuous diffusion on embeddings (DiffuSeq)")
    p.add_argument("--diffusion-steps", type=int, default=2000, help="continuous family: training timesteps T")
    p.add_argument("--noise-schedule", default="sqrt", choices=["linear", "cosine", "sqrt"],
                   help="continuous family: the noise schedule abar(t) to train with")
    p.add_argument("--embedding-dim", type=int, default=64,
                   help="continuous family: dimension of the token embeddings diffusion runs in")
    p.add_argument("--noise", default="uniform", choices=["uniform", "absorbing"],
                   help="uniform family: what a noised canvas token becomes (absorbing: the mask, for comparison)")
    p.add_argument("--self-conditioning", type=float, default=0.5,
                   help="uniform family: share of steps trained on the previous prediction (0 turns it off)")
    p.add_argument("--init-from", help="fine-tune this model folder instead of training from scratch "
                                       "(an AR model may start a masked one: adaptation)")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=704)
    p.add_argument("--expert-intermediate", type=int, default=192,
                   help="uniform family: width of each MoE expert (the dense MLP gets the rest of --intermediate)")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tokens", type=int, default=20_000_000, help="token budget (same for both families)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", help="cpu or cuda[:N] (default: cuda when there is a GPU); a run may resume on "
                                    "another device, and draws the same noise on any")
    p.add_argument("--export-only", action="store_true", help="save the last checkpoint as a model and stop")
    p.set_defaults(handler=_train)


def _train_style(args: argparse.Namespace) -> int:
    from pathlib import Path

    from transformers import AutoTokenizer

    from airquill.assets import CORPUS, MODELS
    from airquill.server.sampling.style import train_style_classifiers

    try:
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or str(MODELS / "kjv-masked"))
        results = train_style_classifiers(Path(args.data or CORPUS), tokenizer, Path(args.out), seed=args.seed)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"airquill train-style: {err}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=1))
    return 0


def _add_train_style(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-style", help="train the two question/statement classifiers of the style control "
                                           "(a guide and a judge, on disjoint halves of the corpus's verses)")
    p.add_argument("data", nargs="?", help="corpus (default: the shipped King James Bible)")
    p.add_argument("--out", required=True, help="output folder (the shipped ones live in assets/models/kjv-style)")
    p.add_argument("--tokenizer", help="model folder whose tokenizer the classifiers read (default: kjv-masked)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_train_style)


def _generate(args: argparse.Namespace) -> int:
    from airquill.vr_client.terminal_app import show_steps

    try:
        if args.server:
            from airquill.vr_client.remote import remote_steps

            steps, info = remote_steps(args.server, token=_read_token(args), prompt=args.prompt, length=args.length,
                                       sampling=_protocol_sampling(args), controls=_protocol_controls(args))
        else:
            from airquill.server.generate import run_generate

            steps, info = run_generate(
                model=args.model, prompt=args.prompt, length=args.length, options=_sampling_options(args),
                device=args.device, controls=_sampler_controls(args),
            )
        final = show_steps(steps, prompt=args.prompt, model=info["model"], pace=args.pace, live=args.live)
    except (ValueError, FileNotFoundError, ConnectionError, RuntimeError) as err:
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
        block_size=args.block_size, prefix_cache=not args.no_cache, repetition_penalty=args.repetition_penalty,
    )


def _sampler_controls(args: argparse.Namespace):
    from airquill.server.sampling.controls import Controls

    return Controls.from_protocol(_protocol_controls(args))


def _protocol_controls(args: argparse.Namespace):
    from airquill.shared.protocol import Controls

    if not (args.keyword or args.length_words or args.style):
        return None
    return Controls(keywords=list(args.keyword or ()), length_words=args.length_words, style=args.style,
                    style_strength=args.style_strength)


def _protocol_sampling(args: argparse.Namespace):
    from airquill.shared.protocol import Sampling

    options = _sampling_options(args)
    return Sampling(steps=options.steps, schedule=options.schedule, threshold=options.threshold,
                    entropy_bound=options.entropy_bound, temperature=options.temperature, top_p=options.top_p,
                    seed=options.seed, block_size=options.block_size, repetition_penalty=options.repetition_penalty)


def _read_token(args: argparse.Namespace) -> str:
    """The auth token: --token-file, else $AIRQUILL_TOKEN, else none (a server without a token)."""
    if getattr(args, "token_file", None):
        try:
            return open(args.token_file, encoding="utf-8").read().strip()
        except OSError as err:
            raise FileNotFoundError(f"cannot read token file: {err}") from None
    return os.environ.get("AIRQUILL_TOKEN", "")


def _add_token(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-file", help="file holding the auth token (default: $AIRQUILL_TOKEN)")


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from airquill.server.serving.main import serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return asyncio.run(serve_forever(args, token=_read_token(args)))
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"airquill serve: {err}", file=sys.stderr)
        return 2


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="stream every denoising step over WebSocket")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--model", help="shipped model name, model folder, or a hub id")
    _add_family(p)
    p.add_argument("--device")
    p.add_argument("--certfile", help="TLS certificate (PEM); serves wss://")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--port-file", help="write the bound port here once listening")
    _add_token(p)
    p.set_defaults(handler=_serve)


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="watch text condense from noise in the terminal")
    p.add_argument("prompt")
    p.add_argument("--model", help="shipped model name, model folder, or a hub id (downloads only then)")
    _add_family(p)
    _add_sampling(p, steps=64, length=128)
    controls = p.add_argument_group("controls")
    controls.add_argument("--keyword", action="append", help="a word the text must contain (repeat for more)")
    controls.add_argument("--length-words", type=int, help="the text's length in words (±5%%; --length is then "
                                                          "ignored)")
    controls.add_argument("--style", choices=["question", "statement"], help="steer towards this style")
    controls.add_argument("--style-strength", type=float, default=2.0, help="how hard to steer the style")
    p.add_argument("--pace", type=float, default=0.05, help="minimum seconds per shown step, to watch it")
    p.add_argument("--live", action=argparse.BooleanOptionalAction, default=None,
                   help="live view (default: when stdout is a terminal)")
    p.add_argument("--server", help="ws://HOST:PORT of an `airquill serve` to generate on")
    _add_token(p)
    p.set_defaults(handler=_generate)


def _run_bench(args: argparse.Namespace) -> int:
    import importlib

    if getattr(args, "threads", None):  # every benchmark that loads a model takes --threads
        import torch

        torch.set_num_threads(args.threads)
    try:
        return importlib.import_module(args.bench_module).main(args)
    except (ValueError, OSError) as exc:  # a wrong or missing model, a bad option: say so, no traceback
        print(f"airquill bench {args.bench}: {exc}", file=sys.stderr)
        return 2


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (each prints ratios measured in one run)")
    benches = p.add_subparsers(dest="bench", required=True)

    def bench(name: str, module: str, help_text: str, *, model: bool = True) -> argparse.ArgumentParser:
        parser = benches.add_parser(name, help=help_text)
        if model:
            parser.add_argument("--model")
            parser.add_argument("--device")
            parser.add_argument("--threads", type=int)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(handler=_run_bench, bench_module=module)
        return parser

    cache = bench("cache", "airquill.server.bench.prefix_cache", "block-wise generation with the prefix cache on and off")
    cache.add_argument("--length", type=int, default=512)
    cache.add_argument("--steps", type=int, default=256)
    cache.add_argument("--block-size", type=int)
    cache.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    server = bench("server", "airquill.server.bench.serving", "latency and throughput of the streaming server on loopback")
    server.add_argument("--length", type=int, default=64)
    server.add_argument("--steps", type=int, default=32)
    server.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    server.add_argument("--requests", type=int, default=20, help="sequential requests for the latency figures")
    sampler = bench("sampler", "airquill.server.bench.sampler", "masked-diffusion settings against the AR twin")
    sampler.add_argument("--ar-model", help="the AR twin's folder (default: the shipped kjv-ar)")
    sampler.add_argument("--length", type=int, default=256)
    sampler.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    sampler.add_argument("--quick", action="store_true", help="three settings only")
    sampler.add_argument("--samples", type=int, default=16,
                         help="prompts per batch size at least: a smaller batch runs in rounds (default 16)")
    sampler.add_argument("--plot", help="write the quality/speed plot (PNG) here")
    families = bench("families", "airquill.server.bench.families",
                     "masked vs uniform-noise family vs the AR twin: quality against steps and speed")
    families.add_argument("--uniform-model",
                          help="the uniform-noise model (default: the shipped kjv-uniform, when there is one)")
    families.add_argument("--continuous-model",
                          help="the continuous model (default: the shipped kjv-continuous, when there is one)")
    families.add_argument("--absorbing-model",
                          help="the uniform model's twin trained with --noise absorbing: every uniform setting "
                               "runs on it too (the noise comparison)")
    families.add_argument("--families", nargs="+", metavar="FAMILY",
                          help="diffusion families to run: masked uniform continuous absorbing "
                               "(default: every one with a model; the AR twin always runs)")
    families.add_argument("--no-controls", action="store_true", help="skip the controls' rows (keywords, length, style)")
    families.add_argument("--ar-model", help="the AR twin's folder (default: the shipped kjv-ar)")
    families.add_argument("--length", type=int, default=128)
    families.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    families.add_argument("--long-length", type=int, default=2048, help="output length of the prefix-cache rows")
    families.add_argument("--quick", action="store_true", help="fewer settings")
    families.add_argument("--samples", type=int, default=1,
                          help="prompts per batch size at least: a smaller batch runs in rounds (bench sampler: 16)")
    families.add_argument("--shaped", choices=["realistic", "tiny"],
                          help="also time a DiffusionGemma-shaped random model (default: realistic on CUDA, else off)")
    families.add_argument("--plot", help="write the quality/speed plot (PNG) here")
    parallel = bench("parallelism", "airquill.server.bench.parallelism",
                     "tokens per step: what beating the AR twin needs, what the model commits at the gate, an oracle")
    parallel.add_argument("--ar-model", help="the AR twin's folder (default: the shipped kjv-ar)")
    parallel.add_argument("--length", type=int, default=128)
    parallel.add_argument("--samples", type=int, default=16, help="prompts, run one at a time (batch 1)")
    parallel.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.4, 0.3, 0.2])
    parallel.add_argument("--blocks", type=int, nargs="+", default=[16, 32, 64])
    parallel.add_argument("--confidences", type=float, nargs="+", default=[0.9, 0.7, 0.5, 0.3],
                          help="the oracle's confidence levels")
    parallel.add_argument("--target", type=float, default=4.0, help="speed-up over the twin to size the need for")
    book = bench("book", "airquill.server.bench.book", "book generation vs the direct scheduler and the AR twin")
    book.add_argument("--ar-model", help="the AR twin's folder (default: the shipped kjv-ar)")
    book.add_argument("--chapters", type=int, default=64)
    book.add_argument("--length", type=int, default=256)
    book.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 16, 64])
    book.add_argument("--steps", type=int, default=128)
    book.add_argument("--schedule", default="linear", choices=["linear", "cosine", "random", "threshold", "entropy"])
    book.add_argument("--threshold", type=float, default=0.9)
    book.add_argument("--block-size", type=int, help="canvas block (default: the model's)")
    render = bench("render", "airquill.vr_client.bench_render", "frame cost of the text renderer (headless EGL)",
                   model=False)
    render.add_argument("--frames", type=int, default=30)
    inputs = bench("input", "airquill.bench_input", "hand tracking, pinch-to-action, voice and edit latency")
    inputs.add_argument("--frames", type=int, default=60, help="hand-tracking frames per kind")


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from airquill.demo import run_demo

    from airquill.vr_client.session_store import DEFAULT_SESSION
    from airquill.vr_client.workspace import WorkspaceConfig

    host = getattr(args, "fixed_host", None) or args.host
    workspace = WorkspaceConfig(session=Path(args.session) if args.session else DEFAULT_SESSION,
                                output=Path(args.output), hands=args.hands, camera=args.camera,
                                calibrate=args.calibrate, voice=args.voice, vosk_model=args.vosk_model,
                                language=args.language)
    try:
        return run_demo(model=args.model, out=Path(args.out), host=host, server=args.server,
                        token=_read_token(args), workspace=workspace)
    except (RuntimeError, ConnectionError, FileNotFoundError) as err:
        print(f"airquill {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _add_demo(sub: argparse._SubParsersAction) -> None:
    commands = {
        "demo": ("start a server with the shipped model and watch panels condense on the best host", None),
        "vr": ("the scene in an OpenXR headset (SteamVR, Quest Link, Monado)", "openxr"),
        "desktop": ("the scene in a desktop window: right-drag looks, WASD moves, click selects, type + Enter "
                    "prompts", "desktop"),
    }
    for name, (help_text, fixed) in commands.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--server", help="ws://HOST:PORT of a running `airquill serve` (default: start one here)")
        p.add_argument("--model", help="model for the server started here (default: the shipped one)")
        _add_family(p)
        if fixed is None:
            p.add_argument("--host", choices=["openxr", "desktop", "headless"], help="default: the best available")
        p.add_argument("--out", default="out/demo.gif", help="where the headless host writes its GIF")
        inputs = p.add_argument_group("editing and inputs (desktop and VR)")
        inputs.add_argument("--session", help="session file: panels and their histories, autosaved and reopened "
                                              "(default: ~/.local/share/airquill/session.json)")
        inputs.add_argument("--output", default="book/output", help="where `save` writes panels")
        inputs.add_argument("--hands", action="store_true", help="webcam hand tracking (MediaPipe; set up the "
                            "model once with `python -m airquill.vr_client.input.hands --setup`)")
        inputs.add_argument("--camera", type=int, default=0, help="webcam index")
        inputs.add_argument("--calibrate", action="store_true", help="redo the four-corner pointer calibration")
        inputs.add_argument("--voice", action="store_true", help="speech prompts and commands (Vosk)")
        inputs.add_argument("--vosk-model", help="Vosk model folder (default: $AIRQUILL_VOSK_MODEL)")
        inputs.add_argument("--language", choices=["en", "ru"], default="en", help="voice command language")
        _add_token(p)
        p.set_defaults(handler=_demo, fixed_host=fixed, host=None)


def _book_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from airquill.shared.book import Book

    book = Book(Path(args.dir))
    book.init(title=args.title)
    print(f"created {book.root}/: outline.md (edit it), chapters/ (your own chapters), output/")
    return 0


def _book_finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from airquill.server.models.loader import resolve
    from airquill.server.training.trainer import Trainer, TrainConfig
    from airquill.shared.book import Book

    book = Book(Path(args.book))
    base = args.model or book.config().get("model")
    source, _ = resolve(base)
    out = Path(args.out or book.root / "model-run")
    try:
        cfg = TrainConfig(data=str(book.chapters_dir), out=str(out), init_from=source, tokens=args.tokens,
                          lr=args.lr, warmup=args.warmup, eval_every=args.eval_every,
                          checkpoint_every=args.checkpoint_every, threads=args.threads,
                          batch_size=args.batch_size, seq_len=args.seq_len)
        final = Trainer(cfg, command="airquill " + " ".join(sys.argv[1:])).run()
    except (ValueError, FileNotFoundError) as err:
        print(f"airquill book finetune: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    book.set_model(str(final.resolve()))
    print(f"fine-tuned {final}; {book.config_path} now uses it")
    return 0


def _book_generate(args: argparse.Namespace) -> int:
    import asyncio
    import json
    from pathlib import Path

    from airquill.shared.book import Book, OutlineError, generate_remote

    book = Book(Path(args.book))
    try:
        outline = book.outline()
        if args.server:
            summary = asyncio.run(generate_remote(book, outline, args.server, token=_read_token(args),
                                                  parallel=args.parallel, length=args.length,
                                                  sampling=_protocol_sampling(args), seed=args.seed,
                                                  limit=args.chapters))
        else:
            from airquill.server.book.runner import generate_local
            from airquill.server.models.loader import load_adapter

            adapter = load_adapter(args.model or book.config().get("model"), device=args.device)
            summary = generate_local(book, outline, adapter, parallel=args.parallel, length=args.length,
                                     options=_sampling_options(args), limit=args.chapters)
    except (OutlineError, ValueError, FileNotFoundError, ConnectionError, RuntimeError) as err:
        print(f"airquill book generate: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished chapters are saved; rerun to continue", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


def _book_view(args: argparse.Namespace) -> int:
    from pathlib import Path

    from airquill.demo import run_book_view
    from airquill.shared.book import OutlineError

    try:
        return run_book_view(book_dir=Path(args.book), host=args.host, server=args.server, token=_read_token(args),
                             model=args.model, parallel=args.parallel, length=args.length, steps=args.steps,
                             seed=args.seed, limit=args.chapters, out=Path(args.out))
    except (OutlineError, ValueError, FileNotFoundError, ConnectionError, RuntimeError) as err:
        print(f"airquill book view: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _add_sampling(p: argparse.ArgumentParser, *, steps: int, length: int) -> None:
    p.add_argument("--length", type=int, default=length, help="tokens to generate")
    p.add_argument("--steps", type=int, default=steps, help="step budget for fixed schedules")
    p.add_argument("--schedule", choices=["linear", "cosine", "random", "threshold", "entropy"])
    p.add_argument("--threshold", type=float, help="commit every token above this confidence (threshold schedule)")
    p.add_argument("--entropy-bound", type=float, default=1.0, help="entropy schedule: nats committed per step")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--repetition-penalty", type=float, default=1.5,
                   help="discourage tokens already in the last 32 (1 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block-size", type=int, help="tokens per block (default: the model's)")
    p.add_argument("--no-cache", action="store_true", help="recompute the prefix every step")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when present)")


def _add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="whole books: an outline in, chapters out, generated in parallel")
    books = p.add_subparsers(dest="book_command", required=True)
    init = books.add_parser("init", help="create book/ with outline.md, chapters/ and output/")
    init.add_argument("dir", nargs="?", default="book")
    init.add_argument("--title", default="Untitled")
    init.set_defaults(handler=_book_init)
    tune = books.add_parser("finetune", help="fine-tune the book's model on book/chapters/")
    tune.add_argument("--book", default="book")
    tune.add_argument("--model", help="start from this model (default: the book's, else the shipped one)")
    tune.add_argument("--out", help="training folder (default: book/model-run); rerun to resume")
    tune.add_argument("--tokens", type=int, default=500_000)
    tune.add_argument("--lr", type=float, default=3e-4)
    tune.add_argument("--warmup", type=int, default=20)
    tune.add_argument("--batch-size", type=int, default=16)
    tune.add_argument("--seq-len", type=int, default=256)
    tune.add_argument("--eval-every", type=int, default=50)
    tune.add_argument("--checkpoint-every", type=int, default=25)
    tune.add_argument("--threads", type=int)
    tune.set_defaults(handler=_book_finetune)
    gen = books.add_parser("generate", help="write the chapters of the outline into book/output/")
    gen.add_argument("--book", default="book")
    gen.add_argument("--chapters", type=int, help="only the first N chapters of the outline")
    gen.add_argument("--parallel", type=int, default=16, help="chapters generated at once")
    gen.add_argument("--model", help="default: the book's model (book.json), else the shipped one")
    gen.add_argument("--server", help="ws://HOST:PORT: generate on a remote `airquill serve`")
    _add_token(gen)
    _add_sampling(gen, steps=128, length=256)
    gen.set_defaults(handler=_book_generate)
    view = books.add_parser("view", help="the book view: chapters on a shelf condensing live (VR, desktop or "
                                         "headless GIF); pick a chapter to read and edit it")
    view.add_argument("--book", default="book")
    view.add_argument("--chapters", type=int, help="only the first N chapters of the outline (at most 100)")
    view.add_argument("--parallel", type=int, default=16, help="chapters generated at once")
    view.add_argument("--length", type=int, default=128, help="tokens per chapter")
    view.add_argument("--steps", type=int, default=64, help="denoising steps per chapter")
    view.add_argument("--seed", type=int, default=0)
    view.add_argument("--model", help="default: the book's model (book.json), else the shipped one")
    view.add_argument("--server", help="ws://HOST:PORT of a running `airquill serve` (default: start one here)")
    view.add_argument("--host", choices=["openxr", "desktop", "headless"], help="default: the best available")
    view.add_argument("--out", default="out/book.gif", help="where the headless host writes its GIF")
    _add_token(view)
    view.set_defaults(handler=_book_view)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airquill", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_train_style(sub)
    _add_generate(sub)
    _add_bench(sub)
    _add_serve(sub)
    _add_demo(sub)
    _add_book(sub)
    return parser


def _add_family(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", choices=["masked", "uniform", "continuous"],
                   help="use the shipped model of this family: masked diffusion (kjv-masked), uniform noise, "
                        "text condensing from random tokens (kjv-uniform), or continuous diffusion in embedding "
                        "space (kjv-continuous); --model overrides it")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "family", None) and hasattr(args, "model") and args.command != "train":
        if args.model:
            parser.error("give --model or --family, not both")
        from airquill.assets import MODELS, SHIPPED

        args.model = SHIPPED[args.family]
        if not (MODELS / args.model).is_dir():
            print(f"airquill {args.command}: the shipped {args.family} model {args.model} is missing from "
                  f"{MODELS}; reinstall airquill, or train one with `airquill train --family {args.family}` and "
                  f"pass --model", file=sys.stderr)
            return 2
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
