"""The listening socket: one address for the page, ``/metrics``, ``/healthz`` and the WebSocket.

Each connection's request head is read here (bounded in size and time) and parsed with h11.
A WebSocket upgrade on the configured path, from an allowed origin, with room for one more
client, is handed to trio-websocket with the head replayed in front of the stream; anything
else gets a plain HTTP response and the connection is closed.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import attrs
import h11
import trio
import trio_websocket

from .. import metrics as m
from ..config import TransportConfig
from ..errors import Phase4Error
from ..logs import LogLimiter
from ..pipeline.router import Router
from .http import HttpApp, Response, text
from .options import OptionError, parse_options
from .websocket import GOING_AWAY, ClientStream, stream_to_client

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16384
#: How long a client has, at shutdown, to answer our close frame before its socket closes.
CLOSE_TIMEOUT = 1.0
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
WSPROTO_DECODES = (b"host", b"connection", b"sec-websocket-extensions", b"sec-websocket-protocol")
PEER_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio_websocket.ConnectionClosed)


@attrs.define
class ServerStats:
    connections: int = 0
    http_requests: int = 0
    clients_connected: int = 0
    clients_total: int = 0
    refused_origin: int = 0
    refused_full: int = 0
    bad_requests: int = 0
    handshake_timeouts: int = 0

    def metrics(self) -> list[m.Metric]:
        return [
            m.gauge(
                "phase4_clients_connected",
                "WebSocket clients connected now.",
                self.clients_connected,
            ),
            m.counter(
                "phase4_clients_total",
                "WebSocket clients accepted since start.",
                self.clients_total,
            ),
            m.counter(
                "phase4_http_requests_total",
                "Plain HTTP requests answered (page, assets, metrics, health, errors).",
                self.http_requests,
            ),
            m.labelled(
                "phase4_connections_refused_total",
                "counter",
                "Connections refused, by reason.",
                [
                    ((("reason", "origin"),), self.refused_origin),
                    ((("reason", "max_clients"),), self.refused_full),
                    ((("reason", "bad_request"),), self.bad_requests),
                    ((("reason", "handshake_timeout"),), self.handshake_timeouts),
                ],
            ),
        ]


def _peer_gone(error: BaseException) -> bool:
    """The client broke the connection or the protocol, alone or inside a task group
    (a frame sent before the 101 closes the connection inside trio-websocket's nursery)."""
    if isinstance(error, BaseExceptionGroup):
        return all(_peer_gone(inner) for inner in error.exceptions)
    return isinstance(error, PEER_GONE)


def wsproto_can_read(request: h11.Request) -> bool:
    """wsproto decodes these headers itself (Host as IDNA, the lists as ASCII) and fails with
    a bare UnicodeError inside trio-websocket's task on bytes it cannot read; refuse first."""
    for name, value in request.headers:
        if name in WSPROTO_DECODES:
            try:
                value.decode("idna" if name == b"host" else "ascii")
            except ValueError:
                return False
    return True


def origin_allowed(origin: str | None, host_header: str | None, config: TransportConfig) -> bool:
    """The page's own host, localhost and the configured origins; clients without Origin too.

    Browsers always send Origin on a WebSocket handshake, so a missing one means a
    non-browser client, which no web page can impersonate.
    """
    if origin is None or config.allow_any_origin:
        return True
    origin = origin.rstrip("/")
    if origin in config.allowed_origins:
        return True
    try:
        parts = urlsplit(origin)
        hostname = parts.hostname or ""
    except ValueError:  # "http://[oops": no page has that origin
        return False
    if parts.scheme not in ("http", "https"):
        return False
    if host_header is not None and parts.netloc.lower() == host_header.lower():
        return True
    return hostname in LOCAL_HOSTS


async def read_head(stream: trio.abc.Stream) -> bytes | None:
    """Bytes up to and including the blank line after the headers (plus any that followed)."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        data += chunk
    if data.index(b"\r\n\r\n") + 4 > MAX_HEAD_BYTES:  # the last read may overshoot the limit
        raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
    return bytes(data)


def parse_head(head: bytes) -> h11.Request:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    connection.receive_data(head)
    event = connection.next_event()
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("incomplete request", error_status_hint=400)
    return event


def serialize(response: Response, *, method: str = "GET") -> bytes:
    """The response as bytes; h11 checks it, and leaves the body out for HEAD."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    connection.next_event()
    parts = [
        connection.send(h11.Response(status_code=response.status, headers=response.header_list()))
    ]
    if method != "HEAD":
        parts.append(connection.send(h11.Data(data=response.body)))
    parts.append(connection.send(h11.EndOfMessage()))
    return b"".join(part for part in parts if part)


class WebServer:
    """Serves HTTP and WebSocket clients on one address, for as long as its task lives."""

    def __init__(
        self,
        config: TransportConfig,
        router: Router,
        app: HttpApp,
        observe_latency: Callable[[float], None],
    ) -> None:
        self.config = config
        self.stats = ServerStats()
        self._router = router
        self._app = app
        self._observe_latency = observe_latency
        self._listeners: list[trio.SocketListener] = []
        self._mounts: dict[str, WebServer] = {}
        self._going_away = trio.Event()
        self._refusals = LogLimiter(log)
        self.port = 0  # the bound port, known after bind()
        # Told (connected, clients now) as each WebSocket client comes and goes (host mode).
        self.on_client: Callable[[bool, int], None] | None = None

    def mount(self, prefix: str, server: WebServer) -> None:
        """Let ``server`` answer every request under ``/prefix/`` on this one's address, as
        if the path were what follows the prefix (so ``/prefix/ws`` is its WebSocket and
        ``/prefix/`` its page); ``/prefix`` itself redirects there. A relay serves each of
        several engines this way."""
        self._mounts[prefix.strip("/")] = server

    async def bind(self) -> None:
        """Open the listening sockets now, so a taken port is a start-up error, not a crash."""
        address = self.config.websocket_address
        try:
            self._listeners = await trio.open_tcp_listeners(address.port, host=address.host)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                reason = "address already in use"
            else:
                reason = error.strerror or str(error)
            raise Phase4Error(
                f"transport.websocket_address: cannot listen on {address}: {reason}"
            ) from None
        # Read now: once shutdown starts the sockets close, and the port is still asked for.
        self.port = int(self._listeners[0].socket.getsockname()[1])

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if not self._listeners:
            await self.bind()
        async with trio.open_nursery() as nursery:
            for listener in self._listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                # WebSocket clients are shielded from the cancellation: this is how they
                # learn of it, so each one gets its close frame before its socket closes.
                self._going_away.set()
                for mounted in self._mounts.values():
                    mounted._going_away.set()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as error:
                    # EMFILE and friends: shed load for a moment rather than die.
                    log.warning("accept failed: %s", error)
                    await trio.sleep(0.1)
                    continue
                nursery.start_soon(self._handle, stream)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.stats.connections += 1
        try:
            async with stream:
                await self._serve(stream)
        except Exception as error:
            if _peer_gone(error):  # a client's doing: no traceback for it to flood the log with
                log.debug("connection ended by the client: %r", error)
            else:
                log.exception("connection handler failed")

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            with trio.fail_after(self.config.handshake_timeout.seconds):
                head = await read_head(stream)
            if head is None:
                return
            request = parse_head(head)
        except trio.TooSlowError:
            self.stats.handshake_timeouts += 1
            return
        except h11.RemoteProtocolError as error:
            self.stats.bad_requests += 1
            await stream.send_all(serialize(text(error.error_status_hint, f"bad request: {error}")))
            return
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        server = self
        if self._mounts:
            first, slash, rest = path[1:].partition("/")
            mounted = self._mounts.get(first)
            if mounted is not None and not slash:
                location = f"/{first}/" + (f"?{query}" if query else "")
                redirect = attrs.evolve(text(308, location), headers=(("Location", location),))
                self.stats.http_requests += 1
                await stream.send_all(serialize(redirect, method=request.method.decode()))
                return
            if mounted is not None:
                server, path = mounted, "/" + rest
        await server._answer(stream, head, request, path, query)

    async def _answer(
        self, stream: trio.SocketStream, head: bytes, request: h11.Request, path: str, query: str
    ) -> None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in request.headers
        }
        method = request.method.decode("latin-1")
        wants_upgrade = "websocket" in headers.get("upgrade", "").lower()
        if path == self.config.websocket_path and wants_upgrade and method == "GET":
            response = self._admit(request, headers, query)
            if response is None:
                await self._serve_websocket(stream, head, query)
                return
        else:
            self.stats.http_requests += 1
            response = self._app.respond(method, path)
        await stream.send_all(serialize(response, method=method))

    def _admit(self, request: h11.Request, headers: dict[str, str], query: str) -> Response | None:
        """None when the upgrade may proceed, otherwise the refusal to send."""
        if not wsproto_can_read(request):
            self.stats.bad_requests += 1
            return text(400, "malformed WebSocket handshake header")
        if not origin_allowed(headers.get("origin"), headers.get("host"), self.config):
            self.stats.refused_origin += 1
            self._refusals.warning("refused WebSocket from origin %s", headers.get("origin"))
            return text(403, "origin not allowed")
        if self.stats.clients_connected >= self.config.max_clients:
            self.stats.refused_full += 1
            self._refusals.warning(
                "refused WebSocket: %d clients connected (transport.max_clients)",
                self.stats.clients_connected,
            )
            return attrs.evolve(text(503, "too many clients"), headers=(("Retry-After", "5"),))
        try:
            parse_options(query)
        except OptionError as error:
            self.stats.bad_requests += 1
            return text(400, str(error))
        return None

    async def _serve_websocket(self, stream: trio.SocketStream, head: bytes, query: str) -> None:
        """One client, from the handshake to its close frame.

        Shielded from cancellation: shutdown reaches the client as ``_going_away`` instead,
        so it gets a close frame with code 1001 and the close handshake can complete (with
        trio-websocket's reader task still alive to read the reply) before the socket closes.
        Everything that waits in here is bounded by a timeout or ends with the client.
        """
        options = parse_options(query)
        stats = self.stats
        stats.clients_connected += 1
        stats.clients_total += 1
        if self.on_client is not None:
            self.on_client(True, stats.clients_connected)
        name = f"ws-{stats.clients_total}"
        try:
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as nursery:
                    client_stream = ClientStream(stream, head)
                    try:
                        with trio.fail_after(self.config.handshake_timeout.seconds):
                            request = await trio_websocket.wrap_server_stream(
                                nursery,
                                client_stream,
                                message_queue_size=1,
                                max_message_size=self.config.max_message_size,
                            )
                            connection = await request.accept()
                    except trio.TooSlowError:
                        stats.handshake_timeouts += 1
                        nursery.cancel_scope.cancel()
                        return
                    with self._router.subscribe(
                        name, self.config.client_queue, fps=options.fps
                    ) as subscription:
                        async with trio.open_nursery() as client:
                            client.start_soon(
                                self._close_on_shutdown, connection, client.cancel_scope
                            )
                            await stream_to_client(
                                connection,
                                client_stream,
                                subscription,
                                options,
                                self._observe_latency,
                            )
                            client.cancel_scope.cancel()
                    nursery.cancel_scope.cancel()
        finally:
            stats.clients_connected -= 1
            if self.on_client is not None:
                self.on_client(False, stats.clients_connected)

    async def _close_on_shutdown(
        self, connection: trio_websocket.WebSocketConnection, client: trio.CancelScope
    ) -> None:
        """At shutdown: close frame 1001 ("going away"), the client's reply, then the end."""
        await self._going_away.wait()
        with trio.move_on_after(CLOSE_TIMEOUT):
            await connection.aclose(GOING_AWAY, "server shutting down")
        client.cancel()
