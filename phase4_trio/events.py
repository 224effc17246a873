"""Host mode (``phase4 run --events ndjson``): one JSON object per line on stdout.

An app that embeds the engine as a child process needs to know when it is ready and where
(``--ws 127.0.0.1:0`` picks a free port: the app learns it from ``ready``), when browsers
come and go, when the capture device is lost and back, why it failed and that it is gone.
Logs stay on stderr; in this mode stdout carries these lines and nothing else. The event
names and fields are listed in docs/protocol.md#host-mode.

The event builders are pure (plain data in, a ``dict`` out); :class:`HostEvents` writes them,
one ``write`` and ``flush`` per line so a reader never sees half an event. An app that
stopped reading (a closed pipe) costs one log line, and the events stop; the engine goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

from . import __version__

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

FORMATS = ("ndjson",)
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
    """Writes events to ``stream`` (stdout), or does nothing when ``stream`` is None.

    ``stop_reason`` is what the ``shutdown`` event says stopped the engine, set by whoever
    stops it (a signal, stdin closing, an error).
    """

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream
        self.stop_reason = ""

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def start(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def emit(self, event: Event) -> None:
        stream = self._stream
        if stream is None:
            return
        try:
            stream.write(encode(event))
            stream.flush()
        except (OSError, ValueError) as failure:  # a closed pipe, or a closed file
            self._stream = None
            log.warning("host events stopped: stdout is gone (%s)", failure)

    def client(self, connected: bool, count: int) -> None:
        self.emit(client(connected=connected, count=count))

    def device(self, lost: bool, reason: str) -> None:
        self.emit(device(lost=lost, reason=reason))
