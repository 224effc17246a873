"""The listening socket: one address for the page, ``/metrics``, ``/healthz`` and the WebSocket.

Each connection's request is read here (bounded in size and time) through one h11 connection
(:class:`~.http.HttpExchange`), which also writes the response. A WebSocket upgrade on the
configured path, from an allowed origin, with room for one more client, is handed to
trio-websocket with the bytes received so far replayed in front of the stream; anything else
gets a plain HTTP response and the connection is closed (after draining a request body the
client is still sending).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from email.utils import formatdate
from urllib.parse import urlsplit

import attrs
import h11
import trio
import trio_websocket

from .. import metrics as m
from ..config import Address, TransportConfig
from ..dsp.views import Views
from ..errors import Phase4Error
from ..logs import LogLimiter
from ..pipeline.router import Router
from .client_frames import layout_message
from .http import HttpApp, HttpExchange, Response, text
from .options import ClientOptions, OptionError, parse_options
from .websocket import GOING_AWAY, ClientStream, stream_to_client

log = logging.getLogger(__name__)

RECEIVE_BYTES = 65536
DRAIN_SECONDS = 2.0  # a client gets this long to finish sending a request we already answered
DRAIN_BYTES = 64 * 2**20  # and this much of it is read and thrown away
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


def free_port_near(address: Address, tries: int = 20) -> int:
    """A port above ``address.port`` that is free on its host now, to suggest to a user whose
    port is taken; 0 (any free port) when none of the next ``tries`` is."""
    for port in range(address.port + 1, min(address.port + 1 + tries, 65536)):
        with contextlib.suppress(OSError):
            family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((address.host, port))
                return port
    return 0


@attrs.frozen
class StreamInfo:
    """What clients' analysis options are checked against and served from: the engine's
    views, the stream's sample rate, its fine spectrum's size and its input channels. A server
    without one (a relay: its spectra carry no samples) serves every client the plain form."""

    views: Views
    sample_rate: int
    fft_size: int
    channels: int


class WebServer:
    """Serves HTTP and WebSocket clients on one address, for as long as its task lives."""

    def __init__(
        self,
        config: TransportConfig,
        router: Router,
        app: HttpApp,
        observe_latency: Callable[[float], None],
        stream: StreamInfo | None = None,
    ) -> None:
        self.config = config
        self.stats = ServerStats()
        self._stream_info = stream
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
                other = attrs.evolve(address, port=free_port_near(address))
                reason = (
                    "address already in use (another phase4?); pick another port,"
                    f" e.g. --ws {other}"
                )
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
        exchange = HttpExchange()
        try:
            with trio.fail_after(self.config.handshake_timeout.seconds):
                request = None
                while request is None:
                    request = exchange.receive(await stream.receive_some(exchange.room()))
        except trio.TooSlowError:
            self.stats.handshake_timeouts += 1
            return
        except h11.RemoteProtocolError as error:
            self.stats.bad_requests += 1
            await self._reply(
                stream, exchange, text(error.error_status_hint, f"bad request: {error}")
            )
            return
        if isinstance(request, h11.ConnectionClosed):
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
                await self._reply(stream, exchange, redirect)
                return
            if mounted is not None:
                server, path = mounted, "/" + rest
        await server._answer(stream, exchange, request, path, query)

    async def _answer(
        self,
        stream: trio.SocketStream,
        exchange: HttpExchange,
        request: h11.Request,
        path: str,
        query: str,
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
                await self._serve_websocket(stream, bytes(exchange.received), query)
                return
        else:
            self.stats.http_requests += 1
            response = self._app.respond(method, path)
        await self._reply(stream, exchange, response)

    async def _reply(
        self, stream: trio.SocketStream, exchange: HttpExchange, response: Response
    ) -> None:
        """Send the response; then, if the client is still sending (a body, say a 2 MB POST
        answered 405), stop writing and read what is left (bounded) before closing: closing
        with unread data resets the connection, and the reset can destroy the response on
        its way to the client."""
        await stream.send_all(exchange.respond(response, formatdate(usegmt=True)))
        if exchange.request_complete():
            return
        with contextlib.suppress(*PEER_GONE):
            await stream.send_eof()
            drained = 0
            with trio.move_on_after(DRAIN_SECONDS):
                while drained < DRAIN_BYTES:
                    chunk = await stream.receive_some(RECEIVE_BYTES)
                    if not chunk:
                        break
                    drained += len(chunk)

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
            self._parse_options(query)
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
        options = self._parse_options(query)
        info = self._stream_info
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
                    held: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
                    if info is not None:
                        layout = layout_message(options, info.sample_rate, info.fft_size)
                        if layout is not None:
                            await connection.send_message(layout.decode())
                        # The view first: every spectrum the client is offered has its values.
                        held = info.views.held(options.view)
                    with (
                        held,
                        self._router.subscribe(
                            name, self.config.client_queue, fps=options.fps
                        ) as subscription,
                    ):
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

    def _parse_options(self, query: str) -> ClientOptions:
        if self._stream_info is None:
            return parse_options(query)
        return parse_options(query, input_channels=self._stream_info.channels)

    async def _close_on_shutdown(
        self, connection: trio_websocket.WebSocketConnection, client: trio.CancelScope
    ) -> None:
        """At shutdown: close frame 1001 ("going away"), the client's reply, then the end."""
        await self._going_away.wait()
        # Shielded too: the client's own task ends as soon as the close starts (its reader sees
        # the connection closing) and cancels this scope; a close cut short there would close
        # the socket with the client's reply unread, and the RST that sends can destroy the
        # close frame before the client reads it (it then reports 1006, not 1001).
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            await connection.aclose(GOING_AWAY, "server shutting down")
        client.cancel()
