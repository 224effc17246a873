"""A relay's per-engine feed: decode, count, hand to the router task (no NATS, no sockets)."""

from __future__ import annotations

import numpy as np

from phase4_trio.config import TransportConfig
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.relay import EngineFeed
from phase4_trio.transport.nats.codec import spectrum_payload
from phase4_trio.transport.nats.link import NatsLink

ZEROS = np.zeros(129, np.float32)


def _payload(frame: int) -> bytes:
    return spectrum_payload(Spectrum(frame, 1.0, 44100, 256, ZEROS, ZEROS, 0.0, 0.0))


def test_a_feed_passes_on_what_decodes_and_counts_the_rest() -> None:
    link = NatsLink(["nats://127.0.0.1:1"], name="unused")
    feed = EngineFeed(
        "studio", "phase4.studio.spectra", link, TransportConfig(), 4, {}, str, lambda _: None
    )
    assert feed.health() == (
        False,
        "waiting for engine studio: nothing on phase4.studio.spectra yet (NATS starting)",
    )
    feed.accept([_payload(5), b"not a spectrum", _payload(6), _payload(9)])
    feed.accept([_payload(0)])  # the engine started again
    batches = [feed.batches.receive_nowait() for _ in range(2)]
    assert [[s.frame_count for s in batch] for batch in batches] == [[5, 6, 9], [0]]
    stats = feed.stats
    assert (stats.received, stats.decode_errors, stats.missing, stats.restarts) == (4, 1, 2, 1)
    healthy, reason = feed.health()
    assert healthy and reason == "ok: streaming engine studio"


def test_a_full_router_channel_drops_and_counts() -> None:
    link = NatsLink(["nats://127.0.0.1:1"], name="unused")
    feed = EngineFeed("a", "phase4.a.spectra", link, TransportConfig(), 1, {}, str, print)
    feed.accept([_payload(1)])
    feed.accept([_payload(2), _payload(3)])
    assert feed.stats.router_full == 2
    assert [s.frame_count for s in feed.batches.receive_nowait()] == [1]
