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
        """Flux of one magnitude array: a new array, ``len(magnitudes)`` long."""
        flux: NDArray[np.float32] = self.batch(magnitudes[np.newaxis])[0]
        return flux

    def batch(self, magnitudes: NDArray[np.float32]) -> NDArray[np.float32]:
        """Flux of each row of a ``(count, bins)`` array against the row before it."""
        previous = magnitudes[0] if self._previous is None else self._previous
        self._previous = magnitudes[-1]
        if len(magnitudes) == 1:
            before = previous  # broadcasts: the common case at real time, no copy
        else:
            before = np.concatenate((previous[np.newaxis], magnitudes[:-1]))
        # max(m, p) - p is exactly max(m - p, 0), one numpy call cheaper.
        flux = np.maximum(magnitudes, before)
        flux -= before
        flux *= self._gain
        return flux

    def reset(self) -> None:
        self._previous = None
