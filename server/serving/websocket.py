"""`airquill serve`: the WebSocket transport around the engine (websockets, asyncio).

Each connection runs a sans-I/O `ServerSession`; requests go to the shared `Engine`, whose worker thread
advances every live request from every client with one forward pass per tick. Steps come back through the
connection's `StepRelay`, which coalesces them for slow readers.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions
from airquill.server.sampling.schedules import SCHEDULES
from airquill.server.serving.engine import Engine, Overloaded
from airquill.server.serving.relay import StepRelay
from airquill.server.serving.requests import CONTROLLED_FAMILIES, build_state, check_limits
from airquill.shared.protocol import Capabilities, Edit, Generate, Limits, ProtocolError, Stats
from airquill.shared.session import CloseConnection, RequestCancelled, ServerSession

log = logging.getLogger("airquill.server")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str = ""
    certfile: str | None = None
    keyfile: str | None = None
    max_message_bytes: int = 64 * 1024
    max_prompt_chars: int = 8_000
    max_length: int = 2_048
    max_steps: int = 2_048
    max_requests_per_client: int = 16
    max_live: int = 256
    max_batch: int = 64
    write_limit: int = 32 * 1024  # bytes buffered per connection before the writer waits (then steps coalesce)
    send_buffer: int | None = None  # kernel send buffer per connection (SO_SNDBUF); None: the OS default
    defaults: SamplingOptions = field(default_factory=SamplingOptions)


@dataclass
class LiveRequest:
    request_id: str
    panel_id: str
    state: MaskedDenoiser
    started: float


class AirquillServer:
    def __init__(self, adapter: ModelAdapter, config: ServeConfig = ServeConfig()):
        self.adapter, self.config = adapter, config
        self.engine = Engine(adapter, max_batch=config.max_batch, max_live=config.max_live)
        self.limits = Limits(
            max_message_bytes=config.max_message_bytes, max_prompt_chars=config.max_prompt_chars,
            max_length=min(config.max_length, adapter.max_length), max_steps=config.max_steps,
            max_requests_per_client=config.max_requests_per_client, max_live_requests=config.max_live,
        )
        schedules = {"masked": list(SCHEDULES), "uniform": ["threshold", "entropy"], "continuous": []}
        controls = ["keywords", "length_words", "style"] if adapter.family in CONTROLLED_FAMILIES else []
        self.capabilities = Capabilities(model=adapter.name, families=[adapter.family],
                                         schedules=schedules.get(adapter.family, []), limits=self.limits,
                                         controls=controls)
        self._server: Server | None = None
        self.connections = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> AirquillServer:
        self.engine.start()
        tls = None
        if self.config.certfile:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(self.config.certfile, self.config.keyfile)
        sock = None
        if self.config.send_buffer:  # accepted sockets inherit it from the listening socket
            sock = socket.create_server((self.config.host, self.config.port), reuse_port=False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer)
        self._server = await serve(self._handle, None if sock else self.config.host,
                                   None if sock else self.config.port, sock=sock, ssl=tls,
                                   max_size=4 * self.config.max_message_bytes, compression=None,
                                   write_limit=self.config.write_limit)
        log.info("event=listening host=%s port=%d model=%s tls=%s", self.config.host, self.port, self.adapter.name,
                 bool(tls))
        return self

    async def stop(self) -> None:
        """Graceful: stop accepting, cancel in-flight requests, close connections with 1001 (going away)."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        await asyncio.to_thread(self.engine.stop, cancel=True)
        log.info("event=stopped")

    async def _handle(self, connection: ServerConnection) -> None:
        session = ServerSession(token=self.config.token, capabilities=self.capabilities)
        relay = StepRelay(asyncio.get_running_loop())
        live: dict[str, LiveRequest] = {}
        send_lock = asyncio.Lock()
        peer = f"{connection.remote_address}"
        self.connections += 1

        async def flush() -> None:
            async with send_lock:
                for frame in session.data_to_send():
                    await connection.send(frame)

        writer = asyncio.create_task(self._write(session, relay, live, flush))
        try:
            async for frame in connection:
                for event in session.receive(frame):
                    if isinstance(event, CloseConnection):
                        await flush()
                        await connection.close(event.code, event.reason)
                        return
                    if isinstance(event, (Generate, Edit)):
                        self._start(event, session, relay, live)
                    elif isinstance(event, RequestCancelled):
                        request = live.get(event.request_id)
                        if request is None:
                            session.send_error("unknown_request", f"no live request {event.request_id!r}",
                                               event.request_id)
                        else:
                            self.engine.cancel(request.state)
                await flush()
        except ConnectionClosed:
            pass
        finally:
            for request in list(live.values()):  # nobody will read these: stop computing them
                self.engine.cancel(request.state)
            writer.cancel()
            self.connections -= 1
            log.info("event=disconnected peer=%s cancelled=%d", peer, len(live))

    def _start(self, message: Generate | Edit, session: ServerSession, relay: StepRelay,
               live: dict[str, LiveRequest]) -> None:
        rid = message.request_id
        try:
            if rid in live:
                raise ProtocolError("duplicate_request", f"request {rid!r} is already running", rid)
            if len(live) >= self.limits.max_requests_per_client:
                raise ProtocolError("limit", f"at most {self.limits.max_requests_per_client} concurrent "
                                             "requests per client", rid)
            check_limits(message, self.limits)
            state = build_state(self.adapter, message, self.config.defaults)
        except ProtocolError as err:
            session.send_error(err.code, str(err), err.request_id)
            return
        if isinstance(state, str):  # an edit that only replaced text
            session.send_done(rid, panel_id=message.panel_id, text=state, finish="done",
                              stats=Stats(steps=0, ms=0.0, tokens=0, tokens_per_s=0.0))
            return
        request = LiveRequest(rid, message.panel_id, state, time.perf_counter())
        relay.push(rid, state.initial_step())  # before the engine can push step 1
        try:
            self.engine.submit(state, lambda step, rid=rid: relay.push(rid, step))
        except Overloaded as err:
            relay.drop(rid)
            session.send_error("busy", str(err), rid)
            return
        live[rid] = request
        log.info("event=accepted request=%s kind=%s length=%d total=%d", rid, type(message).__name__.lower(),
                 len(state.output_ids), state.total)

    async def _write(self, session: ServerSession, relay: StepRelay, live: dict[str, LiveRequest], flush) -> None:
        while True:
            for rid, step, merged in await relay.next_batch():
                session.send_step(rid, step)
                request = live.get(rid)
                if step.is_final and request is not None:
                    del live[rid]
                    ms = (time.perf_counter() - request.started) * 1000
                    tokens = len(request.state.output_ids)
                    session.send_done(rid, panel_id=request.panel_id, text=request.state.text,
                                      finish=step.finish.value,
                                      stats=Stats(steps=step.index, ms=round(ms, 2), tokens=tokens,
                                                  tokens_per_s=round(tokens / max(ms / 1000, 1e-9), 2)))
                    log.info("event=done request=%s finish=%s steps=%d ms=%.1f tokens=%d", rid, step.finish.value,
                             step.index, ms, tokens)
            try:
                await flush()
            except ConnectionClosed:
                return
