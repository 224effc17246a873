"""Device listing and selection against the real PortAudio, on the PulseAudio virtual device;
``phase4 devices`` and device errors through the real CLI, as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from audio_fixtures import VirtualAudio, virtual_audio
from phase4_trio.capture.devices import DeviceInfo, list_input_devices, resolve_device
from phase4_trio.errors import Phase4Error

__all__ = ["virtual_audio"]  # the fixture, imported (tests/conftest.py is not ours to edit)

pytestmark = [pytest.mark.audio]


def run(
    args: list[str], env: dict[str, str] | None = None, *, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m phase4_trio ARGS`` (or ``python -c CODE ARGS``) with this environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    environ.update(env or {})
    command = (
        [sys.executable, "-c", code, *args]
        if code
        else [sys.executable, "-m", "phase4_trio", *args]
    )
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environ, check=False
    )


def no_server_env(tmp_path: Path) -> dict[str, str]:
    """An environment where PulseAudio is nowhere to be found (and none gets autospawned)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    conf = tmp_path / "client.conf"
    conf.write_text("autospawn = no\n")
    return {
        "XDG_RUNTIME_DIR": str(runtime),
        "PULSE_SERVER": f"unix:{runtime}/nothing-here",
        "PULSE_CLIENTCONFIG": str(conf),
    }


# ------------------------------------------------------------------ phase4 devices


def test_devices_json_lists_the_virtual_device(virtual_audio: VirtualAudio) -> None:
    result = run(["devices", "--json"])
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)
    by_name = {d["name"]: d for d in devices}
    assert {"pulse", "default"} <= set(by_name), devices
    for device in devices:
        assert set(device) == {
            "index",
            "name",
            "hostapi",
            "max_input_channels",
            "default_samplerate",
            "default",
        }
        assert device["max_input_channels"] > 0
    assert by_name["pulse"]["hostapi"] == "ALSA"
    assert by_name["pulse"]["default_samplerate"] == 44100.0
    assert [d["name"] for d in devices if d["default"]] == ["default"]


def test_devices_table(virtual_audio: VirtualAudio) -> None:
    result = run(["devices"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["index", "name", "host", "API", "inputs", "default", "rate"]
    default_rows = [line for line in lines[1:] if line.startswith("*")]
    assert len(default_rows) == 1
    assert default_rows[0].split()[2] == "default"
    assert any(line.split()[1] == "pulse" and "44100 Hz" in line for line in lines[1:])


def test_the_virtual_device_is_found_without_its_environment(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """Right after `scripts/virtual-audio start`, without `eval "$(... env)"`: the CLI finds
    the server in its runtime dir by itself, lists it, says so, and can record from it."""
    session = tmp_path / "session"  # a login session without a sound server of its own
    session.mkdir(mode=0o700)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PULSE_SERVER", "PULSE_CLIENTCONFIG") and not key.startswith("PHASE4_")
    }
    env |= {"XDG_RUNTIME_DIR": str(session), "VIRTUAL_AUDIO_DIR": str(virtual_audio.runtime_dir)}

    def bare(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "phase4_trio", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    listing = bare(["devices", "--json"])
    assert listing.returncode == 0, listing.stderr
    assert {"pulse", "default"} <= {d["name"] for d in json.loads(listing.stdout)}
    table = bare(["devices"])
    assert table.returncode == 0, table.stderr
    assert "default" in table.stdout
    assert table.stderr == (
        f"phase4: using the virtual device of scripts/virtual-audio ({virtual_audio.runtime_dir});"
        f" play sound into it with: PULSE_SERVER=unix:{virtual_audio.runtime_dir}/pulse/native"
        " paplay -d vsink FILE.wav\n"
    )
    out = tmp_path / "probe.wav"
    recorded = bare(["record", str(out), "--seconds", "0.2"])
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("phase4: recorded 0.20 s (8820 frames, 44100 Hz")
    engine = subprocess.Popen(
        [sys.executable, "-m", "phase4_trio", "run", "--ws", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert engine.stdout is not None and engine.stderr is not None
        first = engine.stdout.readline()
        assert first.startswith("phase4: page http://127.0.0.1:"), first
        assert re.search(r"  source device \d+ 'default' \(ALSA\)  \(Ctrl-C stops\)$", first), first
    finally:
        engine.send_signal(signal.SIGINT)
        assert engine.wait(timeout=10) == 0
    # the same note as `devices`, in the log: where the sound comes from
    assert table.stderr.removeprefix("phase4: ").strip() in engine.stderr.read()


def test_devices_without_any_input_says_what_to_do(tmp_path: Path) -> None:
    env = no_server_env(tmp_path)
    table = run(["devices"], env)
    assert table.returncode == 0
    assert table.stdout == ""
    assert "no audio input device found" in table.stderr
    assert "--source tone:440" in table.stderr
    listing = run(["devices", "--json"], env)
    assert listing.returncode == 0
    assert json.loads(listing.stdout) == []


def test_run_without_any_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run(["run", "--ws", "127.0.0.1:0"], no_server_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "phase4: no audio input device found; plug in a microphone, start the virtual device "
        "(scripts/virtual-audio start, see docs/capture.md) or use a synthetic source: "
        "--source tone:440"
    ]


def test_run_with_an_unknown_device_is_one_line_and_exit_2(virtual_audio: VirtualAudio) -> None:
    result = run(["run", "--device", "no-such-mic", "--ws", "127.0.0.1:0"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("phase4: no input device matches 'no-such-mic'; input devices: ")
    assert "'pulse' (ALSA)" in lines[0]


MISSING_PORTAUDIO = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class NoPortAudio(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    sys.meta_path.insert(0, NoPortAudio())
    from phase4_trio.cli import main
    raise SystemExit(main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize(
    "args", [["devices"], ["devices", "--json"], ["run", "--ws", "127.0.0.1:0"]]
)
def test_missing_portaudio_names_the_package(args: list[str]) -> None:
    """sounddevice raises OSError on import when libportaudio cannot be loaded."""
    result = run(args, code=MISSING_PORTAUDIO)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PortAudio library is not installed" in lines[0]
    assert "apt-get install libportaudio2" in lines[0]
    assert result.stdout == ""


def test_portaudio_reinitialisation_finds_a_server_started_later(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    """PortAudio snapshots devices at import; reinitialize_portaudio() makes it look again."""
    code = textwrap.dedent(
        """
        import json, os, sys
        from phase4_trio.capture.devices import list_input_devices, reinitialize_portaudio
        before = [d.name for d in list_input_devices()]
        os.environ.update(json.loads(sys.argv[1]))
        unchanged = [d.name for d in list_input_devices()]
        reinitialize_portaudio()
        after = [d.name for d in list_input_devices()]
        print(json.dumps([before, unchanged, after]))
        """
    )
    result = run([json.dumps(virtual_audio.env)], no_server_env(tmp_path), code=code)
    assert result.returncode == 0, result.stderr
    before, unchanged, after = json.loads(result.stdout)
    assert before == unchanged == []
    assert {"pulse", "default"} <= set(after)


# ------------------------------------------------------------------ resolve_device


def _named(name: str) -> DeviceInfo:
    return next(d for d in list_input_devices() if d.name == name)


def test_resolve_by_case_insensitive_substring(virtual_audio: VirtualAudio) -> None:
    assert resolve_device("PULS").name == "pulse"
    assert resolve_device("efaul").name == "default"


def test_resolve_by_index_and_default(virtual_audio: VirtualAudio) -> None:
    pulse = _named("pulse")
    assert resolve_device(pulse.index) == pulse
    assert resolve_device(str(pulse.index)) == pulse
    default = resolve_device(-1)
    assert default.default
    assert default.name == "default"


def test_resolve_ambiguous_lists_the_candidates(virtual_audio: VirtualAudio) -> None:
    with pytest.raises(Phase4Error) as caught:
        resolve_device("u")  # in both "pulse" and "default"
    message = str(caught.value)
    assert message.startswith("device 'u' is ambiguous, it matches ")
    assert "'pulse' (ALSA)" in message
    assert "'default' (ALSA)" in message


def test_resolve_bad_index(virtual_audio: VirtualAudio) -> None:
    with pytest.raises(
        Phase4Error, match=r"no input device with index 999; input devices: .*'pulse'"
    ):
        resolve_device(999)


def test_resolve_bad_name(virtual_audio: VirtualAudio) -> None:
    with pytest.raises(Phase4Error, match=r"^no input device matches 'no-such-mic'; .*'pulse'"):
        resolve_device("no-such-mic")
    with pytest.raises(Phase4Error, match=r"^no input device matches '²'"):
        resolve_device("²")  # isdigit() says yes, int() says no: a name, not an index
    with pytest.raises(Phase4Error, match="must not be empty"):
        resolve_device("   ")


def test_exact_name_wins_over_substring_matches() -> None:
    """'pulse' is a substring of 'pulse monitor' too; an exact name picks one device."""

    class FakePortAudio:
        """Just enough of sounddevice's query API (no such devices exist on this setup)."""

        class default:
            device = (1, 1)

        @staticmethod
        def query_hostapis() -> list[dict[str, object]]:
            return [{"name": "ALSA"}]

        @staticmethod
        def query_devices() -> list[dict[str, object]]:
            def dev(index: int, name: str, inputs: int) -> dict[str, object]:
                return {
                    "index": index,
                    "name": name,
                    "hostapi": 0,
                    "max_input_channels": inputs,
                    "default_samplerate": 48000.0,
                }

            return [dev(0, "Pulse", 2), dev(1, "pulse monitor", 2), dev(2, "speaker", 0)]

    fake = FakePortAudio()
    assert resolve_device("pulse", fake).index == 0  # type: ignore[arg-type]
    assert resolve_device("monitor", fake).index == 1  # type: ignore[arg-type]
    with pytest.raises(Phase4Error, match="no input device with index 2"):
        resolve_device(2, fake)  # type: ignore[arg-type]  # output-only
