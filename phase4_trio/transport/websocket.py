"""One WebSocket client: its options, its own queue, its own sender task.

A client never shares a queue or a task with another, so a client that stops reading only
fills its own queue; the router then drops (and counts, in the client's ``dropped``) its
oldest frames while everyone else streams on.

The hot path is per client per frame (hundreds of clients x 172 frames/s), so it avoids
per-client Python work. Server frames are unmasked and carry no extension, so a frame's bytes
are the same for every client with the same options and ``dropped`` count: :func:`frame_for`
builds them once per spectrum (cached on it, like the encodings). While a client's task is
idle with an empty queue, the router writes the frames of a batch straight to its socket
(``Subscription.deliver``: one non-blocking ``os.write``, no task switch, no wsproto); only
what the socket cannot take at once goes through the client's own queue and task, which
then waits for room. :class:`ClientStream` keeps trio-websocket's own writes (pongs, the
close frame) and the data frames from ever interleaving. Without a ``ClientStream`` (a stand-in
connection in tests), messages go through trio-websocket's ``send_message``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence

import trio
import trio_websocket

from ..pipeline.messages import Spectrum
from ..pipeline.router import Subscription
from .client_frames import encode_for, frame_for
from .options import ClientOptions

log = logging.getLogger(__name__)


class ClientStream(trio.abc.Stream):
    """One client's socket as trio-websocket sees it, with a fast lane for data frames.

    It replays the request head the server already read, so the handshake sees the whole
    request, and it orders every write on the socket: trio-websocket's own (the handshake
    response, pongs, the close frame) arrive through :meth:`send_all`; data frames through
    :meth:`write_nowait` (synchronous, called by the router) or :meth:`send_frame` (the
    client's task). A frame the kernel takes only in part leaves its rest pending, and every
    later write finishes it first, so frames can never interleave.
    """

    def __init__(self, stream: trio.SocketStream, head: bytes = b"") -> None:
        self._stream = stream
        self._head = memoryview(head)
        self._lock = trio.StrictFIFOLock()
        self._pending: memoryview | None = None
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
            await self._finish()
            await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._fd = -1  # the number may be reused as soon as the socket is closed
        await self._stream.aclose()

    def write_nowait(self, data: bytes) -> int:
        """Write what the socket takes now, without waiting; returns the bytes written.

        0 means nothing was written (a write is in progress, or the socket is full, or dead).
        A partial write leaves the rest pending: someone must call :meth:`finish`.
        """
        if self._pending is not None or self._lock.locked():
            return 0
        try:
            sent = os.write(self._fd, data)
        except OSError:  # full, or dead: the task's own write will wait, or find out
            return 0
        if sent < len(data):
            self._pending = memoryview(data)[sent:]
        return sent

    async def send_frame(self, frame: bytes) -> None:
        """Write a frame, waiting for room if the socket is full; returns without yielding
        when the kernel takes it at once."""
        lock = self._lock
        if lock.locked():
            await lock.acquire()
        else:
            lock.acquire_nowait()
        try:
            await self._finish()
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

    async def finish(self) -> None:
        """Write the rest of a frame :meth:`write_nowait` could only start."""
        async with self._lock:
            await self._finish()

    async def _finish(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await self._stream.send_all(pending)


async def stream_to_client(
    connection: trio_websocket.WebSocketConnection,
    subscription: Subscription,
    options: ClientOptions,
    observe_latency: Callable[[float], None],
    stream: ClientStream | None = None,
) -> None:
    """Send spectra until the client goes away; inbound messages are read and ignored.

    With ``stream`` (the connection's :class:`ClientStream`) frames are written directly,
    and while this task is idle with nothing queued, the router hands a batch of spectra
    straight to the socket through ``subscription.deliver`` without waking this task. When
    the socket takes a batch only in part, a short task finishes it, and until then the fast
    lane is refused, so what follows comes through the queue; this task sends everything
    queued in one write. Without ``stream``, every message goes through trio-websocket's
    ``send_message``.
    """
    interval = 1.0 / options.fps if options.fps else 0.0
    clock = time.time

    def frames(spectra: Sequence[Spectrum]) -> bytes:
        dropped = subscription.dropped
        if len(spectra) == 1:
            return frame_for(spectra[0], options, dropped)
        return b"".join([frame_for(spectrum, options, dropped) for spectrum in spectra])

    def observe(spectra: Sequence[Spectrum]) -> None:
        now = clock()
        for spectrum in spectra:
            observe_latency(now - spectrum.capture_time)

    async def finish_pending() -> None:
        """A broken connection is the sender loop's to find and report."""
        assert stream is not None
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.finish()

    def deliver(spectra: Sequence[Spectrum]) -> int:
        """The router's fast lane: all of ``spectra`` went out (or their rest is pending and
        a task finishes it), or none."""
        assert stream is not None
        if connection.closed is not None:
            return 0
        try:
            data = frames(spectra)
            sent = stream.write_nowait(data)
        except Exception:  # the task meets the same error through the queue, and reports it
            return 0
        if not sent:
            return 0
        if sent < len(data):  # until finished, the stream refuses the fast lane
            nursery.start_soon(finish_pending)
        observe(spectra)
        return len(spectra)

    fast_lane = stream is not None and not interval
    async with trio.open_nursery() as nursery:
        if fast_lane:
            subscription.deliver = deliver
        nursery.start_soon(_discard_inbound, connection, nursery.cancel_scope)
        deadline = trio.current_time()
        receive = subscription.receive
        try:
            while True:
                if fast_lane:
                    subscription.ready = receive.statistics().current_buffer_used == 0
                spectrum = await receive.receive()
                subscription.ready = False
                if interval:
                    spectrum = subscription.take_latest(spectrum)
                if stream is None:
                    await connection.send_message(
                        encode_for(spectrum, options, subscription.dropped)
                    )
                    observe((spectrum,))
                elif connection.closed is not None:
                    raise trio_websocket.ConnectionClosed(connection.closed)
                else:
                    batch = [spectrum]
                    if not interval:  # whatever else waits goes out in the same write
                        while True:
                            try:
                                batch.append(receive.receive_nowait())
                            except trio.WouldBlock:
                                break
                    await stream.send_frame(frames(batch))
                    observe(batch)
                if interval:
                    deadline = max(deadline + interval, trio.current_time() - interval)
                    await trio.sleep_until(deadline)
        except (
            trio_websocket.ConnectionClosed,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
        ):
            pass
        finally:
            subscription.ready = False
            subscription.deliver = None
            nursery.cancel_scope.cancel()


async def _discard_inbound(
    connection: trio_websocket.WebSocketConnection, scope: trio.CancelScope
) -> None:
    """Clients have nothing to tell us; reading keeps pings answered and notices the close."""
    try:
        while True:
            await connection.get_message()
    except trio_websocket.ConnectionClosed:
        scope.cancel()
