"""What flows between the stages: captured blocks and analysed spectra."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]


@attrs.frozen
class Block:
    """One captured block, living in a ring slot until the processor releases it.

    ``data`` is a view into the bridge's preallocated ring, shape ``(frames, channels)``,
    float32 in [-1, 1). It is valid only until :meth:`CaptureBridge.release` is called.
    """

    index: int
    slot: int
    data: FloatArray
    capture_time: float
    status: int


@attrs.frozen(eq=False)
class Spectrum:
    """One analysed block, shared read-only by every endpoint.

    Encodings are cached per wire format in ``_encoded`` so a spectrum is encoded once
    per format, however many clients receive it. ``rms``, ``peak`` and
    ``zero_crossing_rate`` describe the block's samples (see :mod:`phase4_trio.dsp.level`).
    """

    frame_count: int
    capture_time: float
    sample_rate: int
    fft_size: int
    magnitudes: FloatArray
    flux: FloatArray
    bpm: float
    bpm_confidence: float
    rms: float = 0.0
    peak: float = 0.0
    zero_crossing_rate: float = 0.0
    _encoded: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)

    def encoded(self, key: str) -> Any:
        return self._encoded.get(key)

    def remember(self, key: str, payload: Any) -> Any:
        self._encoded[key] = payload
        return payload
