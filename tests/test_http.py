"""HTTP on the WebSocket's address, over real sockets: page, metrics, health, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from unittest.mock import ANY

import h11
import pytest
import trio
import trio_websocket

from engine_helpers import make_config, receive_json, running_engine, ws_url
from phase4_trio.config import TransportConfig
from phase4_trio.engine import Engine
from phase4_trio.transport.http import MAX_HEAD_BYTES, HttpExchange, text
from phase4_trio.transport.server import origin_allowed


async def exchange(engine: Engine, request: bytes, *, eof: bool = False) -> bytes:
    """Send a request (then end the stream if ``eof``), read until the server closes."""
    assert engine.web is not None
    stream = await trio.open_tcp_stream("127.0.0.1", engine.web.port)
    async with stream:
        await stream.send_all(request)
        if eof:
            await stream.send_eof()
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    return data


def parse(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


async def http(engine: Engine, request: bytes) -> tuple[int, dict[str, str], bytes]:
    status_line, headers, body = parse(await exchange(engine, request))
    return int(status_line.split()[1]), headers, body


async def audio_seen(engine: Engine) -> None:
    """Until the engine's stats task has seen audio from its (real, real-time) source: a
    poll, since the stats task sets no event for it."""
    with trio.fail_after(5):
        while engine.health()[1] == "waiting for audio":  # noqa: ASYNC110
            await trio.sleep(0.05)


def get(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


async def test_page_metrics_health_and_errors() -> None:
    async with running_engine() as engine:
        status, headers, body = await http(engine, get("/"))
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert b"<canvas" in body
        await audio_seen(engine)
        status, _, body = await http(engine, get("/healthz"))
        assert (status, body.strip()) == (200, b"ok: audio flowing")
        status, headers, body = await http(engine, get("/metrics"))
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        text = body.decode()
        for name in (
            "phase4_frames_captured_total",
            'phase4_frames_dropped_total{stage="capture_queue"}',
            "phase4_clients_connected 0",
            "phase4_endpoints_dropped_total 0",
            "phase4_http_requests_total",
            "phase4_capture_tap_errors_total 0",
            "phase4_callback_seconds_bucket",
            "phase4_capture_to_send_seconds_count",
            "process_resident_memory_bytes",
        ):
            assert name in text, name
        assert (await http(engine, get("/nope")))[0] == 404
        assert (await http(engine, get("/", "POST")))[0] == 405
        assert (await http(engine, get("/", "HEAD")))[2] == b""
        for sneaky in (
            "/../pyproject.toml",
            "/%2e%2e/pyproject.toml",
            "//etc/passwd",
            "/static/../cli.py",
        ):
            assert (await http(engine, get(sneaky)))[0] == 404, sneaky
        assert (await http(engine, b"GARBAGE\r\n\r\n"))[0] == 400


async def test_status_lines_have_reason_phrases_and_a_date() -> None:
    async with running_engine() as engine:
        for request, status_line in [
            (get("/"), "HTTP/1.1 200 OK"),
            (get("/nope"), "HTTP/1.1 404 Not Found"),
            (get("/", "DELETE"), "HTTP/1.1 405 Method Not Allowed"),
            (b"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request"),
            (
                get("/", extra="X: " + "a" * 20000 + "\r\n"),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
        ]:
            line, headers, _ = parse(await exchange(engine, request))
            assert line == status_line
            sent = parsedate_to_datetime(headers["date"])
            assert abs((sent - datetime.now(UTC)).total_seconds()) < 60
            assert headers["date"].endswith(" GMT")
        _, headers, body = parse(await exchange(engine, get("/", "HEAD")))
        assert body == b""
        assert int(headers["content-length"]) > 1000  # the size a GET would get


async def test_a_large_post_gets_its_405_every_time() -> None:
    """Closing with 2 MB unread would reset the connection, which can destroy the reply on
    its way: the server half-closes and drains the body first."""
    body = bytes(2 * 2**20)
    request = get("/", "POST", f"Content-Length: {len(body)}\r\n") + body
    async with running_engine() as engine:
        for _ in range(10):
            line, headers, reply = parse(await exchange(engine, request))
            assert line == "HTTP/1.1 405 Method Not Allowed"
            assert headers["allow"] == "GET, HEAD"
            assert reply == b"method POST not allowed\n"


async def test_a_client_that_reads_the_reply_before_sending_its_body() -> None:
    """The reply comes at once; the server then waits (bounded) for the body, reads it and
    closes cleanly."""
    async with running_engine() as engine:
        assert engine.web is not None
        stream = await trio.open_tcp_stream("127.0.0.1", engine.web.port)
        async with stream:
            await stream.send_all(get("/", "PUT", "Content-Length: 100000\r\n"))
            data = b""
            with trio.fail_after(5):
                while b"not allowed\n" not in data:
                    data += await stream.receive_some(65536)
            assert data.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
            await stream.send_all(bytes(100000))
            with trio.fail_after(5):
                assert await stream.receive_some(100) == b""  # a clean end: no reset


async def test_a_client_that_leaves_mid_head_or_at_once_costs_nothing() -> None:
    async with running_engine() as engine:
        assert await exchange(engine, b"", eof=True) == b""
        line, _, _ = parse(await exchange(engine, b"GET / HTTP/1.1\r\nHost: x\r\n", eof=True))
        assert line == "HTTP/1.1 400 Bad Request"
        assert (await http(engine, get("/")))[0] == 200


async def test_healthz_says_no_signal_for_a_silent_input_and_stays_200() -> None:
    async with running_engine(make_config(input={"source": "tone:1000:0"})) as engine:
        await audio_seen(engine)
        status, _, body = await http(engine, get("/healthz"))
        assert (status, body) == (200, b"ok: no signal (audio flowing, but below -90 dBFS)\n")
    quiet = 10 ** (-80 / 20)  # a quiet input is still a signal
    async with running_engine(make_config(input={"source": f"tone:1000:{quiet}"})) as engine:
        await audio_seen(engine)
        assert await http(engine, get("/healthz")) == (200, ANY, b"ok: audio flowing\n")


async def test_healthz_is_503_before_audio_flows() -> None:
    async with running_engine() as engine:
        engine._last_audio = -1.0
        status, _, body = await http(engine, get("/healthz"))
        assert status == 503
        assert b"waiting for audio" in body


async def test_foreign_origin_refused_local_allowed() -> None:
    async with running_engine() as engine:
        port = engine.web.port  # type: ignore[union-attr]
        upgrade = (
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        )
        status, _, _ = await http(
            engine, get("/ws", extra=upgrade + "Origin: http://evil.example\r\n")
        )
        assert status == 403
        assert engine.web.stats.refused_origin == 1  # type: ignore[union-attr]
        headers = [("Origin", f"http://localhost:{port}")]
        async with trio_websocket.open_websocket_url(ws_url(engine), extra_headers=headers) as ws:
            assert (await receive_json(ws))["type"] == "fft_magnitudes"


async def test_bad_query_is_400_and_max_clients_503() -> None:
    async with running_engine(make_config(transport={"max_clients": 1})) as engine:
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with trio_websocket.open_websocket_url(ws_url(engine, "format=xml")):
                pass
        assert rejected.value.status_code == 400
        async with trio_websocket.open_websocket_url(ws_url(engine)) as first:
            await receive_json(first)
            with pytest.raises(trio_websocket.ConnectionRejected) as full:
                async with trio_websocket.open_websocket_url(ws_url(engine)):
                    pass
            assert full.value.status_code == 503


async def test_silent_connection_closed_after_handshake_timeout() -> None:
    config = make_config(transport={"handshake_timeout": "300ms"})
    async with running_engine(config) as engine:
        stream = await trio.open_tcp_stream("127.0.0.1", engine.web.port)  # type: ignore[union-attr]
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""
        assert engine.web.stats.handshake_timeouts == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "x", True),
        ("http://localhost:3000", "127.0.0.1:8889", True),
        ("http://127.0.0.1:8889", "127.0.0.1:8889", True),
        ("http://studio.lan:8889", "studio.lan:8889", True),
        ("http://evil.example", "studio.lan:8889", False),
        ("null", "127.0.0.1:8889", False),
        ("file://", "127.0.0.1:8889", False),
    ],
)
def test_origin_policy(origin: str | None, host: str, allowed: bool) -> None:
    assert origin_allowed(origin, host, TransportConfig()) is allowed


def test_origin_allow_list_and_any() -> None:
    listed = TransportConfig(allowed_origins=("http://studio.lan:8080",))
    assert origin_allowed("http://studio.lan:8080", "x:1", listed)
    assert origin_allowed("http://localhost:3000", "x:1", listed)
    assert not origin_allowed("http://other.lan:8080", "x:1", listed)
    assert origin_allowed("http://evil.example", "x:1", TransportConfig(allow_any_origin=True))


# ------------------------------------------------------------------ HttpExchange, sans-I/O


def test_exchange_reads_a_head_in_pieces_and_keeps_every_byte() -> None:
    exchange = HttpExchange()
    head = get("/metrics") + b"\x81\x00"  # a frame a hasty client sent straight after
    assert exchange.receive(head[:10]) is None
    request = exchange.receive(head[10:])
    assert isinstance(request, h11.Request)
    assert (request.method, request.target) == (b"GET", b"/metrics")
    assert bytes(exchange.received) == head


def test_exchange_refuses_a_head_over_the_limit_while_it_is_incomplete() -> None:
    exchange = HttpExchange()
    assert exchange.receive(b"GET / HTTP/1.1\r\nX: ") is None
    filler = b"a" * exchange.room()
    with pytest.raises(h11.RemoteProtocolError) as refused:
        exchange.receive(filler)
    assert refused.value.error_status_hint == 431
    assert len(exchange.received) == MAX_HEAD_BYTES


def test_exchange_takes_a_head_of_exactly_the_limit() -> None:
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX: "
    head = start + b"a" * (MAX_HEAD_BYTES - len(start) - 4) + b"\r\n\r\n"
    assert len(head) == MAX_HEAD_BYTES
    exchange = HttpExchange()
    assert exchange.receive(head[:100]) is None
    assert exchange.room() == MAX_HEAD_BYTES - 100
    assert isinstance(exchange.receive(head[100:]), h11.Request)


def test_exchange_writes_the_response_through_the_same_connection() -> None:
    exchange = HttpExchange()
    exchange.receive(get("/x", "HEAD"))
    reply = exchange.respond(text(404, "not found: /x"), "Wed, 02 Dec 2026 06:00:00 GMT")
    assert reply.startswith(b"HTTP/1.1 404 Not Found\r\nDate: Wed, 02 Dec 2026 06:00:00 GMT\r\n")
    assert b"Content-Length: 14\r\n" in reply
    assert reply.endswith(b"\r\n\r\n")  # HEAD: no body
    assert exchange.request_complete()


def test_exchange_knows_when_a_body_is_still_coming() -> None:
    exchange = HttpExchange()
    exchange.receive(get("/", "POST", "Content-Length: 10\r\n") + b"12345")
    exchange.respond(text(405, "no"), "x")
    assert not exchange.request_complete()
    exchange.connection.receive_data(b"67890")
    assert exchange.request_complete()


def test_exchange_answers_a_garbled_request() -> None:
    exchange = HttpExchange()
    with pytest.raises(h11.RemoteProtocolError):
        exchange.receive(b"GARBAGE\r\n\r\n")
    assert exchange.respond(text(400, "bad"), "x").startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert not exchange.request_complete()
