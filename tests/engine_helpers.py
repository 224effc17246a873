"""Start a real engine in-process on an ephemeral port, for tests that need one."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio_websocket

from phase4_trio.capture import Block, CaptureBridge
from phase4_trio.config import Config, deep_merge, structure_config, unstructure_config
from phase4_trio.engine import Engine


def make_config(**sections: Any) -> Config:
    base = deep_merge(
        unstructure_config(Config()),
        {"input": {"source": "tone:1000"}, "transport": {"websocket_address": "127.0.0.1:0"}},
    )
    return structure_config(deep_merge(base, sections))


@asynccontextmanager
async def running_engine(config: Config | None = None, **kwargs: Any) -> AsyncIterator[Engine]:
    engine = Engine(config or make_config(), **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        yield engine
        nursery.cancel_scope.cancel()


def listening_bridge(
    *, block_size: int, channels: int, sample_rate: int = 44100, slots: int = 64, queue: int = 64
) -> tuple[CaptureBridge, trio.MemoryReceiveChannel[Block]]:
    """A bridge delivering every block into a channel of ``queue`` blocks (call inside Trio)."""
    send, receive = trio.open_memory_channel[Block](queue)
    bridge = CaptureBridge(
        block_size=block_size, channels=channels, slots=slots, sample_rate=sample_rate, send=send
    )
    bridge.listen(0.0)
    return bridge, receive


async def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll: a capture thread (PortAudio's, or a synthetic source's) changes what is read,
    and it cannot set a trio.Event."""
    try:
        with trio.fail_after(seconds):
            while not predicate():  # noqa: ASYNC110
                await trio.sleep(0.02)
    except trio.TooSlowError:
        pytest.fail(f"timed out after {seconds} s waiting for {what}", pytrace=False)


async def take_blocks(receive: trio.MemoryReceiveChannel[Block]) -> list[Block]:
    """Every block waiting (at least one: waits for it), as the processor takes them."""
    blocks = [await receive.receive()]
    while True:
        try:
            blocks.append(receive.receive_nowait())
        except trio.WouldBlock:
            return blocks


def assert_conserved(engine: Engine) -> None:
    """Every block and spectrum accounted for, exactly, at every stage (pipeline drained)."""
    bridge, processor, router = engine.bridge, engine.processor, engine.router
    assert bridge is not None and processor is not None
    b, p = bridge.stats, processor.stats
    waiting = bridge.waiting
    assert b.captured == (
        b.delivered + b.ring_full + b.queue_full + b.resting + b.push_errors + b.late + waiting
    ), (b, waiting)
    assert p.received == b.delivered, (p, b)
    assert p.received == p.processed + p.errors, p
    assert p.processed == p.warmup + p.sent + p.router_full, p
    assert router.stats.routed == p.sent, (router.stats, p)
    for sub in router.subscriptions:
        assert sub.offered == sub.taken + sub.dropped + sub.skipped + sub.queued, sub
        assert (sub.queued - sub.held == 0) == (sub.batches_waiting == 0), sub


UPGRADE_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def upgraded_but_never_read(engine: Engine) -> trio.SocketStream:
    """A client that asks for the WebSocket upgrade, then never reads (a 4 KiB receive
    buffer, so its socket fills at once): the stalled client of the isolation tests."""
    assert engine.web is not None
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", engine.web.port))
    stream = trio.SocketStream(sock)
    await stream.send_all(UPGRADE_REQUEST)
    return stream


def ws_url(engine: Engine, query: str = "") -> str:
    assert engine.urls is not None
    return engine.urls[1] + (f"?{query}" if query else "")


async def receive_json(connection: trio_websocket.WebSocketConnection) -> dict[str, Any]:
    message = await connection.get_message()
    assert isinstance(message, str)
    data: dict[str, Any] = orjson.loads(message)
    return data


async def stop_cleanly(process: trio.Process, stderr: bytes = b"") -> str:
    """SIGTERM a ``phase4 run`` subprocess, read the rest of its stderr, check it exited 0."""
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(20):
        while chunk := await process.stderr.receive_some(65536):
            stderr += chunk
        await process.wait()
    text = stderr.decode(errors="replace")
    assert process.returncode == 0, text
    assert "Traceback" not in text
    return text


def catches_sigterm(pid: int) -> bool:
    """True once the process has a SIGTERM handler (its ``SigCgt`` mask has bit 15)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


async def read_ws_url(process: trio.Process) -> str:
    """The WebSocket URL from the first line ``phase4 run`` prints."""
    assert process.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            line += await process.stdout.receive_some(1)
    return line.decode().split("websocket ", 1)[1].split()[0]
