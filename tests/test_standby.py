"""Standby: capture pauses once nothing has needed audio for ``input.standby_after`` and comes
back with the first client. Real threads and sockets, so real time (short lingers)."""

from __future__ import annotations

import threading
from pathlib import Path

import trio
import trio_websocket

from engine_helpers import (
    assert_conserved,
    make_config,
    receive_json,
    running_engine,
    wait_until,
    ws_url,
)
from phase4_trio.capture import CaptureState
from phase4_trio.capture.synthetic import run_paced
from phase4_trio.engine import Engine

LINGER = "200ms"


def standing_by(engine: Engine) -> bool:
    return engine.source.state is CaptureState.STANDBY


async def test_capture_pauses_when_nothing_needs_audio_and_resumes_for_a_client() -> None:
    config = make_config(input={"source": "tone:1000", "standby_after": LINGER})
    async with running_engine(config) as engine:
        bridge, processor = engine.bridge, engine.processor
        assert bridge is not None and processor is not None
        await wait_until(lambda: standing_by(engine), 5, "standby")
        assert engine.health() == (True, "ok: standby (capture paused until a client connects)")
        metrics = engine.render_metrics()
        assert "phase4_capture_standby 1" in metrics
        assert "phase4_capture_standbys_total 1" in metrics
        captured = bridge.stats.captured
        await trio.sleep(0.3)  # ~50 block periods: nothing captured
        assert bridge.stats.captured <= captured + 1  # at most a block that was under way
        restarts = processor.stats.restarts

        async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
            first = await receive_json(ws)
            # a block captured after the pause, not the pre-roll kept from before it
            assert first["frameCount"] >= captured
            assert not standing_by(engine)
            assert engine.source.state is CaptureState.RUNNING
            assert processor.stats.restarts == restarts + 1  # flux and tempo start afresh
            second = await receive_json(ws)
            assert second["frameCount"] == first["frameCount"] + 1
            assert engine.health()[1] == "ok: audio flowing"
        # the client has gone: after the linger, standby again
        await wait_until(lambda: standing_by(engine), 5, "standby after the client left")
        assert engine.standbys == 2
        bridge.close()
        assert_conserved(engine)


async def test_no_standby_while_recording_or_when_turned_off(tmp_path: Path) -> None:
    for config in (
        make_config(
            input={"source": "tone:1000", "standby_after": LINGER},
            record={"path": str(tmp_path / "take.wav")},
        ),
        make_config(input={"source": "tone:1000", "standby": False, "standby_after": LINGER}),
    ):
        async with running_engine(config) as engine:
            bridge = engine.bridge
            assert bridge is not None
            await trio.sleep(0.6)  # three lingers
            captured = bridge.stats.captured
            await trio.sleep(0.2)
            assert bridge.stats.captured > captured + 10
            assert engine.source.state is CaptureState.RUNNING
            assert engine.standbys == 0


async def test_a_client_that_comes_within_the_linger_keeps_capture_running() -> None:
    config = make_config(input={"source": "tone:1000", "standby_after": "1s"})
    async with running_engine(config) as engine:
        for _ in range(3):
            async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
                await receive_json(ws)
            await trio.sleep(0.4)
        assert engine.standbys == 0
        assert engine.source.state is CaptureState.RUNNING


def test_a_paced_source_ticks_at_once_when_woken_and_not_while_asleep() -> None:
    stop, awake = threading.Event(), threading.Event()
    ticks: list[float] = []
    thread = threading.Thread(
        target=run_paced, args=(0.005, stop, lambda: ticks.append(0.0), awake)
    )
    thread.start()
    try:
        stop.wait(0.1)
        assert ticks == []
        awake.set()
        stop.wait(0.1)
        assert 5 <= len(ticks) <= 25  # 20 at 5 ms, from the wake-up on
    finally:
        stop.set()
        thread.join(2)
    assert not thread.is_alive()
