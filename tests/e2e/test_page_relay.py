"""The page served by a relay at /ID/: it finds its stream beside itself, says it is waiting
while the engine has not published, and draws once it does (real relay, engine and cluster).
A relay's spectra carry no samples, so it answers the page's analysis options with the plain
block spectrum: the page draws those bins, sums its own bands from them, and says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from pagekit import (
    REPO,
    free_port,
    healthz,
    plot_of,
    read_bars,
    third_octave_band,
    wait_connected,
    wait_text,
)

from nats_helpers import Cluster

pytestmark = pytest.mark.e2e


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "phase4_trio", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def test_a_relay_page_waits_for_its_engine_then_draws(page, nats_cluster: Cluster) -> None:
    name = f"e2e{os.getpid()}"
    port = free_port()
    servers = ("--nats", nats_cluster.urls[1])
    relay = _start(
        ["relay", *servers, "--engine", "other", "--engine", name, "--ws", f"127.0.0.1:{port}"]
    )
    engine = None
    try:
        deadline = time.monotonic() + 30
        while healthz(port) is None:
            assert time.monotonic() < deadline, "the relay never answered"
            time.sleep(0.1)
        page.goto(f"http://127.0.0.1:{port}/{name}/")
        page.wait_for_function("window.phase4 !== undefined")
        assert page.input_value("#wsUrl") == f"ws://127.0.0.1:{port}/{name}/ws"
        page.wait_for_function(
            "document.getElementById('connectionStatus').dataset.state === 'connected'",
            timeout=15_000,
        )
        page.wait_for_timeout(500)
        assert page.evaluate("window.phase4.stats.messages") == 0
        assert page.evaluate("window.phase4.model.message") == "Waiting for data…"
        publish = ("--publish", nats_cluster.urls[0])
        engine = _start(
            ["run", "--source", "tone:1000", "--ws", "127.0.0.1:0", *publish],
            {"PHASE4_OUTPUT__NATS__ENGINE_ID": name},
        )
        wait_connected(page, timeout=30)
        assert page.evaluate("window.phase4.stats.messages") > 0
        stream = f"ws://127.0.0.1:{port}/{name}/ws?format=f32&fps=60&resolution=fine"
        assert page.evaluate("window.phase4.stats.url") == stream
        # binary, the plain form: the engine's 256-point block spectrum, no view
        assert page.evaluate("window.phase4.drawnFrame.analysed") is False
        assert page.evaluate("window.phase4.stats.binary") > 0
        wait_text(page, "formatDisplay", "44100 Hz · FFT 256 · Δf 172 Hz")
        wait_text(page, "sourceDisplay", "FFT bins · server sends no analysis")
        assert page.get_attribute("#sourceDisplay", "data-plain") == "true"

        # 1/3 octave: the relay still sends bins; the page sums the band holding 1 kHz itself
        page.select_option("#bandMode", "3")
        page.wait_for_function("window.phase4.stats.url.endsWith('&bands=octave:3')")
        wait_text(page, "sourceDisplay", "1/3 octave in the page · server sends no analysis")
        assert page.evaluate("window.phase4.stats.layouts") == 0  # no layout message
        lo, _fc, hi = third_octave_band(1000.0)
        plot = plot_of(page, "barsCanvas")
        cols = read_bars(page).tallest_columns()
        x0, x1 = plot.columns(lo, hi)
        assert x0 <= min(cols) and max(cols) < x1, (cols, (x0, x1))
    finally:
        if engine is not None:
            _stop(engine)
        _stop(relay)
