"""Log-spaced band reduction for clients that ask for fewer values (``?bins=N``).

An FFT's bins are spaced linearly, so on a log-frequency display most of them crowd into
the top octaves while the bass gets a handful. A client that wants ``N`` values (a meter
with 32 LEDs, a microcontroller over UDP) gets ``N`` bands whose edges are log-spaced from
:data:`LOW_HZ` to Nyquist::

    edge[i] = LOW_HZ * (sample_rate / 2 / LOW_HZ) ** (i / N)      i = 0 .. N

Band ``i`` holds the bins ``k`` with ``edge[i] <= k * sample_rate / fft_size < edge[i+1]``
(the last band includes Nyquist) and reports their **maximum**. Max rather than a power mean
because a display wants a pure tone to read the same height whatever the band's width: a
full-scale sine reads 1.0 (0.5 with Hann) in its band exactly as in its bin, while a power
mean would dilute it by the number of bins the band spans. A band narrower than the bin
spacing (the low bands of a small FFT) contains no bin of its own and reports the first
bin at or above its lower edge, so neighbouring low bands may repeat a value; they are never
empty or zero by construction. DC and bins below :data:`LOW_HZ` are left out. Flux is reduced
the same way.
"""

from __future__ import annotations

from functools import lru_cache

import attrs
import numpy as np
from numpy.typing import NDArray

from ..pipeline.messages import Spectrum
from ..samples import FloatArray

LOW_HZ = 20.0
_CACHE_PREFIX = "bands:"


@attrs.frozen(eq=False)
class BandSpectrum(Spectrum):
    """A spectrum whose ``magnitudes``/``flux`` are ``bands`` log-spaced bands, not FFT bins.

    ``fft_size`` stays that of the analysis it was reduced from, so a client can still
    compute the band edges with :func:`band_edges`.
    """

    bands: int = attrs.field(kw_only=True)


def band_edges(sample_rate: int, bands: int) -> NDArray[np.float64]:
    """The ``bands + 1`` edge frequencies in Hz, from :data:`LOW_HZ` to Nyquist."""
    nyquist = sample_rate / 2.0
    if bands < 1:
        raise ValueError(f"bands must be at least 1, got {bands}")
    if not nyquist > LOW_HZ:
        raise ValueError(f"sample rate {sample_rate} Hz has no band above {LOW_HZ:g} Hz")
    return LOW_HZ * (nyquist / LOW_HZ) ** (np.arange(bands + 1, dtype=np.float64) / bands)


@lru_cache(maxsize=64)
def _band_starts(sample_rate: int, fft_size: int, bands: int) -> NDArray[np.intp]:
    """First bin of each band: ``ceil(edge * fft_size / sample_rate)``, clipped to the bins."""
    edges = band_edges(sample_rate, bands)[:-1]
    starts = np.ceil(edges * fft_size / sample_rate - 1e-9).astype(np.intp)
    np.clip(starts, 1, fft_size // 2, out=starts)
    starts.flags.writeable = False
    return starts


def reduce_bands(
    magnitudes: FloatArray, sample_rate: int, fft_size: int, bands: int
) -> NDArray[np.float32]:
    """``bands`` log-spaced maxima of ``magnitudes`` (``fft_size // 2 + 1`` bins)."""
    if fft_size < 2 or len(magnitudes) != fft_size // 2 + 1:
        raise ValueError(
            f"expected {fft_size // 2 + 1} bins for an FFT of {fft_size}, got {len(magnitudes)}"
        )
    starts = _band_starts(sample_rate, fft_size, bands)
    reduced: NDArray[np.float32] = np.maximum.reduceat(
        np.asarray(magnitudes, dtype=np.float32), starts
    )
    return reduced


def reduce_spectrum(spectrum: Spectrum, bands: int) -> BandSpectrum:
    """The spectrum reduced to ``bands`` bands, computed once and shared by every client."""
    key = f"{_CACHE_PREFIX}{bands}"
    cached: BandSpectrum | None = spectrum.encoded(key)
    if cached is not None:
        return cached
    rate, size = spectrum.sample_rate, spectrum.fft_size
    reduced = BandSpectrum(
        frame_count=spectrum.frame_count,
        capture_time=spectrum.capture_time,
        sample_rate=rate,
        fft_size=size,
        magnitudes=reduce_bands(spectrum.magnitudes, rate, size, bands),
        flux=reduce_bands(spectrum.flux, rate, size, bands),
        bpm=spectrum.bpm,
        bpm_confidence=spectrum.bpm_confidence,
        beat_phase=spectrum.beat_phase,
        beat=spectrum.beat,
        bands=bands,
    )
    result: BandSpectrum = spectrum.remember(key, reduced)
    return result
