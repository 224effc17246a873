"""The processor task: blocks in, spectra out.

The original computed its FFT inside the audio callback; here it runs in a Trio task, so the
callback only copies. A block that makes the analysis raise is logged, counted as dropped,
and the stream goes on.
"""

from __future__ import annotations

import logging

import attrs
import numpy as np
import trio

from ..capture.bridge import CaptureBridge
from ..dsp import Analyzer
from .messages import Block, Spectrum

log = logging.getLogger(__name__)


@attrs.define
class ProcessorStats:
    """``received == processed + errors + unrouted``."""

    received: int = 0
    processed: int = 0
    errors: int = 0
    unrouted: int = 0


class Processor:
    def __init__(self, bridge: CaptureBridge, analyzer: Analyzer | None, sample_rate: int) -> None:
        self.stats = ProcessorStats()
        self._bridge = bridge
        self._analyzer = analyzer
        self._sample_rate = sample_rate
        bins = bridge.block_size // 2 + 1
        self._silence = np.zeros(bins, dtype=np.float32)

    def analyse(self, block: Block) -> Spectrum:
        """Turn one block into a spectrum; with DSP disabled, spectra carry zero magnitudes."""
        if self._analyzer is None:
            return Spectrum(
                block.index,
                block.capture_time,
                self._sample_rate,
                self._bridge.block_size,
                self._silence,
                self._silence,
                0.0,
                0.0,
            )
        result = self._analyzer.process(block.data)
        return Spectrum(
            frame_count=block.index,
            capture_time=block.capture_time,
            sample_rate=self._sample_rate,
            fft_size=self._bridge.block_size,
            magnitudes=result.magnitudes,
            flux=result.flux,
            bpm=result.bpm,
            bpm_confidence=result.bpm_confidence,
        )

    async def run(
        self,
        receive: trio.MemoryReceiveChannel[Block],
        send: trio.MemorySendChannel[Spectrum],
    ) -> None:
        stats = self.stats
        async with receive, send:
            async for block in receive:
                stats.received += 1
                try:
                    spectrum = self.analyse(block)
                except Exception:
                    stats.errors += 1
                    log.exception("processor: block %d failed; dropped", block.index)
                    continue
                finally:
                    self._bridge.release(block)
                try:
                    send.send_nowait(spectrum)
                except trio.WouldBlock:
                    stats.unrouted += 1
                else:
                    stats.processed += 1
