"""Lossless recording of what was captured: a lock-free FIFO from the capture thread and a
writer thread that keeps a valid WAV file on disk."""

from __future__ import annotations

from .fifo import FifoStats, FrameFifo
from .recorder import RecorderStats, WavRecorder

__all__ = ["FifoStats", "FrameFifo", "RecorderStats", "WavRecorder"]
