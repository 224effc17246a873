"""Targets, and the suite's results as checks, a terminal table, JSON and docs/performance.md."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from importlib import metadata
from typing import Any

import attrs

Getter = Callable[[dict[str, Any]], float | None]


@attrs.frozen
class Check:
    """One figure and its target: ``limit`` with ``<=`` or ``>=`` (or none), either on the
    figure itself or, with ``reference``, on its ratio to a reference figure of the same run.
    ``optional`` figures (the peer's) may be missing: they read "skipped", not MISS."""

    key: str
    figure: str
    unit: str
    get: Getter
    compare: str = ""
    limit: float | None = None
    reference: Getter | None = None
    reference_name: str = ""
    optional: bool = False

    @property
    def target(self) -> str:
        if self.limit is None:
            return "-"
        sign = "≤" if self.compare == "<=" else "≥"
        if self.reference is not None:
            return f"{sign} {_number(self.limit)}× {self.reference_name}"
        return f"{sign} {_number(self.limit)} {self.unit}".rstrip()


def _dig(*path: str | int) -> Getter:
    def get(results: dict[str, Any]) -> float | None:
        node: Any = results
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return None
        return float(node) if isinstance(node, int | float) else None

    return get


def checks_for(formats: list[str], soak: bool) -> list[Check]:
    copy_p99 = _dig("reference", "copy_floor", "copy_us", "p99")
    copy_cpu = _dig("reference", "copy_floor", "cpu_percent")
    one_client_cpu = _dig("formats", "json", "realtime", "1", "engine", "cpu_percent")
    checks = [
        Check("callback_p50_us", "callback time p50", "µs", _dig("callback_us", "p50")),
        Check(
            "callback_p99_us",
            "callback time p99",
            "µs",
            _dig("callback_us", "p99"),
            "<=",
            3,
            copy_p99,
            "bare copy p99",
        ),
        Check("callback_max_us", "callback time max", "µs", _dig("callback_us", "max")),
        Check(
            "idle_cpu_percent",
            "CPU, no client (standby, the default)",
            "% of a core",
            _dig("idle", "standby", "cpu_percent"),
            "<=",
            1,
        ),
        Check(
            "standby_cpu_vs_copy_floor",
            "CPU, no client (standby), against the copy floor",
            "% of a core",
            _dig("idle", "standby", "cpu_percent"),
            "<=",
            0.2,
            copy_cpu,
            "bare paced copy",
        ),
        Check(
            "idle_cpu_vs_copy_floor",
            "CPU, no client, capture kept on, against the copy floor",
            "% of a core",
            _dig("idle", "engine", "cpu_percent"),
            "<=",
            1.5,
            copy_cpu,
            "bare paced copy",
        ),
        Check(
            "idle_cpu_vs_one_client",
            "CPU, no client, capture kept on, against one client",
            "% of a core",
            _dig("idle", "engine", "cpu_percent"),
            "<=",
            0.2,
            one_client_cpu,
            "1 client [json]",
        ),
        Check(
            "page_cpu_percent",
            "CPU, the page's client (f32, 60/s, fine bins)",
            "% of a core",
            _dig("formats", "json", "realtime", "page", "engine", "cpu_percent"),
        ),
        Check(
            "first_frame_p50_ms",
            "first frame after rest, p50",
            "ms",
            _dig("idle", "first_frame_ms", "p50"),
            "<=",
            11.6,
        ),
        Check(
            "first_frame_max_ms",
            "first frame after rest, max",
            "ms",
            _dig("idle", "first_frame_ms", "max"),
        ),
        Check(
            "first_frame_standby_p50_ms",
            "first frame after standby, p50",
            "ms",
            _dig("idle", "first_frame_standby_ms", "p50"),
            "<=",
            11.6,
        ),
        Check(
            "first_frame_standby_max_ms",
            "first frame after standby, max",
            "ms",
            _dig("idle", "first_frame_standby_ms", "max"),
        ),
    ]
    for fmt in formats:
        f = ("formats", fmt)
        rt = (*f, "realtime")
        checks += [
            Check(
                f"{fmt}.latency_1_p50_ms",
                f"latency p50, 1 client [{fmt}]",
                "ms",
                _dig(*rt, "1", "latency_ms", "p50"),
            ),
            Check(
                f"{fmt}.latency_1_p99_ms",
                f"latency p99, 1 client [{fmt}]",
                "ms",
                _dig(*rt, "1", "latency_ms", "p99"),
                "<=",
                5,
            ),
            Check(
                f"{fmt}.latency_100_p50_ms",
                f"latency p50, 100 clients [{fmt}]",
                "ms",
                _dig(*rt, "100", "latency_ms", "p50"),
            ),
            Check(
                f"{fmt}.latency_100_p99_ms",
                f"latency p99, 100 clients [{fmt}]",
                "ms",
                _dig(*rt, "100", "latency_ms", "p99"),
                "<=",
                20,
            ),
            Check(
                f"{fmt}.throughput_fps",
                f"unpaced throughput, 1 client [{fmt}]",
                "frames/s",
                _dig(*f, "throughput", "client_fps"),
            ),
            Check(
                f"{fmt}.frames_per_cpu_second",
                f"unpaced, frames per engine CPU-second [{fmt}]",
                "frames",
                _dig(*f, "throughput", "frames_per_cpu_second"),
                ">=",
                20000,
            ),
            Check(
                f"{fmt}.fanout_clients",
                f"fan-out at real time, 0 drops [{fmt}]",
                "clients",
                _dig(*f, "fanout", "max_clients"),
                ">=",
                250,
            ),
            Check(
                f"{fmt}.cpu_1_percent",
                f"CPU, 1 client [{fmt}]",
                "% of a core",
                _dig(*rt, "1", "engine", "cpu_percent"),
            ),
            Check(
                f"{fmt}.cpu_10_percent",
                f"CPU, 10 clients [{fmt}]",
                "% of a core",
                _dig(*rt, "10", "engine", "cpu_percent"),
            ),
            Check(
                f"{fmt}.rss_1_mb",
                f"RSS, 1 client [{fmt}]",
                "MB",
                _dig(*rt, "1", "engine", "rss_mb"),
                "<=",
                80,
            ),
            Check(
                f"{fmt}.rss_10_mb",
                f"RSS, 10 clients [{fmt}]",
                "MB",
                _dig(*rt, "10", "engine", "rss_mb"),
                "<=",
                80,
            ),
        ]
    if soak:
        checks.append(
            Check("soak_growth_mb", "RSS growth, soak", "MB", _dig("soak", "growth_mb"), "<=", 5)
        )
    checks += _peer_checks() + _nats_checks() + _reference_checks() + _analysis_checks()
    return checks


def _nats_checks() -> list[Check]:
    link = ("nats", "link")
    return [
        Check(
            "nats.link_cpu_us",
            "NATS: link CPU per published message",
            "µs",
            _dig(*link, "cpu_us_per_message"),
            optional=True,
        ),
        Check(
            "nats.latency_p50_ms",
            "NATS: latency node to node through two links, p50",
            "ms",
            _dig(*link, "latency_ms_link", "p50"),
            optional=True,
        ),
        Check(
            "nats.latency_added_p50_ms",
            "NATS: of which the links' thread hand-offs, p50",
            "ms",
            _dig(*link, "added_p50_ms"),
            optional=True,
        ),
        Check(
            "nats.relay_latency_p99_ms",
            "NATS: captureTime → relay client, 10 clients, p99",
            "ms",
            _dig("nats", "with_relays", "latency_10", "latency_ms", "p99"),
            optional=True,
        ),
        Check(
            "nats.engine_alone_clients",
            "NATS: clients at real time, engine alone [json]",
            "clients",
            _dig("nats", "engine_alone", "max_clients"),
            optional=True,
        ),
        Check(
            "nats.with_relays_clients",
            "NATS: clients at real time, engine + 2 relays [json]",
            "clients",
            _dig("nats", "with_relays", "max_clients"),
            optional=True,
        ),
    ]


def _peer_checks() -> list[Check]:
    cava_60, cava_max = ("peer", "cava_60"), ("peer", "cava_max")
    device = ("peer", "phase4")
    return [
        Check(
            "peer.cava_60_cpu_percent",
            "peer: cava at 60/s, CPU",
            "% of a core",
            _dig(*cava_60, "cpu_percent"),
            optional=True,
        ),
        Check(
            "peer.cava_max_updates",
            "peer: cava at the block rate, updates",
            "/s",
            _dig(*cava_max, "updates_per_second"),
            optional=True,
        ),
        Check(
            "peer.cava_max_cpu_us",
            "peer: cava at the block rate, CPU per update",
            "µs",
            _dig(*cava_max, "cpu_us_per_update"),
            optional=True,
        ),
        Check(
            "peer.device_floor_cpu_percent",
            "floor: a copy-only PortAudio callback on the device, CPU",
            "% of a core",
            _dig("peer", "device_floor", "cpu_percent"),
            optional=True,
        ),
        Check(
            "peer.phase4_standby_cpu_percent",
            "device: CPU, no client (standby)",
            "% of a core",
            _dig(*device, "standby", "cpu_percent"),
            "<=",
            0.1,
            _dig("peer", "device_floor", "cpu_percent"),
            "the device floor",
            optional=True,
        ),
        Check(
            "peer.phase4_first_frame_standby_p50_ms",
            "device: first frame after standby, p50",
            "ms",
            _dig(*device, "first_frame_standby_ms", "p50"),
            "<=",
            23.2,
            optional=True,
        ),
        Check(
            "peer.phase4_first_frame_standby_max_ms",
            "device: first frame after standby, max",
            "ms",
            _dig(*device, "first_frame_standby_ms", "max"),
            optional=True,
        ),
        Check(
            "peer.phase4_idle_cpu_percent",
            "device: CPU, no client, capture kept on",
            "% of a core",
            _dig(*device, "idle", "cpu_percent"),
            "<=",
            1.5,
            _dig("peer", "device_floor", "cpu_percent"),
            "the device floor",
            optional=True,
        ),
        Check(
            "peer.phase4_full_cpu_us",
            "device: CPU per update, 1 client at full rate",
            "µs",
            _dig(*device, "full", "cpu_us_per_update"),
            "<=",
            1.5,
            _dig(*cava_max, "cpu_us_per_update"),
            "cava at its highest rate",
            optional=True,
        ),
        Check(
            "peer.phase4_page_cpu_percent",
            "device: CPU, the page's client (f32, 60/s, fine bins)",
            "% of a core",
            _dig(*device, "page", "engine", "cpu_percent"),
            "<=",
            1.5,
            _dig(*cava_60, "cpu_percent"),
            "cava at 60/s",
            optional=True,
        ),
    ]


def _reference_checks() -> list[Check]:
    ref = ("reference",)
    return [
        Check(
            "reference.wake_floor_cpu_percent",
            "floor: bare paced thread → token wake-up at 172 Hz, CPU",
            "% of a core",
            _dig(*ref, "wake_floor", "cpu_percent"),
        ),
        Check(
            "reference.wake_call_p99_us",
            "floor: that token call's time in the waking thread, p99",
            "µs",
            _dig(*ref, "wake_floor", "call_us", "p99"),
        ),
        Check(
            "reference.copy_floor_cpu_percent",
            "floor: bare paced thread, one block copy at 172 Hz, CPU",
            "% of a core",
            _dig(*ref, "copy_floor", "cpu_percent"),
        ),
        Check(
            "reference.copy_p99_us",
            "floor: that copy's time, p99",
            "µs",
            _dig(*ref, "copy_floor", "copy_us", "p99"),
        ),
        Check(
            "reference.analysis_warm_us",
            "reference: one block's analysis, back to back, p50",
            "µs",
            _dig(*ref, "cold_wake", "warm_us", "p50"),
        ),
        Check(
            "reference.analysis_after_sleep_us",
            "reference: the same, right after a 5.8 ms sleep, p50",
            "µs",
            _dig(*ref, "cold_wake", "after_sleep_us", "p50"),
        ),
    ]


def _analysis_checks() -> list[Check]:
    stage = ("analysis", "us")
    tempo = ("analysis", "tempo_beat")
    period = "% of the block period"
    return [
        Check(
            "analysis.fft_flux_us",
            "analysis per block: block FFT + flux",
            "µs",
            _dig(*stage, "fft_flux"),
        ),
        Check(
            "analysis.tempo_beat_us",
            "analysis per block: tempo + beat",
            "µs",
            _dig(*stage, "tempo_beat"),
            reference=_dig(*stage, "fft_flux"),
            reference_name="block FFT + flux",
        ),
        Check(
            "analysis.analyzer_rest_us",
            "analysis per block: the rest of the analyzer (levels, samples, results)",
            "µs",
            _dig(*stage, "analyzer_rest"),
        ),
        Check(
            "analysis.fine_spectrum_us",
            "analysis per block: the fine spectrum (dsp.fft_size points)",
            "µs",
            _dig(*stage, "fine_spectrum"),
        ),
        Check(
            "analysis.views_us",
            "analysis per block: six views (three layouts, two dynamics)",
            "µs",
            _dig(*stage, "views"),
        ),
        Check(
            "analysis.frames_us",
            "analysis per block: JSON frames for 3 clients",
            "µs",
            _dig(*stage, "frames"),
        ),
        Check(
            "analysis.total_us",
            "analysis per block: all of the above",
            "µs",
            _dig("analysis", "total_us"),
        ),
        Check(
            "analysis.total_percent_of_block",
            "analysis per block: all of the above, against the block period",
            period,
            _dig("analysis", "total_percent_of_block"),
        ),
        Check(
            "analysis.tempo_beat_percent_of_block",
            "tempo + beat per block, against the block period",
            period,
            _dig(*tempo, "percent_of_block"),
            "<=",
            10,
        ),
        Check(
            "analysis.tempo_beat_percent_of_analysis",
            "tempo + beat per block, share of all of the analysis",
            "%",
            _dig(*tempo, "percent_of_analysis"),
        ),
        Check(
            "analysis.tempo_update_us",
            "tempo + beat, a block that runs the estimate (every 0.25 s)",
            "µs",
            _dig(*tempo, "update_us"),
        ),
        Check(
            "encode_once.clients_3_us",
            "analysis, six views and frames per block, 3 clients on 3 layouts",
            "µs",
            _dig("analysis_clients", "clients", "3"),
        ),
        Check(
            "encode_once.clients_100_us",
            "analysis, six views and frames per block, 100 clients on 3 layouts",
            "µs",
            _dig("analysis_clients", "clients", "100"),
            "<=",
            1.5,
            _dig("analysis_clients", "clients", "3"),
            "3 clients",
        ),
    ]


def evaluate(results: dict[str, Any], formats: list[str], soak: bool) -> list[dict[str, Any]]:
    rows = []
    for check in checks_for(formats, soak):
        value = check.get(results)
        reference = check.reference(results) if check.reference is not None else None
        ratio = value / reference if value is not None and reference else None
        judged = ratio if check.reference is not None else value
        if value is None and check.optional:
            status = "skipped"
        elif check.limit is None:
            status = ""
        elif judged is None or not math.isfinite(judged):
            status = "MISS"
        elif check.compare == "<=":
            status = "ok" if judged <= check.limit else "MISS"
        else:
            status = "ok" if judged >= check.limit else "MISS"
        rows.append(
            {
                "key": check.key,
                "figure": check.figure,
                "unit": check.unit,
                "target": check.target,
                "compare": check.compare or None,
                "limit": check.limit,
                "value": value,
                "reference": reference,
                "ratio": ratio,
                "status": status,
            }
        )
    return rows


# ------------------------------------------------------------------ machine


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "trio", "trio-websocket", "wsproto", "orjson"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "versions": versions,
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
    }


# ------------------------------------------------------------------ output


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cells(row: dict[str, Any]) -> list[str]:
    unit = row["unit"]
    result = f"{_number(row['value'])} {unit}" if row["value"] is not None else "-"
    if row.get("ratio") is not None:
        result += f" = {row['ratio']:.2f}× ({_number(row['reference'])} {unit})"
    return [row["figure"], row["target"], result]


def table(report: dict[str, Any]) -> str:
    header = ["figure", "target", "result", "status"]
    rows = [[*_cells(row), row["status"]] for row in report["checks"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    misses = [row["figure"] for row in report["checks"] if row["status"] == "MISS"]
    lines.append("")
    lines.append(f"{len(misses)} MISS: " + "; ".join(misses) if misses else "all targets met")
    if not report["results"].get("binary_available", True):
        lines.append("binary ?format=f32 rows left out: phase4_trio.wire.p4sp missing")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    results = report["results"]
    lines = [
        "# Performance",
        "",
        "The latest figures of `phase4 bench`. Regenerate with `nox -s bench` (or the command",
        "below); `--soak` adds the 10-minute RSS growth run. A miss is marked **MISS**.",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}`",
        f"- machine: {m['nproc']} usable CPU(s) ({m['cpu_count']} online), {m['cpu_model']}, "
        f"{m['system']}",
        f"- load average at start / end: {_load(report['loadavg_start'])} / "
        f"{_load(m['loadavg'])} (other processes share the CPUs: figures are noisy)",
        f"- Python {m['python']} ({m['python_implementation']}), "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "| figure | target | result | status |",
        "| --- | --- | --- | --- |",
    ]
    for row in report["checks"]:
        status = "**MISS**" if row["status"] == "MISS" else row["status"]
        lines.append("| " + " | ".join([*_cells(row), status]) + " |")
    if not results.get("binary_available", True):
        lines += ["", "The `?format=f32` rows are missing: the binary encoder is not installed."]
    lines += ["", "## Fan-out steps", "", "| format | clients | min frames | expected | "]
    lines[-1] += "gaps | dropped | latency p99 (ms) | engine CPU (%) | real time |"
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for fmt, per_format in results["formats"].items():
        for step in per_format["fanout"]["steps"]:
            if "error" in step:
                lines.append(f"| {fmt} | {step['clients']} | {step['error']} | | | | | | no |")
                continue
            lines.append(
                f"| {fmt} | {step['clients']} | {step['min_received']} | {step['expected']:.0f} "
                f"| {step['gaps']} | {step['dropped']} | {step['latency_ms']['p99']:.2f} "
                f"| {step['engine']['cpu_percent']:.0f} | {'yes' if step['realtime'] else 'no'} |"
            )
    lines += ["", METHOD]
    return "\n".join(lines) + "\n"


def _load(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values) or "-"


METHOD = """## How it is measured

Every target is a ratio to figures measured in the same run, because this shared virtual
machine's absolute figures swing about 2x between runs: the **floor** (what the design's bare
minimum costs here) and the **peer** (cava, the C terminal visualizer, doing the same job on
the same input).

- The engine runs in the `phase4 bench` process (`Engine(config, paced=...)`, tone source
  `tone:1000`, WebSocket on an ephemeral 127.0.0.1 port, defaults otherwise: `client_queue` 4,
  `buffer_size` 256 at 44.1 kHz, i.e. 172.3 frames/s). Clients run in a separate process
  (`python -m phase4_trio.bench.client`), so they never share the engine's GIL.
- **Floor** rows (`bench/reference.py`): a thread paced at the block rate waking a Trio task
  through the run's `TrioToken` exactly as the capture bridge does (its CPU, and the time of
  the token call in the waking thread); a thread paced at the block rate copying one block
  into a slot (its CPU, and the time of each copy); a copy-only PortAudio callback on the
  virtual device (its CPU); one block's analysis back to back and right after a block
  period's sleep.
- **Peer** rows (`bench/peer.py`): pink noise plays into the PulseAudio null sink (`sox |
  pacat`, processes of their own); cava reads its monitor at 60 updates/s and at the block
  rate, writing raw bars to a pipe the bench counts; its CPU comes from `/proc/PID/stat`.
  The engine then runs with `--source device` on the same monitor: no client, one JSON client
  at full rate (CPU per update received), and the page's client. Every window on the device
  starts once the stream has delivered its first block and a warm-up has passed: PulseAudio's
  null sink takes up to 2 s to deliver a new stream's first block, and PortAudio spends CPU
  meanwhile (up to 16 % of a core here) that is no part of the engine's steady state.
- **Callback time**: `time.perf_counter()` around `CaptureBridge.push` in the capture thread,
  every block of the real-time windows (1, 10 and 100 full-rate clients, so every block wakes
  Trio), paced tone source. It starts once the thread holds the GIL (as a PortAudio
  callback's Python code does), and includes the token call.
- **No client**, twice: with capture kept on (`input.standby: false`), the engine resting
  (nobody listening) for a window, then ten times a client connects and the time from its
  finished handshake to its first message is taken (**first frame after rest**); then with
  standby (the default; linger shortened to 0.5 s), the engine's capture paused for a window,
  then ten times a client connects to the paused engine (**first frame after standby**). On
  the device the same two, in the peer part: standby stops PortAudio's stream, and the first
  frame waits for the restarted stream's first block (about 8 ms on the null sink), hence its
  target of four block periods where the tone source's is two.
- **The page's client**: what `static/connection.js` opens by default,
  `?format=f32&fps=60&resolution=fine`.
- **Latency**: the client's `time.time()` on receipt minus the message's `captureTime` (the
  host clock in the capture callback). 1 and 10 clients use `trio-websocket`; 100 clients,
  fan-out and throughput use the bench's minimal RFC 6455 client (`raw`: handshake checked,
  every connection read by one epoll thread, frames parsed in place with
  `wire.websocket_frame`), so hundreds of clients in one process measure the engine rather
  than themselves. The figure includes the client process's own scheduling delay.
- **Throughput**: the source unpaced (it generates 16 blocks per generator call, pushes them
  one by one, and waits while half the ring or half the processor's channel is taken, so the
  pipeline sets the pace and nothing is dropped), one client; frames the client received per
  CPU-second of the engine process.
- **Fan-out**: clients added in steps 1, 10, 50, 100, 200, 300, +100…; a step passes when every
  client got every frame of the window (no `frameCount` gap, `dropped` unchanged), at least 95 %
  of real time, with latency p99 ≤ 100 ms. A failed step is retried once. The result is the
  last passing step.
- **CPU / RSS**: `getrusage` deltas of the engine's process over the window (all its threads)
  as a share of one core; RSS from `/proc/self/statm` at the end of the window.
- **Analysis** rows (`bench/analysis.py`, no engine, no sockets): a drum-like loop at 120 BPM
  (a kick on every beat, a hi-hat on every off-beat) goes through the analysis one block per
  batch at the engine's default config (256 at 44.1 kHz, the fine spectrum at `dsp.fft_size`),
  after 8 s that are not timed, so the tempo tracker's history is full: the analyzer, the fine
  spectrum, six views (three band layouts under two sets of dynamics options) and a JSON frame
  for each of 3 clients. Each stage is timed per block with `time.process_time`, the best of 3
  runs of 2 s of audio. The block FFT + flux and `TempoTracker.push` run again on their own,
  fed the same blocks, and the rest of the analyzer is its whole time minus theirs. These are
  warm figures, one block after another; at real time each block runs after a wake-up (the
  reference rows).
- **Tempo + beat** is the tracker's mean per block over whole cycles of its updates: the
  estimate and the phase search run once per 0.25 s of audio (one block in 43) and cost most of
  it; the row of that block alone shows the step. The target is a real-time budget, the
  tracker's mean time against the block period it has to fit in (at most a tenth of it). Its
  cost against the FFT + flux it is fed is shown without a target: the two are of the same
  order (docs/dsp.md, Tempo and beats → Cost), and neither bounds the other.
- **Encode-once** rows: the same analysis and six views on a busier signal (noise bursts over
  a tone), then a JSON frame for each of 3 and of 100 clients spread over the three layouts
  (best of 2 runs of 1 s of audio). Views and frame bodies are built once per spectrum and
  option set, whatever the number of clients, so the 100 must cost at most 1.5× the 3.
- **NATS** rows (`--nats URLS`, `bench/nats.py`): see docs/scaling.md.
- **Soak** (`--soak`): 10 clients for 10 minutes; growth is the RSS at the end minus the RSS
  after the first tenth of the run.

## Where the time goes

- **The Shape's own price**: every spectrum a full-rate client gets starts with two wake-ups
  (the capture thread's, then Trio's through the token) and four task steps (the token's
  delivery, the processor, the router, the client). On this virtual machine the code that runs
  right after a wake-up is several times slower than the same code warm (the cold-wake rows:
  a 2.6 KB loopback write costs about 3 µs back to back and about 80 µs after a 5.8 ms sleep),
  so the CPU per update is set by how many wake-ups there are, more than by the work.
- **Fewer wake-ups**: a client that asks for at most F spectra a second (the page: 60) makes
  the bridge deliver batches about F times a second, so each wake-up carries ~3 blocks (one FFT
  call for all of them) and the client's task wakes once per delivery. With nobody listening,
  the bridge does not wake Trio at all, and after `input.standby_after` nothing is captured.
- **The token call**: `run_sync_soon` writes one byte to Trio's wake-up socket, and the write
  lets go of the GIL; the Trio thread it has just woken often takes the GIL first, and the
  callback then waits for it before it can return. That wait, not the copy, sets the
  callback's time (the wake-call floor row).
- **Per client, per delivery** the client's own task takes everything waiting in its channel
  and does one `os.write` of frames built once per spectrum (shared by every client with the
  same options); fan-out is bound by that task step and system call per client and, when the
  engine falls behind, batches grow so each step carries more frames.
- **JSON**: `orjson` formats the float arrays once per spectrum into bytes every client's frame
  shares; `?format=f32` skips the text.
- Timings depend on the machine and on whatever else runs on it; compare figures from one run.
"""
