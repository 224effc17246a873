"""UDP and recording wired into the real engine (real DSP, real threads, real sockets)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import trio

from engine_helpers import make_config, running_engine
from phase4_trio.capture import read_wav
from phase4_trio.capture.synthetic import ToneGenerator
from phase4_trio.wire.p4sp import decode

RATE = 44100
BLOCK = 256
BIN_HZ = RATE / BLOCK


async def test_the_engine_streams_the_tone_by_udp_at_the_interval() -> None:
    k = 23
    interval = 0.02
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        await peer.bind(("127.0.0.1", 0))
        config = make_config(
            input={"source": f"tone:{k * BIN_HZ!r}:1.0"},
            transport={
                "websocket_enabled": False,
                "udp_enabled": True,
                "udp_send_address": f"127.0.0.1:{peer.getsockname()[1]}",
                "udp_send_interval": "20ms",
            },
        )
        times: list[float] = []
        payloads: list[bytes] = []
        async with running_engine(config) as engine:
            with trio.fail_after(10):
                while len(payloads) < 32:
                    payloads.append(await peer.recv(70_000))
                    times.append(trio.current_time())
            metrics = engine.render_metrics()
    mean = float(np.diff(times[1:]).mean())
    assert interval * 0.8 <= mean <= interval * 1.2
    for payload in payloads:
        spectrum = decode(payload)
        assert int(np.argmax(spectrum.magnitudes)) == k
        assert spectrum.magnitudes[k] == pytest.approx(0.5, rel=0.05)
        assert spectrum.flux is not None
        assert spectrum.dropped == 0
    frames = [decode(p).frame_count for p in payloads]
    assert frames == sorted(set(frames))
    assert 'phase4_udp_datagrams_total{outcome="sent"}' in metrics


async def test_the_engine_records_every_captured_block(tmp_path: Path) -> None:
    """The source is stopped before the recorder finishes, so nothing captured is missing."""
    path = tmp_path / "engine.wav"
    config = make_config(
        input={"source": "tone:1000"},
        transport={"websocket_enabled": False},
        record={"path": str(path), "format": "float32"},
    )
    async with running_engine(config) as engine:
        await trio.sleep(1.0)
    assert engine.bridge is not None
    assert engine.recorder is not None
    wav = read_wav(path)
    assert len(wav.frames) == engine.bridge.stats.captured * BLOCK
    expected = np.zeros((len(wav.frames), 1), np.float32)
    generator = ToneGenerator(1000.0, 0.5, RATE, 1)
    for start in range(0, len(expected), BLOCK):
        generator.fill(expected[start : start + BLOCK])
    assert np.array_equal(wav.frames, expected)
    stats = engine.recorder.stats
    assert (stats.overflows, stats.late_frames, stats.errors) == (0, 0, 0)
    assert 'phase4_record_lost_frames_total{reason="fifo_overflow"} 0' in engine.render_metrics()


def test_an_existing_recording_stops_the_engine_before_it_starts(tmp_path: Path) -> None:
    from phase4_trio.engine import Engine
    from phase4_trio.errors import Phase4Error

    path = tmp_path / "taken.wav"
    path.write_bytes(b"x")
    with pytest.raises(Phase4Error, match="already exists"):
        Engine(make_config(record={"path": str(path)}))
    assert path.read_bytes() == b"x"
