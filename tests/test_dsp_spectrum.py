"""Magnitude spectrum and spectral flux: the original's scaling, downmix, padding, fresh arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from phase4_trio.dsp import (
    LOW_BAND_GAIN,
    LOW_BAND_HZ,
    WINDOW_NAMES,
    Analysis,
    Analyzer,
    MagnitudeSpectrum,
    SpectralFlux,
    bin_frequencies,
    make_window,
)

SIZES = (64, 256, 1024)
names = st.sampled_from(WINDOW_NAMES)
sizes = st.sampled_from(SIZES)


def reference(samples: NDArray[np.floating], window: NDArray[np.float64]) -> NDArray[np.float64]:
    """The spec's formula in float64, straight from numpy."""
    size = len(window)
    padded = np.zeros(size)
    padded[: len(samples)] = samples
    magnitudes = np.abs(np.fft.rfft(padded * window)) / size
    magnitudes[1 : size // 2] *= 2.0
    return magnitudes


def sine(size: int, cycles: float, amplitude: float, phase: float) -> NDArray[np.float32]:
    return (amplitude * np.sin(2 * np.pi * cycles * np.arange(size) / size + phase)).astype(
        np.float32
    )


def signal(size: int, seed: int, amplitude: float = 0.5) -> NDArray[np.float32]:
    return np.random.default_rng(seed).uniform(-amplitude, amplitude, size).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(names, sizes, st.data(), st.floats(0.05, 0.99), st.floats(0.0, 2 * np.pi))
def test_bin_centred_sine_peaks_at_its_bin(
    name: str, size: int, data: st.DataObject, amplitude: float, phase: float
) -> None:
    k = data.draw(st.integers(1, size // 2 - 1), label="bin")
    magnitudes = MagnitudeSpectrum(make_window(name, size))(sine(size, k, amplitude, phase))
    assert int(np.argmax(magnitudes)) == k


@settings(max_examples=60, deadline=None)
@given(sizes, st.data(), st.floats(0.05, 0.99), st.floats(0.0, 2 * np.pi))
def test_hann_reads_half_the_amplitude(
    size: int, data: st.DataObject, amplitude: float, phase: float
) -> None:
    k = data.draw(st.integers(1, size // 2 - 1), label="bin")
    magnitudes = MagnitudeSpectrum(make_window("hann", size))(sine(size, k, amplitude, phase))
    assert magnitudes[k] == pytest.approx(0.5 * amplitude, rel=0.05)


@pytest.mark.parametrize("size", SIZES)
def test_dc_and_nyquist_are_not_doubled(size: int) -> None:
    spectrum = MagnitudeSpectrum(make_window("hann", size))
    constant = np.full(size, 0.8, dtype=np.float32)
    alternating = (0.8 * (-1.0) ** np.arange(size)).astype(np.float32)
    assert spectrum(constant)[0] == pytest.approx(0.4, rel=0.02)
    assert spectrum(alternating)[-1] == pytest.approx(0.4, rel=0.02)


@settings(deadline=None)
@given(names, sizes, st.integers(0, 2**32 - 1))
def test_matches_the_formula(name: str, size: int, seed: int) -> None:
    window = make_window(name, size)
    samples = signal(size, seed)
    magnitudes = MagnitudeSpectrum(window)(samples)
    assert magnitudes.dtype == np.float32
    assert magnitudes.shape == (size // 2 + 1,)
    np.testing.assert_allclose(magnitudes, reference(samples, window), rtol=1e-4, atol=1e-6)


@settings(deadline=None)
@given(names, sizes, st.integers(0, 2**32 - 1))
def test_parseval(name: str, size: int, seed: int) -> None:
    # With the single-sided scaling, N * (m0² + m_{N/2}² + ½ Σ interior m²) = Σ (w·x)².
    window = make_window(name, size)
    samples = signal(size, seed)
    m = MagnitudeSpectrum(window)(samples).astype(np.float64)
    energy = size * (m[0] ** 2 + m[-1] ** 2 + 0.5 * np.sum(m[1:-1] ** 2))
    assert energy == pytest.approx(np.sum((window * samples) ** 2), rel=1e-4)
    # ...so the spectrum can never hold more energy than the unwindowed block.
    assert energy <= np.sum(samples.astype(np.float64) ** 2) * (1 + 1e-4)


@settings(deadline=None)
@given(names, sizes, st.integers(0, 2**32 - 1), st.floats(-1.0, 1.0))
def test_linear_in_amplitude(name: str, size: int, seed: int, gain: float) -> None:
    spectrum = MagnitudeSpectrum(make_window(name, size))
    samples = signal(size, seed)
    scaled = spectrum((samples * np.float32(gain)).astype(np.float32))
    np.testing.assert_allclose(scaled, abs(gain) * spectrum(samples), rtol=1e-4, atol=1e-6)


@settings(deadline=None)
@given(sizes, st.integers(0, 2**32 - 1), st.integers(2, 8))
def test_channels_are_averaged(size: int, seed: int, channels: int) -> None:
    spectrum = MagnitudeSpectrum(make_window("hann", size))
    block = np.random.default_rng(seed).uniform(-1, 1, (size, channels)).astype(np.float32)
    mean = block.astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(
        spectrum(block), reference(mean, make_window("hann", size)), rtol=1e-4, atol=1e-6
    )


def test_one_channel_column_equals_a_flat_block() -> None:
    spectrum = MagnitudeSpectrum(make_window("hann", 256))
    samples = signal(256, 1)
    np.testing.assert_array_equal(spectrum(samples.reshape(256, 1)), spectrum(samples))


def test_opposite_channels_cancel() -> None:
    samples = sine(256, 10, 0.9, 0.0)
    block = np.stack([samples, -samples], axis=1)
    assert MagnitudeSpectrum(make_window("hann", 256))(block).max() < 1e-6


@settings(deadline=None)
@given(sizes, st.data())
def test_short_block_is_zero_padded(size: int, data: st.DataObject) -> None:
    frames = data.draw(st.integers(1, size - 1), label="frames")
    window = make_window("hann", size)
    spectrum = MagnitudeSpectrum(window)
    spectrum(signal(size, 3))  # a full block first: padding must not keep its tail
    samples = signal(frames, 4)
    np.testing.assert_allclose(spectrum(samples), reference(samples, window), atol=1e-6)


def test_long_block_is_refused() -> None:
    with pytest.raises(ValueError, match="frames"):
        MagnitudeSpectrum(make_window("hann", 256))(signal(257, 0))


def test_each_call_returns_a_new_array() -> None:
    spectrum = MagnitudeSpectrum(make_window("hann", 256))
    first = spectrum(signal(256, 5))
    kept = first.copy()
    second = spectrum(signal(256, 6))
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)


def test_bin_frequencies() -> None:
    np.testing.assert_allclose(bin_frequencies(256, 44100), np.arange(129) * 44100 / 256)


magnitude_arrays = hnp.arrays(np.float32, 129, elements=st.floats(0.0, 1.0, width=32))


@settings(deadline=None)
@given(magnitude_arrays, magnitude_arrays)
def test_flux_is_the_doubled_low_rise(
    previous: NDArray[np.float32], current: NDArray[np.float32]
) -> None:
    flux = SpectralFlux(256, 44100)
    flux(previous)
    result = flux(current)
    low = bin_frequencies(256, 44100) < LOW_BAND_HZ
    expected = np.maximum(current.astype(np.float64) - previous, 0.0)
    expected[low] *= LOW_BAND_GAIN
    assert result.dtype == np.float32
    assert (result >= 0.0).all()
    np.testing.assert_allclose(result, expected, atol=1e-6)


@pytest.mark.parametrize(("sample_rate", "size", "doubled"), [(44100, 256, 2), (48000, 512, 3)])
def test_flux_doubles_exactly_the_bins_below_200_hz(
    sample_rate: int, size: int, doubled: int
) -> None:
    flux = SpectralFlux(size, sample_rate)
    flux(np.zeros(size // 2 + 1, dtype=np.float32))
    result = flux(np.ones(size // 2 + 1, dtype=np.float32))
    assert (result[:doubled] == 2.0).all()
    assert (result[doubled:] == 1.0).all()


def test_flux_starts_from_zeros_and_again_after_reset() -> None:
    flux = SpectralFlux(256, 44100)
    loud = np.ones(129, dtype=np.float32)
    assert (flux(loud) == 0.0).all()
    assert (flux(loud) == 0.0).all()  # no rise, no flux
    flux.reset()
    assert (flux(loud * 2) == 0.0).all()


@settings(deadline=None)
@given(st.sampled_from(WINDOW_NAMES), st.integers(0, 2**32 - 1))
def test_analyzer_chains_spectrum_and_flux(name: str, seed: int) -> None:
    analyzer = Analyzer(256, 44100, name.upper())
    spectrum = MagnitudeSpectrum(make_window(name, 256))
    flux = SpectralFlux(256, 44100)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        block = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
        result = analyzer.process(block)
        assert isinstance(result, Analysis)
        expected = spectrum(block)
        np.testing.assert_array_equal(result.magnitudes, expected)
        np.testing.assert_array_equal(result.flux, flux(expected))


def test_analyzer_returns_new_arrays_every_call() -> None:
    analyzer = Analyzer(256, 44100, "hann")
    seen: list[Analysis] = []
    for seed in range(4):
        seen.append(analyzer.process(signal(256, seed).reshape(256, 1)))
    kept = [(a.magnitudes.copy(), a.flux.copy()) for a in seen]
    arrays = [array for a in seen for array in (a.magnitudes, a.flux)]
    for i, first in enumerate(arrays):
        for second in arrays[i + 1 :]:
            assert not np.shares_memory(first, second)
    for a, (magnitudes, flux) in zip(seen, kept, strict=True):
        np.testing.assert_array_equal(a.magnitudes, magnitudes)
        np.testing.assert_array_equal(a.flux, flux)


def test_analyzer_results_are_read_only() -> None:
    result = Analyzer(256, 44100, "hann").process(signal(256, 0))
    for array in (result.magnitudes, result.flux):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0


def test_analyzer_refuses_an_unknown_window() -> None:
    with pytest.raises(ValueError, match="hann"):
        Analyzer(256, 44100, "boxcar")


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_analyzer_takes_float64_blocks_as_float32(seed: int) -> None:
    samples = signal(256, seed)
    first = Analyzer(256, 44100, "hann").process(samples.astype(np.float64))
    second = Analyzer(256, 44100, "hann").process(samples)
    assert first.magnitudes.dtype == np.float32
    np.testing.assert_array_equal(first.magnitudes, second.magnitudes)


# ------------------------------------------------------------------ batches


@settings(deadline=None, max_examples=25)
@given(
    names,
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 64), min_size=1, max_size=6),
    st.integers(1, 3),
)
def test_a_batch_is_the_same_as_block_by_block(
    name: str, seed: int, batch_sizes: list[int], channels: int
) -> None:
    """However a stream is cut into batches, spectra, flux and tempo come out the same as
    one block at a time (the processor batches whatever waited in the bridge)."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(-1, 1, (sum(batch_sizes), 256, channels)).astype(np.float32)
    one_by_one = Analyzer(256, 44100, name)
    expected = [one_by_one.process(block) for block in blocks]
    batched = Analyzer(256, 44100, name)
    results: list[Analysis] = []
    start = 0
    for size in batch_sizes:
        results += batched.process_batch(blocks[start : start + size])
        start += size
    assert len(results) == len(expected)
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got.magnitudes, want.magnitudes, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got.flux, want.flux, rtol=1e-5, atol=1e-6)
        assert (got.bpm, got.bpm_confidence) == (want.bpm, want.bpm_confidence)
        assert (got.beat_phase, got.beat) == (want.beat_phase, want.beat)


def test_the_direct_fft_agrees_with_numpy() -> None:
    """``rfft_rows`` may call numpy's gufunc directly; it must equal ``np.fft.rfft``."""
    from phase4_trio.dsp.spectrum import rfft_rows

    rows = np.random.default_rng(3).standard_normal((5, 256)).astype(np.float32)
    got = rfft_rows(rows)
    assert got.dtype == np.complex64 and got.shape == (5, 129)
    np.testing.assert_allclose(got, np.fft.rfft(rows, axis=1), rtol=1e-5, atol=1e-4)
