"""The client app: requests go out through the client library, step frames come back into panels.

The network runs in its own thread (asyncio); it only puts plain events on a queue. The frame loop calls
`drain()` once per frame, which applies the events to the panels — the scene never touches the network.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airquill.shared.client import AirquillClient, RequestStream
from airquill.shared.protocol import Controls, Done, EditSpan, Sampling
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
    action: str = "generate"  # what the request was for (the editor records a revision of this kind)


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
        self.requests: dict[str, str] = {}  # panel id -> id of its request in flight
        self.on_end: Callable[[Panel, RequestEnded], None] = lambda panel, event: None
        self._ids = iter(range(1, 1 << 62))

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

    def generate(self, panel: Panel, prompt: str, length: int, sampling: Sampling = Sampling(), *,
                 action: str = "generate", controls: Controls | None = None) -> None:
        panel.prompt, panel.model, panel.controls = prompt, self.model, controls
        self._send(panel, action, lambda client, rid: client.generate(prompt, length, panel_id=panel.panel_id,
                                                                       sampling=sampling, request_id=rid,
                                                                       controls=controls))

    def edit(self, panel: Panel, spans: list[EditSpan], sampling: Sampling = Sampling(), *,
             action: str = "rewrite") -> None:
        """Regenerate spans (character offsets) of the panel's text; everything else stays byte-identical."""
        text = panel.text.text
        self._send(panel, action, lambda client, rid: client.edit(text, spans, panel_id=panel.panel_id,
                                                                   sampling=sampling, request_id=rid))

    def cancel(self, panel: Panel) -> bool:
        """Ask the server to stop the panel's request; its end arrives as a `RequestEnded` as usual."""
        rid = self.requests.get(panel.panel_id)
        if rid is None:
            return False
        asyncio.run_coroutine_threadsafe(self._client.cancel(rid), self._loop)
        return True

    def busy(self, panel: Panel) -> bool:
        return panel.panel_id in self.requests

    def _send(self, panel: Panel, action: str, request: Callable[[AirquillClient, str], object]) -> None:
        if self.busy(panel):
            raise RuntimeError(f"panel {panel.panel_id} is still busy with a request")
        rid = f"{panel.panel_id}-{next(self._ids)}"
        self.pending += 1
        self.requests[panel.panel_id] = rid
        self.started[panel.panel_id] = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._stream(panel.panel_id, action, request, rid), self._loop)

    async def _stream(self, panel_id: str, action: str, request, rid: str) -> None:
        try:
            stream: RequestStream = await request(self._client, rid)
            async for step in stream.steps():
                self.events.put(StepArrived(panel_id, step))
            self.events.put(RequestEnded(panel_id, await stream.result(), action=action))
        except Exception as err:  # shown on the panel; the app goes on
            self.events.put(RequestEnded(panel_id, None, str(err), action=action))

    def drain(self, scene: Scene, *, limit: int | None = None) -> int:
        """Apply the events that arrived since the last frame (at most `limit`); return how many."""
        n = 0
        while limit is None or n < limit:
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
                self.requests.pop(event.panel_id, None)
                if event.done is not None:
                    panel.tokens_per_s = event.done.stats.tokens_per_s
                else:
                    panel.title = f"{panel.title} — error: {event.error}"
                self.on_end(panel, event)
            panel.touch()
        return n

    def close(self) -> None:
        if self._client is not None:
            self._call(self._client.close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
