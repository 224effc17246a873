"""The binary spectrum format: exact round trips, the documented byte layout, a decoder that
only ever raises WireError, and a float payload encoded once per spectrum."""

from __future__ import annotations

import contextlib
import math
import struct

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.bands import BandSpectrum, reduce_spectrum
from phase4_trio.wire import json_spectrum, p4sp
from phase4_trio.wire.p4sp import (
    HEADER_SIZE,
    WireError,
    decode,
    encode,
    encoded_size,
)

f32 = st.floats(width=32)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def spectra(draw: st.DrawFn) -> Spectrum:
    fft_size = draw(st.integers(2, 80))
    bins = fft_size // 2 + 1
    return Spectrum(
        frame_count=draw(u64),
        capture_time=draw(st.floats()),
        sample_rate=draw(st.integers(1, 2**32 - 1)),
        fft_size=fft_size,
        magnitudes=draw(arrays(np.float32, bins, elements=f32)),
        flux=draw(arrays(np.float32, bins, elements=f32)),
        bpm=draw(f32),
        bpm_confidence=draw(f32),
    )


def same_float(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


def assert_round_trip(spectrum: Spectrum, with_flux: bool, dropped: int) -> None:
    data = encode(spectrum, with_flux=with_flux, dropped=dropped)
    assert len(data) == encoded_size(len(spectrum.magnitudes), with_flux=with_flux)
    out = decode(data)
    assert out.frame_count == spectrum.frame_count
    assert same_float(out.capture_time, spectrum.capture_time)
    assert out.sample_rate == spectrum.sample_rate
    assert out.fft_size == spectrum.fft_size
    assert same_float(out.bpm, float(np.float32(spectrum.bpm)))
    assert same_float(out.bpm_confidence, float(np.float32(spectrum.bpm_confidence)))
    assert out.dropped == dropped
    assert out.banded is isinstance(spectrum, BandSpectrum)
    assert out.magnitudes.dtype == np.float32
    assert out.magnitudes.tobytes() == spectrum.magnitudes.tobytes()
    if with_flux:
        assert out.flux is not None
        assert out.flux.tobytes() == spectrum.flux.tobytes()
    else:
        assert out.flux is None


@settings(max_examples=300)
@given(spectra(), st.booleans(), u64)
def test_decode_inverts_encode(spectrum: Spectrum, with_flux: bool, dropped: int) -> None:
    assert_round_trip(spectrum, with_flux, dropped)


@given(spectra(), st.integers(1, 40), st.booleans())
def test_banded_spectra_round_trip(spectrum: Spectrum, bands: int, with_flux: bool) -> None:
    banded = BandSpectrum(
        frame_count=spectrum.frame_count,
        capture_time=spectrum.capture_time,
        sample_rate=spectrum.sample_rate,
        fft_size=spectrum.fft_size,
        magnitudes=np.linspace(0, 1, bands, dtype=np.float32),
        flux=np.linspace(1, 0, bands, dtype=np.float32),
        bpm=spectrum.bpm,
        bpm_confidence=spectrum.bpm_confidence,
        bands=bands,
    )
    assert_round_trip(banded, with_flux, 7)


def tone_spectrum(frame_count: int = 5) -> Spectrum:
    magnitudes = np.zeros(129, dtype=np.float32)
    magnitudes[10] = 0.5
    return Spectrum(
        frame_count=frame_count,
        capture_time=1_700_000_000.25,
        sample_rate=44100,
        fft_size=256,
        magnitudes=magnitudes,
        flux=np.full(129, 0.125, dtype=np.float32),
        bpm=120.0,
        bpm_confidence=0.75,
    )


def test_byte_layout_matches_the_documented_table() -> None:
    spectrum = tone_spectrum(frame_count=0x0102030405060708)
    data = encode(spectrum, with_flux=True, dropped=0x1122334455667788)
    assert HEADER_SIZE == 80
    assert data[0:4] == b"P4SP"
    assert data[4:6] == (1).to_bytes(2, "little")  # version
    assert data[6:8] == (80).to_bytes(2, "little")  # header size
    assert data[8:12] == (1).to_bytes(4, "little")  # flags: flux
    assert data[12:16] == (129).to_bytes(4, "little")  # bin count
    assert data[16:24] == bytes.fromhex("0807060504030201")  # frame count
    assert data[24:32] == bytes.fromhex("8877665544332211")  # dropped
    assert data[32:40] == struct.pack("<d", 1_700_000_000.25)
    assert data[40:44] == (44100).to_bytes(4, "little")
    assert data[44:48] == (256).to_bytes(4, "little")
    assert data[48:52] == struct.pack("<f", 120.0)
    assert data[52:56] == struct.pack("<f", 0.75)
    assert data[56:58] == (1).to_bytes(2, "little")  # channel count
    assert data[58] == 0  # layout: FFT bins
    assert data[59] == 0  # scale: linear
    assert data[60:64] == bytes(4)  # layout parameter, reserved
    assert math.isnan(struct.unpack("<f", data[64:68])[0])  # rms: no samples, unknown
    assert math.isnan(struct.unpack("<f", data[68:72])[0])  # peak
    assert math.isnan(struct.unpack("<f", data[72:76])[0])  # centroid: only in views
    assert data[76:80] == struct.pack("<f", 0.0)  # gain
    assert data[80 + 4 * 10 : 80 + 4 * 11] == struct.pack("<f", 0.5)
    assert data[80 + 4 * 129 : 80 + 4 * 130] == struct.pack("<f", 0.125)
    assert len(data) == 80 + 2 * 4 * 129


def test_the_first_revision_56_byte_header_still_decodes() -> None:
    """What an encoder of the first revision of version 1 sent: 56 bytes of header."""
    data = encode(tone_spectrum(), with_flux=True, dropped=4)
    old = bytearray(data[:56] + data[80:])
    struct.pack_into("<H", old, 6, 56)
    out = decode(bytes(old))
    assert out.magnitudes.tobytes() == decode(data).magnitudes.tobytes()
    assert out.layout is p4sp.Layout.BINS and out.channels == () and out.dropped == 4
    banded = encode(reduce_spectrum(tone_spectrum(), 16))
    old = bytearray(banded[:56] + banded[80:])
    struct.pack_into("<H", old, 6, 56)
    assert decode(bytes(old)).layout is p4sp.Layout.LOG_MAXIMA
    struct.pack_into("<I", old, 8, p4sp.FLAG_BANDS | p4sp.FLAG_SILENT)
    with pytest.raises(WireError, match="need a header of 80 bytes"):
        decode(bytes(old))


def test_float_payload_is_encoded_once_and_dropped_is_spliced() -> None:
    spectrum = tone_spectrum()
    first = encode(spectrum, with_flux=True)
    assert encode(spectrum, with_flux=True) is first
    spectrum.magnitudes[10] = 0.9  # a re-encode would see this; the cache must not
    late = encode(spectrum, with_flux=True, dropped=3)
    assert decode(late).magnitudes[10] == np.float32(0.5)
    assert decode(late).dropped == 3
    assert late[:24] == first[:24]
    assert late[32:] == first[32:]
    without_flux = encode(spectrum)
    assert decode(without_flux).flux is None
    assert decode(without_flux).magnitudes[10] == np.float32(0.9)


def test_a_banded_spectrum_sets_the_bands_flag() -> None:
    spectrum = tone_spectrum()
    banded = reduce_spectrum(spectrum, 16)
    out = decode(encode(banded, with_flux=True))
    assert out.banded
    assert len(out.magnitudes) == 16
    assert out.fft_size == 256
    assert float(out.magnitudes.max()) == 0.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"P4S", "truncated"),
        (b"XXXX" + bytes(60), "bad magic"),
        (b"P4SP" + struct.pack("<HH", 2, 56) + bytes(60), "unknown version 2"),
        (b"P4SP" + struct.pack("<HH", 1, 40) + bytes(60), "header size 40"),
        (b"P4SP" + struct.pack("<HH", 1, 80) + bytes(20), "truncated"),
    ],
)
def test_malformed_headers_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode(data)


def test_inconsistent_lengths_are_refused() -> None:
    good = encode(tone_spectrum(), with_flux=True)
    with pytest.raises(WireError, match="length"):
        decode(good[:-1])
    with pytest.raises(WireError, match="length"):
        decode(good + b"\0\0\0\0")
    wrong_bins = bytearray(good)
    struct.pack_into("<I", wrong_bins, 12, 128)
    with pytest.raises(WireError, match="bin count 128"):
        decode(wrong_bins)
    unknown_flag = bytearray(good)
    struct.pack_into("<I", unknown_flag, 8, 1 | 1 << 7)
    with pytest.raises(WireError, match="unknown flags 0x80"):
        decode(unknown_flag)


def test_a_longer_header_of_the_same_version_is_skipped() -> None:
    good = encode(tone_spectrum(), with_flux=False)
    extended = bytearray(good[:HEADER_SIZE] + b"future!!" + good[HEADER_SIZE:])
    struct.pack_into("<H", extended, 6, HEADER_SIZE + 8)
    assert decode(bytes(extended)) == decode(good)


def test_unencodable_spectra_raise_wire_error() -> None:
    spectrum = tone_spectrum()
    with pytest.raises(WireError, match="dropped"):
        encode(spectrum, dropped=-1)
    bad = Spectrum(1, 0.0, 44100, 256, np.zeros(100, np.float32), np.zeros(100, np.float32), 0, 0)
    with pytest.raises(WireError, match="100 magnitudes"):
        encode(bad)
    huge_bpm = Spectrum(
        1, 0.0, 44100, 4, np.zeros(3, np.float32), np.zeros(3, np.float32), 1e300, 0
    )
    with pytest.raises(WireError, match="out of range"):
        encode(huge_bpm)


@settings(max_examples=1000)
@given(st.binary(max_size=400))
def test_decoding_arbitrary_bytes_raises_only_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(data)


@settings(max_examples=1000)
@given(
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(-40, 40),
)
def test_decoding_damaged_messages_raises_only_wire_error(
    with_flux: bool, flips: list[tuple[int, int]], resize: int
) -> None:
    """Random bytes rarely pass the magic; damage to real messages reaches the deeper checks."""
    data = bytearray(encode(tone_spectrum(), with_flux=with_flux))
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: len(data) + resize] if resize < 0 else data + bytes(resize)
    try:
        out = decode(bytes(data))
    except WireError:
        return
    assert len(out.magnitudes) >= 1
    assert math.isfinite(out.sample_rate)


def test_encoded_size_matches_the_module_constant() -> None:
    assert p4sp.encoded_size(129, with_flux=True) == 80 + 129 * 8
    assert p4sp.encoded_size(129, with_flux=False) == 80 + 129 * 4
    assert p4sp.encoded_size(31, with_flux=True, channels=2, onsets=True, channel_records=True) == (
        80 + 2 * 31 * 8 + 64 + 2 * 20
    )


@pytest.mark.parametrize(("phase", "beat"), [(0.0, False), (0.25, True), (0.99999, False)])
def test_the_beat_travels_in_the_header(phase: float, beat: bool) -> None:
    zeros = np.zeros(129, dtype=np.float32)
    spectrum = Spectrum(7, 1.5, 44100, 256, zeros, zeros, 120.0, 0.8, beat_phase=phase, beat=beat)
    data = p4sp.encode(spectrum, with_flux=True)
    # no flag bit: a decoder of the first revision (which refuses unknown flags) still reads it
    assert struct.unpack_from("<I", data, 8)[0] == p4sp.FLAG_FLUX
    decoded = p4sp.decode(data)
    assert decoded.beat is beat
    assert decoded.beat_phase == pytest.approx(phase, abs=1 / 32768)
    assert 0.0 <= decoded.beat_phase < 1.0
    message = orjson.loads(json_spectrum.encode_message(spectrum, 0))
    assert (message["beatPhase"], message["beat"]) == (phase, beat)
