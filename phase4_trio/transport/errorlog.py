"""A failure that repeats many times a second (a datagram peer gone away) is logged rarely.

The first failure is logged at once; later ones are counted and logged as one line, with the
count, at most once per :data:`ERROR_LOG_INTERVAL` seconds (Trio's clock). Counting every
failure for ``/metrics`` is the caller's job.
"""

from __future__ import annotations

import logging
import math

import trio

log = logging.getLogger(__name__)

ERROR_LOG_INTERVAL = 5.0


class RateLimitedLog:
    """Warnings that ``what`` (e.g. ``"UDP send to 127.0.0.1:9000"``) failed, rate-limited."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._quiet_until = -math.inf
        self._suppressed = 0

    def report(self, error: OSError) -> None:
        now = trio.current_time()
        if now < self._quiet_until:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        log.warning("%s failed: %s%s", self._what, error, more)
        self._quiet_until = now + ERROR_LOG_INTERVAL
        self._suppressed = 0
