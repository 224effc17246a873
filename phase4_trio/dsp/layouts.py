"""Band layouts: IEC 1/N-octave, mel and log bands, and the band power of a spectrum in them.

A visualizer wants a handful of bands, not thousands of FFT bins, and it wants them to mean
something physical: pink noise (equal power per octave) should read flat across octave bands,
and a sine should read its own amplitude in the band that holds it. So a band's value is its
**band power**, the energy of the bins it covers, reported as an amplitude:

    value = sqrt( Σ_k  overlap(k, band) · c_k · m_k²  /  mean(w²) )

``m_k`` are the magnitudes of :mod:`.spectrum` (a full-scale sine centred on a bin reads the
window's coherent gain there), ``c_k`` is 1, or 2 at DC and Nyquist (which are not doubled in
``m``), ``mean(w²)`` corrects for the window's power gain (the window's ENBW times its coherent
gain squared), and ``overlap(k, band)`` is the fraction of bin ``k``'s frequency span
``[(k - ½)·Δ, (k + ½)·Δ]`` that lies in the band (``Δ = sample_rate / fft_size``). A sine of
amplitude A whose main lobe lies in one band reads A there; white noise of variance σ² reads
``sqrt(2·σ²·width / (sample_rate / 2))``. Because the overlaps of the bins a layout covers sum
to one, the band powers of a layout sum exactly to the power of the spectrum in its range.

A band narrower than a bin (the low bands of a short FFT) gets the matching fraction of that
bin's power: never empty, never a copy of its neighbour's value, but only as fine as the
resolution in use, which the layout reports.
"""

from __future__ import annotations

import enum
import math
from functools import lru_cache

import attrs
import numpy as np
from numpy.typing import NDArray

#: Bands start here: the bottom of the audible range.
LOW_HZ = 20.0
#: IEC 61260-1 base-ten octave ratio, and its reference frequency.
OCTAVE_RATIO = 10.0 ** (3.0 / 10.0)
REFERENCE_HZ = 1000.0
#: Fractional-octave bandwidth designators a client may ask for (``octave:N``, 1/N octave).
OCTAVE_FRACTIONS = (1, 2, 3, 6, 12, 24)
#: The lowest mid-band frequency an octave layout includes; the nominal 20 Hz third-octave
#: band's exact mid-band frequency is 19.95 Hz.
MIN_OCTAVE_CENTRE_HZ = 19.5
#: Band counts allowed for ``mel:N`` and ``log:N``.
MAX_BANDS = 1024


class BandKind(enum.Enum):
    OCTAVE = "octave"
    MEL = "mel"
    LOG = "log"


@attrs.frozen
class BandSpec:
    """What a client asked for: ``octave:3`` is ``BandSpec(BandKind.OCTAVE, 3)``."""

    kind: BandKind
    count: int

    def __attrs_post_init__(self) -> None:
        if self.kind is BandKind.OCTAVE:
            if self.count not in OCTAVE_FRACTIONS:
                choices = ", ".join(map(str, OCTAVE_FRACTIONS))
                raise ValueError(f"octave:N takes N in {choices}, got {self.count}")
        elif not 1 <= self.count <= MAX_BANDS:
            raise ValueError(f"{self.kind.value}:N takes N from 1 to {MAX_BANDS}, got {self.count}")

    @classmethod
    def parse(cls, text: str) -> BandSpec:
        """``octave:N``, ``mel:N`` or ``log:N``; ValueError with one line otherwise."""
        kind_text, _, count_text = text.partition(":")
        try:
            kind = BandKind(kind_text)
        except ValueError:
            raise ValueError(f"expected octave:N, mel:N or log:N, got {text!r}") from None
        if not (count_text.isascii() and count_text.isdigit()) or len(count_text) > 5:
            raise ValueError(f"expected {kind.value}:N with N a whole number, got {text!r}")
        return cls(kind, int(count_text))

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.count}"


@attrs.frozen(eq=False)
class BandLayout:
    """The bands of one :class:`BandSpec` at one resolution: edges in Hz and bin weights.

    Built once per (spec, sample rate, FFT size) by :func:`band_layout` and shared. Bands tile
    ``[lowers[0], uppers[-1]]`` without gaps or overlaps (each band's upper edge is the next
    one's lower edge); the last band is cut at Nyquist.
    """

    spec: BandSpec
    sample_rate: int
    fft_size: int
    centres: tuple[float, ...]
    lowers: tuple[float, ...]
    uppers: tuple[float, ...]
    # One entry per (band, bin) pair with a non-zero overlap, band by band: the bin, and its
    # overlap times c_k. ``starts[b]`` is band b's first entry.
    bins: NDArray[np.intp] = attrs.field(repr=False)
    weights: NDArray[np.float32] = attrs.field(repr=False)
    starts: NDArray[np.intp] = attrs.field(repr=False)

    @property
    def count(self) -> int:
        return len(self.centres)

    @property
    def resolution(self) -> float:
        """Bin spacing in Hz: no band is resolved more finely than this."""
        return self.sample_rate / self.fft_size

    def powers(self, magnitudes: NDArray[np.float32]) -> NDArray[np.float32]:
        """``Σ overlap · c_k · m_k²`` per band, for any ``(..., bins)`` stack of magnitudes:
        the band powers before the window correction."""
        if magnitudes.shape[-1] != self.fft_size // 2 + 1:
            raise ValueError(
                f"expected {self.fft_size // 2 + 1} bins for an FFT of {self.fft_size}, "
                f"got {magnitudes.shape[-1]}"
            )
        picked = magnitudes[..., self.bins]
        picked *= picked
        picked *= self.weights
        powers: NDArray[np.float32] = np.add.reduceat(picked, self.starts, axis=-1)
        return powers

    def amplitudes(
        self, magnitudes: NDArray[np.float32], window_power: float
    ) -> NDArray[np.float32]:
        """Band power as amplitude (see the module docstring); ``window_power`` is
        ``mean(w²)`` of the analysis window (1.0 for no window)."""
        powers = self.powers(magnitudes)
        powers *= np.float32(1.0 / window_power)
        return np.sqrt(powers, out=powers)


def octave_edges(fraction: int, nyquist: float) -> NDArray[np.float64]:
    """``(centres, lowers, uppers)`` rows of the IEC 61260-1 base-ten 1/``fraction``-octave
    bands with a mid-band frequency from :data:`MIN_OCTAVE_CENTRE_HZ` to below Nyquist."""
    g = OCTAVE_RATIO
    # Mid-band: f_r · G^(x/b) for odd b, f_r · G^((2x+1)/(2b)) for even b (IEC 61260-1, 5.2).
    offset = 0.0 if fraction % 2 else 0.5
    first = math.ceil(math.log(MIN_OCTAVE_CENTRE_HZ / REFERENCE_HZ, g) * fraction - offset)
    last = math.ceil(math.log(nyquist / REFERENCE_HZ, g) * fraction - offset) - 1
    x = np.arange(first, last + 1, dtype=np.float64)
    centres = REFERENCE_HZ * g ** ((x + offset) / fraction)
    half = g ** (1.0 / (2 * fraction))
    return np.stack((centres, centres / half, np.minimum(centres * half, nyquist)))


def _mel(hz: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """HTK mel scale."""
    return np.asarray(2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0))


def _hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(700.0 * (10.0 ** (mel / 2595.0) - 1.0))


def spaced_edges(kind: BandKind, count: int, nyquist: float) -> NDArray[np.float64]:
    """``(centres, lowers, uppers)`` of ``count`` bands from :data:`LOW_HZ` to Nyquist,
    equally spaced in mel (HTK) or in log frequency; centres are the midpoints on that scale."""
    if kind is BandKind.MEL:
        points = _hz(np.linspace(_mel(LOW_HZ), _mel(nyquist), 2 * count + 1))
    else:
        points = LOW_HZ * (nyquist / LOW_HZ) ** (np.arange(2 * count + 1) / (2 * count))
    points[-1] = nyquist
    return np.stack((points[1::2], points[0:-1:2], points[2::2]))


def _overlaps(
    lowers: NDArray[np.float64], uppers: NDArray[np.float64], resolution: float, last_bin: int
) -> tuple[NDArray[np.intp], NDArray[np.float32], NDArray[np.intp]]:
    """The sparse (band, bin) overlap table, band by band: bins, weights and band starts."""
    bins: list[NDArray[np.intp]] = []
    weights: list[NDArray[np.float64]] = []
    starts = np.zeros(len(lowers), dtype=np.intp)
    total = 0
    for band, (low, high) in enumerate(zip(lowers / resolution, uppers / resolution, strict=True)):
        first = max(0, math.floor(low + 0.5))
        last = min(last_bin, math.ceil(high + 0.5) - 1)
        k = np.arange(first, max(first, last) + 1)
        # Bin k spans [k - ½, k + ½] bins, cut to [0, last_bin]: DC and Nyquist span half a
        # bin, and their c_k = 2 (they are not doubled in m), so a covered one weighs 4 per bin.
        span_low = np.maximum(k - 0.5, 0.0)
        span_high = np.minimum(k + 0.5, last_bin)
        overlap = np.minimum(span_high, high) - np.maximum(span_low, low)
        overlap = np.clip(overlap, 0.0, 1.0)
        overlap[(k == 0) | (k == last_bin)] *= 4.0
        starts[band] = total
        total += len(k)
        bins.append(k.astype(np.intp))
        weights.append(overlap)
    return (
        np.concatenate(bins),
        np.concatenate(weights).astype(np.float32),
        starts,
    )


@lru_cache(maxsize=64)
def band_layout(spec: BandSpec, sample_rate: int, fft_size: int) -> BandLayout:
    """The layout of ``spec`` at this sample rate and FFT size, computed once and cached."""
    if sample_rate < 1 or fft_size < 2 or fft_size % 2:
        raise ValueError(f"no spectrum of {fft_size} points at {sample_rate} Hz")
    nyquist = sample_rate / 2.0
    if spec.kind is BandKind.OCTAVE:
        table = octave_edges(spec.count, nyquist)
    else:
        if not nyquist > LOW_HZ:
            raise ValueError(f"sample rate {sample_rate} Hz has no band above {LOW_HZ:g} Hz")
        table = spaced_edges(spec.kind, spec.count, nyquist)
    if table.shape[1] == 0:
        raise ValueError(f"sample rate {sample_rate} Hz has no {spec} band")
    centres, lowers, uppers = table
    bins, weights, starts = _overlaps(lowers, uppers, sample_rate / fft_size, fft_size // 2)
    for array in (bins, weights, starts):
        array.flags.writeable = False
    return BandLayout(
        spec=spec,
        sample_rate=sample_rate,
        fft_size=fft_size,
        centres=tuple(centres.tolist()),
        lowers=tuple(lowers.tolist()),
        uppers=tuple(uppers.tolist()),
        bins=bins,
        weights=weights,
        starts=starts,
    )
