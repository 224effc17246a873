"""Per-frame features through the analyzer and the views: per-band onsets (F-measure on
synthetic tracks with known onset times), spectral centroid, and levels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from analysis_signals import (
    analyse,
    click_track,
    drum_track,
    f_measure,
    merged,
    onset_times,
    pink_noise,
    sine,
    white_noise,
)
from phase4_trio.dsp import Resolution
from phase4_trio.dsp.band_onsets import MIN_BINS, BandOnsets, first_eligible_band
from phase4_trio.dsp.layouts import BandSpec, band_layout
from phase4_trio.dsp.views import ChannelMode, Channels, ViewSpec

THIRDS = ViewSpec(BandSpec.parse("octave:3"), Resolution.FINE)
FINE_BINS = ViewSpec(None, Resolution.FINE)


def onsets_of(samples: np.ndarray, spec: ViewSpec = THIRDS) -> tuple[np.ndarray, np.ndarray]:
    frames = analyse(samples, [spec], batch=16)[spec]
    onsets = np.array([frame.onsets[0] for frame in frames])
    layout = frames[0].layout
    assert layout is not None
    return onsets, np.array(layout.centres)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_click_onsets(seed: int) -> None:
    samples, truth = click_track(20.0, seed=seed)
    onsets, _ = onsets_of(samples)
    detected = onset_times(onsets)
    precision, recall, f = f_measure(detected, truth)
    assert f >= 0.97, (precision, recall)
    # detected after the click, within the window's own delay (a quarter window, two blocks)
    latency = np.median([detected[np.argmin(abs(detected - t))] - t for t in truth])
    assert 0 < latency < 0.045


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drum_onsets(seed: int) -> None:
    samples, truth = drum_track(20.0, seed=seed)
    onsets, centres = onsets_of(samples)
    every = merged(np.concatenate(list(truth.values())))
    assert f_measure(onset_times(onsets), every)[2] >= 0.95
    assert f_measure(onset_times(onsets[:, centres < 150]), truth["kick"])[2] >= 0.8
    assert f_measure(onset_times(onsets[:, centres > 6000]), truth["hihat"])[2] >= 0.9


def test_steady_tones_and_silence_have_no_onsets() -> None:
    for samples in (
        sine(440.0, 0.5, 10.0) + sine(97.0, 0.2, 10.0),
        sine(3000.0, 0.01, 10.0),
        np.zeros(44100 * 5, dtype=np.float32),
    ):
        onsets, _ = onsets_of(samples)
        # the first two windows' worth of frames see the stream start from silence
        assert not onsets[4096 // 256 * 2 :].any()


@pytest.mark.parametrize("noise", [pink_noise, white_noise])
def test_steady_noise_has_few_onsets(noise: Callable[..., np.ndarray]) -> None:
    """Narrow bands of noise do swing by 9 dB now and then: measured 29 onsets in 60 s of
    pink and white noise over all 31 third-octave bands."""
    onsets, _ = onsets_of(noise(10.0, seed=7))
    assert onsets[32:].sum() < 15


def test_only_bands_two_bins_wide_have_onsets() -> None:
    layout = band_layout(BandSpec.parse("octave:24"), 44100, 4096)
    first = first_eligible_band(layout.lowers, layout.uppers, layout.resolution)
    widths = (np.array(layout.uppers) - np.array(layout.lowers)) / layout.resolution
    assert (widths[first:] >= MIN_BINS).all() and (widths[:first] < MIN_BINS).all()
    detector = BandOnsets(256 / 44100, 16, first)
    out = [
        detector(np.full((1, layout.count), 1e-6 if i < 30 else 0.5, np.float32)) for i in range(40)
    ]
    fired = np.array(out).any(axis=0)[0]
    assert fired[first:].all() and not fired[:first].any()


def test_onsets_restart_after_a_reset() -> None:
    detector = BandOnsets(256 / 44100, 16, 0)
    quiet, loud = np.full((1, 4), 1e-4, np.float32), np.full((1, 4), 0.5, np.float32)
    for _ in range(20):
        detector(quiet)
    detector.reset()
    assert not any(detector(loud).any() for _ in range(detector.lag + 1))


@pytest.mark.parametrize("frequency", [100.0, 440.0, 1000.0, 5000.0, 12000.0])
def test_centroid_of_a_tone_is_its_frequency(frequency: float) -> None:
    frames = analyse(sine(frequency, 0.5, 0.5), [FINE_BINS])[FINE_BINS]
    assert frames[-1].centroid[0] == pytest.approx(frequency, rel=0.01, abs=2.0)


def test_centroid_of_noise() -> None:
    """Magnitude-weighted: white noise centres at Nyquist / 2; pink (magnitude ∝ f^-½) at
    Nyquist / 3."""
    for noise, expected in ((white_noise, 22050 / 2), (pink_noise, 22050 / 3)):
        frames = analyse(noise(2.0, seed=5), [FINE_BINS])[FINE_BINS]
        centroid = np.mean([frame.centroid[0] for frame in frames[16:]])
        assert centroid == pytest.approx(expected, rel=0.03), noise.__name__


def test_centroid_of_silence_is_zero() -> None:
    frames = analyse(np.zeros(44100, np.float32), [FINE_BINS])[FINE_BINS]
    assert frames[-1].centroid[0] == 0.0


def test_levels_are_rms_and_peak_in_dbfs() -> None:
    """The mix reads the level of the channels' mean (the signal its spectrum is taken from),
    each channel its own."""
    # 689.0625 Hz: four whole cycles per block, so the block RMS is exactly 1 / √2
    tone = sine(44100 * 4 / 256, 1.0, 1.0)
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1)
    channels = ViewSpec(None, Resolution.FINE, Channels(ChannelMode.ALL))
    frames = analyse(stereo, [FINE_BINS, channels])
    mix = frames[FINE_BINS][-1]
    assert mix.rms[0] == pytest.approx(-3.01 - 6.02, abs=0.05)  # half the left channel
    assert mix.peak[0] == pytest.approx(-6.02, abs=0.05)
    each = frames[channels][-1]
    assert each.rms.tolist() == pytest.approx([-3.01, -120.0], abs=0.05)
    assert each.peak.tolist() == pytest.approx([0.0, -120.0], abs=0.05)
    silent = analyse(np.zeros(2048, np.float32), [FINE_BINS])[FINE_BINS][-1]
    assert silent.rms[0] == silent.peak[0] == -120.0
