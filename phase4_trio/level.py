"""Signal level in dBFS, and what counts as no signal at all. Pure.

"No signal" is a peak below :data:`NO_SIGNAL_DBFS` (-90 dBFS, under the last bit of 16-bit
audio): what a muted input, an unplugged line or the virtual device with nothing playing
deliver. A microphone in a quiet room sits well above it (its own noise, -70 dBFS or so), so
a quiet input is a signal and an idle one is not.
"""

from __future__ import annotations

import math

import numpy as np

from .samples import FloatArray

NO_SIGNAL_DBFS = -90.0


def dbfs(value: float) -> float:
    """20·log10 of a linear level relative to full scale; -inf for silence."""
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def peak_dbfs(samples: FloatArray) -> float:
    """The largest absolute sample, in dBFS (-inf for none or all zero)."""
    return dbfs(float(np.max(np.abs(samples)))) if samples.size else -math.inf


def no_signal(samples: FloatArray) -> bool:
    return peak_dbfs(samples) < NO_SIGNAL_DBFS
