"""The streaming server on loopback with the real shipped model; progress is judged by engine ticks and
step counts, never by wall-clock thresholds."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.asyncio.client import connect

from airquill.server.models.loader import load_adapter
from airquill.server.serving.websocket import AirquillServer, ServeConfig
from airquill.shared.client import AirquillClient, RequestFailed
from airquill.shared.protocol import EditSpan, Sampling

TOKEN = "test-token"


@pytest.fixture(scope="module")
def adapter():
    return load_adapter(None)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=240))


async def start(adapter, **config) -> AirquillServer:
    return await AirquillServer(adapter, ServeConfig(port=0, token=TOKEN, **config)).start()


def url(server: AirquillServer) -> str:
    return f"ws://127.0.0.1:{server.port}"


async def short_request(address: str, **client_options) -> str:
    """Connect, generate a few tokens, return how it finished: proof that the server still serves."""
    async with AirquillClient(address, token=TOKEN, **client_options) as client:
        stream = await client.generate("And", 8, sampling=Sampling(steps=2))
        return (await stream.result()).finish


async def until_idle(server: AirquillServer) -> None:
    """Wait until the engine holds no request (cancellation lands at the next tick)."""
    while server.engine.live:
        await asyncio.sleep(0.01)


def test_streamed_generation_ends_in_the_servers_final_text(adapter):
    async def main():
        server = await start(adapter)
        try:
            async with AirquillClient(url(server), token=TOKEN) as client:
                assert client.welcome.capabilities.model == "kjv-masked"
                stream = await client.generate("And God said", 48, sampling=Sampling(steps=12, seed=3))
                seen = [step async for step in stream.steps()]
                done = await stream.result()
        finally:
            await server.stop()
        assert done.finish == "done" and done.text
        assert stream.state.text == done.text and stream.state.finished
        assert seen[0].index == 0 and seen[-1].is_final and seen[-1].index == done.stats.steps
        assert done.stats.tokens == len(stream.state.cells)
    run(main())


def test_sixteen_concurrent_clients(adapter):
    async def one(address, i):
        async with AirquillClient(address, token=TOKEN) as client:
            stream = await client.generate("In the beginning", 24 + i, sampling=Sampling(steps=8, seed=i))
            done = await stream.result()
            return stream, done

    async def main():
        server = await start(adapter)
        try:
            results = await asyncio.gather(*(one(url(server), i) for i in range(16)))
            ticks = server.engine.ticks
        finally:
            await server.stop()
        for i, (stream, done) in enumerate(results):
            assert stream.state.text == done.text and done.stats.steps <= 8
            assert len(stream.state.cells) == done.stats.tokens <= 24 + i
            assert done.stats.steps == 8 or done.stats.tokens < 24 + i  # fewer steps only if it ended at <eos>
        assert ticks < 16 * 8  # batched: far fewer forward passes than one-by-one
    run(main())


SLOW, SLOW_STEPS = 16, 128


def test_a_client_that_stops_reading_does_not_delay_the_others(adapter):
    async def main():
        server = await start(adapter, write_limit=1024, send_buffer=4096)
        try:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: sets the window
            raw.connect(("127.0.0.1", server.port))
            async with connect(url(server), sock=raw, max_queue=1, max_size=None) as slow:
                await slow.send(json.dumps({"type": "hello", "versions": [1], "token": TOKEN}))
                assert json.loads(await slow.recv())["type"] == "welcome"
                for i in range(SLOW):
                    await slow.send(json.dumps({"type": "generate", "request_id": f"s{i}", "prompt": "And it came",
                                                "length": 256, "sampling": {"steps": SLOW_STEPS, "seed": i}}))
                async with AirquillClient(url(server), token=TOKEN) as fast:
                    await asyncio.sleep(0)
                    stream = await fast.generate("In the beginning", 32, sampling=Sampling(steps=8))
                    start_tick = server.engine.ticks
                    done = await stream.result()
                    fast_ticks = server.engine.ticks - start_tick
                assert stream.state.text == done.text
                assert fast_ticks <= 8 + 2  # its 8 steps, give or take the tick in flight
                # now read everything the slow client was sent
                from airquill.shared.session import ClientSession, StepReceived
                from airquill.shared.text_state import TextState
                session = ClientSession()
                session.receive(json.dumps({"type": "welcome", "version": 1, "server": "x",
                                            "capabilities": json.loads(json.dumps(
                                                __import__("msgspec").to_builtins(server.capabilities)))}))
                states, finals, frames = {}, {}, 0
                while len(finals) < SLOW:
                    for event in session.receive(await slow.recv()):
                        if isinstance(event, StepReceived):
                            frames += 1
                            states.setdefault(event.request_id, TextState()).apply(event.step)
                        else:
                            finals[event.request_id] = event.text
                assert all(states[rid].text == text for rid, text in finals.items())
                assert len(finals) == SLOW and all(states[rid].finished for rid in finals)
                assert frames < SLOW * (SLOW_STEPS + 1)  # stale steps were coalesced, the final ones kept
                assert server.engine  # server still alive
        finally:
            await server.stop()
    run(main())


def test_cancel_and_disconnect_free_the_slot(adapter):
    async def main():
        server = await start(adapter, max_live=1)
        try:
            async with AirquillClient(url(server), token=TOKEN) as client:
                first = await client.generate("And God said", 256, sampling=Sampling(steps=128))
                async for step in first.steps():
                    if step.index >= 2:
                        break
                seen_at = []  # the engine's tick count when the server hands it the cancel
                original = server.engine.cancel
                server.engine.cancel = lambda state: (seen_at.append(server.engine.ticks), original(state))
                await client.cancel(first.request_id)
                done = await first.result()
                server.engine.cancel = original
                assert done.finish == "cancelled"
                assert server.engine.ticks <= seen_at[0] + 2  # the tick in flight, then the next one finishes it
                second = await client.generate("And God said", 16, sampling=Sampling(steps=4))
                assert (await second.result()).finish == "done"
            # a client that vanishes mid-generation
            leaver = AirquillClient(url(server), token=TOKEN, reconnect=False)
            await leaver.connect()
            stream = await leaver.generate("And God said", 256, sampling=Sampling(steps=128))
            async for step in stream.steps():
                if step.index >= 2:
                    break
            await leaver.close()
            await until_idle(server)
            assert await short_request(url(server)) == "done"
        finally:
            await server.stop()
    run(main())


def test_limits_and_bad_requests_get_errors_and_others_carry_on(adapter):
    async def main():
        server = await start(adapter, max_requests_per_client=2, max_length=64, max_steps=32)
        try:
            async with AirquillClient(url(server), token=TOKEN) as bad, \
                    AirquillClient(url(server), token=TOKEN) as good:
                for kwargs, code in [({"length": 65}, "limit"), ({"length": 8, "sampling": Sampling(steps=33)}, "limit")]:
                    stream = await bad.generate("And", **kwargs)
                    with pytest.raises(RequestFailed, match=code):
                        await stream.result()
                edit = await bad.edit("In the beginning", [EditSpan(start=3, end=99)])
                with pytest.raises(RequestFailed, match="outside the text"):
                    await edit.result()
                for raw in ["{oops", '{"type":"warp"}', '{"type":"hello","versions":[1]}',
                            '{"type":"cancel","request_id":"' + "x" * 70_000 + '"}']:
                    await bad.send_raw(raw)
                streams = [await bad.generate("And", 32, sampling=Sampling(steps=16)) for _ in range(3)]
                with pytest.raises(RequestFailed, match="concurrent"):
                    await streams[2].result()
                ok = await good.generate("In the beginning", 16, sampling=Sampling(steps=4))
                assert (await ok.result()).finish == "done"
                for stream in streams[:2]:
                    assert (await stream.result()).finish == "done"
                while bad.errors_seen < 4:  # the four bad frames above, each answered with its own error
                    await asyncio.sleep(0.01)
                codes = [e.code for e in bad.errors[:4]]
                assert codes == ["malformed", "invalid_message", "out_of_order", "too_large"]
            with pytest.raises(ConnectionError, match="unauthorized"):
                await AirquillClient(url(server), token="wrong", reconnect=False).connect()
            assert await short_request(url(server)) == "done"
        finally:
            await server.stop()
    run(main())


def test_edit_regenerates_only_the_span(adapter):
    text = "In the beginning God created the heaven and the earth."
    async def main():
        server = await start(adapter)
        try:
            async with AirquillClient(url(server), token=TOKEN) as client:
                stream = await client.edit(text, [EditSpan(start=17, end=20, new_length=2)],
                                           sampling=Sampling(steps=2))
                done = await stream.result()
                swap = await client.edit(text, [EditSpan(start=17, end=20, replacement="Adam")])
                swapped = await swap.result()
        finally:
            await server.stop()
        assert done.text.startswith(text[:17]) and done.text.endswith(text[20:])
        assert stream.state.text == done.text
        assert swapped.text == text[:17] + "Adam" + text[20:]
    run(main())


@settings(max_examples=3000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=40),
                                 st.dictionaries(st.sampled_from(["type", "request_id", "prompt", "length", "spans",
                                                                  "text", "sampling", "versions"]),
                                                 st.one_of(st.text(max_size=8), st.integers(-5, 5), st.none(),
                                                           st.sampled_from(["generate", "edit", "cancel", "hello"])),
                                                 max_size=6).map(json.dumps)),
                       min_size=1, max_size=1))
def test_fuzz_the_running_server(fuzz_server, frames):
    """3,000 generated messages against the running server over one connection; then it still serves."""
    loop, connection = fuzz_server
    for frame in frames:
        loop.run_until_complete(connection.send(frame))


@pytest.fixture(scope="module")
def fuzz_server(adapter):
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(start(adapter, max_steps=4, max_length=8))
    connection = loop.run_until_complete(connect(url(server)))
    loop.run_until_complete(connection.send(json.dumps({"type": "hello", "versions": [1], "token": TOKEN})))
    yield loop, connection

    assert loop.run_until_complete(short_request(url(server))) == "done"
    assert connection.state.name == "OPEN"  # bad messages never crashed the connection either
    loop.run_until_complete(connection.close())
    loop.run_until_complete(server.stop())
    loop.close()


CLIENT_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from airquill.shared.client import AirquillClient
    from airquill.shared.protocol import Sampling
    async def main():
        async with AirquillClient(sys.argv[1], token=sys.argv[2]) as client:
            stream = await client.generate("And God said", 256, sampling=Sampling(steps=256))
            async for step in stream.steps():
                print("step", step.index, flush=True)
    asyncio.run(main())
""")


def test_client_process_killed_mid_stream(adapter):
    async def main():
        server = await start(adapter)
        try:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT_SCRIPT, url(server), TOKEN,
                                                        stdout=asyncio.subprocess.PIPE)
            while not (await proc.stdout.readline()).startswith(b"step 2"):
                pass
            assert server.engine.live == 1
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await until_idle(server)
            assert await short_request(url(server)) == "done"
        finally:
            await server.stop()
    run(main())


def test_client_reconnects_after_a_server_restart(adapter):
    async def main():
        first = await start(adapter)
        port = first.port
        client = AirquillClient(f"ws://127.0.0.1:{port}", token=TOKEN, backoff=(0.05, 0.2))
        await client.connect()
        await first.stop()
        second = await AirquillServer(adapter, ServeConfig(port=port, token=TOKEN)).start()
        try:
            while client.connects < 2:
                await asyncio.sleep(0.02)
            stream = await client.generate("And", 8, sampling=Sampling(steps=2))
            assert (await stream.result()).finish == "done"
        finally:
            await client.close()
            await second.stop()
    run(main())


def test_serve_command_stops_cleanly_on_sigterm(tmp_path):
    port_file = tmp_path / "port"
    env = {**os.environ, "AIRQUILL_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "airquill", "serve", "--port", "0", "--port-file", str(port_file)],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        async def main():
            while not port_file.exists() or not port_file.read_text():
                await asyncio.sleep(0.05)
            return await short_request(f"ws://127.0.0.1:{port_file.read_text()}", reconnect=False)
        assert run(main()) == "done"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "event=listening" in err and "event=done" in err and "event=stopped" in err


def test_tls(adapter, tmp_path):
    """wss:// with a self-signed certificate made by openssl for this test."""
    import ssl
    import shutil

    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a test certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)

    async def main():
        server = await start(adapter, certfile=str(cert), keyfile=str(key))
        try:
            context = ssl.create_default_context(cafile=str(cert))
            async with connect(f"wss://127.0.0.1:{server.port}", ssl=context) as ws:
                await ws.send(json.dumps({"type": "hello", "versions": [1], "token": TOKEN}))
                return json.loads(await ws.recv())["type"]
        finally:
            await server.stop()
    assert run(main()) == "welcome"


def test_generate_command_against_a_running_server(tmp_path):
    port_file = tmp_path / "port"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    serve = subprocess.Popen([sys.executable, "-m", "airquill", "serve", "--port", "0", "--port-file", str(port_file),
                              "--token-file", str(token_file)], env=env, stderr=subprocess.DEVNULL)
    try:
        while not port_file.exists() or not port_file.read_text():
            assert serve.poll() is None, "the server died"
            import time
            time.sleep(0.05)
        result = subprocess.run([sys.executable, "-m", "airquill", "generate", "And God said", "--length", "24",
                                 "--steps", "6", "--no-live", "--server", f"ws://127.0.0.1:{port_file.read_text()}",
                                 "--token-file", str(token_file)], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("And God said") and len(result.stdout.strip()) > len("And God said")
        wrong = subprocess.run([sys.executable, "-m", "airquill", "generate", "And", "--no-live", "--server",
                                f"ws://127.0.0.1:{port_file.read_text()}"], capture_output=True, text=True,
                               env={**env, "AIRQUILL_TOKEN": "nope"}, timeout=120)
        assert wrong.returncode == 2 and "unauthorized" in wrong.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
