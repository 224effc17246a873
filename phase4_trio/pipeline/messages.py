"""What flows from the processor to the router and on to every subscriber."""

from __future__ import annotations

from typing import Any, TypeAlias

import attrs

from ..samples import FloatArray


@attrs.frozen(eq=False)
class Spectrum:
    """One analysed block, shared read-only by every subscriber.

    Derived data (band reductions, encodings, complete WebSocket frames) is cached per key in
    ``_encoded``, so a spectrum is encoded once per format, however many clients receive it.
    ``rms``, ``peak`` and ``zero_crossing_rate`` describe the block's samples (see
    :mod:`phase4_trio.dsp.level`); ``beat_phase`` (0-1 within the current beat, at the block's
    end) and ``beat`` (a beat fell in this block) come from the beat tracker
    (:mod:`phase4_trio.dsp.beat`).
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
    beat_phase: float = 0.0
    beat: bool = False
    _encoded: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)

    def encoded(self, key: str) -> Any:
        return self._encoded.get(key)

    def remember(self, key: str, payload: Any) -> Any:
        self._encoded[key] = payload
        return payload


#: Consecutive spectra, oldest first: one item of the processor → router channel and of
#: every subscriber's channel (at real time, usually one spectrum).
Batch: TypeAlias = tuple[Spectrum, ...]
