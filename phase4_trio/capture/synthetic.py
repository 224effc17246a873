"""Synthetic sources: a tone, white noise, a looped WAV file.

Each runs in its own thread and enters through the same :class:`CaptureBridge` as the
device, so the whole pipeline is exercised exactly as with a microphone. Pacing is against
absolute deadlines (``start + n * period``), so a late wake-up shortens the next sleep
instead of accumulating lag over minutes.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import trio

from .. import metrics as m
from ..errors import Phase4Error
from ..samples import FloatArray
from ..wav import WavData, decode
from .bridge import CaptureBridge
from .state import CaptureState

MAX_SLEEP = 0.05
# In standby the thread waits for the wish to resume, and looks at the stop flag this often
# (stopping also wakes it: :meth:`SyntheticSource.run`).
STANDBY_SLEEP = 1.0
UNPACED_BATCH = 16


def run_paced(
    period: float,
    stop: threading.Event,
    tick: Callable[[], None],
    awake: threading.Event | None = None,
) -> None:
    """Call ``tick`` every ``period`` seconds on an absolute grid until ``stop`` is set.

    A late wake-up shortens the next sleep instead of accumulating lag; after a stall of over
    a second the grid restarts from now rather than catching up in a burst. A plain sleep
    costs less CPU than an Event wait here; the stop flag is seen within :data:`MAX_SLEEP`.
    While ``awake`` is clear nothing is called (standby; whoever sets ``stop`` then sets
    ``awake`` too, or the stop is seen within :data:`STANDBY_SLEEP`); once set, the grid
    restarts from now with a tick at once.
    """
    start = time.monotonic()
    ticks = 0
    while not stop.is_set():
        if awake is not None and not awake.is_set():
            if awake.wait(STANDBY_SLEEP):
                start, ticks = time.monotonic(), 0
            continue
        delay = start + ticks * period - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, MAX_SLEEP))
            continue
        if delay < -1.0:
            start -= delay
        tick()
        ticks += 1


class BlockGenerator(Protocol):
    """Fills a preallocated ``(frames, channels)`` buffer with the next frames: one block when
    paced, several blocks in a row when unpaced."""

    sample_rate: int
    channels: int

    def fill(self, out: FloatArray) -> None: ...


class ToneGenerator:
    """A phase-continuous sine; the phase is kept in float64 so it never drifts audibly.

    A block is ``sin(p + nω) = sin(p)·cos(nω) + cos(p)·sin(nω)``: two tables made once per
    block length, so a block costs two scaled adds instead of a sine per sample (the source
    thread's work is what an always-on engine pays per block with nobody listening)."""

    def __init__(self, frequency: float, amplitude: float, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._step = 2.0 * math.pi * frequency / sample_rate
        self._amplitude = amplitude
        self._phase = 0.0
        # cos(nω) and sin(nω) times the amplitude, and a scratch block, for one block length
        self._tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def fill(self, out: FloatArray) -> None:
        frames = len(out)
        if self._tables is None or len(self._tables[0]) != frames:
            ramp = np.arange(frames, dtype=np.float64) * self._step
            self._tables = (
                np.cos(ramp) * self._amplitude,
                np.sin(ramp) * self._amplitude,
                np.empty(frames, dtype=np.float64),
            )
        cos, sin, wave = self._tables
        np.multiply(cos, math.sin(self._phase), out=wave)
        wave += sin * math.cos(self._phase)
        out[:] = wave[:, None]
        self._phase = (self._phase + frames * self._step) % (2.0 * math.pi)


class NoiseGenerator:
    """Uniform white noise at half scale, seeded so runs are reproducible."""

    def __init__(self, sample_rate: int, channels: int, seed: int = 4) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._rng = np.random.default_rng(seed)

    def fill(self, out: FloatArray) -> None:
        self._rng.random(out.shape, dtype=np.float32, out=out)
        out -= 0.5


def read_wav(path: str | Path) -> WavData:
    """Decode a whole WAV file; any problem is one :class:`Phase4Error` line naming the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise Phase4Error(f"wav:{path}: cannot read ({error.strerror or error})") from None
    try:
        return decode(raw)
    except ValueError as error:
        raise Phase4Error(f"wav:{path}: not a usable WAV file ({error})") from None


class WavGenerator:
    """Loops a decoded WAV file block by block, wrapping around at the end."""

    def __init__(self, wav: WavData) -> None:
        self.sample_rate = wav.sample_rate
        self.channels = wav.channels
        self._frames = wav.frames
        self._position = 0

    def fill(self, out: FloatArray) -> None:
        needed = len(out)
        written = 0
        total = len(self._frames)
        while written < needed:
            take = min(needed - written, total - self._position)
            out[written : written + take] = self._frames[self._position : self._position + take]
            written += take
            self._position = (self._position + take) % total


class SyntheticSource:
    """Runs a generator in a thread, paced in real time (or as fast as the bridge takes it)."""

    def __init__(self, generator: BlockGenerator, block_size: int, *, paced: bool = True) -> None:
        self.generator = generator
        self.block_size = block_size
        self.paced = paced
        self.sample_rate = generator.sample_rate
        self.channels = generator.channels
        self.description = type(generator).__name__.removesuffix("Generator").lower()
        self.state = CaptureState.IDLE
        self._awake = threading.Event()
        self._awake.set()

    def metrics(self) -> list[m.Metric]:
        return []

    def standby(self, on: bool) -> None:
        if on:
            self._awake.clear()
            if self.state is CaptureState.RUNNING:
                self.state = CaptureState.STANDBY
        else:
            self._awake.set()
            if self.state is CaptureState.STANDBY:
                self.state = CaptureState.RUNNING

    async def run(
        self,
        bridge: CaptureBridge,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        stop = threading.Event()
        failed = trio.Event()
        errors: list[BaseException] = []
        token = trio.lowlevel.current_trio_token()

        def guarded() -> None:
            """A generator that raises ends the source task, so the engine fails loudly."""
            try:
                self._loop(bridge, stop)
            except BaseException as error:
                errors.append(error)
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(failed.set)

        thread = threading.Thread(target=guarded, name=f"phase4-{self.description}", daemon=True)
        thread.start()
        self.state = CaptureState.RUNNING
        task_status.started()
        try:
            await failed.wait()
            raise errors[0]
        finally:
            self.state = CaptureState.STOPPED
            stop.set()
            self._awake.set()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(thread.join, 2.0)

    def _loop(self, bridge: CaptureBridge, stop: threading.Event) -> None:
        if self.paced:
            self._paced(bridge, stop)
        else:
            self._unpaced(bridge, stop)

    def _paced(self, bridge: CaptureBridge, stop: threading.Event) -> None:
        buffer = np.zeros((self.block_size, self.channels), dtype=np.float32)

        def tick() -> None:
            self.generator.fill(buffer)
            bridge.push(buffer, time.time())

        run_paced(self.block_size / self.sample_rate, stop, tick, self._awake)

    def _unpaced(self, bridge: CaptureBridge, stop: threading.Event) -> None:
        """As fast as the pipeline takes blocks (the throughput benchmark): generated
        :data:`UNPACED_BATCH` at a time, one generator call, and pushed one by one."""
        buffer = np.zeros((UNPACED_BATCH * self.block_size, self.channels), dtype=np.float32)
        blocks = [buffer[i : i + self.block_size] for i in range(0, len(buffer), self.block_size)]
        while not stop.is_set():
            if not self._awake.wait(STANDBY_SLEEP):
                continue
            self.generator.fill(buffer)
            for block in blocks:
                while bridge.congested():
                    if stop.is_set():
                        return
                    bridge.wait_for_room(MAX_SLEEP)
                bridge.push(block, time.time())
