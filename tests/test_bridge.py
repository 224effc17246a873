"""The thread → Trio door on its own: batches, order, bounds, back-pressure, the wake-up."""

from __future__ import annotations

import ctypes
import sys
import threading
import time

import numpy as np
import pytest
import trio

from phase4_trio.capture.bridge import CaptureBridge
from phase4_trio.capture.wakeup import Wakeup
from phase4_trio.pipeline.messages import Block

BLOCK = 64


def block(value: float) -> np.ndarray:
    return np.full((BLOCK, 1), value, dtype=np.float32)


def bridge(slots: int = 16, queue: int = 8) -> CaptureBridge:
    return CaptureBridge(block_size=BLOCK, channels=1, slots=slots, queue_size=queue)


async def test_blocks_pushed_while_trio_is_busy_arrive_as_one_batch_in_order() -> None:
    with bridge() as door:
        for i in range(5):
            door.push(block(i), capture_time=100.0 + i)
        blocks = await door.receive()
        assert [b.index for b in blocks] == [0, 1, 2, 3, 4]
        assert [float(b.data[0, 0]) for b in blocks] == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert [b.capture_time for b in blocks] == [100.0, 101.0, 102.0, 103.0, 104.0]
        door.release(blocks)
        assert door.stats.queued == 5 and door.dropped == 0


async def test_a_full_inbox_and_a_full_ring_drop_and_count() -> None:
    with bridge(slots=6, queue=4) as door:
        for i in range(6):
            door.push(block(i), 0.0)
        assert door.stats.queue_full == 2  # the inbox holds 4
        blocks = await door.receive()
        assert [b.index for b in blocks] == [0, 1, 2, 3]
        for i in range(6, 9):  # 2 slots left free: the third block finds none
            door.push(block(i), 0.0)
        assert door.stats.ring_full == 1
        door.release(blocks)
        more = await door.receive()
        assert [b.index for b in more] == [6, 7]
        s = door.stats
        assert s.captured == s.queued + s.ring_full + s.queue_full + s.late == 9


async def receive_while_another_thread_pushes(door: CaptureBridge, value: float) -> list[Block]:
    """``door.receive()`` while a thread pushes one block 50 ms later, as an audio thread would."""

    def later() -> None:
        time.sleep(0.05)
        door.push(block(value), 1.0)

    thread = threading.Thread(target=later)
    thread.start()
    try:
        with trio.fail_after(5):
            return await door.receive()
    finally:
        thread.join()


async def test_receive_waits_for_a_block_from_another_thread() -> None:
    with bridge() as door:
        blocks = await receive_while_another_thread_pushes(door, 7.0)
        assert [float(b.data[0, 0]) for b in blocks] == [7.0]


async def test_a_stale_signalled_flag_never_strands_a_block() -> None:
    """A push preempted between reading the flag (clear) and setting it leaves it set after
    the receiver has already taken that push's block; the next block must still wake it."""
    with bridge() as door:
        door.push(block(1), 0.0)
        assert [b.index for b in await door.receive()] == [0]
        door._signalled = True  # the preempted push finally sets the flag, then signals
        door._wakeup.signal()
        # The stale byte wakes the receiver once for nothing; the next push wakes it again.
        blocks = await receive_while_another_thread_pushes(door, 2.0)
        assert [b.index for b in blocks] == [1]


async def test_blocks_left_at_shutdown_are_counted_late() -> None:
    with bridge() as door:
        door.push(block(1), 0.0)
        door.push(block(2), 0.0)
        door.close()
        door.push(block(3), 0.0)  # after close: ignored, not even counted as captured
        door.discard_waiting()
        s = door.stats
        assert (s.captured, s.late, s.queued) == (2, 2, 0)


async def test_an_unpaced_source_waits_for_room_and_is_let_go() -> None:
    """wait_for_room returns as soon as the processor frees enough, not at its timeout."""
    with bridge(slots=8, queue=8) as door:
        for i in range(5):
            door.push(block(i), 0.0)
        assert door.congested()
        waited: list[float] = []

        def source() -> None:
            started = time.monotonic()
            door.wait_for_room(10.0)
            waited.append(time.monotonic() - started)

        thread = threading.Thread(target=source)
        thread.start()
        await trio.sleep(0.1)
        assert not waited  # still waiting: nothing freed yet
        door.release(await door.receive())
        await trio.to_thread.run_sync(thread.join, 5.0)
        assert waited and waited[0] < 5.0


def test_the_callback_never_raises_on_a_bad_block() -> None:
    with bridge() as door:
        for _ in range(20):  # more than the ring holds: a failed copy gives its slot back
            door.push(np.zeros((BLOCK, 3), dtype=np.float32), 0.0)  # wrong channel count
        assert door.stats.captured == 20 and door.stats.late == 20
        assert door.stats.ring_full == 0


async def test_wakeup_signals_are_coalesced_and_close_is_final() -> None:
    wakeup = Wakeup()
    for _ in range(100):
        wakeup.signal()
    with trio.fail_after(5):
        await wakeup.wait()
    with trio.move_on_after(0.05) as scope:
        await wakeup.wait()  # one recv took them all: nothing more to wait for
    assert scope.cancelled_caught
    wakeup.close()
    wakeup.signal()  # after close: a no-op, never a write to a reused descriptor


@pytest.mark.skipif(sys.platform == "win32", reason="no ctypes.PyDLL(None) on Windows")
def test_the_wakeup_write_keeps_the_gil() -> None:
    """The point of the module: on POSIX the byte goes out through ctypes.PyDLL."""
    wakeup = Wakeup()
    try:
        assert wakeup._send is not None
        assert wakeup._send._flags_ & ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]
    finally:
        wakeup.close()
