"""A single-producer, single-consumer ring of float32 frames between the capture thread and
the recorder's writer thread.

The producer is the audio callback (or a synthetic source's thread), so :meth:`FrameFifo.write`
must never block, never raise and never allocate an array: it copies the block into the
preallocated ring and publishes the new write position. The consumer reads the filled
region as (at most two) views and gives the space back with :meth:`FrameFifo.consume`.

Each position is written by one thread only (``_written`` by the producer, ``_read`` by the
consumer), and a position is published only after the copy it covers has completed, so the
two sides need no lock for the data. The one lock is taken by the producer with
``blocking=False`` and by the consumer only in :meth:`close`: it makes closing exact —
``close`` returns only after an in-flight write has finished, and every later write is
counted as ``late_frames`` — without ever making the producer wait.

A block that does not fit in the free space is dropped whole and counted in
``overflow_frames``; it is never partly written, so what is recorded is always a sequence of
complete blocks.
"""

from __future__ import annotations

import math
import threading

import attrs
import numpy as np
from numpy.typing import NDArray

from ..samples import FloatArray

_INT32_SCALE = 1.0 / 2147483648.0


@attrs.define
class FifoStats:
    """Producer-side counters; ``offered == accepted + overflow + late + rejected`` frames."""

    accepted_blocks: int = 0
    accepted_frames: int = 0
    overflow_blocks: int = 0
    overflow_frames: int = 0
    late_frames: int = 0
    rejected_frames: int = 0


class FrameFifo:
    """Room for ``seconds`` of audio at ``sample_rate``, allocated once."""

    def __init__(self, *, seconds: float, sample_rate: int, channels: int) -> None:
        self.capacity = max(1, math.ceil(seconds * sample_rate))
        self.channels = channels
        self.stats = FifoStats()
        self._ring: FloatArray = np.zeros((self.capacity, channels), dtype=np.float32)
        self._written = 0  # frames ever written; only the producer assigns it
        self._read = 0  # frames ever consumed; only the consumer assigns it
        self._closed = False
        self._gate = threading.Lock()

    def write(self, block: NDArray[np.float32] | NDArray[np.int32]) -> bool:
        """Producer side: copy a ``(frames, channels)`` block in; ``False`` if it was dropped."""
        stats = self.stats
        frames = block.shape[0] if block.ndim else 1
        if not self._gate.acquire(blocking=False):  # close() holds it: we are shutting down
            stats.late_frames += frames
            return False
        try:
            if self._closed:
                stats.late_frames += frames
                return False
            if block.ndim != 2 or block.shape[1] != self.channels:
                stats.rejected_frames += frames
                return False
            written = self._written
            if frames > self.capacity - (written - self._read):
                stats.overflow_blocks += 1
                stats.overflow_frames += frames
                return False
            start = written % self.capacity
            first = min(frames, self.capacity - start)
            self._copy(block[:first], self._ring[start : start + first])
            if first < frames:
                self._copy(block[first:], self._ring[: frames - first])
            self._written = written + frames
            stats.accepted_blocks += 1
            stats.accepted_frames += frames
            return True
        except Exception:
            stats.rejected_frames += frames
            return False
        finally:
            self._gate.release()

    @staticmethod
    def _copy(source: NDArray[np.float32] | NDArray[np.int32], target: FloatArray) -> None:
        if source.dtype == np.int32:  # a device opened as int32: scale like the bridge does
            np.multiply(source, _INT32_SCALE, out=target, casting="unsafe")
        else:
            np.copyto(target, source, casting="same_kind")

    def readable(self) -> tuple[FloatArray, FloatArray]:
        """Consumer side: the filled region, oldest first, as two views (the second may be empty).

        The views stay valid until :meth:`consume` gives their frames back.
        """
        read = self._read
        available = self._written - read
        start = read % self.capacity
        first = min(available, self.capacity - start)
        return self._ring[start : start + first], self._ring[: available - first]

    def consume(self, frames: int) -> None:
        """Consumer side: hand ``frames`` back to the producer."""
        self._read += frames

    def close(self) -> None:
        """Consumer side: accept no more blocks; waits only for a write already in progress."""
        with self._gate:
            self._closed = True

    def pending(self) -> int:
        """Frames written and not yet consumed."""
        return self._written - self._read
