"""UDP sender: the latest spectrum, one datagram per interval, in the binary form with flux.

UDP suits receivers that want "the present" and nothing else (LED controllers, other
processes on the same host): there is no connection, no back-pressure and no retransmit.
So the sender never queues: at each tick it takes the newest spectrum that arrived since
the previous tick and sends it; spectra in between are skipped by design, and a tick with
nothing new sends nothing (counted as ``idle``) rather than repeating a stale frame.

Ticks sit on an absolute grid (``start + n * interval``), so the rate does not drift with
scheduling latency; after a stall longer than an interval the missed ticks are skipped,
not sent in a burst.

The socket is ``connect``-ed to the peer: the kernel then resolves the route once, and
reports ICMP "port unreachable" as ``ConnectionRefusedError`` on a later send. Any
``OSError`` on send is counted in ``errors`` and logged at most once per
:data:`ERROR_LOG_INTERVAL` seconds; the sender never stops because a peer went away.
"""

from __future__ import annotations

import logging
import math

import attrs
import trio

from ..config import Address
from ..errors import Phase4Error
from ..pipeline.messages import Spectrum
from ..pipeline.router import Subscription
from ..wire.p4sp import encode, encoded_size

log = logging.getLogger(__name__)

# The largest UDP payload each family can carry in one datagram without jumbograms:
# 65535 (IPv4 total length) - 20 (IP header) - 8 (UDP header); IPv6's payload length
# field excludes its own header, so 65535 - 8. Anything above ~1472 bytes is fragmented
# on an Ethernet path, which UDP reassembles transparently (or loses as a whole).
MAX_PAYLOAD: dict[int, int] = {trio.socket.AF_INET: 65_507, trio.socket.AF_INET6: 65_527}
ERROR_LOG_INTERVAL = 5.0


@attrs.define
class UdpStats:
    """``sent + errors + idle`` is the number of ticks so far."""

    sent: int = 0
    errors: int = 0
    idle: int = 0
    bytes: int = 0


async def run_udp_sender(
    address: Address,
    interval_seconds: float,
    subscription: Subscription,
    stats: UdpStats,
    fft_size: int,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Send until cancelled or the subscription closes.

    ``fft_size`` fixes the datagram size, which is checked against the family's limit
    before ``task_status.started()``: a spectrum that cannot fit is a :class:`Phase4Error`
    at start, not an error on every send.
    """
    family, sockaddr = await _resolve(address)
    size = encoded_size(fft_size // 2 + 1, with_flux=True)
    if size > MAX_PAYLOAD[family]:
        raise Phase4Error(
            f"transport.udp_send_address: a {fft_size}-point spectrum with flux is {size} bytes,"
            f" over the {MAX_PAYLOAD[family]}-byte UDP datagram limit (use input.buffer_size 8192"
            " or less)"
        )
    with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
        try:
            await sock.connect(sockaddr)
        except OSError as error:
            raise Phase4Error(
                f"transport.udp_send_address: cannot send to {address} ({error.strerror or error})"
            ) from None
        task_status.started()
        errors = _ErrorLog(address)
        start = trio.current_time()
        tick = 0
        while True:
            tick += 1
            now = trio.current_time()
            if start + tick * interval_seconds < now:
                tick = math.ceil((now - start) / interval_seconds)
            await trio.sleep_until(start + tick * interval_seconds)
            try:
                spectrum = _latest(subscription)
            except trio.EndOfChannel:
                return
            if spectrum is None:
                stats.idle += 1
                continue
            payload = encode(spectrum, with_flux=True, dropped=subscription.dropped)
            try:
                await sock.send(payload)
            except OSError as error:
                stats.errors += 1
                errors.report(error)
            else:
                stats.sent += 1
                stats.bytes += len(payload)


async def _resolve(address: Address) -> tuple[int, tuple[object, ...]]:
    try:
        infos = await trio.socket.getaddrinfo(
            address.host, address.port, type=trio.socket.SOCK_DGRAM
        )
    except OSError as error:
        raise Phase4Error(
            f"transport.udp_send_address: cannot resolve {address.host!r}"
            f" ({error.strerror or error})"
        ) from None
    family, _type, _proto, _name, sockaddr = infos[0]
    return int(family), tuple(sockaddr)


def _latest(subscription: Subscription) -> Spectrum | None:
    """Everything queued since the last tick, newest wins; ``None`` if nothing arrived."""
    latest = None
    while True:
        try:
            latest = subscription.receive.receive_nowait()
        except trio.WouldBlock:
            return latest


class _ErrorLog:
    """The first send error is logged at once; later ones as a count, once per interval."""

    def __init__(self, address: Address) -> None:
        self._address = address
        self._quiet_until = -math.inf
        self._suppressed = 0

    def report(self, error: OSError) -> None:
        now = trio.current_time()
        if now < self._quiet_until:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        log.warning("UDP send to %s failed: %s%s", self._address, error, more)
        self._quiet_until = now + ERROR_LOG_INTERVAL
        self._suppressed = 0
