"""Log-spaced band reduction: shape, peak preservation, and the documented edge rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.bands import (
    LOW_HZ,
    BandSpectrum,
    band_edges,
    reduce_bands,
    reduce_spectrum,
)

rates = st.sampled_from([8000, 22050, 44100, 48000, 96000])
sizes = st.sampled_from([16, 64, 256, 1024, 4096])
band_counts = st.integers(1, 200)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, int, int, int]:
    size = draw(sizes)
    magnitudes = draw(arrays(np.float32, size // 2 + 1, elements=st.floats(0, 4, width=32)))
    return magnitudes, draw(rates), size, draw(band_counts)


def first_bin(rate: int, size: int) -> int:
    return max(1, int(np.ceil(LOW_HZ * size / rate - 1e-9)))


@given(cases())
def test_one_value_per_band_each_the_maximum_of_some_bins(
    case: tuple[np.ndarray, int, int, int],
) -> None:
    magnitudes, rate, size, bands = case
    out = reduce_bands(magnitudes, rate, size, bands)
    assert out.shape == (bands,)
    assert out.dtype == np.float32
    assert set(out.tolist()) <= set(magnitudes.tolist())
    assert out.max() == magnitudes[first_bin(rate, size) :].max()


@given(cases(), st.floats(0, 1000, width=32))
def test_scaling_the_input_scales_the_output(
    case: tuple[np.ndarray, int, int, int], factor: float
) -> None:
    magnitudes, rate, size, bands = case
    scaled = reduce_bands(magnitudes * np.float32(factor), rate, size, bands)
    assert np.array_equal(scaled, reduce_bands(magnitudes, rate, size, bands) * np.float32(factor))


@given(rates, sizes, band_counts, st.data())
def test_a_tone_shows_in_the_band_that_contains_its_frequency(
    rate: int, size: int, bands: int, data: st.DataObject
) -> None:
    k = data.draw(st.integers(first_bin(rate, size), size // 2))
    magnitudes = np.zeros(size // 2 + 1, dtype=np.float32)
    magnitudes[k] = 0.5
    out = reduce_bands(magnitudes, rate, size, bands)
    edges = band_edges(rate, bands)
    band = min(int(np.searchsorted(edges, k * rate / size, side="right")) - 1, bands - 1)
    assert out[band] == np.float32(0.5)
    # bands entirely above the tone never see it
    above = edges[:-1] > k * rate / size
    assert not out[above].any()


@given(rates, band_counts)
def test_edges_are_log_spaced_from_20_hz_to_nyquist(rate: int, bands: int) -> None:
    edges = band_edges(rate, bands)
    assert len(edges) == bands + 1
    assert edges[0] == pytest.approx(LOW_HZ)
    assert edges[-1] == pytest.approx(rate / 2)
    ratios = edges[1:] / edges[:-1]
    assert np.allclose(ratios, ratios[0])
    assert (ratios > 1).all()


def test_one_band_is_the_maximum_above_20_hz() -> None:
    magnitudes = np.arange(129, dtype=np.float32)[::-1].copy()  # DC is the largest
    assert reduce_bands(magnitudes, 44100, 256, 1).tolist() == [127.0]


def test_narrow_low_bands_repeat_the_first_bin_above_them() -> None:
    magnitudes = np.arange(129, dtype=np.float32)
    out = reduce_bands(magnitudes, 44100, 256, 64)  # bin spacing 172 Hz, first bands ~2 Hz wide
    assert out[0] == 1.0
    assert out[1] == 1.0
    assert (np.diff(out) >= 0).all()
    assert out[-1] == 128.0


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        reduce_bands(np.zeros(129, np.float32), 44100, 256, 0)
    with pytest.raises(ValueError, match="expected 129 bins"):
        reduce_bands(np.zeros(128, np.float32), 44100, 256, 8)
    with pytest.raises(ValueError, match="no band above"):
        band_edges(30, 8)


def test_reduce_spectrum_is_computed_once_per_band_count() -> None:
    magnitudes = np.zeros(129, np.float32)
    magnitudes[20] = 0.5
    spectrum = Spectrum(
        3, 1.5, 44100, 256, magnitudes, magnitudes * 2, 90.0, 0.5, beat_phase=0.25, beat=True
    )
    first = reduce_spectrum(spectrum, 24)
    assert reduce_spectrum(spectrum, 24) is first
    assert reduce_spectrum(spectrum, 12) is not first
    assert isinstance(first, BandSpectrum)
    assert first.bands == 24
    assert (first.frame_count, first.fft_size, first.bpm) == (3, 256, 90.0)
    assert (first.beat_phase, first.beat) == (0.25, True)
    assert first.magnitudes.max() == np.float32(0.5)
    assert first.flux.max() == np.float32(1.0)
