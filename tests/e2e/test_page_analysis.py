"""The page on the engine's analysis: IEC bands from the server where the layout message puts
them, at the level the tone has; one dB scale for bins and bands; and the fine spectrum
resolving what the 256-point block cannot (two tones 40 Hz apart, at 60 and 100 Hz)."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
from pagekit import (
    HANN_COHERENT_GAIN,
    SAMPLE_RATE,
    TONE_FINE_BIN,
    TONE_HZ,
    Engine,
    db,
    free_port,
    open_page,
    plot_of,
    read_bars,
    settle,
    third_octave_band,
    wait_connected,
    wait_text,
)

pytestmark = pytest.mark.e2e

G = 10 ** (3 / 10)  # the base-ten octave ratio of IEC 61260-1


def wait_band_frames(page, layout: str) -> None:
    page.wait_for_function(f"phase4.stats.url.endsWith('&bands={layout}')")
    page.wait_for_function(f"phase4.drawnFrame && phase4.drawnFrame.layout === '{layout}'")
    settle(page)


def test_server_bands_light_at_their_iec_centres(page, engines) -> None:
    engine = engines("tone:1000:0.5")  # the mid-band frequency of the 1 kHz third octave
    try:
        open_page(page, engine, "smooth=0&bands=3")
        wait_connected(page)
        wait_band_frames(page, "octave:3")
        layout = page.evaluate("phase4.layouts['octave:3']")
        assert (layout["fftSize"], layout["sampleRate"]) == (4096, SAMPLE_RATE)
        # 20 Hz to 20 kHz: fm = 1000 G^(k/3), k = -17 .. 13
        iec = [1000 * G ** (k / 3) for k in range(-17, 14)]
        assert layout["centres"] == pytest.approx(iec, rel=1e-12)
        fcs = page.evaluate("phase4.display.layout.elements.map((e) => e.fc)")
        assert fcs == layout["centres"]  # the page places the server's bands, every one

        plot = plot_of(page, "barsCanvas")
        bars = read_bars(page)
        lo, fc, hi = third_octave_band(1000.0)
        assert fc == pytest.approx(1000.0)
        cols = bars.tallest_columns()
        x0, x1 = plot.columns(lo, hi)
        assert x0 <= min(cols) and max(cols) < x1, (cols, (x0, x1))
        band = fcs.index(layout["centres"][17])
        values = bars.frame["magnitudes"]
        # a sine reads its amplitude in its band: 0.5, drawn at 0.5 x Hann's coherent gain
        assert values[band] == pytest.approx(0.5, rel=0.06)  # within 0.5 dB
        level = db(values[band] * HANN_COHERENT_GAIN)
        assert level == pytest.approx(db(0.25), abs=0.5)
        assert bars.tallest == pytest.approx(plot.bar_height(level), abs=1)
        for neighbour in (band - 1, band + 1):  # 800 Hz and 1.25 kHz: the window's leakage only
            assert db(values[neighbour]) < db(values[band]) - 30, neighbour
        wait_text(page, "sourceDisplay", "1/3 octave from the server")
        wait_text(page, "formatDisplay", "44100 Hz · FFT 4096 · Δf 10.8 Hz")
    finally:
        engine.stop()


def test_a_full_scale_sine_reads_the_same_in_bins_and_bands(page, engines) -> None:
    engine = engines(f"tone:{TONE_HZ}:1")  # bin-centred, inside the 2.5 kHz third octave
    try:
        open_page(page, engine, "smooth=0")
        wait_connected(page)
        page.wait_for_function(f"phase4.drawnFrame.magnitudes[{TONE_FINE_BIN}] > 0.49")
        settle(page)
        peak_bin = page.evaluate(f"phase4.display.raw[{TONE_FINE_BIN}]")
        assert peak_bin == pytest.approx(db(HANN_COHERENT_GAIN), abs=0.05)  # -6.02 dB
        page.keyboard.press("b")  # 1/1 octave
        wait_band_frames(page, "octave:1")
        page.keyboard.press("b")  # 1/3 octave
        wait_band_frames(page, "octave:3")
        _lo, fc, _hi = third_octave_band(TONE_HZ)
        band = page.evaluate(
            f"phase4.display.layout.elements.findIndex((e) => Math.abs(e.fc - {fc}) < 0.01)"
        )
        assert page.evaluate(f"phase4.display.raw[{band}]") == pytest.approx(peak_bin, abs=0.1)
        assert page.evaluate("phase4.stats.opens") == 3  # a stream per band mode, no gap
    finally:
        engine.stop()


def write_two_tones(path: Path) -> Path:
    """1 s of equal sines at 60 and 100 Hz, 0.25 each: a whole number of both periods, so
    the engine's loop is seamless."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    signal = 0.25 * np.sin(2 * math.pi * 60 * t) + 0.25 * np.sin(2 * math.pi * 100 * t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((signal * 32767).astype("<i2").tobytes())
    return path


DIP_JS = """() => {
  const d = phase4.display;
  const els = d.layout.elements;
  const within = (lo, hi) => els.flatMap((e, i) => (e.fc >= lo && e.fc <= hi ? [d.raw[i]] : []));
  const max = (lo, hi) => Math.max(...within(lo, hi));
  const min = (lo, hi) => Math.min(...within(lo, hi));
  return {low: max(50, 70), high: max(90, 110), between: min(70, 90)};
}"""


@pytest.mark.parametrize(("fft_size", "least_dip"), [(None, 10.0), (8192, 20.0)])
def test_the_fine_spectrum_resolves_60_and_100_hz(
    page, tmp_path, monkeypatch, fft_size, least_dip
) -> None:
    """At 4096 points the tones are 3.7 bins apart (Hann's main lobe is 4): a dip of about
    13 dB; at 8192, about 40. The 256-point block has them both in its first bin."""
    if fft_size:
        monkeypatch.setenv("PHASE4_DSP__FFT_SIZE", str(fft_size))
    wav = write_two_tones(tmp_path / "60-100.wav")
    engine = Engine(f"wav:{wav}", free_port()).start()
    try:
        open_page(page, engine, "smooth=0&fmax=400")
        wait_connected(page)
        size = fft_size or 4096
        page.wait_for_function(f"phase4.drawnFrame.fftSize === {size}")
        settle(page, 10)
        levels = page.evaluate(DIP_JS)
        dip = min(levels["low"], levels["high"]) - levels["between"]
        assert dip >= least_dip, levels
        for tone in ("low", "high"):  # each tone at its level (0.25 through Hann, ±1.5 dB)
            assert levels[tone] == pytest.approx(db(0.25 * HANN_COHERENT_GAIN), abs=1.5), levels
        # and so drawn: both peaks' columns stand above the lowest column between them
        plot = plot_of(page, "barsCanvas")
        bars = read_bars(page)
        tallest = {
            hz: max(bars.height_at(x) for x in range(*plot.columns(hz - 10, hz + 10)))
            for hz in (60, 100)
        }
        trough = min(bars.height_at(x) for x in range(*plot.columns(75, 85)))
        px_per_db = plot.height / (plot.max_db - plot.min_db)
        assert min(tallest.values()) - trough >= (least_dip - 1) * px_per_db, (tallest, trough)
        df = SAMPLE_RATE / size
        readout = f"44100 Hz · FFT {size} · Δf {df:.1f} Hz"
        wait_text(page, "formatDisplay", readout)
    finally:
        engine.stop()
