"""Connections: another engine through the URL field, reconnecting after an engine restart, and
the tempo readout of a click track played by the engine from a WAV file."""

from __future__ import annotations

import re
import time

import pytest
from pagekit import (
    FINE_BIN_HZ,
    TONE_HZ,
    Engine,
    bin_hz,
    free_port,
    open_page,
    plot_of,
    read_bars,
    wait_connected,
    write_click_track,
)

pytestmark = pytest.mark.e2e


def peak_in_bin_span(page, hz: float) -> bool:
    plot = plot_of(page, "barsCanvas")
    cols = read_bars(page).tallest_columns()
    x0, x1 = plot.columns(hz - FINE_BIN_HZ / 2, hz + FINE_BIN_HZ / 2)
    return x0 <= min(cols) and max(cols) < x1


def wait_peak_at(page, hz: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not peak_in_bin_span(page, hz):
        assert time.monotonic() < deadline, f"peak never reached {hz} Hz"
        page.wait_for_timeout(100)


def test_connects_to_a_second_engine_through_the_url_field(page, engines, tone_engine):
    other_hz = bin_hz(4)  # 689.0625 Hz
    other = engines(f"tone:{other_hz}:0.5")
    try:
        open_page(page, tone_engine, "smooth=0")
        wait_connected(page)
        wait_peak_at(page, TONE_HZ)
        assert page.input_value("#wsUrl") == tone_engine.ws

        page.fill("#wsUrl", other.ws)
        page.click("#connectBtn")
        page.wait_for_function(
            f"phase4.stats.url === '{other.ws}?format=f32&fps=60&resolution=fine'"
            " && phase4.stats.state === 'connected'"
        )
        wait_peak_at(page, other_hz)
        assert page.get_attribute("#connectionStatus", "data-state") == "connected"
        assert f"server={other.ws}" in page.url.replace("%3A", ":").replace("%2F", "/")
        # Disconnect stops it for good: no reconnect while the user said no
        page.click("#disconnectBtn")
        page.wait_for_function("phase4.stats.state === 'disconnected'")
        messages = page.evaluate("phase4.stats.messages")
        page.wait_for_timeout(700)
        assert page.evaluate("phase4.stats.messages") == messages
        assert page.evaluate("phase4.stats.state") == "disconnected"
    finally:
        other.stop()


def test_reconnects_by_itself_after_the_engine_restarts(page):
    port = free_port()
    first = Engine(f"tone:{TONE_HZ}:0.5", port).start()
    second = Engine(f"tone:{bin_hz(32)}:0.5", port)  # 5512.5 Hz: new data is recognisable
    try:
        open_page(page, first, "smooth=0")
        wait_connected(page)
        wait_peak_at(page, TONE_HZ)
        first.kill()  # abrupt, like a crash
        page.wait_for_function("phase4.stats.state === 'reconnecting'", timeout=5000)
        assert page.get_attribute("#connectionStatus", "data-state") == "reconnecting"
        page.wait_for_timeout(1500)  # a few failed attempts: backoff grows
        assert page.evaluate("phase4.stats.state") == "reconnecting"
        detail = page.evaluate(
            "phase4.stats.detail"
        )  # "closed (1006); retry in 1.0 s" or "attempt 4"
        match = re.fullmatch(r"closed \(\d+\); retry in (\d+\.\d) s|attempt (\d+)", detail)
        assert match, detail
        assert float(match[1]) >= 0.5 if match[1] else int(match[2]) >= 3, detail

        second.start()
        ready = time.monotonic()
        # backoff is capped at 5 s, so the page must be back within ~5 s of the engine
        page.wait_for_function(
            "phase4.stats.state === 'connected' && phase4.stats.opens === 2", timeout=9000
        )
        took = time.monotonic() - ready
        assert took < 7.0, took
        wait_peak_at(page, bin_hz(32))
        shown = page.text_content("#frameCountDisplay")
        assert shown.isdigit() and int(shown) > 0, shown  # the new engine's frames, not "--"
    finally:
        first.stop()
        second.stop()


def test_shows_the_bpm_of_a_click_track(page, engines, tmp_path, docs):
    wav = write_click_track(tmp_path / "clicks-120.wav", bpm=120.0, seconds=10.0)
    engine = engines(f"wav:{wav}")
    try:
        open_page(page, engine)
        wait_connected(page)
        # the engine needs a few seconds of onsets; the readout must settle near 120
        page.wait_for_function(
            "Math.abs(parseFloat(document.getElementById('bpmDisplay').textContent) - 120) <= 3",
            timeout=15000,
        )
        page.wait_for_timeout(1000)
        bpm = float(page.text_content("#bpmDisplay"))
        assert bpm == pytest.approx(120, abs=3)
        assert page.text_content("#bpmConfidenceDisplay").endswith("%")
        # the beat light: on within a beat, and about two beats a second counted
        page.wait_for_function(
            "document.getElementById('beatLight').classList.contains('on')", timeout=2000
        )
        before = page.evaluate("phase4.stats.beats")
        page.wait_for_timeout(4000)
        assert 7 <= page.evaluate("phase4.stats.beats") - before <= 9
        page.wait_for_function("phase4.stats.flux > 0.01", timeout=10000)  # a click's onset
        docs.shot(page, "click-track.png")
    finally:
        engine.stop()
