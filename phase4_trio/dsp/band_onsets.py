"""Per-band onsets: which bands had a hit in this frame.

Flux peak-picking with an adaptive threshold, causal and frame by frame:

- each band's level in dB (floored at :data:`FLOOR_DB`, so changes in the noise floor are
  ignored) is compared with its level ``lag`` frames before; the rise is the band's flux.
  ``lag`` spans a quarter of the analysis window (at least one frame): with a window longer
  than a block, a hit enters the window gradually and its level rises over several frames, so
  comparing with the frame just before would see only a fraction of the rise;
- the threshold follows the flux: :data:`THRESHOLD_DB` above the flux's recent mean (an
  exponential mean over :data:`MEAN_SECONDS`), so a band where the level keeps moving needs a
  bigger jump than a quiet one;
- a band has an onset in the frame where its flux, having crossed the threshold, stops
  rising: one frame after the peak, so one block of delay (5.8 ms at 44.1 kHz / 256) on top
  of the window's own; a band then waits :data:`REFRACTORY_SECONDS` before it can fire again;
- only bands at least :data:`MIN_BINS` bins wide have onsets. A narrower band has no level of
  its own: it holds a share of one or two bins whose power is mostly the leakage of louder
  neighbours (a Hann window's main lobe is four bins wide), and it rises whenever they do,
  e.g. well after a kick drum as its pitch falls.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FLOOR_DB = -80.0
_FLOOR_AMPLITUDE = np.float32(10.0 ** (FLOOR_DB / 20.0))
THRESHOLD_DB = 9.0
MEAN_SECONDS = 0.25
REFRACTORY_SECONDS = 0.05
MIN_BINS = 2.0


class BandOnsets:
    """Onsets of one stream of ``(rows, bands)`` amplitude frames.

    ``window_frames`` is the analysis window in frames (``fft_size / hop``); bands before
    ``first_band`` never have onsets (see :func:`first_eligible_band`). Levels are kept in
    bels (log10 of the amplitude, a twentieth of a dB value), which saves a multiply per
    frame; the thresholds are scaled to match.
    """

    def __init__(self, frame_seconds: float, window_frames: float, first_band: int) -> None:
        self.frame_seconds = frame_seconds
        self.lag = max(1, round(window_frames / 4))
        self.first_band = first_band
        self._alpha = np.float32(1.0 - math.exp(-frame_seconds / MEAN_SECONDS))
        self._refractory = max(1, round(REFRACTORY_SECONDS / frame_seconds))
        self._levels: list[NDArray[np.float32]] = []
        self._state: _State | None = None

    def reset(self) -> None:
        """Start again, e.g. after a gap in the stream: no flux until ``lag`` new frames."""
        self._levels.clear()
        self._state = None

    def __call__(self, amplitudes: NDArray[np.float32]) -> NDArray[np.bool_]:
        levels = np.log10(np.maximum(amplitudes, _FLOOR_AMPLITUDE))
        history = self._levels
        history.append(levels)
        state = self._state
        if state is None or state.mean.shape != levels.shape:
            state = self._state = _State(levels.shape, self.first_band)
        state.frame += 1
        if len(history) <= self.lag:
            return np.zeros(levels.shape, dtype=np.bool_)
        flux = levels - history.pop(0)
        np.maximum(flux, 0.0, out=flux)
        onsets = state.above & (flux <= state.previous)
        onsets &= state.last <= state.frame - self._refractory
        # Tested against the mean of the flux before it, so a hit does not raise its own bar.
        state.above = flux >= state.mean + state.margin
        flux_minus_mean = flux - state.mean
        flux_minus_mean *= self._alpha
        state.mean += flux_minus_mean
        state.previous = flux
        state.last[onsets] = state.frame
        return onsets


class _State:
    def __init__(self, shape: tuple[int, ...], first_band: int) -> None:
        self.frame = 0
        self.mean = np.zeros(shape, dtype=np.float32)
        self.previous = np.zeros(shape, dtype=np.float32)
        self.above = np.zeros(shape, dtype=np.bool_)
        self.last = np.full(shape, -(2**62), dtype=np.int64)
        # How far above the mean flux a rise must be; never, below the first eligible band.
        self.margin = np.full(shape, np.float32(THRESHOLD_DB / 20.0), dtype=np.float32)
        self.margin[..., :first_band] = np.inf


def first_eligible_band(
    lowers: tuple[float, ...], uppers: tuple[float, ...], resolution: float
) -> int:
    """Index of the first band at least :data:`MIN_BINS` bins of ``resolution`` Hz wide
    (``len(lowers)`` if none is). Bands only widen upwards in every layout, so the bands from
    there on are the ones that may have onsets."""
    widths = (np.asarray(uppers) - np.asarray(lowers)) / resolution
    wide = np.flatnonzero(widths >= MIN_BINS)
    return int(wide[0]) if len(wide) else len(lowers)
