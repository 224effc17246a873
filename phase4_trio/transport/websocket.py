"""One WebSocket client: its options, its own queue, its own sender task.

A client never shares a queue or a task with another, so a client that stops reading only
fills its own queue; the router then drops (and counts, in the client's ``dropped``) its
oldest frames while everyone else streams on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import attrs
import trio
import trio_websocket

from ..pipeline.messages import Spectrum
from ..pipeline.router import Subscription
from . import wire_binary, wire_json
from .bands import reduce_spectrum

log = logging.getLogger(__name__)

FORMATS = ("json", "f32")
MAX_FPS = 1000.0


class OptionError(ValueError):
    """A query parameter the client got wrong; answered with HTTP 400 at the handshake."""


@attrs.frozen
class ClientOptions:
    """What a client asked for in its URL query (``?format=f32&fps=30&bins=64``)."""

    format: str = "json"
    fps: float | None = None
    bins: int | None = None
    flux: bool = True


def parse_options(query: str) -> ClientOptions:
    """Parse and check the query string; unknown or repeated parameters are errors."""
    try:
        fields = parse_qs(
            query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=8
        )
    except ValueError as error:
        raise OptionError(f"malformed query string: {error}") from None
    options: dict[str, object] = {}
    for name, values in fields.items():
        if len(values) != 1:
            raise OptionError(f"{name}: given more than once")
        value = values[0]
        if name == "format":
            if value not in FORMATS:
                raise OptionError(f"format: must be one of {', '.join(FORMATS)}; got {value!r}")
            options["format"] = value
        elif name == "fps":
            try:
                fps = float(value)
            except ValueError:
                raise OptionError(f"fps: expected a number, got {value!r}") from None
            if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
                raise OptionError(f"fps: must be within 0-{MAX_FPS:g}, got {value!r}")
            options["fps"] = fps
        elif name == "bins":
            if not value.isdigit() or not 1 <= int(value) <= 4096:
                raise OptionError(f"bins: expected a whole number 1-4096, got {value!r}")
            options["bins"] = int(value)
        elif name == "flux":
            if value not in ("0", "1"):
                raise OptionError(f"flux: expected 0 or 1, got {value!r}")
            options["flux"] = value == "1"
        else:
            raise OptionError(f"{name}: unknown parameter (known: format, fps, bins, flux)")
    return ClientOptions(**options)  # type: ignore[arg-type]


def encode_for(spectrum: Spectrum, options: ClientOptions, dropped: int) -> str | bytes:
    """The message a client with these options gets; shared work is cached on the spectrum."""
    if options.bins is not None:
        spectrum = reduce_spectrum(spectrum, options.bins)
    if options.format == "f32":
        return wire_binary.encode(spectrum, with_flux=options.flux, dropped=dropped)
    return wire_json.encode_message(spectrum, dropped)


@attrs.define
class ClientStats:
    sent: int = 0
    send_errors: int = 0


async def stream_to_client(
    connection: trio_websocket.WebSocketConnection,
    subscription: Subscription,
    options: ClientOptions,
    observe_latency: Callable[[float], None],
) -> ClientStats:
    """Send spectra until the client goes away; inbound messages are read and ignored."""
    stats = ClientStats()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_discard_inbound, connection, nursery.cancel_scope)
        interval = 1.0 / options.fps if options.fps else 0.0
        deadline = trio.current_time()
        receive = subscription.receive
        try:
            while True:
                spectrum = await receive.receive()
                if interval:
                    spectrum = subscription.take_latest(spectrum)
                await connection.send_message(encode_for(spectrum, options, subscription.dropped))
                stats.sent += 1
                observe_latency(time.time() - spectrum.capture_time)
                if interval:
                    deadline = max(deadline + interval, trio.current_time() - interval)
                    await trio.sleep_until(deadline)
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            nursery.cancel_scope.cancel()
    return stats


async def _discard_inbound(
    connection: trio_websocket.WebSocketConnection, scope: trio.CancelScope
) -> None:
    """Clients have nothing to tell us; reading keeps pings answered and notices the close."""
    try:
        while True:
            await connection.get_message()
    except trio_websocket.ConnectionClosed:
        scope.cancel()
