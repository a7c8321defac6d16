"""Steps from a remote `airquill serve`, as a plain iterator for the terminal view.

The client library is asyncio; the terminal view consumes a blocking iterator, so a background thread runs
the event loop and hands steps over through a queue.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator

from airquill.shared.client import AirquillClient
from airquill.shared.protocol import Controls, Sampling
from airquill.shared.step import Step

_END = object()


def remote_steps(url: str, *, token: str, prompt: str, length: int, sampling: Sampling,
                 controls: Controls | None = None) -> tuple[Iterator[Step], dict]:
    handoff: queue.Queue = queue.Queue()
    info: dict = {}
    connected = threading.Event()

    async def run() -> None:
        try:
            async with AirquillClient(url, token=token, reconnect=False) as client:
                info["model"] = client.welcome.capabilities.model
                connected.set()
                stream = await client.generate(prompt, length, sampling=sampling, controls=controls)
                async for step in stream.steps():
                    handoff.put(step)
                await stream.result()
        except Exception as err:  # handed to the consuming thread
            handoff.put(err)
        finally:
            connected.set()
            handoff.put(_END)

    threading.Thread(target=lambda: asyncio.run(run()), daemon=True, name="airquill-remote").start()
    connected.wait()

    def steps() -> Iterator[Step]:
        while (item := handoff.get()) is not _END:
            if isinstance(item, Exception):
                raise ConnectionError(str(item)) if not isinstance(item, ConnectionError) else item
            yield item

    if "model" not in info:  # connecting failed: surface the error now
        for _ in steps():
            pass
    return steps(), {"model": info.get("model", "remote")}
