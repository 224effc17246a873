"""Fan-out: every spectrum to every subscriber, each through its own bounded channel.

A subscriber whose channel is full loses a spectrum (counted on its own stats); nobody else
notices. The router never awaits a subscriber, so one slow client cannot stall another.
Subscribers choose what they lose: ``latest_wins`` evicts the oldest queued spectrum so a
slow reader always catches up to the present (what a live display wants); otherwise the new
spectrum is the one lost. ``sampled`` subscribers asked for fewer frames (``?fps=N``), so
what they skip is counted as ``skipped``, not ``dropped``.

Spectra arrive in batches (one per processor wake-up; one spectrum at real time).

A subscriber may also offer a fast lane: ``deliver`` takes a batch synchronously (the
WebSocket client writes it to its socket in one system call, without waiting) and says how
many of the batch it took, oldest first. The router uses it only while the subscriber says it
is ``ready`` (its task idle, its queue empty), so order is kept; what ``deliver`` leaves is
queued exactly as without it. A delivered spectrum counts as offered and taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
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
    latest_wins: bool = False
    sampled: bool = False
    offered: int = 0
    dropped: int = 0
    skipped: int = 0
    deliver: Callable[[Sequence[Spectrum]], int] | None = attrs.field(default=None, repr=False)
    ready: bool = False

    def offer(self, spectra: Sequence[Spectrum]) -> None:
        """Queue without waiting; ``offered == taken + dropped + skipped + queued``."""
        self.offered += len(spectra)
        if self.ready:
            self.ready = False
            deliver = self.deliver
            if deliver is not None:
                taken = deliver(spectra)
                if taken == len(spectra):
                    self.ready = True
                    return
                spectra = spectra[taken:]
        for spectrum in spectra:
            self._queue(spectrum)

    def _queue(self, spectrum: Spectrum) -> None:
        try:
            self.send.send_nowait(spectrum)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1
            return
        if self.sampled:
            self.skipped += 1
        else:
            self.dropped += 1
        if self.latest_wins or self.sampled:
            self.receive.receive_nowait()
            self.send.send_nowait(spectrum)

    def take_latest(self, spectrum: Spectrum) -> Spectrum:
        """Skip past everything already queued behind ``spectrum``."""
        while True:
            try:
                newer = self.receive.receive_nowait()
            except trio.WouldBlock:
                return spectrum
            self.skipped += 1
            spectrum = newer


@attrs.define
class RouterStats:
    routed: int = 0


class Router:
    def __init__(self) -> None:
        self.stats = RouterStats()
        self._subscriptions: list[Subscription] = []
        self.closed_dropped = 0

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    @contextmanager
    def subscribe(
        self, name: str, capacity: int, *, latest_wins: bool = False, sampled: bool = False
    ) -> Iterator[Subscription]:
        """Receive every spectrum routed while the ``with`` block is open."""
        send, receive = trio.open_memory_channel[Spectrum](capacity)
        subscription = Subscription(name, receive, send, latest_wins=latest_wins, sampled=sampled)
        self._subscriptions.append(subscription)
        try:
            with send, receive:
                yield subscription
        finally:
            self._subscriptions.remove(subscription)
            self.closed_dropped += subscription.dropped

    def route(self, spectra: Sequence[Spectrum]) -> None:
        """Offer consecutive spectra, oldest first, to every subscription; never waits."""
        self.stats.routed += len(spectra)
        for subscription in self._subscriptions:
            subscription.offer(spectra)
