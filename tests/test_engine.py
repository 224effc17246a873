"""The engine end to end: real threads, real sockets on 127.0.0.1, real WebSocket clients."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import pytest
import trio
import trio_websocket

from engine_helpers import (
    assert_conserved,
    make_config,
    receive_json,
    running_engine,
    upgraded_but_never_read,
    ws_url,
)

SAMPLE_RATE = 44100
BLOCK = 256
BIN_HZ = SAMPLE_RATE / BLOCK


async def test_tone_arrives_as_peak_bin_with_spec_amplitude() -> None:
    k = 23  # bin-centred tone: 23 * 172.27 Hz
    # A deep client queue: this test is about content and rate, not about a busy CI machine.
    config = make_config(
        input={"source": f"tone:{k * BIN_HZ!r}:1.0"}, transport={"client_queue": 512}
    )
    async with running_engine(config) as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            first = await receive_json(ws)
            frames = [first]
            started = time.monotonic()
            while time.monotonic() - started < 2.0:
                frames.append(await receive_json(ws))
            elapsed = time.monotonic() - started
    for field in (
        "type",
        "frameCount",
        "startTime",
        "magnitudes",
        "spectralFlux",
        "bpm",
        "bpmConfidence",
    ):
        assert field in first, field
    assert first["type"] == "fft_magnitudes"
    assert first["sampleRate"] == SAMPLE_RATE
    assert first["dropped"] == 0
    assert first["startTime"].endswith("Z") and "." in first["startTime"]
    last = frames[-1]
    magnitudes = np.array(last["magnitudes"])
    assert len(magnitudes) == BLOCK // 2 + 1
    assert int(np.argmax(magnitudes)) == k
    assert magnitudes[k] == pytest.approx(0.5, rel=0.05)  # full scale, Hann: 0.5
    counts = [f["frameCount"] for f in frames]
    assert counts == list(range(counts[0], counts[0] + len(counts))), "gap in frameCount"
    rate = (len(frames) - 1) / elapsed
    assert rate == pytest.approx(SAMPLE_RATE / BLOCK, rel=0.25)


async def test_stalled_client_does_not_slow_another() -> None:
    """A client that never reads loses frames; a reading client beside it loses none."""
    async with running_engine(make_config(transport={"client_queue": 512})) as engine:
        stalled = await upgraded_but_never_read(engine)
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            received = 0
            with trio.fail_after(60):
                while True:
                    message = await receive_json(ws)
                    received += 1
                    subs = {s.name: s for s in engine.router.subscriptions}
                    if subs["ws-1"].dropped > 50 and received > 200:
                        break
            good = subs["ws-2"]
            assert message["dropped"] == 0
            assert good.dropped == 0
            in_flight = good.taken - received  # written by its task, not yet read here
            assert 0 <= in_flight <= 2
        await stalled.aclose()


async def test_frame_conservation_under_stalled_consumer() -> None:
    """captured = delivered + dropped at every stage, exactly, once the pipeline is drained."""
    config = make_config(pipeline={"capture_queue": 4}, transport={"client_queue": 2})
    async with running_engine(config, paced=False) as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            await receive_json(ws)
            await trio.sleep(1.0)  # stall: the client reads nothing while the source runs flat out
            assert engine.bridge is not None
            engine.bridge.close()  # stop capture, then let everything in flight settle
            await trio.sleep(0.5)
            assert engine.bridge.stats.captured > 1000
            assert_conserved(engine)
            (sub,) = engine.router.subscriptions
            assert sub.dropped > 0
            assert sub.taken >= 1
            received = 1
            while True:
                with trio.move_on_after(0.5) as idle:
                    await receive_json(ws)
                    received += 1
                if idle.cancelled_caught:
                    break
            assert received == sub.taken


async def test_shutdown_under_load_leaves_nothing_behind() -> None:
    before = {t.name for t in threading.enumerate()}
    clients_done = 0

    async def client(url: str) -> None:
        nonlocal clients_done
        try:
            async with trio_websocket.open_websocket_url(url) as ws:
                while True:
                    await ws.get_message()
        except trio_websocket.ConnectionClosed:
            clients_done += 1

    with trio.fail_after(10):
        async with trio.open_nursery() as clients, running_engine() as engine:
            for _ in range(20):
                clients.start_soon(client, ws_url(engine))
            await trio.sleep(1.0)
            assert engine.web is not None and engine.web.stats.clients_connected == 20
            # engine gone: every client saw its connection close
    assert clients_done == 20
    leftover = {t.name for t in threading.enumerate()} - before
    assert not [name for name in leftover if name.startswith("phase4")]


async def test_dsp_disabled_still_streams_zeros() -> None:
    async with running_engine(make_config(dsp={"enabled": False})) as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            message = await receive_json(ws)
    assert not any(message["magnitudes"])
    assert len(message["magnitudes"]) == BLOCK // 2 + 1


async def test_processor_exception_drops_its_batch_and_continues() -> None:
    """At real time a batch is one block (two when Trio was late): exactly it is lost."""
    async with running_engine() as engine:
        processor = engine.processor
        assert processor is not None
        original = processor.analyse
        calls = 0
        lost = 0

        def flaky(blocks):  # type: ignore[no-untyped-def]
            nonlocal calls, lost
            calls += 1
            if calls == 5:
                lost = len(blocks)
                raise FloatingPointError("boom")
            return original(blocks)

        processor.analyse = flaky  # type: ignore[method-assign]
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            for _ in range(20):
                await receive_json(ws)
        assert lost >= 1
        assert processor.stats.errors == lost


@pytest.mark.parametrize("window", ["hann", "hamming", "blackman", "nuttall"])
async def test_every_window_streams(window: str) -> None:
    async with running_engine(make_config(dsp={"fft_window": window})) as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            message = await receive_json(ws)
    assert all(math.isfinite(v) for v in message["magnitudes"])


async def test_unpaced_source_is_held_back_not_dropped() -> None:
    """Flat out, the synthetic source waits for the pipeline instead of overrunning it."""
    async with running_engine(paced=False) as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            for _ in range(500):
                await receive_json(ws)
        stats = engine.bridge.stats  # type: ignore[union-attr]
        assert stats.delivered > 500
        assert stats.queue_full == 0
        assert stats.ring_full == 0
        assert engine.processor is not None and engine.processor.stats.router_full == 0


async def test_batched_frames_arrive_whole_in_order_and_accounted() -> None:
    """Unpaced, the processor routes batches and the client's task writes each batch in one
    system call (waiting for room when the socket is full). Every message must parse, frame
    counts only grow, ``dropped`` covers at least every frame missing so far (it may already
    count losses behind a frame still in flight), and once the source stops and the pipeline
    drains, the missing frames are exactly ``dropped``."""
    async with running_engine(paced=False) as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            first = await receive_json(ws)
            previous, dropped = first["frameCount"], first["dropped"]
            received = 1

            def check(message: dict[str, Any]) -> None:
                nonlocal previous, dropped, received
                received += 1
                assert message["frameCount"] > previous
                assert message["dropped"] >= dropped
                missing = message["frameCount"] - first["frameCount"] + 1 - received
                assert message["dropped"] - first["dropped"] >= missing
                previous, dropped = message["frameCount"], message["dropped"]

            for _ in range(3000):
                check(await receive_json(ws))
            assert engine.bridge is not None
            engine.bridge.close()
            while True:
                with trio.move_on_after(1.0) as quiet:
                    check(await receive_json(ws))
                if quiet.cancelled_caught:
                    break
            missing = previous - first["frameCount"] + 1 - received
            assert dropped - first["dropped"] == missing
    assert received > 3000
