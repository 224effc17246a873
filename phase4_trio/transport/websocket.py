"""One WebSocket client: its own subscription, its own sender task, its own socket.

A client never shares a channel or a task with another, so a client that stops reading only
fills its own channel; the router then evicts (and counts, in the client's ``dropped``) its
oldest frames while everyone else streams on.

The hot path is per client per batch (hundreds of clients, up to 172 batches a second), so
the client's task does as little as it can: it takes everything waiting in its channel at
once, joins the frames :func:`~.client_frames.frame_for` built once per spectrum (shared by
every client with the same options), and writes them with one ``os.write`` when the socket
takes them at once. :class:`ClientStream` orders those writes with trio-websocket's own (the
handshake response, pongs, the close frame), so frames never interleave.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import trio
import trio_websocket

from ..pipeline.messages import Spectrum
from ..pipeline.router import Subscription
from .client_frames import frame_for
from .options import ClientOptions

log = logging.getLogger(__name__)

GOING_AWAY = 1001


class ClientStream(trio.abc.Stream):
    """One client's socket as trio-websocket sees it, plus a direct path for data frames.

    It replays the request head the server already read, so the handshake sees the whole
    request, and it orders every write on the socket: trio-websocket's own arrive through
    :meth:`send_all`, data frames through :meth:`send_frame` (the client's task); both hold
    the same lock, so a frame is always written whole before anything else.
    """

    def __init__(self, stream: trio.SocketStream, head: bytes = b"") -> None:
        self._stream = stream
        self._head = memoryview(head)
        self._lock = trio.StrictFIFOLock()
        self._fd = stream.socket.fileno()

    @property
    def socket(self) -> trio.socket.SocketType:
        return self._stream.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._head:
            await trio.lowlevel.checkpoint()
            size = len(self._head) if max_bytes is None else max_bytes
            chunk, self._head = self._head[:size], self._head[size:]
            return bytes(chunk)
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._lock:
            await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._fd = -1  # the number may be reused as soon as the socket is closed
        await self._stream.aclose()

    async def send_frame(self, frame: bytes) -> None:
        """Write ``frame``, waiting for room if the socket is full.

        The common case, a socket with room, is one ``os.write`` and no scheduling round;
        Trio's ``send_all`` (which checkpoints first) only writes what did not fit.
        """
        lock = self._lock
        if lock.locked():
            await lock.acquire()
        else:
            lock.acquire_nowait()
        try:
            try:
                sent = os.write(self._fd, frame)
            except BlockingIOError:
                sent = 0
            except OSError as error:
                raise trio.BrokenResourceError(f"send failed: {error}") from error
            if sent < len(frame):
                await self._stream.send_all(memoryview(frame)[sent:])
        finally:
            lock.release()


async def stream_to_client(
    connection: trio_websocket.WebSocketConnection,
    stream: ClientStream,
    subscription: Subscription,
    options: ClientOptions,
    observe_latency: Callable[[float], None],
) -> None:
    """Send spectra until the client goes away; what the client sends is read and ignored.

    Each round takes every spectrum waiting in the subscription's channel and writes their
    frames in one write.
    """
    clock = time.time

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_discard_inbound, connection, nursery.cancel_scope)
        try:
            while True:
                spectra = await subscription.next()
                if connection.closed is not None:
                    return
                await stream.send_frame(_frames(spectra, options, subscription.dropped))
                now = clock()
                for spectrum in spectra:
                    observe_latency(now - spectrum.capture_time)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            nursery.cancel_scope.cancel()


def _frames(spectra: list[Spectrum], options: ClientOptions, dropped: int) -> bytes:
    if len(spectra) == 1:
        return frame_for(spectra[0], options, dropped)
    return b"".join([frame_for(spectrum, options, dropped) for spectrum in spectra])


async def _discard_inbound(
    connection: trio_websocket.WebSocketConnection, scope: trio.CancelScope
) -> None:
    """Clients have nothing to tell us; reading keeps pings answered and notices the close."""
    try:
        while True:
            await connection.get_message()
    except trio_websocket.ConnectionClosed:
        scope.cancel()
