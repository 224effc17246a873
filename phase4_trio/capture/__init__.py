"""Where audio comes from: a device or a synthetic source, all entering through one bridge."""

from __future__ import annotations

from typing import Protocol

import trio

from .. import metrics as m
from ..config import DeviceSource, InputConfig, NoiseSource, ToneSource, WavSource
from .bridge import (
    INPUT_OVERFLOW,
    INPUT_UNDERFLOW,
    Block,
    BlockFlag,
    BridgeStats,
    CaptureBridge,
    CaptureTap,
)
from .state import CaptureState
from .synthetic import NoiseGenerator, SyntheticSource, ToneGenerator, WavGenerator, read_wav


class CaptureSource(Protocol):
    """Feeds a bridge until cancelled; ``task_status.started()`` once audio is about to flow."""

    sample_rate: int
    channels: int
    description: str
    state: CaptureState

    def metrics(self) -> list[m.Metric]:
        """The source's own counters (a device's reconnections), for /metrics."""
        ...

    def standby(self, on: bool) -> None:
        """Pause capturing (``on``) while nothing needs audio, or capture again. Returns at
        once, from the Trio thread; the source's own task or thread does the work."""
        ...

    async def run(
        self,
        bridge: CaptureBridge,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...


def open_source(config: InputConfig, *, paced: bool = True) -> CaptureSource:
    """Build the configured source; user mistakes raise :class:`Phase4Error`."""
    source = config.source
    if isinstance(source, DeviceSource):
        from .device import open_device

        return open_device(config)
    if isinstance(source, ToneSource):
        generator: ToneGenerator | NoiseGenerator | WavGenerator = ToneGenerator(
            source.frequency, source.amplitude, config.sample_rate, config.channels
        )
    elif isinstance(source, NoiseSource):
        generator = NoiseGenerator(config.sample_rate, config.channels)
    elif isinstance(source, WavSource):
        generator = WavGenerator(read_wav(source.path))
    synthetic = SyntheticSource(generator, config.buffer_size, paced=paced)
    synthetic.description = str(source)
    return synthetic


__all__ = [
    "INPUT_OVERFLOW",
    "INPUT_UNDERFLOW",
    "Block",
    "BlockFlag",
    "BridgeStats",
    "CaptureBridge",
    "CaptureSource",
    "CaptureState",
    "CaptureTap",
    "SyntheticSource",
    "open_source",
    "read_wav",
]
