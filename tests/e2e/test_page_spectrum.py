"""The page against a real engine playing a bin-centred tone: what is drawn, and where.

The page asks the engine for binary frames of its fine spectrum (4096 points, 10.8 Hz bins) and,
with bands on, for the engine's IEC bands. Every expected pixel position comes from pagekit's
own statement of the documented mapping (docs/page.md), and every expected level from the frame
the page drew or from the tone itself, so these tests fail when the page draws in the wrong
place, at the wrong height, or not at all.
"""

from __future__ import annotations

import math
import re

import pytest
from pagekit import (
    FINE_BIN_HZ,
    FINE_FFT_SIZE,
    HANN_COHERENT_GAIN,
    TONE_FINE_BIN,
    TONE_HZ,
    a_weighting_db,
    canvas_digest,
    db,
    is_bar_colour,
    open_page,
    pixel,
    plot_of,
    read_bars,
    set_input,
    settle,
    third_octave_band,
    wait_connected,
    wait_text,
)

pytestmark = pytest.mark.e2e


#: The tone (amplitude 0.5) read through the Hann window at its bin: 0.25, -12.04 dB.
TONE_LEVEL_DB = db(0.5 * HANN_COHERENT_GAIN)


def peak_span(plot, hz: float) -> tuple[int, int]:
    """Columns [x0, x1) the page fills for the fine bin centred on hz (narrower than a pixel
    here, so one column)."""
    return plot.columns(hz - FINE_BIN_HZ / 2, hz + FINE_BIN_HZ / 2)


def tone_db(bars, ref: float = 1.0) -> float:
    assert bars.frame is not None
    return db(bars.frame["magnitudes"][TONE_FINE_BIN], ref)


def test_draws_the_tone_peak_at_the_predicted_x(page, tone_engine, docs):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    plot = plot_of(page, "barsCanvas")
    assert plot.scale == "log"
    assert plot.fmax == pytest.approx(22050)
    stats = page.evaluate("phase4.stats")
    assert stats["binary"] == stats["messages"] > 0 and stats["bad"] == 0  # P4SP, decoded
    assert page.evaluate("phase4.drawnFrame.magnitudes instanceof Float32Array")
    bars = read_bars(page)
    mags = bars.frame["magnitudes"]
    assert len(mags) == FINE_FFT_SIZE // 2 + 1
    assert max(range(len(mags)), key=mags.__getitem__) == TONE_FINE_BIN  # the engine's side
    assert tone_db(bars) == pytest.approx(TONE_LEVEL_DB, abs=0.05)

    x0, x1 = peak_span(plot, TONE_HZ)
    cols = bars.tallest_columns()
    assert cols, "no bar drawn"
    assert min(cols) >= x0
    assert max(cols) < x1, (cols, (x0, x1))
    assert abs(plot.x(TONE_HZ) - x0) <= 1
    assert bars.tallest == pytest.approx(plot.bar_height(tone_db(bars)), abs=1)
    # the test hook agrees with the documented formula
    assert page.evaluate(f"phase4.xForFrequency({TONE_HZ})") == pytest.approx(plot.x(TONE_HZ))
    # nothing tall far from the tone
    far = [h for i, h in enumerate(bars.heights) if abs(bars.left + i - plot.x(TONE_HZ)) > 80]
    assert max(far) < bars.tallest / 2

    page.wait_for_function("document.getElementById('fpsDisplay').textContent !== '--'")
    assert int(page.text_content("#frameCountDisplay")) > 0
    wait_text(page, "formatDisplay", "44100 Hz · FFT 4096 · Δf 10.8 Hz")
    wait_text(page, "sourceDisplay", "FFT bins")
    docs.shot(page, "page.png")
    docs.shot(page, "bars.png", "#barsView")


def test_radial_draws_the_tone_at_the_predicted_angle(page, tone_engine, docs):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    plot = plot_of(page, "radialCanvas")
    level = tone_db(read_bars(page))
    cx, cy = plot.extra["cx"], plot.extra["cy"]
    r = plot.radius(level - 3)  # inside the wedge, just below its outer edge

    def at(a: float) -> tuple[int, int, int]:
        return pixel(page, "radialCanvas", cx + r * math.cos(a), cy + r * math.sin(a))

    # the tone's bin is narrower than a wedge: it shows in the wedge its middle lies in
    wedge = plot.wedge_angle(TONE_HZ)
    assert abs(wedge - plot.angle(TONE_HZ)) * plot.extra["rmax"] <= 1.5
    assert is_bar_colour(at(wedge)), at(wedge)
    for elsewhere in (100.0, 500.0, 10000.0):
        assert not is_bar_colour(at(plot.angle(elsewhere))), elsewhere
    angle = page.evaluate(f"phase4.views.radial.angleForFrequency({TONE_HZ})")
    assert angle == pytest.approx(plot.angle(TONE_HZ))
    docs.shot(page, "radial.png", "#radialView")


def test_log_toggle_moves_the_peak_to_the_predicted_x(page, tone_engine):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    log_x = plot_of(page, "barsCanvas").x(TONE_HZ)

    page.click("#logFreqScale")  # -> linear
    settle(page)
    plot = plot_of(page, "barsCanvas")
    assert plot.scale == "lin"
    x0, x1 = peak_span(plot, TONE_HZ)
    cols = read_bars(page).tallest_columns()
    assert x0 <= min(cols) and max(cols) < x1, (cols, (x0, x1))
    assert abs(plot.x(TONE_HZ) - log_x) > 200  # the peak really moved
    assert "scale=lin" in page.url

    page.keyboard.press("l")  # back to log
    settle(page)
    plot = plot_of(page, "barsCanvas")
    x0, x1 = peak_span(plot, TONE_HZ)
    cols = read_bars(page).tallest_columns()
    assert plot.scale == "log"
    assert x0 <= min(cols) and max(cols) < x1
    assert "scale" not in page.url


def test_third_octave_bands_put_the_tone_in_its_iec_band(page, tone_engine, docs):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    raw_level = tone_db(read_bars(page))
    page.select_option("#bandMode", "3")
    page.wait_for_function("phase4.stats.url.endsWith('&bands=octave:3')")
    page.wait_for_function("phase4.drawnFrame.layout === 'octave:3'")
    settle(page)
    plot = plot_of(page, "barsCanvas")
    bars = read_bars(page)
    lo, fc, hi = third_octave_band(TONE_HZ)
    assert fc == pytest.approx(2511.886, rel=1e-4)
    cols = bars.tallest_columns()
    x0, x1 = plot.columns(lo, hi)
    assert x0 <= min(cols) and max(cols) < x1, (cols, (x0, x1))
    assert max(cols) - min(cols) > (x1 - x0) * 0.8  # one wide band, not a bin
    # the server's band power: the tone's amplitude (0.5), shown on the bins' scale (the Hann
    # coherent gain), so the band reads what the peak bin read before
    values = bars.frame["magnitudes"]
    centres = page.evaluate("phase4.layouts['octave:3'].centres")
    band = centres.index(min(centres, key=lambda c: abs(c - fc)))
    assert centres[band] == pytest.approx(fc, rel=1e-9)
    assert values[band] == pytest.approx(0.5, rel=0.01)
    level = db(values[band] * HANN_COHERENT_GAIN)
    assert level == pytest.approx(raw_level, abs=0.1)
    assert bars.tallest == pytest.approx(plot.bar_height(level), abs=1)
    assert "bands=3" in page.url
    wait_text(page, "sourceDisplay", "1/3 octave from the server")
    docs.shot(page, "bars-third-octave.png", "#barsView")


def test_a_weighting_shifts_the_bar_by_the_a_curve(page, tone_engine):
    open_page(page, tone_engine, "smooth=0&min=-30&max=0")
    wait_connected(page)
    plot = plot_of(page, "barsCanvas")
    bars = read_bars(page)
    column = peak_span(plot, TONE_HZ)[0]
    flat = bars.height_at(column)
    assert flat == pytest.approx(plot.bar_height(tone_db(bars)), abs=1)

    page.click("#aWeighting")
    settle(page)
    bars = read_bars(page)
    weighted = bars.height_at(column)
    shift = a_weighting_db(TONE_HZ)
    assert shift == pytest.approx(1.2, abs=0.2)
    assert weighted == pytest.approx(plot.bar_height(tone_db(bars) + shift), abs=1)
    assert weighted - flat >= 8  # ~1.2 dB at ~9 px/dB
    assert "weight=a" in page.url


def test_reference_magnitude_and_max_db_rescale_the_bars(page, tone_engine):
    open_page(page, tone_engine, "smooth=0&peak=0")  # no peak mark over a full-height bar
    wait_connected(page)
    set_input(page, "refMag", 0.5)
    settle(page)
    plot = plot_of(page, "barsCanvas")
    bars = read_bars(page)
    column = peak_span(plot, TONE_HZ)[0]
    assert bars.height_at(column) == pytest.approx(plot.bar_height(tone_db(bars, 0.5)), abs=1)

    before = bars.height_at(column)
    set_input(page, "maxDb", -40)  # the tone (~ -6 dB re 0.5) now overflows: full height
    settle(page)
    plot = plot_of(page, "barsCanvas")
    assert plot.max_db == -40
    after = read_bars(page).height_at(peak_span(plot, TONE_HZ)[0])
    assert after == round(plot.height) and after > before


def test_raising_min_db_lowers_a_quiet_tone(page, engines):
    quiet = engines(f"tone:{TONE_HZ}:0.01")  # ~ -46 dB at its bin
    try:
        open_page(page, quiet, "smooth=0")
        wait_connected(page)
        plot = plot_of(page, "barsCanvas")
        bars = read_bars(page)
        level = tone_db(bars)
        assert level == pytest.approx(db(0.01 * HANN_COHERENT_GAIN), abs=0.1)  # -46 dB
        low_floor = bars.height_at(peak_span(plot, TONE_HZ)[0])
        assert low_floor == pytest.approx(plot.bar_height(level), abs=1)

        set_input(page, "minDb", -60)
        settle(page)
        plot = plot_of(page, "barsCanvas")
        assert plot.min_db == -60
        high_floor = read_bars(page).height_at(peak_span(plot, TONE_HZ)[0])
        assert high_floor == pytest.approx(plot.bar_height(level), abs=1)
        assert high_floor < low_floor - 40
        assert page.text_content("#minDbValue") == "-60"
    finally:
        quiet.stop()


SPECTROGRAM_COLUMN_JS = """
([x]) => {
  const c = document.getElementById('spectrogramCanvas');
  const d = c.dataset;
  const top = +d.plotTop, h = +d.plotHeight;
  const px = c.getContext('2d').getImageData(Math.round(x), top, 1, h).data;
  const rows = [];
  for (let r = 0; r < h; r++) rows.push([px[4 * r], px[4 * r + 1], px[4 * r + 2]]);
  return rows;
}
"""


def test_spectrogram_shows_the_tone_as_a_line_at_its_row(page, tone_engine):
    open_page(page, tone_engine, "smooth=0&cmap=gray")
    wait_connected(page)
    page.wait_for_function("phase4.views.spectrogram.columns > 40")
    plot = plot_of(page, "spectrogramCanvas")
    level = tone_db(read_bars(page))
    newest = plot.left + plot.width - 1
    rows = page.evaluate(SPECTROGRAM_COLUMN_JS, [newest])
    brightness = [sum(rgb) for rgb in rows]
    top = max(brightness)
    bright = [r for r, b in enumerate(brightness) if b == top]
    # the rows the tone's bin covers: y(f + df/2) .. y(f - df/2), measured from the plot top
    y_hi = plot.y_for_frequency(TONE_HZ + FINE_BIN_HZ / 2) - plot.top
    y_lo = plot.y_for_frequency(TONE_HZ - FINE_BIN_HZ / 2) - plot.top
    assert math.floor(y_hi) <= min(bright) and max(bright) <= math.ceil(y_lo), (bright, y_hi, y_lo)
    row = int(plot.y_for_frequency(TONE_HZ) - plot.top)
    assert row in bright
    # grey map: the level maps to grey value round(255 * t)
    expect = round(255 * plot.db_norm(level))
    assert rows[row] == [expect] * 3 or abs(rows[row][0] - expect) <= 2
    # the same row is lit far back in time too: a horizontal line
    older = page.evaluate(SPECTROGRAM_COLUMN_JS, [newest - 30])
    assert sum(older[row]) >= top - 6
    assert page.evaluate(f"phase4.views.spectrogram.yForFrequency({TONE_HZ})") == pytest.approx(
        plot.y_for_frequency(TONE_HZ)
    )


def test_spectrogram_scrolls_one_column_per_drawn_frame(page, tone_engine, docs):
    open_page(page, tone_engine)
    wait_connected(page)
    plot = plot_of(page, "spectrogramCanvas")
    y = plot.y_for_frequency(TONE_HZ)
    probe = """([y]) => {
      const c = document.getElementById('spectrogramCanvas'); const d = c.dataset;
      const left = +d.plotLeft, w = +d.plotWidth;
      const px = c.getContext('2d').getImageData(left, Math.round(y), w, 1).data;
      let first = -1;
      for (let i = 0; i < w; i++) {
        if (px[4*i] + px[4*i+1] + px[4*i+2] > 200) { first = left + i; break; }
      }
      return {first, columns: phase4.views.spectrogram.columns};
    }"""
    a = page.evaluate(probe, [y])
    page.wait_for_timeout(600)
    b = page.evaluate(probe, [y])
    assert b["columns"] > a["columns"] + 5
    assert b["first"] < a["first"]
    right = plot.left + plot.width
    for s in (a, b):
        # the tone has been there since the first column: history starts columns px from the right
        assert s["first"] == pytest.approx(right - min(s["columns"], plot.width), abs=2)
    docs.shot(page, "spectrogram.png", "#spectrogramView")


def test_grid_peak_hold_and_note_labels_change_what_is_drawn(page, tone_engine):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    plot = plot_of(page, "barsCanvas")
    level = tone_db(read_bars(page))

    # dB grid: a grid line at -30 dB where no bar is (near 100 Hz, between frequency lines)
    gx, gy = plot.x(130), round(plot.top + plot.height * (1 - plot.db_norm(-30)))
    with_grid = pixel(page, "barsCanvas", gx, gy)
    page.click("#dbGrid")
    settle(page)
    without = pixel(page, "barsCanvas", gx, gy)
    assert sum(with_grid) > sum(without) + 20, (with_grid, without)
    assert "grid=0" in page.url

    # peak hold: a cyan mark sits just above the bar top; gone when switched off
    py = round(plot.top + plot.height * (1 - plot.db_norm(level))) - 1
    column = peak_span(plot, TONE_HZ)[0]
    mark = pixel(page, "barsCanvas", column, py)
    assert mark[2] > 200 and not is_bar_colour(mark), mark
    page.keyboard.press("h")
    settle(page)
    assert pixel(page, "barsCanvas", column, py)[2] < 100
    assert "peak=0" in page.url

    # note names: the frequency labels become C-notes and the label strip is redrawn
    strip = (int(plot.left), int(plot.top + plot.height + 2), int(plot.width), 16)
    hz_labels = canvas_digest(page, "barsCanvas", strip)
    assert "1k" in [t["label"] for t in page.evaluate("phase4.views.bars.ticks")]
    page.click("#noteLabels")
    settle(page)
    labels = [t["label"] for t in page.evaluate("phase4.views.bars.ticks")]
    assert labels and all(re.fullmatch(r"[A-G]#?\d+", s) for s in labels), labels
    assert "C4" in labels or "C5" in labels
    c4 = next(t for t in page.evaluate("phase4.views.bars.ticks") if t["label"] in ("C4", "C5"))
    hz = 261.6256 if c4["label"] == "C4" else 523.2511
    assert c4["x"] == pytest.approx(plot.x(hz), abs=0.5)
    assert canvas_digest(page, "barsCanvas", strip) != hz_labels


def test_colour_map_and_view_toggles(page, tone_engine):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    sg = plot_of(page, "spectrogramCanvas")
    newest = sg.left + sg.width - 1
    row = int(sg.y_for_frequency(TONE_HZ) - sg.top)
    inferno = page.evaluate(SPECTROGRAM_COLUMN_JS, [newest])[row]
    page.select_option("#colormap", "viridis")
    settle(page)
    level = tone_db(read_bars(page))
    viridis = page.evaluate(SPECTROGRAM_COLUMN_JS, [newest])[row]
    expect = page.evaluate(f"phase4.colorAt('viridis', {sg.db_norm(level)})")
    assert viridis != inferno
    assert all(abs(a - b) <= 3 for a, b in zip(viridis, expect, strict=True)), (viridis, expect)

    # hiding the radial view: it disappears, the bars take the full width, the peak follows
    narrow = plot_of(page, "barsCanvas")
    page.click("#showRadial")
    page.wait_for_selector("#radialCanvas", state="hidden")
    settle(page)
    wide = plot_of(page, "barsCanvas")
    assert wide.width > narrow.width * 1.8
    x0, x1 = peak_span(wide, TONE_HZ)
    cols = read_bars(page).tallest_columns()
    assert x0 <= min(cols) and max(cols) < x1
    assert "views=bars%2Cspectrogram" in page.url or "views=bars,spectrogram" in page.url
    page.keyboard.press("3")  # spectrogram off
    page.wait_for_selector("#spectrogramCanvas", state="hidden")
    page.keyboard.press("2")  # radial back
    page.wait_for_selector("#radialCanvas", state="visible")
    settle(page)
    assert is_bar_colour(
        pixel(
            page,
            "radialCanvas",
            *(
                lambda p: (
                    p.extra["cx"] + p.radius(level - 3) * math.cos(p.wedge_angle(TONE_HZ)),
                    p.extra["cy"] + p.radius(level - 3) * math.sin(p.wedge_angle(TONE_HZ)),
                )
            )(plot_of(page, "radialCanvas")),
        )
    )


def test_frequency_range_fields(page, tone_engine):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    set_input(page, "fminInput", 1000)
    set_input(page, "fmaxInput", 5000)
    settle(page)
    plot = plot_of(page, "barsCanvas")
    assert (plot.fmin, plot.fmax) == (1000, 5000)
    x0, x1 = peak_span(plot, TONE_HZ)
    cols = read_bars(page).tallest_columns()
    assert x0 <= min(cols) and max(cols) < x1
    assert "fmin=1000" in page.url and "fmax=5000" in page.url


def test_pause_freezes_the_display_and_help_overlay(page, tone_engine, docs):
    open_page(page, tone_engine)
    wait_connected(page)
    page.keyboard.press(" ")
    page.wait_for_selector("#pausedBadge", state="visible")
    frozen = page.evaluate("phase4.drawnFrame.frameCount")
    messages = page.evaluate("phase4.stats.messages")
    digest = canvas_digest(page, "barsCanvas")
    page.wait_for_timeout(400)
    assert page.evaluate("phase4.drawnFrame.frameCount") == frozen
    assert page.evaluate("phase4.stats.messages") > messages  # still receiving
    assert canvas_digest(page, "barsCanvas") == digest
    assert page.get_attribute("#pauseBtn", "aria-pressed") == "true"
    page.click("#pauseBtn")
    page.wait_for_function(f"phase4.drawnFrame.frameCount !== {frozen}")

    assert page.is_hidden("#helpOverlay")
    page.keyboard.press("?")
    page.wait_for_selector("#helpOverlay", state="visible")
    text = page.text_content("#shortcutTable")
    for key in ("Space", "F", "L", "B", "A", "N", "H", "G", "M"):
        assert key in text
    docs.shot(page, "help.png")
    page.keyboard.press("Escape")
    page.wait_for_selector("#helpOverlay", state="hidden")


def test_fullscreen_keeps_the_mapping(page, tone_engine):
    open_page(page, tone_engine, "smooth=0")
    wait_connected(page)
    page.click("#fullscreenBtn")
    page.wait_for_function(
        "document.fullscreenElement && document.fullscreenElement.id === 'views'"
    )
    settle(page)
    plot = plot_of(page, "barsCanvas")
    x0, x1 = peak_span(plot, TONE_HZ)
    cols = read_bars(page).tallest_columns()
    assert x0 <= min(cols) and max(cols) < x1
    page.keyboard.press("f")
    page.wait_for_function("!document.fullscreenElement")
