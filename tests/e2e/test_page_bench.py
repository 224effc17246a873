"""Draw time per animation frame with every view on, fed by a real engine at ~172 messages/s.

Measured, not asserted (beyond "it drew"): with ``--write-docs`` (``nox -s docs``) the figures
go into docs/page.md between the ``bench:start`` / ``bench:end`` markers, with the machine's
load at the time; otherwise into a temporary copy, and printed.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime

import pytest
from pagekit import Docs, open_page, settle, wait_connected

pytestmark = pytest.mark.e2e

SECONDS = 4.0

MEASURE_JS = """async (ms) => {
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
  intervals.sort((a, b) => a - b);
  const q = (p) => intervals[Math.min(intervals.length - 1, Math.floor(p * intervals.length))];
  return {
    draw: phase4.drawStats(),
    msgsPerS: (s1.messages - s0.messages) / secs,
    drawsPerS: (s1.draws - s0.draws) / secs,
    framesDrawnPerS: (s1.drawn - s0.drawn) / secs,
    skippedPerS: (s1.skipped - s0.skipped) / secs,
    serverDropped: (s1.serverDropped ?? 0) - (s0.serverDropped ?? 0),
    rafP50: q(0.5), rafP95: q(0.95), rafMax: intervals[intervals.length - 1],
    longFrames: intervals.filter((x) => x > 50).length,
    elements: phase4.display.values.length,
  };
}"""

# fps=0: every frame the engine analyses, not the page's default 60 per second
CONFIGS = [
    ("all views, raw FFT bins (129)", "fps=0", "noise-all-views.png", None),
    (
        "all views, 1/24-octave bands, A-weighting, note labels",
        "fps=0&bands=24&weight=a&labels=note",
        "noise-24th-octave.png",
        "#views",
    ),
]


def row(name: str, r: dict) -> str:
    d = r["draw"]
    return (
        f"| {name} | {r['elements']} | {r['msgsPerS']:.0f} | {r['drawsPerS']:.0f} | "
        f"{d['p50']:.2f} | {d['p95']:.2f} | {d['p99']:.2f} | {d['max']:.1f} | "
        f"{r['rafP50']:.1f} / {r['rafP95']:.1f} | {r['longFrames']} | {r['serverDropped']} |"
    )


def test_draw_time_with_all_views_at_172_messages_per_second(page, engines, docs):
    engine = engines("noise")
    rows = []
    try:
        for name, query, image, selector in CONFIGS:
            open_page(page, engine, query)
            wait_connected(page)
            settle(page, 30)  # warm up: JIT, layout, spectrogram ring
            result = page.evaluate(MEASURE_JS, SECONDS * 1000)
            assert result["draw"]["n"] > 10, result
            rows.append(row(name, result))
            print(rows[-1])
            docs.shot(page, image, selector)
    finally:
        engine.stop()
    write_bench(docs, rows)


def write_bench(docs: Docs, rows: list[str]) -> None:
    load = os.getloadavg()
    ua_note = (
        "headless Chromium (/usr/bin/chromium, --disable-gpu: software canvas), viewport 1280x1000"
    )
    text = "\n".join(
        [
            "<!-- bench:start (written by nox -s docs; do not edit by hand) -->",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
            f"{ua_note}; engine `--source noise` at 44.1 kHz / 256 (~172 messages/s); "
            f"{SECONDS:.0f} s per row.",
            "",
            "| configuration | elements | msgs/s | draws/s | draw p50 ms | p95 | p99 | max |"
            " rAF interval p50 / p95 ms | frames > 50 ms | server drops |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "<!-- bench:end -->",
        ]
    )
    pattern = re.compile(r"<!-- bench:start.*?<!-- bench:end -->", re.S)
    docs.replace_section("page.md", pattern, text, "## Draw time (measured)")
