"""What one bench run measures; built by :mod:`.command` from the flags."""

from __future__ import annotations

import attrs


@attrs.frozen
class BenchOptions:
    seconds: float = 10.0
    soak: bool = False
    soak_seconds: float = 600.0
    fanout_max: int = 1000
    source: str = "tone:1000"
    client: str = "raw"
    formats: tuple[str, ...] = ("json", "f32")
    peer: bool = True
    nats: tuple[str, ...] = ()
