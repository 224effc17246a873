"""The processor task: blocks in from the bridge's channel, batches of spectra out to the router's.

The original computed its FFT inside the audio callback; here it runs in a Trio task, so the
callback only copies. Each wake-up takes every block waiting in the channel (one
``receive()``, then ``receive_nowait()`` until it is empty) and analyses them in one pass, one
FFT call for the batch, then hands the batch of spectra to the router task with one
``send_nowait``: a full router channel drops the batch and counts it.

Two block flags from the bridge shape the analysis (see :class:`~..capture.bridge.BlockFlag`):
``STREAM_START`` resets the analyser before that block, since flux and tempo must not compare
across a gap in the stream; ``WARMUP`` blocks are analysed (they fill the window and the flux
reference) but not sent on. A batch that makes the analysis raise is logged, counted in
``errors``, and the stream goes on.
"""

from __future__ import annotations

import logging

import attrs
import numpy as np
import trio

from .. import metrics as m
from ..capture.bridge import Block, BlockFlag, CaptureBridge
from ..dsp import Analyzer
from ..dsp.views import analysed_spectrum
from .messages import Batch, Spectrum

log = logging.getLogger(__name__)


@attrs.define
class ProcessorStats:
    """``received == processed + errors``; ``processed == warmup + sent + router_full``."""

    received: int = 0
    processed: int = 0
    errors: int = 0
    warmup: int = 0
    sent: int = 0
    router_full: int = 0
    restarts: int = 0
    batches: int = 0

    def metrics(self) -> list[m.Metric]:
        return [
            m.counter("phase4_spectra_total", "Spectra produced by the processor.", self.processed),
            m.counter(
                "phase4_processor_batches_total",
                "Batches of blocks analysed at once.",
                self.batches,
            ),
            m.counter(
                "phase4_processor_warmup_total",
                "Pre-roll blocks analysed to refill the window, not sent.",
                self.warmup,
            ),
            m.counter(
                "phase4_analysis_restarts_total",
                "Times the analysis restarted after a gap (a rest, the engine start).",
                self.restarts,
            ),
            m.labelled(
                "phase4_frames_dropped_total",
                "counter",
                "Blocks or spectra lost, by stage.",
                [
                    ((("stage", "processor_error"),), self.errors),
                    ((("stage", "router_queue"),), self.router_full),
                ],
            ),
        ]


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
        analyzer = self._analyzer
        if analyzer is None:
            silence = self._silence
            return [
                Spectrum(b.index, b.capture_time, rate, size, silence, silence, 0.0, 0.0)
                for b in blocks
            ]
        spectra: list[Spectrum] = []
        for run in _runs(blocks):
            if run[0].flags & BlockFlag.STREAM_START:
                analyzer.reset()
                self.stats.restarts += 1
            data = np.stack([block.data for block in run])
            spectra += [
                analysed_spectrum(b.index, b.capture_time, rate, a)
                for b, a in zip(run, analyzer.process_batch(data), strict=True)
            ]
        return spectra

    async def run(
        self,
        blocks: trio.MemoryReceiveChannel[Block],
        router: trio.MemorySendChannel[Batch],
    ) -> None:
        stats = self.stats
        bridge = self._bridge
        while True:
            batch = [await blocks.receive()]
            while True:
                try:
                    batch.append(blocks.receive_nowait())
                except trio.WouldBlock:
                    break
            stats.received += len(batch)
            stats.batches += 1
            try:
                spectra = self.analyse(batch)
            except Exception:
                stats.errors += len(batch)
                log.exception(
                    "processor: blocks %d-%d failed; dropped", batch[0].index, batch[-1].index
                )
                continue
            finally:
                bridge.release(batch)
            stats.processed += len(spectra)
            fresh = tuple(
                spectrum
                for spectrum, block in zip(spectra, batch, strict=True)
                if not block.flags & BlockFlag.WARMUP
            )
            stats.warmup += len(spectra) - len(fresh)
            if not fresh:
                continue
            try:
                router.send_nowait(fresh)
            except trio.WouldBlock:
                stats.router_full += len(fresh)
            else:
                stats.sent += len(fresh)


def _runs(blocks: list[Block]) -> list[list[Block]]:
    """The batch cut before every ``STREAM_START`` block (almost always one run)."""
    runs: list[list[Block]] = []
    for block in blocks:
        if not runs or block.flags & BlockFlag.STREAM_START:
            runs.append([])
        runs[-1].append(block)
    return runs
