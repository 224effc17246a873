"""The real CLI, as a subprocess: exit codes and one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine_helpers import catches_sigterm
from phase4_trio import __version__
from phase4_trio.transport import lan


def phase4(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "phase4_trio", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=False,
    )


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = phase4(flag)
    assert result.returncode == 0
    assert result.stdout.strip() == f"phase4 {__version__}"


def test_bare_phase4_prints_the_help_and_exits_2() -> None:
    result = phase4()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: phase4 [-h] [-V] COMMAND ...")
    for command in ("run", "record", "config", "devices", "bench"):
        assert f"\n    {command} " in result.stderr, command
    assert "required" not in result.stderr


def test_validate_three_mistakes_prints_three_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("input:\n  buffer_size: 300\n  sample_rate: fast\ndsp:\n  fft_window: kaiser\n")
    result = phase4("config", "validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert all(line.startswith("phase4: ") for line in lines), lines
    assert {line.split(":")[1].strip() for line in lines} == {
        "input.buffer_size",
        "input.sample_rate",
        "dsp.fft_window",
    }
    assert "Traceback" not in result.stderr


def test_validate_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text("input: {source: 'tone:440', sample_rate: 48000}\n")
    result = phase4("config", "validate", str(path))
    assert result.returncode == 0, result.stderr


def test_show_output_revalidates(tmp_path: Path) -> None:
    source = tmp_path / "in.yaml"
    source.write_text("dsp: {fft_window: BLACKMAN}\n")
    shown = phase4(
        "config", "show", "--config", str(source), env={"PHASE4_INPUT__SAMPLE_RATE": "48000"}
    )
    assert shown.returncode == 0, shown.stderr
    assert "fft_window: blackman" in shown.stdout
    assert "sample_rate: 48000" in shown.stdout
    out = tmp_path / "shown.yaml"
    out.write_text(shown.stdout)
    assert phase4("config", "validate", str(out)).returncode == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--buffer-size", "300"], "input.buffer_size: must be a power of two"),
        (["run", "--sample-rate", "fast"], "input.sample_rate: expected a whole number"),
        (["run", "--source", "microphone"], "input.source: unknown source"),
        (["run", "--ws", "nowhere"], "transport.websocket_address: expected HOST:PORT"),
        (["run", "--source", "wav:/no/such.wav"], "wav:/no/such.wav: cannot read"),
        (["run", "--config", "/no/such.yaml"], "/no/such.yaml: cannot read config file"),
        (
            ["run", "--source", "tone:30000"],
            "input.source: a 30000 Hz tone is at or above the Nyquist frequency (22050 Hz",
        ),
        (["run", "--bogus"], "unrecognized arguments: --bogus (see phase4 run --help)"),
        (["record"], "required: OUT.wav (see phase4 record --help)"),
        (["record", "x.wav", "--seconds", "-1"], "must be a positive number of seconds"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["config", "validate"], "required: F (see phase4 config validate --help)"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], expected: str) -> None:
    result = phase4(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("phase4: "), lines[0]
    assert expected in lines[0]


def test_env_error_names_the_variable_and_the_key() -> None:
    result = phase4("config", "show", env={"PHASE4_DSP__FFT_WINDOW": "square"})
    assert result.returncode == 2
    assert result.stderr.startswith(
        "phase4: PHASE4_DSP__FFT_WINDOW: dsp.fft_window: must be one of"
    )
    result = phase4("run", env={"PHASE4_INPUT__SAMPLERATE": "48000"})
    assert result.returncode == 2
    assert result.stderr == (
        "phase4: PHASE4_INPUT__SAMPLERATE: input.samplerate: unknown key"
        " (did you mean sample_rate?)\n"
    )


def test_durations_show_as_written_and_round_trip(tmp_path: Path) -> None:
    shown = phase4("config", "show", env={"PHASE4_TRANSPORT__UDP_SEND_INTERVAL": "0.0015"})
    assert shown.returncode == 0, shown.stderr
    assert "  handshake_timeout: 5s\n" in shown.stdout
    assert "  udp_send_interval: 1.5ms\n" in shown.stdout
    out = tmp_path / "shown.yaml"
    out.write_text(shown.stdout)
    assert phase4("config", "validate", str(out)).returncode == 0


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("input: [unclosed\n")
    result = phase4("config", "validate", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(path) in result.stderr


def start_engine(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``phase4 run`` on an ephemeral port; return the process and its printed line."""
    return start_engine_at("127.0.0.1:0", *args)


def start_engine_at(address: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "phase4_trio", "run", "--ws", address, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_prints_url_and_stops_cleanly_on_signal(signum: signal.Signals) -> None:
    process, line = start_engine("--source", "tone:440")
    try:
        assert line.startswith("phase4: page http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(url, timeout=5) as response:
            assert b"<canvas" in response.read()
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        process.kill()


def test_sigterm_during_startup_exits_cleanly() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "phase4_trio", "run", "--source", "noise", "--ws", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    # Signal as soon as the process catches SIGTERM: still importing or building the engine.
    deadline = time.monotonic() + 30
    while not catches_sigterm(process.pid):
        assert time.monotonic() < deadline, "phase4 never installed its SIGTERM handler"
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = phase4("run", "--source", "tone:440", "--ws", f"127.0.0.1:{port}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"phase4: transport.websocket_address: cannot listen on 127.0.0.1:{port}:"
        " address already in use (another phase4?); pick another port, e.g. --ws 127.0.0.1:"
    )
    suggested = int(lines[0].rsplit(":", 1)[1])
    assert suggested > port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", suggested))  # the suggestion really is free


def test_all_interfaces_prints_urls_other_machines_can_use() -> None:
    """``--ws 0.0.0.0:PORT``: the second line names this host's network addresses, and the
    page and its WebSocket really answer there (an Origin of that address is the page's own)."""
    process, line = start_engine_at("0.0.0.0:0", "--source", "tone:440")
    try:
        assert line.startswith("phase4: page http://127.0.0.1:"), line
        assert line.rstrip().endswith("(Ctrl-C stops)")
        port = int(line.split()[2].rsplit(":", 1)[1].strip("/"))
        assert process.stdout is not None
        second = process.stdout.readline()
        addresses = lan.reachable(lan.interface_addresses())
        if not addresses:
            assert second == (
                "phase4: listening on every interface, but this machine has no network address\n"
            )
            return
        urls = [f"http://{address}:{port}/" for address in addresses]
        assert second == (
            f"phase4: listening on every interface: from another machine open"
            f" {' or '.join(urls)} (its firewall and this one's must let TCP port {port} through)\n"
        )
        with urllib.request.urlopen(urls[0], timeout=5) as response:
            assert b"<canvas" in response.read()
        host = f"{addresses[0]}:{port}"
        with socket.create_connection((addresses[0], port), timeout=5) as client:
            client.sendall(
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n\r\n".encode()
            )
            assert client.recv(4096).startswith(b"HTTP/1.1 101 ")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_lan_addresses_offered_are_ipv4_and_not_loopback() -> None:
    given = ["127.0.0.1", "192.168.1.20", "169.254.3.4", "::1", "fe80::1", "10.0.0.7", "10.0.0.7"]
    assert lan.reachable(given) == ["192.168.1.20", "10.0.0.7"]
    assert lan.page_urls(given, 8891) == ["http://192.168.1.20:8891/", "http://10.0.0.7:8891/"]
    assert "127.0.0.1" in lan.interface_addresses()  # the loopback interface is read too
