"""Paced outputs (transport.outputs): pacing on capture time, send errors and bad targets,
with real UDP sockets on 127.0.0.1 and Trio's autojump clock."""

from __future__ import annotations

import logging
import re
import socket

import numpy as np
import pytest
import trio

from engine_helpers import make_config
from phase4_trio import metrics as m
from phase4_trio.dsp import Analyzer
from phase4_trio.errors import Phase4Error
from phase4_trio.logs import DEFAULT_INTERVAL
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.pipeline.router import Router
from phase4_trio.transport.outputs import PacedOutput, configured_outputs
from phase4_trio.wire.wled import PACKET_SIZE

RATE = 44100
N = 256
FRAME_RATE = RATE / N


def tone_spectra(count: int) -> list[Spectrum]:
    analyzer = Analyzer(N, RATE, "hann")
    t = np.arange(count * N) / RATE
    signal = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = []
    for index in range(count):
        a = analyzer.process(signal[index * N : (index + 1) * N])
        out.append(
            Spectrum(
                index, index / FRAME_RATE, RATE, N, a.magnitudes, a.flux, 0.0, 0.0, a.rms, a.peak
            )
        )
    return out


async def feed(router: Router, spectra: list[Spectrum]) -> None:
    """Route spectra at the block rate, one batch each, as the router task does."""
    for spectrum in spectra:
        router.route((spectrum,))
        await trio.sleep(1 / FRAME_RATE)


async def udp_listener() -> tuple[trio.socket.SocketType, int]:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


async def drain(sock: trio.socket.SocketType, into: list[bytes]) -> None:
    while True:
        into.append(await sock.recv(65536))


def free_port() -> int:
    """A UDP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wled_output(*targets: str, rate: float = 50.0) -> PacedOutput:
    config = make_config(output={"wled": {"targets": list(targets), "rate": rate}})
    [output] = configured_outputs(config, FRAME_RATE)
    return output


async def test_packets_follow_the_capture_clock_and_stop_when_spectra_do(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    sock, port = await udp_listener()
    received: list[bytes] = []
    output = wled_output(f"127.0.0.1:{port}", rate=50.0)
    with sock:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, sock, received)
            await nursery.start(output.run, router)
            await feed(router, tone_spectra(int(2 * FRAME_RATE)))  # 2 s of capture time
            sent_while_fed = output.stats.targets[0].sent
            await trio.sleep(1.0)  # capture stalls: nothing new, nothing sent
            nursery.cancel_scope.cancel()
    stats = output.stats.targets[0]
    assert sent_while_fed == 100  # 50 a second of capture time, the first at once
    assert stats.sent == output.stats.packets == sent_while_fed
    assert len(received) == stats.sent
    assert {len(p) for p in received} == {PACKET_SIZE}
    assert stats.bytes == PACKET_SIZE * stats.sent
    assert stats.errors == 0
    counters = [p[17] for p in received]
    assert counters == list(range(100))


async def test_an_unreachable_target_is_counted_and_logged_rarely_while_others_get_everything(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()
    sock, port = await udp_listener()
    dead = free_port()
    received: list[bytes] = []
    output = wled_output(f"127.0.0.1:{dead}", f"127.0.0.1:{port}", rate=20.0)
    seconds = 3 * DEFAULT_INTERVAL
    with sock, caplog.at_level(logging.WARNING, logger="phase4_trio.transport.outputs.datagram"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, sock, received)
            await nursery.start(output.run, router)
            await feed(router, tone_spectra(int(seconds * FRAME_RATE)))
            nursery.cancel_scope.cancel()
    dead_stats, live_stats = output.stats.targets
    assert live_stats.sent == len(received) == 20 * seconds
    assert live_stats.errors == 0
    # The kernel reports "port unreachable" on the send after the one that drew it.
    assert dead_stats.errors >= live_stats.sent // 2 - 1
    warnings = [r.getMessage() for r in caplog.records if "WLED send to" in r.getMessage()]
    assert 2 <= len(warnings) <= 4  # one now, then at most one per DEFAULT_INTERVAL
    assert all(f"127.0.0.1:{dead}" in w for w in warnings)
    assert "more like this in the last 5 s" in warnings[-1]


def test_a_host_that_does_not_resolve_is_one_line() -> None:
    with pytest.raises(Phase4Error) as caught:
        wled_output("nonexistent.invalid")
    assert str(caught.value).startswith("output.wled.targets: cannot resolve 'nonexistent.invalid'")
    assert len(caught.value.lines()) == 1


def test_osc_refuses_a_multicast_group_and_wled_takes_it() -> None:
    config = make_config(output={"osc": {"targets": ["239.0.0.1:9000"]}})
    with pytest.raises(
        Phase4Error, match=re.escape("output.osc.targets: 239.0.0.1:9000 is a multicast group")
    ):
        configured_outputs(config, FRAME_RATE)
    assert wled_output("239.0.0.1").stats.targets[0].target == "239.0.0.1:11988"


def test_no_targets_no_outputs() -> None:
    assert configured_outputs(make_config(), FRAME_RATE) == []


async def test_counters_are_in_the_metrics(autojump_clock: trio.testing.MockClock) -> None:
    router = Router()
    sock, port = await udp_listener()
    output = wled_output(f"127.0.0.1:{port}")
    with sock:
        async with trio.open_nursery() as nursery:
            await nursery.start(output.run, router)
            await feed(router, tone_spectra(20))
            nursery.cancel_scope.cancel()
    text = m.render(output.metrics())
    target = f'target="127.0.0.1:{port}"'
    assert f'phase4_wled_packets_total{{{target},outcome="sent"}}' in text
    assert f'phase4_wled_packets_total{{{target},outcome="error"}} 0' in text
    assert (
        f"phase4_wled_bytes_total{{{target}}} {PACKET_SIZE * output.stats.targets[0].sent}" in text
    )
