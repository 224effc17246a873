"""Ticks on an absolute grid, for senders that send at a fixed rate.

Tick ``n`` falls at ``start + n * interval`` (Trio's clock), so the rate does not drift with
scheduling latency; after a stall longer than an interval, the ticks missed are skipped rather
than sent in a burst.
"""

from __future__ import annotations

import math

import trio


class Pacer:
    """``await pacer.tick()`` returns at each tick of the grid that starts now."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._start = trio.current_time()
        self._count = 0

    async def tick(self) -> None:
        self._count += 1
        interval, start = self._interval, self._start
        now = trio.current_time()
        if start + self._count * interval < now:
            self._count = math.ceil((now - start) / interval)
        await trio.sleep_until(start + self._count * interval)
