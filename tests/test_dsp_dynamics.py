"""Dynamics, fed frame by frame (time is counted in frames, never read from a clock)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase4_trio.dsp import DB_FLOOR
from phase4_trio.dsp.dynamics import (
    GAIN_FLOOR_DB,
    Dynamics,
    DynamicsSpec,
    Scale,
    Smoothing,
    step_fraction,
)

FRAME = 256 / 44100  # seconds per frame at 44.1 kHz / 256
LOUD = np.zeros(1, dtype=np.float32)  # RMS (dBFS) of a row that is not gated


def row(*values: float) -> np.ndarray:
    return np.array([values], dtype=np.float32)


def frames_to_reach(dynamics: Dynamics, target: float, start: float, fraction: float) -> int:
    """Frames of a step from ``start`` to ``target`` until ``fraction`` of it is covered,
    in the units of the output (dB for the dB scale)."""
    before = float(dynamics(row(start), LOUD).values[0, 0])
    after = float(
        Dynamics(DynamicsSpec(scale=dynamics.spec.scale), FRAME)(row(target), LOUD).values[0, 0]
    )
    goal = before + fraction * (after - before)
    for count in range(1, 100_000):
        value = float(dynamics(row(target), LOUD).values[0, 0])
        if (value >= goal) if target > start else (value <= goal):
            return count
    raise AssertionError("never reached")


@pytest.mark.parametrize("attack_ms", [0.0, 5.0, 20.0, 50.0, 200.0, 1000.0])
@pytest.mark.parametrize("scale", list(Scale))
def test_a_step_reaches_90_percent_within_its_attack_time(attack_ms: float, scale: Scale) -> None:
    spec = DynamicsSpec(scale=scale, smooth=Smoothing(attack_ms, 500.0))
    frames = frames_to_reach(Dynamics(spec, FRAME), 0.8, 0.1, 0.9)
    assert abs(frames * FRAME * 1000 - attack_ms) <= FRAME * 1000 + 1e-9, frames


@pytest.mark.parametrize("release_ms", [10.0, 300.0, 2000.0])
def test_a_fall_takes_its_release_time(release_ms: float) -> None:
    spec = DynamicsSpec(smooth=Smoothing(10.0, release_ms))
    frames = frames_to_reach(Dynamics(spec, FRAME), 0.1, 0.8, 0.9)
    assert abs(frames * FRAME * 1000 - release_ms) <= FRAME * 1000 + 1e-9


def test_the_step_fraction_is_exact() -> None:
    assert step_fraction(0.0, FRAME) == 1.0
    # after attack / frame frames, 10 % of the step is left
    fraction = step_fraction(100.0, 0.01)
    assert (1 - fraction) ** 10 == pytest.approx(0.1)


def test_auto_gain_lifts_a_quiet_signal_to_near_one_within_5_seconds() -> None:
    """-30 dBFS: the loudest band reads 0.8-1.0 within 5 s, also right after a loud passage."""
    dynamics = Dynamics(DynamicsSpec(scale=Scale.UNIT, auto_gain=True), FRAME)
    quiet = np.array([[0.001, 10 ** (-30 / 20), 0.01]], dtype=np.float32)
    assert 0.8 <= dynamics(quiet, LOUD).values.max() <= 1.0
    for _ in range(round(3 / FRAME)):  # 3 s at full scale
        out = dynamics(quiet * np.float32(10 ** (30 / 20)), LOUD)
    assert out.values.max() == pytest.approx(1.0)
    reached = None
    for frame in range(round(5 / FRAME)):
        out = dynamics(quiet, LOUD)
        if reached is None and out.values.max() >= 0.8:
            reached = frame * FRAME
        if reached is not None:
            assert 0.8 <= out.values.max() <= 1.0
    assert reached is not None and reached < 5.0
    assert out.gain_db == pytest.approx(30.0, abs=0.1)


def test_auto_gain_holds_through_a_short_dip_and_never_exceeds_its_ceiling() -> None:
    dynamics = Dynamics(DynamicsSpec(auto_gain=True), FRAME)
    dynamics(row(0.5), LOUD)
    for _ in range(round(1.0 / FRAME)):  # 1 s at -20 dB: inside the hold time
        out = dynamics(row(0.05), LOUD)
    assert out.gain_db == pytest.approx(-20 * math.log10(0.5))
    for _ in range(round(20 / FRAME)):
        out = dynamics(row(1e-6), LOUD)
    assert out.gain_db == pytest.approx(-GAIN_FLOOR_DB)


def test_the_gate_zeroes_the_values_and_says_silent() -> None:
    for scale in Scale:
        dynamics = Dynamics(DynamicsSpec(scale=scale, gate_db=-60.0, auto_gain=True), FRAME)
        values = np.array([[0.2, 0.1], [0.3, 0.4]], dtype=np.float32)
        out = dynamics(values, np.array([-70.0, -20.0], dtype=np.float32))
        assert out.silent.tolist() == [True, False]
        assert (out.values[0] == scale.floor).all()
        assert (out.values[1] != scale.floor).all()
        gated = dynamics(values, np.array([-61.0, -80.0], dtype=np.float32))
        assert gated.silent.all()
        assert (gated.values == scale.floor).all()


def test_a_silent_frame_leaves_the_gain_alone() -> None:
    dynamics = Dynamics(DynamicsSpec(auto_gain=True, gate_db=-50.0), FRAME)
    dynamics(row(0.1), LOUD)
    for _ in range(round(10 / FRAME)):
        out = dynamics(row(0.0001), np.array([-90.0], dtype=np.float32))
    assert out.gain_db == pytest.approx(20.0)


def test_scales() -> None:
    values = row(2.0, 0.5, 0.0)
    linear = Dynamics(DynamicsSpec(), FRAME)(values, LOUD).values
    assert linear.tolist() == [[2.0, 0.5, 0.0]]
    unit = Dynamics(DynamicsSpec(scale=Scale.UNIT), FRAME)(values, LOUD).values
    assert unit.tolist() == [[1.0, 0.5, 0.0]]
    db = Dynamics(DynamicsSpec(scale=Scale.DB), FRAME)(values, LOUD).values
    assert db[0, :2] == pytest.approx([6.0206, -6.0206], abs=1e-3)
    assert db[0, 2] == DB_FLOOR


def test_output_is_read_only_and_never_changed_afterwards() -> None:
    dynamics = Dynamics(DynamicsSpec(smooth=Smoothing(50, 50)), FRAME)
    first = dynamics(row(0.5), LOUD).values
    kept = first.copy()
    assert not first.flags.writeable
    for _ in range(5):
        dynamics(row(0.1), LOUD)
    assert np.array_equal(first, kept)


@pytest.mark.parametrize(
    ("text", "expected"), [("20:300", Smoothing(20, 300)), ("0:0", Smoothing(0, 0))]
)
def test_smoothing_parses(text: str, expected: Smoothing) -> None:
    assert Smoothing.parse(text) == expected
    assert str(Smoothing.parse(text)) == text


@pytest.mark.parametrize("text", ["20", "a:b", "20:", ":20", "-1:5", "5:nan", "1:1e9", "1:2:3"])
def test_bad_smoothing_is_one_line(text: str) -> None:
    with pytest.raises(ValueError, match=r"ATTACK_MS:RELEASE_MS|within 0-60000 ms") as caught:
        Smoothing.parse(text)
    assert "\n" not in str(caught.value)


@given(st.text(max_size=20))
def test_smoothing_parse_raises_only_value_error(text: str) -> None:
    try:
        smoothing = Smoothing.parse(text)
    except ValueError:
        return
    assert 0 <= smoothing.attack_ms <= 60_000 and 0 <= smoothing.release_ms <= 60_000


def test_lost_frames_still_count_as_time() -> None:
    """One call covering 400 frames moves as far as 400 calls of one frame."""
    for spec in (DynamicsSpec(smooth=Smoothing(200, 2000)), DynamicsSpec(auto_gain=True)):
        stepwise, at_once = Dynamics(spec, FRAME), Dynamics(spec, FRAME)
        for dynamics in (stepwise, at_once):
            dynamics(row(1.0), LOUD)
        for _ in range(400):
            expected = stepwise(row(0.01), LOUD)
        got = at_once(row(0.01), LOUD, elapsed=400)
        assert got.gain_db == pytest.approx(expected.gain_db, abs=0.01)
        assert got.values[0, 0] == pytest.approx(float(expected.values[0, 0]), rel=1e-3)
