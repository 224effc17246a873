"""Band layouts: IEC mid-band frequencies, edges that tile, band power that adds up, and
the levels a visualizer relies on (a sine reads its amplitude, pink noise reads flat)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from analysis_signals import pink_noise, sine, white_noise
from phase4_trio.dsp import Analyzer, MagnitudeSpectrum, Resolution, make_window
from phase4_trio.dsp.layouts import (
    MAX_BANDS,
    OCTAVE_FRACTIONS,
    BandKind,
    BandLayout,
    BandSpec,
    band_layout,
)

RATE = 44100
THIRD_OCTAVE_NOMINAL = [20, 25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500]
THIRD_OCTAVE_NOMINAL += [630, 800, 1000, 1250, 1600, 2000, 2500, 3150, 4000, 5000, 6300]
THIRD_OCTAVE_NOMINAL += [8000, 10000, 12500, 16000, 20000]

specs = st.one_of(
    st.builds(BandSpec, st.just(BandKind.OCTAVE), st.sampled_from(OCTAVE_FRACTIONS)),
    st.builds(BandSpec, st.sampled_from([BandKind.MEL, BandKind.LOG]), st.integers(1, 300)),
)
rates = st.sampled_from([8000, 22050, 44100, 48000, 96000])
sizes = st.sampled_from([64, 256, 1024, 4096, 16384])


def test_third_octave_mid_bands_are_the_iec_base_ten_ones() -> None:
    layout = band_layout(BandSpec.parse("octave:3"), RATE, 4096)
    assert len(layout.centres) == len(THIRD_OCTAVE_NOMINAL)
    assert np.allclose(layout.centres, THIRD_OCTAVE_NOMINAL, rtol=0.03)
    assert layout.centres[THIRD_OCTAVE_NOMINAL.index(1000)] == pytest.approx(1000.0)
    ratios = np.array(layout.centres[1:]) / np.array(layout.centres[:-1])
    assert np.allclose(ratios, 10 ** (0.1 / 1))  # G^(1/3) with G = 10^(3/10)


def test_octave_and_even_fraction_layouts() -> None:
    octaves = band_layout(BandSpec.parse("octave:1"), RATE, 4096)
    nominal = [31.5, 63, 125, 250, 500, 1000, 2000, 4000, 8000, 16000]
    assert np.allclose(octaves.centres, nominal, rtol=0.03)
    assert octaves.uppers[-1] == RATE / 2  # the 16 kHz band is cut at Nyquist
    halves = band_layout(BandSpec.parse("octave:2"), RATE, 4096)
    g = 10**0.3
    # Even fractions have no band centred on 1 kHz: f_m = 1000 · G^((2x+1)/(2b))
    assert min(abs(np.log(np.array(halves.centres) / 1000))) == pytest.approx(np.log(g) / 4)


@given(specs, rates, sizes)
@settings(max_examples=200, deadline=None)
def test_bands_tile_their_range_without_gaps_or_overlaps(
    spec: BandSpec, rate: int, size: int
) -> None:
    layout = band_layout(spec, rate, size)
    lowers, uppers, centres = map(np.array, (layout.lowers, layout.uppers, layout.centres))
    assert (lowers < centres).all() and (centres < uppers).all()
    assert np.allclose(lowers[1:], uppers[:-1], rtol=1e-9)
    assert uppers[-1] <= rate / 2
    if spec.kind is not BandKind.OCTAVE:
        assert len(centres) == spec.count
        assert lowers[0] == pytest.approx(20.0)
        assert uppers[-1] == rate / 2


def coverage_power(layout: BandLayout, magnitudes: NDArray[np.float32]) -> float:
    """Σ over bins of (the fraction of the bin's span inside the layout) · c_k · m_k²,
    computed bin by bin, independently of the layout's sparse table."""
    resolution = layout.resolution
    last = layout.fft_size // 2
    low, high = layout.lowers[0] / resolution, layout.uppers[-1] / resolution
    total = 0.0
    for k, m in enumerate(magnitudes.astype(np.float64)):
        start, end = max(k - 0.5, 0.0), min(k + 0.5, last)
        inside = max(0.0, min(end, high) - max(start, low))
        c = 2.0 if k in (0, last) else 1.0
        total += inside / (end - start) * c * m * m
    return total


@given(specs, rates, st.sampled_from([64, 256, 1024, 4096]), st.data())
@settings(max_examples=150, deadline=None)
def test_band_powers_sum_to_the_power_of_the_spectrum_in_their_range(
    spec: BandSpec, rate: int, size: int, data: st.DataObject
) -> None:
    layout = band_layout(spec, rate, size)
    magnitudes = data.draw(
        arrays(np.float32, size // 2 + 1, elements=st.floats(0, 2, width=32)), label="m"
    )
    powers = layout.powers(magnitudes)
    assert powers.shape == (layout.count,)
    assert (powers >= 0).all()
    assert float(powers.sum(dtype=np.float64)) == pytest.approx(
        coverage_power(layout, magnitudes), rel=0.01, abs=1e-9
    )


def test_powers_take_any_stack_of_spectra() -> None:
    layout = band_layout(BandSpec.parse("mel:12"), RATE, 256)
    stack = np.random.default_rng(0).uniform(0, 1, (3, 2, 129)).astype(np.float32)
    out = layout.powers(stack)
    assert out.shape == (3, 2, 12)
    assert np.allclose(out[1, 0], layout.powers(stack[1, 0].copy()))
    with pytest.raises(ValueError, match="expected 129 bins"):
        layout.powers(stack[..., :128])


def test_a_layout_is_computed_once_per_resolution() -> None:
    spec = BandSpec.parse("log:40")
    assert band_layout(spec, RATE, 4096) is band_layout(BandSpec(BandKind.LOG, 40), RATE, 4096)
    assert band_layout(spec, RATE, 8192) is not band_layout(spec, RATE, 4096)
    assert band_layout(spec, RATE, 8192).resolution == RATE / 8192


def band_of(layout: BandLayout, frequency: float) -> int:
    return int(np.searchsorted(layout.uppers, frequency))


@pytest.mark.parametrize("size", [4096, 8192])
@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.01])
def test_a_sine_at_a_third_octave_mid_band_reads_its_amplitude(size: int, amplitude: float) -> None:
    """±0.5 dB wherever the band holds the window's main lobe (four bins)."""
    layout = band_layout(BandSpec.parse("octave:3"), RATE, size)
    spectrum = MagnitudeSpectrum(make_window("hann", size))
    checked = 0
    for band, (centre, low, high) in enumerate(
        zip(layout.centres, layout.lowers, layout.uppers, strict=True)
    ):
        if high - low < 4 * layout.resolution or high >= RATE / 2:
            continue
        for phase in (0.0, 1.0, 2.5):
            t = np.arange(size) / RATE
            x = (amplitude * np.sin(2 * np.pi * centre * t + phase)).astype(np.float32)
            values = layout.amplitudes(spectrum(x), spectrum.window_power)
            assert 20 * np.log10(values[band] / amplitude) == pytest.approx(0, abs=0.5), centre
            checked += 1
    assert checked >= 3 * 20


def long_spectra(samples: NDArray[np.float32], size: int) -> tuple[NDArray[np.float32], float]:
    """Fine spectra of every block once the window is full, and the window's power."""
    analyzer = Analyzer(256, RATE, "hann", size)
    count = len(samples) // 256
    first = analyzer.process_batch(samples[: count * 256].reshape(count, 256, 1))[0]
    windows = first.detail.windows
    spectra = windows.spectra(Resolution.FINE, False)[size // 256 :]
    return spectra, windows.window_power(Resolution.FINE)


@pytest.mark.parametrize("spec", ["octave:1", "octave:3"])
@pytest.mark.parametrize("seed", [0, 1])
def test_pink_noise_reads_flat_and_white_noise_rises_3_db_per_octave(spec: str, seed: int) -> None:
    """Averaged over 5 s, 63 Hz to 8 kHz, within ±1 dB (measured: within ±0.12 dB)."""
    layout = band_layout(BandSpec.parse(spec), RATE, 4096)
    centres = np.array(layout.centres)
    inside = (centres > 60) & (centres < 8500)
    for noise, slope in ((pink_noise, 0.0), (white_noise, 3.0)):
        spectra, window_power = long_spectra(noise(5.0, RATE, seed), 4096)
        power = (layout.amplitudes(spectra, window_power) ** 2).mean(axis=0)[inside]
        level = 10 * np.log10(power) - slope * np.log2(centres[inside] / 1000)
        assert np.abs(level - level.mean()).max() < 1.0, (noise.__name__, level - level.mean())


def test_white_noise_band_power_is_its_share_of_the_variance() -> None:
    """A band of white noise with variance σ² reads sqrt(2σ² · width / Nyquist)."""
    layout = band_layout(BandSpec.parse("octave:1"), RATE, 4096)
    spectra, window_power = long_spectra(white_noise(5.0, RATE, 3, rms=0.1), 4096)
    measured = (layout.amplitudes(spectra, window_power) ** 2).mean(axis=0)
    widths = np.array(layout.uppers) - np.array(layout.lowers)
    expected = 2 * 0.01 * widths / (RATE / 2)
    assert np.allclose(10 * np.log10(measured[1:]), 10 * np.log10(expected[1:]), atol=0.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("octave:5", "octave:N takes N in 1, 2, 3, 6, 12, 24"),
        ("octave:0", "octave:N takes N"),
        ("mel:0", f"mel:N takes N from 1 to {MAX_BANDS}"),
        (f"log:{MAX_BANDS + 1}", "log:N takes N from 1"),
        ("log:abc", "with N a whole number"),
        ("mel:", "with N a whole number"),
        ("bark:10", "expected octave:N, mel:N or log:N"),
        ("octave", "expected octave:N"),
        ("log:²", "whole number"),
    ],
)
def test_bad_band_specs_are_one_line_value_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        BandSpec.parse(text)
    assert "\n" not in str(caught.value)


def test_specs_print_as_they_parse() -> None:
    for text in ("octave:24", "mel:40", "log:1"):
        assert str(BandSpec.parse(text)) == text


def test_sample_rates_without_bands_are_refused() -> None:
    with pytest.raises(ValueError, match="no band above"):
        band_layout(BandSpec.parse("log:4"), 30, 64)
    with pytest.raises(ValueError, match="no octave:1 band"):
        band_layout(BandSpec.parse("octave:1"), 30, 64)


def test_two_close_tones_need_a_long_window() -> None:
    """60 and 100 Hz at equal level: two peaks with a dip of at least 20 dB between them in
    the bins and in octave:24 bands at 8192 points; 4096 points cannot separate them."""
    samples = sine(60.0, 0.25, 1.0) + sine(100.0, 0.25, 1.0)
    for size, separated in ((8192, True), (4096, False)):
        spectrum = MagnitudeSpectrum(make_window("hann", size))
        magnitudes = spectrum(samples[-size:])
        bins = np.fft.rfftfreq(size, 1 / RATE)
        assert dip_db(magnitudes, bins) >= 20 if separated else dip_db(magnitudes, bins) < 20
        layout = band_layout(BandSpec.parse("octave:24"), RATE, size)
        bands = layout.amplitudes(magnitudes, spectrum.window_power)
        dip = dip_db(bands, np.array(layout.centres))
        assert dip >= 20 if separated else dip < 20


def dip_db(values: NDArray[np.float32], frequencies: NDArray[np.float64]) -> float:
    """How far the lowest value between the 60 Hz and 100 Hz peaks sits below the lower peak."""
    near_60 = np.flatnonzero(abs(frequencies - 60) <= 6)
    near_100 = np.flatnonzero(abs(frequencies - 100) <= 6)
    first = near_60[np.argmax(values[near_60])]
    second = near_100[np.argmax(values[near_100])]
    between = values[first + 1 : second]
    assert len(between), "no value between the peaks"
    return float(20 * np.log10(min(values[first], values[second]) / between.min()))
