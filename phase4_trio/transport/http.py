"""Plain HTTP on the WebSocket's address: the page, its assets, ``/metrics`` and ``/healthz``.

Pure request → response logic; the socket side lives in :mod:`.server`. Assets are read once
from the package at start-up into a name → bytes table, so a request can only ever name a
file that was shipped: there is no path to traverse.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import attrs

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


@attrs.frozen
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def header_list(self) -> list[tuple[str, str]]:
        return [
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
