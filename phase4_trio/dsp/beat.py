"""Where the beats fall: the phase of a beat grid in a novelty signal, and a clock that ticks.

Given a beat period (from the tempo estimate), the grid's phase is the one whose beats, and
their repeats back through the last few seconds, land on the most novelty: the comb-template
phase search of Davies & Plumbley (2007), with older beats weighted down so the phase follows a
drummer who drifts, and with inertia, so a swung off-beat that scores as well as the beat for a
moment does not take the beats over. :class:`BeatClock` then flags beats block by block from the
latest grid, as the predictor of a real-time beat tracker does: a beat is flagged on the block
it falls in, ahead of the novelty that would confirm it, so a visual can flash in time rather
than late.
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
# Smoothing of the novelty before phases are scored: a beat a few ms off the grid still scores.
_SMOOTHING = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0


def smooth(novelty: NDArray[np.float64]) -> NDArray[np.float64]:
    """Novelty smeared over ±2 blocks."""
    smoothed: NDArray[np.float64] = np.convolve(novelty, _SMOOTHING, "same")
    return smoothed


def phase_scores(
    novelty: NDArray[np.float64], period: float, frame_rate: float, decay: bool = True
) -> NDArray[np.float64]:
    """Scores of beat grids of ``period`` blocks whose latest beat is ``lag`` blocks old.

    One score per whole lag ``0, 1, ... < period``: the sum of ``novelty`` (linearly
    interpolated) at the grid's beats, back through :data:`PHASE_SPAN_SECONDS` with older
    beats weighing less when ``decay`` is set, else back through the whole signal, equally.
    """
    count = len(novelty)
    beats = int((count - 1) / period)
    if decay:
        beats = min(beats, int(PHASE_SPAN_SECONDS * frame_rate / period))
    beats = max(1, beats)
    back = np.arange(beats) * period
    lags = np.arange(math.ceil(period), dtype=np.float64)
    positions = (count - 1) - back[:, np.newaxis] - lags[np.newaxis, :]
    whole = positions.astype(np.intp)
    fraction = positions - whole
    following = novelty[np.minimum(whole + 1, count - 1)]
    values = novelty[whole] * (1.0 - fraction) + following * fraction
    weights = np.exp(-back / (PHASE_DECAY_SECONDS * frame_rate)) if decay else np.ones(beats)
    scores: NDArray[np.float64] = weights @ values
    return scores


def best_lag(scores: NDArray[np.float64], period: float, expected: float | None = None) -> float:
    """The lag of the highest score, refined between whole lags by a parabola through three.

    With an ``expected`` lag (where the grid being followed puts its latest beat), scores are
    weighed down with their distance from it, so that a phase the beats already follow keeps
    them unless another scores clearly higher.
    """
    size = len(scores)
    if expected is not None:
        distance = np.abs((np.arange(size) - expected + period / 2) % period - period / 2)
        closeness = np.exp(-0.5 * (distance / (PHASE_INERTIA_WIDTH * period)) ** 2)
        scores = scores * (1.0 - PHASE_INERTIA + PHASE_INERTIA * closeness)
    index = int(np.argmax(scores))
    left = float(scores[index - 1])
    middle = float(scores[index])
    right = float(scores[(index + 1) % size])
    curvature = left - 2.0 * middle + right
    shift = 0.0 if curvature >= 0.0 else 0.5 * (left - right) / curvature
    return (index + max(-0.5, min(0.5, shift))) % period


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

    def expected_lag(self) -> float | None:
        """How long before the start of block :attr:`now` the grid put its latest beat."""
        if self.period <= 0.0 or not math.isfinite(self._next):
            return None
        return (self.now - self._next) % self.period

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
