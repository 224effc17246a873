"""Single-sided magnitude spectrum of one block, scaled like the original.

``magnitude[k] = |X[k]| / N``, doubled for ``0 < k < N/2`` where the negative-frequency half is
folded in. A full-scale sine centred on a bin therefore reads 1.0 through a rectangular window
and the window's coherent gain (about 0.5 for Hann) through any other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray


def bin_frequencies(size: int, sample_rate: float) -> NDArray[np.float64]:
    """Centre frequency of each of the ``size // 2 + 1`` bins, in Hz."""
    return np.arange(size // 2 + 1, dtype=np.float64) * (sample_rate / size)


def _numpy_rfft_rows(rows: NDArray[np.float32]) -> NDArray[np.complex64]:
    # numpy >= 2 transforms float32 in single precision; its stubs still say complex128.
    return np.fft.rfft(rows, axis=1)  # type: ignore[return-value]


def _pick_rfft_rows() -> Callable[[NDArray[np.float32]], NDArray[np.complex64]]:
    """The rFFT of each row of an even-width float32 array.

    ``np.fft.rfft`` spends about twice as long in its Python wrapper as in the transform at
    N = 256; the gufunc behind it is called directly when it is there and agrees with the
    wrapper on a probe, and the wrapper is used otherwise (a future numpy may move it).
    """
    try:
        from numpy.fft._pocketfft_umath import rfft_n_even  # type: ignore[import-not-found]
    except ImportError:
        return _numpy_rfft_rows
    axes = [(1,), (), (1,)]

    def direct(rows: NDArray[np.float32]) -> NDArray[np.complex64]:
        out = np.empty((rows.shape[0], rows.shape[1] // 2 + 1), dtype=np.complex64)
        rfft_n_even(rows, 1, axes=axes, out=out)
        return out

    probe = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    try:
        agrees = np.allclose(direct(probe), _numpy_rfft_rows(probe), rtol=1e-5, atol=1e-5)
    except Exception:
        agrees = False
    return direct if agrees else _numpy_rfft_rows


rfft_rows = _pick_rfft_rows()


class MagnitudeSpectrum:
    """Magnitudes of float32 blocks, one block or a whole batch at a time.

    Multichannel blocks are mixed down to the mean of their channels: a source panned anywhere
    reads at the same level, and the mix cannot leave [-1, 1). The ``1 / channels`` is folded
    into the window and the ``2 / N`` (``1 / N`` at DC and Nyquist) into one per-bin scale, so
    the work per batch is one multiply, one FFT over every row, one absolute value and one
    scale. A block shorter than the window is zero-padded at the end.

    The FFT is numpy's pocketfft on purpose: a dense DFT matrix is faster at N = 256 on an
    idle machine, but goes through BLAS, whose worker threads stall badly when other processes
    keep the cores busy (hundreds of µs per block measured), which an audio path cannot afford.
    """

    def __init__(self, window: NDArray[np.float64]) -> None:
        size = len(window)
        if size < 2 or size % 2:
            raise ValueError(f"spectrum size must be even and at least 2, got {size}")
        self.size = size
        self._window = window
        # mean(w²): the window's power gain (ENBW in bins times coherent gain squared).
        self.window_power = float(np.mean(np.square(window)))
        self._windows: dict[int, NDArray[np.float32]] = {}
        scale = np.full(size // 2 + 1, 2.0 / size)
        scale[[0, -1]] = 1.0 / size
        self._bin_scale = scale.astype(np.float32)

    def __call__(self, block: NDArray[np.float32]) -> NDArray[np.float32]:
        """``N // 2 + 1`` magnitudes of one ``(frames, channels)`` block (1-D is mono)."""
        batch = block.reshape(1, block.shape[0], 1 if block.ndim == 1 else block.shape[1])
        magnitudes: NDArray[np.float32] = self.batch(batch)[0]
        return magnitudes

    def batch(self, blocks: NDArray[np.float32]) -> NDArray[np.float32]:
        """A new ``(count, N // 2 + 1)`` array for a ``(count, frames, channels)`` stack,
        ``frames <= N``."""
        count, frames, channels = blocks.shape
        if frames > self.size:
            raise ValueError(f"block has {frames} frames, more than the FFT size {self.size}")
        if blocks.dtype != np.float32:
            blocks = blocks.astype(np.float32)
        window = self._mean_window(channels)
        if frames < self.size:
            windowed = np.zeros((count, self.size), dtype=np.float32)
            mixed = blocks[:, :, 0] if channels == 1 else blocks.sum(axis=2, dtype=np.float32)
            np.multiply(mixed, window[:frames], out=windowed[:, :frames])
        elif channels == 1:
            windowed = np.multiply(blocks[:, :, 0], window)
        else:
            windowed = blocks.sum(axis=2, dtype=np.float32)
            windowed *= window
        magnitudes = np.abs(rfft_rows(windowed))
        magnitudes *= self._bin_scale
        return magnitudes

    def _mean_window(self, channels: int) -> NDArray[np.float32]:
        window = self._windows.get(channels)
        if window is None:
            window = self._windows[channels] = (self._window / channels).astype(np.float32)
        return window
