"""What NATS costs and what it buys: the link's price per message, and clients at real time
served by the engine alone against the engine plus two relays (docs/scaling.md).

:func:`nats_bench` needs a running NATS cluster (``scripts/nats-cluster start``) and measures:

* ``link``: process CPU per message published through :class:`NatsLink` at the block rate
  (against the same link idle, and plain nats-py on an asyncio loop for comparison), and the
  latency of a message from a Trio task through the link,
  NATS (node 1 → node 2) and a second link back into Trio, against the same trip made by two
  plain asyncio nats-py clients; the difference is what the thread hand-offs add.
* ``engine_alone`` / ``with_relays``: the largest number of JSON clients that all get every
  frame at real time (:func:`clients_summary`'s test) when they connect to the engine, and
  when they are split between two ``phase4 relay`` processes fed by the engine through NATS;
  ``latency_ms`` of a 10-client window on each path (``captureTime`` → client).

Everything runs on this machine: the engine in this process, relays, clients and the three
NATS nodes in others, all on the same cores; the report must say so.
"""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import nats.aio.client
import trio

from ..config import Config, deep_merge, structure_config, unstructure_config
from ..engine import Engine
from ..transport.nats.link import NatsLink
from .client import percentiles
from .suite import (
    BenchError,
    ClientProcess,
    bench_config,
    client_process,
    clients_summary,
    cpu_seconds,
    fanout_steps,
)

FRAME_RATE = 44100 / 256
PAYLOAD = 1088  # one P4SP spectrum with flux at buffer_size 256
_STAMP = struct.Struct("<d")
Progress = Callable[[str], None]


async def nats_bench(
    servers: Sequence[str],
    *,
    seconds: float = 5.0,
    fanout_max: int = 1000,
    progress: Progress = lambda _message: None,
) -> dict[str, Any]:
    """Every NATS figure of one run; ``servers``: at least two nodes of one cluster."""
    if len(servers) < 2:
        raise BenchError("the NATS bench needs two nodes of a cluster (scripts/nats-cluster)")
    result: dict[str, Any] = {"servers": list(servers), "seconds": seconds}
    progress(f"nats: link cost at {FRAME_RATE:.0f} msg/s, {seconds:g} s per window")
    result["link"] = await link_cost(servers, seconds)
    engine_id = f"bench{os.getpid()}"
    progress("nats: clients at real time, engine alone")
    result["engine_alone"] = await served(servers, engine_id, 0, seconds, fanout_max, progress)
    progress("nats: clients at real time, engine + 2 relays")
    result["with_relays"] = await served(servers, engine_id, 2, seconds, fanout_max, progress)
    return result


# ------------------------------------------------------------------ the link


async def link_cost(servers: Sequence[str], seconds: float) -> dict[str, Any]:
    subject = f"bench{os.getpid()}.link"
    payload = bytes(PAYLOAD)
    publisher = NatsLink([servers[0]], name="bench publisher")
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        await _connected(publisher)
        idle = await _cpu_over(seconds, None)
        published = await _cpu_over(seconds, lambda: publisher.publish(subject, [payload]))
        nursery.cancel_scope.cancel()
    messages = published["ticks"]
    per_message = (published["cpu"] - idle["cpu"]) / max(messages, 1)
    plain = await trio.to_thread.run_sync(_asyncio_cpu, servers[0], subject + "-plain", seconds)
    through_link = await _link_latency(servers, subject, seconds)
    direct = await trio.to_thread.run_sync(_asyncio_latency, servers, subject + "-direct", seconds)
    return {
        "cpu_us_per_message": per_message * 1e6,
        "cpu_us_per_message_asyncio": plain * 1e6,
        "cpu_percent_idle": 100 * idle["cpu"] / idle["seconds"],
        "cpu_percent_publishing": 100 * published["cpu"] / published["seconds"],
        "messages": messages,
        "latency_ms_link": through_link,
        "latency_ms_asyncio": direct,
        "added_p50_ms": through_link["p50"] - direct["p50"],
        "added_p99_ms": through_link["p99"] - direct["p99"],
    }


async def _connected(*links: NatsLink) -> None:
    deadline = trio.current_time() + 10
    while not all(link.connected for link in links):
        if trio.current_time() > deadline:
            raise BenchError("no NATS connection in 10 s (is scripts/nats-cluster running?)")
        await trio.sleep(0.05)


async def _cpu_over(seconds: float, tick: Callable[[], None] | None) -> dict[str, float]:
    """Process CPU over ``seconds``, calling ``tick`` at the block rate on an absolute grid."""
    start, cpu, ticks = trio.current_time(), cpu_seconds(), 0
    interval = 1 / FRAME_RATE
    while trio.current_time() - start < seconds:
        ticks += 1
        await trio.sleep_until(start + ticks * interval)
        if tick is not None:
            tick()
    return {"seconds": trio.current_time() - start, "cpu": cpu_seconds() - cpu, "ticks": ticks}


async def _link_latency(servers: Sequence[str], subject: str, seconds: float) -> dict[str, float]:
    sender = NatsLink([servers[0]], name="bench sender")
    receiver = NatsLink([servers[1]], name="bench receiver", subscribe=[subject])
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        await nursery.start(receiver.run)
        await _connected(sender, receiver)
        await trio.sleep(0.5)  # the subscription's interest reaches node 1

        async def receive() -> None:
            async for batch in receiver.inbound:
                now = time.time()
                latencies.extend(now - _STAMP.unpack_from(data)[0] for _, data in batch)

        nursery.start_soon(receive)
        filler = bytes(PAYLOAD - _STAMP.size)
        await _cpu_over(
            seconds, lambda: sender.publish(subject, [_STAMP.pack(time.time()) + filler])
        )
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    return percentiles(latencies, 1e3)


def _asyncio_cpu(server: str, subject: str, seconds: float) -> float:
    """CPU per message of plain nats-py publishing at the block rate on an asyncio loop (the
    same loop ticking without publishing is subtracted): what the link adds is the rest."""

    async def ticking(publish: Callable[[bytes], Any] | None) -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        start, cpu, ticks = loop.time(), cpu_seconds(), 0
        while loop.time() - start < seconds:
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks / FRAME_RATE - loop.time()))
            if publish is not None:
                await publish(bytes(PAYLOAD))
        return cpu_seconds() - cpu, ticks

    async def run() -> float:
        client = nats.aio.client.Client()
        await client.connect(servers=[server])
        idle, _ = await ticking(None)
        busy, ticks = await ticking(lambda data: client.publish(subject, data))
        await client.close()
        return (busy - idle) / max(ticks, 1)

    return asyncio.run(run())


def _asyncio_latency(servers: Sequence[str], subject: str, seconds: float) -> dict[str, float]:
    """The same trip with two nats-py clients on one asyncio loop: no thread hand-off."""

    async def run() -> list[float]:
        sender, receiver = nats.aio.client.Client(), nats.aio.client.Client()
        await sender.connect(servers=[servers[0]])
        await receiver.connect(servers=[servers[1]])
        latencies: list[float] = []

        async def on_message(message: Any) -> None:
            latencies.append(time.time() - _STAMP.unpack_from(message.data)[0])

        await receiver.subscribe(subject, cb=on_message)
        await receiver.flush()
        await asyncio.sleep(0.5)
        filler = bytes(PAYLOAD - _STAMP.size)
        loop = asyncio.get_running_loop()
        start, ticks = loop.time(), 0
        while loop.time() - start < seconds:
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks / FRAME_RATE - loop.time()))
            await sender.publish(subject, _STAMP.pack(time.time()) + filler)
        await asyncio.sleep(0.2)
        await sender.close()
        await receiver.close()
        return latencies

    return percentiles(asyncio.run(run()), 1e3)


# ------------------------------------------------------------------ clients served


def _engine_config(servers: Sequence[str], engine_id: str) -> Config:
    data = deep_merge(
        unstructure_config(bench_config("tone:1000")),
        {"output": {"nats": {"servers": [servers[0]], "engine_id": engine_id}}},
    )
    return structure_config(data)


@asynccontextmanager
async def _relay(server: str, engine_id: str) -> AsyncIterator[str]:
    """A ``phase4 relay`` process; yields its WebSocket URL."""
    process = await trio.lowlevel.open_process(
        [
            *(sys.executable, "-m", "phase4_trio", "relay", "--nats", server),
            *("--engine", engine_id, "--ws", "127.0.0.1:0", "--log-level", "warning"),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PHASE4_TRANSPORT__MAX_CLIENTS": "8192"},
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    raise BenchError("a relay exited at start")
                line += chunk
        yield line.decode().split("websocket ", 1)[1].split()[0]
    finally:
        with trio.CancelScope(shield=True):
            process.terminate()
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def served(
    servers: Sequence[str],
    engine_id: str,
    relays: int,
    seconds: float,
    fanout_max: int,
    progress: Progress,
) -> dict[str, Any]:
    """Fan-out steps until a window misses real time; clients split evenly across the
    relays (or all on the engine when ``relays`` is 0)."""
    engine = Engine(_engine_config(servers, engine_id))
    steps: list[dict[str, Any]] = []
    best = 0
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        await nursery.start(engine.run)
        assert engine.urls is not None
        if relays:
            urls = [
                await stack.enter_async_context(
                    _relay(servers[1 + i % (len(servers) - 1)], engine_id)
                )
                for i in range(relays)
            ]
        else:
            urls = [engine.urls[1]]
        clients = [await stack.enter_async_context(client_process(u, "raw")) for u in urls]
        latency = await _window(clients, 10, seconds)
        for count in fanout_steps(fanout_max):
            progress(f"nats: {'engine' if not relays else f'{relays} relays'}, {count} clients")
            try:
                summary = await _window(clients, count, seconds)
            except BenchError as error:
                steps.append({"clients": count, "realtime": False, "error": str(error)})
                break
            steps.append(summary)
            if not summary["realtime"]:
                break
            best = count
        nursery.cancel_scope.cancel()
    return {"relays": relays, "max_clients": best, "latency_10": latency, "steps": steps}


async def _window(clients: list[ClientProcess], count: int, seconds: float) -> dict[str, Any]:
    """``count`` clients split over the client processes, one window measured on all."""
    shares = [count // len(clients) + (i < count % len(clients)) for i in range(len(clients))]
    for driver, share in zip(clients, shares, strict=True):
        await driver.connect(share)
    await trio.sleep(1.0)
    results: list[dict[str, Any]] = [{}] * len(clients)

    async def measure(index: int) -> None:
        results[index] = clients_summary(await clients[index].measure(seconds), seconds)

    async with trio.open_nursery() as nursery:
        for index in range(len(clients)):
            nursery.start_soon(measure, index)
    return {
        "clients": count,
        "realtime": all(r["realtime"] for r in results),
        "dropped": sum(r["dropped"] for r in results),
        "missing": sum(r["missing"] for r in results),
        "min_received": min(r["min_received"] for r in results),
        "expected": results[0]["expected"],
        "latency_ms": {k: max(r["latency_ms"][k] for r in results) for k in ("p50", "p99")},
    }


def main() -> None:  # pragma: no cover - a manual check: python -m phase4_trio.bench.nats URLS
    import orjson

    servers = sys.argv[1].split(",")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    fanout = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    result = trio.run(
        lambda: nats_bench(
            servers,
            seconds=seconds,
            fanout_max=fanout,
            progress=lambda m: print(m, file=sys.stderr),
        )
    )
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
