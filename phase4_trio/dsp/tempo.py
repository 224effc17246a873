"""Tempo from spectral flux: onset strength, its autocorrelation, and the metrical level.

The original picked onsets with a threshold and voted over their intervals, which quantises
every interval to whole blocks and easily lands an octave off. Here the autocorrelation of an
onset-strength signal stands in for the histogram of *all* inter-onset intervals (weighted
towards the last few seconds, so a tempo change is followed), each peak in the tempo range is
a candidate beat period, and the candidates are ranked as the beat-tracking literature does:
the autocorrelation summed over the period's first multiples (a comb: a beat repeats, a
subdivision that does not fit the bar does not) times a log-normal tempo prior around 120 BPM
(Ellis 2007; the prior of librosa's tempo estimate). Which of two octave-related levels a
listener would tap is left to the off-beats of the slower one (:mod:`.beat`). The winner's
period is fitted through the peaks at all its multiples, each centred to a fraction of a block.
docs/dsp.md has the method, its parameters and the accuracy it reaches.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from numpy.typing import NDArray

from .beat import BeatClock, best_lag, offbeat_ratio, phase_scores, smooth
from .onset import OnsetDetector

# The tempo range searched by default; ``dsp.tempo_range`` in the config.
DEFAULT_TEMPO_RANGE = (70.0, 180.0)
# What a tempo range may be at all: below 30 BPM two beats need more than the history, above
# 300 BPM a beat is a few blocks long.
TEMPO_LIMITS = (30.0, 300.0)
HISTORY_SECONDS = 8.0
UPDATE_SECONDS = 0.25
# Time constant of the weight the autocorrelation gives each part of the history: the last three
# seconds dominate, so a new tempo wins within a few seconds while older beats still sharpen it.
RECENCY_SECONDS = 3.0
# The tempo prior: log-normal around PRIOR_BPM, PRIOR_OCTAVES wide (one standard deviation).
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0
# Lags, in candidate periods, summed into a candidate's salience: the duple metrical hierarchy
# around a beat (its subdivision, itself, the half bar, the bar in 4/4).
COMB_FACTORS = (0.5, 1.0, 2.0, 4.0)
# The faster of two octave-related levels wins when its half period repeats at least this
# fraction as strongly as its period (it is subdivided, so it is a beat, not a subdivision)...
SUBDIVISION_THRESHOLD = 0.45
# ...or when the slower level's off-beats carry at least this fraction of its beats.
OFFBEAT_THRESHOLD = 0.8
# Distances from the thresholds at which the octave decision counts as certain.
SUBDIVISION_MARGIN = 0.45
OFFBEAT_MARGIN = 0.1
# The music has stopped when the last STOP_SECONDS hold no onset at least STOP_FRACTION as strong
# as the history's strongest.
STOP_SECONDS = 1.25
STOP_FRACTION = 0.2
# Where an onset's strength peaks after the onset, as a fraction of the FFT window's length.
ONSET_DELAY_WINDOWS = 0.25
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


def estimate_tempo(
    onset: NDArray[np.float64],
    frame_rate: float,
    tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
) -> TempoEstimate:
    """Tempo of an onset-strength signal sampled at ``frame_rate`` frames per second.

    Unknown until the signal covers two periods of the slowest tempo, and whenever nothing
    in it repeats. ``bpm`` is 0 while the confidence is below :data:`MIN_CONFIDENCE`.
    """
    period, confidence = estimate_period(onset, frame_rate, tempo_range)
    if period == 0.0:
        return TempoEstimate(0.0, confidence)
    return TempoEstimate(60.0 * frame_rate / period, confidence)


def estimate_period(
    onset: NDArray[np.float64],
    frame_rate: float,
    tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
) -> tuple[float, float]:
    """Beat period in frames (0 when unknown) and its confidence, as :func:`estimate_tempo`."""
    low, high = tempo_range
    shortest = frame_rate * 60.0 / high
    longest = frame_rate * 60.0 / low
    count = len(onset)
    if count < 2 * longest + 2 * _PEAK_HALF_WIDTH:
        return 0.0, 0.0
    if float(onset.max() - onset.mean()) < MIN_CONTRAST:
        return 0.0, 0.0
    acf = _autocorrelation(onset, RECENCY_SECONDS * frame_rate)
    lag = _most_salient_peak(acf, shortest, longest, frame_rate)
    if lag is None:
        return 0.0, 0.0
    positive: list[float] = np.maximum(acf, 0.0).tolist()
    period, periodicity = _fit_period(positive, lag)
    if periodicity < MIN_CONFIDENCE:
        return 0.0, periodicity
    period, certainty = _metrical_level(
        smooth(onset), positive, period, shortest, longest, frame_rate
    )
    return period, periodicity * certainty


def _fft_size(minimum: int) -> int:
    """Smallest 2**a * 3**b >= minimum: pocketfft is fast on these, and they waste less
    padding than powers of two alone."""
    best = 1 << (minimum - 1).bit_length()
    three = 3
    while three < best:
        best = min(best, three << (-(-minimum // three) - 1).bit_length())
        three *= 3
    return best


def _autocorrelation(onset: NDArray[np.float64], recency: float) -> NDArray[np.float64]:
    """Autocorrelation up to half the length, the history weighted towards its end, 1.0 at 0.

    Frame ``i`` of ``n`` weighs ``exp(-(n - 1 - i) / recency)``; each lag is divided by the
    same sum over the weights alone, so it is unbiased (a beat's later repeats are not
    penalised, which the comb and the multi-peak fit both rely on) and a tempo change shows
    in the peaks within a few seconds.
    """
    count = len(onset)
    lags = count // 2
    weights = np.exp((np.arange(count) - (count - 1)) / recency)
    mean = float(weights @ onset) / float(weights.sum())
    size = _fft_size(count + lags)
    spectrum = np.fft.rfft(weights * (onset - mean), size)
    window = np.fft.rfft(weights, size)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:lags]
    acf /= np.fft.irfft(window.real**2 + window.imag**2, size)[:lags]
    acf /= acf[0]
    return acf


def prior(period: float, frame_rate: float) -> float:
    """Log-normal tempo prior: 1 at :data:`PRIOR_BPM`, e^-1/2 one :data:`PRIOR_OCTAVES` away."""
    octaves = math.log2(60.0 * frame_rate / period / PRIOR_BPM) / PRIOR_OCTAVES
    return math.exp(-0.5 * octaves * octaves)


def _most_salient_peak(
    acf: NDArray[np.float64], shortest: float, longest: float, frame_rate: float
) -> int | None:
    """The autocorrelation peak in the tempo range with the highest comb salience × prior.

    Salience is the mean, over :data:`COMB_FACTORS` times the peak's lag, of the
    autocorrelation's maximum near each: a beat is subdivided and repeats at the half bar and
    the bar, while a lag of three eighths (which the hi-hats alone repeat at) or of a swung
    eighth misses most of these.
    """
    lo = max(1, math.floor(shortest))
    hi = min(len(acf) - 2, math.ceil(longest))
    if hi <= lo:
        return None
    inner = acf[lo : hi + 1]
    peaks = np.flatnonzero((inner >= acf[lo - 1 : hi]) & (inner > acf[lo + 1 : hi + 2]))
    peaks = peaks[inner[peaks] > 0.0] + lo
    if len(peaks) == 0:
        return None
    near = np.maximum.reduce([np.roll(acf, shift) for shift in (-1, 0, 1)])
    best: int | None = None
    best_score = 0.0
    for lag in peaks.tolist():
        taps = [round(lag * factor) for factor in COMB_FACTORS if lag * factor < len(acf) - 1]
        salience = float(np.maximum(near[taps], 0.0).mean())
        score = salience * prior(lag, frame_rate)
        if score > best_score:
            best, best_score = lag, score
    return best


def _metrical_level(
    onset: NDArray[np.float64],
    positive: list[float],
    period: float,
    shortest: float,
    longest: float,
    frame_rate: float,
) -> tuple[float, float]:
    """Of ``period`` and its double or half within the range, the level a listener would tap.

    Returns the period and how certain the choice is (1 when the range holds only one level).
    The faster level wins when it is itself subdivided (its half period repeats at least
    :data:`SUBDIVISION_THRESHOLD` as strongly as its period: hi-hat eighths under a
    drum & bass beat) or when the slower level's off-beats are as strong as its beats
    (:data:`OFFBEAT_THRESHOLD`: a click track); otherwise the faster pulse is only the
    subdivision of the slower (eighths over a rock beat at 76).
    """
    pairs = []
    if 0.5 * period >= shortest - 1.0:
        pairs.append((0.5 * period, period))
    if 2.0 * period <= longest + 1.0:
        pairs.append((period, 2.0 * period))
    chosen, certainty = period, 1.0
    for fast, slow in pairs:
        subdivision = _peak_mass(positive, fast / 2) / max(_peak_mass(positive, fast), _EPSILON)
        offbeats = offbeat_ratio(onset, slow, frame_rate)
        margin = max(
            (subdivision - SUBDIVISION_THRESHOLD) / SUBDIVISION_MARGIN,
            (offbeats - OFFBEAT_THRESHOLD) / OFFBEAT_MARGIN,
        )
        chosen, certainty = (fast if margin >= 0.0 else slow), min(1.0, abs(margin))
        if chosen == fast and fast < period:
            break
    if chosen != period and positive[round(chosen)] > 0.0:
        chosen, _ = _fit_period(positive, round(chosen))
    return chosen, certainty


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


def _fit_period(positive: list[float], lag: int) -> tuple[float, float]:
    """Least-squares period through the peaks at the first multiples of ``lag`` in view.

    Returns the period in frames and how periodic the signal is at it: how far the first few
    peaks stand above the autocorrelation between beats. A beat scores near 1; noise, and the
    fast wobble a steady low tone puts on short blocks, score near 0 because they fill the gaps
    too.
    """
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
    """Tempo and beats of one stream: the estimate every :data:`UPDATE_SECONDS` of audio, the
    beat phase every block.

    Per block it keeps references to the block's flux and magnitudes and moves the beat clock
    on; the heavy step (onset strength of the batch, autocorrelation, fit, beat phase) runs
    once per update interval over the last :data:`HISTORY_SECONDS`, so its cost is spread over
    many blocks. ``flux`` and ``magnitudes`` may come from an FFT longer than the block (a
    sliding window, hop = one block): the tracker reads the window length from their size and
    allows for the later onset peak it brings.
    """

    def __init__(
        self,
        sample_rate: float,
        block_size: int,
        tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
    ) -> None:
        self.frame_rate = sample_rate / block_size
        self.block_size = block_size
        self.tempo_range = tempo_range
        self.bpm = 0.0
        self.confidence = 0.0
        self.beat_phase = 0.0
        self.beat = False
        self._step = max(1, round(UPDATE_SECONDS * self.frame_rate))
        self._history = np.zeros(max(self._step, round(HISTORY_SECONDS * self.frame_rate)))
        self._filled = 0
        self._flux: list[NDArray[np.float32]] = []
        self._magnitudes: list[NDArray[np.float32]] = []
        self._clock = BeatClock()
        self._onsets = OnsetDetector(sample_rate, block_size)

    def push(self, flux: NDArray[np.float32], magnitudes: NDArray[np.float32]) -> None:
        """Record one block; both arrays must stay unmodified until the next update."""
        self._flux.append(flux)
        self._magnitudes.append(magnitudes)
        if len(self._flux) == self._step:
            self._update()
        self.beat_phase, self.beat = self._clock.advance()

    def reset(self) -> None:
        self.bpm = 0.0
        self.confidence = 0.0
        self.beat_phase = 0.0
        self.beat = False
        self._filled = 0
        self._flux.clear()
        self._magnitudes.clear()
        self._clock.clear()
        self._onsets.reset()

    def _onset_delay(self, bins: int) -> float:
        """Blocks from an onset to the frame whose onset strength peaks, minus one frame."""
        window = 2 * (bins - 1)
        return 1.0 - ONSET_DELAY_WINDOWS * window / self.block_size

    def _update(self) -> None:
        blocks = len(self._flux)
        bins = len(self._magnitudes[0])
        fresh = self._onsets(
            np.concatenate(self._flux).reshape(blocks, -1),
            np.concatenate(self._magnitudes).reshape(blocks, -1),
        )
        self._flux.clear()
        self._magnitudes.clear()
        history = self._history
        history[:-blocks] = history[blocks:]
        history[-blocks:] = fresh
        self._filled = min(len(history), self._filled + blocks)
        onset = history[len(history) - self._filled :]
        period, confidence = estimate_period(onset, self.frame_rate, self.tempo_range)
        recent = onset[-round(STOP_SECONDS * self.frame_rate) :]
        if period > 0.0 and recent.max() < STOP_FRACTION * onset.max():
            period, confidence = 0.0, 0.0
        self.confidence = confidence
        if period == 0.0:
            self.bpm = 0.0
            self._clock.clear()
            return
        self.bpm = 60.0 * self.frame_rate / period
        scores, step = phase_scores(smooth(onset), period, self.frame_rate)
        delay = self._onset_delay(bins)
        expected = self._clock.expected_lag(self._clock.now)
        if expected is not None:
            expected = (expected + delay) % period
        anchor = self._clock.now - best_lag(scores, step, expected) + delay
        self._clock.align(anchor, period)
