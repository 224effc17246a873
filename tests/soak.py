"""Soak: the real CLI engine at real time while clients join, misbehave and leave.

Runs ``python -m phase4_trio run --source tone:440`` on 127.0.0.1 (ephemeral port) as a
subprocess and keeps one well-behaved WebSocket client connected for the whole run. Around
it, short-lived clients of every kind the engine must survive come and go, a bounded number
at a time: readers, stalled readers, clients that vanish with a TCP RST, ping floods, frames
sent before the 101, garbage, half handshakes, oversized messages, /metrics scrapes.

It reports the frames the well-behaved client got, any gap in its ``frameCount``, its
``dropped``, the engine's own counters, and the engine's RSS and open file descriptors (from
/proc) at the start (after a warm-up, before the churn) and at the end (after the churn has
stopped and settled).

    .venv/bin/python tests/soak.py --seconds 600 [--json out.json]

``tests/test_reliability_soak.py`` runs a 20-second version in CI. Network: 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import trio
import trio_websocket

from phase4_trio.wire.websocket_frame import Opcode, build

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 3.0
SETTLE = 3.0
SAMPLE_EVERY = 5.0
MAX_CONCURRENT = 12
SPAWN_EVERY = 0.1
CLIENT_LIFETIME_LIMIT = 10.0
KINDS = (
    "reader",
    "stalled",
    "rst",
    "ping_flood",
    "garbage",
    "half_handshake",
    "oversized",
    "metrics",
    "binary_reader",
    "pipelined",
)

ENGINE_ARGS = ("run", "--source", "tone:440", "--ws", "127.0.0.1:0")
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked_frame(opcode: Opcode, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One client→server frame (clients must mask)."""
    return build(opcode, payload, fin=fin, mask=b"\x37\xfa\x21\x3d")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (``/proc/PID/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def open_upgraded(port: int) -> trio.SocketStream:
    """A raw socket past the 101, for clients that then misbehave at the frame level."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(1)
        if not chunk:
            raise trio.BrokenResourceError("closed during handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise trio.BrokenResourceError(head.split(b"\r\n")[0].decode("latin-1"))
    return stream


def reset(stream: trio.SocketStream) -> None:
    """Vanish: SO_LINGER 0 then close sends a TCP RST, mid-frame if data is in flight."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


class Soak:
    def __init__(self, seconds: float, seed: int = 4, client_queue: int = 256) -> None:
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.client_queue = client_queue
        self.kinds: Counter[str] = Counter()
        self.client_errors: Counter[str] = Counter()
        self.steady_frames = 0
        self.steady_gaps: list[tuple[int, int]] = []
        self.steady_dropped = 0
        self.steady_first = -1
        self.steady_last = -1
        self.steady_since = 0.0
        self.samples: list[dict[str, float]] = []
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ the engine

    def start_engine(self) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
        environ["PHASE4_TRANSPORT__CLIENT_QUEUE"] = str(self.client_queue)
        environ["PHASE4_TRANSPORT__HANDSHAKE_TIMEOUT"] = "2s"
        environ["PHASE4_LOG_LEVEL"] = "warning"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "phase4_trio", *ENGINE_ARGS],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if "websocket ws://" not in line:
            self.process.kill()
            raise RuntimeError(f"engine did not start: {line!r} {self.process.stderr!r}")
        url = line.split("websocket ", 1)[1].split()[0]
        self.port = int(url.rsplit(":", 1)[1].split("/", 1)[0])

    def stop_engine(self) -> tuple[int, str]:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=20)
        return self.process.returncode, stderr.decode(errors="replace")

    async def sample(self, phase: str) -> dict[str, float]:
        """RSS and fds from /proc, the engine's drop counters from /metrics, and the machine's
        load (this box is shared: upstream drops line up with load, not with the churn)."""
        assert self.process is not None
        _, body = await http_get(self.port, "/metrics")
        metrics = parse_metrics(body.decode())
        pid = self.process.pid
        row = {
            "t": time.monotonic(),
            "rss_kib": proc_rss_kib(pid),
            "fds": proc_fds(pid),
            "steady_frames": self.steady_frames,
            "steady_gaps": len(self.steady_gaps),
            "capture_queue_dropped": metrics.get(
                'phase4_frames_dropped_total{stage="capture_queue"}', 0.0
            ),
            "engine_cpu_s": round(proc_cpu_seconds(pid), 2),
            "load1": os.getloadavg()[0],
        }
        self.samples.append(row | {"phase": phase})  # type: ignore[dict-item]
        return row

    # ------------------------------------------------------------ clients

    async def steady_client(self, task_status: trio.TaskStatus[None]) -> None:
        url = f"ws://127.0.0.1:{self.port}/ws"
        async with trio_websocket.open_websocket_url(url) as ws:
            self.steady_since = time.monotonic()
            task_status.started()
            previous = -1
            while True:
                message = await ws.get_message()
                data = orjson.loads(message)
                count = data["frameCount"]
                if previous >= 0 and count != previous + 1:
                    self.steady_gaps.append((previous, count))
                if self.steady_first < 0:
                    self.steady_first = count
                previous = self.steady_last = count
                self.steady_frames += 1
                self.steady_dropped = max(self.steady_dropped, data["dropped"])

    async def churn_client(self, kind: str) -> None:
        port = self.port
        rng = self.rng
        url = f"ws://127.0.0.1:{port}/ws"
        if kind in ("reader", "binary_reader"):
            query = "?format=f32&fps=30" if kind == "binary_reader" else ""
            async with trio_websocket.open_websocket_url(url + query) as ws:
                with trio.move_on_after(rng.uniform(0.2, 3.0)):
                    while True:
                        await ws.get_message()
        elif kind == "stalled":
            stream = await open_upgraded(port)
            await trio.sleep(rng.uniform(0.5, 4.0))
            if rng.random() < 0.5:
                reset(stream)
            else:
                await stream.aclose()
        elif kind == "rst":
            stream = await open_upgraded(port)
            await stream.receive_some(rng.randrange(1, 2000))
            reset(stream)
        elif kind == "ping_flood":
            stream = await open_upgraded(port)
            pings = b"".join(
                masked_frame(Opcode.PING, b"%d" % i) for i in range(rng.randrange(100, 2000))
            )
            await stream.send_all(pings)
            with trio.move_on_after(0.5):
                while await stream.receive_some(65536):
                    pass
            await stream.aclose()
        elif kind == "garbage":
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(rng.randbytes(rng.randrange(1, 20000)) + b"\r\n\r\n")
            with trio.move_on_after(3):
                while await stream.receive_some(65536):
                    pass
            await stream.aclose()
        elif kind == "half_handshake":
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(UPGRADE[: rng.randrange(1, len(UPGRADE) - 4)])
            with trio.move_on_after(4):  # the engine closes it after handshake_timeout (2 s)
                while await stream.receive_some(65536):
                    pass
            await stream.aclose()
        elif kind == "oversized":
            async with trio_websocket.open_websocket_url(url) as ws:
                await ws.send_message(b"x" * 100_000)
                with trio.move_on_after(2):
                    while True:
                        await ws.get_message()
        elif kind == "pipelined":  # frames before the 101: a protocol violation
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            pings = b"".join(
                masked_frame(Opcode.PING, b"%d" % i) for i in range(rng.randrange(1, 1500))
            )
            await stream.send_all(UPGRADE + pings)
            with trio.move_on_after(2):
                while await stream.receive_some(65536):
                    pass
            await stream.aclose()
        elif kind == "metrics":
            status, _ = await http_get(port, "/metrics")
            assert status == 200

    async def one_churn(self, kind: str, limiter: trio.CapacityLimiter) -> None:
        async with limiter:
            self.kinds[kind] += 1
            try:
                with trio.fail_after(CLIENT_LIFETIME_LIMIT):
                    await self.churn_client(kind)
            except (
                trio_websocket.ConnectionClosed,
                trio_websocket.HandshakeError,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
            ):
                pass  # the engine closing a misbehaving client on it is the point
            except trio.TooSlowError:
                self.client_errors[f"{kind}: still open after {CLIENT_LIFETIME_LIMIT} s"] += 1

    async def churn(self, until: float) -> None:
        limiter = trio.CapacityLimiter(MAX_CONCURRENT)
        async with trio.open_nursery() as nursery:
            while trio.current_time() < until:
                await limiter.acquire()  # bounded: at most MAX_CONCURRENT at once
                limiter.release()
                nursery.start_soon(self.one_churn, self.rng.choice(KINDS), limiter)
                await trio.sleep(SPAWN_EVERY)

    async def sampler(self) -> None:
        while True:
            await trio.sleep(SAMPLE_EVERY)
            await self.sample("churn")

    # ------------------------------------------------------------ the run

    async def run_clients(self) -> dict[str, Any]:
        with trio.fail_after(self.seconds + 120):
            async with trio.open_nursery() as nursery:
                await nursery.start(self.steady_client)
                await trio.sleep(WARM_UP)
                start = await self.sample("start")
                _, body = await http_get(self.port, "/metrics")
                metrics_start = parse_metrics(body.decode())
                async with trio.open_nursery() as churning:
                    churning.start_soon(self.sampler)
                    await self.churn(trio.current_time() + self.seconds)
                    churning.cancel_scope.cancel()
                await trio.sleep(SETTLE)
                end = await self.sample("end")
                _, body = await http_get(self.port, "/metrics")
                metrics_end = parse_metrics(body.decode())
                nursery.cancel_scope.cancel()
        return {
            "start": start,
            "end": end,
            "metrics_start": metrics_start,
            "metrics_end": metrics_end,
        }

    def run(self) -> dict[str, Any]:
        self.start_engine()
        try:
            measured = trio.run(self.run_clients)
        finally:
            exit_code, stderr = self.stop_engine()
        m0, m1 = measured["metrics_start"], measured["metrics_end"]
        start, end = measured["start"], measured["end"]
        churn_samples = [s for s in self.samples if s.get("phase") == "churn"] or [end]

        def counter(name: str) -> float:
            return m1.get(name, 0.0) - m0.get(name, 0.0)

        return {
            "seconds": self.seconds,
            "engine_exit_code": exit_code,
            "engine_stderr_lines": [line for line in stderr.splitlines() if line.strip()][-20:],
            "steady": {
                "frames": self.steady_frames,
                "first_frame": self.steady_first,
                "last_frame": self.steady_last,
                "gaps": self.steady_gaps[:20],
                "gap_count": len(self.steady_gaps),
                "dropped": self.steady_dropped,
                "frames_per_second": round(self.steady_frames / (end["t"] - self.steady_since), 2),
            },
            "churn_clients": dict(self.kinds),
            "churn_client_total": sum(self.kinds.values()),
            "client_errors": dict(self.client_errors),
            "engine": {
                "frames_captured": counter("phase4_frames_captured_total"),
                "spectra": counter("phase4_spectra_total"),
                "frames_dropped_by_stage": {
                    key.split('"')[1]: counter(key)
                    for key in m1
                    if key.startswith("phase4_frames_dropped_total{")
                },
                "clients_accepted": counter("phase4_clients_total"),
                "connections_refused": {
                    key.split('"')[1]: counter(key)
                    for key in m1
                    if key.startswith("phase4_connections_refused_total{")
                },
                "clients_connected_at_end": m1.get("phase4_clients_connected", -1),
            },
            "rss_kib": {
                "start": start["rss_kib"],
                "end": end["rss_kib"],
                "max": max(s["rss_kib"] for s in churn_samples),
            },
            "fds": {
                "start": start["fds"],
                "end": end["fds"],
                "max": max(s["fds"] for s in churn_samples),
            },
            "samples": [
                {k: v for k, v in s.items() if k != "t"} | {"at": round(s["t"] - start["t"], 1)}
                for s in self.samples
            ],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--json", metavar="FILE", help="write the full report here")
    args = parser.parse_args()
    report = Soak(args.seconds, args.seed).run()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    ok = (
        report["engine_exit_code"] == 0
        and report["steady"]["gap_count"] == 0
        and report["steady"]["dropped"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
