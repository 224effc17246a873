"""Click tracks placed to the sample, and the blocks a capture would deliver them in: the easy
case of tempo and beats, for tests/test_dsp_tempo.py, tests/test_dsp_beat.py and
scripts/tempo_report.py."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SECONDS = 8.0


def click_track(
    bpm: float,
    sample_rate: int,
    seconds: float = SECONDS,
    kind: str = "noise",
    offset: float = 0.0,
    seed: int = 0,
) -> NDArray[np.float32]:
    """Clicks placed to the sample: 30 ms decaying noise bursts or 10 ms 1 kHz blips."""
    rng = np.random.default_rng(seed)
    total = int(seconds * sample_rate)
    out = np.zeros(total)
    noise = np.arange(int(0.03 * sample_rate)) / sample_rate
    blip = np.arange(int(0.01 * sample_rate)) / sample_rate
    beat = 0
    while (start := round((offset + beat * 60.0 / bpm) * sample_rate)) < total:
        if kind == "noise":
            click = 0.2 * np.exp(-noise / 0.005) * rng.standard_normal(len(noise))
        else:
            click = 0.5 * np.hanning(len(blip)) * np.sin(2 * np.pi * 1000.0 * blip)
        end = min(total, start + len(click))
        out[start:end] += click[: end - start]
        beat += 1
    return out.astype(np.float32)


def blocks(samples: NDArray[np.float32], size: int = 256, channels: int = 1) -> NDArray[np.float32]:
    """Whole ``(size, channels)`` blocks, as the capture delivers them."""
    count = len(samples) // size
    return samples[: count * size].reshape(count, size, 1).repeat(channels, axis=2)
