"""The client app: requests go out through the client library, step frames come back into panels.

The network runs in its own thread (asyncio); it only puts plain events on a queue. The frame loop calls
`drain()` once per frame, which applies the events to the panels — the scene never touches the network.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass

from airquill.shared.client import AirquillClient
from airquill.shared.protocol import Done, Sampling
from airquill.shared.step import Step
from airquill.vr_client.scene import Panel, Scene


@dataclass(frozen=True)
class StepArrived:
    panel_id: str
    step: Step


@dataclass(frozen=True)
class RequestEnded:
    panel_id: str
    done: Done | None
    error: str | None = None


class ClientApp:
    def __init__(self, url: str, *, token: str = ""):
        self.url, self.token = url, token
        self.events: queue.Queue = queue.Queue()
        self.model = ""
        self._loop = asyncio.new_event_loop()
        self._client: AirquillClient | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="airquill-net")
        self.pending = 0
        self.started: dict[str, float] = {}  # panel id -> when its request was sent

    def start(self) -> ClientApp:
        self._thread.start()
        welcome = self._call(self._connect())
        self.model = welcome.capabilities.model
        return self

    async def _connect(self):
        self._client = AirquillClient(self.url, token=self.token)
        return await self._client.connect()

    def _call(self, coro, timeout: float | None = 60):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def generate(self, panel: Panel, prompt: str, length: int, sampling: Sampling = Sampling()) -> None:
        panel.prompt, panel.model = prompt, self.model
        self.pending += 1
        self.started[panel.panel_id] = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._stream(panel.panel_id, prompt, length, sampling), self._loop)

    async def _stream(self, panel_id: str, prompt: str, length: int, sampling: Sampling) -> None:
        try:
            stream = await self._client.generate(prompt, length, panel_id=panel_id, sampling=sampling)
            async for step in stream.steps():
                self.events.put(StepArrived(panel_id, step))
            self.events.put(RequestEnded(panel_id, await stream.result()))
        except Exception as err:  # shown on the panel; the app goes on
            self.events.put(RequestEnded(panel_id, None, str(err)))

    def drain(self, scene: Scene) -> int:
        """Apply every event that arrived since the last frame; return how many."""
        n = 0
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return n
            n += 1
            panel = scene.panel(event.panel_id)
            if isinstance(event, StepArrived):
                panel.text.apply(event.step)
                elapsed = time.perf_counter() - self.started.get(event.panel_id, time.perf_counter())
                panel.tokens_per_s = panel.text.settled / max(1e-6, elapsed)
            else:
                self.pending -= 1
                if event.done is not None:
                    panel.tokens_per_s = event.done.stats.tokens_per_s
                else:
                    panel.title = f"{panel.title} — error: {event.error}"
            panel.touch()

    def close(self) -> None:
        if self._client is not None:
            self._call(self._client.close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
