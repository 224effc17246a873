"""The page's P4SP decoder against the engine's own encoder: messages built by
``phase4_trio.wire.p4sp`` (plain, ``?bins=N``, a view with bands, onsets and channel rows, a
first-revision 56-byte header) fed to the page as the socket would deliver them, and compared
field by field with the Python decoder's reading. Malformed messages are refused and counted."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from pagekit import BIN_HZ, SAMPLE_RATE, TONE_BIN, db, open_page, plot_of, read_bars, wait_text

from phase4_trio.dsp import Resolution
from phase4_trio.dsp.layouts import BandSpec, band_layout
from phase4_trio.dsp.views import ChannelMode, Channels, ViewFrame, ViewSpec
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.bands import reduce_spectrum
from phase4_trio.wire import json_spectrum, p4sp

pytestmark = pytest.mark.e2e

FEED_BINARY = """async (bytes) => {
  const drawn = phase4.nextDraw();
  const before = phase4.stats.messages;
  phase4.feedBinary(bytes);
  if (phase4.stats.messages > before) await drawn;
  const f = phase4.lastFrame;
  return {...f, magnitudes: Array.from(f.magnitudes),
          spectralFlux: f.spectralFlux ? Array.from(f.spectralFlux) : null, bandLayout: null};
}"""


def block_spectrum(frame_count: int = 41, *, beat: bool = False) -> Spectrum:
    """A block spectrum with a tone in bin 16 (0.25: amplitude 0.5 through Hann)."""
    mags = np.full(129, 1e-4, np.float32)
    mags[TONE_BIN] = 0.25
    flux = np.linspace(0, 0.01, 129, dtype=np.float32)
    return Spectrum(
        frame_count,
        1_764_099_601.25,
        SAMPLE_RATE,
        256,
        mags,
        flux,
        121.5,
        0.75,
        beat_phase=0.375,
        beat=beat,
    )


def fed(page: Any, data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(FEED_BINARY, list(data))
    return result


def same_floats(page_values: list[float], python_values: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(page_values, np.float32), python_values))


def assert_reads_like_python(frame: dict[str, Any], data: bytes) -> None:
    expected = p4sp.decode(data)
    assert frame["frameCount"] == expected.frame_count
    assert frame["dropped"] == expected.dropped
    assert frame["captureTime"] == expected.capture_time
    assert frame["sampleRate"] == expected.sample_rate
    assert frame["fftSize"] == expected.fft_size
    assert frame["bpm"] == pytest.approx(expected.bpm, rel=1e-7)
    assert frame["bpmConfidence"] == pytest.approx(expected.bpm_confidence, rel=1e-7)
    assert (frame["beatPhase"], frame["beat"]) == (expected.beat_phase, expected.beat)
    row0 = expected.magnitudes if expected.magnitudes.ndim == 1 else expected.magnitudes[0]
    assert same_floats(frame["magnitudes"], row0)
    if expected.flux is None:
        assert frame["spectralFlux"] is None
    else:
        flux0 = expected.flux if expected.flux.ndim == 1 else expected.flux[0]
        assert same_floats(frame["spectralFlux"], flux0)
    assert frame["silent"] == expected.silent
    assert frame["scale"] == expected.scale.name.lower()
    for name in ("rms", "centroid"):
        got, want = frame[name], getattr(expected, name)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-6)


def test_plain_binary_frames_decode_and_draw_the_tone(page, tone_engine) -> None:
    open_page(page, tone_engine, "connect=0&smooth=0&peak=0")
    data = p4sp.encode(block_spectrum(), with_flux=True, dropped=3)
    frame = fed(page, data)
    assert_reads_like_python(frame, data)
    assert frame["analysed"] is False and "layout" not in frame and "bands" not in frame
    assert page.evaluate("phase4.stats.binary") == 1
    # the tone in its bin, at its level
    plot = plot_of(page, "barsCanvas")
    bars = read_bars(page)
    x0, x1 = plot.columns((TONE_BIN - 0.5) * BIN_HZ, (TONE_BIN + 0.5) * BIN_HZ)
    cols = bars.tallest_columns()
    assert x0 <= min(cols) and max(cols) < x1, (cols, (x0, x1))
    assert bars.tallest == pytest.approx(plot.bar_height(db(0.25)), abs=1)
    page.wait_for_function("document.getElementById('droppedDisplay').textContent === '3'")
    wait_text(page, "formatDisplay", "44100 Hz · FFT 256 · Δf 172 Hz")
    assert page.text_content("#frameCountDisplay") == "41"
    assert page.text_content("#bpmDisplay") == "121.5"

    beats = page.evaluate("phase4.stats.beats")
    data = p4sp.encode(block_spectrum(42, beat=True))
    frame = fed(page, data)
    assert_reads_like_python(frame, data)
    assert frame["beat"] is True
    page.wait_for_function("document.getElementById('beatLight').classList.contains('on')")
    assert page.evaluate("phase4.stats.beats") == beats + 1


def test_first_revision_and_log_band_frames_decode(page, tone_engine) -> None:
    open_page(page, tone_engine, "connect=0&smooth=0")
    data = p4sp.encode(block_spectrum(), with_flux=True)
    old = bytearray(data[: p4sp.FIRST_REVISION_HEADER_SIZE] + data[p4sp.HEADER_SIZE :])
    struct.pack_into("<H", old, 6, p4sp.FIRST_REVISION_HEADER_SIZE)
    frame = fed(page, bytes(old))
    assert_reads_like_python(frame, bytes(old))
    assert math.isnan(frame["rms"])

    reduced = p4sp.encode(reduce_spectrum(block_spectrum(42), 32))
    frame = fed(page, reduced)
    assert_reads_like_python(frame, reduced)
    assert frame["bands"] == 32 and "layout" not in frame
    # the maxima of ?bins=32: the band holding 2756 Hz reads the tone's bin
    band = page.evaluate(
        "phase4.display.layout.elements.findIndex((e) => e.lo <= 2756.25 && 2756.25 < e.hi)"
    )
    assert page.evaluate(f"phase4.display.raw[{band}]") == pytest.approx(db(0.25), abs=0.01)
    wait_text(page, "sourceDisplay", "32 log bands (maxima) from the server")

    old_banded = p4sp.encode(reduce_spectrum(block_spectrum(43), 32), with_flux=True)
    old = bytearray(old_banded[:56] + old_banded[80:])
    struct.pack_into("<H", old, 6, 56)
    frame = fed(page, bytes(old))
    assert frame["bands"] == 32 and frame["frameCount"] == 43


def test_a_view_with_bands_onsets_and_channels_decodes(page, tone_engine) -> None:
    open_page(page, tone_engine, "connect=0&smooth=0")
    spec = ViewSpec(BandSpec.parse("octave:3"), Resolution.FINE, Channels(ChannelMode.ALL))
    layout = band_layout(spec.bands, SAMPLE_RATE, 4096)
    rows = 2
    values = np.zeros((rows, layout.count), np.float32)
    values[0, 21] = 0.5  # the 2.5 kHz band of channel 0
    values[1, 10] = 0.25
    view = ViewFrame(
        spec=spec,
        fft_size=4096,
        channels=(0, 1),
        layout=layout,
        values=values,
        flux=values / 10,
        onsets=values > 0.3,
        centroid=np.array([2756.0, 125.0], np.float32),
        rms=np.array([-9.0, -15.0], np.float32),
        peak=np.array([-6.0, -12.0], np.float32),
        silent=np.array([False, False]),
        gain_db=0.0,
    )
    data = p4sp.encode_view(block_spectrum(50), view, with_flux=True)
    # without its layout message a band frame cannot be placed: ignored, counted
    ignored = page.evaluate("phase4.stats.ignored")
    page.evaluate("(bytes) => phase4.feedBinary(bytes)", list(data))
    assert page.evaluate("phase4.stats.ignored") == ignored + 1
    page.evaluate("(text) => phase4.feed(text)", json_spectrum.encode_layout(layout).decode())
    assert page.evaluate("phase4.stats.layouts") == 1
    frame = fed(page, data)
    assert_reads_like_python(frame, data)
    assert frame["layout"] == "octave:3" and frame["bands"] == layout.count
    assert frame["analysed"] is True
    elements = page.evaluate("phase4.display.layout.elements.map((e) => [e.fc, e.lo, e.hi])")
    bands = zip(layout.centres, layout.lowers, layout.uppers, strict=True)
    assert elements == [list(band) for band in bands]
    # channel 0's row, on the bins' scale: 0.5 x the Hann coherent gain
    assert page.evaluate("phase4.display.raw[21]") == pytest.approx(db(0.25), abs=0.01)


def test_malformed_binary_messages_are_refused_and_counted(page, tone_engine) -> None:
    open_page(page, tone_engine, "connect=0")
    good = p4sp.encode(block_spectrum(), with_flux=True)
    bad_magic = b"P4SQ" + good[4:]
    bad_version = good[:4] + struct.pack("<H", 2) + good[6:]
    unknown_flag = bytearray(good)
    struct.pack_into("<I", unknown_flag, 8, 1 | 32)
    odd_header = bytearray(good)
    struct.pack_into("<H", odd_header, 6, 60)
    wrong_bins = bytearray(good)
    struct.pack_into("<I", wrong_bins, 12, 128)
    for data in (
        bad_magic,
        bad_version,
        good[:-4],
        good + bytes(4),
        bytes(unknown_flag),
        bytes(odd_header),
        bytes(wrong_bins),
        good[:6],
    ):
        with pytest.raises(p4sp.WireError):
            p4sp.decode(data)
        page.evaluate("(bytes) => phase4.feedBinary(bytes)", list(data))
    stats = page.evaluate("phase4.stats")
    assert (stats["bad"], stats["messages"], stats["binary"]) == (8, 0, 8)
    assert stats["lastError"] == "truncated: 6 bytes"
