"""Faults the engine must survive or end cleanly on: port in use, SIGTERM during start-up, a
task that fails, a processor exception, a disk that fills while recording.

Device stream errors and a PulseAudio restart are the capture tests' (tests/test_capture_device.py);
the recorder's own write-failure path (RLIMIT_FSIZE) is tests/test_record_cli.py's. Here a
real full disk (a 64 KiB tmpfs) is driven through ``run --record`` with a client streaming.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio_websocket

from engine_helpers import (
    catches_sigterm,
    make_config,
    read_ws_url,
    receive_json,
    running_engine,
    stop_cleanly,
    ws_url,
)
from phase4_trio import cli
from phase4_trio.capture import read_wav
from phase4_trio.engine import Engine
from phase4_trio.pipeline.processor import Processor

ROOT = Path(__file__).resolve().parent.parent


def environment(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    environ.update(extra)
    return environ


def phase4(*args: str) -> list[str]:
    return [sys.executable, "-m", "phase4_trio", *args]


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    """Run a Python script (an engine with a fault injected) to completion."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
        cwd=ROOT,
    )


def phase4_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("phase4")}


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


# ------------------------------------------------------------------ port in use


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_port_in_use_is_one_line_and_exit_2(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        busy = socket.socket(family, socket.SOCK_STREAM)
        busy.bind((host, 0))
    except OSError:
        pytest.skip(f"{host} not available here")
    with busy:
        busy.listen()
        port = busy.getsockname()[1]
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        result = subprocess.run(
            phase4("run", "--source", "tone:440", "--ws", address),
            capture_output=True,
            text=True,
            timeout=60,
            env=environment(),
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"phase4: transport.websocket_address: cannot listen on {address}: address already in"
        " use (another phase4?); pick another port, e.g. --ws "
    ), lines[0]


# ------------------------------------------------------------------ SIGTERM during start-up


def start_cli(*extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        phase4("run", "--source", "tone:440", "--ws", "127.0.0.1:0", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )


def test_sigterm_right_after_spawn_leaves_nothing_behind() -> None:
    """Before Python has run a line of phase4 no handler exists yet: the kernel's default
    ends the process (status -SIGTERM). It must not print, hang or leave a listener."""
    process = start_cli()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert stdout == ""
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_sigterm_anywhere_in_start_up_exits_0_without_a_traceback() -> None:
    """SIGTERM at 14 points spread over start-up (imports, config, engine build, binding,
    starting the tasks). Once phase4's handler is installed, every one must end with exit 0
    and no traceback: the handler never raises inside an import (where an exception once
    crashed the interpreter with SIGSEGV) and hands over to Trio once Trio runs."""
    process = start_cli()
    started = time.monotonic()
    assert process.stdout is not None
    process.stdout.readline()  # the page URL: start-up is over
    ready = time.monotonic() - started
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    outcomes = []
    for i in range(14):
        delay = ready * (0.05 + 1.1 * i / 13)
        process = start_cli()
        time.sleep(delay)
        installed = catches_sigterm(process.pid)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
        outcomes.append((round(delay, 3), installed, process.returncode))
        assert "Traceback" not in stderr, (delay, stderr)
        if installed:
            assert process.returncode == 0, (delay, stderr)
        else:
            assert process.returncode in (0, -signal.SIGTERM), (delay, stderr)
            assert stdout == ""
    assert sum(1 for _, installed, _ in outcomes if installed) >= 10, outcomes


async def test_sigterm_while_the_engine_is_starting(capsys: pytest.CaptureFixture[str]) -> None:
    """A real SIGTERM to this process while the engine is half-started (listening, tasks
    running, the source still opening): ``_run_until_signal`` returns within a bound, prints
    no page URL, and leaves no thread and no listening socket behind."""
    engine = Engine(make_config())
    original = engine.source.run
    opening = trio.Event()

    async def slow_source(bridge: Any, *, task_status: trio.TaskStatus[None]) -> None:
        opening.set()
        await trio.sleep(30)  # a device that takes its time to open
        await original(bridge, task_status=task_status)

    engine.source.run = slow_source  # type: ignore[method-assign]
    port = 0
    async with trio.open_nursery() as nursery:

        async def terminate() -> None:
            nonlocal port
            await opening.wait()
            assert engine.web is not None
            port = engine.web.port  # listening already: bound before any task starts
            os.kill(os.getpid(), signal.SIGTERM)

        nursery.start_soon(terminate)
        with trio.fail_after(10):
            await cli._run_until_signal(engine)
    assert "phase4: page" not in capsys.readouterr().out
    assert port and port_is_closed(port)
    assert not phase4_threads()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupt_trio_delivers_inside_a_nursery_exits_0(signum: signal.Signals) -> None:
    """A signal that lands after ``trio.run`` starts but before the engine's signal receiver
    is open is delivered by Trio as KeyboardInterrupt; inside a nursery that arrives wrapped in
    an ExceptionGroup. Found by the start-up sweep above (exit 1, "engine failed", traceback);
    made deterministic here by signalling from inside a nursery in that window."""
    script = (
        "import os, signal, sys, trio\n"
        "from phase4_trio import cli\n"
        "original = cli._run_until_signal\n"
        "async def early(engine):\n"
        "    async with trio.open_nursery():\n"
        f"        os.kill(os.getpid(), {int(signum)})\n"
        "        await trio.sleep(5)\n"
        "    await original(engine)\n"
        "cli._run_until_signal = early\n"
        "sys.argv = ['phase4', 'run', '--source', 'tone:440', '--ws', '127.0.0.1:0']\n"
        "from phase4_trio import _entry\n"
        "sys.exit(_entry.main())\n"
    )
    result = run_script(script)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "engine failed" not in result.stderr
    assert result.stdout == ""


# ------------------------------------------------------------------ a failing task


class Boom(RuntimeError):
    pass


def inject(engine: Engine, task: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make one of the engine's tasks fail half a second into the run."""
    if task == "router":
        route = engine.router.route
        calls = 0

        def failing_route(spectra: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 80:
                raise Boom("router: injected")
            route(spectra)

        engine.router.route = failing_route  # type: ignore[method-assign]
    elif task == "processor":
        run = Processor.run

        async def failing_run(self: Processor, blocks: Any, router: Any) -> None:
            with trio.move_on_after(0.5):
                await run(self, blocks, router)
            raise Boom("processor: injected")

        monkeypatch.setattr(Processor, "run", failing_run)
    elif task == "stats":

        async def failing_stats() -> None:
            await trio.sleep(0.5)
            raise Boom("stats: injected")

        engine._stats_loop = failing_stats  # type: ignore[method-assign]
    elif task == "capture":
        source_run = engine.source.run

        async def failing_source(bridge: Any, *, task_status: trio.TaskStatus[None]) -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(source_run, bridge)
                task_status.started()
                await trio.sleep(0.5)
                raise OSError(errno.EIO, "capture: injected")

        engine.source.run = failing_source  # type: ignore[method-assign]
    elif task == "websocket":
        assert engine.web is not None
        web_run = engine.web.run

        async def failing_web(*, task_status: trio.TaskStatus[None]) -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(web_run)
                task_status.started()
                await trio.sleep(0.5)
                raise Boom("websocket: injected")

        engine.web.run = failing_web  # type: ignore[method-assign]


@pytest.mark.parametrize("task", ["router", "processor", "stats", "capture", "websocket"])
async def test_a_failing_task_ends_the_engine_with_its_name(
    task: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Engine.run raises within a bound (never hangs), the log names the task, a connected
    client sees its connection close, and no thread or listening socket is left."""
    caplog.set_level(logging.ERROR)
    engine = Engine(make_config())
    inject(engine, task, monkeypatch)
    closed = trio.Event()

    async def client() -> None:
        try:
            async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
                while True:
                    await ws.get_message()
        except (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError):
            closed.set()

    started = time.monotonic()
    port = 0

    async def run_until_it_fails() -> None:
        nonlocal port
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            assert engine.web is not None
            port = engine.web.port
            nursery.start_soon(client)

    injected = pytest.RaisesExc((Boom, OSError), match="injected")
    with trio.fail_after(10), pytest.RaisesGroup(injected, flatten_subgroups=True):
        await run_until_it_fails()
    assert time.monotonic() - started < 10
    assert closed.is_set()
    assert f"task {task!r} failed; shutting the engine down" in caplog.text
    assert port and port_is_closed(port)
    assert not phase4_threads()


def test_a_failing_task_exits_1_through_the_cli() -> None:
    """The same through the real command: routing fails (UDP subscribes, so the engine does
    not rest), the process logs the task and exits 1 within a bound."""
    script = (
        "import sys\n"
        "from phase4_trio.pipeline.router import Router\n"
        "route = Router.route\n"
        "def failing(self, spectra):\n"
        "    if any(spectrum.frame_count == 100 for spectrum in spectra):\n"
        "        raise RuntimeError('injected router failure')\n"
        "    route(self, spectra)\n"
        "Router.route = failing\n"
        "from phase4_trio.cli import main\n"
        "sys.exit(main(['run', '--source', 'tone:440', '--ws', '127.0.0.1:0',"
        " '--udp', '127.0.0.1:9']))\n"
    )
    started = time.monotonic()
    result = run_script(script)
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 30
    assert "task 'router' failed; shutting the engine down" in result.stderr
    assert "injected router failure" in result.stderr


# ------------------------------------------------------------------ processor exceptions


async def test_processor_exceptions_drop_only_their_frames() -> None:
    """Every third block makes the analysis raise for a second: those (with any block
    batched with them) are dropped and counted (``stage="processor_error"``), the rest
    stream; then it recovers. (tests/test_engine.py has the single-batch case.)"""
    config = make_config(transport={"client_queue": 1024})
    async with running_engine(config) as engine:
        processor = engine.processor
        assert processor is not None
        original = processor.analyse
        failing = True

        def flaky(blocks: Any) -> Any:
            if failing and any(block.index % 3 == 0 for block in blocks):
                raise FloatingPointError("injected")
            return original(blocks)

        processor.analyse = flaky  # type: ignore[method-assign]
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            counts = [(await receive_json(ws))["frameCount"] for _ in range(150)]
            failing = False
            after = [(await receive_json(ws))["frameCount"] for _ in range(60)]
        assert all(count % 3 != 0 for count in counts)
        assert any(count % 3 == 0 for count in after)
        errors = processor.stats.errors
        assert errors >= 50
        assert f'phase4_frames_dropped_total{{stage="processor_error"}} {errors}' in (
            engine.render_metrics()
        )


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real ENOSPC from the kernel, not a simulated one."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def wav_header_is_consistent(path: Path) -> tuple[int, int]:
    """(data bytes, file bytes) after checking RIFF and data sizes against the file."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    position = 12
    while position + 8 <= len(data):
        chunk, size = (
            data[position : position + 4],
            struct.unpack("<I", data[position + 4 : position + 8])[0],
        )
        if chunk == b"data":
            assert position + 8 + size == len(data)
            return size, len(data)
        position += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


@pytest.mark.slow
async def test_a_full_disk_while_recording_keeps_the_stream_and_a_valid_wav(
    tiny_disk: Path,
) -> None:
    path = tiny_disk / "take.wav"
    process = await trio.lowlevel.open_process(
        phase4("run", "--source", "tone:1000", "--ws", "127.0.0.1:0", "--record", str(path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(PHASE4_TRANSPORT__CLIENT_QUEUE="1024"),
    )
    assert process.stdout is not None and process.stderr is not None
    stderr = b""
    try:
        url = await read_ws_url(process)
        counts: list[int] = []
        dropped = 0
        async with trio_websocket.open_websocket_url(url) as ws:
            # 64 KiB of 16-bit mono at 44.1 kHz is ~0.74 s: stream well past the failure
            with trio.fail_after(30):
                while len(counts) < 172 * 3:
                    message = orjson.loads(await ws.get_message())
                    counts.append(message["frameCount"])
                    dropped = max(dropped, message["dropped"])
        assert counts == list(range(counts[0], counts[0] + len(counts))), "gap in frameCount"
        assert dropped == 0
        text = await stop_cleanly(process, stderr)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    failures = [line for line in text.splitlines() if "No space left on device" in line]
    assert len(failures) == 1, text  # logged once, not once per block
    data_bytes, file_bytes = wav_header_is_consistent(path)
    assert file_bytes <= 64 * 1024
    assert data_bytes % 2 == 0 and data_bytes > 44100  # over half a second made it to disk
    wav = read_wav(str(path))
    assert len(wav.frames) == data_bytes // 2


# ------------------------------------------------------------------ a crashing source thread


def crash_the_tone_thread(engine: Engine, after: int = 20) -> None:
    generator = engine.source.generator  # type: ignore[attr-defined]
    fill = generator.fill
    calls = 0

    def failing_fill(out: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == after:
            raise ValueError("injected: the generator broke")
        fill(out)

    generator.fill = failing_fill


async def test_a_crashing_source_thread_ends_the_engine() -> None:
    engine = Engine(make_config())

    async def run_until_it_fails() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            crash_the_tone_thread(engine)
            await trio.sleep_forever()

    broke = pytest.RaisesExc(ValueError, match="generator broke")
    with trio.fail_after(3), pytest.RaisesGroup(broke, flatten_subgroups=True):
        await run_until_it_fails()
