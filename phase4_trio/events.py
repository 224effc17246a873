"""Host mode (``phase4 run --events ndjson``): one JSON object per line on stdout.

An app that embeds the engine as a child process needs to know when it is ready and where
(``--ws 127.0.0.1:0`` picks a free port: the app learns it from ``ready``), when browsers
come and go, when the capture device is lost and back, why it failed and that it is gone.
Logs stay on stderr; in this mode stdout carries these lines and nothing else. The event
names and fields are listed in docs/protocol.md#host-mode.

The event builders are pure (plain data in, a ``dict`` out); :class:`HostEvents` writes them
from its own thread, one ``write`` and ``flush`` per line so a reader never sees half an event.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from . import __version__

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

FORMATS = ("ndjson",)
# Lines that may wait for a slow reader; far more than a run produces unless clients churn.
QUEUE = 1024
Event = dict[str, Any]


def _event(name: str, **fields: Any) -> Event:
    return {"event": name, "time": time.time(), **fields}


def ready(
    *,
    page: str | None,
    websocket: str | None,
    ports: Sequence[Event],
    outputs: Sequence[Event],
    source: str,
    sample_rate: int,
    block_size: int,
    channels: int,
) -> Event:
    """The engine runs and audio flows: where to connect, and what it listens to."""
    return _event(
        "ready",
        version=__version__,
        pid=os.getpid(),
        page=page,
        websocket=websocket,
        ports=list(ports),
        outputs=list(outputs),
        source=source,
        sampleRate=sample_rate,
        blockSize=block_size,
        channels=channels,
    )


def ready_from(engine: Engine) -> Event:
    """The ``ready`` event of a running engine."""
    config = engine.config
    urls = engine.urls
    ports = []
    if engine.web is not None:
        ports.append(port("http", config.transport.websocket_address.host, engine.web.port))
    outputs = []
    if config.transport.udp_enabled:
        outputs.append(output("udp", str(config.transport.udp_send_address)))
    if config.output.nats.enabled:
        outputs += [output("nats", server) for server in config.output.nats.servers]
    for sender in engine.outputs:
        outputs += [output(sender.name, target.target) for target in sender.stats.targets]
    return ready(
        page=urls[0] if urls else None,
        websocket=urls[1] if urls else None,
        ports=ports,
        outputs=outputs,
        source=engine.source.description,
        sample_rate=engine.sample_rate,
        block_size=engine.block_size,
        channels=engine.channels,
    )


def port(name: str, host: str, number: int, protocol: str = "tcp") -> Event:
    """A port the engine listens on."""
    return {"name": name, "protocol": protocol, "host": host, "port": number}


def output(name: str, target: str) -> Event:
    """Somewhere the engine sends to."""
    return {"name": name, "target": target}


def client(*, connected: bool, count: int) -> Event:
    """A WebSocket client came or went; ``count`` is how many are connected now."""
    return _event("client", state="connected" if connected else "disconnected", count=count)


def device(*, lost: bool, reason: str = "") -> Event:
    """The capture device stopped (the engine keeps trying to reopen it) or is back."""
    if lost:
        return _event("device", state="lost", reason=reason)
    return _event("device", state="recovered")


def error(message: str, exit_code: int) -> Event:
    """A failure, with the same one-line text as on stderr, and the exit status it causes."""
    return _event("error", message=message, exitCode=exit_code)


def shutdown(exit_code: int, reason: str) -> Event:
    """The last line: the engine has stopped and the process exits with ``exit_code``."""
    return _event("shutdown", exitCode=exit_code, reason=reason)


def encode(event: Event) -> bytes:
    return orjson.dumps(event) + b"\n"


class HostEvents:
    """Writes events to stdout from a thread of its own, once :meth:`start`-ed.

    The engine only queues a line: an app that reads its stdout slowly, or not at all, must not
    stall the audio path when the pipe is full. Up to :data:`QUEUE` lines wait; beyond that,
    events are dropped (logged once). :meth:`close` waits, at most ``timeout`` seconds, for the
    last ones (the ``shutdown`` event) to be written. A closed pipe stops the writing (logged
    once); the engine goes on. ``stop_reason`` is what the ``shutdown`` event says stopped the
    engine, set by whoever stops it (a signal, stdin closing, an error).
    """

    def __init__(self) -> None:
        self._lines: queue.Queue[bytes | None] | None = None
        self._writer: threading.Thread | None = None
        self._full = False
        self.stop_reason = ""

    @property
    def enabled(self) -> bool:
        return self._lines is not None

    def start(self, fd: int) -> None:
        """Write to file descriptor ``fd`` (stdout's), unbuffered: nothing is left half-written
        in a Python buffer if the reader goes away."""
        self._lines = queue.Queue(QUEUE)
        self._writer = threading.Thread(
            target=_write_lines, args=(self._lines, fd), name="phase4-events", daemon=True
        )
        self._writer.start()

    def emit(self, event: Event) -> None:
        if self._lines is None:
            return
        try:
            self._lines.put_nowait(encode(event))
        except queue.Full:
            if not self._full:
                log.warning("host events dropped: nobody reads stdout")
            self._full = True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer; returns within about ``timeout``."""
        lines, writer = self._lines, self._writer
        if lines is None or writer is None:
            return
        self._lines = None
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            lines.put(None, timeout=timeout)
        writer.join(max(0.0, deadline - time.monotonic()))

    def client(self, connected: bool, count: int) -> None:
        self.emit(client(connected=connected, count=count))

    def device(self, lost: bool, reason: str) -> None:
        self.emit(device(lost=lost, reason=reason))


def _write_lines(lines: queue.Queue[bytes | None], fd: int) -> None:
    while (line := lines.get()) is not None:
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as failure:  # a closed pipe, or a closed descriptor
            log.warning("host events stopped: stdout is gone (%s)", failure)
            return
