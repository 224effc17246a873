"""The one door from an audio thread into Trio.

Every source (PortAudio's callback thread or a synthetic source's thread) calls
:meth:`CaptureBridge.push`. It copies the block into a preallocated ring slot, notes it in
the bridge's inbox and, unless a delivery is already pending, schedules one with
:meth:`trio.lowlevel.TrioToken.run_sync_soon`, which only appends to a queue: the audio
thread never waits for Trio. On the Trio side every block in the inbox is offered to the
processor with ``send_nowait``; when that channel is full the block is dropped and counted.

One pending delivery serves every block that arrives before it runs: ``run_sync_soon`` writes
to Trio's wake-up socket each time, a system call that also lets go of the GIL, so while
Trio is busy the callback skips it and stays short, and a source that outruns Trio costs
Trio one wake-up per batch instead of one per block.

Taps (the WAV recorder) are fed inside :meth:`push` itself, before any point where a block
can be dropped, so they see every block even when Trio is stalled.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

import attrs
import numpy as np
import trio

from ..pipeline.messages import Block, FloatArray

INPUT_OVERFLOW = 1 << 0
INPUT_UNDERFLOW = 1 << 1


class CaptureTap(Protocol):
    """Receives every captured block in the capture thread; must copy and return at once."""

    def write(self, block: FloatArray) -> None: ...


@attrs.define
class BridgeStats:
    """Counters kept by the bridge; ``captured == queued + ring_full + queue_full + late``."""

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
    """Moves blocks from any thread into a bounded Trio channel without ever blocking."""

    def __init__(
        self,
        *,
        block_size: int,
        channels: int,
        slots: int,
        send_channel: trio.MemorySendChannel[Block],
        token: trio.lowlevel.TrioToken,
    ) -> None:
        self.block_size = block_size
        self.channels = channels
        self.slots = slots
        self.stats = BridgeStats()
        self._ring = np.zeros((slots, block_size, channels), dtype=np.float32)
        self._slots = [self._ring[slot] for slot in range(slots)]
        self._free: deque[int] = deque(range(slots))
        self._inbox: deque[tuple[int, int, float, int]] = deque()
        self._scheduled = False
        self._send = send_channel
        self._token = token
        self._taps: list[CaptureTap] = []
        self._closed = False

    def add_tap(self, tap: CaptureTap) -> None:
        self._taps.append(tap)

    def remove_tap(self, tap: CaptureTap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def close(self) -> None:
        """After this, :meth:`push` returns at once; called when shutdown starts."""
        self._closed = True

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
            try:
                slot = self._free.popleft()
            except IndexError:
                stats.ring_full += 1
                return
            target = self._slots[slot]
            frames = min(len(block), self.block_size)
            if block.dtype == np.int32:
                np.multiply(
                    block[:frames], 1.0 / 2147483648.0, out=target[:frames], casting="unsafe"
                )
            else:
                target[:frames] = block[:frames]
            if frames < self.block_size:
                target[frames:] = 0.0
            # Append first, then look: a delivery that has started draining has already
            # cleared the flag, so a block is never left behind in the inbox.
            self._inbox.append((stats.captured - 1, slot, capture_time, status))
            if not self._scheduled:
                self._scheduled = True
                try:
                    self._token.run_sync_soon(self._drain)
                except trio.RunFinishedError:
                    self._closed = True
                    self._discard_inbox()
        except Exception:
            stats.late += 1
        finally:
            stats.callback_seconds.append(time.perf_counter() - started)

    def _discard_inbox(self) -> None:
        """Trio has gone: what waits in the inbox is late, and its slots are free again."""
        while True:
            try:
                _index, slot, _time, _status = self._inbox.popleft()
            except IndexError:
                return
            self._free.append(slot)
            self.stats.late += 1

    def _drain(self) -> None:
        """Runs in Trio's thread: deliver the blocks in the inbox, oldest first.

        Only as many as were there when it started, so a source pushing as fast as this
        drains cannot keep Trio here: a block that arrives later saw the flag cleared and
        scheduled a drain of its own.
        """
        self._scheduled = False
        inbox = self._inbox
        deliver = self._deliver
        for _ in range(len(inbox)):
            deliver(*inbox.popleft())

    def _deliver(self, index: int, slot: int, capture_time: float, status: int) -> None:
        """Runs in Trio's thread."""
        block = Block(index, slot, self._slots[slot], capture_time, status)
        try:
            self._send.send_nowait(block)
        except trio.WouldBlock:
            self.stats.queue_full += 1
            self._free.append(slot)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.stats.late += 1
            self._free.append(slot)
        else:
            self.stats.queued += 1

    def release(self, block: Block) -> None:
        """Give a block's ring slot back; the processor calls this once it has copied the data."""
        self._free.append(block.slot)

    def congested(self) -> bool:
        """True when half the ring or half the processor's queue is taken.

        An unpaced source (the throughput benchmark) waits while this holds, so it runs as
        fast as the pipeline accepts blocks instead of as fast as the bridge can drop them.
        """
        waiting = len(self._inbox) + self._send.statistics().current_buffer_used
        queue_size = self._send.statistics().max_buffer_size
        return self.slots - len(self._free) > self.slots // 2 or waiting > queue_size // 2

    @property
    def dropped(self) -> int:
        return self.stats.ring_full + self.stats.queue_full + self.stats.late
