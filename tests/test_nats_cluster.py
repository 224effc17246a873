"""Engines and relays as real processes, through the real 3-node NATS cluster.

Each engine publishes under an id of its own, so the tests never hear each other. Clients use
a client queue of 64 (``transport.client_queue``): this machine is shared, and a scheduling
stall of a few tens of milliseconds would otherwise drop frames from the default queue of 4
for reasons that have nothing to do with NATS; the relays' own counters must still show
nothing missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import trio

from nats_helpers import (
    Cluster,
    Received,
    collect,
    contiguous,
    engine_id,
    free_port,
    http_get,
    launch,
    metric,
    run_args,
    wait_for,
    wait_status,
)

pytestmark = pytest.mark.slow

QUEUE = {"PHASE4_TRANSPORT__CLIENT_QUEUE": "64"}


def relay_args(servers: str, *engines: str, ws: str = "127.0.0.1:0") -> list[str]:
    return ["relay", "--nats", servers, *(a for e in engines for a in ("--engine", e)), "--ws", ws]


async def test_a_relay_client_gets_the_same_frames_as_a_direct_client(
    nats_cluster: Cluster,
) -> None:
    name = engine_id("same")
    args, env = run_args(name, nats_cluster.urls[0])
    async with trio.open_nursery() as nursery:
        engine = await launch(nursery, *args, env={**env, **QUEUE})
        relay = await launch(nursery, *relay_args(nats_cluster.urls[1], name), env=QUEUE)
        await wait_status(relay.http_url + "healthz", 200, 20)
        direct, relayed = Received(), Received()
        async with trio.open_nursery() as clients:
            clients.start_soon(collect, engine.ws_url, direct)
            clients.start_soon(collect, relay.ws_url, relayed)
            await wait_for(lambda: len(relayed.frames) >= 400, 20, "400 frames at the relay")
            clients.cancel_scope.cancel()
        _, relay_metrics = await http_get(relay.http_url + "metrics")
        _, engine_metrics = await http_get(engine.http_url + "metrics")
        await relay.stop()
        await engine.stop()
    assert contiguous(direct.frames), "the engine's own client lost frames"
    assert contiguous(relayed.frames), "the relay's client lost frames"
    low = max(direct.frames[0], relayed.frames[0])
    high = min(direct.frames[-1], relayed.frames[-1])
    assert high - low >= 300
    assert [f for f in relayed.frames if low <= f <= high] == list(range(low, high + 1))
    assert metric(relay_metrics, f'phase4_relay_frames_missing_total{{engine="{name}"}}') == 0
    assert metric(relay_metrics, f'phase4_relay_decode_errors_total{{engine="{name}"}}') == 0
    assert metric(engine_metrics, 'phase4_nats_dropped_total{reason="backlog"}') == 0
    assert metric(engine_metrics, 'phase4_endpoint_dropped_total{endpoint="nats"}') == 0
    # The hop through NATS and the relay, on the engine's own clock (same host).
    relayed.latencies.sort()
    assert relayed.latencies[len(relayed.latencies) // 2] < 0.1


async def test_killing_the_engines_node_leaves_engine_and_relays_running(
    nats_cluster: Cluster,
) -> None:
    """The engine knows only node 1 and learns the others from the cluster; relays sit on
    nodes 2 and 3. Node 1 is killed: the engine reconnects to another node, and the gap
    its relay clients see is the reconnect time."""
    name = engine_id("failover")
    first, second, third = nats_cluster.urls
    args, env = run_args(name, first)
    try:
        async with trio.open_nursery() as nursery:
            engine = await launch(nursery, *args, env={**env, **QUEUE})
            relays = [
                await launch(nursery, *relay_args(url, name), env=QUEUE) for url in (second, third)
            ]
            for relay in relays:
                await wait_status(relay.http_url + "healthz", 200, 20)
            _, before = await http_get(engine.http_url + "metrics")
            assert f'phase4_nats_connected{{server="{first}"}} 1' in before
            seen = [Received(), Received(), Received()]
            async with trio.open_nursery() as clients:
                for url, into in zip(
                    [engine.ws_url, *(r.ws_url for r in relays)], seen, strict=True
                ):
                    clients.start_soon(collect, url, into)
                await wait_for(lambda: all(len(r.frames) > 100 for r in seen), 20, "streams")
                killed_at = time.time()
                os.kill(nats_cluster.pid(first), signal.SIGKILL)
                await wait_for(
                    lambda: all(r.times[-1] > killed_at + 1.0 for r in seen[1:]),
                    20,
                    "the relays' clients to stream again",
                )
                clients.cancel_scope.cancel()
            _, after = await http_get(engine.http_url + "metrics")
            for relay in relays:
                await relay.stop()
            await engine.stop()
    finally:
        nats_cluster.start()
    assert contiguous(seen[0].frames), "the engine's local client must not notice"
    assert metric(after, "phase4_nats_reconnects_total") == 1
    assert any(f'phase4_nats_connected{{server="{url}"}} 1' in after for url in (second, third)), (
        after
    )
    outage = metric(after, "phase4_nats_last_outage_seconds")
    for relayed in seen[1:]:
        gaps = [b - a for a, b in zip(relayed.times, relayed.times[1:], strict=False)]
        gap = max(gaps)
        assert gap < 5.0
        print(f"relay client gap {gap * 1e3:.0f} ms, engine reconnect {outage * 1e3:.0f} ms")
    assert outage < 5.0


async def test_a_relay_started_first_waits_then_streams_and_its_clients_survive_a_restart(
    nats_cluster: Cluster,
) -> None:
    name = engine_id("early")
    port = free_port()
    ws = f"127.0.0.1:{port}"
    async with trio.open_nursery() as nursery:
        relay = await launch(nursery, *relay_args(nats_cluster.urls[1], name, ws=ws))
        body = await wait_status(relay.http_url + "healthz", 503, 10)
        assert f"waiting for engine {name}" in body
        client = Received()
        nursery.start_soon(lambda: collect(f"ws://{ws}/ws", client, reconnect=True))
        await wait_for(lambda: client.connections == 1, 10, "the client to connect")
        await trio.sleep(0.5)
        assert client.frames == []  # nothing to show yet: the page says it is waiting
        args, env = run_args(name, nats_cluster.urls[0])
        engine = await launch(nursery, *args, env=env)
        await wait_for(lambda: len(client.frames) > 50, 20, "frames through the waiting relay")
        await wait_status(relay.http_url + "healthz", 200, 10)

        await relay.stop()
        last_before = client.frames[-1]
        relay = await launch(nursery, *relay_args(nats_cluster.urls[2], name, ws=ws))
        await wait_for(lambda: client.connections == 2, 20, "the client to reconnect")
        await wait_for(lambda: client.frames[-1] > last_before + 50, 20, "frames again")
        await relay.stop()
        await engine.stop()
        nursery.cancel_scope.cancel()


async def test_an_engine_whose_nats_is_down_serves_locally_and_publishes_once_it_is_up(
    nats_cluster: Cluster,
) -> None:
    name = engine_id("late")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    args, env = run_args(name, url)
    async with trio.open_nursery() as nursery:
        engine = await launch(nursery, *args, env=env)
        relay = await launch(nursery, *relay_args(url, name))
        direct, relayed = Received(), Received()
        server: trio.Process | None = None
        try:
            async with trio.open_nursery() as clients:
                clients.start_soon(collect, engine.ws_url, direct)
                clients.start_soon(lambda: collect(relay.ws_url, relayed, reconnect=True))
                await wait_for(lambda: len(direct.frames) > 200, 20, "local frames, NATS down")
                assert relayed.frames == []
                server = await trio.lowlevel.open_process(
                    ["nats-server", "-a", "127.0.0.1", "-p", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await wait_for(lambda: len(relayed.frames) > 50, 20, "frames once NATS is up")
                clients.cancel_scope.cancel()
            _, metrics = await http_get(engine.http_url + "metrics")
            await relay.stop()
            await engine.stop()
        finally:
            if server is not None:
                server.terminate()
                with trio.CancelScope(shield=True):
                    await server.wait()
    assert contiguous(direct.frames)
    assert engine.stderr_text().count("no server reachable") == 1
    assert metric(metrics, "phase4_nats_connects_total") == 1
    assert metric(metrics, 'phase4_nats_dropped_total{reason="disconnected"}') > 0
    assert metric(metrics, "phase4_nats_published_total") > 50
