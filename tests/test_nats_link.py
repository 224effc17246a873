"""The Trio ↔ nats-py link and the engine's publisher, in-process, on the real cluster."""

from __future__ import annotations

import asyncio

import nats
import trio

from engine_helpers import make_config, running_engine
from nats_helpers import Cluster, engine_id, free_port, wait_for
from phase4_trio.transport.nats.codec import StreamMeta, spectrum_from_payload
from phase4_trio.transport.nats.link import Inbound, LinkState, NatsLink


async def _receive_until(link: NatsLink, count: int, into: Inbound) -> None:
    async for batch in link.inbound:
        into.extend(batch)
        if len(into) >= count:
            return


async def test_a_link_carries_batches_in_order_from_node_to_node(nats_cluster: Cluster) -> None:
    subject = f"{engine_id('link')}.order"
    sender = NatsLink([nats_cluster.urls[0]], name="sender")
    receiver = NatsLink([nats_cluster.urls[1]], name="receiver", subscribe=[subject])
    received: Inbound = []
    async with trio.open_nursery() as nursery:
        await nursery.start(receiver.run)
        await nursery.start(sender.run)
        await wait_for(lambda: sender.connected and receiver.connected, 10, "both connected")
        # Interest crosses the cluster asynchronously: probe until the route is in place.
        with trio.fail_after(10):
            while not received:
                sender.publish(subject, [b"probe"])
                with trio.move_on_after(0.2):
                    received.extend(await receiver.inbound.receive())
        received.clear()
        with trio.move_on_after(0.3):  # probes still in flight
            while True:
                await receiver.inbound.receive()
        payloads = [i.to_bytes(4, "big") for i in range(1000)]
        done = trio.Event()

        async def receive() -> None:
            await _receive_until(receiver, len(payloads), received)
            done.set()

        nursery.start_soon(receive)
        for start in range(0, len(payloads), 7):  # ~2,000 messages/s: 12x real time
            sender.publish(subject, payloads[start : start + 7])
            await trio.sleep(0.0035)
        with trio.move_on_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert [data for _, data in received] == payloads, (sender.stats, receiver.stats)
    assert {s for s, _ in received} == {subject}
    assert sender.stats.dropped_backlog == sender.stats.dropped_disconnected == 0
    assert sender.stats.published >= len(payloads)
    assert receiver.stats.inbound_dropped == 0
    assert sender.state is LinkState.STOPPED and receiver.state is LinkState.STOPPED


async def test_a_link_without_a_server_drops_counts_and_stops_promptly() -> None:
    link = NatsLink([f"nats://127.0.0.1:{free_port()}"], name="nowhere")
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        await trio.sleep(1.5)  # at least one retry
        assert link.state is LinkState.CONNECTING
        link.publish("x.y", [b"1", b"2"])
        assert link.stats.dropped_disconnected == 2
        stop = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - stop < 3.0
    assert link.state is LinkState.STOPPED


async def test_the_outbox_is_bounded_and_the_newest_win(nats_cluster: Cluster) -> None:
    subject = f"{engine_id('bound')}.x"
    link = NatsLink([nats_cluster.urls[0]], name="bounded", outbox_limit=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        await wait_for(lambda: link.connected, 10, "connected")
        # Without a checkpoint the asyncio thread may not have published anything yet, but
        # it cannot be more than the limit behind: 25 handed at once, at most 10 taken.
        link.publish(subject, [bytes([i]) for i in range(25)])
        assert link.stats.handed == 10
        assert link.stats.dropped_backlog == 15
        await wait_for(lambda: link.stats.settled == 10, 10, "the batch published")
        nursery.cancel_scope.cancel()
    assert link.stats.published == 10


async def test_the_engine_publishes_every_spectrum_and_answers_for_its_metadata(
    nats_cluster: Cluster,
) -> None:
    name = engine_id("meta")
    listener = NatsLink(
        [nats_cluster.urls[2]],
        name="listener",
        subscribe=[f"phase4.{name}.meta", f"phase4.{name}.spectra"],
    )
    received: Inbound = []
    config = make_config(
        output={"nats": {"servers": [nats_cluster.urls[0]], "engine_id": name}},
        transport={"websocket_enabled": False},
    )

    async def request_meta() -> bytes:
        client = await nats.connect(nats_cluster.urls[1])
        try:
            reply = await client.request(f"phase4.{name}.meta", b"", timeout=5)
            return reply.data
        finally:
            await client.close()

    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run)
        await wait_for(lambda: listener.connected, 10, "the listener connected")
        await trio.sleep(0.3)  # its interest reaches the other nodes
        async with running_engine(config) as engine:
            with trio.fail_after(20):
                while sum(s.endswith(".spectra") for s, _ in received) < 300:
                    received.extend(await listener.inbound.receive())
            answer = await trio.to_thread.run_sync(lambda: asyncio.run(request_meta()))
            metrics = engine.render_metrics()
        nursery.cancel_scope.cancel()
    expected = StreamMeta(name, 44100, 256, 256, f"phase4.{name}.spectra")
    assert StreamMeta.decode(answer) == expected
    announcements = [data for subject, data in received if subject.endswith(".meta")]
    assert [StreamMeta.decode(data) for data in announcements] == [expected]
    frames = [spectrum_from_payload(d).frame_count for s, d in received if s.endswith(".spectra")]
    assert frames == list(range(frames[0], frames[0] + len(frames)))
    assert "phase4_nats_requests_answered_total 1" in metrics
    assert f'phase4_nats_connected{{server="{nats_cluster.urls[0]}"}} 1' in metrics
