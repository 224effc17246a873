"""Single-sided magnitude spectrum of one block, scaled like the original.

``magnitude[k] = |X[k]| / N``, doubled for ``0 < k < N/2`` where the negative-frequency half is
folded in. A full-scale sine centred on a bin therefore reads 1.0 through a rectangular window
and the window's coherent gain (about 0.5 for Hann) through any other.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def bin_frequencies(size: int, sample_rate: float) -> NDArray[np.float64]:
    """Centre frequency of each of the ``size // 2 + 1`` bins, in Hz."""
    return np.arange(size // 2 + 1, dtype=np.float64) * (sample_rate / size)


class MagnitudeSpectrum:
    """Magnitudes of float32 blocks, with every buffer but the result allocated up front.

    Multichannel blocks are mixed down to the mean of their channels: a source panned anywhere
    reads at the same level, and the mix cannot leave [-1, 1). The ``1 / channels`` and the
    ``2 / N`` scaling are folded into the window, so the per-block work is one multiply, one
    FFT and one absolute value. A block shorter than the window is zero-padded at the end.

    The FFT is numpy's pocketfft on purpose: a dense DFT matrix is faster at N = 256 on an
    idle machine, but goes through BLAS, whose worker threads stall badly when other processes
    keep the cores busy (hundreds of µs per block measured), which an audio path cannot afford.
    """

    def __init__(self, window: NDArray[np.float64]) -> None:
        size = len(window)
        if size < 2 or size % 2:
            raise ValueError(f"spectrum size must be even and at least 2, got {size}")
        self.size = size
        self._window = window * (2.0 / size)
        self._mono_window = self._window.astype(np.float32)
        self._windows: dict[int, NDArray[np.float32]] = {}
        self._mixed = np.empty(size, dtype=np.float32)
        self._windowed = np.zeros(size, dtype=np.float32)
        self._bins = np.empty(size // 2 + 1, dtype=np.complex64)

    def __call__(self, block: NDArray[np.float32]) -> NDArray[np.float32]:
        """Return a new float32 array of ``N // 2 + 1`` magnitudes for a ``(frames, channels)``
        block (1-D is mono), ``frames <= N``."""
        frames = block.shape[0]
        if frames > self.size:
            raise ValueError(f"block has {frames} frames, more than the FFT size {self.size}")
        channels = 1 if block.ndim == 1 else block.shape[1]
        if channels == 1:
            mixed = block if block.ndim == 1 else block[:, 0]
            window = self._mono_window
        else:
            mixed = np.add(block[:, 0], block[:, 1], out=self._mixed[:frames])
            for channel in range(2, channels):
                np.add(mixed, block[:, channel], out=mixed)
            window = self._mean_window(channels)
        if frames == self.size:
            np.multiply(mixed, window, out=self._windowed)
        else:
            np.multiply(mixed, window[:frames], out=self._windowed[:frames])
            self._windowed[frames:] = 0.0
        # numpy >= 2 transforms float32 in single precision; its stubs still say complex128.
        np.fft.rfft(self._windowed, out=self._bins)  # type: ignore[arg-type]
        magnitudes = np.abs(self._bins)
        # The window carries the interior's 2 / N; DC and Nyquist take only 1 / N.
        magnitudes[0] *= 0.5
        magnitudes[-1] *= 0.5
        return magnitudes

    def _mean_window(self, channels: int) -> NDArray[np.float32]:
        window = self._windows.get(channels)
        if window is None:
            window = self._windows[channels] = (self._window / channels).astype(np.float32)
        return window
