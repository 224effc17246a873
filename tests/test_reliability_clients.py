"""Hostile and broken clients against a running engine, over real sockets on 127.0.0.1.

Each test runs an in-process engine (tests/engine_helpers.py), does something a careless or
malicious client would do, and checks that the engine answers it (or closes it) within a
bound, logs no error for it, and keeps streaming to a well-behaved client beside it without
a gap. The well-behaved client gets a generous ``client_queue`` so that CPU contention on a
shared machine is not misread as a gap: a gap here means the engine stalled, not that the
test runner was slow.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio_websocket

from engine_helpers import (
    make_config,
    read_ws_url,
    receive_json,
    running_engine,
    stop_cleanly,
    ws_url,
)
from phase4_trio.config import Config
from phase4_trio.engine import Engine
from phase4_trio.transport.server import WebServer
from phase4_trio.wire.websocket_frame import Opcode, build

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
GENEROUS_QUEUE = 1024  # ~6 s of frames: only a real stall of the engine can overflow it


def masked_frame(opcode: Opcode, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One client→server frame (clients must mask)."""
    return build(opcode, payload, fin=fin, mask=b"\x37\xfa\x21\x3d")


def fd_count() -> int:
    """Open fds of this process, after a collection: a socket an earlier test left
    unreferenced is closed by the collector whenever it runs, which must not move the count."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


async def eventually(predicate: Callable[[], bool], limit: float = 10) -> None:
    """Wait, within a bound, for a condition the engine has no event for (its counters)."""
    with trio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 - polling counters, bounded by fail_after
            await trio.sleep(0.02)


def web_of(engine: Engine) -> WebServer:
    assert engine.web is not None
    return engine.web


def port_of(engine: Engine) -> int:
    return web_of(engine).port


async def connect(engine: Engine) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port_of(engine))


async def read_until_closed(stream: trio.SocketStream, limit: float) -> tuple[bytes, str]:
    """Everything the engine sends until it closes (``eof``) or resets (``reset``)."""
    data = b""
    with trio.fail_after(limit):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return data, "reset"
            if not chunk:
                return data, "eof"
            data += chunk


async def upgraded(engine: Engine) -> trio.SocketStream:
    """A raw socket past the server's 101 (what a protocol-abiding client waits for)."""
    stream = await connect(engine)
    await stream.send_all(UPGRADE)
    head = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(1)
            assert chunk, "closed during the handshake"
            head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream


async def read_forever(ws: trio_websocket.WebSocketConnection) -> None:
    while True:
        await ws.get_message()


def vanish(stream: trio.SocketStream) -> None:
    """SO_LINGER 0, then close: the kernel sends a TCP RST and discards anything unsent."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


class Watcher:
    """A well-behaved client that checks every frame it gets is the next one."""

    def __init__(self) -> None:
        self.frames = 0
        self.gaps: list[tuple[int, int]] = []
        self.dropped = 0
        self.last = -1

    async def run(self, url: str, *, task_status: trio.TaskStatus[None]) -> None:
        async with trio_websocket.open_websocket_url(url) as ws:
            task_status.started()
            while True:
                message = await receive_json(ws)
                count = message["frameCount"]
                if self.last >= 0 and count != self.last + 1:
                    self.gaps.append((self.last, count))
                self.last = count
                self.frames += 1
                self.dropped = max(self.dropped, message["dropped"])

    async def wait_for_frames(self, more: int, limit: float = 20) -> None:
        target = self.frames + more
        await eventually(lambda: self.frames >= target, limit)

    def assert_no_gap(self) -> None:
        assert self.frames > 0
        assert self.gaps == [], f"frameCount gaps: {self.gaps[:5]}"
        assert self.dropped == 0


@asynccontextmanager
async def engine_with_watcher(**transport: object) -> AsyncIterator[tuple[Engine, Watcher]]:
    config = make_config(transport={"client_queue": GENEROUS_QUEUE, **transport})
    watcher = Watcher()
    async with running_engine(config) as engine, trio.open_nursery() as nursery:
        await nursery.start(watcher.run, ws_url(engine))
        await watcher.wait_for_frames(20)
        yield engine, watcher
        await watcher.wait_for_frames(50)  # still streaming after the abuse
        watcher.assert_no_gap()
        nursery.cancel_scope.cancel()


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ERROR-and-above records the engine logged during the test."""
    caplog.set_level(logging.WARNING)
    return caplog.records


def assert_no_errors(records: list[logging.LogRecord]) -> None:
    bad = [r for r in records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


# ------------------------------------------------------------------ garbage and bad heads


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)), "400"),  # TLS
        (bytes(range(256)) * 4 + b"\r\n\r\n", "400"),
        (b"\r\n\r\n", "400"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\n\r\n", "400"),  # HTTP/1.1 without Host
        (b"GET / HTTP/11\r\nHost: x\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"),
        (UPGRADE.replace(b"Host: 127.0.0.1", b"Host: \xff\xfe"), "400"),  # wsproto: not IDNA
        (UPGRADE.replace(b"Connection: Upgrade", b"Connection: Upgrade, \xe9"), "400"),
        (UPGRADE.replace(b"\r\n\r\n", b"\r\nOrigin: http://[::1\r\n\r\n"), "403"),
        (UPGRADE.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 12"), "426"),
        (UPGRADE.replace(b"GET /ws", b"GET /ws?fps=-1"), "400"),
    ],
    ids=[
        "tls-client-hello",
        "binary",
        "blank",
        "ssh-banner",
        "no-host",
        "bad-version",
        "two-lengths",
        "host-not-idna",
        "connection-not-ascii",
        "origin-bad-ipv6",
        "ws-version-12",
        "bad-query",
    ],
)
async def test_garbage_is_answered_or_closed(
    payload: bytes, expected: str, errors: list[logging.LogRecord]
) -> None:
    async with engine_with_watcher(handshake_timeout="500ms") as (engine, _watcher):
        stream = await connect(engine)
        started = time.monotonic()
        await stream.send_all(payload)
        reply, how = await read_until_closed(stream, 5)
        elapsed = time.monotonic() - started
        await stream.aclose()
        if expected == "timeout":
            assert reply == b""
            assert 0.4 < elapsed < 3, elapsed
            assert engine.web is not None and engine.web.stats.handshake_timeouts == 1
        else:
            assert reply.startswith(b"HTTP/1.1 " + expected.encode()), reply[:120]
        assert how in ("eof", "reset")
    assert_no_errors(errors)


async def test_half_handshake_then_silence_is_closed_within_the_timeout(
    errors: list[logging.LogRecord],
) -> None:
    async with engine_with_watcher(handshake_timeout="500ms") as (engine, _watcher):
        streams = []
        started = time.monotonic()
        for cut in (1, 20, len(UPGRADE) // 2, len(UPGRADE) - 2):
            stream = await connect(engine)
            await stream.send_all(UPGRADE[:cut])
            streams.append(stream)
        for stream in streams:
            reply, how = await read_until_closed(stream, 5)
            assert (reply, how) == (b"", "eof")
            await stream.aclose()
        assert time.monotonic() - started < 3
        assert engine.web is not None and engine.web.stats.handshake_timeouts == 4
    assert_no_errors(errors)


async def test_slowloris_trickle_is_cut_at_the_timeout() -> None:
    """One byte every 50 ms never finishes a head: the timeout is for the whole head."""
    async with engine_with_watcher(handshake_timeout="500ms") as (engine, _watcher):
        stream = await connect(engine)
        started = time.monotonic()
        closed_after = None
        with trio.fail_after(5):
            for byte in UPGRADE:
                try:
                    await stream.send_all(bytes([byte]))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    closed_after = time.monotonic() - started
                    break
                with trio.move_on_after(0.05):
                    if await stream.receive_some(100) == b"":
                        closed_after = time.monotonic() - started
                        break
        await stream.aclose()
        assert closed_after is not None and closed_after < 1.5, closed_after


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: a\r\n" * 3000 + b"\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G" * 100_000,  # no line end at all
    ],
    ids=["one-huge-header", "many-headers", "huge-target", "no-line-end"],
)
async def test_oversized_request_head_is_431(head: bytes, errors: list[logging.LogRecord]) -> None:
    async with engine_with_watcher() as (engine, _watcher):
        stream = await connect(engine)
        with trio.fail_after(5):
            # closed while we were still sending is fine too: the reply is already queued
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(head)
        reply, _ = await read_until_closed(stream, 5)
        await stream.aclose()
        assert reply.startswith(b"HTTP/1.1 431 ") or reply == b"", reply[:100]
        assert engine.web is not None and engine.web.stats.bad_requests == 1
    assert_no_errors(errors)


# ------------------------------------------------------------------ bad WebSocket traffic


@pytest.mark.parametrize("how", ["one-message", "fragments", "huge-length-header"])
async def test_oversized_websocket_message_is_closed_1009(
    how: str, errors: list[logging.LogRecord]
) -> None:
    async with engine_with_watcher(max_message_size=4096) as (engine, _watcher):
        if how == "one-message":
            async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
                await ws.send_message(b"x" * 100_000)
                with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await read_forever(ws)
            assert closed.value.reason.code == 1009
        else:
            stream = await upgraded(engine)
            if how == "fragments":  # each fragment small, the message too big
                frames = masked_frame(Opcode.BINARY, b"y" * 3000, fin=False)
                frames += masked_frame(Opcode.CONTINUATION, b"y" * 3000, fin=False)
                frames += masked_frame(Opcode.CONTINUATION, b"y" * 3000)
            else:  # announces 2^40 bytes, then trickles them: cut once past the limit
                frames = struct.pack("!BBQ", 0x82, 0x80 | 127, 2**40) + b"\x00" * 4
                frames += b"z" * 5000
            await stream.send_all(frames)
            data, _ = await read_until_closed(stream, 5)
            await stream.aclose()
            close = data[data.rfind(b"\x88") :]  # the server's close frame, after data frames
            assert close[:1] == b"\x88" and struct.unpack("!H", close[2:4])[0] == 1009, close
    assert_no_errors(errors)


@pytest.mark.slow
@pytest.mark.parametrize("flooder_reads", [True, False], ids=["reads-pongs", "never-reads"])
async def test_ping_flood_leaves_other_clients_untouched(
    flooder_reads: bool, errors: list[logging.LogRecord]
) -> None:
    """5,000 pings in one burst, after a proper handshake. The engine answers them (or, if
    the flooder never reads, stops reading from it once its pongs back up: TCP flow control
    on that one socket); the watcher sees every frame."""
    async with engine_with_watcher() as (engine, watcher):
        stream = await upgraded(engine)
        pings = b"".join(masked_frame(Opcode.PING, b"p%d" % i) for i in range(5000))
        received = 0
        async with trio.open_nursery() as nursery:
            if flooder_reads:

                async def drain() -> None:
                    nonlocal received
                    while chunk := await stream.receive_some(65536):
                        received += len(chunk)

                nursery.start_soon(drain)
            with trio.move_on_after(10):
                await stream.send_all(pings)
            await watcher.wait_for_frames(200)
            nursery.cancel_scope.cancel()
        if flooder_reads:
            assert received > 5000 * 4  # pongs (and data frames) came back
        vanish(stream)
        await watcher.wait_for_frames(50)
        assert engine.web is not None
        await eventually(lambda: web_of(engine).stats.clients_connected == 1, 5)
    assert_no_errors(errors)


async def test_frames_before_the_101_hurt_only_their_sender(
    errors: list[logging.LogRecord],
) -> None:
    """RFC 6455 forbids sending frames before the 101. trio-websocket then either ignores
    them or closes that connection (1002); either way: no error logged, nobody else hurt."""
    async with engine_with_watcher() as (engine, _watcher):
        for count in (1, 100, 2000):
            stream = await connect(engine)
            pings = b"".join(masked_frame(Opcode.PING, b"%d" % i) for i in range(count))
            await stream.send_all(UPGRADE + pings)
            with trio.move_on_after(1):
                await read_until_closed(stream, 5)
            await stream.aclose()
        assert engine.web is not None
        await eventually(lambda: web_of(engine).stats.clients_connected == 1, 5)
    assert_no_errors(errors)


async def test_client_messages_are_read_and_discarded() -> None:
    """A client may talk (JSON, binary, junk); nothing it sends reaches the engine's state."""
    async with engine_with_watcher() as (engine, _watcher):
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            for message in ('{"type":"subscribe"}', b"\x00" * 4000, "x" * 4000):
                await ws.send_message(message)
            for _ in range(20):
                assert (await receive_json(ws))["type"] == "fft_magnitudes"


# ------------------------------------------------------------------ clients that vanish


async def test_clients_that_vanish_mid_frame(errors: list[logging.LogRecord]) -> None:
    """RST in the middle of a frame, and a half-closed socket: each handler ends, each
    subscription goes away, nothing is logged as an error."""
    async with engine_with_watcher() as (engine, watcher):
        assert engine.web is not None
        for i in range(30):
            stream = await upgraded(engine)
            await stream.receive_some(1 + i * 37)  # stop reading part-way through a frame
            vanish(stream)
        for _ in range(10):  # write side shut: the engine's sends still work until it reads EOF
            stream = await upgraded(engine)
            await stream.send_eof()
            await read_until_closed(stream, 5)
            await stream.aclose()
        await eventually(
            lambda: (
                web_of(engine).stats.clients_connected == 1
                and len(engine.router.subscriptions) == 1
            )
        )
        await watcher.wait_for_frames(50)
    assert_no_errors(errors)


@pytest.mark.slow
async def test_a_thousand_connect_disconnect_cycles_leave_no_trace(
    errors: list[logging.LogRecord],
) -> None:
    """1,000 WebSocket clients connect, take one frame and leave (a third by RST), one at a
    time, while the watcher streams. Tolerances, after a 100-cycle warm-up: file descriptors
    back to exactly the baseline (±2), RSS within 8 MiB of it (a leak of 8 KiB per client
    would show), and the router, the connection count and the metrics back to one client."""
    async with engine_with_watcher() as (engine, watcher):
        assert engine.web is not None
        url = ws_url(engine)

        async def cycle(i: int) -> None:
            if i % 3 == 2:
                stream = await upgraded(engine)
                await stream.receive_some(100)
                vanish(stream)
            else:
                async with trio_websocket.open_websocket_url(url) as ws:
                    await ws.get_message()

        with trio.fail_after(150):
            for i in range(100):
                await cycle(i)
            await eventually(lambda: web_of(engine).stats.clients_connected == 1)
            await trio.sleep(0.5)
            fds_before, rss_before = fd_count(), rss_kib()
            for i in range(1000):
                await cycle(i)
            await eventually(lambda: web_of(engine).stats.clients_connected == 1)
            await trio.sleep(0.5)
        fds_after, rss_after = fd_count(), rss_kib()
        print(f"1000 cycles: fds {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} KiB")
        assert abs(fds_after - fds_before) <= 2, (fds_before, fds_after)
        assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)
        assert len(engine.router.subscriptions) == 1
        assert engine.web.stats.clients_total >= 1101
        assert "phase4_clients_connected 1\n" in engine.render_metrics()
        await watcher.wait_for_frames(50)
    assert_no_errors(errors)


# ------------------------------------------------------------------ limits


async def test_max_clients_refusal_is_503_and_counted_in_metrics() -> None:
    async with engine_with_watcher(max_clients=3) as (engine, _watcher):
        async with (
            trio_websocket.open_websocket_url(ws_url(engine)) as second,
            trio_websocket.open_websocket_url(ws_url(engine)) as _third,
        ):
            await receive_json(second)
            for _ in range(5):
                with pytest.raises(trio_websocket.ConnectionRejected) as refused:
                    async with trio_websocket.open_websocket_url(ws_url(engine)):
                        pass
                assert refused.value.status_code == 503
                assert dict(refused.value.headers or [])[b"retry-after"] == b"5"
            metrics = engine.render_metrics()
            assert 'phase4_connections_refused_total{reason="max_clients"} 5' in metrics
            assert "phase4_clients_connected 3" in metrics
        # room again once one leaves
        await eventually(lambda: web_of(engine).stats.clients_connected == 1, 5)
        async with trio_websocket.open_websocket_url(ws_url(engine)) as again:
            assert (await receive_json(again))["type"] == "fft_magnitudes"


@pytest.mark.slow
async def test_many_idle_connections_are_shed_after_the_timeout(
    errors: list[logging.LogRecord],
) -> None:
    """300 sockets that connect and say nothing (the pre-handshake stage has no client cap):
    each is closed at handshake_timeout, fds return to baseline, the watcher is unaffected."""
    async with engine_with_watcher(handshake_timeout="1s") as (engine, _watcher):
        await trio.sleep(0.2)
        fds_before = fd_count()
        streams = [await connect(engine) for _ in range(300)]
        with trio.fail_after(10):
            for stream in streams:
                assert await stream.receive_some(10) == b""
                await stream.aclose()
        await trio.sleep(0.2)
        assert abs(fd_count() - fds_before) <= 2
        assert engine.web is not None and engine.web.stats.handshake_timeouts == 300
    assert_no_errors(errors)


def test_the_default_bind_is_loopback_only() -> None:
    """Out of the box nothing off this machine can reach the engine (SPEC: 127.0.0.1:8889)."""
    assert str(Config().transport.websocket_address) == "127.0.0.1:8889"


@pytest.mark.slow
async def test_file_descriptor_exhaustion_is_survived() -> None:
    """The engine as a real process under RLIMIT_NOFILE=64, hit by 100 silent sockets: its
    accept loop gets EMFILE, logs a warning and backs off (no crash, no busy loop); the
    connected client streams on without a gap; once handshake_timeout sheds the silent
    sockets, new clients are served again and SIGTERM still ends it with exit 0."""
    launcher = (
        "import os, resource, sys;"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64));"
        "os.execv(sys.executable, [sys.executable, '-m', 'phase4_trio', *sys.argv[1:]])"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    environ |= {
        "PHASE4_TRANSPORT__CLIENT_QUEUE": "1024",
        "PHASE4_TRANSPORT__HANDSHAKE_TIMEOUT": "2s",
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", launcher, "run", "--source", "tone:440", "--ws", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert process.stdout is not None and process.stderr is not None
    stderr = b""
    try:
        url = await read_ws_url(process)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        watcher = Watcher()
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run, url)
            await watcher.wait_for_frames(20)
            silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(100)]
            with trio.fail_after(30):  # shed in rounds of handshake_timeout as fds free up
                for stream in silent:
                    assert await stream.receive_some(10) == b""
                    await stream.aclose()
            async with trio_websocket.open_websocket_url(url) as again:
                assert (await receive_json(again))["type"] == "fft_magnitudes"
            await watcher.wait_for_frames(50)
            watcher.assert_no_gap()
            nursery.cancel_scope.cancel()
        text = await stop_cleanly(process, stderr)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    warnings = [line for line in text.splitlines() if "accept failed" in line]
    assert warnings, text  # the limit was really hit
    assert all("Too many open files" in line for line in warnings)
    assert len(warnings) < 400  # backing off at 0.1 s, not spinning
