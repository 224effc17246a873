"""Tempo: click tracks read within ±2 BPM after 8 s, no octave errors, steady sound reads none."""

from __future__ import annotations

import numpy as np
import pytest
from clicks import SECONDS, blocks, click_track
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from phase4_trio.dsp import WINDOW_NAMES, Analysis, Analyzer, TempoTracker, estimate_tempo
from phase4_trio.dsp.tempo import HISTORY_SECONDS, UNKNOWN, UPDATE_SECONDS

CLICK_RANGE = (50.0, 210.0)
TEMPOS = (60, 75, 90, 100, 120, 128, 140, 160, 174, 200)


def analyse(
    samples: NDArray[np.float32], sample_rate: int, size: int = 256, channels: int = 1
) -> Analysis:
    """Feed every block and return the last analysis (tempo range 50-210, around the clicks)."""
    analyzer = Analyzer(size, sample_rate, "hann", tempo_range=CLICK_RANGE)
    results = [analyzer.process(block) for block in blocks(samples, size, channels)]
    return results[-1]


@pytest.mark.parametrize("bpm", TEMPOS)
def test_click_track_at_44k1_256(bpm: int) -> None:
    result = analyse(click_track(bpm, 44100, seed=bpm), 44100)
    assert abs(result.bpm - bpm) <= 2.0
    assert result.bpm_confidence > 0.5


@pytest.mark.parametrize("bpm", [60, 90, 128, 174, 200])
@pytest.mark.parametrize(("sample_rate", "size"), [(48000, 256), (44100, 512)])
def test_click_track_at_other_rates_and_sizes(bpm: int, sample_rate: int, size: int) -> None:
    result = analyse(click_track(bpm, sample_rate, seed=bpm), sample_rate, size)
    assert abs(result.bpm - bpm) <= 2.0
    assert result.bpm_confidence > 0.5


@pytest.mark.parametrize("bpm", [60, 120, 200])
def test_blip_click_track_in_stereo(bpm: int) -> None:
    result = analyse(click_track(bpm, 44100, kind="blip"), 44100, channels=2)
    assert abs(result.bpm - bpm) <= 2.0
    assert result.bpm_confidence > 0.5


@settings(max_examples=8, deadline=None)
@given(st.floats(60.0, 200.0), st.floats(0.0, 1.0), st.sampled_from(["noise", "blip"]))
def test_any_tempo_in_range_to_a_fraction_of_a_block(bpm: float, offset: float, kind: str) -> None:
    # One block of lag is ~4 BPM at 200 BPM; whole-block periods would be off by up to 2.
    result = analyse(click_track(bpm, 44100, kind=kind, offset=offset), 44100)
    assert abs(result.bpm - bpm) <= 0.5


# Low tones have fewer than two cycles per block: their magnitudes wobble from block to block.
@pytest.mark.parametrize("hz", [50.0, 60.0, 85.0, 100.0, 180.0, 220.0, 440.0, 1000.0, 3000.0])
def test_steady_tone_has_no_tempo(hz: float) -> None:
    t = np.arange(int(SECONDS * 44100)) / 44100
    result = analyse((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 44100)
    assert result.bpm == 0.0
    assert result.bpm_confidence < 0.3


@pytest.mark.parametrize("window", WINDOW_NAMES)
@pytest.mark.parametrize("hz", [400.0, 1080.0])
def test_steady_tone_has_no_tempo_through_any_window(window: str, hz: float) -> None:
    # Hamming's raised edges leak a tone's phase at the block edges into every bin.
    t = np.arange(int(SECONDS * 44100)) / 44100
    analyzer = Analyzer(256, 44100, window)
    tone = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    results = [analyzer.process(block) for block in blocks(tone)]
    assert results[-1].bpm == 0.0
    assert results[-1].bpm_confidence < 0.3


def test_white_noise_has_low_confidence() -> None:
    noise = np.random.default_rng(7).uniform(-0.5, 0.5, int(SECONDS * 44100))
    result = analyse(noise.astype(np.float32), 44100)
    assert result.bpm == 0.0
    assert result.bpm_confidence < 0.3


@pytest.mark.parametrize("seed", range(1, 9))
def test_brown_noise_has_no_tempo(seed: int) -> None:
    # A random walk: its slow swells fill the autocorrelation between would-be beats.
    walk = np.cumsum(np.random.default_rng(seed).standard_normal(int(SECONDS * 44100)))
    result = analyse((0.5 * walk / np.abs(walk).max()).astype(np.float32), 44100)
    assert result.bpm == 0.0
    assert result.bpm_confidence < 0.3


def test_silence_has_no_tempo() -> None:
    result = analyse(np.zeros(int(SECONDS * 44100), dtype=np.float32), 44100)
    assert (result.bpm, result.bpm_confidence) == (0.0, 0.0)


def test_zero_until_known() -> None:
    # Two periods of the slowest tempo are needed; one second of clicks is not enough.
    result = analyse(click_track(120, 44100, seconds=1.0), 44100)
    assert (result.bpm, result.bpm_confidence) == (0.0, 0.0)


def test_reset_forgets_the_tempo() -> None:
    analyzer = Analyzer(256, 44100, "hann")
    clicks = blocks(click_track(120, 44100))
    for block in clicks:
        analyzer.process(block)
    assert analyzer.process(clicks[0]).bpm == pytest.approx(120.0, abs=2.0)
    analyzer.reset()
    for block in clicks[: len(clicks) // 8]:
        result = analyzer.process(block)
        assert (result.bpm, result.bpm_confidence) == (0.0, 0.0)


def test_tempo_follows_a_change() -> None:
    # After the history has rolled over, the old tempo is forgotten.
    seconds = HISTORY_SECONDS + 4.0
    track = np.concatenate([click_track(90, 44100, seconds=4.0), click_track(140, 44100, seconds)])
    result = analyse(track, 44100)
    assert abs(result.bpm - 140.0) <= 2.0


def test_estimate_updates_only_every_quarter_second() -> None:
    frame_rate = 44100 / 256
    tracker = TempoTracker(44100, 256)
    clicks = blocks(click_track(120, 44100))
    analyzer = Analyzer(256, 44100, "hann")
    changes = 0
    last = (tracker.bpm, tracker.confidence)
    for block in clicks:
        result = analyzer.process(block)
        tracker.push(result.flux, result.magnitudes)
        if (tracker.bpm, tracker.confidence) != last:
            changes += 1
            last = (tracker.bpm, tracker.confidence)
    assert 0 < changes <= len(clicks) / (UPDATE_SECONDS * frame_rate) + 1


def impulses(period: float, count: int) -> NDArray[np.float64]:
    """An onset signal with onsets at fractional block positions, split between neighbours."""
    onset = np.zeros(count)
    position = 3.0
    while position < count - 1:
        whole = int(position)
        onset[whole] += 1.0 - (position - whole)
        onset[whole + 1] += position - whole
        position += period
    return onset


@settings(deadline=None)
@given(st.floats(60.0, 200.0))
def test_estimate_finds_fractional_periods(bpm: float) -> None:
    frame_rate = 44100 / 256
    estimate = estimate_tempo(impulses(60.0 * frame_rate / bpm, 1378), frame_rate, CLICK_RANGE)
    assert estimate.bpm == pytest.approx(bpm, abs=0.5)
    assert estimate.confidence > 0.5


def test_estimate_needs_two_slow_beats() -> None:
    frame_rate = 44100 / 256
    assert estimate_tempo(impulses(100.0, 300), frame_rate) == UNKNOWN
