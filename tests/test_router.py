"""The router and its subscriptions on their own: channels, latest wins, rates, demand."""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing

from phase4_trio.pipeline.messages import Batch, Spectrum
from phase4_trio.pipeline.router import Demand, Router, Subscription

PERIOD = 256 / 44100


def spectrum(index: int) -> Spectrum:
    zeros = np.zeros(129, dtype=np.float32)
    return Spectrum(index, 1000.0 + index * PERIOD, 44100, 256, zeros, zeros, 0.0, 0.0)


def batch(*indexes: int) -> Batch:
    return tuple(spectrum(i) for i in indexes)


def accounted(sub: Subscription) -> bool:
    return sub.offered == sub.taken + sub.dropped + sub.skipped + sub.queued


async def test_a_subscriber_takes_everything_waiting_in_one_call() -> None:
    router = Router()
    with router.subscribe("a", 4) as sub:
        router.route(batch(0, 1))
        router.route(batch(2))
        assert sub.queued == 3 and sub.batches_waiting == 2
        assert [s.frame_count for s in await sub.next()] == [0, 1, 2]
        assert sub.queued == 0 and sub.batches_waiting == 0 and accounted(sub)


async def test_a_full_channel_evicts_its_oldest_batch_and_counts_its_spectra() -> None:
    router = Router()
    with router.subscribe("slow", 2) as slow, router.subscribe("fast", 8) as fast:
        router.route(batch(0, 1))
        router.route(batch(2))
        router.route(batch(3))  # slow's channel holds 2 batches: (0, 1) goes
        assert slow.dropped == 2 and fast.dropped == 0
        assert [s.frame_count for s in await slow.next()] == [2, 3]
        assert [s.frame_count for s in await fast.next()] == [0, 1, 2, 3]
        assert accounted(slow) and accounted(fast)
    assert router.stats.gone_dropped == 2


async def test_a_sampled_subscriber_gets_about_fps_newest_spectra_a_second() -> None:
    router = Router()
    with router.subscribe("paced", 4, fps=20.0) as sub:
        sent = []
        for index in range(int(2 / PERIOD)):  # two seconds of capture, one block per batch
            router.route(batch(index))
            if sub.queued:
                sent += await sub.next()
        times = np.array([s.capture_time for s in sent])
        assert 39 <= len(sent) <= 41
        assert np.allclose(np.diff(times), 0.05, atol=PERIOD)
        assert sub.dropped == 0 and accounted(sub)
        assert sub.skipped == int(2 / PERIOD) - len(sent)


async def test_a_sampled_subscriber_is_offered_the_newest_of_a_batch() -> None:
    router = Router()
    with router.subscribe("paced", 4, fps=10.0) as sub:
        router.route(batch(0, 1, 2, 3))
        assert [s.frame_count for s in await sub.next()] == [3]
        assert sub.skipped == 3 and accounted(sub)


async def test_latest_takes_the_newest_and_skips_the_rest() -> None:
    router = Router()
    with router.subscribe("udp", 1, fps=30.0) as sub:
        assert sub.latest() is None
        router.route(batch(0))
        router.route(batch(30))  # 30 blocks later: due again, evicts the first (skipped)
        latest = sub.latest()
        assert latest is not None and latest.frame_count == 30
        assert sub.dropped == 0 and sub.skipped == 1 and accounted(sub)


async def test_demand_follows_subscriptions() -> None:
    seen: list[Demand] = []
    router = Router()
    router.on_demand(seen.append)
    with router.subscribe("page", 4, fps=60.0):
        with router.subscribe("udp", 1, fps=30.0):
            with router.subscribe("raw", 4):
                pass
    assert seen == [None, pytest.approx(1 / 60), 0.0, pytest.approx(1 / 60), None]


async def test_the_router_task_routes_batches_waiting_as_one() -> None:
    router = Router()
    send, receive = trio.open_memory_channel[Batch](8)
    with router.subscribe("a", 8) as sub:
        async with trio.open_nursery() as nursery:
            send.send_nowait(batch(0))
            send.send_nowait(batch(1, 2))
            nursery.start_soon(router.run, receive)
            await trio.testing.wait_all_tasks_blocked()
            assert router.stats.routed == 3 and router.stats.batches == 1
            assert sub.batches_waiting == 1
            nursery.cancel_scope.cancel()


async def test_after_a_gap_the_rate_grid_restarts_instead_of_bursting() -> None:
    router = Router()
    with router.subscribe("paced", 64, fps=10.0) as sub:
        for index in range(172):  # one second
            router.route(batch(index))
        before = len(await sub.next())
        for index in range(172 * 3, 172 * 4):  # two seconds of nothing, then one more
            router.route(batch(index))
        after = await sub.next()
        assert before == 10
        assert len(after) == 10  # not 30: the missed grid points are not caught up
        assert accounted(sub)


async def test_keep_all_delivers_every_spectrum_in_batches_at_its_rate() -> None:
    seen: list[Demand] = []
    router = Router()
    router.on_demand(seen.append)
    with router.subscribe("osc", 64, fps=20.0, keep_all=True) as sub:
        assert seen[-1] == pytest.approx(1 / 20)  # the bridge may wake 20 times a second
        deliveries = 0
        frames: list[int] = []
        for index in range(172):  # one second, one spectrum per batch
            router.route(batch(index))
            if sub.batches_waiting:
                deliveries += 1
                frames += [s.frame_count for s in await sub.next()]
                assert accounted(sub)
        held = sub.queued  # since the last delivery, not yet due
        assert 19 <= deliveries <= 21
        assert frames + list(range(172 - held, 172)) == list(range(172))
        assert sub.skipped == 0 and sub.dropped == 0 and accounted(sub)


def test_keep_all_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="rate"), Router().subscribe("x", 1, keep_all=True):
        pass
