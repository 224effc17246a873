"""Logging for the commands, and one status line that log records never glue onto.

``phase4 record`` redraws a live meter on a terminal with ``\\r``; a log record written while
that line is up would start in the middle of it. :class:`StatusLine` owns the line: the log
handler clears it before each record (under the same lock as the redraw, since the
recorder's writer thread logs too) and the next redraw puts the meter back below the record.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
CLEAR_LINE = "\r\x1b[K"


class StatusLine:
    """A line of text redrawn in place at the bottom of a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self._shown = False

    def show(self, text: str) -> None:
        with self.lock:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
            self._shown = True

    def finish(self, text: str) -> None:
        """Draw the line one last time and move below it, for good."""
        with self.lock:
            self.stream.write(f"\r{text}\x1b[K\n")
            self.stream.flush()
            self._shown = False

    def clear(self) -> None:
        """Blank the line and put the cursor at its start; the caller holds :attr:`lock`."""
        if self._shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._shown = False


class _ClearingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record on a line of its own, clearing the status line first."""

    def __init__(self, stream: TextIO, status: StatusLine) -> None:
        super().__init__(stream)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        with self.status.lock:
            self.status.clear()
            super().emit(record)
            self.flush()


def setup_logging(
    level: str, status: StatusLine | None = None, stream: TextIO | None = None
) -> None:
    """Log to ``stream`` (stderr) at ``level``; around ``status`` when one is on screen."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream) if status is None else _ClearingHandler(stream, status)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
