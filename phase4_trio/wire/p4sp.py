"""The compact binary spectrum (``?format=f32`` on the WebSocket, every UDP datagram).

A fixed 56-byte little-endian header, then ``bin_count`` float32 magnitudes, then — when
flag bit 0 is set — ``bin_count`` float32 flux values. docs/protocol.md has the byte table.
Every multi-byte field sits at a multiple of its own size, so a browser can read the header
with a ``DataView`` and wrap the payload in a ``Float32Array`` without copying.

The header carries its own size, so a later revision of version 1 may append fields and
older decoders skip them; anything that changes the meaning of existing bytes bumps
``version``, which decoders refuse rather than misread.

Encoding happens once per spectrum and variant (with or without flux): the bytes with
``dropped = 0`` are cached on the :class:`Spectrum`. A client that has lost frames gets
those bytes with its own 8-byte count spliced in — one ``bytes.join`` (a memcpy), never a
second float conversion.
"""

from __future__ import annotations

import struct

import attrs
import numpy as np
from numpy.typing import NDArray

from ..pipeline.messages import Spectrum
from ..transport.bands import BandSpectrum

MAGIC = b"P4SP"
VERSION = 1
FLAG_FLUX = 1 << 0
FLAG_BANDS = 1 << 1
KNOWN_FLAGS = FLAG_FLUX | FLAG_BANDS

# magic, version, header_size, flags, bin_count, frame_count, dropped, capture_time,
# sample_rate, fft_size, bpm, bpm_confidence
_HEADER = struct.Struct("<4sHHIIQQdIIff")
HEADER_SIZE = _HEADER.size
_DROPPED = struct.Struct("<Q")
_DROPPED_OFFSET = 24
_PREFIX = struct.Struct("<4sHH")
_CACHE_KEYS = {False: "f32", True: "f32+flux"}


class WireError(ValueError):
    """Bytes that are not a spectrum this decoder understands, or a spectrum it cannot encode."""


def _same(a: NDArray[np.float32] | None, b: NDArray[np.float32] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@attrs.frozen
class DecodedSpectrum:
    """What a client reads from one binary message.

    Arrays compare by their exact bytes, so NaN payloads and signed zeros round-trip too.
    """

    frame_count: int
    capture_time: float
    sample_rate: int
    fft_size: int
    bpm: float
    bpm_confidence: float
    dropped: int
    banded: bool
    magnitudes: NDArray[np.float32] = attrs.field(eq=attrs.cmp_using(eq=_same))
    flux: NDArray[np.float32] | None = attrs.field(eq=attrs.cmp_using(eq=_same))


def encoded_size(bin_count: int, *, with_flux: bool) -> int:
    """Bytes of one message carrying ``bin_count`` values (and as many flux values)."""
    return HEADER_SIZE + 4 * bin_count * (2 if with_flux else 1)


def encode(spectrum: Spectrum, *, with_flux: bool = False, dropped: int = 0) -> bytes:
    """One client's message; the float payload is encoded once per spectrum and variant."""
    key = _CACHE_KEYS[with_flux]
    shared: bytes | None = spectrum.encoded(key)
    if shared is None:
        shared = spectrum.remember(key, _encode_shared(spectrum, with_flux))
    if dropped == 0:
        return shared
    try:
        count = _DROPPED.pack(dropped)
    except struct.error:
        raise WireError(f"dropped must fit an unsigned 64-bit count, got {dropped}") from None
    view = memoryview(shared)
    return b"".join((view[:_DROPPED_OFFSET], count, view[_DROPPED_OFFSET + _DROPPED.size :]))


def adopt(spectrum: Spectrum, data: bytes, *, with_flux: bool) -> None:
    """Cache ``data`` as ``spectrum``'s encoding: it was decoded from exactly these bytes
    (a relay's spectra), so re-encoding would only rebuild them."""
    spectrum.remember(_CACHE_KEYS[with_flux], data)


def _encode_shared(spectrum: Spectrum, with_flux: bool) -> bytes:
    magnitudes = np.asarray(spectrum.magnitudes, dtype="<f4")
    bins = len(magnitudes)
    banded = isinstance(spectrum, BandSpectrum)
    if spectrum.fft_size < 2 or spectrum.sample_rate < 1:
        raise WireError(
            f"fft size {spectrum.fft_size} at {spectrum.sample_rate} Hz is not a spectrum"
        )
    if not banded and bins != spectrum.fft_size // 2 + 1:
        raise WireError(f"{bins} magnitudes for an FFT of {spectrum.fft_size}")
    flags = (FLAG_FLUX if with_flux else 0) | (FLAG_BANDS if banded else 0)
    try:
        header = _HEADER.pack(
            MAGIC,
            VERSION,
            HEADER_SIZE,
            flags,
            bins,
            spectrum.frame_count,
            0,
            spectrum.capture_time,
            spectrum.sample_rate,
            spectrum.fft_size,
            spectrum.bpm,
            spectrum.bpm_confidence,
        )
    except (struct.error, OverflowError) as error:
        raise WireError(f"spectrum header out of range: {error}") from None
    parts = [header, magnitudes.tobytes()]
    if with_flux:
        flux = np.asarray(spectrum.flux, dtype="<f4")
        if len(flux) != bins:
            raise WireError(f"{len(flux)} flux values for {bins} magnitudes")
        parts.append(flux.tobytes())
    return b"".join(parts)


def decode(data: bytes | bytearray | memoryview) -> DecodedSpectrum:
    """Parse one message; anything malformed raises :class:`WireError` and nothing else."""
    length = len(data)
    if length < _PREFIX.size:
        raise WireError(f"truncated: {length} bytes, a header has {HEADER_SIZE}")
    magic, version, header_size = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise WireError(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise WireError(f"unknown version {version}, this decoder reads version {VERSION}")
    if header_size < HEADER_SIZE:
        raise WireError(f"header size {header_size} is below the {HEADER_SIZE} bytes of version 1")
    if length < header_size:
        raise WireError(f"truncated: {length} bytes, the header alone has {header_size}")
    (
        _magic,
        _version,
        _size,
        flags,
        bins,
        frame_count,
        dropped,
        capture_time,
        sample_rate,
        fft_size,
        bpm,
        bpm_confidence,
    ) = _HEADER.unpack_from(data)
    if flags & ~KNOWN_FLAGS:
        raise WireError(f"unknown flags {flags & ~KNOWN_FLAGS:#x}")
    banded = bool(flags & FLAG_BANDS)
    with_flux = bool(flags & FLAG_FLUX)
    if fft_size < 2 or sample_rate < 1:
        raise WireError(f"fft size {fft_size} at {sample_rate} Hz is not a spectrum")
    if banded and bins < 1:
        raise WireError("a banded spectrum needs at least one band")
    if not banded and bins != fft_size // 2 + 1:
        raise WireError(f"bin count {bins} does not match fft size {fft_size}")
    expected = header_size + 4 * bins * (2 if with_flux else 1)
    if length != expected:
        raise WireError(f"length {length} bytes, the header announces {expected}")
    magnitudes = np.frombuffer(data, dtype="<f4", count=bins, offset=header_size)
    flux = (
        np.frombuffer(data, dtype="<f4", count=bins, offset=header_size + 4 * bins)
        if with_flux
        else None
    )
    return DecodedSpectrum(
        frame_count=frame_count,
        capture_time=capture_time,
        sample_rate=sample_rate,
        fft_size=fft_size,
        bpm=bpm,
        bpm_confidence=bpm_confidence,
        dropped=dropped,
        banded=banded,
        magnitudes=magnitudes.astype(np.float32, copy=False),
        flux=None if flux is None else flux.astype(np.float32, copy=False),
    )
