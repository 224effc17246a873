"""Pure-numpy audio analysis: blocks of samples in; spectrum, flux, tempo, bands and more out.

No I/O and no Trio here (sans-I/O, like h11): the processor task owns the timing, this package
owns the arithmetic, so it can be tested and benchmarked on synthetic blocks alone.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

from .beat import BeatClock
from .detail import DB_FLOOR, ChannelLevels, Detail, Resolution, SampleWindows, SlidingHistory
from .flux import LOW_BAND_GAIN, LOW_BAND_HZ, SpectralFlux
from .level import block_levels, mono_mix
from .novelty import Novelty
from .spectrum import MagnitudeSpectrum, bin_frequencies
from .tempo import (
    DEFAULT_TEMPO_RANGE,
    TempoEstimate,
    TempoTracker,
    estimate_tempo,
)
from .window import WINDOW_NAMES, make_window

__all__ = [
    "DB_FLOOR",
    "DEFAULT_TEMPO_RANGE",
    "LOW_BAND_GAIN",
    "LOW_BAND_HZ",
    "WINDOW_NAMES",
    "Analysis",
    "Analyzer",
    "BeatClock",
    "ChannelLevels",
    "Detail",
    "MagnitudeSpectrum",
    "Novelty",
    "Resolution",
    "SampleWindows",
    "SpectralFlux",
    "TempoEstimate",
    "TempoTracker",
    "bin_frequencies",
    "estimate_tempo",
    "make_window",
]


@attrs.frozen
class Analysis:
    """One block's results; the arrays are fresh per block and read-only.

    ``rms``, ``peak`` (linear, 1.0 = full scale) and ``zero_crossing_rate`` (sign changes per
    second) come from the block's samples (:mod:`.level`), for outputs a spectrum cannot feed.
    ``beat_phase`` is the position within the current beat (0-1) at the block's end and
    ``beat`` whether a beat fell in the block (:class:`TempoTracker`).
    """

    magnitudes: NDArray[np.float32]
    flux: NDArray[np.float32]
    bpm: float
    bpm_confidence: float
    beat_phase: float = 0.0
    beat: bool = False
    rms: float = 0.0
    peak: float = 0.0
    zero_crossing_rate: float = 0.0
    # The finer spectrum, per-channel spectra and levels, computed on request.
    detail: Detail = attrs.field(kw_only=True)


class Analyzer:
    """Preallocated per-stream analysis: window, rFFT magnitudes, spectral flux, tempo.

    Blocks are mixed down to the mean of their channels; a block shorter than ``size`` frames
    is zero-padded at the end, as the original does. The arrays in each :class:`Analysis` are
    new per call and read-only: consumers share them, and the analyzer keeps the latest ones
    for the next flux and the tempo. It also keeps the last ``fft_size`` samples, so each
    result's ``detail`` can give the fine spectrum over them (and per-channel spectra and
    levels) when someone asks: see :mod:`.detail`.
    """

    def __init__(
        self,
        size: int,
        sample_rate: int,
        window: str,
        fft_size: int | None = None,
        tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        fft_size = size if fft_size is None else fft_size
        if fft_size < size or fft_size % 2:
            raise ValueError(f"fft size must be even and at least {size}, got {fft_size}")
        self.size = size
        self.fft_size = fft_size
        self.sample_rate = sample_rate
        self._spectrum = MagnitudeSpectrum(make_window(window, size))
        self._fine = (
            self._spectrum if fft_size == size else MagnitudeSpectrum(make_window(window, fft_size))
        )
        self._history = SlidingHistory(fft_size)
        self._flux = SpectralFlux(size, sample_rate)
        self._tempo = TempoTracker(sample_rate, size, tempo_range)

    def process(self, block: NDArray[np.float32]) -> Analysis:
        """Analyse one ``(frames, channels)`` float32 block (1-D is mono), ``frames <= size``."""
        batch = block.reshape(1, block.shape[0], 1 if block.ndim == 1 else block.shape[1])
        return self.process_batch(batch)[0]

    def process_batch(self, blocks: NDArray[np.float32]) -> list[Analysis]:
        """Analyse a ``(count, frames, channels)`` stack of consecutive blocks, oldest first.

        One FFT call for the whole batch; the result is the same as :meth:`process` on each
        block in turn.
        """
        magnitudes = self._spectrum.batch(blocks)
        flux = self._flux.batch(magnitudes)
        # Shared with every consumer and kept here for the next flux: make that read-only real.
        magnitudes.setflags(write=False)
        flux.setflags(write=False)
        count, frames, _channels = blocks.shape
        history = self._history
        windows = SampleWindows(
            history.extend(blocks),
            frames,
            count,
            magnitudes,
            self._spectrum,
            self._fine,
            history.epoch,
            self.sample_rate,
        )
        levels = block_levels(mono_mix(blocks), self.sample_rate)
        tempo = self._tempo
        results = []
        for index, (row_magnitudes, row_flux, rms, peak, crossings) in enumerate(
            zip(
                magnitudes,
                flux,
                levels.rms.tolist(),
                levels.peak.tolist(),
                levels.zero_crossing_rate.tolist(),
                strict=True,
            )
        ):
            tempo.push(row_flux, row_magnitudes)
            results.append(
                Analysis(
                    row_magnitudes,
                    row_flux,
                    tempo.bpm,
                    tempo.confidence,
                    tempo.beat_phase,
                    tempo.beat,
                    rms,
                    peak,
                    crossings,
                    detail=Detail(windows, index),
                )
            )
        return results

    def reset(self) -> None:
        """Forget the flux reference, the tempo history and the samples of the sliding
        window, e.g. after a capture gap."""
        self._flux.reset()
        self._history.reset()
        self._tempo.reset()
