"""The peer: cava, the terminal visualizer, measured on the same virtual device in the same run.

Both programs read the same PulseAudio null sink's monitor while one signal plays into it
(pink noise from ``sox``, played by ``pacat``, both in processes of their own), so they do the
same job on the same input. cava writes raw binary bars to a pipe we only count; its CPU is
read from ``/proc/PID/stat`` (every thread of the process) over the window.

Everything here needs the virtual device (``scripts/virtual-audio start``), ``sox``,
``pacat`` and ``cava``; :func:`missing` names what is not there, and the suite skips the peer
rows with that reason printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ..capture import pulse

SINK = "vsink"
SOURCE = f"{SINK}.monitor"
BARS = 64
WARMUP_SECONDS = 2.0
_TICKS = os.sysconf("SC_CLK_TCK")
#: An hour of pink noise at 44.1 kHz, mono float32, on stdout.
SOX_PINK_NOISE = (
    *("sox", "-q", "-n", "-r", "44100", "-c", "1", "-t", "raw", "-e", "floating-point", "-b"),
    *("32", "-", "synth", "3600", "pinknoise", "vol", "0.3"),
)
PACAT_PLAY = ("pacat", "-p", "--rate=44100", "--channels=1", "--format=float32le")


def missing() -> str | None:
    """Why the peer rows cannot be measured here, or None when they can."""
    tools = [tool for tool in ("cava", "sox", "pacat") if shutil.which(tool) is None]
    if tools:
        return f"not installed: {', '.join(tools)} (apt-get install cava sox pulseaudio-utils)"
    if pulse.virtual_env(os.environ) is None:
        return "the virtual audio device is not running (scripts/virtual-audio start)"
    return None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@asynccontextmanager
async def signal_playing() -> AsyncIterator[None]:
    """Pink noise into the null sink (sox | pacat, real time) until the block exits."""
    environment = {**os.environ, **(pulse.virtual_env(os.environ) or {})}
    sox = subprocess.Popen(
        [*SOX_PINK_NOISE],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    pacat = subprocess.Popen(
        [*PACAT_PLAY, f"--device={SINK}"],
        stdin=sox.stdout,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    assert sox.stdout is not None
    sox.stdout.close()  # pacat holds the pipe now
    try:
        await trio.sleep(0.5)
        yield
    finally:
        for process in (pacat, sox):
            process.kill()
            process.wait()


async def measure_cava(framerate: int, seconds: float) -> dict[str, Any]:
    """cava at ``framerate`` on the monitor: CPU share of a core, updates a second, and CPU
    per update (µs)."""
    environment = {**os.environ, **(pulse.virtual_env(os.environ) or {})}
    with tempfile.TemporaryDirectory(prefix="phase4-cava-") as folder:
        config = Path(folder) / "config"
        config.write_text(
            f"[general]\nframerate = {framerate}\nbars = {BARS}\n"
            f"[input]\nmethod = pulse\nsource = {SOURCE}\n"
            "[output]\nmethod = raw\nraw_target = /dev/stdout\ndata_format = binary\n"
            "bit_format = 16bit\nchannels = mono\n"
        )
        process = await trio.lowlevel.open_process(
            ["cava", "-p", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
        )
        received = 0
        try:
            assert process.stdout is not None
            stdout = process.stdout

            async def count() -> None:
                nonlocal received
                while chunk := await stdout.receive_some(65536):
                    received += len(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(count)
                await trio.sleep(WARMUP_SECONDS)
                cpu, bytes_before, started = (
                    process_cpu_seconds(process.pid),
                    received,
                    time.monotonic(),
                )
                await trio.sleep(seconds)
                used = process_cpu_seconds(process.pid) - cpu
                elapsed = time.monotonic() - started
                updates = (received - bytes_before) / (2 * BARS)
                nursery.cancel_scope.cancel()
        finally:
            process.kill()
            await process.wait()
    return {
        "framerate": framerate,
        "cpu_percent": 100.0 * used / elapsed,
        "updates_per_second": updates / elapsed,
        "cpu_us_per_update": 1e6 * used / updates if updates else float("nan"),
    }
