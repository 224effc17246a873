"""Onset strength: how much new sound each frame brings, from its flux and magnitudes.

Two parts. The main one is the flux of the bins that can carry an onset, relative to the
frame's total magnitude, so a hit is as clear quiet as loud and a steady sound stays near zero
however loud it is. It skips the lowest bins (fewer than about two cycles of a tone per FFT
window), where a steady tone's magnitude wobbles from frame to frame and would read as a
rhythm. With a block-sized FFT (256 points at 44.1 kHz) those bins reach up to ~700 Hz, which
hides the kick drum, the beat of most popular music; so when they lie above the kick's range a
second part follows their energy through an envelope that holds its maximum over ~23 ms (long
enough to span a low tone's wobble) and counts only rises of more than a quarter of it: the
attack of a kick, not the ripple of a bass note.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .flux import LOW_BAND_HZ

# Bins below this carry too few cycles of a tone per FFT window for a steady magnitude.
FIRST_ONSET_BIN = 4
# Bins more than 50 dB under the frame's loudest count for nothing, where a loud tone's
# sidelobes wobble (notably through Hamming's raised edges).
ONSET_BIN_FLOOR = 10 ** (-50 / 20)
# The low-band envelope holds its maximum this long; a kick's attack still rises within it.
LOW_ENVELOPE_SECONDS = 0.023
# Relative rise of the low-band envelope below which it is ripple, not an attack.
LOW_DEAD_ZONE = 0.25
# Weight of the low-band part against the main one (whose values are mostly below 1).
LOW_WEIGHT = 1.0
# Frames whose magnitudes sum to less than this (a sine at about -70 dBFS through Hann) are
# silence: a reverb tail fading into it brings no onsets, however its ripple grows relative to it.
SILENCE_LEVEL = 10 ** (-70 / 20)
# The low band's floor, relative to the frame's total energy: silence below it rises nowhere.
_LOW_FLOOR = 1e-6
_EPSILON = 1e-12


class OnsetDetector:
    """Onset strength of successive ``(frames, bins)`` flux and magnitude batches of one stream.

    The window length is read from the number of bins (``2 · (bins - 1)`` points), so the
    same detector serves a block-sized FFT and a longer sliding one.
    """

    def __init__(self, sample_rate: float, block_size: int) -> None:
        self.sample_rate = sample_rate
        self.hold = max(1, math.ceil(LOW_ENVELOPE_SECONDS * sample_rate / block_size))
        self._energies = np.zeros(self.hold - 1)
        self._envelope = 0.0

    def reset(self) -> None:
        self._energies[:] = 0.0
        self._envelope = 0.0

    def __call__(
        self, flux: NDArray[np.float32], magnitudes: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        loudest = magnitudes.max(axis=1, keepdims=True)
        audible = magnitudes[:, FIRST_ONSET_BIN:] >= ONSET_BIN_FLOOR * loudest
        rising = (flux[:, FIRST_ONSET_BIN:] * audible).sum(axis=1, dtype=np.float64)
        level = magnitudes.sum(axis=1, dtype=np.float64)
        strength: NDArray[np.float64] = rising / (level + _EPSILON)
        window = 2 * (magnitudes.shape[1] - 1)
        low_bins = max(FIRST_ONSET_BIN, math.ceil(LOW_BAND_HZ * window / self.sample_rate))
        strength += LOW_WEIGHT * self._low_attacks(magnitudes, low_bins)
        strength[level < SILENCE_LEVEL] = 0.0
        return strength

    def _low_attacks(self, magnitudes: NDArray[np.float32], bins: int) -> NDArray[np.float64]:
        """Relative rises, beyond the dead zone, of the held low-band energy."""
        squares = np.square(magnitudes, dtype=np.float64)
        energy = squares[:, :bins].sum(axis=1)
        floor = _LOW_FLOOR * squares.sum(axis=1) + _EPSILON
        joined = np.concatenate((self._energies, energy))
        held = np.lib.stride_tricks.sliding_window_view(joined, self.hold).max(axis=1)
        before = np.concatenate(([self._envelope], held[:-1]))
        self._energies = joined[len(joined) - (self.hold - 1) :]
        self._envelope = float(held[-1])
        rise = np.maximum(held - before, 0.0) / (held + floor)
        attacks: NDArray[np.float64] = np.maximum(rise - LOW_DEAD_ZONE, 0.0)
        return attacks
