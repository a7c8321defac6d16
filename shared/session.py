"""Sans-I/O protocol sessions: frames in -> events out, calls -> frames out. No sockets, no asyncio.

A frame is `str` (a JSON text frame) or `bytes` (a binary step frame). The transport feeds every received
frame to `receive()` and sends whatever `data_to_send()` returns; tests do the same with literal frames.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

from airquill.shared.protocol import (
    SUPPORTED_VERSIONS,
    Cancel,
    Capabilities,
    Done,
    Edit,
    Error,
    Generate,
    Hello,
    ProtocolError,
    Stats,
    Welcome,
    decode_client,
    decode_server,
    decode_step,
    encode,
    encode_step,
)
from airquill.shared.step import Step

Frame = str | bytes

# WebSocket close codes the sessions ask for
CLOSE_POLICY = 1008  # wrong token, unsupported version
CLOSE_GOING_AWAY = 1001


class Phase(Enum):
    AWAITING_HELLO = "awaiting_hello"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True)
class CloseConnection:
    code: int
    reason: str


@dataclass(frozen=True)
class Ready:
    client: str
    version: int


@dataclass(frozen=True)
class RequestCancelled:
    request_id: str


class ServerSession:
    """The server's side of one connection."""

    def __init__(self, *, token: str, capabilities: Capabilities, server_name: str = "airquill"):
        self._token = token.encode()
        self.capabilities = capabilities
        self.server_name = server_name
        self.phase = Phase.AWAITING_HELLO
        self.client = ""
        self.version = 0  # agreed at hello
        self._out: list[Frame] = []

    def data_to_send(self) -> list[Frame]:
        out, self._out = self._out, []
        return out

    def receive(self, frame: Frame) -> list[Generate | Edit | RequestCancelled | Ready | CloseConnection]:
        """Events for one received frame. Bad frames queue an error reply and yield no request event."""
        if self.phase is Phase.CLOSED:
            return []
        limit = self.capabilities.limits.max_message_bytes
        size = len(frame.encode() if isinstance(frame, str) else frame)
        if size > limit:
            return self._reject("too_large", f"message of {size} bytes exceeds the limit of {limit}")
        if isinstance(frame, bytes):
            return self._reject("unexpected_binary", "clients send JSON text frames only")
        try:
            message = decode_client(frame)
        except ProtocolError as err:
            return self._reject(err.code, str(err))
        if self.phase is Phase.AWAITING_HELLO:
            return self._hello(message)
        if isinstance(message, Hello):
            return self._reject("out_of_order", "hello was already received")
        if isinstance(message, Cancel):
            return [RequestCancelled(message.request_id)]
        if getattr(message, "controls", None) is not None and self.version < 2:
            return self._reject("unsupported", "controls need protocol version 2; this connection speaks "
                                               f"version {self.version}", message.request_id)
        return [message]

    def _hello(self, message) -> list:
        if not isinstance(message, Hello):
            return self._reject("out_of_order", f"expected hello first, got {type(message).__name__.lower()}")
        if not hmac.compare_digest(message.token.encode(), self._token):
            self._queue(Error(code="unauthorized", message="wrong or missing token"))
            return [self._close(CLOSE_POLICY, "unauthorized")]
        common = sorted(set(message.versions) & set(SUPPORTED_VERSIONS))
        if not common:
            self._queue(Error(code="version", message=f"no common protocol version: server speaks "
                                                      f"{list(SUPPORTED_VERSIONS)}, client {message.versions}"))
            return [self._close(CLOSE_POLICY, "unsupported version")]
        self.phase, self.client, self.version = Phase.READY, message.client, common[-1]
        self._queue(Welcome(version=common[-1], server=self.server_name, capabilities=self.capabilities))
        return [Ready(client=message.client, version=common[-1])]

    def _reject(self, code: str, message: str, request_id: str | None = None) -> list:
        self._queue(Error(code=code, message=message, request_id=request_id))
        return []

    def _close(self, code: int, reason: str) -> CloseConnection:
        self.phase = Phase.CLOSED
        return CloseConnection(code, reason)

    def _queue(self, message) -> None:
        self._out.append(encode(message))

    # --- calls -> frames -------------------------------------------------------------------------------

    def send_step(self, request_id: str, step: Step) -> None:
        self._out.append(encode_step(request_id, step))

    def send_done(self, request_id: str, *, panel_id: str, text: str, finish: str, stats: Stats) -> None:
        self._queue(Done(request_id=request_id, panel_id=panel_id, text=text, finish=finish, stats=stats))

    def send_error(self, code: str, message: str, request_id: str | None = None) -> None:
        self._queue(Error(code=code, message=message, request_id=request_id))

    def close(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> CloseConnection:
        return self._close(code, reason)


@dataclass(frozen=True)
class StepReceived:
    request_id: str
    step: Step


class ClientSession:
    """The client's side of one connection."""

    def __init__(self, *, token: str = "", client: str = "airquill"):
        self.phase = Phase.AWAITING_HELLO
        self.welcome: Welcome | None = None
        self._out: list[Frame] = [encode(Hello(versions=list(SUPPORTED_VERSIONS), token=token, client=client))]

    def data_to_send(self) -> list[Frame]:
        out, self._out = self._out, []
        return out

    def receive(self, frame: Frame) -> list[Welcome | Done | Error | StepReceived]:
        if isinstance(frame, bytes):
            if self.phase is not Phase.READY:
                raise ProtocolError("out_of_order", "step frame before welcome")
            request_id, step = decode_step(frame)
            return [StepReceived(request_id, step)]
        message = decode_server(frame)
        if isinstance(message, Welcome):
            if self.phase is not Phase.AWAITING_HELLO:
                raise ProtocolError("out_of_order", "a second welcome")
            if message.version not in SUPPORTED_VERSIONS:
                raise ProtocolError("version", f"server chose version {message.version}")
            self.phase, self.welcome = Phase.READY, message
        elif self.phase is not Phase.READY and not isinstance(message, Error):
            raise ProtocolError("out_of_order", f"{type(message).__name__.lower()} before welcome")
        return [message]

    def generate(self, message: Generate) -> None:
        self._send(message)

    def edit(self, message: Edit) -> None:
        self._send(message)

    def cancel(self, request_id: str) -> None:
        self._send(Cancel(request_id=request_id))

    def _send(self, message) -> None:
        if self.phase is not Phase.READY:
            raise ProtocolError("out_of_order", "not connected: wait for welcome")
        self._out.append(encode(message))
