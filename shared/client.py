"""The client library: connect, generate / edit / cancel, and receive steps into a `TextState`.

websockets + asyncio only (no torch, no GL), so the VR client, the terminal demo and remote book runs share
it. One reader task dispatches frames to per-request streams; if the connection drops, the client
reconnects with exponential backoff and the requests that were in flight end with `ConnectionLost`.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from airquill.shared.protocol import (Controls, Done, Edit, EditSpan, Error, Generate, ProtocolError, Sampling,
                                      Welcome)
from airquill.shared.session import ClientSession, StepReceived
from airquill.shared.step import Step
from airquill.shared.text_state import TextState

log = logging.getLogger("airquill.client")


class ConnectionLost(ConnectionError):
    """The connection dropped while a request was in flight."""


class RequestFailed(RuntimeError):
    def __init__(self, error: Error):
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


@dataclass
class RequestStream:
    """One request's steps as they arrive; `state` always holds what the panel should show."""

    request_id: str
    state: TextState = field(default_factory=TextState)
    steps_received: int = 0
    _queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    _done: asyncio.Future | None = None

    def _feed(self, item: Step | Done | Exception) -> None:
        if isinstance(item, Step):
            self.state.apply(item)
            self.steps_received += 1
        self._queue.put_nowait(item)
        if not isinstance(item, Step) and not self._done.done():
            if isinstance(item, Done):
                self._done.set_result(item)
            else:
                self._done.set_exception(item)
                # a reader that stopped at `steps()` (which raised the same error) never awaits `result()`:
                # mark the error as seen so asyncio does not log it as "never retrieved" at shutdown
                self._done.exception()

    async def steps(self) -> AsyncIterator[Step]:
        """Every step frame of this request (coalesced by the server if this client reads slowly)."""
        while True:
            item = await self._queue.get()
            if isinstance(item, Step):
                yield item
            elif isinstance(item, Exception):
                raise item
            else:
                return

    async def result(self) -> Done:
        return await self._done


class AirquillClient:
    def __init__(self, url: str, *, token: str = "", client: str = "airquill", reconnect: bool = True,
                 backoff: tuple[float, float] = (0.1, 5.0)):
        self.url, self.token, self.client_name = url, token, client
        self.reconnect, self.backoff = reconnect, backoff
        self.welcome: Welcome | None = None
        self.connects = 0
        self._ids = itertools.count(1)
        self._streams: dict[str, RequestStream] = {}
        self._connection: ClientConnection | None = None
        self._session: ClientSession | None = None
        self._ready: asyncio.Event | None = None
        self._reader: asyncio.Task | None = None
        self._closing = False
        self.last_error: Error | None = None
        self.errors: list[Error] = []  # errors about frames (not tied to a request), oldest first

    async def __aenter__(self) -> AirquillClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> Welcome:
        self._ready = asyncio.Event()
        self._reader = asyncio.create_task(self._run())
        await self._ready.wait()
        if self.welcome is None:
            await self.close()
            reason = f": {self.last_error.code}: {self.last_error.message}" if self.last_error else ""
            raise ConnectionError(f"could not connect to {self.url}{reason}")
        return self.welcome

    async def close(self) -> None:
        self._closing = True
        if self._connection is not None:
            await self._connection.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def generate(self, prompt: str, length: int, *, panel_id: str = "", sampling: Sampling = Sampling(),
                       request_id: str | None = None, controls: Controls | None = None) -> RequestStream:
        rid = request_id or f"g{next(self._ids)}"
        return await self._request(Generate(request_id=rid, panel_id=panel_id, prompt=prompt, length=length,
                                            sampling=sampling, controls=controls))

    async def edit(self, text: str, spans: list[EditSpan], *, panel_id: str = "", sampling: Sampling = Sampling(),
                   request_id: str | None = None, controls: Controls | None = None) -> RequestStream:
        rid = request_id or f"e{next(self._ids)}"
        return await self._request(Edit(request_id=rid, panel_id=panel_id, text=text, spans=spans,
                                        sampling=sampling, controls=controls))

    async def cancel(self, request_id: str) -> None:
        await self._ready.wait()
        self._session.cancel(request_id)
        await self._flush()

    @property
    def errors_seen(self) -> int:
        return len(self.errors)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as is (tests and tools that probe the server)."""
        await self._connection.send(frame)

    async def _request(self, message: Generate | Edit) -> RequestStream:
        await self._ready.wait()
        stream = RequestStream(message.request_id, _done=asyncio.get_running_loop().create_future())
        self._streams[message.request_id] = stream
        if isinstance(message, Generate):
            self._session.generate(message)
        else:
            self._session.edit(message)
        await self._flush()
        return stream

    async def _flush(self) -> None:
        for frame in self._session.data_to_send():
            await self._connection.send(frame)

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._closing:
            try:
                async with connect(self.url, max_size=None, compression=None) as connection:
                    self._connection, self._session = connection, ClientSession(token=self.token,
                                                                                client=self.client_name)
                    await self._flush()
                    async for frame in connection:
                        self._dispatch(frame)
                        delay = self.backoff[0]
            except (OSError, ConnectionClosed, asyncio.TimeoutError) as err:
                log.info("connection to %s lost: %s", self.url, err)
            self._ready.clear() if self.welcome is not None else self._ready.set()
            self._fail_streams(ConnectionLost(f"connection to {self.url} lost"))
            if not self.reconnect or self._closing:
                self._ready.set()
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            events = self._session.receive(frame)
        except ProtocolError as err:
            log.warning("bad frame from server: %s", err)
            return
        for event in events:
            if isinstance(event, Welcome):
                self.welcome = event
                self.connects += 1
                self._ready.set()
            elif isinstance(event, StepReceived):
                stream = self._streams.get(event.request_id)
                if stream is not None:
                    stream._feed(event.step)
            elif isinstance(event, Done):
                stream = self._streams.pop(event.request_id, None)
                if stream is not None:
                    stream._feed(event)
            elif isinstance(event, Error):
                stream = self._streams.pop(event.request_id, None) if event.request_id else None
                if stream is not None:
                    stream._feed(RequestFailed(event))
                else:
                    log.warning("server error: %s: %s", event.code, event.message)
                    self.last_error = event
                    self.errors.append(event)

    def _fail_streams(self, error: Exception) -> None:
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream._feed(error)
