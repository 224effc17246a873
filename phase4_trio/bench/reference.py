"""What this machine charges for a wake-up, measured without the engine.

Two figures that put the engine's own in context. The **wake-up floor** is the CPU share of
the bare minimum of the real-time design: a thread paced at the block rate that signals a Trio
task through the same :class:`~phase4_trio.capture.wakeup.Wakeup`, no audio, no DSP, no
client. The **cold-wake factor** is one block's analysis timed back to back, then right after
a block period's sleep: on a virtual machine the first tens of microseconds after a wake-up
run several times slower, and every real-time frame starts with one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import trio

from ..capture.wakeup import Wakeup
from ..dsp import Analyzer
from .client import percentiles


async def wake_floor(rate: float, seconds: float, cpu_seconds: Any) -> dict[str, float]:
    """CPU share of one core spent by a paced thread waking a Trio task ``rate`` times a
    second."""
    wakeup = Wakeup()
    stop = threading.Event()
    woken = 0

    def pace() -> None:
        period = 1.0 / rate
        start = time.monotonic()
        ticks = 0
        while not stop.is_set():
            delay = start + ticks * period - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.05))
                continue
            wakeup.signal()
            ticks += 1

    async def wake() -> None:
        nonlocal woken
        while True:
            await wakeup.wait()
            woken += 1

    thread = threading.Thread(target=pace, name="phase4-bench-floor", daemon=True)
    thread.start()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wake)
            await trio.sleep(min(1.0, seconds / 2))
            cpu, started, first = cpu_seconds(), time.monotonic(), woken
            await trio.sleep(seconds)
            elapsed = time.monotonic() - started
            result = {
                "cpu_percent": (cpu_seconds() - cpu) / elapsed * 100,
                "wakeups_per_second": (woken - first) / elapsed,
            }
            nursery.cancel_scope.cancel()
    finally:
        stop.set()
        await trio.to_thread.run_sync(thread.join)
        wakeup.close()
    return result


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
