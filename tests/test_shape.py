"""The engine's shape, observed from outside: the audio thread enters Trio through the token,
every hand-off is a memory channel between tasks, only a client's task writes to its socket;
conservation holds when any stage stalls; the engine rests when nobody listens and wakes at the
rate its clients want; shutdown sends every client a close frame with code 1001."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import trio
import trio_websocket
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from engine_helpers import (
    assert_conserved,
    listening_bridge,
    make_config,
    receive_json,
    running_engine,
    upgraded_but_never_read,
    ws_url,
)
from phase4_trio.capture.bridge import Block, BlockFlag, CaptureBridge
from phase4_trio.dsp import Analyzer
from phase4_trio.pipeline.processor import Processor
from phase4_trio.pipeline.router import Router, Subscription
from phase4_trio.transport.websocket import ClientStream

BLOCK = 256
RATE = 44100
PERIOD = BLOCK / RATE


class RecordingToken:
    """Stands in front of the run's TrioToken and notes who calls it, and where the call runs."""

    def __init__(self, token: trio.lowlevel.TrioToken, calls: list[tuple[str, ...]]) -> None:
        self._token = token
        self._calls = calls
        self._wrappers: dict[Callable[[], object], Callable[[], None]] = {}

    def run_sync_soon(self, fn: Callable[[], object], *, idempotent: bool) -> None:
        self._calls.append(("called", threading.current_thread().name, str(idempotent)))
        # Coalescing needs the same callable every time: one wrapper per ``fn``.
        wrapper = self._wrappers.get(fn)
        if wrapper is None:
            calls = self._calls

            def wrapper() -> None:
                calls.append(("ran", threading.current_thread().name))
                fn()

            self._wrappers[fn] = wrapper
        self._token.run_sync_soon(wrapper, idempotent=idempotent)


async def test_blocks_go_thread_token_processor_router_client_through_channels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, ...]] = []
    tasks: dict[str, set[trio.lowlevel.Task]] = {}
    channels: dict[str, Any] = {}

    def note(role: str) -> None:
        tasks.setdefault(role, set()).add(trio.lowlevel.current_task())

    init = CaptureBridge.__init__

    def recording_init(self: CaptureBridge, **kwargs: Any) -> None:
        init(self, **kwargs)
        self._token = RecordingToken(self._token, calls)  # type: ignore[assignment]
        channels["bridge_out"] = kwargs["send"]

    processor_run, router_run = Processor.run, Router.run

    async def processor(self: Processor, blocks: Any, batches: Any) -> None:
        note("processor")
        channels["processor_in"], channels["processor_out"] = blocks, batches
        await processor_run(self, blocks, batches)

    async def router(self: Router, batches: Any) -> None:
        note("router")
        channels["router_in"] = batches
        await router_run(self, batches)

    subscription_next, send_frame = Subscription.next, ClientStream.send_frame

    async def next_spectra(self: Subscription) -> Any:
        note("subscriber")
        return await subscription_next(self)

    async def write(self: ClientStream, frame: bytes) -> None:
        note("writer")
        await send_frame(self, frame)

    monkeypatch.setattr(CaptureBridge, "__init__", recording_init)
    monkeypatch.setattr(Processor, "run", processor)
    monkeypatch.setattr(Router, "run", router)
    monkeypatch.setattr(Subscription, "next", next_spectra)
    monkeypatch.setattr(ClientStream, "send_frame", write)
    async with running_engine() as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            for _ in range(30):
                await receive_json(ws)
    called = {call for call in calls if call[0] == "called"}
    ran = {call for call in calls if call[0] == "ran"}
    (call,) = called  # only the audio thread calls it, always coalesced
    assert call[1].startswith("phase4-tone") and call[2] == "True"
    assert ran == {("ran", threading.current_thread().name)}  # deliveries run in Trio's thread
    mem_send, mem_receive = trio.MemorySendChannel, trio.MemoryReceiveChannel
    assert isinstance(channels["bridge_out"], mem_send)
    assert isinstance(channels["processor_in"], mem_receive)
    assert isinstance(channels["processor_out"], mem_send)
    assert isinstance(channels["router_in"], mem_receive)
    # the two ends of the same channels
    assert channels["bridge_out"]._state is channels["processor_in"]._state
    assert channels["processor_out"]._state is channels["router_in"]._state
    (processor_task,) = tasks["processor"]
    (router_task,) = tasks["router"]
    (client_task,) = tasks["subscriber"]
    assert tasks["writer"] == {client_task}  # nothing else writes frames to the client
    assert len({processor_task, router_task, client_task}) == 3


async def gate_run(monkeypatch: pytest.MonkeyPatch, cls: type, gate: trio.Event) -> None:
    """Hold ``cls.run`` (the processor's or the router's task) until ``gate`` is set."""
    run = cls.run

    async def held(self: Any, *args: Any) -> None:
        await gate.wait()
        await run(self, *args)

    monkeypatch.setattr(cls, "run", held)


@pytest.mark.parametrize("stage", ["processor", "router", "client"])
async def test_conservation_is_exact_when_a_stage_stalls(
    stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = trio.Event()
    if stage == "processor":
        await gate_run(monkeypatch, Processor, gate)
    elif stage == "router":
        await gate_run(monkeypatch, Router, gate)
    config = make_config(
        pipeline={"capture_queue": 4, "router_queue": 2}, transport={"client_queue": 2}
    )
    async with running_engine(config) as engine:
        assert engine.bridge is not None and engine.processor is not None
        stalled = None
        if stage == "client":
            stalled = await upgraded_but_never_read(engine)
            while not engine.router.subscriptions:  # noqa: ASYNC110
                await trio.sleep(0.01)
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            if stage != "client":
                await trio.sleep(0.3)  # the stalled stage's input fills up and drops
                gate.set()
            for _ in range(200 if stage == "client" else 20):
                await receive_json(ws)
            engine.bridge.close()  # stop capture, let what is in flight settle
            await trio.sleep(0.3)
            assert_conserved(engine)
            bridge, processor = engine.bridge.stats, engine.processor.stats
            dropped = {s.name: s.dropped for s in engine.router.subscriptions}
            if stage == "processor":
                assert bridge.queue_full > 0
            elif stage == "router":
                assert processor.router_full > 0
            else:
                assert dropped["ws-1"] > 0 and dropped["ws-2"] == 0
        if stalled is not None:
            await stalled.aclose()


async def test_nobody_listening_means_no_analysis_and_the_first_client_is_served_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured_at_listen: list[int] = []
    listen = CaptureBridge.listen

    def noting_listen(self: CaptureBridge, wake_interval: float) -> None:
        captured_at_listen.append(self.stats.captured)
        listen(self, wake_interval)

    monkeypatch.setattr(CaptureBridge, "listen", noting_listen)
    async with running_engine() as engine:
        bridge, processor = engine.bridge, engine.processor
        assert bridge is not None and processor is not None
        while bridge.stats.captured < 40:  # noqa: ASYNC110 (a real audio thread counts)
            await trio.sleep(0.05)
        assert bridge.stats.resting >= 40 - engine.preroll_blocks
        assert (bridge.stats.wakeups, bridge.stats.delivered, processor.stats.received) == (0, 0, 0)
        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            first = await receive_json(ws)
            # The newest pre-roll block (or one pushed during the hand-over): the client gets a
            # spectrum at once, at most a block period old, without waiting for a fresh block.
            (at_listen,) = captured_at_listen
            assert at_listen - 1 <= first["frameCount"] <= at_listen
            second = await receive_json(ws)
            assert second["frameCount"] == first["frameCount"] + 1
        # the pre-roll fills the fine spectrum's window: all but its newest block are warm-up
        assert processor.stats.restarts == 1
        assert processor.stats.warmup == engine.preroll_blocks - 1 == 16
        while engine.router.demand is not None:  # noqa: ASYNC110
            await trio.sleep(0.01)
        await trio.sleep(0.05)
        wakeups, received = bridge.stats.wakeups, processor.stats.received
        await trio.sleep(0.3)  # ~50 blocks captured, none analysed: the engine rests again
        assert (bridge.stats.wakeups, processor.stats.received) == (wakeups, received)
        bridge.close()
        assert_conserved(engine)


async def test_a_slow_client_wakes_trio_at_its_rate_and_every_block_is_analysed() -> None:
    async with running_engine() as engine:
        bridge, processor = engine.bridge, engine.processor
        assert bridge is not None and processor is not None
        async with trio_websocket.open_websocket_url(ws_url(engine, "fps=20")) as ws:
            counts = [(await receive_json(ws))["frameCount"]]
            wakeups, delivered = bridge.stats.wakeups, bridge.stats.delivered
            for _ in range(20):  # one second at 20 a second
                counts.append((await receive_json(ws))["frameCount"])
            woken = bridge.stats.wakeups - wakeups
            blocks = bridge.stats.delivered - delivered
        # one delivery per 1/20 s of audio (~8.6 blocks each), not one per block; measured in
        # blocks of audio, so a busy machine that stretches the second changes nothing
        assert 6.5 <= blocks / woken <= 11, (woken, blocks)
        assert blocks >= 140
        steps = np.diff(counts)
        assert (steps >= 5).all(), counts  # the newest spectrum each time, at most ~34/s
        assert processor.stats.processed == processor.stats.received == bridge.stats.delivered
        assert processor.stats.warmup + processor.stats.sent == processor.stats.processed


def test_batches_of_blocks_analyse_exactly_as_blocks_one_by_one() -> None:
    """The wake rate changes how blocks are batched, never what the analysis sees."""

    async def main() -> None:
        rng = np.random.default_rng(3)
        clicks = rng.uniform(-0.005, 0.005, (1200, BLOCK, 1)).astype(np.float32)
        burst = 0.9 * np.sin(np.arange(BLOCK) * 0.3) * np.exp(-np.arange(BLOCK) / 40)
        clicks[::86, :, 0] += burst.astype(np.float32)  # 120 BPM: tempo has work to do
        spectra = {}
        for size in (1, 9):
            bridge, _channel = listening_bridge(block_size=BLOCK, channels=1, slots=64)
            processor = Processor(bridge, Analyzer(BLOCK, RATE, "hann"), RATE)
            out = []
            for start in range(0, len(clicks), size):
                blocks = [
                    Block(i, 0, clicks[i], i * PERIOD, 0, BlockFlag.NONE)
                    for i in range(start, min(start + size, len(clicks)))
                ]
                out += processor.analyse(blocks)
            spectra[size] = out
        for one, batched in zip(spectra[1], spectra[9], strict=True):
            assert np.array_equal(one.magnitudes, batched.magnitudes)
            assert np.array_equal(one.flux, batched.flux)
            assert (one.bpm, one.bpm_confidence) == (batched.bpm, batched.bpm_confidence)
        assert spectra[9][-1].bpm > 0

    trio.run(main)


def websockets_client(url: str, codes: list[int | str], ready: threading.Event) -> None:
    """The `websockets` library's own client, in a thread: reads until the server closes."""
    with websockets.sync.client.connect(url) as connection:
        connection.recv()
        ready.set()
        try:
            while True:
                connection.recv()
        except ConnectionClosed as closed:
            codes.append(closed.rcvd.code if closed.rcvd else repr(closed))


async def test_shutdown_sends_every_client_a_close_frame_with_code_1001() -> None:
    codes: list[int | str] = []
    trio_codes: list[int] = []
    ready = threading.Event()
    connected = trio.Event()

    async def trio_client(url: str) -> None:
        try:
            async with trio_websocket.open_websocket_url(url) as ws:
                connected.set()
                while True:
                    await ws.get_message()
        except trio_websocket.ConnectionClosed as closed:
            trio_codes.append(closed.reason.code)

    with trio.fail_after(20):
        async with trio.open_nursery() as clients:
            async with running_engine() as engine:
                url = ws_url(engine)
                clients.start_soon(trio_client, url)
                clients.start_soon(trio.to_thread.run_sync, websockets_client, url, codes, ready)
                await connected.wait()
                assert await trio.to_thread.run_sync(ready.wait, 10)
            # the engine is gone: both clients saw why
    assert trio_codes == [1001]
    assert codes == [1001]
