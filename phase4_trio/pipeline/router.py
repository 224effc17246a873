"""Fan-out: every spectrum to every subscriber, each through its own bounded channel.

A subscriber whose channel is full loses that spectrum (counted on its own stats); nobody
else notices. The router never awaits a subscriber, so one slow client cannot stall another.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import trio

from .messages import Spectrum

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class Subscription:
    """One endpoint's view of the stream: its channel and its own counters."""

    name: str
    receive: trio.MemoryReceiveChannel[Spectrum]
    send: trio.MemorySendChannel[Spectrum] = attrs.field(repr=False)
    delivered: int = 0
    dropped: int = 0


@attrs.define
class RouterStats:
    routed: int = 0


class Router:
    def __init__(self) -> None:
        self.stats = RouterStats()
        self._subscriptions: list[Subscription] = []
        self.closed_dropped: int = 0
        self.closed_delivered: int = 0

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    @contextmanager
    def subscribe(self, name: str, capacity: int) -> Iterator[Subscription]:
        """Receive every spectrum routed while the ``with`` block is open."""
        send, receive = trio.open_memory_channel[Spectrum](capacity)
        subscription = Subscription(name, receive, send)
        self._subscriptions.append(subscription)
        try:
            with send, receive:
                yield subscription
        finally:
            self._subscriptions.remove(subscription)
            self.closed_delivered += subscription.delivered
            self.closed_dropped += subscription.dropped

    def route(self, spectrum: Spectrum) -> None:
        self.stats.routed += 1
        for subscription in self._subscriptions:
            try:
                subscription.send.send_nowait(spectrum)
            except trio.WouldBlock:
                subscription.dropped += 1
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                subscription.dropped += 1
            else:
                subscription.delivered += 1

    async def run(self, receive: trio.MemoryReceiveChannel[Spectrum]) -> None:
        async with receive:
            async for spectrum in receive:
                self.route(spectrum)
