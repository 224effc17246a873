"""Fixtures for tests that capture from a real PortAudio device: the PulseAudio null sink.

``virtual_audio`` starts ``scripts/virtual-audio`` when its server is not running (tests
must run, not skip: when the server cannot start, the test fails and says why), points this
process at it and re-initialises PortAudio if ``sounddevice`` was imported before. Anything
played into the sink ``vsink`` comes back from the default input device (its monitor).

Use it from a test module with ``from audio_fixtures import virtual_audio`` (the tests
directory is on ``sys.path`` under pytest's default rootdir-based import mode), or register
it for every module with ``pytest_plugins = ["audio_fixtures"]`` in tests/conftest.py.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np
import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "virtual-audio"
SINK = "vsink"


def _script(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,  # `start` may apt-get install the packages on a fresh machine
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"scripts/virtual-audio {' '.join(args)} failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}",
            pytrace=False,
        )
    return result


def _client_env() -> dict[str, str]:
    """Parse ``export A=x B=y`` printed by ``scripts/virtual-audio env``."""
    line = _script("env").stdout.strip()
    words = shlex.split(line)
    assert words[0] == "export", line
    return dict(word.split("=", 1) for word in words[1:])


@attrs.define
class VirtualAudio:
    """Handle on the running virtual device, with helpers to play into it and to kill it."""

    env: dict[str, str]
    runtime_dir: Path

    def pid(self) -> int:
        return int((self.runtime_dir / "pulse" / "pid").read_text().strip())

    def start(self) -> None:
        _script("start")

    def is_running(self) -> bool:
        return _script("status", check=False).returncode == 0

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Kill the server the hard way (as a crash would) and wait until it is gone."""
        pid = self.pid()
        os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return pid
            if ") Z" in stat:  # a zombie: dead, just not reaped yet
                return pid
            time.sleep(0.02)
        pytest.fail(f"pulseaudio (pid {pid}) did not die after {sig.name}", pytrace=False)

    async def play(self, samples: np.ndarray, sample_rate: int = 44100) -> None:
        """Play float32 samples, shape (frames,) or (frames, channels), into the sink.

        Returns once pacat has drained them. pacat's default 2 s buffer holds a short tone
        whole: with a small one (--latency-msec=20) a busy CI machine makes it underrun,
        which puts silence into the middle of the tone (seen here about one run in eight).
        """
        data = np.asarray(samples, dtype=np.float32)
        channels = 1 if data.ndim == 1 else data.shape[1]
        await trio.run_process(
            [
                "pacat",
                "--playback",
                f"--device={SINK}",
                "--raw",
                "--format=float32le",
                f"--rate={sample_rate}",
                f"--channels={channels}",
            ],
            stdin=data.astype("<f4").tobytes(),
            capture_stderr=True,
        )


def tone(
    frequency: float, amplitude: float, seconds: float, sample_rate: int = 44100
) -> np.ndarray:
    """A sine with 10 ms raised-cosine fades, float32, shape (frames,)."""
    frames = int(seconds * sample_rate)
    t = np.arange(frames) / sample_rate
    wave_ = amplitude * np.sin(2 * math.pi * frequency * t)
    fade = min(frames // 2, int(0.01 * sample_rate))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, fade))
    wave_[:fade] *= ramp
    wave_[frames - fade :] *= ramp[::-1]
    return wave_.astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 44100) -> Path:
    """16-bit PCM WAV with the stdlib ``wave`` module (for ``paplay``)."""
    data = np.asarray(samples, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = np.clip(np.round(data * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def virtual_audio() -> Iterator[VirtualAudio]:
    """The PulseAudio null sink, running, with this process pointed at it."""
    was_running = _script("status", check=False).returncode == 0
    if not was_running:
        _script("start")
    env = _client_env()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    if "sounddevice" in sys.modules:
        # PortAudio took its snapshot without the server: make it look again.
        from phase4_trio.capture.devices import reinitialize_portaudio

        reinitialize_portaudio()
    try:
        yield VirtualAudio(env=env, runtime_dir=Path(env["XDG_RUNTIME_DIR"]))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not was_running:
            _script("stop", check=False)
