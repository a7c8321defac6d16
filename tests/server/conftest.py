"""Fixtures of the server tests: one request through the real WebSocket server on loopback; invariants every
sampler family must keep (a batch gives what one-by-one runs give; a cancel ends within one step)."""
from __future__ import annotations

import asyncio

import pytest

from airquill.server.sampling.drivers import Scheduler, denoise, iter_denoise
from airquill.server.serving.websocket import AirquillServer, ServeConfig
from airquill.shared.client import AirquillClient
from airquill.shared.protocol import Sampling


def _stream_once(adapter, prompt: str, length: int, sampling: Sampling, *, timeout: float = 120, controls=None):
    """Serve `adapter`, generate once; returns (capabilities, steps received, the done message, the client's
    TextState)."""

    async def main():
        server = await AirquillServer(adapter, ServeConfig(port=0, token="t")).start()
        try:
            async with AirquillClient(f"ws://127.0.0.1:{server.port}", token="t") as client:
                stream = await client.generate(prompt, length, sampling=sampling, controls=controls)
                steps = [step async for step in stream.steps()]
                return client.welcome.capabilities, steps, await stream.result(), stream.state
        finally:
            await server.stop()

    return asyncio.run(asyncio.wait_for(main(), timeout=timeout))


@pytest.fixture
def stream_once():
    return _stream_once


def _batched_equals_one_by_one(adapter, make_states) -> None:
    """`make_states()` gives fresh sampler states; all of them batched by one scheduler must end exactly as each
    does run alone."""
    scheduler = Scheduler(adapter, max_batch=8)
    batched = [scheduler.submit(state) for state in make_states()]
    list(scheduler.run())
    for alone, together in zip(make_states(), batched):
        denoise(adapter, alone)
        assert alone.output_ids == together.output_ids


@pytest.fixture
def batched_equals_one_by_one():
    return _batched_equals_one_by_one


def _cancel_after(adapter, state, index: int) -> list:
    """Drive a request, asking it to cancel once step `index` arrived; the steps it yielded."""
    seen = []
    for step in iter_denoise(adapter, state):
        seen.append(step)
        if step.index == index:
            state.cancel()
    return seen


@pytest.fixture
def cancel_after():
    return _cancel_after
