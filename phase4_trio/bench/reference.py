"""What this machine charges for the bare minimum of the real-time design, measured without
the engine, in the same run as the engine's own figures.

- **Wake-up floor**: a thread paced at the block rate that wakes a Trio task through the
  run's ``TrioToken`` (``run_sync_soon``, coalesced, exactly as the capture bridge does),
  with no audio, no DSP and no client: its CPU share of one core, and how long each call
  takes in that thread (what the Shape charges every callback that wakes Trio: the call
  writes to Trio's wake-up socket, letting go of the GIL, and the Trio thread it woke may
  take the GIL first).
- **Copy floor**: a thread paced at the block rate that copies one block into a
  preallocated slot and does nothing else: its CPU share (what an engine that rests costs
  at the very least) and the time of each copy (what a callback costs at the very least:
  on a virtual machine the first microseconds after a wake-up run several times slower).
- **Device floor**: a PortAudio input stream on the default device (the virtual one in the
  bench) whose callback copies each block into a slot and does nothing else: what capturing
  from that device costs at the very least, before any of the engine's own work.
- **Cold-wake factor**: one block's analysis timed back to back, then right after a block
  period's sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import trio

from ..capture.synthetic import run_paced
from ..dsp import Analyzer
from .client import percentiles


async def _measure_thread(
    name: str,
    tick: Callable[[], None],
    rate: float,
    seconds: float,
    cpu_seconds: Callable[[], float],
) -> float:
    """CPU share (% of one core) of this process while ``tick`` runs paced in a thread."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_paced, args=(1.0 / rate, stop, tick), name=name, daemon=True
    )
    thread.start()
    try:
        await trio.sleep(min(1.0, seconds / 2))
        cpu, started = cpu_seconds(), time.monotonic()
        await trio.sleep(seconds)
        return (cpu_seconds() - cpu) / (time.monotonic() - started) * 100
    finally:
        stop.set()
        await trio.to_thread.run_sync(thread.join)


async def wake_floor(
    rate: float, seconds: float, cpu_seconds: Callable[[], float]
) -> dict[str, Any]:
    """CPU share of a paced thread waking a Trio task through the token ``rate`` times a
    second (coalesced as the bridge does: no new call while one is pending)."""
    token = trio.lowlevel.current_trio_token()
    woken = trio.Event()
    counts = {"woken": 0, "pending": 0}

    def wake() -> None:
        counts["pending"] = 0
        counts["woken"] += 1
        woken.set()

    durations: list[float] = []

    def tick() -> None:
        if not counts["pending"]:
            counts["pending"] = 1
            started = time.perf_counter()
            token.run_sync_soon(wake, idempotent=True)
            durations.append(time.perf_counter() - started)

    async def task() -> None:
        nonlocal woken
        while True:
            await woken.wait()
            woken = trio.Event()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(task)
        first = counts["woken"]
        started = time.monotonic()
        cpu = await _measure_thread("phase4-bench-wake", tick, rate, seconds, cpu_seconds)
        elapsed = time.monotonic() - started
        nursery.cancel_scope.cancel()
    return {
        "cpu_percent": cpu,
        "wakeups_per_second": (counts["woken"] - first) / elapsed,
        "call_us": percentiles(durations, 1e6),
    }


async def copy_floor(
    rate: float, block_size: int, seconds: float, cpu_seconds: Callable[[], float]
) -> dict[str, Any]:
    """CPU share of a paced thread copying one block into a slot per tick, and the time of
    each copy in µs (timed as the bridge times a push)."""
    block = np.random.default_rng(0).uniform(-0.5, 0.5, (block_size, 1)).astype(np.float32)
    ring = np.zeros((8, block_size, 1), dtype=np.float32)
    durations: list[float] = []
    count = [0]

    def tick() -> None:
        started = time.perf_counter()
        ring[count[0] % 8] = block
        count[0] += 1
        durations.append(time.perf_counter() - started)

    cpu = await _measure_thread("phase4-bench-copy", tick, rate, seconds, cpu_seconds)
    return {"cpu_percent": cpu, "copy_us": percentiles(durations, 1e6)}


async def device_floor(
    block_size: int, sample_rate: int, seconds: float, cpu_seconds: Callable[[], float]
) -> dict[str, Any]:
    """CPU share while a PortAudio input stream runs a copy-only callback."""
    from ..capture.devices import load_sounddevice

    sd = load_sounddevice()
    ring = np.zeros((8, block_size, 1), dtype=np.float32)
    count = [0]

    def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        ring[count[0] % 8, :frames] = indata
        count[0] += 1

    stream = sd.InputStream(
        channels=1, samplerate=sample_rate, blocksize=block_size, dtype="float32",
        latency="low", callback=callback,
    )  # fmt: skip
    await trio.to_thread.run_sync(stream.start)
    try:
        # as for the engine's windows: from the first block on (PulseAudio may take 2 s to
        # deliver it, and PortAudio spends CPU meanwhile), then a warm-up
        with trio.fail_after(10):
            while not count[0]:  # noqa: ASYNC110 (PortAudio's thread counts)
                await trio.sleep(0.05)
        await trio.sleep(min(1.0, seconds / 2))
        cpu, started, first = cpu_seconds(), time.monotonic(), count[0]
        await trio.sleep(seconds)
        elapsed = time.monotonic() - started
        return {
            "cpu_percent": (cpu_seconds() - cpu) / elapsed * 100,
            "callbacks_per_second": (count[0] - first) / elapsed,
        }
    finally:
        await trio.to_thread.run_sync(stream.close)


def cold_wake(block_size: int, sample_rate: int, repeats: int = 300) -> dict[str, Any]:
    """One block's analysis, p50 in µs: back to back, and right after a block period's sleep."""
    analyzer = Analyzer(block_size, sample_rate, "hann")
    block = np.random.default_rng(0).uniform(-0.5, 0.5, (1, block_size, 1)).astype(np.float32)
    period = block_size / sample_rate

    def timed(pause: float) -> dict[str, float | int]:
        durations = []
        for _ in range(repeats):
            if pause:
                time.sleep(pause)
            started = time.perf_counter()
            analyzer.process_batch(block)
            durations.append(time.perf_counter() - started)
        return percentiles(durations, 1e6)

    timed(0.0)  # warm up
    warm, cold = timed(0.0), timed(period)
    return {"warm_us": warm, "after_sleep_us": cold, "factor": cold["p50"] / warm["p50"]}
