"""`airquill bench server`: latency and throughput of the streaming server on loopback, against the same
requests driven in-process through the scheduler and answered one at a time — all in one run."""
from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field, replace

import msgspec
import torch
from websockets.asyncio.client import connect

from airquill.server.models.loader import load_adapter
from airquill.server.sampling.drivers import Scheduler
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions
from airquill.server.serving.websocket import AirquillServer, ServeConfig
from airquill.shared.protocol import Done, Generate, Sampling
from airquill.shared.session import ClientSession, StepReceived

PROMPT = "And it came to pass"


@dataclass
class Trace:
    sent: float = 0.0
    first_tokens: float | None = None  # first frame carrying tokens committed by a forward pass
    frames: list[float] = field(default_factory=list)
    frame_bytes: list[int] = field(default_factory=list)
    tokens: int = 0
    done: float = 0.0


async def _client(url: str, requests: list[Generate]) -> list[Trace]:
    """A raw protocol client that times every frame (requests sent one after another)."""
    traces = []
    async with connect(url, max_size=None, compression=None) as ws:
        session = ClientSession()
        for frame in session.data_to_send():
            await ws.send(frame)
        session.receive(await ws.recv())
        for request in requests:
            trace = Trace(sent=time.perf_counter())
            session.generate(request)
            for frame in session.data_to_send():
                await ws.send(frame)
            while True:
                frame = await ws.recv()
                now = time.perf_counter()
                for event in session.receive(frame):
                    if isinstance(event, StepReceived):
                        trace.frames.append(now)
                        trace.frame_bytes.append(len(frame))
                        committed = any(c.noise == 0.0 for c in event.step.changes)
                        if trace.first_tokens is None and event.step.index >= 1 and committed:
                            trace.first_tokens = now
                    elif isinstance(event, Done):
                        trace.done, trace.tokens = now, event.stats.tokens
                if trace.done:
                    break
            traces.append(trace)
    return traces


def _requests(n: int, length: int, sampling: Sampling, tag: str) -> list[Generate]:
    return [Generate(request_id=f"{tag}{i}", prompt=PROMPT, length=length, sampling=msgspec.structs.replace(sampling, seed=i))
            for i in range(n)]


def _ms(values: list[float], q: float) -> float:
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


def _in_process(adapter, n: int, length: int, options: SamplingOptions) -> float:
    scheduler = Scheduler(adapter, max_batch=64)
    states = [scheduler.submit(MaskedDenoiser.for_generation(adapter, PROMPT, length, replace(options, seed=i)))
              for i in range(n)]
    started = time.perf_counter()
    for _ in scheduler.run():
        pass
    return sum(len(s.output_ids) for s in states) / (time.perf_counter() - started)


async def _measure(adapter, *, length: int, steps: int, clients: list[int], latency_requests: int) -> dict:
    options = SamplingOptions(steps=steps, stop_at_eos=False)
    sampling = Sampling(steps=steps)
    server = await AirquillServer(adapter, ServeConfig(port=0, defaults=options)).start()
    url = f"ws://127.0.0.1:{server.port}"
    out: dict = {}
    try:
        await _client(url, _requests(2, length, sampling, "warm"))
        single = await _client(url, _requests(latency_requests, length, sampling, "lat"))
        first = [t.first_tokens - t.sent for t in single]
        intervals = [b - a for t in single for a, b in zip(t.frames[1:], t.frames[2:])]
        sizes = [b for t in single for b in t.frame_bytes[1:]]
        out.update(first_step_p50_ms=_ms(first, 0.5), first_step_p95_ms=_ms(first, 0.95),
                   step_interval_ms=1000 * statistics.mean(intervals), bytes_per_step_frame=statistics.mean(sizes),
                   bytes_initial_frame=statistics.mean(t.frame_bytes[0] for t in single))
        per_clients = {}
        for n in clients:
            started = time.perf_counter()
            traces = await asyncio.gather(*(_client(url, _requests(1, length, sampling, f"c{n}-{i}-"))
                                            for i in range(n)))
            elapsed = time.perf_counter() - started
            flat = [t for ts in traces for t in ts]
            server_tps = sum(t.tokens for t in flat) / elapsed
            direct_tps = await asyncio.to_thread(_in_process, adapter, n, length, options)
            started = time.perf_counter()
            serial = await _client(url, _requests(n, length, sampling, f"s{n}-"))
            serial_tps = sum(t.tokens for t in serial) / (time.perf_counter() - started)
            per_clients[n] = {
                "server_tokens_per_s": server_tps, "in_process_tokens_per_s": direct_tps,
                "one_at_a_time_tokens_per_s": serial_tps,
                "first_step_p95_ms": _ms([t.first_tokens - t.sent for t in flat], 0.95),
            }
        out["clients"] = per_clients
        if 16 in per_clients:
            row = per_clients[16]
            out["first_step_p95_ms_16"] = row["first_step_p95_ms"]
            out["serving_efficiency_16"] = row["server_tokens_per_s"] / row["in_process_tokens_per_s"]
            out["batching_gain_16"] = row["server_tokens_per_s"] / row["one_at_a_time_tokens_per_s"]
    finally:
        await server.stop()
    return out


def report(r: dict) -> str:
    lines = [f"server on loopback, {r['model']}: {r['length']} tokens, {r['steps']} steps, {r['threads']} threads",
             f"  first step with tokens (1 client): p50 {r['first_step_p50_ms']:.1f} ms, p95 {r['first_step_p95_ms']:.1f} ms",
             f"  step interval {r['step_interval_ms']:.1f} ms, {r['bytes_per_step_frame']:.0f} bytes per step frame "
             f"({r['bytes_initial_frame']:.0f} for the first, all-noise frame)"]
    for n, row in r["clients"].items():
        lines.append(f"  {n:>3} clients: server {row['server_tokens_per_s']:8.1f} tok/s | in-process "
                     f"{row['in_process_tokens_per_s']:8.1f} | one at a time {row['one_at_a_time_tokens_per_s']:8.1f} "
                     f"| first step p95 {row['first_step_p95_ms']:.0f} ms")
    if "serving_efficiency_16" in r:
        lines.append(f"  serving_efficiency_16 {r['serving_efficiency_16']:.2f}, batching_gain_16 "
                     f"{r['batching_gain_16']:.2f}, first_step_p95_ms_16 {r['first_step_p95_ms_16']:.0f}")
    return "\n".join(lines)


def main(args) -> int:
    adapter = load_adapter(args.model, device=args.device)
    results = asyncio.run(_measure(adapter, length=args.length, steps=args.steps, clients=args.clients,
                                   latency_requests=args.requests))
    results = {"model": adapter.name, "length": args.length, "steps": args.steps,
               "threads": torch.get_num_threads(), **results}
    print(json.dumps(results) if args.json else report(results))
    return 0
