"""The airquill wire protocol, version 2: typed messages and their encoding (no I/O here).

Version 2 adds `controls` (keywords, a length in words, a style) to generate and edit; a server still speaks
version 1 to clients that only offer it, and refuses controls there.

Control messages are JSON text frames, one object each, told apart by their "type" field. Step frames are
binary MessagePack arrays (compact: small integers take one byte). Every message is validated against its
type on decoding (msgspec), so a malformed message is an error with a reason, never a crash.
See docs/protocol.md for the byte-level description.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta, Struct

from airquill.shared.step import FinishReason, Step, TokenChange

PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
STEP_FRAME_VERSION = 1  # the binary step frame is the same in versions 1 and 2

Id = Annotated[str, Meta(min_length=1, max_length=64)]
Count = Annotated[int, Meta(ge=1)]
Unit = Annotated[float, Meta(ge=0.0, le=1.0)]


class Limits(Struct, frozen=True, kw_only=True, omit_defaults=True):
    max_message_bytes: int
    max_prompt_chars: int
    max_length: int
    max_steps: int
    max_requests_per_client: int
    max_live_requests: int


class Capabilities(Struct, frozen=True, kw_only=True, omit_defaults=True):
    model: str
    families: list[str]
    schedules: list[str]
    limits: Limits
    controls: list[str] = []  # version 2: which controls this model takes: keywords, length_words, style


# --- client -> server ---------------------------------------------------------------------------------

class Hello(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="hello", tag_field="type"):
    versions: list[int]
    token: str = ""
    client: str = ""


class Sampling(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How to denoise; absent fields take the server's defaults."""

    steps: Count | None = None
    schedule: Literal["linear", "cosine", "random", "threshold", "entropy"] | None = None
    threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] | None = None
    entropy_bound: Annotated[float, Meta(gt=0.0)] | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    top_p: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    repetition_penalty: Annotated[float, Meta(ge=1.0, le=10.0)] | None = None
    seed: Annotated[int, Meta(ge=0, le=2**62)] = 0
    block_size: Count | None = None


Keyword = Annotated[str, Meta(min_length=1, max_length=64)]


class Controls(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Version 2: what the text must do; absent fields ask nothing."""

    keywords: Annotated[list[Keyword], Meta(max_length=8)] = []
    length_words: Count | None = None  # generate only: the text's length in words (±5%); `length` is then ignored
    style: Literal["question", "statement"] | None = None
    style_strength: Annotated[float, Meta(ge=0.0, le=20.0)] | None = None


class Generate(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="generate", tag_field="type"):
    request_id: Id
    panel_id: str = ""
    prompt: Annotated[str, Meta(min_length=1)]
    length: Count
    sampling: Sampling = Sampling()
    controls: Controls | None = None


class EditSpan(Struct, frozen=True, kw_only=True, omit_defaults=True):
    start: Annotated[int, Meta(ge=0)]
    end: Annotated[int, Meta(ge=0)]
    new_length: Count | None = None
    replacement: str | None = None  # put this text in the span instead of generating it


class Edit(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="edit", tag_field="type"):
    request_id: Id
    panel_id: str = ""
    text: str
    spans: Annotated[list[EditSpan], Meta(min_length=1)]
    sampling: Sampling = Sampling()
    controls: Controls | None = None


class Cancel(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="cancel", tag_field="type"):
    request_id: Id


# --- server -> client ---------------------------------------------------------------------------------

class Welcome(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="welcome", tag_field="type"):
    version: int
    server: str
    capabilities: Capabilities


class Stats(Struct, frozen=True, kw_only=True, omit_defaults=True):
    steps: int
    ms: float
    tokens: int
    tokens_per_s: float


class Done(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="done", tag_field="type"):
    request_id: str
    panel_id: str = ""
    text: str
    finish: Literal["done", "cancelled"]
    stats: Stats


class Error(Struct, frozen=True, kw_only=True, omit_defaults=True, tag="error", tag_field="type"):
    code: str
    message: str
    request_id: str | None = None


ClientMessage = Union[Hello, Generate, Edit, Cancel]
ServerMessage = Union[Welcome, Done, Error]

# --- step frames (binary) -----------------------------------------------------------------------------


class ChangeFrame(Struct, frozen=True, array_like=True):
    position: Annotated[int, Meta(ge=0)]
    token_id: int
    text: str
    confidence: Annotated[int, Meta(ge=0, le=255)]  # confidence * 255, rounded
    noise: Annotated[int, Meta(ge=0, le=255)]  # noise level * 255, rounded


class StepFrame(Struct, frozen=True, array_like=True):
    version: int
    request_id: str
    index: Annotated[int, Meta(ge=0)]
    total: Annotated[int, Meta(ge=0)]
    length: Annotated[int, Meta(ge=0)]
    finish: Literal["", "done", "cancelled"]
    changes: list[ChangeFrame]


class ProtocolError(ValueError):
    """A message that cannot be accepted; `code` is what the error message carries."""

    def __init__(self, code: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.code, self.request_id = code, request_id


_json_client = msgspec.json.Decoder(ClientMessage)
_json_server = msgspec.json.Decoder(ServerMessage)
_json = msgspec.json.Encoder()
_pack = msgspec.msgpack.Encoder()
_unpack = msgspec.msgpack.Decoder(StepFrame)


def _q(x: float) -> int:
    return max(0, min(255, round(x * 255)))


def encode(message: ClientMessage | ServerMessage) -> str:
    return _json.encode(message).decode()


def _decode(decoder: msgspec.json.Decoder, data: str | bytes):
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as err:
        raise ProtocolError("invalid_message", f"invalid message: {err}") from None
    except msgspec.DecodeError as err:
        raise ProtocolError("malformed", f"malformed JSON: {err}") from None


def decode_client(data: str | bytes):
    return _decode(_json_client, data)


def decode_server(data: str | bytes):
    return _decode(_json_server, data)


def encode_step(request_id: str, step: Step) -> bytes:
    frame = StepFrame(
        version=STEP_FRAME_VERSION,
        request_id=request_id,
        index=step.index,
        total=step.total,
        length=step.length,
        finish=step.finish.value if step.finish else "",
        changes=[ChangeFrame(c.position, c.token_id, c.text, _q(c.confidence), _q(c.noise)) for c in step.changes],
    )
    return _pack.encode(frame)


def decode_step(data: bytes) -> tuple[str, Step]:
    try:
        frame = _unpack.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise ProtocolError("malformed_step", f"malformed step frame: {err}") from None
    if frame.version != STEP_FRAME_VERSION:
        raise ProtocolError("version", f"step frame version {frame.version}, expected {STEP_FRAME_VERSION}")
    changes = tuple(TokenChange(c.position, c.token_id, c.text, c.confidence / 255, c.noise / 255)
                    for c in frame.changes)
    if any(c.position >= frame.length for c in changes):
        raise ProtocolError("malformed_step", "a change lies beyond the frame's length")
    finish = FinishReason(frame.finish) if frame.finish else None
    return frame.request_id, Step(index=frame.index, total=frame.total, length=frame.length, changes=changes,
                                  finish=finish)
