"""HTTP on the WebSocket's address, over real sockets: page, metrics, health, refusals."""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from engine_helpers import make_config, receive_json, running_engine, ws_url
from phase4_trio.config import TransportConfig
from phase4_trio.engine import Engine
from phase4_trio.transport.server import origin_allowed


async def http(engine: Engine, request: bytes) -> tuple[int, dict[str, str], bytes]:
    assert engine.web is not None
    stream = await trio.open_tcp_stream("127.0.0.1", engine.web.port)
    async with stream:
        await stream.send_all(request)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def get(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


async def test_page_metrics_health_and_errors() -> None:
    async with running_engine() as engine:
        status, headers, body = await http(engine, get("/"))
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert b"<canvas" in body
        await trio.sleep(0.6)  # let the stats task see audio
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
            assert (await http(engine, get(sneaky)))[0] in (400, 404), sneaky
        assert (await http(engine, b"GARBAGE\r\n\r\n"))[0] == 400


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
