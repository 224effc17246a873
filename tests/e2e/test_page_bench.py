"""What the page costs with every view on, fed by a real engine: draw time per animation frame,
bytes per second on the socket, and the engine's CPU while the page is its only client, for the
page's own streams (fine bins, server bands) and the alternatives it does not use (bands summed
in the page from fine bins, the block spectrum as JSON).

Measured, not asserted (beyond "it drew"): with ``--write-docs`` (``nox -s docs``) the figures
go into docs/page.md between the ``bench:start`` / ``bench:end`` markers, with the machine's
load at the time; otherwise into a temporary copy, and printed.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from pagekit import Docs, Engine, open_page, settle, wait_connected

pytestmark = pytest.mark.e2e

SECONDS = 4.0

# extra: a second stream (URL) to hold open beside the page's for the measurement, its bytes
# counted and its frames otherwise dropped: what a page on two connections would cost.
MEASURE_JS = """async ([ms, extra]) => {
  const started = performance.now();
  let extraBytes = 0;
  let second = null;
  if (extra) {
    second = new WebSocket(extra);
    second.binaryType = "arraybuffer";
    second.onmessage = (e) => { extraBytes += e.data.byteLength ?? e.data.length; };
    await new Promise((open) => { second.onopen = open; });
    await new Promise((wait) => setTimeout(wait, 500));
    extraBytes = 0;
  }
  phase4.resetDrawTimes();
  const s0 = {...phase4.stats};
  const intervals = [];
  let last = null;
  await new Promise((done) => {
    const t0 = performance.now();
    const tick = (t) => {
      if (last !== null) intervals.push(t - last);
      last = t;
      if (t - t0 < ms) requestAnimationFrame(tick); else done();
    };
    requestAnimationFrame(tick);
  });
  const s1 = phase4.stats;
  const secs = ms / 1000;
  if (second) second.close();
  intervals.sort((a, b) => a - b);
  const q = (p) => intervals[Math.min(intervals.length - 1, Math.floor(p * intervals.length))];
  return {
    draw: phase4.drawStats(),
    seconds: (performance.now() - started) / 1000,
    msgsPerS: (s1.messages - s0.messages) / secs,
    drawsPerS: (s1.draws - s0.draws) / secs,
    framesDrawnPerS: (s1.drawn - s0.drawn) / secs,
    skippedPerS: (s1.skipped - s0.skipped) / secs,
    serverDropped: (s1.serverDropped ?? 0) - (s0.serverDropped ?? 0),
    kBPerS: (s1.bytes - s0.bytes + extraBytes) / secs / 1000,
    url: extra ? `${s1.url} + ${extra}` : s1.url,
    rafP50: q(0.5), rafP95: q(0.95), rafMax: intervals[intervals.length - 1],
    longFrames: intervals.filter((x) => x > 50).length,
    elements: phase4.display.values.length,
  };
}"""


def server(query: str) -> str:
    """A page query naming the engine's stream with options of its own (``{ws}`` for it)."""
    return f"server={{ws}}{quote(query, safe='')}"


@dataclass(frozen=True)
class Config:
    name: str
    query: str  # the page's; {ws} is the engine's stream address
    extra: str | None = None  # a second stream held open beside the page's ({ws} too)
    image: str | None = None
    selector: str | None = None


# fps=0: every frame the engine analyses (~172/s)
CONFIGS = [
    Config("fine bins (the page's default)", ""),
    Config("1/3-octave bands from the server (bands=3)", "bands=3"),
    Config(
        "two streams: the page's fine bins and a second socket of 1/3-octave bands",
        "",
        extra="{ws}?format=f32&fps=60&bands=octave:3",
    ),
    Config(
        "1/3-octave bands summed in the page from fine bins",
        server("?resolution=fine") + "&bands=3",
    ),
    Config("block bins (256) as JSON text", server("?format=json&resolution=block")),
    Config("fine bins, every frame", "fps=0", image="noise-all-views.png"),
    Config(
        "1/24-octave bands from the server, A-weighting, note labels, every frame",
        "fps=0&bands=24&weight=a&labels=note",
        image="noise-24th-octave.png",
        selector="#views",
    ),
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(name: str, r: dict, cpu: float) -> str:
    d = r["draw"]
    stream = " + ".join(url.split("/ws", 1)[1] for url in r["url"].split(" + "))
    return (
        f"| {name} | `{stream}` | {r['elements']} | {r['msgsPerS']:.0f} | {r['kBPerS']:.0f} | "
        f"{r['drawsPerS']:.0f} | {d['p50']:.2f} | {d['p95']:.2f} | {d['p99']:.2f} | "
        f"{d['max']:.1f} | {r['rafP50']:.1f} / {r['rafP95']:.1f} | {r['longFrames']} | "
        f"{r['serverDropped']} | {cpu:.1f} % |"
    )


def test_draw_time_bytes_and_engine_cpu(page, engines, docs):
    engine: Engine = engines("noise")
    assert engine.proc is not None
    rows = []
    try:
        for config in CONFIGS:
            open_page(page, engine, config.query.replace("{ws}", quote(engine.ws, safe="")))
            wait_connected(page)
            settle(page, 30)  # warm up: JIT, layout, spectrogram ring
            extra = config.extra.replace("{ws}", engine.ws) if config.extra else None
            cpu = cpu_seconds(engine.proc.pid)
            result = page.evaluate(MEASURE_JS, [SECONDS * 1000, extra])
            cpu = 100 * (cpu_seconds(engine.proc.pid) - cpu) / result["seconds"]
            assert result["draw"]["n"] > 10, result
            rows.append(row(config.name, result, cpu))
            print(rows[-1])
            if config.image:
                docs.shot(page, config.image, config.selector)
        page.goto("about:blank")  # no client: the engine rests
        page.wait_for_timeout(1000)
        before = cpu_seconds(engine.proc.pid)
        page.wait_for_timeout(SECONDS * 1000)
        idle = 100 * (cpu_seconds(engine.proc.pid) - before) / SECONDS
    finally:
        engine.stop()
    write_bench(docs, rows, idle)


def write_bench(docs: Docs, rows: list[str], idle: float) -> None:
    load = os.getloadavg()
    ua_note = (
        "headless Chromium (/usr/bin/chromium, --disable-gpu: software canvas), viewport 1280x1000"
    )
    text = "\n".join(
        [
            "<!-- bench:start (written by nox -s docs; do not edit by hand) -->",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
            f"{ua_note}; engine `--source noise` at 44.1 kHz / 256 (~172 spectra/s), "
            f"`dsp.fft_size` 4096; {SECONDS:.0f} s per row. Engine CPU is the engine process's "
            f"user + system time over the row, in % of one core; with no client it rests at "
            f"{idle:.1f} %.",
            "",
            "| configuration | stream | elements | msgs/s | kB/s | draws/s | draw p50 ms | p95 |"
            " p99 | max | rAF interval p50 / p95 ms | frames > 50 ms | server drops |"
            " engine CPU |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            " ---: | ---: |",
            *rows,
            "<!-- bench:end -->",
        ]
    )
    pattern = re.compile(r"<!-- bench:start.*?<!-- bench:end -->", re.S)
    docs.replace_section("page.md", pattern, text, "## Draw time (measured)")
