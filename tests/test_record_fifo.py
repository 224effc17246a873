"""The capture→writer FIFO: order and content across wrap-around, counted overflow, exact
close, and a real producer thread against a real consumer thread."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phase4_trio.record.fifo import FrameFifo


def read_all(fifo: FrameFifo) -> np.ndarray:
    first, second = fifo.readable()
    out = np.concatenate([first, second])
    fifo.consume(len(out))
    return out


@given(
    st.integers(1, 50),
    st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=60),
)
def test_frames_come_out_in_order_and_overflow_is_counted(
    capacity: int, operations: list[tuple[bool, int]]
) -> None:
    """Against a model: a deque of frames, with whole blocks refused when they do not fit."""
    fifo = FrameFifo(seconds=capacity, sample_rate=1, channels=2)
    model: deque[float] = deque()
    counter = 0
    overflow = 0
    for is_write, size in operations:
        if is_write:
            block = np.arange(counter, counter + size, dtype=np.float32)[:, None].repeat(2, axis=1)
            counter += size
            accepted = fifo.write(block)
            assert accepted == (len(model) + size <= capacity)
            if accepted:
                model.extend(block[:, 0])
            else:
                overflow += size
        else:
            first, second = fifo.readable()
            take = min(size, len(first) + len(second))
            got = np.concatenate([first, second])[:take]
            fifo.consume(take)
            expected = [model.popleft() for _ in range(take)]
            assert got[:, 0].tolist() == expected
            assert (got[:, 1] == got[:, 0]).all()
        assert fifo.pending() == len(model)
    assert fifo.stats.overflow_frames == overflow
    assert fifo.stats.accepted_frames + overflow == counter


def test_an_overflowing_block_is_dropped_whole_and_the_rest_is_intact() -> None:
    fifo = FrameFifo(seconds=1.0, sample_rate=100, channels=1)
    first = np.full((60, 1), 0.25, np.float32)
    assert fifo.write(first)
    assert not fifo.write(np.full((60, 1), 0.5, np.float32))
    assert fifo.stats.overflow_frames == 60
    assert fifo.stats.overflow_blocks == 1
    assert np.array_equal(read_all(fifo), first)
    assert fifo.write(np.full((60, 1), 0.5, np.float32))  # room again once consumed


def test_int32_blocks_are_scaled_like_the_bridge_does() -> None:
    fifo = FrameFifo(seconds=1.0, sample_rate=8, channels=1)
    fifo.write(np.array([[2**30], [-(2**31)]], dtype=np.int32))
    assert read_all(fifo)[:, 0].tolist() == [0.5, -1.0]


def test_bad_blocks_and_writes_after_close_are_counted_never_raised() -> None:
    fifo = FrameFifo(seconds=1.0, sample_rate=100, channels=2)
    assert not fifo.write(np.zeros((10, 3), np.float32))
    assert not fifo.write(np.zeros(10, np.float32))
    assert fifo.stats.rejected_frames == 20
    fifo.close()
    assert not fifo.write(np.zeros((7, 2), np.float32))
    assert fifo.stats.late_frames == 7
    assert fifo.pending() == 0


def test_a_producer_thread_and_a_consumer_thread_agree_on_every_frame() -> None:
    """Each block carries its sequence number; the consumer must see the accepted blocks,
    complete and in order, and accepted + overflow must be every block offered."""
    block, blocks = 64, 20_000
    fifo = FrameFifo(seconds=block * 8, sample_rate=1, channels=1)
    received: list[np.ndarray] = []
    done = threading.Event()

    def produce() -> None:
        buffer = np.zeros((block, 1), np.float32)
        for number in range(blocks):
            buffer[:] = number
            fifo.write(buffer)
        done.set()

    def consume() -> None:
        while True:
            finished = done.is_set()
            first, second = fifo.readable()
            if len(first) + len(second):
                received.append(np.concatenate([first, second])[:, 0].copy())
                fifo.consume(len(first) + len(second))
            elif finished:
                return

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    frames = np.concatenate(received)
    assert len(frames) % block == 0
    per_block = frames.reshape(-1, block)
    assert (per_block == per_block[:, :1]).all()  # no block torn or mixed
    numbers = per_block[:, 0]
    assert (np.diff(numbers) > 0).all()  # in order, none twice
    assert len(numbers) == fifo.stats.accepted_blocks
    assert fifo.stats.accepted_blocks + fifo.stats.overflow_blocks == blocks
