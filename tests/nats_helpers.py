"""The real NATS cluster (scripts/nats-cluster) and real engine / relay processes, for tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import orjson
import trio
import trio_websocket

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "nats-cluster"
CLUSTER_DIR = Path(os.environ.get("NATS_CLUSTER_DIR", "/tmp/phase4-nats"))


@attrs.frozen
class Cluster:
    urls: tuple[str, ...]

    def pid(self, url: str) -> int:
        """The pid of the node serving ``url``."""
        node = self.urls.index(url) + 1
        return int((CLUSTER_DIR / f"n{node}.pid").read_text().strip())

    def start(self) -> None:
        """Start whatever node is down again (the script is idempotent)."""
        subprocess.run([str(SCRIPT), "start"], check=True, capture_output=True, timeout=60)


def cluster_session() -> Iterator[Cluster]:
    """The 3-node cluster; started (and stopped at the end) only if it was not running."""
    status = subprocess.run([str(SCRIPT), "status"], capture_output=True, timeout=30)
    started = status.returncode != 0
    if started:
        subprocess.run([str(SCRIPT), "start"], check=True, capture_output=True, timeout=120)
    env = subprocess.run([str(SCRIPT), "env"], check=True, capture_output=True, text=True)
    match = re.search(r"NATS_URL='([^']+)'", env.stdout)
    assert match is not None, env.stdout
    cluster = Cluster(tuple(match[1].split(",")))
    yield cluster
    if started:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=60)
    else:
        cluster.start()  # a test may have killed a node: leave the cluster as it was found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_id(name: str) -> str:
    """Unique per test run, so concurrent runs on one cluster never hear each other."""
    return f"t{os.getpid()}-{name}"


@attrs.define(eq=False)
class Phase4Process:
    """A ``python -m phase4_trio ...`` process run by :func:`launch`."""

    process: trio.Process
    first_line: str = ""
    stderr: bytearray = attrs.field(factory=bytearray)
    exited: trio.Event = attrs.field(factory=trio.Event)

    @property
    def ws_url(self) -> str:
        return self.first_line.split("websocket ", 1)[1].split()[0]

    @property
    def http_url(self) -> str:
        return self.first_line.split("page ", 1)[1].split()[0]

    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")

    async def stop(self) -> None:
        """SIGTERM, then check it exited 0 without a traceback."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await self.exited.wait()
        text = self.stderr_text()
        assert self.process.returncode == 0, text
        assert "Traceback" not in text, text


async def launch(
    nursery: trio.Nursery, *args: str, env: dict[str, str] | None = None
) -> Phase4Process:
    """Start ``python -m phase4_trio ARGS`` and return once it printed its first line; the
    process is SIGTERMed if the nursery is cancelled before :meth:`Phase4Process.stop`."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "phase4_trio", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None and process.stderr is not None
    running = Phase4Process(process)

    async def supervise() -> None:
        try:
            assert process.stderr is not None
            await _collect(process.stderr, running.stderr)
            await process.wait()
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.CancelScope(shield=True), trio.move_on_after(20):
                    await process.wait()
            running.exited.set()

    nursery.start_soon(supervise)
    line = b""
    with trio.fail_after(60):
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            if not chunk:
                await running.exited.wait()
                raise AssertionError(f"exited early: {running.stderr_text()}")
            line += chunk
    running.first_line = line.decode()
    return running


async def _collect(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    while chunk := await stream.receive_some(65536):
        into += chunk


def run_args(name: str, publish: str, *extra: str) -> tuple[list[str], dict[str, str]]:
    """``phase4 run`` of a tone, publishing as engine ``name`` (the id) to ``publish``."""
    return (
        ["run", "--source", "tone:1000", "--ws", "127.0.0.1:0", "--publish", publish, *extra],
        {"PHASE4_OUTPUT__NATS__ENGINE_ID": name},
    )


@attrs.define
class Received:
    """What one WebSocket client saw: frameCount and the receipt time of each message."""

    frames: list[int] = attrs.field(factory=list)
    times: list[float] = attrs.field(factory=list)
    latencies: list[float] = attrs.field(factory=list)
    connections: int = 0


async def collect(
    url: str, into: Received, *, reconnect: bool = False, stop: trio.Event | None = None
) -> None:
    """Receive JSON messages into ``into`` until cancelled or ``stop`` is set; with
    ``reconnect``, connect again (every 0.1 s) whenever the server goes away, as the page does."""
    while stop is None or not stop.is_set():
        try:
            async with trio_websocket.open_websocket_url(url) as connection:
                into.connections += 1
                while stop is None or not stop.is_set():
                    message = await connection.get_message()
                    now = time.time()
                    data = orjson.loads(message)
                    into.frames.append(data["frameCount"])
                    into.times.append(now)
                    into.latencies.append(now - data["captureTime"])
        except (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError):
            if not reconnect:
                raise
        await trio.sleep(0.1)


async def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``predicate()`` every 0.05 s until it is true."""
    deadline = trio.current_time() + seconds
    while not predicate():
        if trio.current_time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await trio.sleep(0.05)


async def http_get(url: str) -> tuple[int, str]:
    """One GET with a plain socket; (status, body)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def metric(text: str, name: str) -> float:
    """The value of one sample line (name with its labels) in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def contiguous(frames: list[int]) -> bool:
    return frames == list(range(frames[0], frames[0] + len(frames)))


async def wait_status(url: str, status: int, seconds: float) -> str:
    """GET ``url`` every 0.1 s until it answers ``status``; the body."""
    deadline = trio.current_time() + seconds
    while True:
        code, body = await http_get(url)
        if code == status:
            return body
        if trio.current_time() > deadline:
            raise AssertionError(f"{url} still answers {code} {body.strip()!r} after {seconds} s")
        await trio.sleep(0.1)
