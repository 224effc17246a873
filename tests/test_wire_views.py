"""A view's frame on the wire: JSON fields, P4SP bytes (round trip and fuzz), the layout
message, and a client's frame built once per spectrum and view."""

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

from analysis_signals import sine
from phase4_trio.dsp import Analyzer, Resolution
from phase4_trio.dsp.dynamics import DynamicsSpec, Scale
from phase4_trio.dsp.layouts import BandKind, BandSpec, band_layout
from phase4_trio.dsp.views import (
    AnalysedSpectrum,
    ChannelMode,
    Channels,
    ViewFrame,
    Views,
    ViewSpec,
    analysed_spectrum,
)
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.client_frames import encode_for, frame_for, layout_message
from phase4_trio.transport.options import ClientOptions, parse_options
from phase4_trio.wire import json_spectrum, p4sp
from phase4_trio.wire.websocket_frame import parse

RATE = 44100


def base_spectrum(frame_count: int = 7) -> Spectrum:
    zeros = np.zeros(129, np.float32)
    return Spectrum(frame_count, 1_700_000_000.5, RATE, 256, zeros, zeros, 120.0, 0.5)


@st.composite
def view_frames(draw: st.DrawFn) -> ViewFrame:
    bands = draw(
        st.none()
        | st.builds(BandSpec, st.just(BandKind.OCTAVE), st.sampled_from([1, 3, 24]))
        | st.builds(BandSpec, st.sampled_from([BandKind.MEL, BandKind.LOG]), st.integers(1, 40))
    )
    channels = draw(
        st.sampled_from(
            [Channels(), Channels(ChannelMode.ALL), Channels.parse("1"), Channels.parse("1,0")]
        )
    )
    scale = draw(st.sampled_from(list(Scale)))
    spec = ViewSpec(
        bands,
        Resolution.FINE if bands else draw(st.sampled_from(list(Resolution))),
        channels,
        DynamicsSpec(scale, None, draw(st.booleans()), draw(st.none() | st.floats(-120, 0))),
    )
    rows = 1 if not channels.per_channel else len(channels.rows(2))
    fft_size = draw(st.sampled_from([256, 1024]))
    count = band_layout(bands, RATE, fft_size).count if bands else fft_size // 2 + 1
    f32 = st.floats(width=32)
    shape = (rows, count)
    return ViewFrame(
        spec=spec,
        fft_size=fft_size,
        channels=channels.rows(2),
        layout=band_layout(bands, RATE, fft_size) if bands else None,
        values=draw(arrays(np.float32, shape, elements=f32)),
        flux=draw(arrays(np.float32, shape, elements=f32)),
        onsets=draw(arrays(np.bool_, shape)) if bands else None,
        centroid=draw(arrays(np.float32, rows, elements=f32)),
        rms=draw(arrays(np.float32, rows, elements=st.floats(-120, 0, width=32))),
        peak=draw(arrays(np.float32, rows, elements=st.floats(-120, 0, width=32))),
        silent=draw(arrays(np.bool_, rows)),
        gain_db=draw(st.floats(0, 60)),
    )


def same(a: float, b: float) -> bool:
    return struct.pack("<f", a) == struct.pack("<f", b)


@settings(max_examples=200, deadline=None)
@given(view_frames(), st.booleans(), st.integers(0, 2**64 - 1))
def test_a_view_frame_round_trips_through_p4sp(
    frame: ViewFrame, with_flux: bool, dropped: int
) -> None:
    data = p4sp.encode_view(base_spectrum(), frame, with_flux=with_flux, dropped=dropped)
    spec = frame.spec
    rows, count = frame.values.shape
    assert len(data) == p4sp.encoded_size(
        count,
        with_flux=with_flux,
        channels=rows,
        onsets=frame.onsets is not None,
        channel_records=spec.channels.per_channel,
    )
    out = p4sp.decode(data)
    assert out.dropped == dropped and out.fft_size == frame.fft_size
    assert out.banded is (spec.bands is not None)
    assert out.layout_param == (spec.bands.count if spec.bands else 0)
    assert out.scale.name == spec.dynamics.scale.name
    assert out.silent is frame.all_silent
    shaped = (lambda a: a) if spec.channels.per_channel else (lambda a: a[0])
    assert out.magnitudes.tobytes() == shaped(frame.values).tobytes()
    if with_flux:
        assert out.flux is not None and out.flux.tobytes() == shaped(frame.flux).tobytes()
    if frame.onsets is None:
        assert out.onsets is None
    else:
        assert out.onsets is not None
        assert np.array_equal(out.onsets.astype(bool), shaped(frame.onsets))
    assert same(out.rms, float(frame.rms.max())) and same(out.peak, float(frame.peak.max()))
    if spec.channels.per_channel:
        assert [c.channel for c in out.channels] == list(frame.channels)
        assert [c.silent for c in out.channels] == frame.silent.tolist()
        assert all(
            same(c.centroid, float(v)) for c, v in zip(out.channels, frame.centroid, strict=True)
        )
        assert math.isnan(out.centroid)
    else:
        assert out.channels == () and same(out.centroid, float(frame.centroid[0]))


@settings(max_examples=300, deadline=None)
@given(
    view_frames(),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(-40, 40),
)
def test_damaged_view_messages_raise_only_wire_error(
    frame: ViewFrame, flips: list[tuple[int, int]], resize: int
) -> None:
    data = bytearray(p4sp.encode_view(base_spectrum(), frame, with_flux=True))
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: len(data) + resize] if resize < 0 else data + bytes(resize)
    with contextlib.suppress(p4sp.WireError):
        p4sp.decode(bytes(data))


def test_view_header_bytes() -> None:
    spec = ViewSpec(
        BandSpec.parse("octave:3"),
        Resolution.FINE,
        Channels(ChannelMode.ALL),
        DynamicsSpec(Scale.DB, None, True, -50.0),
    )
    layout = band_layout(spec.bands, RATE, 4096)  # type: ignore[arg-type]
    rows = np.zeros((2, layout.count), np.float32)
    frame = ViewFrame(
        spec,
        4096,
        (0, 1),
        layout,
        rows,
        rows,
        np.ones((2, layout.count), bool),
        np.array([440.0, 880.0], np.float32),
        np.array([-20.0, -30.0], np.float32),
        np.array([-10.0, -12.0], np.float32),
        np.array([False, True]),
        12.5,
    )
    data = p4sp.encode_view(base_spectrum(), frame)
    flags = p4sp.FLAG_BANDS | p4sp.FLAG_ONSETS | p4sp.FLAG_CHANNELS
    assert struct.unpack_from("<I", data, 8)[0] == flags
    assert struct.unpack_from("<I", data, 12)[0] == layout.count == 31
    assert struct.unpack_from("<I", data, 44)[0] == 4096
    assert struct.unpack_from("<HBBHH", data, 56) == (2, 2, 1, 3, 0)
    assert struct.unpack_from("<ffff", data, 64)[:2] == (-20.0, -10.0)
    assert struct.unpack_from("<f", data, 76)[0] == 12.5
    onsets_at = 80 + 2 * 31 * 4
    assert data[onsets_at : onsets_at + 62] == b"\x01" * 62
    assert data[onsets_at + 62 : onsets_at + 64] == b"\0\0"  # padding to a multiple of 4
    records = onsets_at + 64
    assert struct.unpack_from("<IIfff", data, records + 20) == (1, 1, -30.0, -12.0, 880.0)
    assert len(data) == records + 40


def analysed(samples: np.ndarray) -> list[AnalysedSpectrum]:
    """``(frames,)`` or ``(frames, channels)`` samples through the analyzer, in one batch."""
    analyzer = Analyzer(256, RATE, "hann", 4096)
    count = len(samples) // 256
    blocks = samples[: count * 256].reshape(count, 256, -1)
    return [
        analysed_spectrum(i, 1.0 + i / 172, RATE, a)
        for i, a in enumerate(analyzer.process_batch(blocks))
    ]


def test_json_of_a_mix_view_adds_fields_and_keeps_the_originals() -> None:
    options = parse_options("bands=octave:1&scale=unit&gain=auto&gate=-70")
    assert options.view is not None
    spectra = analysed(sine(1000, 0.25, 0.3))
    views = Views()
    views.acquire(options.view)
    views.process(spectra)
    message = orjson.loads(encode_for(spectra[-1], options, 3))
    assert message["type"] == "fft_magnitudes" and message["dropped"] == 3
    assert message["frameCount"] == spectra[-1].frame_count
    assert message["layout"] == "octave:1" and message["bands"] == 10
    assert message["fftSize"] == 4096 and message["sampleRate"] == RATE
    assert message["scale"] == "unit" and message["silent"] is False
    assert message["gain"] == pytest.approx(12.04, abs=0.1)  # 0.25 brought up to 1
    assert len(message["magnitudes"]) == len(message["spectralFlux"]) == 10
    assert max(message["magnitudes"]) == pytest.approx(1.0, abs=0.01)
    assert message["magnitudes"].index(max(message["magnitudes"])) == 5  # the 1 kHz band
    assert len(message["onsets"]) == 10 and set(message["onsets"]) <= {0, 1}
    assert message["centroid"] == pytest.approx(1000, rel=0.02)
    assert message["rms"] == pytest.approx(-15.05, abs=0.2)
    assert message["view"] == options.view.key
    assert "channels" not in message


def test_json_of_a_channels_view_has_a_row_per_channel() -> None:
    options = parse_options("bands=log:8&channels=all&gate=-40", input_channels=2)
    stereo = np.stack([sine(300, 0.5, 0.2), np.zeros(8820, np.float32)], axis=1)
    spectra = analysed(stereo)
    views = Views()
    assert options.view is not None
    views.acquire(options.view)
    views.process(spectra)
    message = orjson.loads(encode_for(spectra[-1], options, 0))
    assert "magnitudes" not in message and message["silent"] is False
    left, right = message["channels"]
    assert (left["channel"], right["channel"]) == (0, 1)
    assert left["silent"] is False and right["silent"] is True
    assert right["magnitudes"] == [0.0] * 8
    assert left["rms"] == pytest.approx(-9.0, abs=0.3) and right["rms"] == -120.0
    assert set(left) == {
        "channel",
        "silent",
        "rms",
        "peak",
        "magnitudes",
        "spectralFlux",
        "centroid",
        "onsets",
    }


def test_a_spectrum_without_a_view_frame_goes_out_in_the_original_form() -> None:
    options = parse_options("bands=octave:3")
    plain = base_spectrum()
    assert frame_for(plain, options, 0) == frame_for(plain, ClientOptions(), 0)


def test_frames_are_built_once_per_spectrum_and_view() -> None:
    spectra = analysed(sine(500, 0.5, 0.1))
    json_options = parse_options("bands=mel:12&smooth=10:100")
    binary_options = parse_options("bands=mel:12&smooth=10:100&format=f32&flux=0")
    other = parse_options("bands=mel:12")
    views = Views()
    for options in (json_options, binary_options, other):
        assert options.view is not None
        views.acquire(options.view)
    views.process(spectra)
    spectrum = spectra[-1]
    for options in (json_options, binary_options, other):
        first = frame_for(spectrum, options, 0)
        assert frame_for(spectrum, options, 0) is first
        frames, used = parse(frame_for(spectrum, options, 5))
        assert used == len(frame_for(spectrum, options, 5)) and len(frames) == 1
        payload = frames[0].payload
        expected = encode_for(spectrum, options, 5)
        assert payload == (expected if isinstance(expected, bytes) else expected.encode())
    assert frame_for(spectrum, json_options, 0) != frame_for(spectrum, other, 0)


def test_the_layout_message() -> None:
    assert layout_message(ClientOptions(), RATE, 4096) is None
    assert layout_message(parse_options("scale=db"), RATE, 4096) is None
    message = layout_message(parse_options("bands=octave:3"), RATE, 8192)
    assert message is not None
    layout = orjson.loads(message)
    assert layout["type"] == "bands" and layout["layout"] == "octave:3"
    assert layout["fftSize"] == 8192 and layout["resolution"] == pytest.approx(RATE / 8192)
    assert len(layout["centres"]) == len(layout["lowers"]) == len(layout["uppers"]) == 31
    assert layout["lowers"][1:] == pytest.approx(layout["uppers"][:-1])
    widths = np.array(layout["uppers"]) - np.array(layout["lowers"])
    first = layout["onsetsFrom"]
    assert (widths[first:] >= 2 * RATE / 8192).all() and (widths[:first] < 2 * RATE / 8192).all()


def test_the_original_message_gains_levels_and_beats_only() -> None:
    spectrum = analysed(sine(RATE * 4 / 256, 0.5, 0.05))[-1]
    message = orjson.loads(json_spectrum.encode_message(spectrum, 0))
    original = {
        "type",
        "frameCount",
        "startTime",
        "magnitudes",
        "spectralFlux",
        "bpm",
        "bpmConfidence",
    }
    added = {"dropped", "sampleRate", "fftSize", "captureTime", "rms", "peak", "beatPhase", "beat"}
    assert set(message) == original | added
    assert len(message["magnitudes"]) == 129 and message["fftSize"] == 256
    assert message["rms"] == pytest.approx(-9.03, abs=0.02)
    assert message["peak"] == pytest.approx(-6.02, abs=0.05)
    decoded = p4sp.decode(p4sp.encode(spectrum))
    assert decoded.rms == pytest.approx(-9.03, abs=0.02) and math.isnan(decoded.centroid)


def test_clients_with_different_options_never_share_a_frame() -> None:
    spectrum = analysed(sine(2000, 0.5, 0.05))[-1]
    queries = ["", "bins=16", "bins=32", "format=f32", "format=f32&flux=0", "format=f32&bins=16"]
    frames = {query: frame_for(spectrum, parse_options(query), 0) for query in queries}
    assert len(set(frames.values())) == len(queries)
    for query, frame in frames.items():  # and the cached copies stay each client's own
        assert frame_for(spectrum, parse_options(query), 0) is frame
