"""What travels on NATS, both ways: spectra as P4SP bytes, and the stream's metadata as JSON.

Spectra use the binary format of docs/protocol.md with flux, so a relay can rebuild every
client format (JSON, ``?format=f32``, ``?bins=N``) from one message. The bytes published are
the ones the engine's own ``f32`` clients get, and a relay keeps them on the rebuilt
:class:`Spectrum`, so its binary clients get the very bytes that crossed NATS, never a
re-encoding.
"""

from __future__ import annotations

import attrs
import orjson

from ...pipeline.messages import Spectrum
from ...wire import p4sp
from ...wire.p4sp import WireError

FORMAT = "P4SP"


def spectrum_payload(spectrum: Spectrum) -> bytes:
    """The message published for ``spectrum`` (encoded once, shared with UDP and f32 clients)."""
    return p4sp.encode(spectrum, with_flux=True)


def spectrum_from_payload(data: bytes) -> Spectrum:
    """A published message back into the :class:`Spectrum` the engine routed.

    Raises :class:`WireError` for anything that is not a P4SP spectrum with flux over FFT bins
    (what :func:`spectrum_payload` makes).
    """
    decoded = p4sp.decode(data)
    if decoded.flux is None or decoded.banded:
        raise WireError("a published spectrum carries flux over FFT bins")
    if decoded.dropped:
        raise WireError(f"a published spectrum has dropped 0, got {decoded.dropped}")
    spectrum = Spectrum(
        decoded.frame_count,
        decoded.capture_time,
        decoded.sample_rate,
        decoded.fft_size,
        decoded.magnitudes,
        decoded.flux,
        decoded.bpm,
        decoded.bpm_confidence,
        beat_phase=decoded.beat_phase,
        beat=decoded.beat,
    )
    p4sp.adopt(spectrum, data, with_flux=True)
    return spectrum


@attrs.frozen
class StreamMeta:
    """What a consumer needs to know about an engine's stream before its first spectrum."""

    engine_id: str
    sample_rate: int
    block_size: int
    fft_size: int
    spectra_subject: str

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "type": "stream_meta",
                "engine": self.engine_id,
                "subject": self.spectra_subject,
                "format": FORMAT,
                "version": p4sp.VERSION,
                "flux": True,
                "sampleRate": self.sample_rate,
                "blockSize": self.block_size,
                "fftSize": self.fft_size,
                "bins": self.fft_size // 2 + 1,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> StreamMeta:
        """ValueError for anything but a metadata message this version understands."""
        try:
            fields = orjson.loads(data)
            if fields["type"] != "stream_meta" or fields["format"] != FORMAT:
                raise ValueError(f"not a {FORMAT} stream_meta message")
            if fields["version"] != p4sp.VERSION:
                raise ValueError(f"unknown format version {fields['version']!r}")
            meta = cls(
                str(fields["engine"]),
                int(fields["sampleRate"]),
                int(fields["blockSize"]),
                int(fields["fftSize"]),
                str(fields["subject"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"malformed stream_meta message: {error!r}") from None
        return meta
