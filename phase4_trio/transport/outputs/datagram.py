"""A paced datagram output: a router subscriber that sends one packet per delivery to its targets.

The output subscribes at its own rate with ``keep_all``: the router delivers, about ``rate``
times a second on its grid of capture time, every spectrum since the previous delivery, and
the output reads each into a :class:`~.summary.Collector`, so an onset or a loud block between
two packets is not lost. One packet, built once, goes to every target per delivery, describing
those blocks. The engine is woken for the output only as often as it sends; on capture time,
the rate does not drift, a stall is not replayed as a burst, and nothing new means nothing
sent.

Each target has its own ``connect``-ed socket: the host is resolved once, when the output is
made (with the engine, before anything runs), and the kernel reports an ICMP "port
unreachable" as an error on a later send to that target alone. A target that cannot be
resolved or reached then is a :class:`Phase4Error` (one line, exit 2); a send that fails
later is counted, and logged through a :class:`~phase4_trio.logs.LogLimiter` per target,
and the output carries on.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import socket
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ... import metrics as m
from ...config import Address
from ...errors import Phase4Error
from ...logs import LogLimiter
from ...pipeline.router import Router, Subscription
from .summary import Collector, Summary

log = logging.getLogger(__name__)

# Deliveries an output may fall behind by before its oldest are dropped (counted): about a
# second at the usual rates, far more than a packet needs.
QUEUE = 64


@attrs.define
class TargetStats:
    target: str
    sent: int = 0
    errors: int = 0
    bytes: int = 0


@attrs.define
class OutputStats:
    """Each packet goes to every target: for any target, ``sent + errors == packets``."""

    targets: list[TargetStats]
    packets: int = 0


@attrs.define
class _Destination:
    socket: trio.socket.SocketType
    target: Address
    stats: TargetStats
    errors: LogLimiter


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
                errors = LogLimiter(log, clock=trio.current_time)
                destinations.append(_Destination(sock, target, stats, errors))
            with router.subscribe(
                self.name, QUEUE, fps=1.0 / self._interval, keep_all=True
            ) as subscription:
                task_status.started()
                await self._send_loop(subscription, destinations)

    async def _send_loop(
        self, subscription: Subscription, destinations: list[_Destination]
    ) -> None:
        """Every spectrum of a delivery into the collector, then one packet."""
        collector = Collector(self._frame_rate)
        last = -math.inf
        while True:
            spectra = await subscription.next()
            for spectrum in spectra:
                collector.add(spectrum)
            summary = collector.take()
            assert summary is not None  # it holds at least ``spectra``
            now = spectra[-1].capture_time
            payload = self._build(summary, now - last if last > -math.inf else self._interval)
            last = now
            self.stats.packets += 1
            for destination in destinations:
                await self._send(destination, payload)

    async def _send(self, destination: _Destination, payload: bytes) -> None:
        stats = destination.stats
        try:
            await destination.socket.send(payload)
        except OSError as error:
            stats.errors += 1
            destination.errors.warning(
                "%s send to %s failed: %s", self.name.upper(), destination.target, error
            )
        else:
            stats.sent += 1
            stats.bytes += len(payload)

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
