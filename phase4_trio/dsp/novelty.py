"""Novelty: how much new sound each frame brings, the signal tempo and beats are read from.

The flux of the bins that can carry an onset, divided by the stream's running level (the
frames' summed magnitudes, averaged over about :data:`LEVEL_SECONDS`): so the signal reads the
same loud or quiet, yet a loud drum hit still counts for more than a soft hi-hat. Dividing each
frame by its *own* level instead makes every hit into a quiet moment worth about 1, whatever its
loudness, and a 256-point frame (5.8 ms) is quiet between most hits: the hi-hats then weigh as
much as the kick and the snare, and the beat grid locks on the off-beats as often as not.

The lowest bins are skipped (fewer than about two cycles of a tone per FFT window), where a
steady tone's magnitude wobbles from frame to frame and would read as a rhythm, and so are
bins more than 50 dB under the frame's loudest, where a loud tone's sidelobes wobble the same
way. With a block-sized FFT (256 points at 44.1 kHz) that leaves out everything below ~690 Hz:
a kick drum counts through the click of its attack only. A longer sliding FFT (4096 points)
sees its body too.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

# Bins below this carry too few cycles of a tone per FFT window for a steady magnitude.
FIRST_BIN = 4
# Bins more than 50 dB under the frame's loudest count for nothing, where a loud tone's
# sidelobes wobble (notably through Hamming's raised edges).
BIN_FLOOR = 10 ** (-50 / 20)
# Time constant of the running level the flux is divided by.
LEVEL_SECONDS = 1.0
# The running level counts once the frames behind it weigh this much of a full average (0.2:
# after the first 0.22 s of a stream); novelty is 0 until then.
SETTLED_WEIGHT = 0.2
# A frame's own level, times this, bounds the running level from below: a hit after silence
# counts as a strong onset (about 10 at most), not as a thousand.
OWN_LEVEL_SHARE = 0.1
# Frames whose magnitudes sum to less than this (a sine at about -70 dBFS through Hann) are
# silence: a reverb tail fading into it brings no novelty, however its ripple grows relative to
# it.
SILENCE_LEVEL = 10 ** (-70 / 20)
_EPSILON = 1e-12


class Novelty:
    """Novelty of successive ``(frames, bins)`` flux and magnitude batches of one stream.

    Works with any FFT length (a block-sized one or a longer sliding one, hop = one block);
    the frame rate is ``sample_rate / block_size`` either way.
    """

    def __init__(self, sample_rate: float, block_size: int) -> None:
        self._decay = math.exp(-block_size / (LEVEL_SECONDS * sample_rate))
        self._kernels: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        self._level = 0.0
        self._weight = 0.0

    def reset(self) -> None:
        self._level = 0.0
        self._weight = 0.0

    def __call__(
        self, flux: NDArray[np.float32], magnitudes: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        loudest = magnitudes.max(axis=1, keepdims=True)
        audible = magnitudes[:, FIRST_BIN:] >= BIN_FLOOR * loudest
        rising = (flux[:, FIRST_BIN:] * audible).sum(axis=1, dtype=np.float64)
        level = magnitudes.sum(axis=1, dtype=np.float64)
        running, settled = self._running_level(level)
        running = np.maximum(running, OWN_LEVEL_SHARE * level)
        novelty: NDArray[np.float64] = rising / (running + _EPSILON)
        novelty[~settled | (level < SILENCE_LEVEL)] = 0.0
        return novelty

    def _running_level(
        self, level: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Exponential moving average of the frame levels, carried from batch to batch, and
        whether it has settled at each frame.

        The average is divided by the total weight of the frames seen so far (a bias-corrected
        average: at first, the mean of the frames so far, the current one included); it has
        settled once that weight reaches :data:`SETTLED_WEIGHT`. Before that, the first frames
        of a stream (with a sliding FFT, a window still filling) would be measured against
        almost nothing.
        """
        count = len(level)
        if count not in self._kernels:
            powers = self._decay ** np.arange(count + 1, dtype=np.float64)
            kernel: NDArray[np.float64] = (1.0 - self._decay) * powers[:count]
            self._kernels[count] = (kernel, powers[1:])
        kernel, carry = self._kernels[count]
        running: NDArray[np.float64] = np.convolve(level, kernel)[:count] + carry * self._level
        weight = 1.0 - carry * (1.0 - self._weight)
        self._level = float(running[-1])
        self._weight = float(weight[-1])
        running /= weight
        return running, weight >= SETTLED_WEIGHT
