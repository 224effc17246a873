"""The thread → Trio door on its own: the token, the channel, rest and pre-roll, wake rates."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import trio

from phase4_trio.capture.bridge import Block, BlockFlag, CaptureBridge

BLOCK = 64
RATE = 6400  # 100 blocks a second: one block period is 10 ms of capture time
PERIOD = BLOCK / RATE


def block(value: float) -> np.ndarray:
    return np.full((BLOCK, 1), value, dtype=np.float32)


def make(
    slots: int = 16, queue: int = 8, preroll: int = 2, max_batch: int = 32
) -> tuple[CaptureBridge, trio.MemoryReceiveChannel[Block]]:
    send, receive = trio.open_memory_channel[Block](queue)
    bridge = CaptureBridge(
        block_size=BLOCK,
        channels=1,
        slots=slots,
        sample_rate=RATE,
        send=send,
        preroll=preroll,
        max_batch=max_batch,
    )
    return bridge, receive


def take(receive: trio.MemoryReceiveChannel[Block]) -> list[Block]:
    blocks = []
    while True:
        try:
            blocks.append(receive.receive_nowait())
        except trio.WouldBlock:
            return blocks


def conserved(bridge: CaptureBridge) -> bool:
    s = bridge.stats
    return (
        s.captured
        == (s.delivered + s.ring_full + s.queue_full + s.resting + s.push_errors + s.late)
        + bridge.waiting
    )


async def test_blocks_from_another_thread_enter_trio_through_the_token() -> None:
    bridge, receive = make()
    bridge.listen(0.0)
    trio_thread = threading.get_ident()
    delivered_in: list[int] = []
    original = bridge.deliver

    def deliver() -> None:
        delivered_in.append(threading.get_ident())
        original()

    bridge.deliver = deliver  # type: ignore[method-assign]

    def audio_thread() -> None:
        for i in range(3):
            bridge.push(block(i), 100.0 + i * PERIOD)
            time.sleep(0.02)

    await trio.to_thread.run_sync(audio_thread)
    with trio.fail_after(5):
        blocks = [await receive.receive() for _ in range(3)]
    assert [b.index for b in blocks] == [0, 1, 2]
    assert [float(b.data[0, 0]) for b in blocks] == [0.0, 1.0, 2.0]
    assert blocks[0].flags & BlockFlag.STREAM_START and not blocks[1].flags
    assert delivered_in and set(delivered_in) == {trio_thread}
    assert bridge.stats.wakeups == len(delivered_in)


async def test_pushes_while_a_delivery_is_pending_share_one_wakeup() -> None:
    bridge, receive = make()
    bridge.listen(0.0)
    for i in range(5):  # Trio is busy (this task does not yield): one call, five blocks
        bridge.push(block(i), 100.0 + i * PERIOD)
    assert bridge.stats.wakeups == 1
    await trio.testing.wait_all_tasks_blocked()
    assert [b.index for b in take(receive)] == [0, 1, 2, 3, 4]
    assert bridge.stats.delivered == 5 and conserved(bridge)


async def test_a_full_channel_and_a_full_ring_drop_count_and_free_their_slots() -> None:
    bridge, receive = make(slots=6, queue=4)
    bridge.listen(0.0)
    for i in range(6):
        bridge.push(block(i), 100.0 + i * PERIOD)
    await trio.testing.wait_all_tasks_blocked()
    assert bridge.stats.queue_full == 2  # the channel holds 4; the other two slots are freed
    held = take(receive)
    assert [b.index for b in held] == [0, 1, 2, 3]
    for i in range(6, 9):  # 2 slots free: the third push finds none
        bridge.push(block(i), 100.0 + i * PERIOD)
    assert bridge.stats.ring_full == 1
    await trio.testing.wait_all_tasks_blocked()
    bridge.release(held)
    assert [b.index for b in take(receive)] == [6, 7]
    assert conserved(bridge) and bridge.stats.captured == 9


async def test_resting_keeps_only_the_preroll_and_never_wakes_trio() -> None:
    bridge, receive = make(slots=8, preroll=3)
    for i in range(100):  # far more than the ring: slots are recycled, not exhausted
        bridge.push(block(i), 100.0 + i * PERIOD)
    await trio.testing.wait_all_tasks_blocked()
    s = bridge.stats
    assert (s.wakeups, s.delivered, s.ring_full) == (0, 0, 0)
    assert s.resting == 97
    assert take(receive) == []
    bridge.listen(0.0)  # the pre-roll goes out at once, without waiting for a push
    blocks = take(receive)
    assert [b.index for b in blocks] == [97, 98, 99]
    assert [b.flags for b in blocks] == [
        BlockFlag.STREAM_START | BlockFlag.WARMUP,
        BlockFlag.WARMUP,
        BlockFlag.NONE,
    ]
    assert conserved(bridge)


async def test_rest_then_listen_again_restarts_the_stream() -> None:
    bridge, receive = make(preroll=2)
    bridge.listen(0.0)
    bridge.push(block(0), 100.0)
    await trio.testing.wait_all_tasks_blocked()
    bridge.release(take(receive))
    bridge.rest()
    for i in range(1, 6):
        bridge.push(block(i), 100.0 + i * PERIOD)
    await trio.testing.wait_all_tasks_blocked()
    assert bridge.stats.wakeups == 1 and take(receive) == []
    bridge.listen(0.0)
    flags = [(b.index, b.flags) for b in take(receive)]
    assert flags == [(4, BlockFlag.STREAM_START | BlockFlag.WARMUP), (5, BlockFlag.NONE)]


async def test_a_rest_too_short_to_lose_a_block_leaves_the_stream_whole() -> None:
    bridge, receive = make(preroll=4)
    bridge.listen(0.0)
    bridge.push(block(0), 100.0)
    await trio.testing.wait_all_tasks_blocked()
    bridge.release(take(receive))
    bridge.rest()
    for i in range(1, 4):  # fewer than the pre-roll: nothing let go
        bridge.push(block(i), 100.0 + i * PERIOD)
    bridge.listen(0.0)
    flags = [(b.index, b.flags) for b in take(receive)]
    assert flags == [(1, BlockFlag.NONE), (2, BlockFlag.NONE), (3, BlockFlag.NONE)]
    assert bridge.stats.resting == 0 and conserved(bridge)


async def test_a_wake_interval_delivers_batches_on_a_grid_of_capture_time() -> None:
    bridge, receive = make(slots=64, queue=64)
    bridge.listen(4 * PERIOD)  # a listener that wants 25 spectra a second, at 100 blocks/s
    deliveries = []
    for i in range(40):
        bridge.push(block(i), 100.0 + i * PERIOD)
        await trio.testing.wait_all_tasks_blocked()
        got = take(receive)
        if got:
            deliveries.append([b.index for b in got])
            bridge.release(got)
    assert bridge.stats.wakeups == len(deliveries) == 10
    assert deliveries[0] == [0]
    assert all(len(d) == 4 for d in deliveries[1:])
    assert sum(len(d) for d in deliveries) == 37  # 3 still wait for the next due block
    assert bridge.stats.delivered == 37 and not bridge.stats.queue_full


async def test_a_slow_listener_is_still_delivered_within_max_batch() -> None:
    bridge, receive = make(slots=64, queue=64, max_batch=5)
    bridge.listen(1.0)  # one a second would hold 100 blocks: capped at 5 per delivery
    for i in range(50):
        bridge.push(block(i), 100.0 + i * PERIOD)
        await trio.testing.wait_all_tasks_blocked()
        bridge.release(take(receive))
    assert bridge.stats.wakeups == 10
    assert bridge.stats.queue_full == 0


async def test_after_close_pushes_are_ignored_and_waiting_blocks_counted_late() -> None:
    bridge, _receive = make()
    bridge.listen(1.0)
    bridge.push(block(1), 100.0)  # asks for a delivery, which has not run yet
    bridge.push(block(2), 100.0 + PERIOD)
    bridge.close()
    bridge.push(block(3), 100.0 + 2 * PERIOD)  # after close: not even counted as captured
    bridge.discard_waiting()
    await trio.testing.wait_all_tasks_blocked()
    s = bridge.stats
    assert (s.captured, s.late, s.delivered) == (2, 2, 0)
    assert conserved(bridge)


def test_a_push_after_the_run_has_finished_neither_raises_nor_counts_an_error() -> None:
    made: list[CaptureBridge] = []

    async def main() -> None:
        bridge, _receive = make()
        bridge.listen(0.0)
        made.append(bridge)

    trio.run(main)
    (bridge,) = made
    bridge.push(block(1), 100.0)  # run_sync_soon raises RunFinishedError inside: handled
    bridge.push(block(2), 100.0 + PERIOD)
    assert bridge.stats.push_errors == 0
    assert bridge.stats.captured == 1  # the first push found the run gone and closed the door


async def test_the_callback_never_raises_on_a_bad_block() -> None:
    bridge, _receive = make()
    bridge.listen(0.0)
    for _ in range(20):  # more than the ring holds: a failed copy gives its slot back
        bridge.push(np.zeros((BLOCK, 3), dtype=np.float32), 0.0)  # wrong channel count
    s = bridge.stats
    assert (s.captured, s.push_errors, s.late, s.ring_full) == (20, 20, 0, 0)


async def test_an_unpaced_source_waits_for_room_and_is_let_go() -> None:
    """wait_for_room returns as soon as the processor frees enough, not at its timeout."""
    bridge, receive = make(slots=8, queue=8)
    bridge.listen(0.0)
    for i in range(5):
        bridge.push(block(i), 100.0 + i * PERIOD)
    assert bridge.congested()
    waited: list[float] = []

    def source() -> None:
        started = time.monotonic()
        bridge.wait_for_room(10.0)
        waited.append(time.monotonic() - started)

    thread = threading.Thread(target=source)
    thread.start()
    await trio.sleep(0.1)
    assert not waited  # still waiting: nothing freed yet
    bridge.release(take(receive))
    await trio.to_thread.run_sync(thread.join, 5.0)
    assert waited and waited[0] < 5.0


async def test_an_unpaced_source_waiting_for_room_is_delivered_to_at_a_slow_rate() -> None:
    """Listening at 1 delivery a second, an unpaced source fills the bridge within one
    capture instant: waiting for room delivers what waits, so the source is let go."""
    bridge, receive = make(slots=16, queue=8)
    bridge.listen(1.0)
    bridge.push(block(0), 100.0)
    await trio.sleep(0.05)
    bridge.release(take(receive))  # the first block woke Trio; the rest wait for the grid
    pushed = 1
    while not bridge.congested():
        bridge.push(block(pushed), 100.0)
        pushed += 1
    await trio.sleep(0.05)
    assert take(receive) == []

    def source() -> None:
        bridge.wait_for_room(10.0)

    thread = threading.Thread(target=source)
    thread.start()
    with trio.fail_after(5):  # without the delivery: only the source's timeout, 10 s
        blocks = [await receive.receive(), *take(receive)]
    bridge.release(blocks)
    await trio.to_thread.run_sync(thread.join, 5.0)
    assert not thread.is_alive()
    assert [b.data[0, 0] for b in blocks] == list(range(1, pushed))


async def test_dropping_the_preroll_lets_it_go_and_starts_a_new_stream() -> None:
    """What the source pauses on (standby) is not delivered when it resumes: the first block
    captured after starts the stream, with no warm-up from before the pause."""
    bridge, receive = make(preroll=2)
    bridge.listen(0.0)
    bridge.push(block(0), 100.0)
    await trio.sleep(0.05)
    bridge.release(take(receive))
    bridge.rest()
    for i in range(1, 4):
        bridge.push(block(i), 100.0 + i * PERIOD)
    assert bridge.waiting == 2
    bridge.drop_preroll()
    assert (bridge.waiting, bridge.stats.resting) == (0, 3)
    bridge.listen(0.0)
    assert bridge.stats.delivered == 1  # nothing waited
    bridge.push(block(9), 101.0)
    await trio.sleep(0.05)
    (first,) = take(receive)
    assert first.data[0, 0] == 9
    assert first.flags == BlockFlag.STREAM_START
    bridge.release([first])
    assert conserved(bridge)


async def test_preroll_must_leave_room_in_the_ring() -> None:
    with pytest.raises(ValueError, match="preroll"):
        make(slots=8, preroll=8)
