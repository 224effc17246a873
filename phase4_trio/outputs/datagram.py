"""A paced datagram output: a router subscriber that sends one packet per tick to its targets.

Two tasks per output. The receive loop reads every spectrum from the output's own bounded
channel into a :class:`~.summary.Collector` (so an onset or a loud block between two ticks
is not lost); the send loop ticks on an absolute grid (``start + n / rate``, missed ticks
skipped rather than sent in a burst, as the UDP sender does) and sends one packet, built
once, to every target. A tick with nothing new sends nothing (``idle``).

Each target has its own ``connect``-ed socket: the host is resolved once, when the output is
made (with the engine, before anything runs), and the kernel reports an ICMP "port
unreachable" as an error on a later send to that target alone. A target that cannot be
resolved or reached then is a :class:`Phase4Error` (one line, exit 2); a send that fails
later is counted, and logged at most once per 5 seconds per target
(:class:`~phase4_trio.transport.errorlog.RateLimitedLog`), and the output carries on.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from .. import metrics as m
from ..config import Address
from ..errors import Phase4Error
from ..pipeline.router import Router, Subscription
from ..transport.errorlog import RateLimitedLog
from ..transport.pacing import Pacer
from .summary import Collector, Summary

# Spectra an output may fall behind by before its oldest are dropped (counted): about a
# third of a second at 172 spectra per second, far more than a tick needs.
QUEUE = 64


@attrs.define
class TargetStats:
    target: str
    sent: int = 0
    errors: int = 0
    bytes: int = 0


@attrs.define
class OutputStats:
    """Per tick, one packet goes to every target, or none (``idle``): for any target,
    ``sent + errors + idle`` is the number of ticks."""

    targets: list[TargetStats]
    idle: int = 0


@attrs.define
class _Destination:
    socket: trio.socket.SocketType
    stats: TargetStats
    errors: RateLimitedLog


class PacedOutput:
    """One output (``osc``, ``wled``): its targets, its rate, how it builds a packet.

    ``build(summary, elapsed)`` turns the blocks since the previous packet into bytes;
    ``elapsed`` is the time since the previous packet was built.
    """

    def __init__(
        self,
        name: str,
        key: str,
        targets: Sequence[Address],
        rate: float,
        frame_rate: float,
        build: Callable[[Summary, float], bytes],
        *,
        multicast: bool,
    ) -> None:
        self.name = name
        self._key = key
        self._targets = tuple(targets)
        self._interval = 1.0 / rate
        self._frame_rate = frame_rate
        self._build = build
        self.stats = OutputStats([TargetStats(str(target)) for target in self._targets])
        self._resolved = [_resolve(key, name, target, multicast=multicast) for target in targets]

    async def run(
        self, router: Router, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Send until cancelled."""
        with contextlib.ExitStack() as stack:
            destinations = []
            for target, (family, sockaddr), stats in zip(
                self._targets, self._resolved, self.stats.targets, strict=True
            ):
                sock = stack.enter_context(trio.socket.socket(family, trio.socket.SOCK_DGRAM))
                try:
                    await sock.connect(sockaddr)
                except OSError as error:
                    raise Phase4Error(_unreachable(self._key, target, error)) from None
                what = f"{self.name.upper()} send to {target}"
                destinations.append(_Destination(sock, stats, RateLimitedLog(what)))
            collector = Collector(self._frame_rate)
            with router.subscribe(self.name, QUEUE, latest_wins=True) as subscription:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_receive, subscription, collector, nursery.cancel_scope)
                    task_status.started()
                    await self._send_loop(collector, destinations)

    async def _send_loop(self, collector: Collector, destinations: list[_Destination]) -> None:
        pacer = Pacer(self._interval)
        last = trio.current_time()
        while True:
            await pacer.tick()
            summary = collector.take()
            if summary is None:
                self.stats.idle += 1
                continue
            now = trio.current_time()
            payload = self._build(summary, now - last)
            last = now
            for destination in destinations:
                await _send(destination, payload)

    def metrics(self) -> list[m.Metric]:
        return [
            m.labelled(
                f"phase4_{self.name}_packets_total",
                "counter",
                f"{self.name.upper()} packets sent to each target, by outcome.",
                [
                    ((("target", s.target), ("outcome", outcome)), value)
                    for s in self.stats.targets
                    for outcome, value in (("sent", s.sent), ("error", s.errors))
                ],
            ),
            m.labelled(
                f"phase4_{self.name}_bytes_total",
                "counter",
                f"{self.name.upper()} payload bytes sent to each target.",
                [((("target", s.target),), s.bytes) for s in self.stats.targets],
            ),
            m.counter(
                f"phase4_{self.name}_idle_ticks_total",
                f"{self.name.upper()} ticks with no new spectrum, so nothing sent.",
                self.stats.idle,
            ),
        ]


def _resolve(
    key: str, name: str, target: Address, *, multicast: bool
) -> tuple[int, tuple[Any, ...]]:
    """The target's family and socket address, checked by connecting a socket to it."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
    except OSError as error:
        raise Phase4Error(
            f"{key}: cannot resolve {target.host!r} ({error.strerror or error})"
        ) from None
    family, _type, _proto, _name, sockaddr = infos[0]
    if not multicast and ipaddress.ip_address(sockaddr[0]).is_multicast:
        raise Phase4Error(
            f"{key}: {target} is a multicast group; {name.upper()} is sent to one host"
            " (give its address)"
        )
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(sockaddr)
        except OSError as error:
            raise Phase4Error(_unreachable(key, target, error)) from None
    return int(family), tuple(sockaddr)


def _unreachable(key: str, target: Address, error: OSError) -> str:
    return f"{key}: cannot send to {target} ({error.strerror or error})"


async def _receive(
    subscription: Subscription, collector: Collector, scope: trio.CancelScope
) -> None:
    """The receive loop: every spectrum, oldest first, into the collector."""
    async for spectrum in subscription.receive:
        collector.add(spectrum)
    scope.cancel()


async def _send(destination: _Destination, payload: bytes) -> None:
    stats = destination.stats
    try:
        await destination.socket.send(payload)
    except OSError as error:
        stats.errors += 1
        destination.errors.report(error)
    else:
        stats.sent += 1
        stats.bytes += len(payload)
