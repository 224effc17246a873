"""Tempo and beats from spectral flux: the steps of :mod:`.novelty`, :mod:`.periodicity`,
:mod:`.meter` and :mod:`.beat` put together, once per update interval, and a beat clock per block.

The original picked onsets with a threshold and voted over their intervals, which quantises
every interval to whole blocks and easily lands an octave off. Here the autocorrelation of the
last seconds of novelty (weighted towards the latest, so a tempo change is followed) gives the
candidate periods; the most salient one's metrical level is chosen as a listener would tap it;
its period is fitted over the whole history when the tempo has held steady over it (finer), over
the recent part otherwise; the beat grid's phase follows. docs/dsp.md has the method, its
parameters and the accuracy it reaches.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from numpy.typing import NDArray

from .beat import BeatClock, best_lag, phase_scores, smooth
from .meter import choose_level
from .novelty import Novelty
from .periodicity import (
    COMB_FACTORS,
    PEAK_HALF_WIDTH,
    autocorrelation,
    candidates,
    fit_period,
    rivalry,
)

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
# Estimates a whole-history fit serves before it is redone (one second at the update rate).
STEADY_REUSE = 4
# Peaks the recent autocorrelation's fit goes through: its later peaks rest on few beats.
RECENT_MULTIPLES = 4
# Below this peak-over-mean novelty there are no onsets, only steady sound.
MIN_CONTRAST = 0.05
# Two periods within this fraction of each other are the same tempo.
SAME_TEMPO = 0.02
# Below this periodicity the tempo is reported as unknown (0).
MIN_PERIODICITY = 0.3


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


class SteadyFit:
    """The period fitted over a whole history, kept for :data:`STEADY_REUSE` estimates.

    The whole history's autocorrelation and fit cost as much again as the rest of an estimate,
    and while the tempo holds, their result hardly moves from one update to the next.
    """

    def __init__(self) -> None:
        self.period = 0.0
        self.uses = 0

    def period_near(self, novelty: NDArray[np.float64], period: float) -> float:
        """The steady period near ``period``: the kept one if it is near and still fresh,
        else fitted anew from ``novelty``."""
        if self.uses < STEADY_REUSE and abs(self.period - period) <= _STEADY_AGREEMENT:
            self.uses += 1
            return self.period
        lags = len(novelty) // 2
        steady: list[float] = np.maximum(autocorrelation(novelty, lags, None), 0.0).tolist()
        self.period, _ = fit_period(steady, period)
        self.uses = 1
        return self.period


def estimate_period(
    novelty: NDArray[np.float64],
    frame_rate: float,
    tempo_range: tuple[float, float] = DEFAULT_TEMPO_RANGE,
    steady: SteadyFit | None = None,
) -> tuple[float, float]:
    """Beat period in frames (0 when unknown) and its confidence, as :func:`estimate_tempo`.

    A ``steady`` fit carried from one call to the next saves refitting the whole history each
    time (see :class:`SteadyFit`).
    """
    low, high = tempo_range
    shortest = frame_rate * 60.0 / high
    longest = frame_rate * 60.0 / low
    count = len(novelty)
    if count < 2 * longest + 2 * PEAK_HALF_WIDTH:
        return 0.0, 0.0
    if float(novelty.max() - novelty.mean()) < MIN_CONTRAST:
        return 0.0, 0.0
    strong = float(np.partition(novelty, count - STRONG_RANK)[count - STRONG_RANK])
    if novelty[-round(STOP_SECONDS * frame_rate) :].max() < STOP_FRACTION * strong:
        return 0.0, 0.0
    novelty = np.minimum(novelty, OUTLIER_FACTOR * strong)
    # The comb reaches four times the slowest period; the fit, a few periods beyond that.
    lags = min(count // 2, math.ceil(max(COMB_FACTORS) * longest) + 2 * PEAK_HALF_WIDTH)
    recent = autocorrelation(novelty, lags, round(RECENCY_SECONDS * frame_rate))
    positive: list[float] = np.maximum(recent, 0.0).tolist()
    found = candidates(positive, shortest, longest, frame_rate)
    if not found:
        return 0.0, 0.0
    best = max(found, key=lambda candidate: candidate[1])[0]
    period, periodicity = fit_period(positive, float(best), RECENT_MULTIPLES)
    if periodicity < MIN_PERIODICITY:
        return 0.0, periodicity
    choice = choose_level(smooth(novelty), recent, period, shortest, longest, frame_rate)
    if not math.isclose(choice.period, period):
        period, level_periodicity = fit_period(positive, choice.period, RECENT_MULTIPLES)
        periodicity = max(periodicity, level_periodicity)
    steady_period = (steady or SteadyFit()).period_near(novelty, period)
    if abs(steady_period - period) <= _STEADY_AGREEMENT:
        period = steady_period
    distinct = min(1.0, (1.0 - rivalry(found, period)) / RIVAL_MARGIN)
    return period, periodicity * choice.certainty * distinct


def _same(period: float, other: float) -> bool:
    return abs(period - other) <= SAME_TEMPO * max(period, other)


class TempoTracker:
    """Tempo and beats of one stream: the estimate every :data:`UPDATE_SECONDS` of audio, the
    beat phase every block.

    Per block it copies the block's flux and magnitudes into a buffer and moves the beat clock
    on; the heavy step (novelty of the buffered blocks, autocorrelation, level, fit, beat
    phase) runs once per update interval over the last :data:`HISTORY_SECONDS`, so its cost is
    spread over many blocks. ``flux`` and ``magnitudes`` may come from an FFT longer than the
    block (a sliding window, hop = one block): the tracker reads the window length from their
    size and allows for the later novelty peak it brings.
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
        # The blocks since the last update, copied in: (flux, magnitudes) rows.
        self._rows = np.zeros((2, self._step, 0), np.float32)
        self._count = 0
        self._clock = BeatClock()
        self._novelty = Novelty(sample_rate, block_size)
        self._steady = SteadyFit()
        self._pending = 0.0

    def push(self, flux: NDArray[np.float32], magnitudes: NDArray[np.float32]) -> None:
        """Record one block's flux and magnitudes (copied) and move the beat clock on."""
        rows = self._rows
        if rows.shape[2] != len(flux):
            rows = self._rows = np.zeros((2, self._step, len(flux)), np.float32)
            self._count = 0
        rows[0, self._count] = flux
        rows[1, self._count] = magnitudes
        self._count += 1
        if self._count == self._step:
            self._count = 0
            self._update()
        self.beat_phase, self.beat = self._clock.advance()

    def reset(self) -> None:
        self.bpm = 0.0
        self.confidence = 0.0
        self.beat_phase = 0.0
        self.beat = False
        self._filled = 0
        self._count = 0
        self._clock.clear()
        self._novelty.reset()
        self._steady = SteadyFit()
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
        """Blocks from a beat to the start of the block whose novelty peaks."""
        window = 2 * (bins - 1)
        extra = max(0, window - self.block_size)
        return ONSET_DELAY_BLOCKS + ONSET_DELAY_WINDOWS * extra / self.block_size

    def _update(self) -> None:
        blocks = self._step
        bins = self._rows.shape[2]
        fresh = self._novelty(self._rows[0], self._rows[1])
        history = self._history
        history[:-blocks] = history[blocks:]
        history[-blocks:] = fresh
        self._filled = min(len(history), self._filled + blocks)
        novelty = history[len(history) - self._filled :]
        period, confidence = self._confirmed(
            *estimate_period(novelty, self.frame_rate, self.tempo_range, self._steady)
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
