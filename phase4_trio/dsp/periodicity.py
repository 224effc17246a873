"""How a novelty signal repeats: its autocorrelation, the candidate beat periods in it, and the
period fitted to a fraction of a frame.

The autocorrelation stands in for the histogram of *all* inter-onset intervals. Each of its
peaks in the tempo range is a candidate beat period, ranked as the beat-tracking literature
does: the autocorrelation summed over the period's metrical multiples (a comb: a beat is
subdivided and repeats at the half bar and the bar; a lag of three eighths does not) times a
log-normal tempo prior around 120 BPM (Ellis 2007; the prior of librosa's tempo estimate).
A period is then fitted through the peaks at all its multiples at once, each centred to a
fraction of a frame, so the error shrinks with every beat in view.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

# The tempo prior: log-normal around PRIOR_BPM, PRIOR_OCTAVES wide (one standard deviation).
PRIOR_BPM = 120.0
PRIOR_OCTAVES = 1.0
# Lags, in candidate periods, summed into a candidate's salience: the duple metrical hierarchy
# around a beat (its subdivision, itself, the half bar, the bar in 4/4).
COMB_FACTORS = (0.5, 1.0, 2.0, 4.0)
# Half-width, in lags, of the neighbourhood that makes up one autocorrelation peak: block-
# quantised onsets smear each peak over about two lags either side.
PEAK_HALF_WIDTH = 3
# Peaks fitted per period: enough for a few hundredths of a BPM.
FIT_MULTIPLES = 8
# A peak within this fraction of a whole multiple or fraction of a period is the same pulse.
FAMILY_TOLERANCE = 0.04
# Mean-shift steps per peak centre at most (it usually settles within a few), and the move, in
# lags, below which it has settled.
_CENTRE_STEPS = 8
_CENTRE_TOLERANCE = 0.01
_EPSILON = 1e-12


def _fft_size(minimum: int) -> int:
    """Smallest 2**a * 3**b >= minimum: pocketfft is fast on these, and they waste less
    padding than powers of two alone."""
    best = 1 << (minimum - 1).bit_length()
    three = 3
    while three < best:
        best = min(best, three << (-(-minimum // three) - 1).bit_length())
        three *= 3
    return best


def autocorrelation(
    novelty: NDArray[np.float64], lags: int, recency: int | None
) -> NDArray[np.float64]:
    """Autocorrelation at lags ``0 .. lags - 1``, 1.0 at lag 0; with a ``recency`` (in
    frames), the signal weighted towards its end.

    Frame ``i`` of ``n`` weighs ``exp(-(n - 1 - i) / recency)`` (1 without a recency); each lag
    is divided by the same sum over the weights alone, so it is unbiased (a beat's later
    repeats are not penalised, which the comb and the multi-peak fit both rely on). Weighted,
    a tempo change shows in the peaks within a few seconds; unweighted, a steady tempo's peaks
    are as sharp as the whole signal makes them.
    """
    size, weights, shares, normaliser = _weighting(len(novelty), lags, recency)
    weighted = novelty - float(shares @ novelty)
    if recency is not None:
        weighted *= weights
    spectrum = np.fft.rfft(weighted, size)
    spectrum *= spectrum.conj()
    acf = np.fft.irfft(spectrum, size)[:lags]
    acf *= normaliser
    if acf[0] > 0.0:
        acf /= acf[0]
    return acf


@functools.lru_cache(maxsize=8)
def _weighting(
    count: int, lags: int, recency: int | None
) -> tuple[int, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """For :func:`autocorrelation` of a signal of ``count`` frames (the same for every one):
    the FFT size, the frame weights, the weights as shares of their sum (for the weighted
    mean), and the reciprocal of the weights' own autocorrelation per lag."""
    size = _fft_size(count + lags)
    if recency is None:
        weights = np.ones(count)
        own = np.arange(count, count - lags, -1, dtype=np.float64)
    else:
        weights = np.exp((np.arange(count) - (count - 1)) / recency)
        window = np.fft.rfft(weights, size)
        own = np.fft.irfft(window.real**2 + window.imag**2, size)[:lags]
    return size, weights, weights / weights.sum(), 1.0 / own


def prior(period: float, frame_rate: float) -> float:
    """Log-normal tempo prior: 1 at :data:`PRIOR_BPM`, e^-1/2 one :data:`PRIOR_OCTAVES` away."""
    octaves = math.log2(60.0 * frame_rate / period / PRIOR_BPM) / PRIOR_OCTAVES
    return math.exp(-0.5 * octaves * octaves)


def candidates(
    acf: list[float], shortest: float, longest: float, frame_rate: float
) -> list[tuple[int, float]]:
    """The peaks of ``acf`` (an autocorrelation, negative values set to 0) with lags in
    ``[shortest, longest]``, as ``(lag, comb salience × prior)``.

    Salience is the mean, over :data:`COMB_FACTORS` times the peak's lag, of the
    autocorrelation's maximum within a lag of each. Plain Python: there are a handful of peaks.
    """
    found = []
    last = len(acf) - 2
    for lag in range(max(1, math.floor(shortest)), min(last, math.ceil(longest)) + 1):
        value = acf[lag]
        if value <= 0.0 or value < acf[lag - 1] or value <= acf[lag + 1]:
            continue
        taps = [round(lag * factor) for factor in COMB_FACTORS]
        near = [max(acf[tap - 1], acf[tap], acf[tap + 1]) for tap in taps if tap <= last]
        found.append((lag, sum(near) / len(near) * prior(lag, frame_rate)))
    return found


def rivalry(found: list[tuple[int, float]], period: float) -> float:
    """The best score of a peak that is not the same pulse as ``period``, relative to the best
    score of one that is (0-1).

    A peak at a whole multiple or a whole fraction of the period is the same pulse at another
    level (the bar, the sub-beat); any other peak is a different reading of the rhythm: a
    dotted-eighth kick pattern, for one, makes a tempo at 4/3 of the beat a close rival.
    """
    family = rivals = 0.0
    for lag, score in found:
        ratio = lag / period if lag >= period else period / lag
        if abs(ratio - round(ratio)) <= FAMILY_TOLERANCE * ratio:
            family = max(family, score)
        else:
            rivals = max(rivals, score)
    return min(1.0, rivals / family) if family > 0.0 else 0.0


def fit_period(
    positive: list[float], lag: float, multiples: int = FIT_MULTIPLES
) -> tuple[float, float]:
    """Least-squares period through the peaks of ``positive`` (an autocorrelation, negative
    values set to 0) at the first ``multiples`` multiples of ``lag`` in view.

    Returns the period in frames and how periodic the signal is at it: how far the first few
    peaks stand above the autocorrelation between beats. A beat scores near 1; noise, and the
    fast wobble a steady low tone puts on short blocks, score near 0 because they fill the gaps
    too. Each peak is centred from the multiple of the period fitted so far. Plain Python, as
    numpy's per-call overhead would dominate on a handful of values.
    """
    period = _peak_centre(positive, lag)
    weighted_lags = 0.0
    weighted_squares = 0.0
    masses: list[float] = []
    in_view = int((len(positive) - PEAK_HALF_WIDTH) / period)
    for multiple in range(1, max(1, min(multiples, in_view)) + 1):
        centre = _peak_centre(positive, multiple * period)
        mass = _peak_mass(positive, centre)
        if len(masses) < 4:
            masses.append(mass)
        weighted_lags += mass * multiple * centre
        weighted_squares += mass * multiple * multiple
        if weighted_squares > _EPSILON:
            period = weighted_lags / weighted_squares
    gap = positive[round(period / 4) : round(3 * period / 4) + 1]
    background = (2 * PEAK_HALF_WIDTH - 1) * sum(gap) / len(gap)
    periodicity = sum(masses) / len(masses) - background
    return period, min(1.0, max(0.0, periodicity))


def _peak_mass(positive: list[float], centre: float) -> float:
    """The autocorrelation summed over the whole lags within two of ``centre``."""
    middle = round(centre)
    return sum(positive[max(0, middle - PEAK_HALF_WIDTH + 1) : middle + PEAK_HALF_WIDTH])


def _peak_centre(positive: list[float], guess: float) -> float:
    """Centre of the autocorrelation peak near ``guess``, to a fraction of a lag.

    Mean shift with a triangular kernel: a centroid whose window follows the estimate, so it
    is not pulled towards whichever whole lag the search started from.
    """
    width = float(PEAK_HALF_WIDTH)
    centre = guess
    for _ in range(_CENTRE_STEPS):
        base = math.floor(centre)
        first = max(0, base - PEAK_HALF_WIDTH + 1)
        last = min(len(positive), base + PEAK_HALF_WIDTH + 1)
        total = moment = 0.0
        for lag in range(first, last):
            weight = (1.0 - abs(lag - centre) / width) * positive[lag]
            total += weight
            moment += weight * lag
        if total <= _EPSILON:
            break
        moved = moment / total
        if abs(moved - centre) < _CENTRE_TOLERANCE:
            return moved
        centre = moved
    return centre
