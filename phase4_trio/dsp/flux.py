"""Spectral flux: how much each bin grew since the previous block.

Only growth counts (the positive part), because onsets add energy while decays remove it.
Bins below 200 Hz are doubled, as in the original, so kick drums and bass notes, which move
few bins, weigh as much as broadband hits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .spectrum import bin_frequencies

LOW_BAND_HZ = 200.0
LOW_BAND_GAIN = 2.0


class SpectralFlux:
    """Flux of successive magnitude arrays of one stream.

    The first block after construction or :meth:`reset` has no predecessor and yields zeros
    rather than its whole spectrum, so a stream start or a capture gap is not taken for an onset.
    The previous magnitudes are kept by reference: callers must not modify them afterwards.
    """

    def __init__(self, size: int, sample_rate: float) -> None:
        below = bin_frequencies(size, sample_rate) < LOW_BAND_HZ
        self._gain = np.where(below, LOW_BAND_GAIN, 1.0).astype(np.float32)
        self._previous: NDArray[np.float32] | None = None

    def __call__(self, magnitudes: NDArray[np.float32]) -> NDArray[np.float32]:
        """Return a new array, ``len(magnitudes)`` long."""
        previous, self._previous = self._previous, magnitudes
        if previous is None:
            return np.zeros_like(magnitudes)
        # max(m, p) - p is exactly max(m - p, 0), one numpy call cheaper.
        flux = np.maximum(magnitudes, previous)
        flux -= previous
        flux *= self._gain
        return flux

    def reset(self) -> None:
        self._previous = None
