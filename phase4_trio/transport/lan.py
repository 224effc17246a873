"""The addresses other machines can reach this one at, for ``--ws 0.0.0.0:PORT``.

Bound to all interfaces, the engine's own URL (127.0.0.1) is useless on another machine;
the command prints one URL per network address instead. The page needs no setting for it:
it connects its WebSocket back to the host it was loaded from, and that origin is allowed.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterable

ALL_INTERFACES = ("0.0.0.0", "")
SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def reachable(addresses: Iterable[str]) -> list[str]:
    """The addresses worth offering to another machine: IPv4, not loopback, not link-local,
    each once, in the order given."""
    kept: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text)
        if address.version != 4 or address.is_loopback or address.is_link_local:
            continue
        if text not in kept:
            kept.append(text)
    return kept


def page_urls(addresses: Iterable[str], port: int) -> list[str]:
    return [f"http://{address}:{port}/" for address in reachable(addresses)]


def interface_addresses() -> list[str]:
    """The IPv4 address of every network interface (Linux ioctl; empty elsewhere)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):  # no IPv4 address on this interface
                reply = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
                found.append(socket.inet_ntoa(reply[20:24]))
    return found
