"""``phase4 relay``: the page and the WebSocket stream of engines that publish to NATS.

A relay has no capture and no analysis: it subscribes to ``PREFIX.ID.spectra`` of each engine,
turns every P4SP message back into the :class:`Spectrum` the engine routed, and feeds it to a
:class:`Router` and a :class:`WebServer` of its own, the same classes an engine uses. So a
client cannot tell a relay from an engine: the same page, JSON and binary messages, options,
``dropped`` counts, origin checks and limits. (``frameCount`` and ``captureTime`` are the
engine's, so latency measured on a relay client includes the hop through NATS.)

Each engine has its own router and web server. The first ``--engine`` owns the listening
address and answers at ``/`` (page, ``/ws``, ``/healthz``) like an engine would; every engine,
the first included, is also mounted at ``/ID/`` (page ``/ID/``, stream ``/ID/ws``, health
``/ID/healthz``). ``/metrics`` is the relay's, everywhere.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence

import attrs
import trio

from . import metrics as m
from .config import Config, TransportConfig
from .errors import Phase4Error
from .pipeline.messages import Batch, Spectrum
from .pipeline.router import Router
from .transport.http import HttpApp, Response, load_assets
from .transport.nats.codec import spectrum_from_payload
from .transport.nats.link import NatsLink, link_metrics
from .transport.nats.naming import check_engine_id, spectra_subject
from .transport.server import WebServer
from .wire.p4sp import WireError

log = logging.getLogger(__name__)

SILENCE_LIMIT = 1.0
ERROR_LOG_INTERVAL = 5.0
# Paths the listening server answers itself; an engine mounted there would hide them.
RESERVED_IDS = ("ws", "metrics", "healthz", "index.html")


# The feeds' own counters in /metrics, by engine: name, help, FeedStats attribute.
_FEED_COUNTERS = (
    ("phase4_relay_spectra_total", "Spectra received from NATS and routed, by engine.", "received"),
    (
        "phase4_relay_decode_errors_total",
        "Messages on an engine's subject that were not a P4SP spectrum.",
        "decode_errors",
    ),
    (
        "phase4_relay_frames_missing_total",
        "Frames absent from an engine's sequence as the relay received it.",
        "missing",
    ),
    (
        "phase4_relay_router_dropped_total",
        "Spectra dropped because an engine's router task was behind.",
        "router_full",
    ),
    (
        "phase4_relay_engine_restarts_total",
        "Times an engine's frame count started again from below the last one.",
        "restarts",
    ),
)


@attrs.define
class FeedStats:
    """``missing``: frames absent between two consecutive spectra (lost before the relay);
    ``router_full``: spectra dropped because the router task was behind."""

    received: int = 0
    decode_errors: int = 0
    router_full: int = 0
    missing: int = 0
    restarts: int = 0


class EngineFeed:
    """One engine on this relay: its subject, its router and web server, its health."""

    def __init__(
        self,
        engine_id: str,
        subject: str,
        link: NatsLink,
        transport: TransportConfig,
        router_queue: int,
        assets: dict[str, Response],
        render_metrics: Callable[[], str],
        observe_latency: Callable[[float], None],
    ) -> None:
        self.engine_id = engine_id
        self.subject = subject
        self.router = Router()
        self._batches, self.batches = trio.open_memory_channel[Batch](router_queue)
        app = HttpApp(assets, render_metrics, self.health)
        self.web = WebServer(transport, self.router, app, observe_latency)
        self.stats = FeedStats()
        self._link = link
        self.last_frame = -1
        self.last_received = -math.inf
        self._quiet_until = -math.inf
        self._suppressed = 0

    def accept(self, payloads: Sequence[bytes]) -> None:
        """Decode and route; a message that does not decode is counted and skipped."""
        spectra: list[Spectrum] = []
        stats = self.stats
        for data in payloads:
            try:
                spectrum = spectrum_from_payload(data)
            except WireError as error:
                stats.decode_errors += 1
                self._report(error)
                continue
            frame = spectrum.frame_count
            if frame > self.last_frame + 1 and self.last_frame >= 0:
                stats.missing += frame - self.last_frame - 1
            elif frame <= self.last_frame:
                stats.restarts += 1  # the engine started again: its frames count from 0
            self.last_frame = frame
            spectra.append(spectrum)
        if spectra:
            stats.received += len(spectra)
            self.last_received = time.monotonic()
            try:
                self._batches.send_nowait(tuple(spectra))
            except trio.WouldBlock:
                stats.router_full += len(spectra)

    async def run(self) -> None:
        """The engine's router task, fed by :meth:`accept` as the processor feeds an engine's."""
        await self.router.run(self.batches)

    def health(self) -> tuple[bool, str]:
        link = self._link
        if self.stats.received == 0:
            nats = "" if link.connected else f" (NATS {link.state.value})"
            return (
                False,
                f"waiting for engine {self.engine_id}: nothing on {self.subject} yet{nats}",
            )
        silent = time.monotonic() - self.last_received
        if silent > SILENCE_LIMIT:
            return False, f"no spectra from engine {self.engine_id} for {silent:.1f} s"
        return True, f"ok: streaming engine {self.engine_id}"

    def _report(self, error: WireError) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        log.warning("relay: undecodable message on %s: %s%s", self.subject, error, more)
        self._quiet_until = now + ERROR_LOG_INTERVAL
        self._suppressed = 0


class Relay:
    """Serves ``engines`` (ids) from NATS, with ``config``'s transport and ``output.nats``."""

    def __init__(self, config: Config, engines: Sequence[str]) -> None:
        nats = config.output.nats
        if not nats.servers:
            raise Phase4Error("relay: no NATS server: give --nats nats://HOST:PORT[,...]")
        if not engines:
            raise Phase4Error("relay: give at least one --engine ID")
        for engine_id in engines:
            try:
                check_engine_id(engine_id)
            except ValueError as error:
                raise Phase4Error(f"--engine: {error}") from None
            if engine_id in RESERVED_IDS:
                raise Phase4Error(f"--engine: {engine_id!r} is a path the relay serves itself")
        if len(set(engines)) != len(engines):
            raise Phase4Error(f"--engine: an engine is named twice in {', '.join(engines)}")
        self.config = config
        self.latency_histogram = m.Histogram(m.LATENCY_BUCKETS)
        subjects = [spectra_subject(nats.subject_prefix, engine_id) for engine_id in engines]
        self.link = NatsLink(
            nats.servers, name=f"phase4 relay of {', '.join(engines)}", subscribe=subjects
        )
        assets = load_assets()
        self.feeds = [
            EngineFeed(
                engine_id,
                subject,
                self.link,
                config.transport,
                config.pipeline.router_queue,
                assets,
                self.render_metrics,
                self.latency_histogram.observe,
            )
            for engine_id, subject in zip(engines, subjects, strict=True)
        ]
        self._by_subject = {f.subject: f for f in self.feeds}
        self.web = self.feeds[0].web
        for engine_feed in self.feeds:
            self.web.mount(engine_feed.engine_id, engine_feed.web)

    async def run(self, *, task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(self)`` once the address is bound."""
        await self.web.bind()
        async with trio.open_nursery() as nursery:
            for engine_feed in self.feeds:
                nursery.start_soon(engine_feed.run)
            await nursery.start(self.link.run)
            await nursery.start(self.web.run)
            nursery.start_soon(self._receive)
            task_status.started(self)

    async def _receive(self) -> None:
        by_subject = self._by_subject
        async for batch in self.link.inbound:
            grouped: dict[str, list[bytes]] = {}
            for subject, data in batch:
                grouped.setdefault(subject, []).append(data)
            for subject, payloads in grouped.items():
                by_subject[subject].accept(payloads)

    @property
    def urls(self) -> tuple[str, str]:
        """The page URL and the WebSocket URL of the first engine, once bound."""
        host = self.config.transport.websocket_address.host
        shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(
            host, f"[{host}]" if ":" in host else host
        )
        return (
            f"http://{shown}:{self.web.port}/",
            f"ws://{shown}:{self.web.port}{self.config.transport.websocket_path}",
        )

    def render_metrics(self) -> str:
        return m.render(self.collect_metrics())

    def collect_metrics(self) -> list[m.Metric]:
        def per_engine(values: Sequence[float]) -> list[tuple[m.Labels, float]]:
            return [
                ((("engine", f.engine_id),), value)
                for f, value in zip(self.feeds, values, strict=True)
            ]

        feeds = self.feeds
        collected = [
            m.labelled(name, "counter", text, per_engine([getattr(f.stats, stat) for f in feeds]))
            for name, text, stat in _FEED_COUNTERS
        ]
        collected += [
            m.labelled(
                "phase4_clients_connected",
                "gauge",
                "WebSocket clients connected now, by engine.",
                per_engine([f.web.stats.clients_connected for f in feeds]),
            ),
            m.labelled(
                "phase4_clients_total",
                "counter",
                "WebSocket clients accepted since start, by engine.",
                per_engine([f.web.stats.clients_total for f in feeds]),
            ),
            m.labelled(
                "phase4_connections_refused_total",
                "counter",
                "Connections refused, by engine and reason.",
                [
                    ((("engine", f.engine_id), ("reason", reason)), value)
                    for f in feeds
                    for reason, value in (
                        ("origin", f.web.stats.refused_origin),
                        ("max_clients", f.web.stats.refused_full),
                        ("bad_request", f.web.stats.bad_requests),
                        ("handshake_timeout", f.web.stats.handshake_timeouts),
                    )
                ],
            ),
            m.labelled(
                "phase4_endpoint_dropped_total",
                "counter",
                "Spectra an endpoint lost because its queue was full.",
                [
                    ((("engine", f.engine_id), ("endpoint", s.name)), s.dropped)
                    for f in feeds
                    for s in f.router.subscriptions
                ],
            ),
            m.counter(
                "phase4_endpoints_dropped_total",
                "Spectra lost by all endpoints since start, those gone included.",
                sum(
                    f.router.stats.gone_dropped + sum(s.dropped for s in f.router.subscriptions)
                    for f in feeds
                ),
            ),
            m.counter(
                "phase4_http_requests_total",
                "Plain HTTP requests answered (page, assets, metrics, health, errors).",
                sum(f.web.stats.http_requests for f in feeds),
            ),
            m.histogram(
                "phase4_capture_to_send_seconds",
                "From the engine's capture callback to the message written to a client socket.",
                self.latency_histogram,
            ),
        ]
        return collected + link_metrics(self.link) + m.process_metrics()
