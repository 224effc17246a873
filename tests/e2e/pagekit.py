"""Helpers for the browser tests: engine subprocesses, Chromium, and reading the page's canvases.

The expected pixel positions are computed here from the documented mapping (docs/page.md,
"Coordinates for tests"), not taken from the page, so a wrong mapping in the page fails.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
SAMPLE_RATE = 44100
FFT_SIZE = 256  # the block: the plain stream's spectrum (a relay's, the JSON the tests feed)
BIN_HZ = SAMPLE_RATE / FFT_SIZE  # 172.265625
FINE_FFT_SIZE = 4096  # dsp.fft_size's default: the spectrum the page asks the engine for
FINE_BIN_HZ = SAMPLE_RATE / FINE_FFT_SIZE  # 10.7666015625
NYQUIST = SAMPLE_RATE / 2
#: A full-scale sine centred on a bin reads 0.5 there through the Hann window.
HANN_COHERENT_GAIN = 0.5


def bin_hz(k: int) -> float:
    """Centre of block bin k at the engine's defaults: a tone there is exactly bin-centred, in
    the block spectrum and in the fine one (bin 16 k)."""
    return k * BIN_HZ


TONE_BIN = 16
TONE_HZ = bin_hz(TONE_BIN)  # 2756.25 Hz
TONE_FINE_BIN = TONE_BIN * FINE_FFT_SIZE // FFT_SIZE  # 256


# ------------------------------------------------------------------------------ engines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_command() -> list[str]:
    """``python -m phase4_trio`` unless E2E_ENGINE names another command prefix (not a
    ``PHASE4_`` name: the engine would read that as a config key)."""
    override = os.environ.get("E2E_ENGINE")
    return shlex.split(override) if override else [sys.executable, "-m", "phase4_trio"]


@dataclass
class Engine:
    source: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 20.0) -> Engine:
        cmd = [*engine_command(), "run", "--source", self.source, "--ws", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"engine exited {self.proc.returncode}: {' '.join(cmd)}\n{out}")
            if healthz(self.port) == 200:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"engine not healthy within {timeout}s: {' '.join(cmd)}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()

    def kill(self) -> None:
        """Die abruptly, as a crashed engine would."""
        self.stop(signal.SIGKILL)


def healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


def write_click_track(path: Path, bpm: float = 120.0, seconds: float = 10.0) -> Path:
    """16-bit mono WAV: a 10 ms decaying 2 kHz click on every beat, silence between."""
    n = int(seconds * SAMPLE_RATE)
    period = 60.0 / bpm
    click = int(0.010 * SAMPLE_RATE)
    samples = bytearray(2 * n)
    beat = 0
    while (start := round(beat * period * SAMPLE_RATE)) < n:
        for i in range(min(click, n - start)):
            v = (
                0.8
                * math.exp(-i / (0.002 * SAMPLE_RATE))
                * math.sin(2 * math.pi * 2000 * i / SAMPLE_RATE)
            )
            samples[2 * (start + i) : 2 * (start + i) + 2] = int(v * 32767).to_bytes(
                2, "little", signed=True
            )
        beat += 1
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(bytes(samples))
    return path


# ------------------------------------------------------------------------------ mapping


@dataclass
class Plot:
    """A view's plot rectangle and axes, read from the canvas's data- attributes."""

    left: float
    top: float
    width: float
    height: float
    scale: str
    fmin: float
    fmax: float
    min_db: float
    max_db: float
    extra: dict[str, float]

    def norm(self, hz: float) -> float:
        if self.scale == "log":
            return math.log(hz / self.fmin) / math.log(self.fmax / self.fmin)
        return (hz - self.fmin) / (self.fmax - self.fmin)

    def x(self, hz: float) -> float:
        """Bars: x = left + width * norm(hz)."""
        return self.left + self.width * self.norm(hz)

    def y_for_frequency(self, hz: float) -> float:
        """Spectrogram: y = top + height * (1 - norm(hz))."""
        return self.top + self.height * (1 - self.norm(hz))

    def db_norm(self, db: float) -> float:
        return min(1.0, max(0.0, (db - self.min_db) / (self.max_db - self.min_db)))

    def columns(self, lo: float, hi: float) -> tuple[int, int]:
        """Bars: the columns [x0, x1) an element spanning lo..hi Hz is drawn in:
        [round(x(lo)), round(x(hi))), at least one, one less when 3 px or wider."""
        x0 = round(self.x(lo))
        x1 = round(self.x(hi))
        if x1 - x0 >= 3:
            x1 -= 1
        return x0, max(x1, x0 + 1)

    def bar_height(self, db: float) -> int:
        """Bars: a level's bar runs from round(top + height * (1 - t)) to the plot bottom."""
        y = round(self.top + self.height * (1 - self.db_norm(db)))
        return int(self.top + self.height - y)

    def angle(self, hz: float) -> float:
        """Radial: -pi/2 (top) at fmin, clockwise, a full turn to fmax."""
        return -math.pi / 2 + 2 * math.pi * self.norm(hz)

    def wedge_angle(self, hz: float) -> float:
        """Radial: the angle of the middle of the wedge showing an element narrower than a
        wedge, centred on hz (such elements share wedges of 3 px of the outer circle, the one
        their middle lies in; the tests run at devicePixelRatio 1)."""
        cells = 2 * math.pi * self.extra["rmax"] / 3
        return -math.pi / 2 + 2 * math.pi * (math.floor(self.norm(hz) * cells) + 0.5) / cells

    def radius(self, db: float) -> float:
        r0, rmax = self.extra["r0"], self.extra["rmax"]
        return r0 + (rmax - r0) * self.db_norm(db)


def plot_of(page: Any, canvas_id: str) -> Plot:
    d = page.evaluate(f"({{...document.getElementById('{canvas_id}').dataset}})")
    extra = {k: float(d[k]) for k in ("cx", "cy", "r0", "rmax") if k in d}
    return Plot(
        left=float(d["plotLeft"]),
        top=float(d["plotTop"]),
        width=float(d["plotWidth"]),
        height=float(d["plotHeight"]),
        scale=d["scale"],
        fmin=float(d["fmin"]),
        fmax=float(d["fmax"]),
        min_db=float(d["minDb"]),
        max_db=float(d["maxDb"]),
        extra=extra,
    )


def db(mag: float, ref: float = 1.0) -> float:
    return 20 * math.log10(mag / ref + 1e-30)


def a_weighting_db(f: float) -> float:
    """IEC 61672-1 A-weighting, written out here independently of the page."""
    f2 = f * f
    ra = (12194**2 * f2 * f2) / (
        (f2 + 20.6**2) * math.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194**2)
    )
    return 20 * math.log10(ra) + 2.0


def third_octave_band(f: float, n: int = 3) -> tuple[float, float, float]:
    """(lo, fc, hi) of the base-10 1/n-octave band holding f (IEC 61260-1, n odd)."""
    g = 10 ** (3 / 10)
    k = round(n * math.log(f / 1000) / math.log(g))
    fc = 1000 * g ** (k / n)
    half = g ** (1 / (2 * n))
    if f >= fc * half:
        fc *= g ** (1 / n)
    elif f < fc / half:
        fc /= g ** (1 / n)
    return fc / half, fc, fc * half


# ------------------------------------------------------------------------------ pixels

# Bars and radial fill with a green -> yellow -> red gradient (blue channel always < 100);
# grid, labels, background and the cyan peak-hold marks all fail this test.
BAR_PIXEL_JS = "(r, g, b) => (r > 120 || g > 120) && b < 120"

COLUMN_HEIGHTS_JS = f"""
() => {{
  const isBar = {BAR_PIXEL_JS};
  const c = document.getElementById('barsCanvas');
  const W = c.width;
  const img = c.getContext('2d').getImageData(0, 0, W, c.height).data;
  const d = c.dataset;
  const left = +d.plotLeft, top = +d.plotTop, pw = +d.plotWidth, ph = +d.plotHeight;
  const heights = [];
  for (let x = left; x < left + pw; x++) {{
    let h = 0;
    for (let y = top; y < top + ph; y++) {{
      const i = (y * W + x) * 4;
      if (isBar(img[i], img[i + 1], img[i + 2])) {{ h = top + ph - y; break; }}
    }}
    heights.push(h);
  }}
  const f = window.phase4.drawnFrame;
  const frame = f && {{magnitudes: Array.from(f.magnitudes), frameCount: f.frameCount}};
  return {{left, heights, frame,
          values: Array.from(window.phase4.display.values)}};
}}
"""


@dataclass
class Bars:
    left: int
    heights: list[int]
    frame: dict[str, Any] | None
    values: list[float]

    @property
    def tallest(self) -> int:
        return max(self.heights)

    def tallest_columns(self) -> list[int]:
        """x of every column reaching the tallest height."""
        top = self.tallest
        return [self.left + i for i, h in enumerate(self.heights) if h == top]

    def height_at(self, x: float) -> int:
        return self.heights[round(x) - self.left]


def read_bars(page: Any) -> Bars:
    r = page.evaluate(COLUMN_HEIGHTS_JS)
    return Bars(int(r["left"]), [int(h) for h in r["heights"]], r["frame"], r["values"])


def pixel(page: Any, canvas_id: str, x: float, y: float) -> tuple[int, int, int]:
    r = page.evaluate(
        """([id, x, y]) => Array.from(document.getElementById(id).getContext('2d')
             .getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3))""",
        [canvas_id, x, y],
    )
    return int(r[0]), int(r[1]), int(r[2])


def is_bar_colour(rgb: tuple[int, int, int]) -> bool:
    r, g, b = rgb
    return (r > 120 or g > 120) and b < 120


def canvas_digest(
    page: Any, canvas_id: str, region: tuple[int, int, int, int] | None = None
) -> str:
    """A hash of a canvas's pixels (optionally a region x, y, w, h) to tell drawings apart."""
    return str(
        page.evaluate(
            """([id, region]) => {
                 const c = document.getElementById(id);
                 const [x, y, w, h] = region || [0, 0, c.width, c.height];
                 const d = c.getContext('2d').getImageData(x, y, w, h).data;
                 let a = 2166136261 >>> 0;
                 for (let i = 0; i < d.length; i++) { a ^= d[i]; a = Math.imul(a, 16777619) >>> 0; }
                 return `${c.width}x${c.height}:${a}`;
               }""",
            [canvas_id, list(region) if region else None],
        )
    )


# ------------------------------------------------------------------------------ the test hook

# The page puts nothing on `window`. Tests reach it through this hook, injected into every
# page a test opens (never shipped): once the page's module has run (it runs before
# DOMContentLoaded), import it and its pure helpers — the same module instances the page
# uses — and gather what the tests read and call under one name.
TEST_HOOK_JS = """
addEventListener("DOMContentLoaded", async () => {
  if (!document.querySelector('script[src="app.js"]')) return;
  // resolved as the page resolves its own script (a relay serves it at /ID/app.js)
  const here = (name) => new URL(name, document.baseURI).href;
  const [{ page }, dsp, colormaps] = await Promise.all([
    import(here("app.js")), import(here("dsp.js")), import(here("colormaps.js")),
  ]);
  window.phase4 = {
    state: page.state,
    stats: page.stats,
    display: page.display,
    model: page.display.model,
    views: page.views,
    get lastFrame() { return page.intake.latest; },
    get drawnFrame() { return page.intake.drawn; },
    get paused() { return page.loop.paused; },
    get drawTimes() { return page.loop.recentDrawTimes(); },
    drawStats: () => page.loop.drawStats(),
    resetDrawTimes: () => page.loop.resetDrawTimes(),
    xForFrequency: (hz) => page.views.bars.xForFrequency(hz),
    setState: page.setState,
    connect: page.connect,
    disconnect: page.disconnect,
    togglePause: page.togglePause,
    /** Feed a message exactly as if it had arrived on the socket (object or JSON text). */
    feed: (m) => (typeof m === "string" ? page.intake.text(m) : page.intake.accept(m)),
    /** Feed a binary message (an array of byte values) as if it had arrived on the socket. */
    feedBinary: (bytes) => page.intake.binary(new Uint8Array(bytes).buffer),
    get layouts() { return Object.fromEntries(page.intake.layouts); },
    nextDraw: () => page.loop.nextDraw(),
    aWeightingDb: dsp.aWeightingDb,
    octaveBands: dsp.octaveBands,
    noteName: dsp.noteName,
    colorAt: colormaps.colorAt,
    defaultServer: page.defaultServer,
  };
});
"""


def hooked_context(browser: Any, **options: Any) -> Any:
    """A new browser context whose pages get the test hook."""
    context = browser.new_context(**options)
    context.add_init_script(TEST_HOOK_JS)
    return context


# ------------------------------------------------------------------------------ page actions


def open_page(page: Any, engine: Engine, query: str = "") -> Any:
    page.goto(engine.http + (f"?{query}" if query else ""))
    page.wait_for_function("window.phase4 !== undefined")
    return page


def set_input(page: Any, element_id: str, value: float | str) -> None:
    """Set a range / number / text input as a user would (value, then input + change events)."""
    page.evaluate(
        """([id, v]) => { const el = document.getElementById(id); el.value = String(v);
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true})); }""",
        [element_id, value],
    )


def wait_frames(page: Any, count: int = 1, timeout: float = 10.0) -> None:
    """Wait until `count` more new frames have been drawn."""
    page.wait_for_function(
        f"window.phase4 && window.phase4.stats.drawn >= {drawn(page) + count}",
        timeout=timeout * 1000,
    )


def drawn(page: Any) -> int:
    return int(page.evaluate("window.phase4 ? window.phase4.stats.drawn : 0"))


def wait_connected(page: Any, timeout: float = 15.0) -> None:
    page.wait_for_function(
        "document.getElementById('connectionStatus').dataset.state === 'connected'"
        " && window.phase4.stats.drawn > 3",
        timeout=timeout * 1000,
    )


def wait_text(page: Any, element_id: str, text: str, timeout: float = 5.0) -> None:
    """Wait until an element reads ``text`` (the readouts are rewritten every 100 ms); fail
    with what it reads instead."""
    try:
        page.wait_for_function(
            "([id, text]) => document.getElementById(id).textContent === text",
            arg=[element_id, text],
            timeout=timeout * 1000,
        )
    except PlaywrightTimeout as error:
        shown = page.text_content(f"#{element_id}")
        raise AssertionError(f"#{element_id} reads {shown!r}, not {text!r}") from error


def settle(page: Any, frames: int = 3) -> None:
    """Let a state change reach the screen: a few new frames drawn after it."""
    wait_frames(page, frames)


@dataclass
class Docs:
    """Where the tests' screenshots and the draw-time table go: docs/ itself only when asked
    (``--write-docs``, what ``nox -s docs`` runs), a temporary directory otherwise, so a test
    run never rewrites tracked files but every run still takes the screenshots."""

    root: Path

    def shot(self, page: Any, name: str, selector: str | None = None) -> None:
        img = self.root / "img"
        img.mkdir(parents=True, exist_ok=True)
        target = page.locator(selector) if selector else page
        target.screenshot(path=str(img / name))

    def replace_section(self, name: str, pattern: re.Pattern[str], text: str, heading: str) -> None:
        """Put ``text`` where ``pattern`` matches in docs/NAME (or append it under ``heading``)
        and write the result to this root."""
        current = (DOCS / name).read_text(encoding="utf-8") if (DOCS / name).exists() else ""
        if pattern.search(current):
            updated = pattern.sub(lambda _m: text, current)
        else:
            updated = current.rstrip("\n") + f"\n\n{heading}\n\n{text}\n"
        (self.root / name).write_text(updated, encoding="utf-8")
