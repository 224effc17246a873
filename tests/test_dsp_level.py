"""Per-block RMS, peak and zero-crossing rate (phase4_trio.dsp.level), and their place in the
analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from phase4_trio.dsp import Analyzer
from phase4_trio.dsp.level import FLOOR_DB, block_levels, dbfs, mono_mix

RATE = 44100
N = 256


def sine(frequency: float, amplitude: float, frames: int = N, phase: float = 0.3) -> np.ndarray:
    t = np.arange(frames) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32)


def test_a_full_scale_sine_has_rms_minus_3_dbfs_and_peak_0_dbfs() -> None:
    frames = RATE // 10  # whole cycles of 1 kHz, so the RMS is exact
    levels = block_levels(sine(1000.0, 1.0, frames, phase=math.pi / 2)[np.newaxis], RATE)
    assert float(levels.rms[0]) == pytest.approx(1 / math.sqrt(2), rel=1e-4)
    assert float(levels.peak[0]) == pytest.approx(1.0, abs=1e-6)
    assert dbfs(float(levels.rms[0])) == pytest.approx(-3.0103, abs=1e-3)
    assert dbfs(float(levels.peak[0])) == pytest.approx(0.0, abs=1e-4)


def test_a_1khz_sine_crosses_zero_2000_times_a_second() -> None:
    levels = block_levels(sine(1000.0, 0.5, 4410)[np.newaxis], RATE)
    assert float(levels.zero_crossing_rate[0]) == pytest.approx(2000.0, rel=0.01)


def test_silence_is_zero_and_the_floor_in_dbfs() -> None:
    levels = block_levels(np.zeros((3, N), np.float32), RATE)
    assert levels.rms.tolist() == [0.0, 0.0, 0.0]
    assert levels.peak.tolist() == [0.0, 0.0, 0.0]
    assert levels.zero_crossing_rate.tolist() == [0.0, 0.0, 0.0]
    assert dbfs(0.0) == FLOOR_DB


def test_each_block_of_a_batch_is_measured_on_its_own() -> None:
    batch = np.stack([sine(1000.0, 0.5), sine(1000.0, 0.25), np.zeros(N, np.float32)])
    levels = block_levels(batch, RATE)
    assert float(levels.peak[0]) == pytest.approx(2 * float(levels.peak[1]), rel=1e-5)
    assert float(levels.peak[2]) == 0.0


def test_the_mix_is_the_mean_of_the_channels() -> None:
    left, right = sine(440.0, 0.5), -sine(440.0, 0.5)
    stereo = np.stack([left, right], axis=1)[np.newaxis]
    assert float(np.abs(mono_mix(stereo)).max()) == 0.0
    same = np.stack([left, left], axis=1)[np.newaxis]
    assert np.array_equal(mono_mix(same)[0], left)


@given(arrays(np.float32, (2, 64), elements=st.floats(-1, 1, width=32)))
def test_rms_never_exceeds_the_peak(blocks: np.ndarray) -> None:
    levels = block_levels(blocks, RATE)
    assert np.all(levels.rms <= levels.peak * (1 + 1e-6))
    assert np.all(levels.zero_crossing_rate >= 0)
    assert np.all(levels.zero_crossing_rate <= RATE)


def test_the_analyzer_reports_the_level_of_each_block() -> None:
    analyzer = Analyzer(N, RATE, "hann")
    loud, quiet = analyzer.process_batch(
        np.stack([sine(1000.0, 0.5), sine(1000.0, 0.05)])[:, :, np.newaxis]
    )
    assert loud.peak == pytest.approx(0.5, rel=0.01)
    assert quiet.peak == pytest.approx(0.05, rel=0.01)
    assert loud.rms == pytest.approx(0.5 / math.sqrt(2), rel=0.05)
    assert loud.zero_crossing_rate == pytest.approx(2000.0, rel=0.1)
