"""The UDP sender on real sockets: pacing, IPv4 and IPv6, unreachable peers, latest wins."""

from __future__ import annotations

import logging
import socket
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
import trio
import trio.testing

from engine_helpers import listening_bridge, take_blocks
from phase4_trio.capture import Block, CaptureBridge, SyntheticSource
from phase4_trio.capture.synthetic import ToneGenerator
from phase4_trio.config import Address
from phase4_trio.errors import Phase4Error
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.pipeline.router import Router
from phase4_trio.transport.udp import UdpStats, run_udp_sender
from phase4_trio.wire.p4sp import decode

RATE = 44100
BLOCK = 256
TONE_HZ = 1000.0


async def analyse(
    bridge: CaptureBridge, blocks_in: trio.MemoryReceiveChannel[Block], router: Router
) -> None:
    """A minimal processor (Hann window, |X|/N doubled, positive flux): enough to find a peak."""
    window = np.hanning(BLOCK)
    previous = np.zeros(BLOCK // 2 + 1)
    while True:
        blocks = await take_blocks(blocks_in)
        for block in blocks:
            samples = block.data[:, 0] * window
            magnitudes = np.abs(np.fft.rfft(samples)) / BLOCK
            magnitudes[1:-1] *= 2
            flux = np.maximum(magnitudes - previous, 0.0)
            previous = magnitudes
            router.route(
                (
                    Spectrum(
                        block.index,
                        block.capture_time,
                        RATE,
                        BLOCK,
                        magnitudes.astype(np.float32),
                        flux.astype(np.float32),
                        0.0,
                        0.0,
                    ),
                )
            )
        bridge.release(blocks)


@asynccontextmanager
async def tone_pipeline() -> AsyncIterator[Router]:
    """A real tone source thread → bridge → analyser → router, torn down on exit."""
    router = Router()
    source = SyntheticSource(ToneGenerator(TONE_HZ, 0.5, RATE, 1), BLOCK)
    bridge, blocks = listening_bridge(block_size=BLOCK, channels=1, sample_rate=RATE)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(analyse, bridge, blocks, router)
        await nursery.start(source.run, bridge)
        yield router
        nursery.cancel_scope.cancel()


def listener(family: socket.AddressFamily, host: str) -> trio.socket.SocketType:
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


async def receive_datagrams(
    family: socket.AddressFamily, host: str, interval: float, count: int
) -> tuple[list[float], list[bytes], UdpStats]:
    stats = UdpStats()
    times: list[float] = []
    payloads: list[bytes] = []
    with listener(family, host) as sock:
        await sock.bind((host, 0))
        port = sock.getsockname()[1]
        async with tone_pipeline() as router, trio.open_nursery() as nursery:
            with router.subscribe("udp", 1, fps=1 / interval) as subscription:
                await nursery.start(run_udp_sender, Address(host, port), subscription, stats, BLOCK)
                with trio.fail_after(count * interval * 3 + 5):
                    while len(payloads) < count:
                        payloads.append(await sock.recv(70_000))
                        times.append(trio.current_time())
                nursery.cancel_scope.cancel()
    return times, payloads, stats


def peak_hz(payload: bytes) -> float:
    spectrum = decode(payload)
    k = int(np.argmax(spectrum.magnitudes))
    return k * spectrum.sample_rate / spectrum.fft_size


@pytest.mark.slow
async def test_datagrams_arrive_at_the_interval_and_carry_the_tone() -> None:
    interval = 0.03333
    times, payloads, stats = await receive_datagrams(socket.AF_INET, "127.0.0.1", interval, 40)
    gaps = np.diff(times[1:])  # the first gap includes start-up
    mean = float(gaps.mean())
    print(f"UDP interval mean {mean * 1e3:.2f} ms, stdev {statistics.stdev(gaps) * 1e3:.2f} ms")
    assert interval * 0.8 <= mean <= interval * 1.2
    frames = [decode(p).frame_count for p in payloads]
    assert frames == sorted(frames)
    assert len(set(frames)) == len(frames)
    for payload in payloads:
        decoded = decode(payload)
        assert decoded.flux is not None
        assert abs(peak_hz(payload) - TONE_HZ) <= RATE / BLOCK
    assert stats.sent >= 40
    assert stats.bytes == stats.sent * len(payloads[0])


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_ipv6_loopback_works() -> None:
    _times, payloads, stats = await receive_datagrams(socket.AF_INET6, "::1", 0.02, 5)
    assert all(abs(peak_hz(p) - TONE_HZ) <= RATE / BLOCK for p in payloads)
    assert stats.errors == 0


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_peer_is_counted_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="phase4_trio.transport.udp")
    stats = UdpStats()
    async with tone_pipeline() as router, trio.open_nursery() as nursery:
        with router.subscribe("udp", 1) as subscription:  # every block: ~170 a second
            address = Address("127.0.0.1", closed_port())
            await nursery.start(run_udp_sender, address, subscription, stats, BLOCK)
            await trio.sleep(0.3)  # ~50 sends; every other one sees the ICMP of the one before
            nursery.cancel_scope.cancel()
    assert stats.errors >= 5
    assert stats.sent >= 1
    warnings = [r for r in caplog.records if "UDP send to" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one report per 5 s
    assert "refused" in warnings[0].getMessage().lower()


def spectrum(frame: int) -> Spectrum:
    magnitudes = np.zeros(BLOCK // 2 + 1, np.float32)
    return Spectrum(frame, frame * BLOCK / RATE, RATE, BLOCK, magnitudes, magnitudes, 0.0, 0.0)


def drain(sock: socket.socket) -> list[int]:
    frames = []
    while True:
        try:
            frames.append(decode(sock.recv(70_000)).frame_count)
        except BlockingIOError:
            return frames


async def test_the_newest_spectrum_goes_out_and_nothing_new_sends_nothing() -> None:
    stats = UdpStats()
    router = Router()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        address = Address("127.0.0.1", peer.getsockname()[1])
        async with trio.open_nursery() as nursery:
            with router.subscribe("udp", 1, fps=10.0) as subscription:
                await nursery.start(run_udp_sender, address, subscription, stats, BLOCK)
                router.route((spectrum(1), spectrum(2), spectrum(3)))  # one batch: 3 goes out
                await trio.testing.wait_all_tasks_blocked()
                await trio.testing.wait_all_tasks_blocked()  # nothing new: nothing more
                router.route((spectrum(30),))  # 27 blocks (157 ms) later: due again
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
        assert drain(peer) == [3, 30]
    assert (stats.sent, stats.errors) == (2, 0)
    assert subscription.skipped == 2 and subscription.dropped == 0


async def test_a_spectrum_too_large_for_one_datagram_is_refused_at_start() -> None:
    router = Router()
    with router.subscribe("udp", 1) as subscription:
        with pytest.raises(Phase4Error, match=r"65624 bytes, over the 65507-byte"):
            await run_udp_sender(Address("127.0.0.1", 9), subscription, UdpStats(), 16384)
        if ipv6_available():
            with pytest.raises(Phase4Error, match=r"over the 65527-byte"):
                await run_udp_sender(Address("::1", 9), subscription, UdpStats(), 16384)


PHASE4_RUN = (
    sys.executable,
    "-m",
    "phase4_trio",
    "run",
    "--source",
    "tone:440",
    "--ws",
    "127.0.0.1:0",
)


def test_an_unresolvable_udp_host_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [*PHASE4_RUN, "--udp", "no-such-host.invalid:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if "no-such-host" in line]
    assert len(lines) == 1 and "cannot resolve" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
