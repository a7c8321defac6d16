"""Fixtures of the server tests: one request through the real WebSocket server on loopback."""
from __future__ import annotations

import asyncio

import pytest

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
