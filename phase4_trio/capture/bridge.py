"""The one door from an audio thread into Trio.

Every source (PortAudio's callback thread or a synthetic source's thread) calls
:meth:`CaptureBridge.push`. It copies the block into a preallocated ring slot, notes it in
the bridge's inbox and, when a delivery is due and none is pending, asks Trio to run
:meth:`CaptureBridge.deliver` through the run's ``TrioToken`` (``run_sync_soon``,
``idempotent=True``). ``deliver`` runs in the Trio thread and ``send_nowait``s every waiting
block into the processor's bounded memory channel; a full channel drops the block, frees its
slot and counts it. The audio thread never waits for Trio.

When deliveries are due is Trio's choice (:meth:`CaptureBridge.listen`), made from what the
subscribers downstream want:

- nobody listens (:meth:`CaptureBridge.rest`): no delivery at all, so Trio is not woken per
  block and nothing is analysed; the callback still copies each block into the ring, keeping
  the last ``preroll`` blocks, so the first listener's analysis window starts full;
- listeners that want at most F spectra a second: a delivery about every 1/F seconds of
  capture time (each one a batch of blocks), rather than one per block;
- a listener that wants every spectrum: a delivery per block.

Taps (the WAV recorder) are fed inside :meth:`push` itself, before any point where a block
can be dropped, so they see every block even when nobody listens or Trio is stalled.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections import deque
from typing import Protocol

import attrs
import numpy as np
import trio

from .. import metrics as m
from ..samples import FloatArray

INPUT_OVERFLOW = 1 << 0
INPUT_UNDERFLOW = 1 << 1


class BlockFlag(enum.IntFlag):
    """What the processor must know about a block beyond its samples."""

    NONE = 0
    #: The first block after the stream was interrupted (engine start, the end of a rest):
    #: the analysis starts afresh here instead of comparing with what came before the gap.
    STREAM_START = 1
    #: A pre-roll block: analysed, to fill the analysis window and the flux reference,
    #: but too old to be sent to anyone.
    WARMUP = 2


@attrs.frozen
class Block:
    """One captured block, living in a ring slot until the processor releases it.

    ``data`` is a view into the bridge's preallocated ring, shape ``(frames, channels)``,
    float32 in [-1, 1). It is valid only until :meth:`CaptureBridge.release` is called.
    """

    index: int
    slot: int
    data: FloatArray
    capture_time: float
    status: int
    flags: BlockFlag = BlockFlag.NONE


class CaptureTap(Protocol):
    """Receives every captured block in the capture thread; must copy and return at once."""

    def write(self, block: FloatArray) -> None: ...


@attrs.define
class BridgeStats:
    """Counters kept by the bridge: ``captured == delivered + ring_full + queue_full +
    resting + push_errors + late`` plus the blocks still waiting (:attr:`CaptureBridge.waiting`)."""

    captured: int = 0
    delivered: int = 0
    ring_full: int = 0
    queue_full: int = 0
    resting: int = 0
    push_errors: int = 0
    late: int = 0
    wakeups: int = 0
    overflows: int = 0
    underflows: int = 0
    tap_errors: int = 0
    callback_seconds: deque[float] = attrs.field(factory=lambda: deque(maxlen=4096))

    def metrics(self) -> list[m.Metric]:
        return [
            m.counter(
                "phase4_frames_captured_total", "Blocks delivered by the source.", self.captured
            ),
            m.labelled(
                "phase4_frames_dropped_total",
                "counter",
                "Blocks or spectra lost, by stage.",
                [
                    ((("stage", "ring"),), self.ring_full),
                    ((("stage", "capture_queue"),), self.queue_full),
                    ((("stage", "callback_error"),), self.push_errors),
                    ((("stage", "shutdown"),), self.late),
                ],
            ),
            m.counter(
                "phase4_frames_resting_total",
                "Blocks captured while nobody listened (recorded, not analysed).",
                self.resting,
            ),
            m.counter(
                "phase4_capture_wakeups_total",
                "Times the capture thread woke Trio to deliver blocks.",
                self.wakeups,
            ),
            m.labelled(
                "phase4_callback_status_total",
                "counter",
                "Callback status flags reported by the audio backend.",
                [
                    ((("flag", "input_overflow"),), self.overflows),
                    ((("flag", "input_underflow"),), self.underflows),
                ],
            ),
            m.counter(
                "phase4_capture_tap_errors_total",
                "Blocks a capture tap (the recorder) failed to take.",
                self.tap_errors,
            ),
        ]


class CaptureBridge:
    """Moves blocks from any thread into a Trio memory channel without blocking the thread.

    Created inside the Trio run (it keeps the run's token). It starts resting: nothing is
    delivered until :meth:`listen` is called. Closed with :meth:`close` once shutdown starts.
    """

    def __init__(
        self,
        *,
        block_size: int,
        channels: int,
        slots: int,
        sample_rate: int,
        send: trio.MemorySendChannel[Block],
        preroll: int = 2,
        max_batch: int = 32,
    ) -> None:
        if not 1 <= preroll < slots:
            raise ValueError(f"preroll must be 1 to {slots - 1} blocks, got {preroll}")
        self.block_size = block_size
        self.channels = channels
        self.slots = slots
        self.preroll = preroll
        # Blocks wait in the ring between deliveries: never longer than max_batch blocks,
        # so a delivery fits the processor's channel.
        self._longest_wait = max(1, max_batch) * block_size / sample_rate
        # Capture times jitter: a block within half a period of the grid point is on time
        # (the engine's router allows subscribers the same).
        self._early = 0.5 * block_size / sample_rate
        self.stats = BridgeStats()
        self._send = send
        self._token = trio.lowlevel.current_trio_token()
        self._ring = np.zeros((slots, block_size, channels), dtype=np.float32)
        self._slots = [self._ring[slot] for slot in range(slots)]
        self._free: deque[int] = deque(range(slots))
        self._inbox: deque[tuple[int, int, float, int]] = deque()
        self._pending = False
        self._listening = False
        self._wake_interval = 0.0
        self._next_wake = -math.inf
        self._starting = True
        self._warmup_left = 0
        self._resting_before = 0
        self._room = threading.Event()
        self._room_wanted = False
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
        self._room.set()

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def recent(self) -> FloatArray:
        """The ring, read-only: the last ``slots`` blocks captured, in no particular order
        (resting or not), for a glance at the level without asking for spectra."""
        view = self._ring.view()
        view.flags.writeable = False
        return view

    @property
    def waiting(self) -> int:
        """Blocks copied but not yet delivered (the pre-roll, while resting)."""
        return len(self._inbox)

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
            inbox = self._inbox
            listening = self._listening
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
            inbox.append((stats.captured - 1, slot, capture_time, status))
            if not listening:
                # Resting: keep only the pre-roll. (A delivery that runs right now pops
                # from the same deque; each entry still leaves it exactly once.)
                while len(inbox) > self.preroll:
                    try:
                        _index, old, _time, _status = inbox.popleft()
                    except IndexError:
                        break
                    self._free.append(old)
                    stats.resting += 1
                return
            if self._pending or capture_time + self._early < self._next_wake:
                return
            self._schedule_next_wake(capture_time)
            self._request_delivery()
        except Exception:
            stats.push_errors += 1
        finally:
            stats.callback_seconds.append(time.perf_counter() - started)

    def _request_delivery(self) -> None:
        """From a capture thread: have Trio run :meth:`deliver` soon (the only way in)."""
        self._pending = True
        self.stats.wakeups += 1
        try:
            self._token.run_sync_soon(self.deliver, idempotent=True)
        except trio.RunFinishedError:
            self._closed = True

    def _schedule_next_wake(self, capture_time: float) -> None:
        """Deliveries on a grid of ``wake_interval`` in capture time; after a gap the grid
        restarts from now rather than catching up with a burst."""
        interval = self._wake_interval
        if interval <= 0.0:
            return
        following = self._next_wake + interval
        self._next_wake = following if following > capture_time else capture_time + interval

    def congested(self) -> bool:
        """True when half the ring, or half the processor's channel (counting the blocks
        waiting for the next delivery), is taken.

        An unpaced source (the throughput benchmark) waits while this holds, so it runs as
        fast as the pipeline accepts blocks instead of as fast as the bridge can drop them.
        """
        channel = self._send.statistics()
        return (
            self.slots - len(self._free) > self.slots // 2
            or 2 * (channel.current_buffer_used + len(self._inbox)) > channel.max_buffer_size
        )

    def wait_for_room(self, timeout: float) -> None:
        """From the source thread: sleep while :meth:`congested` (at most ``timeout``).

        Blocks waiting for the next point of a rate's grid are delivered first: an unpaced
        source stamps blocks faster than that grid advances, and would otherwise wait for a
        delivery that only its own next block could trigger."""
        self._room.clear()
        self._room_wanted = True
        try:
            if self._listening and self._inbox and not self._pending and not self._closed:
                self._request_delivery()
            if self.congested() and not self._closed:
                self._room.wait(timeout)
        finally:
            self._room_wanted = False

    # ------------------------------------------------------------ the Trio thread

    def deliver(self) -> None:
        """Send every waiting block into the processor's channel, oldest first; never waits.

        Runs in the Trio thread (through ``run_sync_soon``, or directly from :meth:`listen`).
        """
        self._pending = False  # clear, then drain: a block pushed after this wakes Trio again
        inbox = self._inbox
        slots = self._slots
        stats = self.stats
        send = self._send.send_nowait
        while inbox:
            try:
                index, slot, capture_time, status = inbox.popleft()
            except IndexError:  # the audio thread trimmed the pre-roll meanwhile
                break
            flags = BlockFlag.NONE
            if self._starting:
                flags |= BlockFlag.STREAM_START
                self._starting = False
            if self._warmup_left > 0:
                flags |= BlockFlag.WARMUP
                self._warmup_left -= 1
            try:
                send(Block(index, slot, slots[slot], capture_time, status, flags))
            except trio.WouldBlock:
                self._free.append(slot)
                stats.queue_full += 1
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._free.append(slot)
                stats.late += 1
            else:
                stats.delivered += 1

    def listen(self, wake_interval: float) -> None:
        """Deliver from now on, about every ``wake_interval`` seconds of capture (0: every
        block). From rest, what waits is delivered at once, so the first listener gets a
        spectrum without waiting for the next block.

        If the rest let blocks go, the stream has a gap: the first block delivered starts a
        new stream and all but the newest are warm-up (the pre-roll then fills the analysis
        window). A rest too short to let any go leaves the stream whole: its blocks are
        delivered as if there had been no rest, and the analysis just carries on."""
        self._wake_interval = min(max(0.0, wake_interval), self._longest_wait)
        if self._listening:
            return
        if self._starting or self.stats.resting != self._resting_before:
            self._starting = True
            self._warmup_left = len(self._inbox) - 1
        self._next_wake = -math.inf
        self._listening = True
        self.deliver()

    def rest(self) -> None:
        """Stop delivering (nobody listens): the callback only copies and keeps the pre-roll."""
        self._resting_before = self.stats.resting
        self._listening = False

    def release(self, blocks: list[Block]) -> None:
        """Give the blocks' ring slots back, once their data has been copied or used."""
        free = self._free
        for block in blocks:
            free.append(block.slot)
        if self._room_wanted and not self.congested():
            self._room.set()

    def drop_preroll(self) -> None:
        """The source paused: what waits is from before, so it is let go (counted ``resting``)
        and the next listener's stream starts with the first block captured after."""
        self.stats.resting += self._let_go_waiting()
        self._starting = True

    def discard_waiting(self) -> None:
        """Shutdown: what still waits in the inbox is counted ``late`` and its slots freed."""
        self.stats.late += self._let_go_waiting()

    def _let_go_waiting(self) -> int:
        """Free the slots of every block waiting in the inbox; how many there were."""
        inbox = self._inbox
        count = 0
        while inbox:
            try:
                _index, slot, _time, _status = inbox.popleft()
            except IndexError:  # the audio thread trimmed the pre-roll meanwhile
                break
            self._free.append(slot)
            count += 1
        return count
