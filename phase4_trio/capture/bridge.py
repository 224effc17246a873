"""The one door from an audio thread into Trio.

Every source (PortAudio's callback thread or a synthetic source's thread) calls
:meth:`CaptureBridge.push`. It copies the block into a preallocated ring slot, notes it in
the bridge's inbox and, unless a wake-up is already pending, wakes the processor task through
a :class:`~.wakeup.Wakeup` (one byte on a socket pair, written without letting go of the GIL):
the audio thread never waits for Trio, and never hands the GIL over in the middle of a block.

The processor takes everything in the inbox at once (:meth:`CaptureBridge.receive`), so a
source that outruns Trio costs one wake-up per batch rather than one per block, and the
analysis runs over the batch in one go. At real time a batch is one block.

Taps (the WAV recorder) are fed inside :meth:`push` itself, before any point where a block
can be dropped, so they see every block even when Trio is stalled.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

import attrs
import numpy as np
import trio

from ..pipeline.messages import Block, FloatArray
from .wakeup import Wakeup

INPUT_OVERFLOW = 1 << 0
INPUT_UNDERFLOW = 1 << 1


class CaptureTap(Protocol):
    """Receives every captured block in the capture thread; must copy and return at once."""

    def write(self, block: FloatArray) -> None: ...


@attrs.define
class BridgeStats:
    """Counters kept by the bridge; ``captured == queued + ring_full + queue_full + late``
    once nothing waits in the inbox (``queued``: taken by the processor)."""

    captured: int = 0
    queued: int = 0
    ring_full: int = 0
    queue_full: int = 0
    late: int = 0
    overflows: int = 0
    underflows: int = 0
    tap_errors: int = 0
    callback_seconds: deque[float] = attrs.field(factory=lambda: deque(maxlen=4096))


class CaptureBridge:
    """Moves blocks from any thread into Trio without ever blocking the thread.

    A context manager: leaving it releases the wake-up socket, once no source runs.
    """

    def __init__(self, *, block_size: int, channels: int, slots: int, queue_size: int) -> None:
        self.block_size = block_size
        self.channels = channels
        self.slots = slots
        self.queue_size = queue_size
        self.stats = BridgeStats()
        self._ring = np.zeros((slots, block_size, channels), dtype=np.float32)
        self._slots = [self._ring[slot] for slot in range(slots)]
        self._free: deque[int] = deque(range(slots))
        self._inbox: deque[tuple[int, int, float, int]] = deque()
        self._signalled = False
        self._wakeup = Wakeup()
        self._room = threading.Event()
        self._room_wanted = False
        self._taps: list[CaptureTap] = []
        self._closed = False

    def __enter__(self) -> CaptureBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self._wakeup.close()

    def add_tap(self, tap: CaptureTap) -> None:
        self._taps.append(tap)

    def remove_tap(self, tap: CaptureTap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def close(self) -> None:
        """After this, :meth:`push` returns at once; called when shutdown starts."""
        self._closed = True
        self._room.set()

    # ------------------------------------------------------------ the audio thread

    def push(self, block: np.ndarray, capture_time: float, status: int = 0) -> None:
        """Called from the audio thread. Never blocks, never raises."""
        if self._closed:
            return
        started = time.perf_counter()
        stats = self.stats
        try:
            stats.captured += 1
            if status:
                stats.overflows += bool(status & INPUT_OVERFLOW)
                stats.underflows += bool(status & INPUT_UNDERFLOW)
            for tap in self._taps:
                try:
                    tap.write(block)
                except Exception:
                    stats.tap_errors += 1
            if len(self._inbox) >= self.queue_size:
                stats.queue_full += 1
                return
            try:
                slot = self._free.popleft()
            except IndexError:
                stats.ring_full += 1
                return
            target = self._slots[slot]
            frames = min(len(block), self.block_size)
            try:
                if block.dtype == np.int32:
                    np.multiply(
                        block[:frames], 1.0 / 2147483648.0, out=target[:frames], casting="unsafe"
                    )
                else:
                    target[:frames] = block[:frames]
            except Exception:  # a block of the wrong shape: its slot stays free
                self._free.append(slot)
                raise
            if frames < self.block_size:
                target[frames:] = 0.0
            # Append first, then look: a receiver that has started taking the inbox has
            # already cleared the flag, so a block is never left behind unannounced.
            self._inbox.append((stats.captured - 1, slot, capture_time, status))
            if not self._signalled:
                self._signalled = True
                self._wakeup.signal()
        except Exception:
            stats.late += 1
        finally:
            stats.callback_seconds.append(time.perf_counter() - started)

    def congested(self) -> bool:
        """True when half the ring or half the inbox is taken.

        An unpaced source (the throughput benchmark) waits while this holds, so it runs as
        fast as the pipeline accepts blocks instead of as fast as the bridge can drop them.
        """
        taken = self.slots - len(self._free)
        return taken > self.slots // 2 or len(self._inbox) > self.queue_size // 2

    def wait_for_room(self, timeout: float) -> None:
        """From the source thread: sleep while :meth:`congested` (at most ``timeout``)."""
        self._room.clear()
        self._room_wanted = True
        try:
            if self.congested() and not self._closed:
                self._room.wait(timeout)
        finally:
            self._room_wanted = False

    # ------------------------------------------------------------ the Trio thread

    async def receive(self) -> list[Block]:
        """Every block waiting, oldest first; waits for one when there is none.

        Each block's ``data`` lives in a ring slot until :meth:`release` gives it back.
        """
        inbox = self._inbox
        if inbox:
            await trio.lowlevel.checkpoint()
        while True:
            # Clear, then look: a block appended after this signals again, and one appended
            # before it is seen now. Cleared on every look, so a push that was preempted
            # between reading the flag and setting it can never leave it set with no byte
            # coming, which would strand every later block.
            self._signalled = False
            if inbox:
                break
            await self._wakeup.wait()
        slots = self._slots
        blocks = [
            Block(index, slot, slots[slot], capture_time, status)
            for index, slot, capture_time, status in (inbox.popleft() for _ in range(len(inbox)))
        ]
        self.stats.queued += len(blocks)
        return blocks

    def release(self, blocks: list[Block]) -> None:
        """Give the blocks' ring slots back, once their data has been copied or used."""
        free = self._free
        for block in blocks:
            free.append(block.slot)
        if self._room_wanted and not self.congested():
            self._room.set()

    def discard_waiting(self) -> None:
        """Shutdown: what still waits in the inbox is counted ``late`` and its slots freed."""
        inbox = self._inbox
        while inbox:
            _index, slot, _time, _status = inbox.popleft()
            self._free.append(slot)
            self.stats.late += 1

    @property
    def dropped(self) -> int:
        return self.stats.ring_full + self.stats.queue_full + self.stats.late
