"""Where the beats fall: phase of a beat grid in an onset-strength signal, and a clock that ticks.

Given a beat period (from the tempo estimate), the grid's phase is the one whose beats, and
their repeats back through the last few seconds, land on the most onset strength: the
comb-template phase search of Davies & Plumbley (2007), with older beats weighted down so the
phase follows a drummer who drifts. The same search at twice the period tells the metrical
level: if the off-beats of the slower grid carry about as much as its beats, the faster level is
the beat a listener taps (click tracks, drum & bass snares); if they are clearly weaker, the
faster "beats" are only subdivisions (hi-hat eighths over a slow backbeat).

:class:`BeatClock` then emits beats block by block from the latest grid, as a predictor does
in a real-time beat tracker: a beat is flagged on the block it falls in, ahead of the onset
strength that would confirm it, so a visual can flash in time rather than late.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

# Weight of a beat k periods back is exp(-k·period / decay): about the last four seconds count.
PHASE_DECAY_SECONDS = 2.0
# Beats looked back over; beyond a few seconds the phase of a live drummer has moved on.
PHASE_SPAN_SECONDS = 4.0
# A phase away from the followed one needs to score 1 / (1 - PHASE_INERTIA) times higher to win;
# "away" is beyond a Gaussian PHASE_INERTIA_WIDTH of a period wide.
PHASE_INERTIA = 0.4
PHASE_INERTIA_WIDTH = 0.1
# Blocks either side of the exact off-beat searched for it: a sub-block period puts alternate
# beats on different block boundaries.
_OFFBEAT_REACH = 2.0
# Phase search resolution, in blocks (refined further by a parabola through the best three).
_PHASE_STEP = 0.5


def smooth(onset: NDArray[np.float64]) -> NDArray[np.float64]:
    """Onset strength smeared over ±2 blocks, so a beat a few ms off the grid still scores."""
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    smoothed: NDArray[np.float64] = np.convolve(onset, kernel, "same")
    return smoothed


def phase_scores(
    onset: NDArray[np.float64], period: float, frame_rate: float, decay: bool = True
) -> tuple[NDArray[np.float64], float]:
    """Scores of beat grids of ``period`` blocks whose latest beat is ``lag`` blocks old.

    Returns the scores for lags ``0, step, 2·step, ... < period`` and the step. Each score is
    the weighted sum of ``onset`` (linearly interpolated) at the grid's beats back through
    :data:`PHASE_SPAN_SECONDS`, older beats weighing less when ``decay`` is set.
    """
    count = len(onset)
    step = _PHASE_STEP
    lags = np.arange(0.0, period, step)
    beats = max(1, min(int(PHASE_SPAN_SECONDS * frame_rate / period), int((count - 1) / period)))
    back = np.arange(beats) * period
    weights = np.exp(-back / (PHASE_DECAY_SECONDS * frame_rate)) if decay else np.ones(beats)
    positions = (count - 1) - lags[:, np.newaxis] - back[np.newaxis, :]
    values = np.interp(positions.ravel(), np.arange(count), onset).reshape(positions.shape)
    scores: NDArray[np.float64] = values @ weights
    return scores, step


def best_lag(scores: NDArray[np.float64], step: float, expected: float | None = None) -> float:
    """The lag of the highest score, refined between grid steps by a parabola through three.

    With an ``expected`` lag (where the grid being followed puts its latest beat), scores are
    weighed down with their distance from it, so that a phase the beats already follow keeps
    them unless another scores clearly higher: a swung off-beat that scores as well as the
    beat for a moment does not make the beats jump to it and back.
    """
    if expected is not None:
        period = len(scores) * step
        distance = np.abs(
            (np.arange(len(scores)) * step - expected + period / 2) % period - period / 2
        )
        closeness = np.exp(-0.5 * (distance / (PHASE_INERTIA_WIDTH * period)) ** 2)
        scores = scores * (1.0 - PHASE_INERTIA + PHASE_INERTIA * closeness)
    index = int(np.argmax(scores))
    size = len(scores)
    left = scores[(index - 1) % size]
    middle = scores[index]
    right = scores[(index + 1) % size]
    curvature = left - 2.0 * middle + right
    shift = 0.0 if curvature >= 0.0 else 0.5 * (left - right) / curvature
    return (index + max(-0.5, min(0.5, shift))) * step


def offbeat_ratio(onset: NDArray[np.float64], period: float, frame_rate: float) -> float:
    """How much the off-beats of a grid of ``period`` blocks carry, relative to its beats.

    Both grids (beats and off-beats half a period later) are scored above the median of all
    phases, so steady background does not count; 1.0 means the off-beats are as strong as
    the beats (the true beat is twice as fast), near 0 that they carry nothing.
    """
    # Unweighted: the off-beats are half a period older than the beats they are compared with.
    scores, step = phase_scores(onset, period, frame_rate, decay=False)
    index = int(np.argmax(scores))
    opposite = index + round(0.5 * period / step)
    reach = round(_OFFBEAT_REACH / step)
    window = np.arange(opposite - reach, opposite + reach + 1) % len(scores)
    floor = float(np.median(scores))
    top = float(scores[index]) - floor
    if top <= 0.0:
        return 1.0
    return max(0.0, float(scores[window].max()) - floor) / top


class BeatClock:
    """Beats of the latest grid, one block at a time, never two within half a period.

    Times are in blocks since the stream started: block ``i`` spans ``[i, i + 1)``. The phase
    reported for a block is the beat position at its end, so the block that holds a beat
    reports a phase just above 0.
    """

    def __init__(self) -> None:
        self.now = 0
        self.period = 0.0
        self._next = math.inf
        self._last = -math.inf

    def expected_lag(self, newest: int) -> float | None:
        """How many blocks before block ``newest`` the current grid put its latest beat."""
        if self.period <= 0.0 or not math.isfinite(self._next):
            return None
        return (newest - self._next) % self.period

    def align(self, anchor: float, period: float) -> None:
        """Follow a grid with a beat at ``anchor`` (any time, past or future) every ``period``."""
        earliest = max(float(self.now), self._last + 0.5 * period)
        self.period = period
        self._next = anchor + math.ceil((earliest - anchor) / period) * period

    def clear(self) -> None:
        """No grid: no beats until the next :meth:`align`."""
        self.period = 0.0
        self._next = math.inf
        self._last = -math.inf

    def advance(self) -> tuple[float, bool]:
        """Move past one block; ``(phase at its end, whether a beat fell in it)``."""
        end = self.now + 1
        self.now = end
        if self.period <= 0.0:
            return 0.0, False
        beat = self._next < end
        if beat:
            self._last = self._next
            self._next += self.period
        phase = 1.0 - (self._next - end) / self.period
        return min(1.0, max(0.0, phase)) % 1.0, beat
