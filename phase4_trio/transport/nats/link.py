"""nats-py's asyncio client in a thread of its own, started, fed and stopped by a Trio task.

nats-py is written for asyncio. Rather than run asyncio on top of Trio (trio-asyncio), the
client keeps its stock event loop in one thread, and the link crosses between the two loops
with each one's own thread-safe door (docs/scaling.md has the measured cost):

* Trio → asyncio: :meth:`NatsLink.publish` hands a batch of payloads over with
  ``loop.call_soon_threadsafe``, one call per batch; the asyncio side publishes them in order.
  At most ``outbox_limit`` messages may be on their way; past that, and while the client is
  not connected, messages are dropped and counted, never buffered for later: a spectrum that
  is late is worth nothing to a live display, and nats-py's reconnect buffer would replay
  seconds of stale spectra at once.
* asyncio → Trio: each received message is put in a deque and the Trio side is woken through
  its ``TrioToken`` (``run_sync_soon``, coalesced), which moves everything waiting into a
  bounded memory channel as one batch; a full channel drops the batch and counts it.

Lifetimes stay Trio's: :meth:`NatsLink.run` starts the thread and returns only once the thread
has ended. Cancelling it tells the asyncio loop to close the connection (bounded by
:data:`CLOSE_TIMEOUT`) and waits for the thread. A server that cannot be reached is not an
error: the client keeps trying every :data:`RECONNECT_WAIT` seconds, logging once per outage.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import threading
import time
from collections.abc import Mapping, Sequence

import attrs
import trio

import nats.aio.client
import nats.aio.msg

from ... import metrics as m
from .naming import display_url

log = logging.getLogger(__name__)

RECONNECT_WAIT = 1
CONNECT_TIMEOUT = 2
# A connection whose peer vanished without closing it (a cable, a frozen host) is declared
# dead after PING_INTERVAL * (MAX_OUTSTANDING_PINGS + 1) seconds; a killed server is noticed
# at once, its socket closes.
PING_INTERVAL = 2
MAX_OUTSTANDING_PINGS = 2
CLOSE_TIMEOUT = 2.0
RESTART_WAIT = 2.0

Inbound = list[tuple[str, bytes]]


class LinkState(enum.Enum):
    STARTING = "starting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@attrs.define
class LinkStats:
    """Counters for /metrics. Each is written by one thread only: ``handed`` and
    ``dropped_*``/``inbound_dropped`` on Trio's, the rest on the asyncio thread's.
    ``handed - settled`` messages are on their way (``settled``: published or failed)."""

    handed: int = 0
    settled: int = 0
    published: int = 0
    published_bytes: int = 0
    dropped_disconnected: int = 0
    dropped_backlog: int = 0
    publish_errors: int = 0
    received: int = 0
    inbound_dropped: int = 0
    requests_answered: int = 0
    connects: int = 0
    disconnects: int = 0
    reconnects: int = 0
    failures: int = 0
    last_outage_seconds: float = 0.0


class NatsLink:
    """One NATS connection shared by a Trio program.

    ``subscribe``: subjects whose messages arrive in :attr:`inbound` as batches of
    ``(subject, data)``. ``replies``: subject → constant answer for request/reply.
    ``announce``: (subject, data) published on every (re)connection.
    """

    def __init__(
        self,
        servers: Sequence[str],
        *,
        name: str,
        subscribe: Sequence[str] = (),
        replies: Mapping[str, bytes] | None = None,
        announce: Sequence[tuple[str, bytes]] = (),
        outbox_limit: int = 256,
        inbound_capacity: int = 64,
    ) -> None:
        self.servers = tuple(servers)
        self.name = name
        self.stats = LinkStats()
        self.state = LinkState.STARTING
        self.connected_url = ""
        self._subscribe = tuple(subscribe)
        self._replies = dict(replies or {})
        self._announce = tuple(announce)
        self._outbox_limit = outbox_limit
        send, self.inbound = trio.open_memory_channel[Inbound](inbound_capacity)
        self._inbound_send = send
        self._arrived: collections.deque[tuple[str, bytes]] = collections.deque()
        self._token: trio.lowlevel.TrioToken | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._outbox: asyncio.Queue[tuple[str, tuple[bytes, ...]]] = asyncio.Queue()
        self._stop_requested = False
        self._client: nats.aio.client.Client | None = None
        self._outage_started = 0.0
        self._warned = False

    # ------------------------------------------------------------ the Trio side

    @property
    def connected(self) -> bool:
        return self.state is LinkState.CONNECTED

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the client's thread until cancelled; started at once, connected or not."""
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stop_when_cancelled)
            task_status.started()
            try:
                # Not cancellable: the thread is always waited for, so it never outlives us.
                await trio.to_thread.run_sync(self._thread_main)
            finally:
                nursery.cancel_scope.cancel()
                self._inbound_send.close()

    async def _stop_when_cancelled(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self._request_stop()

    def _request_stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop.set)

    def publish(self, subject: str, payloads: Sequence[bytes]) -> None:
        """Hand ``payloads`` to the client, in order, without waiting; drops are counted."""
        stats = self.stats
        loop = self._loop
        if not self.connected or loop is None:
            stats.dropped_disconnected += len(payloads)
            return
        room = self._outbox_limit - (stats.handed - stats.settled)
        if room < len(payloads):
            taken = max(room, 0)
            stats.dropped_backlog += len(payloads) - taken
            payloads = payloads[len(payloads) - taken :]  # the newest win
            if not payloads:
                return
        stats.handed += len(payloads)
        try:
            loop.call_soon_threadsafe(self._outbox.put_nowait, (subject, tuple(payloads)))
        except RuntimeError:  # the loop closed under us: shutting down
            stats.handed -= len(payloads)
            stats.dropped_disconnected += len(payloads)

    def _deliver(self) -> None:
        """Runs in Trio (through the token): everything that arrived, as one batch."""
        batch: Inbound = []
        arrived = self._arrived
        while arrived:
            batch.append(arrived.popleft())
        if not batch:
            return
        try:
            self._inbound_send.send_nowait(batch)
        except trio.WouldBlock:
            self.stats.inbound_dropped += len(batch)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    # ------------------------------------------------------------ the asyncio thread

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop = stop
            if self._stop_requested:
                return
        serve = asyncio.create_task(self._serve_forever())
        send = asyncio.create_task(self._send_forever())
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait((serve, send, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (serve, send, waiter):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._close()
            self.state = LinkState.STOPPED
            with self._lock:
                self._loop = None

    async def _serve_forever(self) -> None:
        """Connect and serve; a failure of the client itself restarts it after a pause."""
        while True:
            try:
                await self._connect()
                await asyncio.Event().wait()  # nats-py runs from here on (callbacks)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.failures += 1
                log.exception("NATS client failed; starting a new one in %.0f s", RESTART_WAIT)
                await self._close()
                await asyncio.sleep(RESTART_WAIT)

    async def _connect(self) -> None:
        self.state = LinkState.CONNECTING
        self._outage_started = time.monotonic()
        client = nats.aio.client.Client()
        self._client = client
        # With max_reconnect_attempts=-1, connect() returns only once a server answered.
        await client.connect(
            servers=list(self.servers),
            name=self.name,
            connect_timeout=CONNECT_TIMEOUT,
            reconnect_time_wait=RECONNECT_WAIT,
            max_reconnect_attempts=-1,
            ping_interval=PING_INTERVAL,
            max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            no_echo=True,
        )
        for subject in self._subscribe:
            await client.subscribe(subject, cb=self._on_message)
        for subject in self._replies:
            await client.subscribe(subject, cb=self._on_request)
        self.stats.connects += 1
        self._became_connected(client, "connected to")

    def _became_connected(self, client: nats.aio.client.Client, verb: str) -> None:
        self.connected_url = _url_of(client)
        outage = time.monotonic() - self._outage_started
        self.stats.last_outage_seconds = outage
        self.state = LinkState.CONNECTED
        self._warned = False
        log.info("NATS: %s %s (after %.3f s)", verb, display_url(self.connected_url), outage)
        for subject, data in self._announce:
            asyncio.get_running_loop().create_task(self._publish_one(client, subject, data))

    async def _close(self) -> None:
        client, self._client = self._client, None
        self.state = LinkState.STOPPED
        if client is None or client.is_closed:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)

    async def _send_forever(self) -> None:
        """Publish what :meth:`publish` handed over, batch by batch, in order."""
        outbox, stats = self._outbox, self.stats
        while True:
            subject, payloads = await outbox.get()
            client = self._client
            for data in payloads:
                if client is None or not client.is_connected:
                    stats.publish_errors += 1
                else:
                    await self._publish_one(client, subject, data)
                stats.settled += 1

    async def _publish_one(self, client: nats.aio.client.Client, subject: str, data: bytes) -> None:
        try:
            await client.publish(subject, data)
        except Exception as error:  # the connection broke in between: counted, never raised
            self.stats.publish_errors += 1
            log.debug("NATS publish on %s failed: %r", subject, error)
        else:
            self.stats.published += 1
            self.stats.published_bytes += len(data)

    async def _on_message(self, message: nats.aio.msg.Msg) -> None:
        self.stats.received += 1
        self._arrived.append((message.subject, message.data))
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._deliver, idempotent=True)

    async def _on_request(self, message: nats.aio.msg.Msg) -> None:
        if not message.reply:  # an announcement, not a request
            return
        answer = self._replies.get(message.subject)
        client = self._client
        if answer is None or client is None:
            return
        await self._publish_one(client, message.reply, answer)
        self.stats.requests_answered += 1

    async def _on_error(self, error: Exception) -> None:
        if self.state in (LinkState.CONNECTING, LinkState.RECONNECTING) and not self._warned:
            self._warned = True
            if self.state is LinkState.CONNECTING:
                log.warning(
                    "NATS: no server reachable at %s (%s); serving locally, retrying every %.0f s",
                    ", ".join(display_url(url) for url in self.servers),
                    _describe(error),
                    RECONNECT_WAIT,
                )
            else:
                log.warning("NATS: reconnecting failed (%s); still trying", _describe(error))
        else:
            log.debug("NATS error: %s", _describe(error))

    async def _on_disconnected(self) -> None:
        if self.state is not LinkState.CONNECTED:
            return
        self.stats.disconnects += 1
        self._outage_started = time.monotonic()
        self.state = LinkState.RECONNECTING
        log.warning("NATS: lost %s; reconnecting", display_url(self.connected_url))

    async def _on_reconnected(self) -> None:
        client = self._client
        if client is None:
            return
        self.stats.reconnects += 1
        self._became_connected(client, "reconnected to")


def _url_of(client: nats.aio.client.Client) -> str:
    url = client.connected_url
    if url is None:
        return ""
    return f"{url.scheme}://{url.netloc}"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def link_metrics(link: NatsLink) -> list[m.Metric]:
    """The link's counters, for the /metrics of whoever owns it (engine or relay)."""
    s = link.stats
    return [
        m.gauge(
            "phase4_nats_connected",
            "1 while connected to a NATS server (labelled with it).",
            link.connected,
            (("server", display_url(link.connected_url) if link.connected else ""),),
        ),
        m.counter("phase4_nats_connects_total", "First connections to NATS.", s.connects),
        m.counter("phase4_nats_disconnects_total", "NATS connections lost.", s.disconnects),
        m.counter(
            "phase4_nats_reconnects_total",
            "NATS connections re-established after a loss.",
            s.reconnects,
        ),
        m.gauge(
            "phase4_nats_last_outage_seconds",
            "How long the last (re)connection took, from loss or start to connected.",
            s.last_outage_seconds,
        ),
        m.counter("phase4_nats_published_total", "Messages published to NATS.", s.published),
        m.counter(
            "phase4_nats_published_bytes_total", "Payload bytes published.", s.published_bytes
        ),
        m.labelled(
            "phase4_nats_dropped_total",
            "counter",
            "Messages not published, by reason.",
            [
                ((("reason", "disconnected"),), s.dropped_disconnected),
                ((("reason", "backlog"),), s.dropped_backlog),
                ((("reason", "error"),), s.publish_errors),
            ],
        ),
        m.counter("phase4_nats_received_total", "Messages received from NATS.", s.received),
        m.counter(
            "phase4_nats_received_dropped_total",
            "Received messages dropped because the Trio side was behind.",
            s.inbound_dropped,
        ),
        m.counter(
            "phase4_nats_requests_answered_total",
            "Metadata requests answered.",
            s.requests_answered,
        ),
        m.counter(
            "phase4_nats_client_failures_total",
            "Times the NATS client failed and was started anew.",
            s.failures,
        ),
    ]
