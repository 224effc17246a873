"""The sliding fine spectrum and the views registry: what is computed, once, for whom."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis_signals import analyse, sine
from phase4_trio.dsp import Analyzer, MagnitudeSpectrum, Resolution, make_window
from phase4_trio.dsp.dynamics import DynamicsSpec, Scale, Smoothing
from phase4_trio.dsp.layouts import BandSpec, band_layout
from phase4_trio.dsp.views import (
    AnalysedSpectrum,
    ChannelMode,
    Channels,
    Views,
    ViewSpec,
    analysed_spectrum,
    spectrum_levels,
    view_frame,
)
from phase4_trio.pipeline.messages import Spectrum

RATE = 44100
THIRDS = BandSpec.parse("octave:3")


def spectra_of(samples: np.ndarray, fft_size: int = 4096, batch: int = 1) -> list[AnalysedSpectrum]:
    data = samples.reshape(len(samples), -1)
    count = len(data) // 256
    analyzer = Analyzer(256, RATE, "hann", fft_size)
    out: list[AnalysedSpectrum] = []
    for start in range(0, count, batch):
        stop = min(count, start + batch)
        blocks = data[start * 256 : stop * 256].reshape(stop - start, 256, -1)
        out += [
            analysed_spectrum(start + i, 0.0, RATE, a)
            for i, a in enumerate(analyzer.process_batch(blocks))
        ]
    return out


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([256, 1024, 4096]),
    st.integers(1, 2),
    st.lists(st.integers(1, 7), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_fine_spectra_are_the_last_fft_size_samples_whatever_the_batching(
    fft_size: int, channels: int, batches: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    samples = rng.uniform(-0.5, 0.5, (sum(batches) * 256, channels)).astype(np.float32)
    analyzer = Analyzer(256, RATE, "hann", fft_size)
    results = []
    start = 0
    for count in batches:
        blocks = samples[start * 256 : (start + count) * 256].reshape(count, 256, channels)
        results += analyzer.process_batch(blocks)
        start += count
    direct = MagnitudeSpectrum(make_window("hann", fft_size))
    padded = np.concatenate((np.zeros((fft_size, channels), np.float32), samples))
    for index, result in enumerate(results):
        window = padded[(index + 1) * 256 : (index + 1) * 256 + fft_size]
        fine = result.detail.spectrum(Resolution.FINE)
        assert np.allclose(fine, direct(window), atol=1e-6)
        per_channel = result.detail.windows.spectra(Resolution.FINE, True)[result.detail.index]
        for channel in range(channels):
            assert np.allclose(per_channel[channel], direct(window[:, channel]), atol=1e-6)
        block = result.detail.windows.spectra(Resolution.BLOCK, False)[result.detail.index]
        assert block is not None and np.array_equal(block, result.magnitudes)


def test_a_block_sized_fine_spectrum_is_the_block_spectrum() -> None:
    result = Analyzer(256, RATE, "hann").process(sine(1000, 0.5, 256 / RATE))
    fine = result.detail.spectrum(Resolution.FINE)
    assert np.shares_memory(fine, result.magnitudes)  # not computed a second time
    assert np.array_equal(fine, result.magnitudes)


def test_a_reset_starts_the_window_from_silence() -> None:
    analyzer = Analyzer(256, RATE, "hann", 1024)
    analyzer.process(np.ones(256, np.float32))
    before = analyzer.process(np.zeros(256, np.float32)).detail
    analyzer.reset()
    after = analyzer.process(np.zeros(256, np.float32)).detail
    assert before.spectrum(Resolution.FINE).max() > 0.1
    assert after.spectrum(Resolution.FINE).max() == 0.0
    assert after.windows.epoch == before.windows.epoch + 1


def test_bad_fft_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 256"):
        Analyzer(256, RATE, "hann", 128)
    with pytest.raises(ValueError, match="even"):
        Analyzer(256, RATE, "hann", 1001)


def test_views_are_shared_and_dropped_with_their_last_user() -> None:
    views = Views()
    plain = ViewSpec(THIRDS, Resolution.FINE)
    smooth = ViewSpec(THIRDS, Resolution.FINE, dynamics=DynamicsSpec(smooth=Smoothing(5, 50)))
    views.acquire(plain)
    views.acquire(plain)
    views.acquire(smooth)
    assert set(views.specs) == {plain, smooth}
    assert len(views._stages) == 1  # same bands and channels: one stage for both
    views.release(plain)
    assert set(views.specs) == {plain, smooth}
    views.release(plain)
    assert views.specs == (smooth,)
    views.release(smooth)
    assert views.specs == () and not views._stages
    with pytest.raises(KeyError):
        views.release(smooth)


def test_process_attaches_a_frame_per_view_and_skips_spectra_without_samples() -> None:
    spectra = spectra_of(sine(RATE * 4 / 256, 0.5, 0.2), batch=8)  # whole cycles per block
    relayed = Spectrum(99, 0.0, RATE, 256, spectra[0].magnitudes, spectra[0].flux, 0, 0)
    views = Views()
    wanted = ViewSpec(THIRDS, Resolution.FINE)
    views.process(spectra[:3])  # nobody wants anything yet
    assert view_frame(spectra[0], wanted) is None
    views.acquire(wanted)
    views.process([*spectra[3:], relayed])
    assert view_frame(spectra[2], wanted) is None
    assert all(view_frame(s, wanted) is not None for s in spectra[3:])
    assert view_frame(relayed, wanted) is None
    assert spectrum_levels(relayed) is None
    assert spectrum_levels(spectra[-1]) == pytest.approx((-9.03, -6.02), abs=0.05)


def test_values_are_band_powers_of_the_fine_spectrum() -> None:
    samples = sine(1000, 0.5, 0.5) + sine(250, 0.1, 0.5)
    spec = ViewSpec(THIRDS, Resolution.FINE)
    frame = analyse(samples, [spec], batch=4)[spec][-1]
    layout = band_layout(THIRDS, RATE, 4096)
    direct = MagnitudeSpectrum(make_window("hann", 4096))
    end = len(samples) // 256 * 256
    expected = layout.amplitudes(direct(samples[end - 4096 : end]), direct.window_power)
    assert frame.layout is layout
    assert frame.fft_size == 4096 and frame.channels == ()
    assert np.allclose(frame.values[0], expected, rtol=1e-4, atol=1e-7)
    assert frame.values[0][np.searchsorted(layout.uppers, 1000)] == pytest.approx(0.5, rel=0.02)
    assert frame.values[0][np.searchsorted(layout.uppers, 250)] == pytest.approx(0.1, rel=0.02)


def test_batching_does_not_change_any_view() -> None:
    rng = np.random.default_rng(3)
    samples = (
        rng.standard_normal(44100) * np.repeat(rng.uniform(0, 0.3, 44), 1003)[:44100]
    ).astype(np.float32)
    specs = [
        ViewSpec(
            THIRDS,
            Resolution.FINE,
            dynamics=DynamicsSpec(Scale.UNIT, Smoothing(20, 200), True, -50),
        ),
        ViewSpec(BandSpec.parse("mel:16"), Resolution.FINE, dynamics=DynamicsSpec(Scale.DB)),
        ViewSpec(None, Resolution.BLOCK),
    ]
    one = analyse(samples, specs, batch=1)
    many = analyse(samples, specs, batch=37)
    for spec in specs:
        for a, b in zip(one[spec], many[spec], strict=True):
            assert np.allclose(a.values, b.values, atol=1e-6)
            assert np.allclose(a.flux, b.flux, atol=1e-6)
            assert (a.onsets is None and b.onsets is None) or np.array_equal(a.onsets, b.onsets)
            assert a.gain_db == pytest.approx(b.gain_db, abs=1e-4)


def test_channels_all_peaks_at_each_channels_tone() -> None:
    # 3 and 18 whole cycles per block (517 Hz, 3101 Hz), so the block RMS is exact
    stereo = np.stack([sine(RATE * 3 / 256, 0.5, 0.5), sine(RATE * 18 / 256, 0.25, 0.5)], axis=1)
    every = ViewSpec(THIRDS, Resolution.FINE, Channels(ChannelMode.ALL))
    right = ViewSpec(None, Resolution.FINE, Channels.parse("1"))
    mix = ViewSpec(THIRDS, Resolution.FINE)
    frames = analyse(stereo, [every, right, mix])
    frame = frames[every][-1]
    assert frame.channels == (0, 1) and frame.values.shape == (2, 31)
    centres = np.array(band_layout(THIRDS, RATE, 4096).centres)
    assert centres[np.argmax(frame.values[0])] == pytest.approx(501, rel=0.01)
    assert centres[np.argmax(frame.values[1])] == pytest.approx(3162, rel=0.01)
    assert frame.values[0].max() == pytest.approx(0.5, rel=0.02)
    assert frame.values[1].max() == pytest.approx(0.25, rel=0.02)
    assert frame.rms.tolist() == pytest.approx([-9.03, -15.05], abs=0.02)
    bins = frames[right][-1]
    assert bins.channels == (1,) and bins.values.shape == (1, 2049)
    assert np.argmax(bins.values[0]) * RATE / 4096 == pytest.approx(RATE * 18 / 256, abs=11)
    mixed = frames[mix][-1].values[0]  # the mean of the channels: half of each tone
    assert mixed.max() == pytest.approx(0.25, rel=0.02)


def test_flux_and_onsets_restart_after_a_gap() -> None:
    spec = ViewSpec(THIRDS, Resolution.FINE)
    views = Views()
    views.acquire(spec)
    analyzer = Analyzer(256, RATE, "hann", 4096)

    def feed(samples: np.ndarray) -> list[AnalysedSpectrum]:
        count = len(samples) // 256
        spectra = [
            analysed_spectrum(i, 0.0, RATE, a)
            for i, a in enumerate(
                analyzer.process_batch(samples[: count * 256].reshape(count, 256, 1))
            )
        ]
        views.process(spectra)
        return spectra

    feed(sine(1000, 0.001, 1.0))
    analyzer.reset()
    after = feed(sine(1000, 0.5, 0.1))
    first = view_frame(after[0], spec)
    assert first is not None and not first.flux.any()


def test_channels_parse() -> None:
    assert Channels.parse("mix") == Channels()
    assert Channels.parse("all").rows(3) == (0, 1, 2)
    assert Channels.parse("1,0").rows(2) == (1, 0)
    assert str(Channels.parse("1,0")) == "1,0"
    for bad, message in (
        ("0,0", "twice"),
        ("2", "the input has 2"),
        ("x", "expected mix"),
        ("", "expected"),
    ):
        with pytest.raises(ValueError, match=message):
            Channels.parse(bad, 2)


def test_a_view_key_names_every_option() -> None:
    spec = ViewSpec(
        THIRDS,
        Resolution.FINE,
        Channels.parse("0,1"),
        DynamicsSpec(Scale.UNIT, Smoothing(20, 300), True, -60.5),
    )
    assert spec.key == "bands=octave:3&channels=0,1&scale=unit&smooth=20:300&gain=auto&gate=-60.5"
    assert ViewSpec().key == "resolution=block&channels=mix&scale=linear"
    with pytest.raises(ValueError, match="fine spectrum"):
        ViewSpec(THIRDS)


def test_a_channel_the_input_does_not_have_reads_as_silence() -> None:
    """The server refuses such a query; should one get through, nothing breaks."""
    spec = ViewSpec(THIRDS, Resolution.FINE, Channels.parse("2,0", 3))
    frame = analyse(sine(1000, 0.5, 0.2), [spec])[spec][-1]
    assert frame.channels == (2, 0)
    assert not frame.values[0].any() and frame.rms[0] == -120.0
    assert frame.values[1].max() == pytest.approx(0.5, rel=0.02)
