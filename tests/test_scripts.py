"""The README's first command, scripts/quickstart, and the set-up it relies on."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / ".venv" / ".phase4-installed"


def test_bootstrap_a_second_time_is_silent_and_quick() -> None:
    if not STAMP.exists():
        pytest.skip("no .venv set up by scripts/bootstrap here (nox or another venv runs this)")
    for mode in ([], ["--run"]):
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "scripts/bootstrap", *mode],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert (result.stdout, result.stderr) == ("", ""), mode
        assert time.monotonic() - started < 5, mode


def test_bootstrap_refuses_an_unknown_option() -> None:
    result = subprocess.run(
        ["bash", "scripts/bootstrap", "--frobnicate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 64
    assert result.stderr.startswith("usage: ")


@pytest.mark.slow
def test_quickstart_falls_back_to_the_tone_and_passes_its_arguments_on(tmp_path: Path) -> None:
    """No sound server at all (and none to find): the tone, on the port given to quickstart."""
    if not STAMP.exists():
        pytest.skip("no .venv set up by scripts/bootstrap here (nox or another venv runs this)")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHASE4_", "PULSE_"))}
    env |= {"PULSE_SERVER": f"unix:{runtime}/none", "XDG_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen(
        ["bash", "scripts/quickstart", "--ws", "127.0.0.1:0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        assert line.startswith("phase4: page http://127.0.0.1:"), line
        assert "source tone:440:0.5" in line
        with urllib.request.urlopen(line.split()[2], timeout=5) as response:
            assert b"<canvas" in response.read()
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=10) == 0
        errors = process.stderr.read()
        assert errors.startswith(
            "quickstart: no working input device, using the tone source (--source tone:440)\n"
        ), errors
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
