"""RFC 6455 frames, sans-I/O: build and parse, nothing else.

trio-websocket (through wsproto) does the handshake, reads what clients send and writes the
control frames. Data frames are built here instead because a server frame is unmasked: its
bytes are the same for every client, so a spectrum's frame is built once and written to
hundreds of sockets, where wsproto would build it again per connection (docs/performance.md).
The bench's clients and the tests build their masked client frames and parse server frames
with the same functions; tests/test_wire_websocket_frame.py checks them byte for byte against
wsproto.
"""

from __future__ import annotations

import enum
import struct

import attrs

FIN = 0x80
MASKED = 0x80
_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")
_CLOSE_CODE = struct.Struct("!H")


class Opcode(enum.IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class FrameError(ValueError):
    """Bytes that break RFC 6455 framing (a reserved bit, a masked server frame, ...)."""


def header(opcode: int, length: int, *, fin: bool = True, masked: bool = False) -> bytes:
    """The header of one frame of ``length`` payload bytes (without the masking key)."""
    first = (FIN if fin else 0) | opcode
    mask_bit = MASKED if masked else 0
    if length < 126:
        return bytes((first, mask_bit | length))
    if length < 65536:
        return _LENGTH_16.pack(first, mask_bit | 126, length)
    return _LENGTH_64.pack(first, mask_bit | 127, length)


def build(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One complete frame: unmasked (server to client) or masked with the 4-byte ``mask``
    (client to server, as RFC 6455 requires of clients)."""
    if mask is None:
        return header(opcode, len(payload), fin=fin) + payload
    if len(mask) != 4:
        raise ValueError(f"a masking key has 4 bytes, got {len(mask)}")
    size = len(payload)
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")
    return header(opcode, len(payload), fin=fin, masked=True) + mask + masked


def close_payload(code: int, reason: str = "") -> bytes:
    """The body of a close frame: the status code, then the UTF-8 reason."""
    return _CLOSE_CODE.pack(code) + reason.encode()


def close_code(payload: bytes) -> int | None:
    """The status code of a close frame's body (None for an empty body, which has none)."""
    if len(payload) < 2:
        return None
    code: int = _CLOSE_CODE.unpack_from(payload)[0]
    return code


@attrs.frozen
class FrameHead:
    """Where one frame sits in a buffer: its flags, and its payload at ``[start:end]``."""

    fin: bool
    opcode: int
    masked: bool
    start: int
    end: int


def parse_head(buffer: bytes | bytearray | memoryview, pos: int = 0) -> FrameHead | None:
    """The frame starting at ``pos``, or None while its header or payload is incomplete.

    Low level on purpose: the bench's clients parse hundreds of streams in one process and
    read the fields they need straight out of the buffer, without copying payloads.
    """
    size = len(buffer)
    if size - pos < 2:
        return None
    first, second = buffer[pos], buffer[pos + 1]
    if first & 0x70:
        raise FrameError("reserved bits set (no extension was negotiated)")
    length = second & 0x7F
    start = pos + 2
    if length == 126:
        if size - pos < 4:
            return None
        length = (buffer[pos + 2] << 8) | buffer[pos + 3]
        start = pos + 4
    elif length == 127:
        if size - pos < 10:
            return None
        (length,) = struct.unpack_from("!Q", buffer, pos + 2)
        start = pos + 10
    masked = bool(second & MASKED)
    if masked:
        start += 4
    end = start + length
    if end > size:
        return None
    return FrameHead(bool(first & FIN), first & 0x0F, masked, start, end)


@attrs.frozen
class Frame:
    fin: bool
    opcode: int
    payload: bytes


def parse(buffer: bytes | bytearray | memoryview) -> tuple[list[Frame], int]:
    """Every complete unmasked (server) frame in ``buffer`` and the bytes they take."""
    frames = []
    pos = 0
    while (head := parse_head(buffer, pos)) is not None:
        if head.masked:
            raise FrameError("a server frame must not be masked")
        frames.append(Frame(head.fin, head.opcode, bytes(buffer[head.start : head.end])))
        pos = head.end
    return frames, pos
