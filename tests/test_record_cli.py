"""``phase4 record`` and ``phase4 run --record/--udp`` as real subprocesses: signals, a full
disk (RLIMIT_FSIZE, so the kernel itself refuses the write), a crash, exit codes."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from phase4_trio.capture import read_wav
from phase4_trio.wire.p4sp import decode

RATE = 44100
BLOCK = 256

pytestmark = pytest.mark.slow


def command(*args: str, file_size_limit: int | None = None) -> list[str]:
    """``python -m phase4_trio ARGS``, optionally under a file size limit set just before exec."""
    if file_size_limit is None:
        return [sys.executable, "-m", "phase4_trio", *args]
    launcher = (
        "import os, resource, sys;"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_size_limit}, {file_size_limit}));"
        "os.execv(sys.executable, [sys.executable, '-m', 'phase4_trio', *sys.argv[1:]])"
    )
    return [sys.executable, "-c", launcher, *args]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}


def run(*args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args, file_size_limit=file_size_limit),
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
    )


def start(*args: str, file_size_limit: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args, file_size_limit=file_size_limit),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )


def wait_for_size(path: Path, size: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size >= size):
        assert time.monotonic() < deadline, f"{path} never reached {size} bytes"
        time.sleep(0.05)


def tone_hz(frames: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(frames[:, 0] * np.hanning(len(frames))))
    return float(np.argmax(spectrum) * RATE / len(frames))


def test_record_for_seconds_writes_exactly_that_much(tmp_path: Path) -> None:
    path = tmp_path / "two.wav"
    result = run("record", str(path), "--source", "tone:1000", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        f"phase4: recorded 2.00 s ({2 * RATE} frames, {RATE} Hz, 1 ch, pcm16) to {path}"
    ]  # not a terminal: no progress line, only the summary
    wav = read_wav(path)
    assert len(wav.frames) == 2 * RATE
    assert abs(tone_hz(wav.frames) - 1000) < 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_recording_with_a_valid_file(
    tmp_path: Path, signum: signal.Signals
) -> None:
    path = tmp_path / "signal.wav"
    process = start("record", str(path), "--source", "tone:440", "--format", "float32")
    try:
        wait_for_size(path, 58 + RATE * 4 // 2)  # half a second on disk
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stdout.startswith("phase4: recorded ")
    wav = read_wav(path)
    header = path.read_bytes()[:58]
    assert struct.unpack_from("<I", header, 54)[0] == len(wav.frames) * 4  # data size final
    assert struct.unpack_from("<I", header, 46)[0] == len(wav.frames)  # fact chunk final
    assert len(wav.frames) % BLOCK == 0
    assert len(wav.frames) >= RATE // 2
    assert abs(tone_hz(wav.frames) - 440) < 2


def test_a_killed_recorder_leaves_a_file_valid_up_to_the_last_header_update(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.wav"
    process = start("record", str(path), "--source", "tone:440")
    try:
        deadline = time.monotonic() + 20
        while True:  # the header says at least a second, from the periodic update
            if path.exists() and path.stat().st_size >= 44:
                data_size = struct.unpack_from("<I", path.read_bytes(), 40)[0]
                if data_size >= RATE * 2:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.kill()
        process.communicate(timeout=10)
    finally:
        process.kill()
    wav = read_wav(path)
    assert len(wav.frames) >= RATE
    assert abs(tone_hz(wav.frames) - 440) < 2


def test_a_full_disk_stops_the_recording_and_keeps_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "full.wav"
    limit = 100_000  # about 1.1 s of 16-bit mono at 44.1 kHz
    result = run(
        "record", str(path), "--source", "tone:1000", "--seconds", "5", file_size_limit=limit
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("phase4: ")]
    assert len(errors) == 1, result.stderr
    assert "write failed (File too large)" in errors[0]
    assert "file valid up to" in errors[0]
    size = path.stat().st_size
    assert size <= limit
    wav = read_wav(path)
    assert len(wav.frames) == (size - 44) // 2
    assert len(wav.frames) > RATE // 2
    assert abs(tone_hz(wav.frames) - 1000) < 2


def test_the_engine_keeps_running_when_its_recording_fails(tmp_path: Path) -> None:
    path = tmp_path / "engine-full.wav"
    limit = 50_000
    process = start(
        "run", "--source", "tone:1000", "--ws", "127.0.0.1:0", "--record", str(path),
        file_size_limit=limit,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        page = line.split()[2]
        wait_for_size(path, limit - 2 * BLOCK)
        time.sleep(0.5)  # well past the failure
        with urllib.request.urlopen(page + "healthz", timeout=5) as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "write failed (File too large)" in stderr
    assert len(read_wav(path).frames) == (path.stat().st_size - 44) // 2


def test_run_with_udp_and_record_flags(tmp_path: Path) -> None:
    path = tmp_path / "run.wav"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(10)
        process = start(
            "run", "--source", "tone:1000", "--ws", "127.0.0.1:0",
            "--udp", f"127.0.0.1:{peer.getsockname()[1]}", "--record", str(path),
        )  # fmt: skip
        try:
            spectrum = decode(peer.recv(70_000))
            wait_for_size(path, 44 + RATE)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=15)
        finally:
            process.kill()
    assert process.returncode == 0, stderr
    assert int(np.argmax(spectrum.magnitudes)) == round(1000 / (RATE / BLOCK))
    wav = read_wav(path)
    assert len(wav.frames) % BLOCK == 0
    assert abs(tone_hz(wav.frames) - 1000) < 2


def test_refusing_to_overwrite_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "exists.wav"
    path.write_bytes(b"keep me")
    for args in (["record", str(path)], ["run", "--record", str(path), "--ws", "127.0.0.1:0"]):
        result = run(*args, "--source", "tone:440")
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"phase4: {path}: already exists; use --force (record.force: true) to overwrite it"
        ]
    assert path.read_bytes() == b"keep me"
    forced = run("record", str(path), "--source", "tone:440", "--seconds", "0.5", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(read_wav(path).frames) == RATE // 2
