"""Novelty: relative to the stream's running level, so loud and quiet read the same while a
loud hit still outweighs a soft one; nothing from silence, steady tones or a stream's first
moments."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from phase4_trio.dsp import MagnitudeSpectrum, Novelty, SpectralFlux, make_window
from phase4_trio.dsp.novelty import SETTLED_WEIGHT

RATE = 44100
N = 256
UPDATE = 43


def novelty_of(samples: NDArray[np.float32]) -> NDArray[np.float64]:
    """The novelty of every block, fed in updates of 43 blocks as the tracker does."""
    count = len(samples) // N
    magnitudes = MagnitudeSpectrum(make_window("hann", N)).batch(
        samples[: count * N].reshape(count, N, 1)
    )
    flux = SpectralFlux(N, RATE).batch(magnitudes)
    novelty = Novelty(RATE, N)
    parts = [
        novelty(flux[start : start + UPDATE], magnitudes[start : start + UPDATE])
        for start in range(0, count, UPDATE)
    ]
    return np.concatenate(parts)


def clicks(
    amplitudes: list[float], spacing: float = 0.125, seconds: float = 4.0
) -> NDArray[np.float32]:
    """Noise bursts decaying over ~20 ms every ``spacing`` s, cycling through ``amplitudes``."""
    rng = np.random.default_rng(1)
    out = np.zeros(int(seconds * RATE))
    burst = np.exp(-np.arange(int(0.1 * RATE)) / (0.02 * RATE))
    for index, start in enumerate(
        range(int(0.1 * RATE), len(out) - len(burst), int(spacing * RATE))
    ):
        amplitude = amplitudes[index % len(amplitudes)]
        out[start : start + len(burst)] += amplitude * burst * rng.standard_normal(len(burst))
    return out.astype(np.float32)


def test_the_same_loud_or_quiet() -> None:
    # Where the hits are; the tails between them fade below the absolute silence level sooner
    # when quiet.
    loud = novelty_of(clicks([0.5]))
    quiet = novelty_of(clicks([0.5]) * np.float32(0.1))
    hits = loud > 0.1 * loud.max()
    assert hits.sum() >= 20
    np.testing.assert_allclose(quiet[hits], loud[hits], rtol=1e-3)


def test_a_loud_hit_outweighs_a_soft_one() -> None:
    # Hits alternating 0 dB and -12 dB: each measured against the running level, not its own.
    novelty = novelty_of(clicks([0.5, 0.125]))
    spacing = 0.125 * RATE / N
    first = round(0.1 * RATE / N)
    peaks = [
        novelty[max(0, at - 1) : at + 3].max()
        for at in np.arange(first, len(novelty) - 3, spacing).round().astype(int)
    ]
    settled = peaks[4:]
    loud, soft = settled[0::2], settled[1::2]
    assert min(loud) > 2.0 * max(soft)


def test_nothing_from_silence_or_a_steady_tone() -> None:
    assert not novelty_of(np.zeros(2 * RATE, np.float32)).any()
    t = np.arange(4 * RATE) / RATE
    tone = novelty_of((0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32))
    assert tone[RATE // N :].max() < 0.05


def test_nothing_until_the_running_level_has_settled() -> None:
    # About 0.22 s (SETTLED_WEIGHT of a 1 s average) would be measured against almost nothing.
    novelty = novelty_of(clicks([0.5], spacing=0.05, seconds=1.0))
    first = np.flatnonzero(novelty)[0] * N / RATE
    settling = -np.log(1.0 - SETTLED_WEIGHT)
    assert settling - N / RATE <= first <= settling + 0.06


def test_reset_starts_the_running_level_again() -> None:
    samples = clicks([0.5])
    count = len(samples) // N
    magnitudes = MagnitudeSpectrum(make_window("hann", N)).batch(
        samples[: count * N].reshape(count, N, 1)
    )
    flux = SpectralFlux(N, RATE).batch(magnitudes)
    novelty = Novelty(RATE, N)
    first = novelty(flux[:UPDATE], magnitudes[:UPDATE])
    novelty(flux[UPDATE:], magnitudes[UPDATE:])
    novelty.reset()
    np.testing.assert_array_equal(novelty(flux[:UPDATE], magnitudes[:UPDATE]), first)
