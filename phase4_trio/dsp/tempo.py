"""Tempo and beats from spectral flux: novelty, its autocorrelation, the metrical level, the grid.

The original picked onsets with a threshold and voted over their intervals, which quantises
every interval to whole blocks and easily lands an octave off. Here the autocorrelation of a
novelty signal (:mod:`.novelty`) stands in for the histogram of *all* inter-onset intervals,
weighted towards the last few seconds so a tempo change is followed; each peak in the tempo
range is a candidate beat period, ranked as the beat-tracking literature does: the
autocorrelation summed over the period's metrical multiples (a comb: a beat is subdivided and
repeats at the half bar and the bar; a lag of three eighths does not) times a log-normal tempo
prior around 120 BPM (Ellis 2007, the prior of librosa's tempo estimate). Which of two
octave-related levels a listener would tap is decided by :mod:`.meter`; the chosen period is
fitted through the autocorrelation peaks at all its multiples, each centred to a fraction of a
block, and the beat grid's phase is found by :mod:`.beat`. docs/dsp.md has the method, its
parameters and the accuracy it reaches.
"""

from __future__ import annotations

import functools
import math

import attrs
import numpy as np
from numpy.typing import NDArray

from .beat import BeatClock, best_lag, phase_scores, smooth
from .meter import choose_level
from .novelty import Novelty

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
# The best candidate is certain when its strongest rival scores at most 1 - RIVAL_MARGIN of it.
RIVAL_MARGIN = 0.5
# A typical strong frame of the history is its STRONG_RANK-th strongest (not the strongest: one
# outlier, such as the first hit of a stream, must not make the rest look like silence); frames
# above OUTLIER_FACTOR times it are clipped to it before anything is measured.
STRONG_RANK = 8
OUTLIER_FACTOR = 2.0
# The music has stopped when the last STOP_SECONDS hold no novelty at least STOP_FRACTION of a
# typical strong frame.
STOP_SECONDS = 1.25
STOP_FRACTION = 0.2
# How long after a beat its novelty peaks: ONSET_DELAY_BLOCKS with a block-sized FFT, and a
# further ONSET_DELAY_WINDOWS of every sample a longer sliding window adds (the onset has to
# move that far into the window, past its tapered end, before its flux peaks). Measured on the
# groove set against the notated beat times.
ONSET_DELAY_BLOCKS = 0.55
ONSET_DELAY_WINDOWS = 0.3
# The whole history's period replaces the recent one's when they are this close (in frames):
# the tempo has then been steady over it, and more beats make a finer fit.
_STEADY_AGREEMENT = 0.5
# A peak within this fraction of a whole multiple or fraction of the period is the same pulse.
_FAMILY_TOLERANCE = 0.04
# Below this peak-over-mean novelty there are no onsets, only steady sound.
MIN_CONTRAST = 0.05
# Two periods within this fraction of each other are the same tempo.
SAME_TEMPO = 0.02
# Below this periodicity the tempo is reported as unknown (0).
MIN_PERIODICITY = 0.3
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
    novelty: NDArray[np.float64],
    frame_rate: float,
    tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
) -> TempoEstimate:
    """Tempo of a novelty signal sampled at ``frame_rate`` frames per second.

    Unknown (bpm 0) until the signal covers two periods of the slowest tempo, whenever nothing
    in it repeats (periodicity below :data:`MIN_PERIODICITY`), and once its last
    :data:`STOP_SECONDS` hold no onset.
    """
    period, confidence = estimate_period(novelty, frame_rate, tempo_range)
    if period == 0.0:
        return TempoEstimate(0.0, confidence)
    return TempoEstimate(60.0 * frame_rate / period, confidence)


def estimate_period(
    novelty: NDArray[np.float64],
    frame_rate: float,
    tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
) -> tuple[float, float]:
    """Beat period in frames (0 when unknown) and its confidence, as :func:`estimate_tempo`."""
    low, high = tempo_range
    shortest = frame_rate * 60.0 / high
    longest = frame_rate * 60.0 / low
    count = len(novelty)
    if count < 2 * longest + 2 * _PEAK_HALF_WIDTH:
        return 0.0, 0.0
    if float(novelty.max() - novelty.mean()) < MIN_CONTRAST:
        return 0.0, 0.0
    strong = float(np.partition(novelty, count - STRONG_RANK)[count - STRONG_RANK])
    if novelty[-round(STOP_SECONDS * frame_rate) :].max() < STOP_FRACTION * strong:
        return 0.0, 0.0
    novelty = np.minimum(novelty, OUTLIER_FACTOR * strong)
    recent = _autocorrelation(novelty, round(RECENCY_SECONDS * frame_rate))
    peaks, scores = _candidates(recent, shortest, longest, frame_rate)
    if len(peaks) == 0:
        return 0.0, 0.0
    positive: list[float] = np.maximum(recent, 0.0).tolist()
    period, periodicity = _fit_period(positive, int(peaks[np.argmax(scores)]))
    if periodicity < MIN_PERIODICITY:
        return 0.0, periodicity
    choice = choose_level(smooth(novelty), recent, period, shortest, longest, frame_rate)
    if not math.isclose(choice.period, period):
        period, level_periodicity = _fit_period(positive, round(choice.period))
        periodicity = max(periodicity, level_periodicity)
    steady: list[float] = np.maximum(_autocorrelation(novelty, None), 0.0).tolist()
    steady_period, _ = _fit_period(steady, round(period))
    if abs(steady_period - period) <= _STEADY_AGREEMENT:
        period = steady_period
    distinct = min(1.0, (1.0 - _rivalry(peaks, scores, period)) / RIVAL_MARGIN)
    return period, periodicity * choice.certainty * distinct


def _fft_size(minimum: int) -> int:
    """Smallest 2**a * 3**b >= minimum: pocketfft is fast on these, and they waste less
    padding than powers of two alone."""
    best = 1 << (minimum - 1).bit_length()
    three = 3
    while three < best:
        best = min(best, three << (-(-minimum // three) - 1).bit_length())
        three *= 3
    return best


def _autocorrelation(novelty: NDArray[np.float64], recency: int | None) -> NDArray[np.float64]:
    """Autocorrelation up to half the length, 1.0 at lag 0; with a ``recency`` (in frames),
    the history weighted towards its end.

    Frame ``i`` of ``n`` weighs ``exp(-(n - 1 - i) / recency)`` (1 without a recency); each lag
    is divided by the same sum over the weights alone, so it is unbiased (a beat's later
    repeats are not penalised, which the comb and the multi-peak fit both rely on). Weighted,
    a tempo change shows in the peaks within a few seconds; unweighted, a steady tempo's peaks
    are as sharp as the whole history makes them.
    """
    count = len(novelty)
    lags = count // 2
    size = _fft_size(count + lags)
    weights, normaliser = _weighting(count, recency, size)
    mean = float(weights @ novelty) / float(weights.sum())
    spectrum = np.fft.rfft(weights * (novelty - mean), size)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:lags]
    acf *= normaliser
    if acf[0] > 0.0:
        acf /= acf[0]
    return acf


@functools.lru_cache(maxsize=8)
def _weighting(
    count: int, recency: int | None, size: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The frame weights of :func:`_autocorrelation` and the reciprocal of their own
    autocorrelation, per lag (the same for every history of this length)."""
    if recency is None:
        weights = np.ones(count)
        return weights, 1.0 / np.arange(count, count - count // 2, -1, dtype=np.float64)
    weights = np.exp((np.arange(count) - (count - 1)) / recency)
    window = np.fft.rfft(weights, size)
    own = np.fft.irfft(window.real**2 + window.imag**2, size)[: count // 2]
    return weights, 1.0 / own


def prior(period: float, frame_rate: float) -> float:
    """Log-normal tempo prior: 1 at :data:`PRIOR_BPM`, e^-1/2 one :data:`PRIOR_OCTAVES` away."""
    octaves = math.log2(60.0 * frame_rate / period / PRIOR_BPM) / PRIOR_OCTAVES
    return math.exp(-0.5 * octaves * octaves)


def _candidates(
    acf: NDArray[np.float64], shortest: float, longest: float, frame_rate: float
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The autocorrelation peaks in the tempo range (lags) and their comb salience × prior.

    Salience is the mean, over :data:`COMB_FACTORS` times the peak's lag, of the
    autocorrelation's maximum near each: a beat is subdivided and repeats at the half bar and
    the bar, while a lag of three eighths (which the hi-hats alone repeat at) or of a swung
    eighth misses most of these.
    """
    lo = max(1, math.floor(shortest))
    hi = min(len(acf) - 2, math.ceil(longest))
    if hi <= lo:
        return np.zeros(0, np.intp), np.zeros(0)
    inner = acf[lo : hi + 1]
    peaks = np.flatnonzero((inner >= acf[lo - 1 : hi]) & (inner > acf[lo + 1 : hi + 2]))
    peaks = peaks[inner[peaks] > 0.0] + lo
    near = np.maximum(np.maximum(acf[:-2], acf[1:-1]), acf[2:])
    taps = np.rint(peaks[:, np.newaxis] * np.array(COMB_FACTORS)).astype(np.intp) - 1
    inside = taps < len(near)
    salience = (np.maximum(near[np.minimum(taps, len(near) - 1)], 0.0) * inside).sum(axis=1)
    salience /= np.maximum(inside.sum(axis=1), 1)
    octaves = np.log2(60.0 * frame_rate / peaks / PRIOR_BPM) / PRIOR_OCTAVES
    return peaks, salience * np.exp(-0.5 * octaves * octaves)


def _rivalry(peaks: NDArray[np.intp], scores: NDArray[np.float64], period: float) -> float:
    """The best score of a peak that is not the same pulse as ``period``, relative to the best
    score of one that is (0-1).

    A peak at a whole multiple or a whole fraction of the period is the same pulse at another
    level (the bar, the sub-beat); any other peak is a different reading of the rhythm: a
    dotted-eighth kick pattern, for one, makes a tempo at 4/3 of the beat a close rival.
    """
    ratio = peaks / period
    ratio = np.where(ratio >= 1.0, ratio, 1.0 / ratio)
    family = np.abs(ratio - np.rint(ratio)) <= _FAMILY_TOLERANCE * ratio
    if not family.any() or family.all():
        return 0.0
    return min(1.0, float(scores[~family].max()) / float(scores[family].max()))


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


def _same(period: float, other: float) -> bool:
    return abs(period - other) <= SAME_TEMPO * max(period, other)


class TempoTracker:
    """Tempo and beats of one stream: the estimate every :data:`UPDATE_SECONDS` of audio, the
    beat phase every block.

    Per block it keeps references to the block's flux and magnitudes and moves the beat clock
    on; the heavy step (novelty of the batch, autocorrelation, level, fit, beat phase) runs
    once per update interval over the last :data:`HISTORY_SECONDS`, so its cost is spread over
    many blocks. ``flux`` and ``magnitudes`` may come from an FFT longer than the block (a
    sliding window, hop = one block): the tracker reads the window length from their size and
    allows for the later novelty peak it brings.
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
        self._novelty = Novelty(sample_rate, block_size)
        self._pending = 0.0

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
        self._novelty.reset()
        self._pending = 0.0

    def _confirmed(self, period: float, confidence: float) -> tuple[float, float]:
        """The new reading, unless another tempo is shown and the previous update did not see
        this one too: then the shown one, at the lower of the two confidences.

        An estimate that flips to its octave for a single update (a fill, the first seconds of
        a stream) does not make the beats jump; a real change is followed one update later.
        Unknown (0) is taken at once, so a stop is not held over.
        """
        shown = self._clock.period
        pending, self._pending = self._pending, period
        if period == 0.0 or shown == 0.0 or _same(period, shown) or _same(period, pending):
            return period, confidence
        return shown, min(confidence, self.confidence)

    def _delay(self, bins: int) -> float:
        """Blocks from a beat to the start of the frame whose novelty peaks."""
        window = 2 * (bins - 1)
        extra = max(0, window - self.block_size)
        return ONSET_DELAY_BLOCKS + ONSET_DELAY_WINDOWS * extra / self.block_size

    def _update(self) -> None:
        blocks = len(self._flux)
        bins = len(self._magnitudes[0])
        fresh = self._novelty(np.stack(self._flux), np.stack(self._magnitudes))
        self._flux.clear()
        self._magnitudes.clear()
        history = self._history
        history[:-blocks] = history[blocks:]
        history[-blocks:] = fresh
        self._filled = min(len(history), self._filled + blocks)
        novelty = history[len(history) - self._filled :]
        period, confidence = self._confirmed(
            *estimate_period(novelty, self.frame_rate, self.tempo_range)
        )
        self.confidence = confidence
        if period == 0.0:
            self.bpm = 0.0
            self._clock.clear()
            return
        self.bpm = 60.0 * self.frame_rate / period
        scores = phase_scores(smooth(novelty), period, self.frame_rate)
        delay = self._delay(bins)
        expected = self._clock.expected_lag()
        if expected is not None:
            expected = (expected - delay) % period
        lag = best_lag(scores, period, expected)
        self._clock.align(self._clock.now - lag - delay, period)
