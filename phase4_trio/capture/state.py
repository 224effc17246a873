"""Where a capture source is in its life."""

from __future__ import annotations

import enum


class CaptureState(enum.Enum):
    """/healthz reports anything but RUNNING and STANDBY as unhealthy, with the state's value.

    STANDBY: the source is paused because nothing needs audio (no subscriber, no recorder);
    it runs again as soon as something does."""

    IDLE = "idle"
    RUNNING = "running"
    STANDBY = "standby"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
