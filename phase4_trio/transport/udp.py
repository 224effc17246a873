"""UDP sender: the newest spectrum about every interval, one datagram each, binary with flux.

UDP suits receivers that want "the present" and nothing else (LED controllers, other
processes on the same host): there is no connection, no back-pressure and no retransmit.
The sender subscribes with its rate (``1 / interval``): the router offers it the newest
spectrum whenever one is due on a grid of ``interval`` in capture time, and its task sends
each one as it arrives. So the engine is woken for UDP about as often as a datagram goes out,
the rate does not drift, a stall is not replayed as a burst, and nothing new means nothing
sent (the previous spectrum is never repeated).

The socket is ``connect``-ed to the peer: the kernel then resolves the route once, and
reports ICMP "port unreachable" as ``ConnectionRefusedError`` on a later send. Any
``OSError`` on send is counted in ``errors`` and logged through a rate limit; the sender
never stops because a peer went away.
"""

from __future__ import annotations

import logging

import attrs
import trio

from .. import metrics as m
from ..config import Address
from ..errors import Phase4Error
from ..logs import LogLimiter
from ..pipeline.router import Subscription
from ..wire.p4sp import encode, encoded_size

log = logging.getLogger(__name__)

# The largest UDP payload each family can carry in one datagram without jumbograms:
# 65535 (IPv4 total length) - 20 (IP header) - 8 (UDP header); IPv6's payload length
# field excludes its own header, so 65535 - 8. Anything above ~1472 bytes is fragmented
# on an Ethernet path, which UDP reassembles transparently (or loses as a whole).
MAX_PAYLOAD: dict[int, int] = {trio.socket.AF_INET: 65_507, trio.socket.AF_INET6: 65_527}


@attrs.define
class UdpStats:
    """``sent + errors`` is the number of spectra the sender took."""

    sent: int = 0
    errors: int = 0
    bytes: int = 0

    def metrics(self) -> list[m.Metric]:
        return [
            m.labelled(
                "phase4_udp_datagrams_total",
                "counter",
                "UDP datagrams, by outcome.",
                [((("outcome", "sent"),), self.sent), ((("outcome", "error"),), self.errors)],
            ),
            m.counter("phase4_udp_bytes_total", "UDP payload bytes sent.", self.bytes),
        ]


async def run_udp_sender(
    address: Address,
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
        errors = LogLimiter(log, clock=trio.current_time)
        while True:
            spectrum = (await subscription.next())[-1]
            payload = encode(spectrum, with_flux=True, dropped=subscription.dropped)
            try:
                await sock.send(payload)
            except OSError as error:
                stats.errors += 1
                errors.warning("UDP send to %s failed: %s", address, error)
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
