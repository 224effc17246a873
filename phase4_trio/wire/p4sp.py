"""The compact binary spectrum (``?format=f32`` on the WebSocket, every UDP datagram).

An 80-byte little-endian header, then ``channel_count × bin_count`` float32 values, then —
each when its flag is set — as many float32 flux values, as many onset bytes (padded to a
multiple of 4), and a 20-byte record per channel. docs/protocol.md has the byte table. Every
multi-byte field sits at a multiple of its own size, so a browser can read the header with a
``DataView`` and wrap the arrays in typed arrays without copying.

The header carries its own size, so a later revision of version 1 may append fields and
older decoders skip them (the first revision's header had 56 bytes; this decoder still reads
it); anything that changes the meaning of existing bytes bumps ``version``, which decoders
refuse rather than misread.

Encoding happens once per spectrum and variant (with or without flux, and per view): the bytes
with ``dropped = 0`` are cached on the :class:`Spectrum`. A client that has lost frames gets
those bytes with its own 8-byte count spliced in — one ``bytes.join`` (a memcpy), never a
second float conversion.
"""

from __future__ import annotations

import enum
import math
import struct

import attrs
import numpy as np
from numpy.typing import NDArray

from ..dsp.layouts import BandKind
from ..dsp.views import ViewFrame, spectrum_levels
from ..pipeline.messages import Spectrum
from ..transport.bands import BandSpectrum

MAGIC = b"P4SP"
VERSION = 1
FLAG_FLUX = 1 << 0
FLAG_BANDS = 1 << 1
FLAG_ONSETS = 1 << 2
FLAG_SILENT = 1 << 3
FLAG_CHANNELS = 1 << 4
KNOWN_FLAGS = FLAG_FLUX | FLAG_BANDS | FLAG_ONSETS | FLAG_SILENT | FLAG_CHANNELS
#: The header's u16 ``beat`` field: the top bit says a beat fell in the block, the other
#: fifteen hold the beat phase in units of 1/32768 of a beat. (Not a flag bit: decoders of
#: earlier messages refuse unknown flags, and skip what was a reserved zero.)
BEAT_BIT = 0x8000
_PHASE_SCALE = 0x8000
_FIRST_REVISION_FLAGS = FLAG_FLUX | FLAG_BANDS


class Layout(enum.IntEnum):
    """What the values of a row are (header byte 58)."""

    BINS = 0  # FFT bins, k · sample_rate / fft_size Hz
    LOG_MAXIMA = 1  # ?bins=N: maxima of log-spaced bands
    OCTAVE = 2  # band power, IEC 1/N octave (layout_param = N)
    MEL = 3  # band power, mel bands
    LOG = 4  # band power, log-spaced bands


class WireScale(enum.IntEnum):
    """How the values are scaled (header byte 59)."""

    LINEAR = 0
    DB = 1
    UNIT = 2


_LAYOUTS = {BandKind.OCTAVE: Layout.OCTAVE, BandKind.MEL: Layout.MEL, BandKind.LOG: Layout.LOG}

# magic, version, header_size, flags, bin_count, frame_count, dropped, capture_time,
# sample_rate, fft_size, bpm, bpm_confidence, | channel_count, layout, scale, layout_param,
# beat (u16: BEAT_BIT | phase), rms, peak, centroid, gain
_HEADER = struct.Struct("<4sHHIIQQdIIffHBBHHffff")
_FIRST_REVISION = struct.Struct("<4sHHIIQQdIIff")
HEADER_SIZE = _HEADER.size
FIRST_REVISION_HEADER_SIZE = _FIRST_REVISION.size
_CHANNEL = struct.Struct("<IIfff")  # channel, flags (bit 0: silent), rms, peak, centroid
CHANNEL_RECORD_SIZE = _CHANNEL.size
_DROPPED = struct.Struct("<Q")
_DROPPED_OFFSET = 24
_PREFIX = struct.Struct("<4sHH")
_CACHE_KEYS = {False: "f32", True: "f32+flux"}


class WireError(ValueError):
    """Bytes that are not a spectrum this decoder understands, or a spectrum it cannot encode."""


def _same(a: NDArray[np.generic] | None, b: NDArray[np.generic] | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _same_float(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


@attrs.frozen
class ChannelInfo:
    """One row's input channel and features (the ``CHANNELS`` records)."""

    channel: int
    silent: bool
    rms: float
    peak: float
    centroid: float = attrs.field(eq=attrs.cmp_using(eq=_same_float))


@attrs.frozen
class DecodedSpectrum:
    """What a client reads from one binary message.

    ``magnitudes``, ``flux`` and ``onsets`` are ``(bin_count,)`` arrays, or ``(channel_count,
    bin_count)`` when ``CHANNELS`` is set. Arrays and floats that may be NaN compare by their
    exact bytes, so NaN payloads and signed zeros round-trip too.
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
    layout: Layout = Layout.BINS
    layout_param: int = 0
    scale: WireScale = WireScale.LINEAR
    silent: bool = False
    rms: float = attrs.field(default=math.nan, eq=attrs.cmp_using(eq=_same_float))
    peak: float = attrs.field(default=math.nan, eq=attrs.cmp_using(eq=_same_float))
    centroid: float = attrs.field(default=math.nan, eq=attrs.cmp_using(eq=_same_float))
    gain_db: float = attrs.field(default=0.0, eq=attrs.cmp_using(eq=_same_float))
    onsets: NDArray[np.uint8] | None = attrs.field(default=None, eq=attrs.cmp_using(eq=_same))
    channels: tuple[ChannelInfo, ...] = ()
    beat_phase: float = 0.0
    beat: bool = False


def encoded_size(
    bin_count: int,
    *,
    with_flux: bool,
    channels: int = 1,
    onsets: bool = False,
    channel_records: bool = False,
) -> int:
    """Bytes of one message carrying ``channels × bin_count`` values and what the flags add."""
    values = channels * bin_count
    size = HEADER_SIZE + 4 * values * (2 if with_flux else 1)
    if onsets:
        size += -(-values // 4) * 4
    if channel_records:
        size += CHANNEL_RECORD_SIZE * channels
    return size


def _with_dropped(shared: bytes, dropped: int) -> bytes:
    if dropped == 0:
        return shared
    try:
        count = _DROPPED.pack(dropped)
    except struct.error:
        raise WireError(f"dropped must fit an unsigned 64-bit count, got {dropped}") from None
    view = memoryview(shared)
    return b"".join((view[:_DROPPED_OFFSET], count, view[_DROPPED_OFFSET + _DROPPED.size :]))


def encode(spectrum: Spectrum, *, with_flux: bool = False, dropped: int = 0) -> bytes:
    """One client's message; the float payload is encoded once per spectrum and variant."""
    key = _CACHE_KEYS[with_flux]
    shared: bytes | None = spectrum.encoded(key)
    if shared is None:
        shared = spectrum.remember(key, _encode_shared(spectrum, with_flux))
    return _with_dropped(shared, dropped)


def adopt(spectrum: Spectrum, data: bytes, *, with_flux: bool) -> None:
    """Cache ``data`` as ``spectrum``'s encoding: it was decoded from exactly these bytes
    (a relay's spectra), so re-encoding would only rebuild them."""
    spectrum.remember(_CACHE_KEYS[with_flux], data)


def encode_view(
    spectrum: Spectrum, frame: ViewFrame, *, with_flux: bool = False, dropped: int = 0
) -> bytes:
    """One message of a view's frame (see :mod:`~..dsp.views`), encoded once per spectrum,
    view and variant."""
    key = f"{_CACHE_KEYS[with_flux]}:{frame.spec.key}"
    shared: bytes | None = spectrum.encoded(key)
    if shared is None:
        shared = spectrum.remember(key, _encode_view(spectrum, frame, with_flux))
    return _with_dropped(shared, dropped)


def _pack_header(
    spectrum: Spectrum,
    *,
    flags: int,
    bins: int,
    fft_size: int,
    channel_count: int = 1,
    layout: Layout = Layout.BINS,
    scale: WireScale = WireScale.LINEAR,
    layout_param: int = 0,
    rms: float = math.nan,
    peak: float = math.nan,
    centroid: float = math.nan,
    gain_db: float = 0.0,
) -> bytes:
    if fft_size < 2 or spectrum.sample_rate < 1:
        raise WireError(f"fft size {fft_size} at {spectrum.sample_rate} Hz is not a spectrum")
    beat = min(_PHASE_SCALE - 1, max(0, int(spectrum.beat_phase * _PHASE_SCALE)))
    if spectrum.beat:
        beat |= BEAT_BIT
    try:
        return _HEADER.pack(
            MAGIC,
            VERSION,
            HEADER_SIZE,
            flags,
            bins,
            spectrum.frame_count,
            0,
            spectrum.capture_time,
            spectrum.sample_rate,
            fft_size,
            spectrum.bpm,
            spectrum.bpm_confidence,
            channel_count,
            layout,
            scale,
            layout_param,
            beat,
            rms,
            peak,
            centroid,
            gain_db,
        )
    except (struct.error, OverflowError) as error:
        raise WireError(f"spectrum header out of range: {error}") from None


def _encode_shared(spectrum: Spectrum, with_flux: bool) -> bytes:
    magnitudes = np.asarray(spectrum.magnitudes, dtype="<f4")
    bins = len(magnitudes)
    banded = isinstance(spectrum, BandSpectrum)
    if not banded and bins != spectrum.fft_size // 2 + 1:
        raise WireError(f"{bins} magnitudes for an FFT of {spectrum.fft_size}")
    levels = spectrum_levels(spectrum)
    rms, peak = levels if levels is not None else (math.nan, math.nan)
    header = _pack_header(
        spectrum,
        flags=(FLAG_FLUX if with_flux else 0) | (FLAG_BANDS if banded else 0),
        bins=bins,
        fft_size=spectrum.fft_size,
        layout=Layout.LOG_MAXIMA if banded else Layout.BINS,
        layout_param=bins if banded else 0,
        rms=rms,
        peak=peak,
    )
    parts = [header, magnitudes.tobytes()]
    if with_flux:
        flux = np.asarray(spectrum.flux, dtype="<f4")
        if len(flux) != bins:
            raise WireError(f"{len(flux)} flux values for {bins} magnitudes")
        parts.append(flux.tobytes())
    return b"".join(parts)


def _encode_view(spectrum: Spectrum, frame: ViewFrame, with_flux: bool) -> bytes:
    values = np.asarray(frame.values, dtype="<f4")
    rows, bins = values.shape
    spec = frame.spec
    per_channel = spec.channels.per_channel
    flags = (
        (FLAG_FLUX if with_flux else 0)
        | (FLAG_BANDS if spec.bands is not None else 0)
        | (FLAG_ONSETS if frame.onsets is not None else 0)
        | (FLAG_SILENT if frame.all_silent else 0)
        | (FLAG_CHANNELS if per_channel else 0)
    )
    header = _pack_header(
        spectrum,
        flags=flags,
        bins=bins,
        fft_size=frame.fft_size,
        channel_count=rows,
        layout=Layout.BINS if spec.bands is None else _LAYOUTS[spec.bands.kind],
        scale=WireScale[spec.dynamics.scale.name],
        layout_param=0 if spec.bands is None else spec.bands.count,
        rms=float(frame.rms.max()),
        peak=float(frame.peak.max()),
        centroid=math.nan if per_channel else float(frame.centroid[0]),
        gain_db=frame.gain_db,
    )
    parts = [header, values.tobytes()]
    if with_flux:
        parts.append(np.asarray(frame.flux, dtype="<f4").tobytes())
    if frame.onsets is not None:
        onsets = frame.onsets.astype(np.uint8).tobytes()
        parts.append(onsets + bytes(-len(onsets) % 4))
    if per_channel:
        parts.extend(
            _CHANNEL.pack(channel, int(silent), rms, peak, centroid)
            for channel, silent, rms, peak, centroid in zip(
                frame.channels,
                frame.silent.tolist(),
                frame.rms.tolist(),
                frame.peak.tolist(),
                frame.centroid.tolist(),
                strict=True,
            )
        )
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
    if header_size < FIRST_REVISION_HEADER_SIZE:
        raise WireError(
            f"header size {header_size} is below the {FIRST_REVISION_HEADER_SIZE} bytes of "
            "version 1"
        )
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
    ) = _FIRST_REVISION.unpack_from(data)
    if flags & ~KNOWN_FLAGS:
        raise WireError(f"unknown flags {flags & ~KNOWN_FLAGS:#x}")
    banded = bool(flags & FLAG_BANDS)
    if header_size >= HEADER_SIZE:
        (count, layout_code, scale_code, layout_param, beat, rms, peak, centroid, gain) = (
            _HEADER.unpack_from(data)[12:]
        )
    else:
        if flags & ~_FIRST_REVISION_FLAGS:
            raise WireError(f"flags {flags:#x} need a header of {HEADER_SIZE} bytes")
        count, layout_code, scale_code = 1, int(banded), 0
        layout_param = bins if banded else 0
        rms = peak = centroid = math.nan
        gain = 0.0
        beat = 0
    try:
        layout, scale = Layout(layout_code), WireScale(scale_code)
    except ValueError:
        raise WireError(f"unknown layout {layout_code} or scale {scale_code}") from None
    if fft_size < 2 or sample_rate < 1:
        raise WireError(f"fft size {fft_size} at {sample_rate} Hz is not a spectrum")
    if banded != (layout is not Layout.BINS):
        raise WireError(f"layout {layout.name} does not match the BANDS flag")
    if count < 1:
        raise WireError("a spectrum needs at least one channel row")
    if banded and bins < 1:
        raise WireError("a banded spectrum needs at least one band")
    if not banded and bins != fft_size // 2 + 1:
        raise WireError(f"bin count {bins} does not match fft size {fft_size}")
    with_flux = bool(flags & FLAG_FLUX)
    with_onsets = bool(flags & FLAG_ONSETS)
    per_channel = bool(flags & FLAG_CHANNELS)
    if count > 1 and not per_channel:
        raise WireError(f"{count} channel rows without the CHANNELS flag")
    expected = (
        encoded_size(
            bins,
            with_flux=with_flux,
            channels=count,
            onsets=with_onsets,
            channel_records=per_channel,
        )
        - HEADER_SIZE
        + header_size
    )
    if length != expected:
        raise WireError(f"length {length} bytes, the header announces {expected}")
    values = count * bins
    shape = (count, bins) if per_channel else (bins,)
    offset = header_size
    magnitudes = np.frombuffer(data, dtype="<f4", count=values, offset=offset).reshape(shape)
    offset += 4 * values
    flux = None
    if with_flux:
        flux = np.frombuffer(data, dtype="<f4", count=values, offset=offset).reshape(shape)
        offset += 4 * values
    onsets = None
    if with_onsets:
        onsets = np.frombuffer(data, dtype=np.uint8, count=values, offset=offset).reshape(shape)
        offset += -(-values // 4) * 4
    channels: tuple[ChannelInfo, ...] = ()
    if per_channel:
        channels = tuple(
            ChannelInfo(channel, bool(channel_flags & 1), row_rms, row_peak, row_centroid)
            for channel, channel_flags, row_rms, row_peak, row_centroid in (
                _CHANNEL.unpack_from(data, offset + CHANNEL_RECORD_SIZE * row)
                for row in range(count)
            )
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
        layout=layout,
        layout_param=layout_param,
        scale=scale,
        silent=bool(flags & FLAG_SILENT),
        rms=rms,
        peak=peak,
        centroid=centroid,
        gain_db=gain,
        onsets=onsets,
        channels=channels,
        beat_phase=(beat & ~BEAT_BIT) / _PHASE_SCALE,
        beat=bool(beat & BEAT_BIT),
    )
