"""Host mode: ``phase4 run --events ndjson [--stop-on-stdin-close]`` driven as a subprocess by
a host app would: stdout read line by line, stdin a pipe the host holds."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio_websocket

ROOT = Path(__file__).resolve().parent.parent


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    env.update(extra)
    return env


class Host:
    """The app side: start phase4, read its events, hold its stdin."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stdout = b""
        self.stderr = b""
        self._buffer = b""

    async def event(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        with trio.fail_after(30):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(65536)
                assert chunk, f"stdout closed; stderr: {await self.rest_of_stderr()}"
                self._buffer += chunk
                self.stdout += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        event: dict[str, Any] = orjson.loads(line)
        return event

    async def rest_of_stderr(self) -> str:
        assert self.process.stderr is not None
        with trio.move_on_after(20):
            while chunk := await self.process.stderr.receive_some(65536):
                self.stderr += chunk
        return self.stderr.decode(errors="replace")

    async def finish(self) -> tuple[list[dict[str, Any]], int, str]:
        """The remaining events, the exit status and stderr, once phase4 has exited."""
        events = []
        assert self.process.stdout is not None
        with trio.fail_after(20):
            while chunk := await self.process.stdout.receive_some(65536):
                self._buffer += chunk
                self.stdout += chunk
            stderr = await self.rest_of_stderr()
            code = await self.process.wait()
        for line in self._buffer.splitlines():
            events.append(orjson.loads(line))
        # Every line of stdout, from the first, is one JSON object: nothing else is printed.
        for line in self.stdout.splitlines():
            assert isinstance(orjson.loads(line), dict), line
        return events, code, stderr


@asynccontextmanager
async def reaped(process: trio.Process) -> AsyncIterator[trio.Process]:
    """The process, killed on the way out if a failed test left it running."""
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


@asynccontextmanager
async def start(*args: str, **env: str) -> AsyncIterator[Host]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "phase4_trio", "run", "--events", "ndjson", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ(**env),
        cwd=ROOT,
    )
    async with reaped(process):
        yield Host(process)


async def test_ready_clients_and_a_clean_stop_when_stdin_closes() -> None:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as osc_peer:
        await osc_peer.bind(("127.0.0.1", 0))
        osc_port = osc_peer.getsockname()[1]
        async with start(
            "--source",
            "tone:1000",
            "--ws",
            "127.0.0.1:0",
            "--osc",
            f"127.0.0.1:{osc_port}",
            "--stop-on-stdin-close",
        ) as host:
            ready = await host.event()
            assert ready["event"] == "ready"
            port = ready["ports"][0]["port"]
            assert port > 0
            assert ready["ports"] == [
                {"name": "http", "protocol": "tcp", "host": "127.0.0.1", "port": port}
            ]
            assert ready["page"] == f"http://127.0.0.1:{port}/"
            assert ready["websocket"] == f"ws://127.0.0.1:{port}/ws"
            assert ready["outputs"] == [{"name": "osc", "target": f"127.0.0.1:{osc_port}"}]
            assert ready["source"] == "tone:1000:0.5"
            assert (ready["sampleRate"], ready["blockSize"], ready["channels"]) == (44100, 256, 1)
            assert ready["pid"] == host.process.pid

            async with trio_websocket.open_websocket_url(ready["websocket"]) as first:
                await first.get_message()  # the page's stream is live
                assert (await host.event())["count"] == 1
                async with trio_websocket.open_websocket_url(ready["websocket"]) as second:
                    await second.get_message()
                    joined = await host.event()
                    assert (joined["event"], joined["state"], joined["count"]) == (
                        "client",
                        "connected",
                        2,
                    )
                left = await host.event()
                assert (left["state"], left["count"]) == ("disconnected", 1)
            assert (await host.event())["count"] == 0

            assert host.process.stdin is not None
            await host.process.stdin.aclose()  # the host app has gone
            events, code, stderr = await host.finish()
    assert code == 0, stderr
    assert [e["event"] for e in events] == ["shutdown"]
    assert events[0]["exitCode"] == 0
    assert events[0]["reason"] == "stdin closed"
    assert "phase4: page" not in host.stdout.decode()
    assert "Traceback" not in stderr


async def test_sigterm_ends_with_a_shutdown_event() -> None:
    async with start("--source", "noise", "--ws", "127.0.0.1:0") as host:
        assert (await host.event())["event"] == "ready"
        host.process.send_signal(signal.SIGTERM)
        events, code, stderr = await host.finish()
    assert code == 0, stderr
    assert events == [
        {"event": "shutdown", "time": events[0]["time"], "exitCode": 0, "reason": "signal SIGTERM"}
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--osc", "nonexistent.invalid:9000"], ["phase4: output.osc.targets: cannot resolve"]),
        (
            ["--wled", "localhost:99999"],
            ["phase4: output.wled.targets: port 99999 is outside 0-65535"],
        ),
        (
            ["--buffer-size", "300", "--osc", "239.0.0.1:9000"],
            ["phase4: input.buffer_size:"],  # a config error stops before any target is checked
        ),
        (
            ["--osc", "239.0.0.1:9000"],
            ["phase4: output.osc.targets: 239.0.0.1:9000 is a multicast group"],
        ),
    ],
    ids=["unresolvable", "port out of range", "config error", "multicast for OSC"],
)
async def test_a_bad_start_is_an_error_event_with_the_stderr_line_then_shutdown(
    args: list[str], expected: list[str]
) -> None:
    async with start("--source", "tone:440", "--ws", "127.0.0.1:0", *args) as host:
        events, code, stderr = await host.finish()
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == len(expected), stderr
    errors, (last,) = events[:-1], events[-1:]
    assert [e["message"] for e in errors] == lines  # the same one line, word for word
    assert all(e["event"] == "error" and e["exitCode"] == 2 for e in errors)
    for line, start_of_line in zip(lines, expected, strict=True):
        assert line.startswith(start_of_line), line
    assert (last["event"], last["exitCode"], last["reason"]) == ("shutdown", 2, "error")


async def test_two_config_problems_are_two_error_events() -> None:
    async with start(
        "--source", "tone:440", **{"PHASE4_INPUT__SAMPLE_RATE": "fast", "PHASE4_DSP__ENABLED": "7"}
    ) as host:
        events, code, stderr = await host.finish()
    assert code == 2
    assert [e["message"] for e in events if e["event"] == "error"] == stderr.strip().splitlines()
    assert len(stderr.strip().splitlines()) == 2


async def test_stop_on_stdin_close_without_events_keeps_the_page_line() -> None:
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "phase4_trio",
            "run",
            "--source",
            "tone:440",
            "--ws",
            "127.0.0.1:0",
            "--stop-on-stdin-close",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ(),
    )
    async with reaped(process):
        assert process.stdout is not None and process.stdin is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(1)
        assert line.startswith(b"phase4: page http://127.0.0.1:")
        await process.stdin.send_all(b"anything the host writes is ignored\n")
        await trio.sleep(0.3)
        assert process.returncode is None
        await process.stdin.aclose()
        with trio.fail_after(20):
            assert await process.wait() == 0
        assert await process.stdout.receive_some(65536) == b""


# ------------------------------------------------------------------ the capture device


def virtual_audio(runtime: Path, *args: str) -> str:
    """scripts/virtual-audio on a private server in ``runtime`` (never the shared one)."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "virtual-audio"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VIRTUAL_AUDIO_DIR": str(runtime)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def kill_server(runtime: Path) -> None:
    pid = int((runtime / "pulse" / "pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)


@pytest.mark.audio
@pytest.mark.slow
async def test_device_lost_and_recovered_when_the_sound_server_dies_and_returns() -> None:
    """A private PulseAudio null sink: killed while phase4 captures from it, then restarted."""
    runtime = Path(tempfile.mkdtemp(prefix="p4-host-", dir="/tmp"))  # short: a socket path
    try:
        virtual_audio(runtime, "start")
        words = shlex.split(virtual_audio(runtime, "env").strip())
        client = dict(word.split("=", 1) for word in words[1:])
        async with start("--source", "device", "--ws", "127.0.0.1:0", **client) as host:
            ready = await host.event()
            assert ready["event"] == "ready"
            assert ready["source"].startswith("device ")
            await trio.sleep(0.5)
            kill_server(runtime)
            lost = await host.event()
            assert (lost["event"], lost["state"]) == ("device", "lost")
            assert lost["reason"]
            await trio.to_thread.run_sync(virtual_audio, runtime, "start")
            recovered = await host.event()
            assert (recovered["event"], recovered["state"]) == ("device", "recovered")
            assert "reason" not in recovered
            host.process.send_signal(signal.SIGTERM)
            events, code, stderr = await host.finish()
        assert code == 0, stderr
        assert [e["event"] for e in events] == ["shutdown"]
    finally:
        virtual_audio(runtime, "stop")
        shutil.rmtree(runtime, ignore_errors=True)
