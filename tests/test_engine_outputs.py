"""OSC and WLED wired into the real engine: real DSP, real sockets on 127.0.0.1, and for OSC
python-osc's own server receiving. Real time (the engine's source is paced by the clock)."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from engine_helpers import make_config, running_engine
from wled_receiver import receive

RATE = 44100
BIN_HZ = RATE / 256


class Inbox:
    """Every OSC message python-osc's server handled, in order, shared with its thread."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[Any]]] = []
        self._changed = threading.Condition()

    def add(self, address: str, *args: Any) -> None:
        with self._changed:
            self.messages.append((address, list(args)))
            self._changed.notify_all()

    def snapshot(self) -> list[tuple[str, list[Any]]]:
        with self._changed:
            return list(self.messages)

    def wait_for(self, predicate: Callable[[list[tuple[str, list[Any]]]], bool]) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.messages), timeout=15)


@contextmanager
def osc_server() -> Iterator[tuple[int, Inbox]]:
    """python-osc's threaded UDP server on 127.0.0.1, collecting every message in order."""
    inbox = Inbox()
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(inbox.add)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def bundles(messages: list[tuple[str, list[Any]]]) -> list[dict[str, list[Any]]]:
    """Messages grouped into bundles: each bundle starts with its /bands message."""
    grouped: list[dict[str, list[Any]]] = []
    for address, args in messages:
        if address.endswith("/bands"):
            grouped.append({})
        if grouped:
            grouped[-1][address] = args
    return grouped


async def test_the_engine_sends_osc_bundles_python_osc_receives() -> None:
    with osc_server() as (port, inbox):
        config = make_config(
            input={"source": "tone:1000"},
            transport={"websocket_enabled": False},
            output={"osc": {"targets": [f"127.0.0.1:{port}"], "bands": "log:16"}},
        )
        async with running_engine(config) as engine:
            await trio.sleep(2.0)
            metrics = engine.render_metrics()
        await trio.sleep(0.2)  # the server thread may still be handling the last datagrams
    got = bundles(inbox.snapshot())
    # Never faster than 60 a second; on a starved machine ticks are skipped, not bunched
    # (the exact rate is tests/test_outputs.py's, on Trio's mock clock).
    assert 20 <= len(got) <= 60 * 2 + 2
    frames = []
    now = time.time()
    for bundle in got[1:-1]:
        assert set(bundle) == {"/phase4/bands", "/phase4/level", "/phase4/bpm", "/phase4/frame"}
        bands = bundle["/phase4/bands"]
        assert len(bands) == 16
        assert all(isinstance(v, float) for v in bands)
        rms, peak = bundle["/phase4/level"]
        # a 0.5 sine: -6.02 dBFS peak, RMS 3 dB less (-9.14 to -8.92 over one 256-sample block)
        assert rms == pytest.approx(-9.03, abs=0.15)
        assert peak == pytest.approx(-6.02, abs=0.01)
        frame_count, capture_time = bundle["/phase4/frame"]
        assert now - 5 < capture_time < now
        frames.append(frame_count)
    assert frames == sorted(set(frames))
    # about 172 frames per second over at most 60 bundles per second: about 3 frames apart
    assert float(np.diff(frames).mean()) >= 2.5
    assert f'phase4_osc_packets_total{{target="127.0.0.1:{port}",outcome="sent"}}' in metrics


def write_clicks(path: Path, seconds: float, every: float) -> list[float]:
    """A WAV of clicks, each early in its 256-sample block; returns their times."""
    rng = np.random.default_rng(5)
    signal = np.zeros(int(RATE * seconds))
    times = []
    for start in range(int(RATE * every), len(signal), int(RATE * every)):
        start = (start // 256) * 256 + 64  # early in a block, where the window sees it whole
        signal[start : start + 200] = rng.uniform(-0.8, 0.8, 200) * np.exp(-np.arange(200) / 40)
        times.append(start / RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((signal * 32767).astype("<i2").tobytes())
    return times


async def test_onsets_reach_osc_once_per_click(tmp_path: Path) -> None:
    path = tmp_path / "clicks.wav"
    clicks = write_clicks(path, 2.0, 0.25)  # 7 clicks, then the file loops
    end_frame = int(2.0 * RATE / 256)  # the first pass through the file
    with osc_server() as (port, inbox):
        config = make_config(
            input={"source": f"wav:{path}"},
            transport={"websocket_enabled": False},
            output={"osc": {"targets": [f"127.0.0.1:{port}"]}},
        )

        def past_the_end(messages: list[tuple[str, list[Any]]]) -> bool:
            return any(a == "/phase4/frame" and args[0] >= end_frame for a, args in messages)

        async with running_engine(config):
            assert await trio.to_thread.run_sync(inbox.wait_for, past_the_end)
    onsets = [
        (b["/phase4/frame"][0] * 256 / RATE, b["/phase4/onset"][0])
        for b in bundles(inbox.snapshot())
        if "/phase4/onset" in b and b["/phase4/frame"][0] < end_frame
    ]
    assert len(clicks) == 7
    assert len(onsets) == 7, onsets  # one per click, none in between
    for (when, strength), click in zip(onsets, clicks, strict=True):
        assert -256 / RATE <= when - click <= 0.05  # the click's block, or soon after
        assert 0.2 <= strength <= 2.0


async def test_the_engine_sends_wled_packets_to_a_udp_socket() -> None:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as peer:
        await peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]
        config = make_config(
            input={"source": "tone:1000"},
            transport={"websocket_enabled": False},
            output={"wled": {"targets": [f"127.0.0.1:{port}"]}},
        )
        packets = []
        async with running_engine(config) as engine:
            start = trio.current_time()
            with trio.fail_after(10):
                while len(packets) < 50:
                    packets.append(receive(await peer.recv(100)))
            elapsed = trio.current_time() - start
            metrics = engine.render_metrics()
    assert elapsed >= 49 / 50 - 0.02  # never faster than 50 a second
    for packet in packets[1:]:
        assert abs(packet.fft_major_peak - 1000.0) <= BIN_HZ
        assert int(np.argmax(packet.fft_result)) == 7
        assert packet.sample_raw == pytest.approx(255 * (60 - 9.03) / 60, abs=255 * 0.15 / 60)
    counters = [p.frame_counter for p in packets]
    assert counters == [n % 256 for n in range(counters[0], counters[0] + 50)]
    assert f'phase4_wled_packets_total{{target="127.0.0.1:{port}",outcome="sent"}}' in metrics


async def test_beats_reach_osc_with_the_tempo(tmp_path: Path) -> None:
    """A 120 BPM click track, unpaced (seconds of audio in a fraction of that): once the
    tracker has locked, bundles carry /phase4/beat with the tempo."""
    path = tmp_path / "clicks.wav"
    write_clicks(path, 8.0, 0.5)
    with osc_server() as (port, inbox):
        config = make_config(
            input={"source": f"wav:{path}"},
            transport={"websocket_enabled": False},
            output={"osc": {"targets": [f"127.0.0.1:{port}"]}},
        )

        def beats(messages: list[tuple[str, list[Any]]]) -> list[float]:
            return [args[0] for address, args in messages if address == "/phase4/beat"]

        async with running_engine(config, paced=False):
            assert await trio.to_thread.run_sync(inbox.wait_for, lambda m: len(beats(m)) >= 5)
    tempi = beats(inbox.snapshot())
    assert all(bpm == pytest.approx(120.0, abs=2.0) for bpm in tempi[-5:]), tempi
