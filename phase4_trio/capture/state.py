"""Where a capture source is in its life."""

from __future__ import annotations

import enum


class CaptureState(enum.Enum):
    """/healthz reports anything but RUNNING as unhealthy, with the state's value."""

    IDLE = "idle"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
