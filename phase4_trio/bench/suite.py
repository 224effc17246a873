"""The measurements: a real engine in this process, real WebSocket clients in another.

Every scenario starts a fresh :class:`~phase4_trio.engine.Engine` on an ephemeral port with a
synthetic source, and a client process (:mod:`.client`) that connects N clients and reports
what each of them received. The engine's own cost is read from this process (``getrusage``
deltas, ``/proc/self/statm``), which during a window does nothing but run the engine and wait
for one line from the client process.

Scenarios, in order (each figure keyed as in :data:`report.CHECKS`):

``idle``
    paced tone source, no client: the CPU share of an engine that rests with capture kept
    on (``input.standby`` false), then of one in standby (capture paused, the default); each
    time the first frame's latency for a client connecting to it, a few times over.
``realtime``
    paced tone source; 1, then 10 ``trio-websocket`` clients, then 100 clients of the
    many-client implementation (``raw`` by default): callback time (over all three windows),
    latency with 1 and 100 clients, CPU and RSS with 1 and 10 clients; then one client at the
    page's rate (``?fps=60``).
``fanout``
    paced; clients added in steps (1, 10, 50, 100, 200, 300, … up to ``fanout_max``) until a
    step fails: every client must receive every frame (no ``frameCount`` gap, ``dropped``
    unchanged), at least :data:`REALTIME_SHARE` of real time, with latency p99 under
    :data:`REALTIME_LATENCY_MS`. A failed step is tried once more before it counts.
``throughput``
    unpaced source (as fast as the bridge takes blocks), one client: frames per second that
    reach the client, and frames per CPU-second of the engine.
``reference`` (first, before any engine starts)
    what this machine charges for a wake-up and a copy: :mod:`.reference`.
``analysis`` (next, no engine either)
    what each stage of one block's analysis costs at the engine's default config, the tempo
    and beat tracker among them: :func:`.analysis.analysis_breakdown`; then the analysis, six
    views and a frame for each of 3 and of 100 clients spread over three layouts
    (:func:`.analysis.analysis_cost`): encode-once makes the 100 cost about what the 3 do.
``peer``
    cava and the engine on the same virtual device with the same signal playing
    (:mod:`.peer`): cava at 60 updates a second and at the block rate; the engine with no
    client (as ``idle``, on the device: PortAudio's stream stopped and restarted), one client
    at full rate, and one client at the page's rate. Skipped, with the
    reason, where cava or the virtual device is missing.
``soak`` (``--soak`` only)
    paced, 10 clients, RSS sampled every few seconds for ``soak_seconds``.

``realtime``, ``throughput`` and ``fanout`` run in that order, each for every wire format
(``json``, then ``f32`` when the binary encoder is installed), except that callback time is
only measured once: the callback never sees the format.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
import trio_websocket

from ..capture import CaptureState, pulse
from ..config import (
    Config,
    Duration,
    analysis_fft_size,
    deep_merge,
    structure_config,
    unstructure_config,
)
from ..engine import Engine
from . import peer
from .analysis import analysis_breakdown, analysis_cost
from .client import percentiles
from .options import BenchOptions
from .reference import cold_wake, copy_floor, device_floor, wake_floor

FRAME_RATE = 44100 / 256
PAGE_FPS = 60
#: What the page asks for by default (static/connection.js): binary frames at its display rate,
#: the fine spectrum's bins.
PAGE_QUERY = f"format=f32&fps={PAGE_FPS}&resolution=fine"
FIRST_FRAME_TRIALS = 10
# The standby rows' linger: short, so each first-frame trial need not wait the default 2 s.
STANDBY_AFTER = "0.5s"
FANOUT_STEPS = (1, 10, 50, 100, 200, 300)
FANOUT_INCREMENT = 100
REALTIME_SHARE = 0.95
REALTIME_LATENCY_MS = 100.0
SETTLE_SECONDS = 0.5


class BenchError(RuntimeError):
    """The suite could not measure something (a client process died, clients could not connect)."""


Progress = Callable[[str], None]


def binary_available() -> bool:
    try:
        from ..wire import p4sp  # noqa: F401
    except ImportError:
        return False
    return True


def bench_config(source: str, *, standby: bool = False) -> Config:
    """Defaults, an ephemeral port, room for every fan-out step; capture always on unless
    ``standby`` (then after :data:`STANDBY_AFTER`, so the bench need not wait the default)."""
    overrides: dict[str, Any] = {
        "log_level": "warning",
        "input": {"source": source, "standby": standby, "standby_after": STANDBY_AFTER},
        "transport": {"websocket_address": "127.0.0.1:0", "max_clients": 8192},
    }
    return structure_config(deep_merge(unstructure_config(Config()), overrides))


# ------------------------------------------------------------------ process figures


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1048576
    except (OSError, ValueError, IndexError):  # not Linux: the peak is the best there is
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1048576 if sys.platform == "darwin" else 1024)


@attrs.define
class Window:
    """Engine-side figures over one measurement window."""

    engine: Engine
    started: float = 0.0
    cpu: float = 0.0
    processed: int = 0
    captured: int = 0

    def open(self) -> None:
        self.started = time.monotonic()
        self.cpu = cpu_seconds()
        assert self.engine.processor is not None and self.engine.bridge is not None
        self.processed = self.engine.processor.stats.processed
        self.captured = self.engine.bridge.stats.captured

    def close(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.started
        used = cpu_seconds() - self.cpu
        assert self.engine.processor is not None and self.engine.bridge is not None
        return {
            "seconds": elapsed,
            "cpu_seconds": used,
            "cpu_percent": 100.0 * used / elapsed,
            "rss_mb": rss_mb(),
            "processed_fps": (self.engine.processor.stats.processed - self.processed) / elapsed,
            "captured_fps": (self.engine.bridge.stats.captured - self.captured) / elapsed,
        }


# ------------------------------------------------------------------ the client process


class ClientProcess:
    """Drives one ``python -m phase4_trio.bench.client`` over its stdin/stdout."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._buffer = b""
        self.connected = 0

    async def _send(self, **command: Any) -> None:
        assert self._process.stdin is not None
        await self._process.stdin.send_all(orjson.dumps(command) + b"\n")

    async def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self._process.stdout.receive_some(1 << 16)
            if not chunk:
                raise BenchError("the client process exited unexpectedly")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = orjson.loads(line)
        return message

    async def connect(self, clients: int) -> dict[str, Any]:
        await self._send(cmd="connect", clients=clients)
        answer = await self._read()
        self.connected = int(answer["clients"])
        if self.connected < clients:
            errors = "; ".join(answer.get("errors") or []) or "no error reported"
            raise BenchError(f"only {self.connected} of {clients} clients connected: {errors}")
        return answer

    async def measure(self, seconds: float) -> dict[str, Any]:
        await self._send(cmd="measure", seconds=seconds)
        return await self._read()

    async def quit(self) -> None:
        with trio.move_on_after(5):
            try:
                await self._send(cmd="quit")
                await self._process.wait()
                return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        self._process.kill()
        await self._process.wait()


@asynccontextmanager
async def client_process(url: str, implementation: str) -> AsyncIterator[ClientProcess]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "phase4_trio.bench.client", url, implementation],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    driver = ClientProcess(process)
    try:
        yield driver
    finally:
        with trio.CancelScope(shield=True):
            await driver.quit()


@asynccontextmanager
async def running_engine(
    source: str, *, paced: bool, standby: bool = False
) -> AsyncIterator[Engine]:
    engine = Engine(bench_config(source, standby=standby), paced=paced)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        try:
            yield engine
        finally:
            nursery.cancel_scope.cancel()


def ws_url(engine: Engine, fmt: str) -> str:
    assert engine.urls is not None
    return engine.urls[1] + ("" if fmt == "json" else f"?format={fmt}")


def page_url(engine: Engine) -> str:
    """The stream the page opens by default."""
    assert engine.urls is not None
    return f"{engine.urls[1]}?{PAGE_QUERY}"


# ------------------------------------------------------------------ judging a window


def clients_summary(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Totals over the clients of one window, and whether they all kept real time."""
    clients: list[dict[str, Any]] = result["clients"]
    window = float(result["seconds"])
    expected = FRAME_RATE * window
    received = [c["received"] for c in clients] or [0]
    latency = result["latency_ms"]
    summary = {
        "clients": len(clients),
        "seconds": window,
        "min_received": min(received),
        "max_received": max(received),
        "expected": expected,
        "gaps": sum(c["gaps"] + c["reordered"] for c in clients),
        "missing": sum(c["missing"] for c in clients),
        "dropped": sum(c["dropped"] for c in clients),
        "closed": sum(1 for c in clients if c["closed"]),
        "bad": sum(c["bad"] for c in clients),
        "latency_ms": latency,
        "client_cpu_percent": result.get("client_cpu_percent", 0.0),
    }
    summary["realtime"] = bool(
        clients
        and summary["gaps"] == 0
        and summary["missing"] == 0
        and summary["dropped"] == 0
        and summary["closed"] == 0
        and summary["bad"] == 0
        and min(received) >= REALTIME_SHARE * expected
        and latency["p99"] <= REALTIME_LATENCY_MS
    )
    return summary


# ------------------------------------------------------------------ scenarios


class Suite:
    def __init__(self, options: BenchOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        self.warmup = min(1.0, max(0.3, options.seconds / 2))

    async def realtime(self, fmt: str, *, callbacks: bool) -> dict[str, Any]:
        seconds = self.options.seconds
        out: dict[str, Any] = {}
        async with running_engine(self.options.source, paced=True) as engine:
            url = ws_url(engine, fmt)
            durations: list[float] = []
            engine.callback_durations = durations
            async with client_process(url, "trio-websocket") as clients:
                for count in (1, 10):
                    self.progress(f"{fmt}: real time, {count} client(s), {seconds:g} s")
                    out[str(count)] = await self._window(
                        engine, clients, count, "trio-websocket", callbacks=callbacks
                    )
            self.progress(f"{fmt}: real time, 100 clients ({self.options.client}), {seconds:g} s")
            async with client_process(url, self.options.client) as clients:
                out["100"] = await self._window(
                    engine, clients, 100, self.options.client, callbacks=callbacks
                )
            if callbacks:
                out["callback_us"] = percentiles(durations, 1e6)
                self.progress(f"real time, the page's client ({PAGE_QUERY}), {seconds:g} s")
                async with client_process(page_url(engine), "raw") as clients:
                    out["page"] = await self._window(engine, clients, 1, "raw", callbacks=False)
        return out

    async def idle(self) -> dict[str, Any]:
        """The engine with nobody listening, capture kept on (resting) and in standby (the
        default); each time the first frame of a client that connects."""
        return await self._idle(self.options.source)

    async def _idle(self, source: str) -> dict[str, Any]:
        seconds = self.options.seconds
        self.progress(f"idle [{source}]: no client, capture on, {seconds:g} s")
        async with running_engine(source, paced=True) as engine:
            await self._settle(engine)
            window = Window(engine)
            window.open()
            await trio.sleep(seconds)
            figures = window.close()
            self.progress(f"idle [{source}]: first frame after rest, {FIRST_FRAME_TRIALS} clients")
            first = await first_frame_latency(engine, FIRST_FRAME_TRIALS)
        self.progress(f"idle [{source}]: no client, standby, {seconds:g} s")
        async with running_engine(source, paced=True, standby=True) as engine:
            await standing_by(engine)
            window = Window(engine)
            window.open()
            await trio.sleep(seconds)
            standby = window.close()
            self.progress(
                f"idle [{source}]: first frame after standby, {FIRST_FRAME_TRIALS} clients"
            )
            first_after_standby = await first_frame_latency(
                engine, FIRST_FRAME_TRIALS, standby=True
            )
        return {
            "engine": figures,
            "first_frame_ms": first,
            "standby": standby,
            "first_frame_standby_ms": first_after_standby,
        }

    async def peer(self) -> dict[str, Any]:
        """cava and the engine on the same virtual device, the same signal playing."""
        reason = peer.missing()
        if reason is not None:
            self.progress(f"peer: skipped ({reason})")
            return {"skipped": reason}
        seconds = self.options.seconds
        out: dict[str, Any] = {}
        async with peer.signal_playing():
            for rate in (PAGE_FPS, round(FRAME_RATE)):
                self.progress(f"peer: cava at {rate} updates/s, {seconds:g} s")
                out[f"cava_{rate}"] = await peer.measure_cava(rate, seconds)
            self.progress(f"peer: phase4 on the device, no client / 1 client / page, {seconds:g} s")
            out["phase4"] = await self._device_windows()
            self.progress(f"peer: device floor (a copy-only PortAudio callback), {seconds:g} s")
            out["device_floor"] = await device_floor(256, 44100, seconds, cpu_seconds)
        out["cava_max"] = out[f"cava_{round(FRAME_RATE)}"]
        return out

    async def _device_windows(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in (pulse.virtual_env(os.environ) or {}).items():
            os.environ.setdefault(name, value)  # before PortAudio is first loaded
        idle = await self._idle("device")
        out["idle"] = idle["engine"]
        out["standby"] = idle["standby"]
        out["first_frame_standby_ms"] = idle["first_frame_standby_ms"]
        async with running_engine("device", paced=True) as engine:
            await self._settle(engine)
            for name, url in (("full", ws_url(engine, "json")), ("page", page_url(engine))):
                async with client_process(url, "raw") as clients:
                    measured = await self._window(engine, clients, 1, "raw", callbacks=False)
                measured["updates_per_second"] = measured["min_received"] / measured["seconds"]
                measured["cpu_us_per_update"] = (
                    1e6 * measured["engine"]["cpu_seconds"] / max(1, measured["min_received"])
                )
                out[name] = measured
        return out

    async def _settle(self, engine: Engine) -> None:
        """Wait for the first captured block, then warm up: a PortAudio stream on PulseAudio
        takes up to 2 s to deliver its first block, and spends CPU meanwhile that is not the
        engine's steady state."""
        assert engine.bridge is not None
        with trio.fail_after(10):
            while not engine.bridge.stats.captured:  # noqa: ASYNC110 (the audio thread counts)
                await trio.sleep(0.05)
        await trio.sleep(self.warmup)

    async def _window(
        self, engine: Engine, clients: ClientProcess, count: int, client: str, *, callbacks: bool
    ) -> dict[str, Any]:
        """Connect up to ``count`` clients, warm up, then measure one real-time window."""
        seconds = self.options.seconds
        await clients.connect(count)
        await trio.sleep(self.warmup)
        window = Window(engine)
        window.open()
        engine.keep_callback_durations = callbacks
        result = await clients.measure(seconds)
        engine.keep_callback_durations = False
        return {"engine": window.close(), **clients_summary(result, seconds), "client": client}

    async def fanout(self, fmt: str) -> dict[str, Any]:
        seconds = self.options.seconds
        steps: list[dict[str, Any]] = []
        best = 0
        async with running_engine(self.options.source, paced=True) as engine:
            async with client_process(ws_url(engine, fmt), self.options.client) as clients:
                for count in fanout_steps(self.options.fanout_max):
                    self.progress(f"{fmt}: fan-out, {count} clients, {seconds:g} s")
                    try:
                        await clients.connect(count)
                    except BenchError as error:
                        steps.append({"clients": count, "realtime": False, "error": str(error)})
                        break
                    ok = False
                    for attempt in (1, 2):
                        await trio.sleep(SETTLE_SECONDS)
                        window = Window(engine)
                        window.open()
                        summary = clients_summary(await clients.measure(seconds), seconds)
                        summary.update(attempt=attempt, engine=window.close())
                        steps.append(summary)
                        if summary["realtime"]:
                            ok = True
                            break
                    if not ok:
                        break
                    best = count
        return {"max_clients": best, "steps": steps, "client": self.options.client}

    async def throughput(self, fmt: str) -> dict[str, Any]:
        seconds = self.options.seconds
        self.progress(f"{fmt}: unpaced throughput, 1 client, {seconds:g} s")
        async with running_engine(self.options.source, paced=False) as engine:
            async with client_process(ws_url(engine, fmt), self.options.client) as clients:
                await clients.connect(1)
                await trio.sleep(self.warmup)
                window = Window(engine)
                window.open()
                result = await clients.measure(seconds)
                engine_figures = window.close()
        summary = clients_summary(result, seconds)
        return {
            "client_fps": summary["min_received"] / summary["seconds"],
            "frames_per_cpu_second": summary["min_received"] / engine_figures["cpu_seconds"],
            "engine": engine_figures,
            "dropped": summary["dropped"],
            "missing": summary["missing"],
            "latency_ms": summary["latency_ms"],
            "client_cpu_percent": summary["client_cpu_percent"],
            "client": self.options.client,
        }

    async def soak(self) -> dict[str, Any]:
        total = self.options.soak_seconds
        interval = max(1.0, min(10.0, total / 60))
        self.progress(f"soak: real time, 10 clients, {total:g} s")
        samples: list[tuple[float, float]] = []
        async with running_engine(self.options.source, paced=True) as engine:
            async with client_process(ws_url(engine, "json"), "trio-websocket") as clients:
                await clients.connect(10)
                window = Window(engine)
                window.open()
                started = time.monotonic()
                async with trio.open_nursery() as nursery:

                    async def sample() -> None:
                        while True:
                            samples.append((time.monotonic() - started, rss_mb()))
                            await trio.sleep(interval)

                    nursery.start_soon(sample)
                    result = await clients.measure(total)
                    nursery.cancel_scope.cancel()
                samples.append((time.monotonic() - started, rss_mb()))
                engine_figures = window.close()
        # Growth is counted from the end of the first tenth (imports, arenas and caches warm).
        settled = [rss for at, rss in samples if at >= total / 10] or [samples[-1][1]]
        return {
            "seconds": total,
            "rss_start_mb": settled[0],
            "rss_end_mb": samples[-1][1],
            "rss_max_mb": max(rss for _, rss in samples),
            "growth_mb": samples[-1][1] - settled[0],
            "samples": [[round(at, 1), round(rss, 2)] for at, rss in samples],
            "engine": engine_figures,
            **{
                k: v
                for k, v in clients_summary(result, total).items()
                if k in ("dropped", "missing", "gaps", "min_received", "expected", "latency_ms")
            },
        }


async def standing_by(engine: Engine) -> None:
    """Wait for the engine to pause capture (at most ten times :data:`STANDBY_AFTER`)."""
    with trio.fail_after(10 * Duration.parse(STANDBY_AFTER).seconds):
        while engine.source.state is not CaptureState.STANDBY:  # noqa: ASYNC110 (polled)
            await trio.sleep(0.05)


async def first_frame_latency(
    engine: Engine, trials: int, *, standby: bool = False
) -> dict[str, float | int]:
    """Milliseconds from a finished handshake to the first message, for a client that
    connects to a resting engine, or with ``standby`` to one whose capture is paused (each
    trial waits for the engine to rest or pause again)."""
    latencies = []
    for _ in range(trials):
        await trio.sleep(0.3)
        if standby:
            await standing_by(engine)
        assert engine.bridge is not None and not engine.bridge.listening
        async with trio_websocket.open_websocket_url(ws_url(engine, "json")) as ws:
            started = time.perf_counter()
            await ws.get_message()
            latencies.append(time.perf_counter() - started)
    return percentiles(latencies, 1e3)


def fanout_steps(limit: int) -> list[int]:
    steps = [n for n in FANOUT_STEPS if n <= limit]
    n = FANOUT_STEPS[-1] + FANOUT_INCREMENT
    while n <= limit:
        steps.append(n)
        n += FANOUT_INCREMENT
    if limit not in steps and limit > 0:
        steps.append(limit)
    return steps


async def run_suite(options: BenchOptions, progress: Progress) -> dict[str, Any]:
    """Every scenario; the result is what :mod:`.report` turns into checks, a table and JSON."""
    suite = Suite(options, progress)
    formats = [f for f in options.formats if f == "json" or binary_available()]
    progress(f"reference: bare wake-up, bare copy, cold-wake factor, {options.seconds:g} s")
    results: dict[str, Any] = {
        "formats": {},
        "reference": {
            "wake_floor": await wake_floor(FRAME_RATE, options.seconds, cpu_seconds),
            "copy_floor": await copy_floor(FRAME_RATE, 256, options.seconds, cpu_seconds),
            "cold_wake": cold_wake(256, 44100),
        },
    }
    config = bench_config(options.source)
    fft_size = analysis_fft_size(config)
    progress(f"analysis: CPU per block of each stage, tempo + beat included, fft_size {fft_size}")
    results["analysis"] = analysis_breakdown(
        fft_size=fft_size,
        block_size=config.input.buffer_size,
        sample_rate=config.input.sample_rate,
    )
    progress("analysis: 3 and 100 clients' frames on three layouts (encode-once)")
    results["analysis_clients"] = analysis_cost(fft_size=fft_size, seconds=1.0, repeats=2)
    results["idle"] = await suite.idle()
    per_format: dict[str, dict[str, Any]] = {fmt: {} for fmt in formats}
    # Real time first for every format: its RSS must not carry what hundreds of fan-out
    # clients left in the allocator's arenas.
    for index, fmt in enumerate(formats):
        realtime = await suite.realtime(fmt, callbacks=index == 0)
        if "callback_us" in realtime:
            results["callback_us"] = realtime.pop("callback_us")
        per_format[fmt]["realtime"] = realtime
    for fmt in formats:
        per_format[fmt]["throughput"] = await suite.throughput(fmt)
    for fmt in formats:
        per_format[fmt]["fanout"] = await suite.fanout(fmt)
    results["formats"] = per_format
    results["binary_available"] = binary_available()
    if options.peer:
        results["peer"] = await suite.peer()
    if options.nats:
        from .nats import nats_bench

        results["nats"] = await nats_bench(
            options.nats, seconds=options.seconds, fanout_max=options.fanout_max, progress=progress
        )
    if options.soak:
        results["soak"] = await suite.soak()
    return results
