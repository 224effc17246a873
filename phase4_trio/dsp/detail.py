"""On-demand analysis of a batch: the long sliding spectrum, per-channel spectra, levels.

The block spectrum (``buffer_size`` points, the original's) is computed for every block,
because every message carries it. Everything finer is only wanted by some clients: a spectrum
over the last ``fft_size`` samples (hop = one block, so a message still goes out per block),
spectra per input channel, RMS and peak levels. :class:`Detail` keeps what that needs, the
samples, and computes each of them the first time someone asks, for the whole batch of blocks
at once (one FFT call), so an engine whose clients want none of it pays nothing but one copy of
the samples per batch.

The samples of a batch are one new array, never written again, so a :class:`Detail` stays
valid however long a client keeps the spectrum that holds it.
"""

from __future__ import annotations

import enum
from functools import lru_cache

import attrs
import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from .level import FLOOR_DB
from .spectrum import MagnitudeSpectrum, bin_frequencies

#: Levels (and dB values in general) never read below this: digital silence reads -120.
DB_FLOOR = FLOOR_DB
_FLOOR_AMPLITUDE = 10.0 ** (DB_FLOOR / 20.0)


class Resolution(enum.Enum):
    """Which spectrum a client's values come from."""

    BLOCK = "block"  # buffer_size points, the block alone: the original's spectrum
    FINE = "fine"  # fft_size points sliding over the last samples


def to_db(amplitude: NDArray[np.float32]) -> NDArray[np.float32]:
    """``20·log10(amplitude)``, floored at :data:`DB_FLOOR`."""
    floored = np.maximum(amplitude, np.float32(_FLOOR_AMPLITUDE))
    db: NDArray[np.float32] = np.log10(floored, dtype=np.float32)
    db *= np.float32(20.0)
    return db


@attrs.define(eq=False)
class ChannelLevels:
    """RMS and peak of each block and channel, in dBFS (``20·log10``, so a full-scale sine
    reads 0 dBFS peak and -3.01 dBFS RMS), floored at :data:`DB_FLOOR`; ``(count, channels)``."""

    rms: NDArray[np.float32]
    peak: NDArray[np.float32]


@lru_cache(maxsize=16)
def _frequencies(size: int, sample_rate: float) -> NDArray[np.float32]:
    frequencies = bin_frequencies(size, sample_rate).astype(np.float32)
    frequencies.setflags(write=False)
    return frequencies


class SampleWindows:
    """The samples behind one batch of ``count`` blocks of ``hop`` frames, and what is derived
    from them on request. Made by the :class:`~phase4_trio.dsp.Analyzer`.

    ``samples`` holds the ``fft_size`` frames before the batch, then the batch: block ``i``'s
    long window is ``samples[(i + 1)·hop : (i + 1)·hop + fft_size]``.
    """

    def __init__(
        self,
        samples: NDArray[np.float32],
        hop: int,
        count: int,
        block_magnitudes: NDArray[np.float32],
        block: MagnitudeSpectrum,
        fine: MagnitudeSpectrum,
        epoch: int,
        sample_rate: float,
    ) -> None:
        self.samples = samples
        self.hop = hop
        self.count = count
        self.epoch = epoch
        self._block_magnitudes = block_magnitudes
        self._block = block
        self._fine = fine
        self._sample_rate = sample_rate
        self._spectra: dict[tuple[Resolution, bool], NDArray[np.float32]] = {}
        self._centroids: dict[tuple[Resolution, bool], NDArray[np.float32]] = {}
        self._levels: ChannelLevels | None = None

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    def fft_size(self, resolution: Resolution) -> int:
        return self._fine.size if resolution is Resolution.FINE else self._block.size

    def window_power(self, resolution: Resolution) -> float:
        """``mean(w²)`` of the window of that resolution, for band power."""
        spectrum = self._fine if resolution is Resolution.FINE else self._block
        return spectrum.window_power

    def spectra(self, resolution: Resolution, per_channel: bool) -> NDArray[np.float32]:
        """Magnitudes of every block: ``(count, bins)`` of the channels' mean, or
        ``(count, channels, bins)`` per channel. Computed once, read-only."""
        key = (resolution, per_channel)
        spectra = self._spectra.get(key)
        if spectra is None:
            spectra = self._spectra[key] = self._compute(resolution, per_channel)
            spectra.setflags(write=False)
        return spectra

    def _compute(self, resolution: Resolution, per_channel: bool) -> NDArray[np.float32]:
        if resolution is Resolution.BLOCK:
            if not per_channel:
                return self._block_magnitudes
            spectrum, size = self._block, self.hop
            blocks = self.samples[len(self.samples) - self.count * self.hop :]
            frames = blocks.reshape(self.count, self.hop, self.channels)
        else:
            spectrum = self._fine
            if spectrum is self._block and not per_channel:
                return self._block_magnitudes
            size = spectrum.size
            frames = self._long_windows()
        if not per_channel:
            return spectrum.batch(frames)
        channels = self.channels
        rows = np.ascontiguousarray(frames.transpose(0, 2, 1)).reshape(-1, size, 1)
        return spectrum.batch(rows).reshape(self.count, channels, -1)

    def _long_windows(self) -> NDArray[np.float32]:
        """``(count, fft_size, channels)`` views into ``samples``, one per block."""
        samples = self.samples
        row, column = samples.strides
        windows: NDArray[np.float32] = as_strided(
            samples[self.hop :],
            shape=(self.count, self._fine.size, samples.shape[1]),
            strides=(self.hop * row, row, column),
            writeable=False,
        )
        return windows

    def centroids(self, resolution: Resolution, per_channel: bool) -> NDArray[np.float32]:
        """Spectral centroid in Hz of every block, ``(count, 1)`` for the mix or ``(count,
        channels)``: the magnitude-weighted mean frequency, DC left out, 0 for silence."""
        key = (resolution, per_channel)
        centroids = self._centroids.get(key)
        if centroids is None:
            spectra = self.spectra(resolution, per_channel)
            if not per_channel:
                spectra = spectra[:, np.newaxis]
            magnitudes = spectra[..., 1:]
            total = magnitudes.sum(axis=-1)
            moment = magnitudes @ _frequencies(self.fft_size(resolution), self._sample_rate)[1:]
            centroids = np.divide(moment, total, out=np.zeros_like(total), where=total > 0)
            self._centroids[key] = centroids
        return centroids

    def levels(self) -> ChannelLevels:
        """RMS and peak of each block's own ``hop`` frames, per channel, in dBFS."""
        if self._levels is None:
            blocks = self.samples[len(self.samples) - self.count * self.hop :]
            frames = blocks.reshape(self.count, self.hop, self.channels)
            peak = np.maximum(frames.max(axis=1), -frames.min(axis=1))
            square = np.einsum("ijk,ijk->ik", frames, frames, dtype=np.float32)
            square *= np.float32(1.0 / self.hop)
            self._levels = ChannelLevels(rms=to_db(np.sqrt(square, out=square)), peak=to_db(peak))
        return self._levels


@attrs.frozen
class Detail:
    """One block's handle on its batch's :class:`SampleWindows`."""

    windows: SampleWindows
    index: int

    def spectrum(self, resolution: Resolution) -> NDArray[np.float32]:
        """The channels' mean spectrum of this block, ``(bins,)``."""
        row: NDArray[np.float32] = self.windows.spectra(resolution, False)[self.index]
        return row


class SlidingHistory:
    """The last ``fft_size`` frames of one stream, carried from batch to batch.

    Each batch becomes one new array (the history, then the batch), which its
    :class:`SampleWindows` keep; the history is then the tail of that array. A reset starts
    again from silence, so a window never spans a gap in the stream.
    """

    def __init__(self, fft_size: int) -> None:
        self.fft_size = fft_size
        self.epoch = 0
        self._tail: NDArray[np.float32] | None = None

    def extend(self, blocks: NDArray[np.float32]) -> NDArray[np.float32]:
        """The history followed by a ``(count, frames, channels)`` batch, as one new array."""
        count, frames, channels = blocks.shape
        tail = self._tail
        if tail is None or tail.shape[1] != channels:
            tail = np.zeros((self.fft_size, channels), dtype=np.float32)
        samples = np.empty((self.fft_size + count * frames, channels), dtype=np.float32)
        samples[: self.fft_size] = tail
        samples[self.fft_size :] = blocks.reshape(count * frames, channels)
        self._tail = samples[-self.fft_size :]
        return samples

    def reset(self) -> None:
        self._tail = None
        self.epoch += 1
