"""From a :class:`~.summary.Summary` to what each output sends: pure, no sockets.

The band values for OSC go through :func:`osc_bands`, the one place that knows the layout;
WLED packets carry a little state between them (the rolling frame counter, the smoothed
level), kept by :class:`WledFrames`.
"""

from __future__ import annotations

import math

import numpy as np

from ...config import BandLayout
from ...dsp.level import dbfs
from ...dsp.window import make_window
from ...pipeline.messages import Spectrum
from ...wire import wled
from ...wire.osc import OscFrame
from ..bands import reduce_bands
from .summary import Summary

# sampleSmth follows sampleRaw with this time constant: WLED smooths its own level over
# 16 samples of its ~2 ms loop (sampleAvg = (15 * sampleAvg + sample) / 16).
SMOOTH_SECONDS = 0.032


def osc_bands(spectrum: Spectrum, layout: BandLayout) -> list[float]:
    """The ``/bands`` values of a spectrum in the configured layout."""
    values: list[float] = reduce_bands(
        spectrum.magnitudes, spectrum.sample_rate, spectrum.fft_size, layout.count
    ).tolist()
    return values


def osc_frame(summary: Summary, layout: BandLayout) -> OscFrame:
    latest = summary.latest
    return OscFrame(
        bands=osc_bands(latest, layout),
        rms_db=dbfs(summary.rms),
        peak_db=dbfs(summary.peak),
        bpm=latest.bpm,
        bpm_confidence=latest.bpm_confidence,
        frame_count=latest.frame_count,
        capture_time=latest.capture_time,
        onset=summary.onset,
        beat=summary.beat,
    )


def coherent_gain(window: str) -> float:
    """What a full-scale sine reads through ``window`` (its mean): 0.5 for Hann."""
    return float(np.mean(make_window(window, 1024)))


class WledFrames:
    """WLED packets from summaries, one after another."""

    def __init__(self, window: str) -> None:
        self._gain = coherent_gain(window)
        self._counter = 0
        self._smooth = 0.0

    def packet(self, summary: Summary, elapsed: float) -> bytes:
        """The next packet; ``elapsed`` is the time since the previous one, in seconds."""
        latest = summary.latest
        rate, size = latest.sample_rate, latest.fft_size
        raw = wled.sample_level(summary.rms)
        alpha = 1.0 - math.exp(-max(elapsed, 0.0) / SMOOTH_SECONDS)
        self._smooth += alpha * (raw - self._smooth)
        peak_hz, magnitude = wled.major_peak(latest.magnitudes, rate, size, self._gain)
        packet = wled.WledPacket(
            sample_raw=raw,
            sample_smooth=self._smooth,
            peak=summary.onset > 0.0,
            frame_counter=self._counter,
            geq=wled.geq_channels(latest.magnitudes, rate, size, self._gain),
            zero_crossings=wled.zero_crossing_count(summary.zero_crossing_rate),
            magnitude=magnitude,
            major_peak=peak_hz,
            pressure=wled.pressure(summary.peak),
        )
        self._counter = (self._counter + 1) & 0xFF
        return wled.encode(packet)
