"""Which metrical level is the beat: a period, or its double or half inside the tempo range.

A groove repeats at its beat, at the sub-beat below it and at the half bar and the bar above,
so autocorrelation alone cannot tell 84 from 168 BPM. A listener taps a level whose beats are
all alike, with something between them: no slower (every other beat would then be as strong as
the beats kept) and no faster (the beats would then alternate strong and weak, with nothing
between). One measurement of a beat grid of period ``p`` at its best phase gives both cues: its
**off-beat ratio**, what the points half a period after its beats collect as a share of what
its beats collect, both above the median over all phases (so a steady background counts for
nothing). Near 0: nothing between the beats. Near 1: the off-beats are as strong as the beats.

Going from the slowest level in range to the fastest, the faster of two neighbours ``f`` and
``s = 2f`` is the beat when ``f`` is itself subdivided (its off-beat ratio is at least
:data:`SUBDIVISION_THRESHOLD`: hi-hat eighths under a drum & bass beat at 174) or when the
slower level's off-beats are about as strong as its beats (at least :data:`OFFBEAT_THRESHOLD`:
a click track, seen at half its tempo); otherwise ``f`` is only the subdivision of ``s`` (the
hi-hat eighths of a rock beat at 76, with nothing between them).

The certainty of the choice is how far the measurement that decided it stands from its
threshold (scaled by :data:`SUBDIVISION_MARGIN` or :data:`OFFBEAT_MARGIN`). A faster level
chosen while it is subdivided is capped at :data:`SUBDIVIDED_CERTAINTY`: subdivision cannot
tell a funk groove at 84 BPM with sixteenth-note hi-hats from one at 168 with eighths, nor a
drum & bass groove at 174 from a half-time one at 87; only the snare's place in the bar could,
and that is not measured here. The thresholds and margins were set on the groove test set of
tests/grooves.py and the click tracks of tests/test_dsp_tempo.py.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from numpy.typing import NDArray

from .beat import phase_scores

SUBDIVISION_THRESHOLD = 0.07
OFFBEAT_THRESHOLD = 0.62
# Distances from the thresholds at which a choice counts as certain.
SUBDIVISION_MARGIN = 0.07
OFFBEAT_MARGIN = 0.08
SUBDIVIDED_CERTAINTY = 0.45
# A level needs an autocorrelation peak of at least this near its period to be a candidate:
# swung eighths, for one, do not repeat every half beat, so they are no level.
MIN_SUPPORT = 0.1
# Blocks either side of the exact off-beat searched: a period of a fractional number of blocks
# puts alternate beats on different block boundaries.
_OFFBEAT_REACH = 2


@attrs.frozen
class LevelChoice:
    """The chosen period (blocks) and how certain the choice is (0-1)."""

    period: float
    certainty: float


def offbeat_ratio(smoothed: NDArray[np.float64], period: float, frame_rate: float) -> float:
    """What the off-beats of the best grid of ``period`` collect, as a share of its beats.

    Both are measured above the median over all phases; unweighted, because the off-beats are
    half a period older than the beats they are compared with.
    """
    scores = phase_scores(smoothed, period, frame_rate, decay=False)
    size = len(scores)
    index = int(np.argmax(scores))
    opposite = index + round(0.5 * period)
    reach = np.arange(opposite - _OFFBEAT_REACH, opposite + _OFFBEAT_REACH + 1) % size
    floor = float(np.partition(scores, size // 2)[size // 2])
    top = float(scores[index]) - floor
    if top <= 0.0:
        return 1.0
    return max(0.0, float(scores[reach].max()) - floor) / top


def levels(acf: NDArray[np.float64], period: float, shortest: float, longest: float) -> list[float]:
    """``period`` and its doubles and halves in ``[shortest, longest]`` (a block of slack each
    way) that the autocorrelation supports, slowest first."""
    found = []
    low = period
    while low / 2.0 >= shortest - 1.0:
        low /= 2.0
    level = low
    while level <= longest + 1.0:
        middle = round(level)
        if middle + 3 <= len(acf) and acf[max(0, middle - 2) : middle + 3].max() >= MIN_SUPPORT:
            found.append(level)
        level *= 2.0
    found.reverse()
    return found or [period]


def choose_level(
    smoothed: NDArray[np.float64],
    acf: NDArray[np.float64],
    period: float,
    shortest: float,
    longest: float,
    frame_rate: float,
) -> LevelChoice:
    """The level a listener would tap, among ``period``'s octaves that :func:`levels` finds.

    The certainty is that of the last step up to the chosen level (1 if it is the slowest),
    and of the refusal to go on to the next faster level, if there is one.
    """
    candidates = levels(acf, period, shortest, longest)
    chosen = candidates[0]
    certainty = 1.0
    if len(candidates) == 1:
        return LevelChoice(chosen, certainty)
    slow_offbeats = offbeat_ratio(smoothed, chosen, frame_rate)
    for fast in candidates[1:]:
        if not math.isclose(fast * 2.0, chosen):
            break
        fast_offbeats = offbeat_ratio(smoothed, fast, frame_rate)
        subdivided = (fast_offbeats - SUBDIVISION_THRESHOLD) / SUBDIVISION_MARGIN
        doubled = (slow_offbeats - OFFBEAT_THRESHOLD) / OFFBEAT_MARGIN
        if subdivided < 0.0 and doubled < 0.0:
            certainty = min(certainty, -max(subdivided, doubled), 1.0)
            break
        if subdivided >= 0.0:
            certainty = min(SUBDIVIDED_CERTAINTY, max(doubled, subdivided))
        else:
            certainty = min(1.0, doubled)
        chosen, slow_offbeats = fast, fast_offbeats
    return LevelChoice(chosen, certainty)
