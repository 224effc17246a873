"""Per-block level and zero-crossing rate, from the samples themselves.

Outputs that speak other tools' languages need what a spectrum cannot give back: the sample
peak (a spectrum has no phase, so no peak), the RMS without the window's weighting, and how
often the waveform crosses zero (WLED's audio sync carries it). They are computed here on the
same mono mix the spectrum is taken from, a handful of vectorised operations per batch.

``rms`` and ``peak`` are linear, 1.0 being digital full scale: a full-scale sine has a peak of
1.0 (0 dBFS) and an RMS of 0.707 (-3.01 dBFS); :func:`dbfs` converts. A zero crossing is a
sign change between neighbouring samples of the block (the sign bit, so +0.0 and -0.0
differ, as in WLED's own count); the rate is crossings per second over the block's
``frames - 1`` neighbouring pairs, which keeps it comparable across block sizes.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

# The lowest level reported, in dBFS: digital silence has no logarithm, and 24-bit audio
# bottoms out around -144 dBFS anyway.
FLOOR_DB = -120.0
# "No signal": every sample below this, under the last bit of 16-bit audio — what a muted
# input, an unplugged line or the virtual device with nothing playing deliver. A microphone in
# a quiet room sits well above it (its own noise, -70 dBFS or so): quiet is still a signal.
NO_SIGNAL_DBFS = -90.0


@attrs.frozen
class BlockLevels:
    """Level and zero-crossing rate of each block of a batch, oldest first."""

    rms: NDArray[np.float32]
    peak: NDArray[np.float32]
    zero_crossing_rate: NDArray[np.float64]


def block_levels(mono: NDArray[np.float32], sample_rate: float) -> BlockLevels:
    """Levels of a ``(count, frames)`` stack of mono blocks."""
    count, frames = mono.shape
    if frames == 0:
        zeros = np.zeros(count, dtype=np.float32)
        return BlockLevels(zeros, zeros, np.zeros(count))
    # In float64: squares of float32 samples below about 1e-19 would be subnormal in float32.
    power = np.square(mono, dtype=np.float64).sum(axis=1)
    rms = np.sqrt(power / frames).astype(np.float32)
    peak = np.abs(mono).max(axis=1)
    signs = np.signbit(mono)
    crossings = (signs[:, 1:] != signs[:, :-1]).sum(axis=1)
    pairs = max(frames - 1, 1)
    return BlockLevels(rms, peak, crossings * (sample_rate / pairs))


def mono_mix(blocks: NDArray[np.float32]) -> NDArray[np.float32]:
    """The mean of the channels of a ``(count, frames, channels)`` stack, as analysed."""
    if blocks.shape[2] == 1:
        return blocks[:, :, 0]
    mixed: NDArray[np.float32] = blocks.mean(axis=2, dtype=np.float32)
    return mixed


def dbfs(value: float) -> float:
    """``20·log10(value)``, no lower than :data:`FLOOR_DB`."""
    if value <= 10 ** (FLOOR_DB / 20):
        return FLOOR_DB
    return float(20.0 * np.log10(value))


def no_signal(samples: NDArray[np.float32]) -> bool:
    """Whether every sample (of any shape) is below :data:`NO_SIGNAL_DBFS`."""
    return not samples.size or dbfs(float(np.max(np.abs(samples)))) < NO_SIGNAL_DBFS
