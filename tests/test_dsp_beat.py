"""Beats: the phase search, the clock that flags them block by block, and the beats the
analysis flags on click tracks (within ±35 ms of each click, none when the clicks stop)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from clicks import blocks, click_track
from numpy.typing import NDArray

from phase4_trio.dsp import Analyzer, BeatClock
from phase4_trio.dsp.beat import best_lag, phase_scores, smooth

FRAME_RATE = 44100 / 256


def impulses(period: float, latest_age: float, count: int = 1378) -> NDArray[np.float64]:
    """Unit onsets every ``period`` frames, the latest ``latest_age`` frames before the end."""
    novelty = np.zeros(count)
    position = count - 1 - latest_age
    while position >= 0:
        whole = int(position)
        novelty[whole] += 1.0 - (position - whole)
        if whole + 1 < count:
            novelty[whole + 1] += position - whole
        position -= period
    return novelty


@pytest.mark.parametrize(
    ("period", "age"), [(86.13, 0.0), (86.13, 40.3), (57.4, 12.75), (100.0, 99.0)]
)
@pytest.mark.parametrize("decay", [True, False])
def test_the_best_grid_is_where_the_onsets_are(period: float, age: float, decay: bool) -> None:
    novelty = smooth(impulses(period, age))
    lag = best_lag(phase_scores(novelty, period, FRAME_RATE, decay), period)
    # Within half a frame (2.9 ms), even for an onset in the very last frame.
    distance = abs((lag - age + period / 2) % period - period / 2)
    assert distance <= 0.5


def test_a_followed_phase_keeps_the_beats_against_an_equal_rival() -> None:
    # Onsets on the beat and on the off-beat, equally strong: the followed phase wins.
    period = 100.0
    novelty = smooth(impulses(period, 10.0) + impulses(period, 60.0))
    scores = phase_scores(novelty, period, FRAME_RATE)
    assert abs(best_lag(scores, period, expected=12.0) - 10.0) <= 1.0
    assert abs(best_lag(scores, period, expected=58.0) - 60.0) <= 1.0


def test_the_clock_flags_one_beat_per_period_and_its_phase_rises() -> None:
    clock = BeatClock()
    clock.align(anchor=3.5, period=10.0)
    ticks = [clock.advance() for _ in range(40)]
    beats = [index for index, (_phase, beat) in enumerate(ticks) if beat]
    assert beats == [3, 13, 23, 33]
    phases = [phase for phase, _beat in ticks]
    for start, end in itertools.pairwise(beats):
        assert np.all(np.diff(phases[start:end]) > 0)
    # The block holding the beat at 3.5 ends at 4.0: a twentieth of a beat later.
    assert phases[3] == pytest.approx(0.05)


def test_a_new_grid_never_puts_two_beats_within_half_a_period() -> None:
    clock = BeatClock()
    clock.align(anchor=0.5, period=20.0)
    flagged = [index for index in range(12) if clock.advance()[1]]
    assert flagged == [0]
    # A grid shifted by a third of a period would beat again at 7: too soon after 0.
    clock.align(anchor=7.5, period=20.0)
    flagged += [index for index in range(12, 60) if clock.advance()[1]]
    assert flagged == [0, 27, 47]


def test_a_cleared_clock_flags_nothing() -> None:
    clock = BeatClock()
    clock.align(anchor=1.0, period=5.0)
    clock.clear()
    assert [clock.advance() for _ in range(20)] == [(0.0, False)] * 20


def f_measure(found: NDArray[np.float64], truth: NDArray[np.float64]) -> float:
    matched = sum(bool(np.any(np.abs(truth - time) <= 0.035)) for time in found)
    hit = sum(bool(np.any(np.abs(found - time) <= 0.035)) for time in truth)
    if matched == 0:
        return 0.0
    precision, recall = matched / len(found), hit / len(truth)
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize(
    ("bpm", "rate", "size"), [(120, 44100, 256), (97, 48000, 256), (174, 44100, 512)]
)
def test_beats_fall_on_the_clicks(bpm: float, rate: int, size: int) -> None:
    offset = 0.37
    samples = click_track(bpm, rate, seconds=12.0, offset=offset, seed=3)
    analyzer = Analyzer(size, rate, "hann", tempo_range=(50.0, 210.0))
    results = [analyzer.process(block) for block in blocks(samples, size)]
    flagged = np.flatnonzero([r.beat for r in results])
    found = (flagged + 0.5) * size / rate
    found = found[found >= 4.0]
    truth = offset + np.arange(0, 40) * 60.0 / bpm
    truth = truth[(truth >= 4.0) & (truth <= found[-1] + 0.1)]
    assert f_measure(found, truth) >= 0.95
    phases = np.array([r.beat_phase for r in results])
    between = np.diff(phases)[round(4.0 * rate / size) :]
    # The phase rises block by block and falls back only where a beat is flagged.
    falls = np.flatnonzero(between < 0) + round(4.0 * rate / size) + 1
    assert set(falls.tolist()) <= set(flagged.tolist())


def test_beats_stop_within_2_seconds_of_the_last_click() -> None:
    samples = np.concatenate(
        (click_track(120, 44100, seconds=6.0), np.zeros(4 * 44100, np.float32))
    )
    analyzer = Analyzer(256, 44100, "hann")
    results = [analyzer.process(block) for block in blocks(samples)]
    quiet = round(8.0 * 44100 / 256)
    assert results[quiet - 500].bpm == pytest.approx(120.0, abs=0.5)
    assert not any(r.beat for r in results[quiet:])
    assert all((r.bpm, r.bpm_confidence) == (0.0, 0.0) for r in results[quiet:])
