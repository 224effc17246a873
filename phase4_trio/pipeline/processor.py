"""The processor task: batches of blocks in, spectra out, straight to the router.

The original computed its FFT inside the audio callback; here it runs in a Trio task, so the
callback only copies. Each wake-up takes every block the bridge holds and analyses them in one
pass (one FFT call for the batch), then routes the spectra in order. Routing is synchronous
and never waits (see :mod:`.router`), so it runs inline: a hop through a channel and another
task would cost a scheduling round per frame for nothing. A batch that makes the analysis
raise is logged, counted in ``errors``, and the stream goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import numpy as np

from ..capture.bridge import CaptureBridge
from ..dsp import Analyzer
from .messages import Block, Spectrum

log = logging.getLogger(__name__)


@attrs.define
class ProcessorStats:
    """``received == processed + errors``."""

    received: int = 0
    processed: int = 0
    errors: int = 0


class Processor:
    def __init__(self, bridge: CaptureBridge, analyzer: Analyzer | None, sample_rate: int) -> None:
        self.stats = ProcessorStats()
        self._bridge = bridge
        self._analyzer = analyzer
        self._sample_rate = sample_rate
        bins = bridge.block_size // 2 + 1
        self._silence = np.zeros(bins, dtype=np.float32)
        self._silence.setflags(write=False)

    def analyse(self, blocks: list[Block]) -> list[Spectrum]:
        """Spectra of consecutive blocks; with DSP disabled, they carry zero magnitudes."""
        rate, size = self._sample_rate, self._bridge.block_size
        if self._analyzer is None:
            silence = self._silence
            return [
                Spectrum(b.index, b.capture_time, rate, size, silence, silence, 0.0, 0.0)
                for b in blocks
            ]
        data = np.stack([block.data for block in blocks])
        return [
            Spectrum(
                b.index,
                b.capture_time,
                rate,
                size,
                a.magnitudes,
                a.flux,
                a.bpm,
                a.bpm_confidence,
                a.rms,
                a.peak,
                a.zero_crossing_rate,
            )
            for b, a in zip(blocks, self._analyzer.process_batch(data), strict=True)
        ]

    async def run(self, route: Callable[[list[Spectrum]], None]) -> None:
        stats = self.stats
        bridge = self._bridge
        while True:
            blocks = await bridge.receive()
            stats.received += len(blocks)
            try:
                spectra = self.analyse(blocks)
            except Exception:
                stats.errors += len(blocks)
                log.exception(
                    "processor: blocks %d-%d failed; dropped", blocks[0].index, blocks[-1].index
                )
                continue
            finally:
                bridge.release(blocks)
            stats.processed += len(spectra)
            route(spectra)
