"""Plain HTTP on the WebSocket's address: the page, its assets, ``/metrics`` and ``/healthz``.

Sans-I/O: :class:`HttpExchange` is one request and its response on one h11 connection (h11
parses the request and writes the response, status line, reason phrase and framing), and
:class:`HttpApp` routes a request to a :class:`Response`; the socket side lives in
:mod:`.server`. Assets are read once from the package at start-up into a name → bytes
table, so a request can only ever name a file that was shipped: there is no path to traverse.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from importlib import resources

import attrs
import h11

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_HEAD_BYTES = 16384


@attrs.frozen
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def header_list(self, date: str) -> list[tuple[str, str]]:
        return [
            ("Date", date),
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
            *self.headers,
        ]


def text(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode())


def load_assets(package: str = "phase4_trio.static") -> dict[str, Response]:
    """Every shipped static file, keyed by its URL path; ``/`` is ``index.html``."""
    assets: dict[str, Response] = {}
    for entry in resources.files(package).iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        assets["/" + name] = Response(200, entry.read_bytes(), CONTENT_TYPES[suffix])
    if "/index.html" in assets:
        assets["/"] = assets["/index.html"]
    return assets


@attrs.define
class HttpApp:
    """Routes GET/HEAD requests; everything else is 404 or 405."""

    assets: dict[str, Response]
    metrics: Callable[[], str]
    health: Callable[[], tuple[bool, str]]

    def respond(self, method: str, path: str) -> Response:
        if path == "/metrics":
            response = Response(200, self.metrics().encode(), METRICS_TYPE)
        elif path == "/healthz":
            healthy, reason = self.health()
            response = text(200 if healthy else 503, reason)
        elif path in self.assets:
            response = self.assets[path]
        else:
            return text(404, f"not found: {path}")
        if method not in ("GET", "HEAD"):
            return attrs.evolve(
                text(405, f"method {method} not allowed"), headers=(("Allow", "GET, HEAD"),)
            )
        return response


class HttpExchange:
    """One request read and one response written through a single h11 server connection.

    Every byte received is kept in :attr:`received` until the request head is complete, so a
    WebSocket upgrade can be handed on with the head replayed in front of the stream. The
    head is bounded by :data:`MAX_HEAD_BYTES` (h11 raises its 431 past that).
    """

    def __init__(self) -> None:
        # h11 refuses an incomplete head *longer* than its limit; ours is "at most 16 KiB".
        self.connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES - 1)
        self.received = bytearray()
        self.method = "GET"

    def room(self) -> int:
        """How many more bytes to read at most: never past the head limit, so h11 sees an
        oversized head while it is still incomplete and refuses it (431); a head that fits
        is read whole, whatever the sizes of the pieces it arrives in."""
        return MAX_HEAD_BYTES - len(self.received)

    def receive(self, data: bytes) -> h11.Request | h11.ConnectionClosed | None:
        """Feed bytes (``b""`` at end of stream): the request once its head is complete, a
        :class:`h11.ConnectionClosed` for a client that left without a word, None for more.
        A malformed request raises :class:`h11.RemoteProtocolError` with a status hint."""
        self.received += data
        self.connection.receive_data(data)
        event = self.connection.next_event()
        if event is h11.NEED_DATA:
            return None
        if isinstance(event, h11.Request):
            self.method = event.method.decode("latin-1")
            return event
        if isinstance(event, h11.ConnectionClosed):
            return event
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", 400)

    def respond(self, response: Response, date: str) -> bytes:
        """The whole response, with its reason phrase; no body for a HEAD request."""
        parts = [
            self.connection.send(
                h11.Response(
                    status_code=response.status,
                    headers=response.header_list(date),
                    reason=HTTPStatus(response.status).phrase.encode(),
                )
            )
        ]
        if self.method != "HEAD":
            parts.append(self.connection.send(h11.Data(data=response.body)))
        parts.append(self.connection.send(h11.EndOfMessage()))
        return b"".join(part for part in parts if part)

    def request_complete(self) -> bool:
        """Whether the client has sent its whole request. If not (a body still on its way, or
        a request h11 refused), closing now would reset the connection and could destroy the
        response in flight: the server drains what is left first."""
        connection = self.connection
        while connection.their_state is h11.SEND_BODY:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError:
                return False
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
        # DONE turns into MUST_CLOSE at once: every response here says Connection: close.
        return connection.their_state in (h11.DONE, h11.MUST_CLOSE)
