"""One listening address, several streams: a WebServer mounted under ``/ID/`` of another."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import trio
import trio_websocket

from nats_helpers import http_get, wait_for
from phase4_trio.config import Address, TransportConfig
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.pipeline.router import Router
from phase4_trio.transport.http import HttpApp, load_assets
from phase4_trio.transport.server import WebServer

ZEROS = np.zeros(129, np.float32)


def _server(config: TransportConfig, health: str) -> tuple[WebServer, Router]:
    router = Router()
    app = HttpApp(load_assets(), lambda: "# metrics\n", lambda: (health == "ok", health))
    return WebServer(config, router, app, lambda _latency: None), router


async def _first_frame(url: str, router: Router, frame: int) -> int:
    async with trio_websocket.open_websocket_url(url) as connection:
        await wait_for(lambda: bool(router.subscriptions), 5, "the client's subscription")
        router.route((Spectrum(frame, 0.0, 44100, 256, ZEROS, ZEROS, 0.0, 0.0),))
        with trio.fail_after(5):
            message = await connection.get_message()
    count: int = orjson.loads(message)["frameCount"]
    return count


async def test_a_mounted_server_answers_under_its_prefix() -> None:
    config = TransportConfig(websocket_address=Address.parse("127.0.0.1:0"))
    front, front_router = _server(config, "ok")
    studio, studio_router = _server(config, "waiting for studio")
    front.mount("studio", studio)
    async with trio.open_nursery() as nursery:
        await nursery.start(front.run)
        base = f"127.0.0.1:{front.port}"
        status, body = await http_get(f"http://{base}/studio/healthz")
        assert (status, body) == (503, "waiting for studio\n")
        assert await http_get(f"http://{base}/healthz") == (200, "ok\n")
        status, page = await http_get(f"http://{base}/studio/")
        assert status == 200 and "<script" in page
        assert (await http_get(f"http://{base}/studio/app.js"))[0] == 200
        assert await http_get(f"http://{base}/studio") == (308, "/studio/\n")
        assert (await http_get(f"http://{base}/elsewhere/"))[0] == 404
        assert await _first_frame(f"ws://{base}/studio/ws", studio_router, 41) == 41
        assert await _first_frame(f"ws://{base}/ws", front_router, 7) == 7
        nursery.cancel_scope.cancel()
    assert studio.stats.clients_total == 1 and front.stats.clients_total == 1


async def test_clients_of_a_mounted_server_get_1001_when_the_front_one_stops() -> None:
    config = TransportConfig(websocket_address=Address.parse("127.0.0.1:0"))
    front, _ = _server(config, "ok")
    studio, studio_router = _server(config, "ok")
    front.mount("studio", studio)
    scope = trio.CancelScope()

    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        with scope:
            await front.run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(serve)
        url = f"ws://127.0.0.1:{front.port}/studio/ws"
        async with trio_websocket.open_websocket_url(url) as connection:
            await wait_for(lambda: bool(studio_router.subscriptions), 5, "the subscription")
            scope.cancel()
            with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await connection.get_message()
    assert closed.value.reason.code == 1001
