"""The original's JSON message, plus our added fields, encoded once per spectrum.

Field names are the Go engine's (``type``, ``frameCount``, ``startTime``, ``magnitudes``,
``spectralFlux``, ``bpm``, ``bpmConfidence``) so its clients keep working. ``dropped``
differs per client, so the shared body is encoded (to UTF-8 bytes) without it, and each
client's message is ``{"dropped":N,`` spliced onto that body: one join instead of one encode.

A client with analysis options gets its view's frame (:mod:`~..dsp.views`) in the same
message type, with fields added, never renamed; a client that asked for bands first gets one
``{"type":"bands",...}`` message with the layout (:func:`layout_message`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from ..dsp.band_onsets import first_eligible_band
from ..dsp.layouts import BandLayout
from ..dsp.views import ViewFrame, spectrum_levels
from ..pipeline.messages import Spectrum
from ..transport.bands import BandSpectrum

MESSAGE_TYPE = "fft_magnitudes"
LAYOUT_TYPE = "bands"
_CACHE_KEY = "json"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def rfc3339(timestamp: float) -> str:
    """UTC with microseconds, as Go's time.Time marshals (``2026-11-25T19:40:01.123456Z``).

    ~172 stamps share each second, so the date-and-time part is formatted once per second.
    """
    micros = round(timestamp * 1_000_000)
    second, fraction = divmod(micros, 1_000_000)
    return f"{_whole_second(second)}.{fraction:06d}Z"


@lru_cache(maxsize=4)
def _whole_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _common(spectrum: Spectrum) -> dict[str, Any]:
    return {
        "type": MESSAGE_TYPE,
        "frameCount": spectrum.frame_count,
        "startTime": rfc3339(spectrum.capture_time),
    }


def encode_body(spectrum: Spectrum) -> bytes:
    """The UTF-8 JSON object without ``dropped``, cached on the spectrum."""
    cached: bytes | None = spectrum.encoded(_CACHE_KEY)
    if cached is not None:
        return cached
    fields = _common(spectrum)
    fields |= {
        "magnitudes": spectrum.magnitudes,
        "spectralFlux": spectrum.flux,
        "bpm": spectrum.bpm,
        "bpmConfidence": spectrum.bpm_confidence,
        "beatPhase": spectrum.beat_phase,
        "beat": spectrum.beat,
        "sampleRate": spectrum.sample_rate,
        "fftSize": spectrum.fft_size,
        "captureTime": spectrum.capture_time,
    }
    if isinstance(spectrum, BandSpectrum):
        fields["bands"] = spectrum.bands  # magnitudes are log-spaced bands, not FFT bins
    levels = spectrum_levels(spectrum)
    if levels is not None:
        fields["rms"], fields["peak"] = levels
    body: bytes = spectrum.remember(_CACHE_KEY, orjson.dumps(fields, option=_OPTIONS))
    return body


def encode_view_body(spectrum: Spectrum, frame: ViewFrame) -> bytes:
    """The JSON object of a view's frame, without ``dropped``; cached per spectrum and view."""
    key = f"{_CACHE_KEY}:{frame.spec.key}"
    cached: bytes | None = spectrum.encoded(key)
    if cached is not None:
        return cached
    spec = frame.spec
    fields = _common(spectrum)
    fields |= {
        "bpm": spectrum.bpm,
        "bpmConfidence": spectrum.bpm_confidence,
        "beatPhase": spectrum.beat_phase,
        "beat": spectrum.beat,
        "sampleRate": spectrum.sample_rate,
        "fftSize": frame.fft_size,
        "captureTime": spectrum.capture_time,
        "view": spec.key,
        "scale": spec.dynamics.scale.value,
    }
    if spec.bands is not None:
        fields["layout"] = str(spec.bands)
        fields["bands"] = frame.values.shape[1]
    fields["silent"] = frame.all_silent
    fields["rms"] = float(frame.rms.max())
    fields["peak"] = float(frame.peak.max())
    if spec.dynamics.auto_gain:
        fields["gain"] = frame.gain_db
    rows = _rows(frame)
    if spec.channels.per_channel:
        fields["channels"] = rows
    else:
        fields |= rows[0]
    body: bytes = spectrum.remember(key, orjson.dumps(fields, option=_OPTIONS))
    return body


def _rows(frame: ViewFrame) -> list[dict[str, Any]]:
    onsets = None if frame.onsets is None else frame.onsets.astype(np.uint8)
    rows: list[dict[str, Any]] = []
    for row in range(len(frame.values)):
        fields: dict[str, Any] = {}
        if frame.channels:
            fields |= {
                "channel": frame.channels[row],
                "silent": bool(frame.silent[row]),
                "rms": float(frame.rms[row]),
                "peak": float(frame.peak[row]),
            }
        fields |= {
            "magnitudes": frame.values[row],
            "spectralFlux": frame.flux[row],
            "centroid": float(frame.centroid[row]),
        }
        if onsets is not None:
            fields["onsets"] = onsets[row]
        rows.append(fields)
    return rows


def encode_parts(spectrum: Spectrum, dropped: int) -> tuple[bytes, memoryview]:
    """One client's message as two byte strings to join: its own ``{"dropped":N,`` and the
    shared rest of the body (a view, not a copy)."""
    return b'{"dropped":%d,' % dropped, memoryview(encode_body(spectrum))[1:]


def encode_view_parts(
    spectrum: Spectrum, frame: ViewFrame, dropped: int
) -> tuple[bytes, memoryview]:
    """As :func:`encode_parts`, for a view's frame."""
    return b'{"dropped":%d,' % dropped, memoryview(encode_view_body(spectrum, frame))[1:]


def encode_message(spectrum: Spectrum, dropped: int) -> str:
    """One client's text message: the shared body with its own ``dropped`` count."""
    return b"".join(encode_parts(spectrum, dropped)).decode()


def encode_layout(layout: BandLayout) -> bytes:
    """The ``{"type":"bands",...}`` message describing a band layout, sent once to a client
    before its first frame."""
    return orjson.dumps(
        {
            "type": LAYOUT_TYPE,
            "layout": str(layout.spec),
            "sampleRate": layout.sample_rate,
            "fftSize": layout.fft_size,
            "resolution": layout.resolution,
            "centres": layout.centres,
            "lowers": layout.lowers,
            "uppers": layout.uppers,
            "onsetsFrom": first_eligible_band(layout.lowers, layout.uppers, layout.resolution),
        }
    )
