"""Windows: the seven names of the config, gonum's symmetric formulas, sane values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phase4_trio import config
from phase4_trio.dsp import WINDOW_NAMES, make_window

names = st.sampled_from(WINDOW_NAMES)
sizes = st.integers(min_value=2, max_value=2048)

# Five-point windows straight from the formulas: u = 0, 1/4, 1/2, 3/4, 1.
FIVE_POINTS = {
    "bartletthann": [0.0, 0.5, 1.0, 0.5, 0.0],
    "blackman": [0.0, 0.34, 1.0, 0.34, 0.0],
    "blackmannuttall": [0.0003628, 0.2269824, 1.0, 0.2269824, 0.0003628],
    "hann": [0.0, 0.5, 1.0, 0.5, 0.0],
    "hamming": [0.08, 0.54, 1.0, 0.54, 0.08],
    "lanczos": [0.0, 2 / math.pi, 1.0, 2 / math.pi, 0.0],
    "nuttall": [0.0, 0.211536, 1.0, 0.211536, 0.0],
}

# Mean of a long window (its coherent gain): a0 for the cosine sums, Si(π)/π for Lanczos.
COHERENT_GAIN = {
    "bartletthann": 0.5,
    "blackman": 0.42,
    "blackmannuttall": 0.3635819,
    "hann": 0.5,
    "hamming": 0.54,
    "lanczos": 0.5894898722,
    "nuttall": 0.355768,
}


def test_names_match_the_config() -> None:
    assert WINDOW_NAMES == config.WINDOW_NAMES
    assert set(FIVE_POINTS) == set(WINDOW_NAMES)


@pytest.mark.parametrize("name", WINDOW_NAMES)
def test_known_points(name: str) -> None:
    np.testing.assert_allclose(make_window(name, 5), FIVE_POINTS[name], atol=1e-12)


@pytest.mark.parametrize("name", WINDOW_NAMES)
def test_coherent_gain(name: str) -> None:
    assert make_window(name, 4096).mean() == pytest.approx(COHERENT_GAIN[name], abs=1e-3)


@settings(deadline=None)
@given(names, sizes)
def test_symmetric_and_in_range(name: str, size: int) -> None:
    window = make_window(name, size)
    assert window.shape == (size,)
    assert window.dtype == np.float64
    np.testing.assert_allclose(window, window[::-1], atol=1e-12)
    assert window.min() >= -1e-12
    assert window.max() <= 1.0 + 1e-12


@settings(deadline=None)
@given(names, st.integers(min_value=1, max_value=1024))
def test_peak_is_one_at_the_centre_of_odd_sizes(name: str, half: int) -> None:
    window = make_window(name, 2 * half + 1)
    assert window[half] == pytest.approx(1.0, abs=1e-9)
    assert int(np.argmax(window)) == half


@settings(deadline=None)
@given(names, st.integers(min_value=2, max_value=1024))
def test_even_sizes_peak_on_the_two_middle_samples(name: str, half: int) -> None:
    window = make_window(name, 2 * half)
    middle = window[half - 1 : half + 1]
    assert middle[0] == pytest.approx(middle[1], abs=1e-12)
    assert window.max() == pytest.approx(middle.max(), abs=1e-12)


def test_hann_is_the_symmetric_form() -> None:
    # gonum (and so the original) divides by N - 1, not N: both ends are exactly zero.
    size = 256
    expected = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / (size - 1))
    np.testing.assert_allclose(make_window("hann", size), expected, atol=1e-15)


@pytest.mark.parametrize("spelling", ["HANN", "Hann", "hAnN"])
def test_names_are_case_insensitive(spelling: str) -> None:
    np.testing.assert_array_equal(make_window(spelling, 64), make_window("hann", 64))


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="kaiser") as excinfo:
        make_window("kaiser", 64)
    for name in WINDOW_NAMES:
        assert name in str(excinfo.value)


def test_size_one_passes_through_and_zero_is_refused() -> None:
    np.testing.assert_array_equal(make_window("hann", 1), [1.0])
    with pytest.raises(ValueError, match="size"):
        make_window("hann", 0)
