"""The protocol and its sans-I/O sessions, fed literal frames: no socket anywhere."""
from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from airquill.shared.protocol import (Capabilities, Generate, Limits, ProtocolError, Stats, decode_client,
                                      decode_step, encode_step)
from airquill.shared.session import ClientSession, CloseConnection, Phase, Ready, RequestCancelled, ServerSession
from airquill.shared.step import FinishReason, Step, TokenChange
from airquill.shared.text_state import TextState

LIMITS = Limits(max_message_bytes=2048, max_prompt_chars=500, max_length=256, max_steps=256,
                max_requests_per_client=4, max_live_requests=16)
CAPS = Capabilities(model="tiny", families=["masked"], schedules=["linear"], limits=LIMITS)


def server() -> ServerSession:
    return ServerSession(token="s3cret", capabilities=CAPS)


def ready_server() -> ServerSession:
    session = server()
    events = session.receive('{"type":"hello","versions":[1],"token":"s3cret","client":"test"}')
    assert events == [Ready(client="test", version=1)]
    (welcome,) = session.data_to_send()
    assert json.loads(welcome)["type"] == "welcome"
    return session


def error_of(session: ServerSession) -> dict:
    (frame,) = session.data_to_send()
    message = json.loads(frame)
    assert message["type"] == "error"
    return message


def test_handshake_literal_frames():
    session = ready_server()
    assert session.phase is Phase.READY
    events = session.receive('{"type":"generate","request_id":"r1","panel_id":"p","prompt":"In the","length":8}')
    assert isinstance(events[0], Generate) and events[0].length == 8
    assert session.receive('{"type":"cancel","request_id":"r1"}') == [RequestCancelled("r1")]


def test_wrong_token_closes_with_policy_violation():
    session = server()
    events = session.receive('{"type":"hello","versions":[1],"token":"nope"}')
    assert events == [CloseConnection(1008, "unauthorized")]
    assert error_of(session)["code"] == "unauthorized"
    assert session.receive('{"type":"generate","request_id":"r","prompt":"x","length":1}') == []


def test_version_negotiation():
    session = server()
    assert session.receive('{"type":"hello","versions":[7,9],"token":"s3cret"}')[0].code == 1008
    assert error_of(session)["code"] == "version"
    session = server()
    assert session.receive('{"type":"hello","versions":[1,2],"token":"s3cret"}') == [Ready("", 2)]  # the newest
    session = server()
    assert session.receive('{"type":"hello","versions":[1,3],"token":"s3cret"}') == [Ready("", 1)]


def test_controls_need_version_2():
    frame = '{"type":"generate","request_id":"r1","prompt":"In the","length":8,"controls":{"keywords":["Moses"]}}'
    old = ready_server()  # version 1
    assert old.receive(frame) == []
    assert error_of(old)["code"] == "unsupported"
    new = server()
    new.receive('{"type":"hello","versions":[2],"token":"s3cret"}')
    new.data_to_send()
    (event,) = new.receive(frame)
    assert event.controls.keywords == ["Moses"]
    assert new.receive(frame.replace('["Moses"]', '["' + "x" * 65 + '"]')) == []  # a keyword of 65 characters
    assert error_of(new)["code"] == "invalid_message"


@pytest.mark.parametrize("frame,code", [
    ("{not json", "malformed"),
    ('{"type":"teleport"}', "invalid_message"),
    ('{"type":"generate","request_id":"r","prompt":"","length":4}', "invalid_message"),
    ('{"type":"generate","request_id":"r","prompt":"x","length":0}', "invalid_message"),
    ('{"type":"generate","request_id":"r","prompt":"x","length":4,"sampling":{"temperature":-1}}', "invalid_message"),
    ('{"type":"edit","request_id":"r","text":"abc","spans":[]}', "invalid_message"),
    ('{"type":"hello","versions":[1],"token":"s3cret"}', "out_of_order"),
    (b"\x93\x01\x02", "unexpected_binary"),
    ('{"type":"cancel","request_id":"' + "x" * 3000 + '"}', "too_large"),
])
def test_bad_frames_get_clear_errors_and_the_session_goes_on(frame, code):
    session = ready_server()
    assert session.receive(frame) == []
    error = error_of(session)
    assert error["code"] == code and error["message"]
    assert session.receive('{"type":"cancel","request_id":"r"}') == [RequestCancelled("r")]


def test_requests_before_hello_are_out_of_order():
    session = server()
    assert session.receive('{"type":"generate","request_id":"r","prompt":"x","length":1}') == []
    assert error_of(session)["code"] == "out_of_order"
    assert session.phase is Phase.AWAITING_HELLO


def test_client_session_round_trip():
    client = ClientSession(token="s3cret", client="test")
    srv = server()
    (hello,) = client.data_to_send()
    srv.receive(hello)
    for frame in srv.data_to_send():
        client.receive(frame)
    assert client.phase is Phase.READY and client.welcome.capabilities.model == "tiny"
    client.generate(Generate(request_id="g1", prompt="In", length=3))
    (request,) = client.data_to_send()
    (event,) = srv.receive(request)
    steps = [Step(0, 2, 3, tuple(TokenChange(i, 1, "", 0.0, 1.0) for i in range(3))),
             Step(1, 2, 3, (TokenChange(0, 40, " the", 0.93, 0.0),)),
             Step(2, 2, 3, (TokenChange(1, 41, " earth", 0.5, 0.0), TokenChange(2, 42, "ё", 1.0, 0.0)),
                  FinishReason.DONE)]
    for step in steps:
        srv.send_step("g1", step)
    srv.send_done("g1", panel_id="", text=" the earthё", finish="done", stats=Stats(steps=2, ms=1.0, tokens=3,
                                                                                      tokens_per_s=3000.0))
    state = TextState()
    for frame in srv.data_to_send():
        for received in client.receive(frame):
            if hasattr(received, "step"):
                state.apply(received.step)
    assert state.text == " the earthё" and state.finished


def test_step_frame_is_compact():
    step = Step(5, 64, 128, tuple(TokenChange(100 + i, 3000 + i, " word", 0.9, 0.0) for i in range(4)))
    frame = encode_step("g12", step)
    assert len(frame) < 15 + 4 * 14  # header + about 14 bytes per change
    rid, back = decode_step(frame)
    assert rid == "g12" and [c.position for c in back.changes] == [100, 101, 102, 103]
    assert abs(back.changes[0].confidence - 0.9) < 1 / 255


def test_step_frame_rejects_changes_beyond_length():
    frame = encode_step("r", Step(1, 1, 2, (TokenChange(5, 1, "x", 1.0, 0.0),)))
    with pytest.raises(ProtocolError, match="beyond"):
        decode_step(frame)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "generate", "edit", "cancel", "welcome", "x"])},
    optional={"request_id": st.text(max_size=70), "prompt": st.text(max_size=30), "length": json_values,
              "versions": json_values, "token": json_values, "text": st.text(max_size=30), "spans": json_values,
              "sampling": json_values},
)


@settings(max_examples=4000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(json_values.map(json.dumps), message_like.map(json.dumps), st.text(max_size=60),
                 st.binary(max_size=60)))
def test_fuzz_the_server_session_never_crashes(frame):
    session = ready_server()
    events = session.receive(frame)
    out = session.data_to_send()
    assert events or len(out) == 1  # either a request event or exactly one error reply
    for reply in out:
        assert json.loads(reply)["type"] == "error"


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_fuzz_step_decoder(data):
    try:
        decode_step(data)
    except ProtocolError:
        pass


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(json_values)
def test_fuzz_client_decoder_raises_only_protocol_errors(value):
    try:
        decode_client(msgspec.json.encode(value))
    except ProtocolError:
        pass
