"""WLED audio sync v2: the 44-byte UDP packet WLED's AudioReactive usermod receives.

Layout, from ``struct audioSyncPacket`` in WLED's ``usermods/audioreactive/audio_reactive.h``
(little-endian, as on the ESP32; WLED-MM declares it packed and names the two gaps, upstream
WLED leaves them as the compiler's alignment padding: the offsets are the same)::

    offset  size  field              here
     0       6    header             b"00002\\0"
     6       2    pressure[2]        sound pressure, 8.8 fixed point (WLED-MM; padding upstream)
     8       4    float sampleRaw    level 0-255, this packet's blocks
    12       4    float sampleSmth   the same, smoothed
    16       1    uint8 samplePeak   1 if an onset fired since the previous packet
    17       1    uint8 frameCounter rolling packet counter (WLED-MM drops repeats)
    18      16    uint8 fftResult    the 16 GEQ channels, 0-254
    34       2    uint16 zeroCrossingCount   (WLED-MM; padding upstream)
    36       4    float FFT_Magnitude        the major peak's strength, 0-4096
    40       4    float FFT_MajorPeak        the major peak's frequency, Hz (1.0: none)

How each value is computed from our analysis is in docs/protocol.md#wled, with the
reasoning; the functions here are that description, one per field.
"""

from __future__ import annotations

import math
import struct
from functools import lru_cache

import attrs
import numpy as np
from numpy.typing import NDArray

HEADER = b"00002\x00"
PACKET = struct.Struct("<6s2BffBB16sHff")
PACKET_SIZE = PACKET.size  # 44, which WLED checks before it reads a packet
GEQ_CHANNELS = 16

# WLED's analysis: 512-point FFT at 22050 Hz, so its bins are 43.07 Hz wide.
WLED_SAMPLE_RATE = 22050.0
WLED_FFT_SIZE = 512
WLED_BIN_HZ = WLED_SAMPLE_RATE / WLED_FFT_SIZE
# The FFT bins (first, last, inclusive) WLED averages into each GEQ channel
# (WLED-MM's mapping for 22050 Hz without overlap; upstream's differs by one bin at a few
# edges). Channel 15 stops at bin 215 (9.3 kHz): WLED leaves the top bins out as aliasing.
GEQ_BINS: tuple[tuple[int, int], ...] = (
    (1, 1),
    (2, 2),
    (3, 4),
    (5, 6),
    (7, 9),
    (10, 12),
    (13, 18),
    (19, 25),
    (26, 32),
    (33, 43),
    (44, 55),
    (56, 69),
    (70, 85),
    (86, 103),
    (104, 164),
    (165, 215),
)
GEQ_EDGES_HZ: NDArray[np.float64] = np.array(
    [[(first - 0.5) * WLED_BIN_HZ, (last + 0.5) * WLED_BIN_HZ] for first, last in GEQ_BINS]
)
GEQ_CENTRES_HZ: NDArray[np.float64] = np.sqrt(GEQ_EDGES_HZ[:, 0] * GEQ_EDGES_HZ[:, 1])
# A tilt of +3 dB per octave about 1 kHz, so pink noise (equal energy per octave: the
# long-term balance of most music) reads level across the channels. WLED evens its
# channels out with a similar table of per-channel factors ("fftResultPink").
GEQ_TILT_DB: NDArray[np.float64] = 10.0 * np.log10(GEQ_CENTRES_HZ / 1000.0)
GEQ_FLOOR_DB = -80.0
GEQ_RANGE_DB = 60.0
GEQ_MAX = 254  # WLED's own sender clamps its channels to 254 too

# sampleRaw / sampleSmth and FFT_Magnitude: dBFS mapped linearly, -60 dBFS to 0 and 0 dBFS
# to full (255 and 4096, the ranges WLED's effects expect).
LEVEL_FLOOR_DB = -60.0
SAMPLE_MAX = 255.0
MAGNITUDE_MAX = 4096.0
NO_PEAK_HZ = 1.0  # what WLED itself sends when its noise gate is closed

# Sound pressure, WLED-MM's estimatePressure(): the log of the largest 16-bit sample,
# from 2.3 (0) to 32767 - 6144 (255).
_PRESSURE_LOW = math.log(2.3)
_PRESSURE_HIGH = math.log(32767.0 - 6144.0)

# zeroCrossingCount is WLED-MM's count over one 512-sample batch at 22050 Hz (511 pairs of
# neighbours), times 2/3 "so it typically stays below 256".
_CROSSINGS_PER_HZ = (WLED_FFT_SIZE - 1) / WLED_SAMPLE_RATE * 2.0 / 3.0


@attrs.frozen
class WledPacket:
    """One packet's values, in WLED's units."""

    sample_raw: float
    sample_smooth: float
    peak: bool
    frame_counter: int
    geq: tuple[int, ...]
    zero_crossings: int
    magnitude: float
    major_peak: float
    pressure: float = 0.0


def encode(packet: WledPacket) -> bytes:
    """The 44 bytes WLED reads, in the layout above."""
    if len(packet.geq) != GEQ_CHANNELS:
        raise ValueError(f"a packet has {GEQ_CHANNELS} GEQ channels, got {len(packet.geq)}")
    fixed = min(max(round(packet.pressure * 256.0), 0), 255 * 256 + 255)
    return PACKET.pack(
        HEADER,
        fixed >> 8,
        fixed & 0xFF,
        packet.sample_raw,
        packet.sample_smooth,
        1 if packet.peak else 0,
        packet.frame_counter & 0xFF,
        bytes(packet.geq),
        min(max(packet.zero_crossings, 0), 0xFFFF),
        packet.magnitude,
        packet.major_peak,
    )


def unit_level(db: float, floor_db: float = LEVEL_FLOOR_DB, range_db: float | None = None) -> float:
    """``db`` mapped linearly onto 0-1: ``floor_db`` and below read 0, ``floor_db + range_db``
    (0 dBFS by default) and above read 1."""
    span = -floor_db if range_db is None else range_db
    return min(max((db - floor_db) / span, 0.0), 1.0)


def _db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0.0 else -math.inf


@lru_cache(maxsize=16)
def _geq_weights(sample_rate: int, fft_size: int) -> NDArray[np.float64]:
    """``(16, bins)``: how many Hz of each of our bins fall inside each GEQ channel."""
    width = sample_rate / fft_size
    centres = np.arange(fft_size // 2 + 1) * width
    lower = np.maximum(centres - width / 2, 0.0)
    upper = centres + width / 2
    overlap = np.minimum(upper[None, :], GEQ_EDGES_HZ[:, 1:2]) - np.maximum(
        lower[None, :], GEQ_EDGES_HZ[:, 0:1]
    )
    weights: NDArray[np.float64] = np.clip(overlap, 0.0, None)
    weights[:, 0] = 0.0  # DC is not sound (WLED zeroes its bin 0 as well)
    weights.flags.writeable = False
    return weights


def geq_channels(
    magnitudes: NDArray[np.float32], sample_rate: int, fft_size: int, coherent_gain: float
) -> tuple[int, ...]:
    """The 16 GEQ channels of a spectrum, each 0-254.

    A channel's value is the power average of our bins over the channel's frequency range
    (each bin weighted by how much of it lies inside, as WLED-MM averages its bins by RMS),
    as an amplitude corrected for the window (a full-scale sine reads 0 dBFS), tilted by
    :data:`GEQ_TILT_DB`, then mapped from :data:`GEQ_FLOOR_DB` over :data:`GEQ_RANGE_DB`.
    A channel narrower than our bins shares its neighbours' bins; one below our first bin
    (the lowest channels, when bins are wider than 86 Hz) reads 0.
    """
    weights = _geq_weights(sample_rate, fft_size)
    power = np.square(np.asarray(magnitudes, dtype=np.float64))
    total = weights.sum(axis=1)
    mean_power = np.divide(weights @ power, total, out=np.zeros(GEQ_CHANNELS), where=total > 0.0)
    channels = []
    for value, tilt in zip(np.sqrt(mean_power).tolist(), GEQ_TILT_DB.tolist(), strict=True):
        level = unit_level(_db(value / coherent_gain) + tilt, GEQ_FLOOR_DB, GEQ_RANGE_DB)
        channels.append(min(int(level * 255.0), GEQ_MAX))
    return tuple(channels)


def major_peak(
    magnitudes: NDArray[np.float32], sample_rate: int, fft_size: int, coherent_gain: float
) -> tuple[float, float]:
    """``(FFT_MajorPeak, FFT_Magnitude)``: the strongest bin's frequency, between bins, and
    its strength on WLED's 0-4096 scale; ``(1.0, 0.0)`` below :data:`LEVEL_FLOOR_DB`.

    The frequency is refined by a parabola through the log magnitudes of the peak bin and its
    neighbours (exact for a Gaussian peak, within a few hundredths of a bin for the usual
    windows); the strength is that parabola's top, corrected for the window's gain.
    """
    values = np.asarray(magnitudes, dtype=np.float64)
    if len(values) < 3:
        return NO_PEAK_HZ, 0.0
    index = int(np.argmax(values[1:])) + 1
    peak = float(values[index])
    shift = 0.0
    if index < len(values) - 1 and peak > 0.0:
        left, right = values[index - 1], values[index + 1]
        if left > 0.0 and right > 0.0:
            a, b, c = math.log(left), math.log(peak), math.log(right)
            curvature = a - 2.0 * b + c
            if curvature < 0.0:
                shift = max(-0.5, min(0.5, 0.5 * (a - c) / curvature))
                peak = math.exp(b - 0.25 * (a - c) * shift)
    level = unit_level(_db(peak / coherent_gain))
    if level <= 0.0:
        return NO_PEAK_HZ, 0.0
    return (index + shift) * sample_rate / fft_size, level * MAGNITUDE_MAX


def sample_level(rms: float) -> float:
    """sampleRaw: an RMS level (linear, 1.0 = full scale) on WLED's 0-255 scale."""
    return unit_level(_db(rms)) * SAMPLE_MAX


def pressure(peak: float) -> float:
    """WLED-MM's sound pressure estimate (0-255) for a sample peak (linear, 1.0 = full scale)."""
    sample = peak * 32767.0
    if sample <= 2.3:
        return 0.0
    scaled = (math.log(sample) - _PRESSURE_LOW) / (_PRESSURE_HIGH - _PRESSURE_LOW)
    return min(max(256.0 * scaled, 0.0), 255.0)


def zero_crossing_count(rate: float) -> int:
    """zeroCrossingCount for a rate in sign changes per second, as WLED-MM would count it."""
    return min(round(rate * _CROSSINGS_PER_HZ), 0xFFFF)
