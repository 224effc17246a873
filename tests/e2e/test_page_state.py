"""View state in the URL, presets in localStorage, and the level maths on frames the test feeds.

The page is served by a real engine but opened with ``connect=0``: frames go in through
``phase4.feed()``, the same path the socket's messages take, so levels, smoothing and peak
hold can be checked against exact expectations.
"""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qs, urlsplit

import pytest
from pagekit import (
    BIN_HZ,
    TONE_HZ,
    hooked_context,
    open_page,
    plot_of,
    read_bars,
    set_input,
    third_octave_band,
    wait_text,
)

pytestmark = pytest.mark.e2e

TONE_K = 16


def frame(level_db: float, k: int = TONE_K, bins: int = 129, n: int = 0, **extra) -> dict:
    """A message with one bin at level_db and every other bin silent."""
    mags = [0.0] * bins
    mags[k] = 10 ** (level_db / 20)
    return {
        "type": "fft_magnitudes",
        "frameCount": n,
        "startTime": "2026-11-25T19:40:01.123456Z",
        "magnitudes": mags,
        **extra,
    }


FEED_AND_DRAW = """async (m) => {
  const drawn = phase4.nextDraw();
  phase4.feed(m);
  await drawn;
  return {value: phase4.display.values[%d], peak: phase4.display.peaks[%d],
          peakAt: phase4.display.peakAt[%d], now: phase4.display.lastPeakTime};
}"""


def feed(page, message, k: int = TONE_K) -> dict:
    return page.evaluate(FEED_AND_DRAW % (k, k, k), message)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


FULL_QUERY = (
    "smooth=0.3&min=-70&max=-5&ref=0.5&scale=lin&bands=3&weight=a&labels=note&grid=0&peak=0"
    "&hold=2000&decay=12&views=bars,spectrogram&cmap=viridis&fmin=40&fmax=16000&connect=0"
)


def test_url_state_sets_every_control_and_round_trips(page, browser, tone_engine):
    open_page(page, tone_engine, FULL_QUERY)
    values = {
        "smoothing": "0.3",
        "minDb": "-70",
        "maxDb": "-5",
        "refMag": "0.5",
        "bandMode": "3",
        "holdTime": "2000",
        "peakDecay": "12",
        "colormap": "viridis",
        "fminInput": "40",
        "fmaxInput": "16000",
    }
    for element_id, value in values.items():
        assert page.input_value(f"#{element_id}") == value, element_id
    checks = {
        "logFreqScale": False,
        "aWeighting": True,
        "noteLabels": True,
        "dbGrid": False,
        "peakHold": False,
        "showBars": True,
        "showRadial": False,
        "showSpectrogram": True,
    }
    for element_id, checked in checks.items():
        assert page.is_checked(f"#{element_id}") == checked, element_id
    assert page.is_hidden("#radialCanvas")
    page.wait_for_function("document.getElementById('barsCanvas').dataset.scale === 'lin'")
    plot = plot_of(page, "barsCanvas")
    assert (plot.scale, plot.fmin, plot.fmax, plot.min_db, plot.max_db) == (
        "lin",
        40,
        16000,
        -70,
        -5,
    )
    # the page keeps the URL as given (same parameters, canonical form)
    assert query_of(page.url) == query_of("/?" + FULL_QUERY)

    # change things through the UI; the URL follows, and a fresh page restores all of it
    page.select_option("#bandMode", "12")
    page.keyboard.press("m")  # next colour map
    set_input(page, "smoothing", 0.8)
    page.click("#showRadial")
    state = page.evaluate("JSON.stringify(phase4.state)")
    url = page.url
    assert query_of(url)["bands"] == ["12"]
    assert query_of(url)["cmap"] == ["magma"]
    assert query_of(url)["smooth"] == ["0.8"]
    assert "views" not in query_of(url)  # all three again: the default

    other = hooked_context(browser).new_page()
    try:
        other.goto(url)
        other.wait_for_function("window.phase4 !== undefined")
        assert other.evaluate("JSON.stringify(phase4.state)") == state
        assert query_of(other.url) == query_of(url)
    finally:
        other.context.close()


def test_default_and_bad_url_parameters(page, tone_engine):
    open_page(page, tone_engine, "connect=0")
    state = page.evaluate("phase4.state")
    assert state["minDb"] == -90 and state["scale"] == "log" and state["bands"] == "raw"
    assert query_of(page.url) == {"connect": ["0"]}
    assert page.input_value("#wsUrl") == tone_engine.ws

    open_page(
        page,
        tone_engine,
        "min=abc&scale=weird&bands=7&views=bars,foo&server=ws://10.1.2.3:9/ws&connect=0",
    )
    state = page.evaluate("phase4.state")
    assert (state["minDb"], state["scale"], state["bands"]) == (-90, "log", "raw")
    assert state["views"] == ["bars", "radial", "spectrogram"]
    assert page.input_value("#wsUrl") == "ws://10.1.2.3:9/ws"
    assert query_of(page.url) == {"server": ["ws://10.1.2.3:9/ws"], "connect": ["0"]}


def test_presets_save_load_delete_and_survive_a_reload(page, tone_engine):
    open_page(page, tone_engine, "connect=0")
    assert page.is_visible("#presetEmpty")
    set_input(page, "minDb", -50)
    page.click("#logFreqScale")
    page.select_option("#bandMode", "6")
    page.fill("#presetName", "quiet room")
    page.click("#presetSave")
    assert page.eval_on_selector_all("#presetList option", "os => os.map(o => o.value)") == [
        "quiet room"
    ]

    page.click("#resetBtn")
    assert page.evaluate("phase4.state.minDb") == -90
    page.reload()
    page.wait_for_function("window.phase4 !== undefined")
    assert page.evaluate("phase4.state.bands") == "raw"  # reset, and the URL says so
    assert page.eval_on_selector_all("#presetList option", "os => os.map(o => o.value)") == [
        "quiet room"
    ]

    page.select_option("#presetList", "quiet room")
    page.click("#presetLoad")
    state = page.evaluate("phase4.state")
    assert (state["minDb"], state["scale"], state["bands"]) == (-50, "lin", "6")
    assert page.input_value("#minDb") == "-50"
    q = query_of(page.url)
    assert q["min"] == ["-50"] and q["scale"] == ["lin"] and q["bands"] == ["6"]

    page.fill("#presetName", "b")
    page.click("#presetSave")
    page.select_option("#presetList", "quiet room")
    page.click("#presetDelete")
    page.reload()
    page.wait_for_function("window.phase4 !== undefined")
    assert page.eval_on_selector_all("#presetList option", "os => os.map(o => o.value)") == ["b"]
    stored = json.loads(page.evaluate("localStorage.getItem('phase4.presets.v1')"))
    assert stored["b"]["minDb"] == -50 and "server" not in stored["b"]


def test_smoothing_is_exponential_in_db(page, tone_engine):
    open_page(page, tone_engine, "connect=0&smooth=0.5&peak=0")
    assert feed(page, frame(-60, n=1))["value"] == pytest.approx(-60, abs=0.01)
    expected = -60.0
    for n in range(2, 6):
        expected = 0.5 * expected + 0.5 * -20
        assert feed(page, frame(-20, n=n))["value"] == pytest.approx(expected, abs=0.01)
    plot = plot_of(page, "barsCanvas")
    bars = read_bars(page)
    assert bars.height_at(plot.x(TONE_HZ)) == pytest.approx(plot.bar_height(expected), abs=1)

    set_input(page, "smoothing", 0)
    assert feed(page, frame(-70, n=6))["value"] == pytest.approx(-70, abs=0.01)


def test_peak_hold_holds_then_decays(page, tone_engine):
    # Real time in a browser on a busy machine: a hold long enough that "still held" holds.
    open_page(page, tone_engine, "connect=0&smooth=0&hold=1500&decay=20")
    loud = feed(page, frame(-10, n=1))
    assert loud["peak"] == pytest.approx(-10, abs=0.01)
    quiet = feed(page, frame(-60, n=2))
    assert quiet["value"] == pytest.approx(-60, abs=0.01)
    assert quiet["peak"] == pytest.approx(-10, abs=0.01)  # held
    page.wait_for_timeout(250)
    held = page.evaluate(FEED_AND_DRAW % (TONE_K, TONE_K, TONE_K), frame(-60, n=3))
    assert held["now"] - held["peakAt"] < 1500
    assert held["peak"] == pytest.approx(-10, abs=0.01)

    page.wait_for_timeout(1700)
    plot = plot_of(page, "barsCanvas")
    # peaks, the time they were computed for, and the bars canvas, all of one drawn frame
    late = page.evaluate(
        """async ([k, x]) => {
             await phase4.nextDraw();
             const d = phase4.display;
             const c = document.getElementById('barsCanvas');
             const column = c.getContext('2d').getImageData(Math.round(x), 0, 1, c.height).data;
             return {peak: d.peaks[k], peakAt: d.peakAt[k], now: d.lastPeakTime,
                     column: Array.from(column)};
           }""",
        [TONE_K, plot.x(TONE_HZ)],
    )
    fallen = 20 * ((late["now"] - late["peakAt"]) / 1000 - 1.5)
    assert fallen > 3
    assert late["peak"] == pytest.approx(max(-60, -10 - fallen), abs=0.5)
    # the mark is drawn where the peak is
    y = round(plot.top + plot.height * (1 - plot.db_norm(late["peak"])))
    cyan_rows = [r for r in range(y - 6, y + 6) if late["column"][4 * r + 2] > 200]
    assert cyan_rows, "no peak mark near its level"

    # decays all the way down to the level, and stops there
    page.wait_for_function(f"phase4.display.peaks[{TONE_K}] <= -59.99", timeout=10000)
    assert page.evaluate(f"phase4.display.peaks[{TONE_K}]") == pytest.approx(-60, abs=0.01)


def test_original_fields_only_and_foreign_messages(page, tone_engine):
    open_page(page, tone_engine, "connect=0&smooth=0&peak=0")
    # only the Go engine's fields: 513 bins -> fftSize 1024 assumed at 44.1 kHz
    k = 40
    msg = frame(-20, k=k, bins=513, n=77, spectralFlux=[0.0] * 513, bpm=128.4, bpmConfidence=0.87)
    feed(page, msg, k)
    page.wait_for_function("document.getElementById('bpmDisplay').textContent === '128.4'")
    assert page.text_content("#bpmConfidenceDisplay") == "87%"
    assert page.text_content("#frameCountDisplay") == "77"
    wait_text(page, "formatDisplay", "44100 Hz · FFT 1024 · Δf 43.1 Hz")
    assert page.text_content("#droppedDisplay") == "--"
    assert page.text_content("#startTimeDisplay") not in ("--", "")
    plot = plot_of(page, "barsCanvas")
    df = 44100 / 1024
    cols = read_bars(page).tallest_columns()
    assert round(plot.x((k - 0.5) * df)) <= min(cols) and max(cols) < round(plot.x((k + 0.5) * df))

    drawn = page.evaluate("phase4.stats.drawn")
    page.evaluate("phase4.feed({type: 'hello', magnitudes: [1, 2, 3]})")
    page.evaluate("phase4.feed('not json')")
    page.evaluate("phase4.feed({type: 'fft_magnitudes'})")
    page.wait_for_timeout(100)
    stats = page.evaluate("phase4.stats")
    assert (stats["ignored"], stats["bad"], stats["drawn"]) == (2, 1, drawn)

    # bare minimum: no flux, no bpm -> readouts say unknown, still drawn
    feed(
        page,
        {"type": "fft_magnitudes", "frameCount": 78, "startTime": "x", "magnitudes": [0.1] * 129},
    )
    page.wait_for_function("document.getElementById('bpmDisplay').textContent === '--'")
    wait_text(page, "formatDisplay", "44100 Hz · FFT 256 · Δf 172 Hz")


def test_bands_summed_in_the_page_from_plain_bins(page, tone_engine):
    """A server without analysis sends the block spectrum: the page sums its own 1/3 octaves."""
    open_page(page, tone_engine, "connect=0&smooth=0&peak=0&bands=3")
    mags = [0.0] * 129
    for k, m in ((13, 0.01), (14, 0.02), (15, 0.1), (16, 0.25), (17, 0.1)):
        mags[k] = m
    feed(page, {"type": "fft_magnitudes", "frameCount": 1, "magnitudes": mags})
    lo, fc, hi = third_octave_band(TONE_HZ)
    # bins centred in [lo, hi): 13-16 (bin 17 is above 2818 Hz), Hann's ENBW (1.5 bins) removed
    inside = [k for k in range(129) if lo <= k * BIN_HZ < hi]
    assert inside == [13, 14, 15, 16]
    level = 10 * math.log10(sum(mags[k] ** 2 for k in inside) / 1.5)
    elements = page.evaluate("phase4.display.layout.elements.map((e) => e.fc)")
    band = elements.index(min(elements, key=lambda c: abs(c - fc)))
    assert page.evaluate(f"phase4.display.raw[{band}]") == pytest.approx(level, abs=0.01)
    plot = plot_of(page, "barsCanvas")
    cols = read_bars(page).tallest_columns()
    x0, x1 = plot.columns(lo, hi)
    assert x0 <= min(cols) and max(cols) < x1, (cols, (x0, x1))
    wait_text(page, "sourceDisplay", "1/3 octave in the page")
