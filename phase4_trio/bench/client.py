"""The bench's WebSocket clients, run in their own process: ``python -m phase4_trio.bench.client``.

One process holds many clients (one Trio task each). It is driven over stdin/stdout with one
JSON object per line, so the engine under test never shares a process (or a GIL) with them:

* ``{"cmd": "connect", "clients": N}`` grows the set to N connected clients and answers
  ``{"event": "connected", "clients": N, "failed": K, "error": ...}``;
* ``{"cmd": "measure", "seconds": S}`` opens a window of S seconds on every client, then
  answers ``{"event": "result", ...}`` with per-client counts and the latency distribution;
* ``{"cmd": "quit"}`` (or end of input) closes every connection and exits.

Two client implementations speak to the same server:

``trio-websocket``
    the library a Python user of the product would pick (reader task + wsproto per connection);
``raw``
    a minimal RFC 6455 client on a Trio socket stream: the same handshake (key and accept
    checked), unmasked server frames parsed with ``struct``, pings answered, close echoed.
    It costs a few µs per message instead of tens, so hundreds of clients on one shared core
    measure the server and not themselves.

Each message yields its ``frameCount``, ``dropped`` and ``captureTime`` (JSON: read from the
text without decoding the arrays; ``?format=f32``: from the fixed header); latency is the
receipt ``time.time()`` minus ``captureTime``, both on this host's clock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import resource
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import attrs
import orjson
import trio
import trio_websocket

from ..wire import websocket_frame
from ..wire.websocket_frame import Opcode

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_F32_FIELDS = struct.Struct("<QQd")  # frame_count, dropped, capture_time at offset 16
_F32_OFFSET = 16
_LATENCY_LIMIT = 2_000_000  # per process per window; enough for 1000 clients x 10 s


@attrs.define(eq=False)
class ClientState:
    """One client's counters for the current window (reset by ``measure``)."""

    index: int
    connected: bool = False
    measuring: bool = False
    received: int = 0
    gaps: int = 0
    missing: int = 0
    reordered: int = 0
    first_frame: int = -1
    last_frame: int = -1
    dropped_start: int = -1
    dropped_last: int = 0
    bad: int = 0
    closed: str = ""
    latencies: list[float] | None = None

    def reset(self, latencies: list[float]) -> None:
        self.measuring = True
        self.received = self.gaps = self.missing = self.reordered = self.bad = 0
        self.first_frame = self.last_frame = self.dropped_start = -1
        self.dropped_last = 0
        self.latencies = latencies

    def observe(self, frame: int, dropped: int, capture_time: float, now: float) -> None:
        if not self.measuring:
            return
        if self.first_frame < 0:
            self.first_frame = frame
            self.dropped_start = dropped
        elif frame != self.last_frame + 1:
            if frame > self.last_frame:
                self.gaps += 1
                self.missing += frame - self.last_frame - 1
            else:
                self.reordered += 1
        self.last_frame = frame
        self.dropped_last = dropped
        self.received += 1
        latencies = self.latencies
        if latencies is not None and len(latencies) < _LATENCY_LIMIT:
            latencies.append(now - capture_time)

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "gaps": self.gaps,
            "missing": self.missing,
            "reordered": self.reordered,
            "dropped": max(0, self.dropped_last - self.dropped_start)
            if self.dropped_start >= 0
            else 0,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "bad": self.bad,
            "closed": self.closed,
        }


# ------------------------------------------------------------------ message parsing


def _int_after(data: bytes | bytearray, key: bytes, start: int, end: int) -> tuple[int, int]:
    at = data.index(key, start, end) + len(key)
    stop = at
    while 48 <= data[stop] <= 57 or data[stop] == 45:
        stop += 1
    return int(data[at:stop]), stop


def parse_json_fields(
    data: bytes | bytearray, start: int = 0, end: int | None = None
) -> tuple[int, int, float]:
    """``frameCount``, ``dropped``, ``captureTime`` from one JSON message, arrays untouched.

    The engine writes ``dropped`` first and ``captureTime`` last; anything unexpected falls
    back to a full decode, so the parser is fast without being fragile.
    """
    if end is None:
        end = len(data)
    try:
        dropped, at = _int_after(data, b'"dropped":', start, end)
        frame, _ = _int_after(data, b'"frameCount":', at, end)
        at = data.rindex(b'"captureTime":', start, end) + 14
        stop = data.find(b",", at, end)
        if stop < 0:
            stop = data.index(b"}", at, end)
        return frame, dropped, float(data[at:stop])
    except ValueError:
        message = orjson.loads(bytes(data[start:end]))
        return int(message["frameCount"]), int(message["dropped"]), float(message["captureTime"])


def parse_f32_fields(
    data: bytes | bytearray | memoryview, start: int = 0
) -> tuple[int, int, float]:
    frame, dropped, capture_time = _F32_FIELDS.unpack_from(data, start + _F32_OFFSET)
    return int(frame), int(dropped), float(capture_time)


def _handle(state: ClientState, payload: bytes | str, now: float) -> None:
    try:
        if isinstance(payload, str):
            fields = parse_json_fields(payload.encode())
        elif payload[:1] == b"{":
            fields = parse_json_fields(payload)
        else:
            fields = parse_f32_fields(payload)
    except (ValueError, KeyError, struct.error, orjson.JSONDecodeError):
        state.bad += 1
        return
    state.observe(*fields, now)


# ------------------------------------------------------------------ clients


async def trio_websocket_client(
    url: str, state: ClientState, task_status: trio.TaskStatus[None]
) -> None:
    async with trio_websocket.open_websocket_url(url, max_message_size=1 << 20) as ws:
        task_status.started()
        clock = time.time
        try:
            while True:
                message = await ws.get_message()
                _handle(state, message, clock())
        except trio_websocket.ConnectionClosed as closed:
            state.closed = str(closed.reason)


def _client_frame(opcode: int, payload: bytes) -> bytes:
    return websocket_frame.build(opcode, payload, mask=os.urandom(4))


def raw_handshake(url: str, timeout: float = 30.0) -> tuple[socket.socket, bytes]:
    """Connect and upgrade (blocking); the socket, non-blocking, and any bytes after the head."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (target.encode(), host.encode(), port, key)
        )
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed during the handshake")
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if b" 101 " not in lines[0] + b" ":
            raise ConnectionError(f"handshake refused: {lines[0].decode(errors='replace')}")
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in lines[1:])
        }
        if headers.get(b"sec-websocket-accept") != accept:
            raise ConnectionError("handshake: wrong Sec-WebSocket-Accept")
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock, rest


class RawConnection:
    """One raw client's socket and its unparsed bytes."""

    def __init__(self, sock: socket.socket, state: ClientState, rest: bytes) -> None:
        self.sock = sock
        self.state = state
        self.buffer = bytearray(rest)
        self.fragments: list[bytes] = []

    def receive(self, data: bytes, now: float) -> bool:
        """Take bytes off the socket; False once the connection is over."""
        if self.buffer:
            self.buffer += data
            return self.feed(self.buffer, now)
        # The usual case: whole frames, parsed where they are, only a tail kept.
        return self.feed(data, now)

    def feed(self, buffer: bytes | bytearray, now: float) -> bool:
        """Parse every complete frame in ``buffer``; False once the connection is over."""
        pos = 0
        state = self.state
        while True:
            try:
                head = websocket_frame.parse_head(buffer, pos)
            except websocket_frame.FrameError as error:
                state.closed = f"protocol error: {error}"
                return False
            if head is None:
                break
            if head.masked:
                state.closed = "protocol error: the server masked a frame"
                return False
            start, end, opcode = head.start, head.end, head.opcode
            pos = end
            if opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                if not head.fin or self.fragments:
                    self.fragments.append(bytes(buffer[start:end]))
                    if not head.fin:
                        continue
                    payload = b"".join(self.fragments)
                    self.fragments.clear()
                    _handle(state, payload, now)
                    continue
                if not state.measuring:
                    continue
                try:
                    if buffer[start] == 0x7B:  # "{": JSON
                        fields = parse_json_fields(buffer, start, end)
                    else:
                        fields = parse_f32_fields(buffer, start)
                except (ValueError, KeyError, struct.error, IndexError):
                    state.bad += 1
                    continue
                state.observe(fields[0], fields[1], fields[2], now)
            elif opcode == Opcode.PING:
                self._send(_client_frame(Opcode.PONG, bytes(buffer[start:end])))
            elif opcode == Opcode.CLOSE:
                payload = bytes(buffer[start:end])
                state.closed = f"close frame {websocket_frame.close_code(payload)}"
                self._send(_client_frame(Opcode.CLOSE, payload[:2]))
                return False
        if buffer is self.buffer:
            del self.buffer[:pos]
        elif pos < len(buffer):
            self.buffer = bytearray(buffer[pos:])
        return True

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(data)


class RawPump:
    """Every raw client of the process, read by one thread with one epoll loop.

    One ``recv`` and a ``struct`` parse per message, no task switch: hundreds of clients on a
    fraction of a core, so a fan-out figure is the engine's and not this process's.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._connections: dict[int, RawConnection] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raw-clients", daemon=True)
        self._thread.start()

    def add(self, url: str, state: ClientState) -> None:
        """Connect one client (blocking; run it in a worker thread)."""
        sock, rest = raw_handshake(url)
        connection = RawConnection(sock, state, rest)
        self._connections[sock.fileno()] = connection
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def _run(self) -> None:
        clock = time.time
        connections = self._connections
        while not self._stop.is_set():
            events = self._epoll.poll(0.05)
            for fd, _mask in events:
                connection = connections.get(fd)
                if connection is None:
                    continue
                try:
                    data = connection.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                except OSError as error:
                    data = b""
                    connection.state.closed = f"{type(error).__name__}: {error}"
                now = clock()
                if data:
                    if connection.receive(data, now):
                        continue
                else:
                    connection.state.closed = connection.state.closed or "eof"
                self._drop(fd)

    def _drop(self, fd: int) -> None:
        connection = self._connections.pop(fd, None)
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)
        if connection is not None:
            connection.sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        for fd in list(self._connections):
            self._drop(fd)
        self._epoll.close()


IMPLEMENTATIONS = ("trio-websocket", "raw")


# ------------------------------------------------------------------ the process


def percentiles(values: list[float], scale: float = 1.0) -> dict[str, float | int]:
    """p50 / p99 / max (and the count) of ``values`` times ``scale``; empty gives zeros."""
    if not values:
        return {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    count = len(ordered)

    def rank(fraction: float) -> float:
        return ordered[min(count - 1, max(0, math.ceil(fraction * count) - 1))] * scale

    return {"count": count, "p50": rank(0.5), "p99": rank(0.99), "max": ordered[-1] * scale}


class ClientProcess:
    def __init__(
        self, url: str, implementation: str, out: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        self.url = url
        self.implementation = implementation
        self.states: list[ClientState] = []
        self.failed = 0
        self.errors: list[str] = []
        self._out = out
        self.pump = RawPump() if implementation == "raw" else None

    async def _trio_websocket(self, state: ClientState, task_status: trio.TaskStatus[None]) -> None:
        try:
            await trio_websocket_client(self.url, state, task_status)
        except (OSError, ConnectionError, trio_websocket.HandshakeError) as error:
            state.closed = f"{type(error).__name__}: {error}"
            self.errors.append(state.closed)
        except trio.BrokenResourceError as error:
            state.closed = f"broken: {error}"

    async def _start_one(
        self, nursery: trio.Nursery, state: ClientState, limiter: trio.CapacityLimiter
    ) -> None:
        if self.pump is not None:
            try:
                await trio.to_thread.run_sync(self.pump.add, self.url, state, limiter=limiter)
            except (OSError, ConnectionError) as error:
                state.closed = f"{type(error).__name__}: {error}"
                self.errors.append(state.closed)
                self.failed += 1
            else:
                state.connected = True
            return
        async with limiter:
            try:
                await nursery.start(self._trio_websocket, state)
            except RuntimeError:  # exited before started(): the handshake failed
                self.failed += 1
            else:
                state.connected = True

    async def connect(self, nursery: trio.Nursery, total: int) -> None:
        failed_before = len(self.errors)
        limiter = trio.CapacityLimiter(16)
        with trio.move_on_after(60):
            async with trio.open_nursery() as starting:
                while len(self.states) < total:
                    state = ClientState(len(self.states))
                    self.states.append(state)
                    starting.start_soon(self._start_one, nursery, state, limiter)
        await self._out(
            {
                "event": "connected",
                "clients": sum(1 for s in self.states if s.connected and not s.closed),
                "failed": self.failed,
                "errors": self.errors[failed_before:][:5],
            }
        )

    async def measure(self, seconds: float) -> None:
        latencies: list[float] = []
        started = time.time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        for state in self.states:
            state.reset(latencies)
        await trio.sleep(seconds)
        for state in self.states:
            state.measuring = False
        elapsed = time.time() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        await self._out(
            {
                "event": "result",
                "seconds": elapsed,
                "clients": [s.summary() for s in self.states],
                "latency_ms": percentiles(latencies, 1000.0),
                "client_cpu_percent": 100.0 * cpu / elapsed,
            }
        )

    def close(self) -> None:
        if self.pump is not None:
            self.pump.close()


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _main(url: str, implementation: str) -> None:
    stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))

    async def out(message: dict[str, Any]) -> None:
        await stdout.send_all(orjson.dumps(message) + b"\n")

    process = ClientProcess(url, implementation, out)
    async with trio.open_nursery() as nursery:
        clients_scope = trio.CancelScope()

        async def clients_host(task_status: trio.TaskStatus[trio.Nursery]) -> None:
            with clients_scope:
                async with trio.open_nursery() as clients:
                    task_status.started(clients)
                    await trio.sleep_forever()

        clients = await nursery.start(clients_host)
        pending = b""
        while True:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            quit_now = False
            for line in lines:
                if not line.strip():
                    continue
                command = orjson.loads(line)
                if command["cmd"] == "connect":
                    await process.connect(clients, int(command["clients"]))
                elif command["cmd"] == "measure":
                    await process.measure(float(command["seconds"]))
                elif command["cmd"] == "quit":
                    quit_now = True
            if quit_now:
                break
        clients_scope.cancel()
    process.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m phase4_trio.bench.client URL [trio-websocket|raw]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2 or (len(args) == 2 and args[1] not in IMPLEMENTATIONS):
        print(f"usage: python -m phase4_trio.bench.client URL [{'|'.join(IMPLEMENTATIONS)}]")
        return 2
    _raise_fd_limit()
    trio.run(_main, args[0], args[1] if len(args) == 2 else "trio-websocket")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
