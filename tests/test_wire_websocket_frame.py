"""The frame builder and parser against wsproto, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol
from wsproto.frame_protocol import Opcode as WsprotoOpcode

from phase4_trio.wire import websocket_frame as wf

LENGTHS = [0, 1, 125, 126, 65535, 65536, 70000]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("opcode", [wf.Opcode.TEXT, wf.Opcode.BINARY])
def test_server_frames_match_wsproto(length: int, opcode: wf.Opcode) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
    protocol = FrameProtocol(client=False, extensions=[])
    if opcode == wf.Opcode.TEXT:
        payload = b"a" * length
        expected = protocol.send_data(payload.decode(), fin=True)
    else:
        expected = protocol.send_data(payload, fin=True)
    assert wf.build(opcode, payload) == bytes(expected)


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.booleans())
def test_client_frames_unmask_to_the_payload(payload: bytes, mask: bytes, fin: bool) -> None:
    frame = wf.build(wf.Opcode.BINARY, payload, fin=fin, mask=mask)
    head = wf.parse_head(frame)
    assert head is not None and head.masked and head.fin == fin and head.end == len(frame)
    body = frame[head.start : head.end]
    key = frame[head.start - 4 : head.start]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == payload


def test_client_frames_are_what_wsproto_reads() -> None:
    """wsproto as a server accepts our masked client frames, pings and close included."""
    server = FrameProtocol(client=False, extensions=[])
    mask = b"\x01\x02\x03\x04"
    server.receive_bytes(
        wf.build(wf.Opcode.TEXT, b"hello", mask=mask)
        + wf.build(wf.Opcode.PING, b"p", mask=mask)
        + wf.build(wf.Opcode.CLOSE, wf.close_payload(1001, "bye"), mask=mask)
    )
    frames = list(server.received_frames())
    assert [f.opcode for f in frames] == [
        WsprotoOpcode.TEXT,
        WsprotoOpcode.PING,
        WsprotoOpcode.CLOSE,
    ]
    assert frames[0].payload == "hello"
    assert frames[2].payload == (1001, "bye")


def test_parse_reads_what_wsproto_sends() -> None:
    protocol = FrameProtocol(client=False, extensions=[])
    data = (
        bytes(protocol.send_data(b"x" * 70000, fin=True))
        + bytes(protocol.ping(b"hi"))
        + bytes(protocol.close(1001, "going away"))
    )
    frames, used = wf.parse(data + b"\x82")  # a trailing incomplete header stays unread
    assert used == len(data)
    assert [(f.opcode, len(f.payload)) for f in frames] == [
        (wf.Opcode.BINARY, 70000),
        (wf.Opcode.PING, 2),
        (wf.Opcode.CLOSE, 12),
    ]
    assert wf.close_code(frames[2].payload) == 1001


@given(st.binary(max_size=40))
def test_parse_never_reads_past_the_buffer(data: bytes) -> None:
    try:
        frames, used = wf.parse(data)
    except wf.FrameError:
        return
    assert used <= len(data)
    assert sum(len(f.payload) for f in frames) <= len(data)


def test_masked_server_frames_and_reserved_bits_are_errors() -> None:
    with pytest.raises(wf.FrameError):
        wf.parse(wf.build(wf.Opcode.TEXT, b"x", mask=b"abcd"))
    with pytest.raises(wf.FrameError):
        wf.parse(bytes((0xC1, 1)) + b"x")


def test_incomplete_frames_wait_for_more_bytes() -> None:
    frame = wf.build(wf.Opcode.BINARY, b"y" * 300)
    for cut in range(len(frame)):
        assert wf.parse_head(frame[:cut]) is None
