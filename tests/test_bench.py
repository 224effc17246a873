"""``phase4 bench`` end to end in its short mode, and the fast paths it measures.

No test here asserts a timing: the machine running the tests may be anything. They check that
the suite runs through the real CLI, reports every figure with its target, and that the
optimised send path writes exactly the bytes trio-websocket would have, in order.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import trio
from wsproto.frame_protocol import FrameProtocol

from phase4_trio.bench import report
from phase4_trio.bench.client import (
    ClientState,
    RawConnection,
    parse_f32_fields,
    parse_json_fields,
)
from phase4_trio.bench.suite import binary_available, fanout_steps
from phase4_trio.cli import main
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.client_frames import encode_for, frame_for
from phase4_trio.transport.options import ClientOptions
from phase4_trio.transport.websocket import ClientStream
from phase4_trio.wire import json_spectrum, p4sp, websocket_frame
from phase4_trio.wire.websocket_frame import Opcode

TARGET_KEYS = [
    "callback_p99_us",
    "idle_cpu_percent",
    "standby_cpu_vs_copy_floor",
    "idle_cpu_vs_copy_floor",
    "idle_cpu_vs_one_client",
    "first_frame_p50_ms",
    "first_frame_standby_p50_ms",
    "{fmt}.latency_1_p99_ms",
    "{fmt}.latency_100_p99_ms",
    "{fmt}.frames_per_cpu_second",
    "{fmt}.fanout_clients",
    "{fmt}.rss_1_mb",
    "analysis.tempo_beat_percent_of_block",
    "encode_once.clients_100_us",
]
INFO_KEYS = [
    "callback_p50_us",
    "callback_max_us",
    "first_frame_max_ms",
    "page_cpu_percent",
    "{fmt}.latency_1_p50_ms",
    "{fmt}.latency_100_p50_ms",
    "{fmt}.throughput_fps",
    "{fmt}.cpu_1_percent",
    "{fmt}.cpu_10_percent",
    "{fmt}.rss_10_mb",
    "reference.wake_floor_cpu_percent",
    "reference.copy_floor_cpu_percent",
    "reference.copy_p99_us",
    "analysis.fft_flux_us",
    "analysis.tempo_beat_us",
    "analysis.analyzer_rest_us",
    "analysis.fine_spectrum_us",
    "analysis.views_us",
    "analysis.frames_us",
    "analysis.total_us",
    "analysis.total_percent_of_block",
    "analysis.tempo_beat_percent_of_analysis",
    "analysis.tempo_update_us",
    "encode_once.clients_3_us",
    "first_frame_standby_max_ms",
]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One short run of the whole suite through the real command line."""
    doc = tmp_path_factory.mktemp("bench") / "performance.md"
    command = [
        sys.executable,
        "-m",
        "phase4_trio",
        "bench",
        "--json",
        "--seconds",
        "1",
        "--fanout-max",
        "10",
        "--no-peer",
        "--write-doc",
        str(doc),
    ]
    done = subprocess.run(command, capture_output=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result, doc


def _formats() -> list[str]:
    return ["json", "f32"] if binary_available() else ["json"]


@pytest.mark.slow
def test_short_run_reports_every_figure_with_its_target(
    short_run: tuple[dict[str, Any], Path],
) -> None:
    result, _ = short_run
    figures = result["figures"]
    for fmt in _formats():
        for key in TARGET_KEYS + INFO_KEYS:
            name = key.format(fmt=fmt)
            assert name in figures, name
            value = figures[name]
            assert isinstance(value, int | float) and math.isfinite(value), (name, value)
        for key in TARGET_KEYS:
            assert key.format(fmt=fmt) in result["targets"]
    for check in result["checks"]:
        if check["key"].startswith(("peer.", "nats.")):  # --no-peer, no --nats: not measured
            assert check["status"] == "skipped" and check["value"] is None
        elif check["limit"] is None:
            assert check["status"] in ("", "skipped")
        else:
            assert check["status"] in ("ok", "MISS")
            assert check["target"].startswith(("≤", "≥"))
        if check["ratio"] is not None:
            assert check["ratio"] == pytest.approx(check["value"] / check["reference"])
    assert set(result["misses"]) == {c["key"] for c in result["checks"] if c["status"] == "MISS"}
    assert result["options"]["formats"] == _formats()


@pytest.mark.slow
def test_short_run_measured_real_traffic(short_run: tuple[dict[str, Any], Path]) -> None:
    result, _ = short_run
    results = result["results"]
    assert results["callback_us"]["count"] > 100
    for fmt in _formats():
        per_format = results["formats"][fmt]
        for clients in ("1", "10", "100"):
            window = per_format["realtime"][clients]
            assert window["clients"] == int(clients)
            assert window["latency_ms"]["count"] > 0
            assert window["engine"]["rss_mb"] > 0
        assert per_format["throughput"]["engine"]["processed_fps"] > 0
        steps = per_format["fanout"]["steps"]
        assert [s["clients"] for s in steps][:1] == [1]
        assert per_format["fanout"]["max_clients"] == 10
        assert per_format["throughput"]["frames_per_cpu_second"] > 0
    assert results["formats"]["json"]["realtime"]["page"]["clients"] == 1
    assert results["idle"]["first_frame_ms"]["count"] == 10
    assert results["idle"]["first_frame_standby_ms"]["count"] == 10
    assert results["idle"]["engine"]["cpu_percent"] > 0
    # paused capture costs less than capture kept on
    assert results["idle"]["standby"]["cpu_percent"] < results["idle"]["engine"]["cpu_percent"]
    assert "peer" not in results
    analysis = results["analysis"]
    assert analysis["fft_size"] == 4096 and analysis["block_size"] == 256
    assert analysis["tempo_beat"]["updates"] > 0
    machine = result["machine"]
    assert machine["nproc"] >= 1 and machine["cpu_model"] and machine["python"]
    assert "numpy" in machine["versions"]


@pytest.mark.slow
def test_short_run_table_and_doc(short_run: tuple[dict[str, Any], Path]) -> None:
    result, doc = short_run
    table = report.table(result)
    for check in result["checks"]:
        assert check["figure"] in table
    rows, _, summary = table.partition("\n\n")
    by_figure = {line.split("  ")[0]: line for line in rows.splitlines()[2:]}
    for check in result["checks"]:
        assert by_figure[check["figure"]].rstrip().endswith("MISS") == (check["status"] == "MISS")
    misses = len(result["misses"])
    assert summary.startswith(f"{misses} MISS" if misses else "all targets met")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Performance")
    assert "| figure | target | result | status |" in text
    assert result["command"] in text
    assert (
        "phase4 bench --json --seconds 1 --fanout-max 10 --no-peer --write-doc" in result["command"]
    )
    assert result["machine"]["cpu_model"] in text
    assert f"Python {result['machine']['python']}" in text
    assert result["date"] in text


def test_bad_flags_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--seconds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seconds" in err[0]


def test_fanout_steps() -> None:
    assert fanout_steps(10) == [1, 10]
    assert fanout_steps(250) == [1, 10, 50, 100, 200, 250]
    assert fanout_steps(600) == [1, 10, 50, 100, 200, 300, 400, 500, 600]


def test_evaluate_marks_misses_ratios_and_missing_values() -> None:
    results = {
        "callback_us": {"p50": 5.0, "p99": 60.0, "max": 200.0},
        "reference": {"copy_floor": {"copy_us": {"p99": 10.0}, "cpu_percent": 1.0}},
        "idle": {"engine": {"cpu_percent": 1.4}, "standby": {"cpu_percent": 0.1}},
        "formats": {},
    }
    rows = {row["key"]: row for row in report.evaluate(results, [], soak=False)}
    assert rows["callback_p50_us"]["status"] == ""
    assert rows["callback_p99_us"]["ratio"] == 6.0
    assert rows["callback_p99_us"]["status"] == "MISS"  # 6x the bare copy, target 3x
    assert rows["idle_cpu_vs_copy_floor"]["status"] == "ok"  # 1.4x, target 1.5x
    assert rows["idle_cpu_percent"]["status"] == "ok"  # standby 0.1 %, target 1 %
    assert rows["standby_cpu_vs_copy_floor"]["status"] == "ok"  # 0.1x, target 0.2x
    assert rows["first_frame_standby_p50_ms"]["status"] == "MISS"  # not measured
    encode_once = {"analysis_clients": {"clients": {"3": 500.0, "100": 800.0}}, "formats": {}}
    rows = {row["key"]: row for row in report.evaluate(encode_once, [], soak=False)}
    assert rows["encode_once.clients_100_us"]["ratio"] == pytest.approx(1.6)
    assert rows["encode_once.clients_100_us"]["status"] == "MISS"  # 1.6x the 3 clients, target 1.5x
    assert rows["idle_cpu_vs_one_client"]["status"] == "MISS"  # no one-client figure
    assert rows["peer.phase4_full_cpu_us"]["status"] == "skipped"
    rows = {row["key"]: row for row in report.evaluate({"formats": {}}, ["json"], soak=True)}
    assert rows["json.fanout_clients"]["status"] == "MISS"  # not measured is a miss, not a pass
    assert rows["soak_growth_mb"]["value"] is None


def _analysis_results(tempo_us: float) -> dict[str, Any]:
    """Made-up analysis figures (µs per block) in the shape of ``analysis_breakdown``."""
    period = 1e6 * 256 / 44100
    us = {
        "fft_flux": 40.0,
        "tempo_beat": tempo_us,
        "analyzer_rest": 50.0,
        "fine_spectrum": 100.0,
        "views": 500.0,
        "frames": 120.0,
    }
    total = sum(us.values())
    return {
        "block_period_us": period,
        "us": us,
        "total_us": total,
        "total_percent_of_block": 100 * total / period,
        "tempo_beat": {
            "us": tempo_us,
            "percent_of_block": 100 * tempo_us / period,
            "percent_of_analysis": 100 * tempo_us / total,
            "update_us": 40 * tempo_us,
        },
    }


@pytest.mark.parametrize(("tempo_us", "status"), [(30.0, "ok"), (700.0, "MISS")])
def test_analysis_rows_render_and_a_slow_tracker_misses(tempo_us: float, status: str) -> None:
    """Tempo + beat over a tenth of the block period (580 µs at 256 / 44.1 kHz) is a miss;
    every analysis row reaches the table and the doc, the tracker's ratio to the FFT + flux
    beside it."""
    results = {"analysis": _analysis_results(tempo_us), "formats": {}}
    rows = {row["key"]: row for row in report.evaluate(results, [], soak=False)}
    analysis = {key: row for key, row in rows.items() if key.startswith("analysis.")}
    assert len(analysis) == 11
    assert all(row["value"] is not None for row in analysis.values())
    target = analysis.pop("analysis.tempo_beat_percent_of_block")
    assert target["status"] == status
    assert target["target"] == "≤ 10.0 % of the block period"
    assert target["value"] == pytest.approx(100 * tempo_us / results["analysis"]["block_period_us"])
    assert {row["status"] for row in analysis.values()} == {""}
    assert analysis["analysis.tempo_beat_us"]["ratio"] == pytest.approx(tempo_us / 40.0)
    assert analysis["analysis.tempo_update_us"]["value"] == 40 * tempo_us
    checks = list(rows.values())
    doc = report.markdown(
        {
            "date": "2026-01-01 00:00 UTC",
            "command": "phase4 bench",
            "machine": report.machine(),
            "loadavg_start": [],
            "results": results,
            "checks": checks,
        }
    )
    table = report.table({"results": results, "checks": checks})
    for row in [target, *analysis.values()]:
        assert f"| {row['figure']} | {row['target']} |" in doc
        assert row["figure"] in table
    marked = "**MISS**" if status == "MISS" else "ok"
    assert f"| {target['figure']} | {target['target']} |" in doc
    line = next(line for line in doc.splitlines() if line.startswith(f"| {target['figure']} |"))
    assert line.endswith(f"| {marked} |")
    assert ("tempo + beat per block, against the block period" in table.split("\n\n")[1]) == (
        status == "MISS"
    )
    assert "**Analysis** rows" in doc and "**Tempo + beat**" in doc


def test_analysis_not_measured_is_a_miss_not_a_pass() -> None:
    rows = {row["key"]: row for row in report.evaluate({"formats": {}}, [], soak=False)}
    assert rows["analysis.tempo_beat_percent_of_block"]["status"] == "MISS"
    assert rows["analysis.fft_flux_us"]["value"] is None


# ------------------------------------------------------------------ the client's parsers


def _spectrum(index: int = 7, bins: int = 129) -> Spectrum:
    rng = np.random.default_rng(index)
    magnitudes = rng.random(bins, dtype=np.float32)
    flux = rng.random(bins, dtype=np.float32)
    return Spectrum(index, 1764098401.123456, 44100, (bins - 1) * 2, magnitudes, flux, 120.5, 0.75)


@pytest.mark.parametrize("dropped", [0, 3, 123456])
def test_client_parsers_read_the_engine_messages(dropped: int) -> None:
    spectrum = _spectrum()
    text = json_spectrum.encode_message(spectrum, dropped).encode()
    assert parse_json_fields(text) == (7, dropped, spectrum.capture_time)
    framed = b"xx" + text + b"yy"
    assert parse_json_fields(bytearray(framed), 2, len(framed) - 2)[1] == dropped
    binary = p4sp.encode(spectrum, with_flux=True, dropped=dropped)
    assert parse_f32_fields(binary) == (7, dropped, spectrum.capture_time)


def test_client_state_counts_gaps_and_dropped() -> None:
    state = ClientState(0)
    latencies: list[float] = []
    state.reset(latencies)
    for frame, dropped in ((10, 2), (11, 2), (14, 4), (15, 4)):
        state.observe(frame, dropped, 100.0, 100.001)
    summary = state.summary()
    assert summary["received"] == 4
    assert summary["gaps"] == 1 and summary["missing"] == 2
    assert summary["dropped"] == 2
    assert len(latencies) == 4


@pytest.mark.parametrize("fmt", ["json", "f32"])
def test_raw_client_parses_frames_split_anywhere(fmt: str) -> None:
    options = ClientOptions(format=fmt)
    stream = b"".join(frame_for(_spectrum(i), options, i // 10) for i in range(40))
    rng = np.random.default_rng(5)
    cuts = sorted(int(c) for c in rng.integers(1, len(stream), 60))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    left, right = socket.socketpair()
    with left, right:
        state = ClientState(0)
        state.reset([])
        connection = RawConnection(left, state, b"")
        for chunk in chunks:
            assert connection.receive(chunk, 1764098401.2)
    summary = state.summary()
    assert summary["received"] == 40 and summary["bad"] == 0
    assert summary["first_frame"] == 0 and summary["last_frame"] == 39
    assert summary["gaps"] == 0 and summary["dropped"] == 3


# ------------------------------------------------------------------ pre-framed messages


@pytest.mark.parametrize("dropped", [0, 1, 99999])
@pytest.mark.parametrize(
    "options",
    [
        ClientOptions(),
        ClientOptions(format="f32"),
        ClientOptions(format="f32", flux=False),
        ClientOptions(bins=16),
        ClientOptions(format="f32", bins=32),
    ],
)
def test_frames_are_what_wsproto_would_send(options: ClientOptions, dropped: int) -> None:
    spectrum = _spectrum()
    message = encode_for(spectrum, options, dropped)
    expected = bytes(FrameProtocol(client=False, extensions=[]).send_data(message, fin=True))
    assert frame_for(spectrum, options, dropped) == expected
    assert frame_for(spectrum, options, dropped) == expected  # the cached copy too


# ------------------------------------------------------------------ a client's writes


async def test_frames_and_trio_websockets_own_writes_never_interleave() -> None:
    """A frame that fills the socket is written whole before a pong queued behind it."""
    left, right = trio.socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = ClientStream(trio.SocketStream(left))
    payloads = [os.urandom(3000) for _ in range(50)]
    pong = websocket_frame.build(Opcode.PONG, b"pong")
    received = bytearray()

    async def reader() -> None:
        await trio.sleep(0.05)  # the writer fills the socket first
        while chunk := await right.recv(65536):
            received.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        async with trio.open_nursery() as writers:
            writers.start_soon(
                stream.send_frame,
                b"".join(websocket_frame.build(Opcode.BINARY, p) for p in payloads),
            )
            await trio.sleep(0.01)
            writers.start_soon(stream.send_all, pong)  # trio-websocket's own write
        await stream.aclose()
    frames, used = websocket_frame.parse(bytes(received))
    assert used == len(received)
    assert [f.payload for f in frames if f.opcode == Opcode.BINARY] == payloads
    assert frames[-1] == websocket_frame.Frame(True, Opcode.PONG, b"pong")
    right.close()
