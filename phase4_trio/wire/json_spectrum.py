"""The original's JSON message, plus our added fields, encoded once per spectrum.

Field names are the Go engine's (``type``, ``frameCount``, ``startTime``, ``magnitudes``,
``spectralFlux``, ``bpm``, ``bpmConfidence``) so its clients keep working. ``dropped``
differs per client, so the shared body is encoded (to UTF-8 bytes) without it, and each
client's message is ``{"dropped":N,`` spliced onto that body: one join instead of one encode.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import orjson

from ..pipeline.messages import Spectrum
from ..transport.bands import BandSpectrum

MESSAGE_TYPE = "fft_magnitudes"
_CACHE_KEY = "json"


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


def encode_body(spectrum: Spectrum) -> bytes:
    """The UTF-8 JSON object without ``dropped``, cached on the spectrum."""
    cached: bytes | None = spectrum.encoded(_CACHE_KEY)
    if cached is not None:
        return cached
    fields = {
        "type": MESSAGE_TYPE,
        "frameCount": spectrum.frame_count,
        "startTime": rfc3339(spectrum.capture_time),
        "magnitudes": spectrum.magnitudes,
        "spectralFlux": spectrum.flux,
        "bpm": spectrum.bpm,
        "bpmConfidence": spectrum.bpm_confidence,
        "sampleRate": spectrum.sample_rate,
        "fftSize": spectrum.fft_size,
        "captureTime": spectrum.capture_time,
    }
    if isinstance(spectrum, BandSpectrum):
        fields["bands"] = spectrum.bands  # magnitudes are log-spaced bands, not FFT bins
    body: bytes = spectrum.remember(
        _CACHE_KEY, orjson.dumps(fields, option=orjson.OPT_SERIALIZE_NUMPY)
    )
    return body


def encode_parts(spectrum: Spectrum, dropped: int) -> tuple[bytes, memoryview]:
    """One client's message as two byte strings to join: its own ``{"dropped":N,`` and the
    shared rest of the body (a view, not a copy)."""
    return b'{"dropped":%d,' % dropped, memoryview(encode_body(spectrum))[1:]


def encode_message(spectrum: Spectrum, dropped: int) -> str:
    """One client's text message: the shared body with its own ``dropped`` count."""
    return b"".join(encode_parts(spectrum, dropped)).decode()
