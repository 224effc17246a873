"""The router task: every batch of spectra to every subscriber, each through its own channel.

The router never awaits a subscriber: it offers each batch with ``send_nowait`` to every
subscription's own bounded memory channel. A full channel evicts its oldest batch (latest
wins: a live display wants the present) and counts the spectra it held in that subscriber's
``dropped``; nobody else notices, so one slow client cannot stall another. Each subscriber's
own task takes what waits in its channel and writes it to its own socket.

A subscriber that asked for at most ``fps`` deliveries a second is offered something only when
a delivery is due on its grid of ``1 / fps`` seconds of capture time: the newest spectrum,
what it is not offered counting as ``skipped`` (not ``dropped``); or, with ``keep_all``
(outputs that summarise every block, such as OSC's onsets), every spectrum since its previous
delivery, in one batch.

The router also knows what its subscribers want as a whole (:meth:`Router.demand`), and tells
whoever feeds it (the capture bridge) whenever that changes: nothing (nobody listens, so the
engine can rest), at most some rate, or every spectrum.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import trio

from .. import metrics as m
from ..dsp.views import Views
from ..logs import LogLimiter
from .messages import Batch, Spectrum

log = logging.getLogger(__name__)

#: What the subscribers want: None (nobody listens), or the shortest interval between the
#: spectra any of them wants, in seconds (0.0: every spectrum).
Demand = float | None

#: How early a spectrum may be for its grid point and still be due, unless the router is told
#: better (the engine: half a block period, as its capture bridge allows).
EARLY = 0.001


@attrs.define(eq=False)
class Subscription:
    """One subscriber's view of the stream: its channel and its own counters.

    ``offered == taken + dropped + skipped + queued`` at every moment.
    """

    name: str
    fps: float | None
    _send: trio.MemorySendChannel[Batch] = attrs.field(repr=False)
    _receive: trio.MemoryReceiveChannel[Batch] = attrs.field(repr=False)
    keep_all: bool = False
    early: float = EARLY
    offered: int = 0
    taken: int = 0
    dropped: int = 0
    skipped: int = 0
    queued: int = 0
    _batches: int = 0  # batches in the channel, so taking them needs no failed receive
    _next_due: float = -math.inf
    _held: list[Spectrum] = attrs.field(factory=list, repr=False)

    @property
    def interval(self) -> float:
        return 1.0 / self.fps if self.fps else 0.0

    @property
    def batches_waiting(self) -> int:
        return self._receive.statistics().current_buffer_used

    @property
    def held(self) -> int:
        """Spectra a ``keep_all`` subscriber has been given, not yet due (part of ``queued``)."""
        return len(self._held)

    def offer(self, batch: Batch) -> None:
        """Queue without waiting (called by the router task)."""
        self.offered += len(batch)
        if self.fps:
            now = batch[-1].capture_time
            if self.keep_all:
                self._held += batch
                self.queued += len(batch)
            else:
                self.skipped += len(batch) - 1
            if now + self.early < self._next_due:
                if not self.keep_all:
                    self.skipped += 1
                return
            # A grid of 1/fps in capture time keeps the average rate exact (a spectrum a
            # little early for its grid point counts as on time: capture times jitter);
            # after a gap the grid restarts from now instead of catching up with a burst.
            following = self._next_due + self.interval
            self._next_due = following if following > now else now + self.interval
            if self.keep_all:
                batch = tuple(self._held)
                self._held.clear()
                self.queued -= len(batch)
            else:
                batch = batch[-1:]
        try:
            self._send.send_nowait(batch)
        except trio.WouldBlock:
            evicted = self._receive.receive_nowait()
            self.queued -= len(evicted)
            if self.fps and not self.keep_all:
                self.skipped += len(evicted)
            else:
                self.dropped += len(evicted)
            self._send.send_nowait(batch)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += len(batch)
            return
        else:
            self._batches += 1
        self.queued += len(batch)

    async def next(self) -> list[Spectrum]:
        """Every spectrum waiting, oldest first; waits for one when there is none.

        Only the subscriber's own task calls this.
        """
        receive = self._receive
        spectra = list(await receive.receive())
        self._batches -= 1
        while self._batches:
            spectra += receive.receive_nowait()
            self._batches -= 1
        self.taken += len(spectra)
        self.queued -= len(spectra)
        return spectra

    def latest(self) -> Spectrum | None:
        """The newest spectrum waiting, without waiting; older ones count as skipped."""
        spectra: list[Spectrum] = []
        while self._batches:
            spectra += self._receive.receive_nowait()
            self._batches -= 1
        if not spectra:
            return None
        self.queued -= len(spectra)
        self.skipped += len(spectra) - 1
        self.taken += 1
        return spectra[-1]


@attrs.define
class RouterStats:
    routed: int = 0
    batches: int = 0
    gone_dropped: int = 0
    view_errors: int = 0

    def metrics(self, subscriptions: tuple[Subscription, ...]) -> list[m.Metric]:
        return [
            m.labelled(
                "phase4_endpoint_dropped_total",
                "counter",
                "Spectra an endpoint lost because its queue was full.",
                [((("endpoint", s.name),), s.dropped) for s in subscriptions],
            ),
            m.counter(
                "phase4_endpoints_dropped_total",
                "Spectra lost by all endpoints since start, those gone included.",
                self.gone_dropped + sum(s.dropped for s in subscriptions),
            ),
            m.gauge("phase4_subscribers", "Subscribers to the stream now.", len(subscriptions)),
            m.counter(
                "phase4_view_errors_total",
                "Spectra whose analysis views failed (their clients got the plain form).",
                self.view_errors,
            ),
        ]


class Router:
    """Subscriptions, and the task that offers each batch to all of them."""

    def __init__(
        self,
        on_demand: Callable[[Demand], None] | None = None,
        *,
        early: float = EARLY,
        views: Views | None = None,
    ) -> None:
        """``early``: how early a spectrum may be for a rated subscriber's grid point and
        still be due. Whatever feeds the router on a grid of its own (the capture bridge
        delivers up to half a block early) should allow at least as much, or a delivery it
        makes on time is refused here and the subscriber loses a beat.

        ``views``: the analysis views clients hold (bands, dynamics); each batch is run through
        them, in order, before it is offered, since their state must see every spectrum once
        while a client may skip some."""
        self.stats = RouterStats()
        self._early = early
        self._views = views
        self._view_errors = LogLimiter(log)
        self._subscriptions: list[Subscription] = []
        self._on_demand = on_demand
        self._demand: Demand = None

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    @property
    def demand(self) -> Demand:
        return self._demand

    def on_demand(self, listener: Callable[[Demand], None]) -> None:
        """Tell ``listener`` the demand now and whenever it changes."""
        self._on_demand = listener
        listener(self._demand)

    @contextmanager
    def subscribe(
        self, name: str, capacity: int, *, fps: float | None = None, keep_all: bool = False
    ) -> Iterator[Subscription]:
        """Receive the stream while the ``with`` block is open: every spectrum as it comes,
        or about ``fps`` deliveries a second (the newest spectrum each, or with ``keep_all``
        every spectrum since the previous one)."""
        if keep_all and not fps:
            raise ValueError("keep_all needs a rate: without fps every spectrum is offered")
        send, receive = trio.open_memory_channel[Batch](capacity)
        subscription = Subscription(name, fps, send, receive, keep_all=keep_all, early=self._early)
        self._subscriptions.append(subscription)
        self._update_demand()
        try:
            with send, receive:
                yield subscription
        finally:
            self._subscriptions.remove(subscription)
            self.stats.gone_dropped += subscription.dropped
            self._update_demand()

    def _update_demand(self) -> None:
        demand: Demand = None
        if self._subscriptions:
            demand = min(s.interval for s in self._subscriptions)
        if demand != self._demand:
            self._demand = demand
            if self._on_demand is not None:
                self._on_demand(demand)

    def route(self, batch: Batch) -> None:
        """Offer consecutive spectra, oldest first, to every subscription; never waits."""
        self.stats.routed += len(batch)
        self.stats.batches += 1
        for subscription in self._subscriptions:
            subscription.offer(batch)

    async def run(self, batches: trio.MemoryReceiveChannel[Batch]) -> None:
        """The router task: every batch waiting is routed as one."""
        while True:
            batch = await batches.receive()
            while True:
                try:
                    batch += batches.receive_nowait()
                except trio.WouldBlock:
                    break
            if self._views is not None:
                try:
                    self._views.process(batch)
                except Exception as error:  # the clients of a view get the plain form instead
                    self.stats.view_errors += len(batch)
                    self._view_errors.warning("analysis views failed on a batch: %r", error)
            self.route(batch)
