"""The router task: every batch of spectra to every subscriber, each through its own channel.

The router never awaits a subscriber: it offers each batch with ``send_nowait`` to every
subscription's own bounded memory channel. A full channel evicts its oldest batch (latest
wins: a live display wants the present) and counts the spectra it held in that subscriber's
``dropped``; nobody else notices, so one slow client cannot stall another. Each subscriber's
own task takes what waits in its channel and writes it to its own socket.

A subscriber that asked for at most ``fps`` spectra a second is offered only the newest
spectrum of a batch, and only when one is due on its grid of ``1 / fps`` seconds of capture
time; what it is not offered counts as ``skipped``, not ``dropped``.

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
from .messages import Batch, Spectrum

log = logging.getLogger(__name__)

#: What the subscribers want: None (nobody listens), or the shortest interval between the
#: spectra any of them wants, in seconds (0.0: every spectrum).
Demand = float | None

#: How early, as a fraction of its interval, a spectrum may be and still be due.
EARLY = 0.25


@attrs.define(eq=False)
class Subscription:
    """One subscriber's view of the stream: its channel and its own counters.

    ``offered == taken + dropped + skipped + queued`` at every moment.
    """

    name: str
    fps: float | None
    _send: trio.MemorySendChannel[Batch] = attrs.field(repr=False)
    _receive: trio.MemoryReceiveChannel[Batch] = attrs.field(repr=False)
    offered: int = 0
    taken: int = 0
    dropped: int = 0
    skipped: int = 0
    queued: int = 0
    _next_due: float = -math.inf

    @property
    def interval(self) -> float:
        return 1.0 / self.fps if self.fps else 0.0

    @property
    def batches_waiting(self) -> int:
        return self._receive.statistics().current_buffer_used

    def offer(self, batch: Batch) -> None:
        """Queue without waiting (called by the router task)."""
        self.offered += len(batch)
        if self.fps:
            newest = batch[-1]
            self.skipped += len(batch) - 1
            if newest.capture_time < self._next_due:
                self.skipped += 1
                return
            following = self._next_due + 1.0 / self.fps
            self._next_due = (
                following
                if following > newest.capture_time
                else newest.capture_time + 1.0 / self.fps
            )
            batch = (newest,)
        try:
            self._send.send_nowait(batch)
        except trio.WouldBlock:
            evicted = self._receive.receive_nowait()
            self.queued -= len(evicted)
            if self.fps:
                self.skipped += len(evicted)
            else:
                self.dropped += len(evicted)
            self._send.send_nowait(batch)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += len(batch)
            return
        self.queued += len(batch)

    async def next(self) -> list[Spectrum]:
        """Every spectrum waiting, oldest first; waits for one when there is none.

        Only the subscriber's own task calls this.
        """
        spectra = list(await self._receive.receive())
        while True:
            try:
                spectra += self._receive.receive_nowait()
            except trio.WouldBlock:
                break
        self.taken += len(spectra)
        self.queued -= len(spectra)
        return spectra

    def latest(self) -> Spectrum | None:
        """The newest spectrum waiting, without waiting; older ones count as skipped."""
        spectra: list[Spectrum] = []
        while True:
            try:
                spectra += self._receive.receive_nowait()
            except trio.WouldBlock:
                break
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
        ]


class Router:
    """Subscriptions, and the task that offers each batch to all of them."""

    def __init__(self, on_demand: Callable[[Demand], None] | None = None) -> None:
        self.stats = RouterStats()
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
        self, name: str, capacity: int, *, fps: float | None = None
    ) -> Iterator[Subscription]:
        """Receive the stream while the ``with`` block is open (about ``fps`` a second)."""
        send, receive = trio.open_memory_channel[Batch](capacity)
        subscription = Subscription(name, fps, send, receive)
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
            self.route(batch)
