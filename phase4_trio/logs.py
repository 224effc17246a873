"""Log lines a peer can provoke, held to one per interval.

A hostile or broken peer can cause the same warning thousands of times a second (refused
origins, malformed handshakes, a UDP target that is down). Each such source logs through a
:class:`LogLimiter`: the first occurrence is logged at once, later ones within
``interval`` seconds are only counted, and the count is reported with the next line that
gets through, so nothing is hidden and the log stays readable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

DEFAULT_INTERVAL = 5.0


class LogLimiter:
    """One rate-limited log line source; ``clock`` is injectable for tests."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._quiet_until = -math.inf
        self.suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def log(self, level: int, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._quiet_until:
            self.suppressed += 1
            return
        if self.suppressed:
            message += f" ({self.suppressed} more like this in the last {self._interval:g} s)"
        self._logger.log(level, message, *args)
        self._quiet_until = now + self._interval
        self.suppressed = 0
