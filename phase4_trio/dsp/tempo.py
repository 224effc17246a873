"""Tempo from spectral flux: onset strength, its autocorrelation, and a sub-block period fit.

The original picked onsets with a threshold and voted over their intervals, which quantises
every interval to whole blocks (at 44.1 kHz / 256 one block is ~4 BPM at 200 BPM) and easily
lands an octave off. Here the autocorrelation of the onset-strength signal stands in for the
histogram of *all* inter-onset intervals, the beat is the shortest strong period in range
(so 60 BPM cannot read 120, nor 200 read 100), and the period is fitted through the peaks at
all its multiples at once, each centred to a fraction of a block, so the error shrinks with
every beat in view. docs/dsp.md has the accuracy this reaches.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from numpy.typing import NDArray

MIN_BPM = 55.0
MAX_BPM = 210.0
HISTORY_SECONDS = 8.0
UPDATE_SECONDS = 0.25
# A peak at least this fraction of the strongest one wins if its lag is shorter: a beat
# repeats at every multiple of its period, so the strongest peak may be a multiple.
OCTAVE_RATIO = 0.5
# Onset strength skips the lowest bins: a tone with fewer than about two cycles per block has
# no steady magnitude there, and its block-to-block wobble would read as a rhythm.
FIRST_ONSET_BIN = 4
# ...and bins more than 50 dB under the block's loudest, where a loud tone's sidelobes wobble.
ONSET_BIN_FLOOR = 10 ** (-50 / 20)
# Below this peak-over-mean onset strength there are no onsets, only steady sound.
MIN_CONTRAST = 0.05
# Below this confidence the tempo is reported as unknown (0).
MIN_CONFIDENCE = 0.3
# Half-width, in lags, of the neighbourhood that makes up one autocorrelation peak: block-
# quantised onsets smear each peak over about two lags either side.
_PEAK_HALF_WIDTH = 3
# Peaks fitted per estimate: enough for a few hundredths of a BPM, and a bounded cost per update.
_FIT_MULTIPLES = 8
_EPSILON = 1e-12


@attrs.frozen
class TempoEstimate:
    bpm: float
    confidence: float


UNKNOWN = TempoEstimate(0.0, 0.0)


def onset_strength(
    flux: NDArray[np.float32], magnitudes: NDArray[np.float32]
) -> NDArray[np.float64]:
    """Per-block onset strength from ``(blocks, bins)`` flux and magnitudes.

    The flux of the bins that can carry an onset, relative to the block's total magnitude, so
    a click is as clear quiet as loud and a steady sound stays near zero however loud it is.
    """
    loudest = magnitudes.max(axis=1, keepdims=True)
    audible = magnitudes[:, FIRST_ONSET_BIN:] >= ONSET_BIN_FLOOR * loudest
    rising = (flux[:, FIRST_ONSET_BIN:] * audible).sum(axis=1, dtype=np.float64)
    level = magnitudes.sum(axis=1, dtype=np.float64)
    strength: NDArray[np.float64] = rising / (level + _EPSILON)
    return strength


def estimate_tempo(onset: NDArray[np.float64], frame_rate: float) -> TempoEstimate:
    """Tempo of an onset-strength signal sampled at ``frame_rate`` blocks per second.

    Unknown until the signal covers two periods of the slowest tempo, and whenever nothing
    in it repeats. ``bpm`` is 0 while the confidence is below :data:`MIN_CONFIDENCE`.
    """
    shortest = frame_rate * 60.0 / MAX_BPM
    longest = frame_rate * 60.0 / MIN_BPM
    count = len(onset)
    if count < 2 * longest + 2 * _PEAK_HALF_WIDTH:
        return UNKNOWN
    mean = onset.mean()
    if float(onset.max() - mean) < MIN_CONTRAST:
        return UNKNOWN
    acf = _autocorrelation(onset - mean)
    lag = _first_strong_peak(acf, shortest, longest)
    if lag is None:
        return UNKNOWN
    period, confidence = _fit_period(acf, lag)
    if confidence < MIN_CONFIDENCE:
        return TempoEstimate(0.0, confidence)
    return TempoEstimate(60.0 * frame_rate / period, confidence)


def _fft_size(minimum: int) -> int:
    """Smallest 2**a * 3**b >= minimum: pocketfft is fast on these, and they waste less
    padding than powers of two alone."""
    best = 1 << (minimum - 1).bit_length()
    three = 3
    while three < best:
        best = min(best, three << (-(-minimum // three) - 1).bit_length())
        three *= 3
    return best


def _autocorrelation(centred: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unbiased autocorrelation up to half the length, 1.0 at lag 0.

    Unbiased (each lag divided by its number of pairs) so a beat's later repeats are not
    penalised, which the octave choice and the multi-peak fit both rely on.
    """
    count = len(centred)
    lags = count // 2
    size = _fft_size(count + lags)
    spectrum = np.fft.rfft(centred, size)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:lags]
    acf /= np.arange(count, count - lags, -1)
    acf /= acf[0]
    return acf


def _first_strong_peak(acf: NDArray[np.float64], shortest: float, longest: float) -> int | None:
    """Shortest lag in the tempo range whose peak is strong, or None if there is no peak."""
    lo = max(1, math.floor(shortest))
    hi = min(len(acf) - 2, math.ceil(longest))
    inner = acf[lo : hi + 1]
    peaks = np.flatnonzero((inner >= acf[lo - 1 : hi]) & (inner > acf[lo + 1 : hi + 2]))
    peaks = peaks[inner[peaks] > 0.0] + lo
    if len(peaks) == 0:
        return None
    span = np.ones(2 * _PEAK_HALF_WIDTH - 1)
    masses = np.convolve(np.maximum(acf, 0.0), span, "same")[peaks]
    return int(peaks[np.argmax(masses >= OCTAVE_RATIO * masses.max())])


def _peak_mass(positive: list[float], centre: float) -> float:
    middle = round(centre)
    return sum(positive[max(0, middle - _PEAK_HALF_WIDTH + 1) : middle + _PEAK_HALF_WIDTH])


def _peak_centre(positive: list[float], guess: float) -> float:
    """Centre of the autocorrelation peak near ``guess``, to a fraction of a lag.

    Mean shift with a triangular kernel: a centroid whose window follows the estimate, so it
    is not pulled towards whichever whole lag the search started from. Plain Python, as
    numpy's per-call overhead would dominate on a handful of values.
    """
    width = float(_PEAK_HALF_WIDTH)
    centre = guess
    for _ in range(8):
        base = math.floor(centre)
        first = max(0, base - _PEAK_HALF_WIDTH + 1)
        last = min(len(positive), base + _PEAK_HALF_WIDTH + 1)
        total = moment = 0.0
        for lag in range(first, last):
            weight = (1.0 - abs(lag - centre) / width) * positive[lag]
            total += weight
            moment += weight * lag
        if total <= _EPSILON:
            break
        moved = moment / total
        if abs(moved - centre) < 1e-3:
            return moved
        centre = moved
    return centre


def _fit_period(acf: NDArray[np.float64], lag: int) -> tuple[float, float]:
    """Least-squares period through the peaks at the first multiples of ``lag`` in view.

    Returns the period in blocks and the confidence: how far the first few peaks stand above
    the autocorrelation between beats. A beat scores near 1; noise, and the fast wobble a
    steady low tone puts on short blocks, score near 0 because they fill the gaps too.
    """
    positive: list[float] = np.maximum(acf, 0.0).tolist()
    period = _peak_centre(positive, lag)
    weighted_lags = 0.0
    weighted_squares = 0.0
    masses: list[float] = []
    in_view = int((len(positive) - _PEAK_HALF_WIDTH) / period)
    for multiple in range(1, max(1, min(_FIT_MULTIPLES, in_view)) + 1):
        centre = _peak_centre(positive, multiple * period)
        mass = _peak_mass(positive, centre)
        if len(masses) < 4:
            masses.append(mass)
        weighted_lags += mass * multiple * centre
        weighted_squares += mass * multiple * multiple
        if weighted_squares > _EPSILON:
            period = weighted_lags / weighted_squares
    gap = positive[round(period / 4) : round(3 * period / 4) + 1]
    background = (2 * _PEAK_HALF_WIDTH - 1) * sum(gap) / len(gap)
    confidence = sum(masses) / len(masses) - background
    return period, min(1.0, max(0.0, confidence))


class TempoTracker:
    """Tempo of one stream, re-estimated every :data:`UPDATE_SECONDS` of audio.

    Per block it only keeps references to the block's flux and magnitudes; the heavy step
    (onset strength of the batch, autocorrelation, fit) runs once per update interval over
    the last :data:`HISTORY_SECONDS`, so its cost is spread over many blocks.
    """

    def __init__(self, frame_rate: float) -> None:
        self.frame_rate = frame_rate
        self.bpm = 0.0
        self.confidence = 0.0
        self._step = max(1, round(UPDATE_SECONDS * frame_rate))
        self._history = np.zeros(max(self._step, round(HISTORY_SECONDS * frame_rate)))
        self._filled = 0
        self._flux: list[NDArray[np.float32]] = []
        self._magnitudes: list[NDArray[np.float32]] = []

    def push(self, flux: NDArray[np.float32], magnitudes: NDArray[np.float32]) -> None:
        """Record one block; both arrays must stay unmodified until the next update."""
        self._flux.append(flux)
        self._magnitudes.append(magnitudes)
        if len(self._flux) == self._step:
            self._update()

    def reset(self) -> None:
        self.bpm = 0.0
        self.confidence = 0.0
        self._filled = 0
        self._flux.clear()
        self._magnitudes.clear()

    def _update(self) -> None:
        blocks = len(self._flux)
        fresh = onset_strength(
            np.concatenate(self._flux).reshape(blocks, -1),
            np.concatenate(self._magnitudes).reshape(blocks, -1),
        )
        self._flux.clear()
        self._magnitudes.clear()
        history = self._history
        history[:-blocks] = history[blocks:]
        history[-blocks:] = fresh
        self._filled = min(len(history), self._filled + blocks)
        estimate = estimate_tempo(history[len(history) - self._filled :], self.frame_rate)
        self.bpm = estimate.bpm
        self.confidence = estimate.confidence
