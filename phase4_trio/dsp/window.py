"""Analysis windows, with the same definitions as the Go original.

The original takes its windows from gonum's ``dsp/window`` (v0.16), which uses the *symmetric*
form: sample k of N sits at ``u = k / (N - 1)``, so the first and last samples mirror each
other and an odd-sized window has its peak exactly on the centre sample. Keeping the same
formulas keeps the magnitudes clients see equal to the original's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

WINDOW_NAMES: tuple[str, ...] = (
    "bartletthann",
    "blackman",
    "blackmannuttall",
    "hann",
    "hamming",
    "lanczos",
    "nuttall",
)

# Generalised cosine windows: w(u) = a0 - a1 cos(2πu) + a2 cos(4πu) - a3 cos(6πu).
_COSINE_TERMS: dict[str, tuple[float, ...]] = {
    "blackman": (0.42, 0.5, 0.08),
    "blackmannuttall": (0.3635819, 0.4891775, 0.1365995, 0.0106411),
    "hann": (0.5, 0.5),
    "hamming": (0.54, 0.46),
    "nuttall": (0.355768, 0.487396, 0.144232, 0.012604),
}


def make_window(name: str, size: int) -> NDArray[np.float64]:
    """Build window ``name`` (any case) of ``size`` samples.

    Raises ValueError naming the choices, so a bad config value tells the user what to type.
    """
    key = name.lower()
    if key not in WINDOW_NAMES:
        raise ValueError(f"unknown window {name!r}; choose one of: {', '.join(WINDOW_NAMES)}")
    if size < 1:
        raise ValueError(f"window size must be at least 1, got {size}")
    if size == 1:
        # The symmetric form divides by N - 1; a one-sample window can only be a pass-through.
        return np.ones(1)
    u = np.arange(size, dtype=np.float64) / (size - 1)
    if key == "bartletthann":
        return 0.62 - 0.48 * np.abs(u - 0.5) - 0.38 * np.cos(2.0 * np.pi * u)
    if key == "lanczos":
        return np.sinc(2.0 * u - 1.0)
    window = np.zeros(size)
    for order, coefficient in enumerate(_COSINE_TERMS[key]):
        window += (-1.0) ** order * coefficient * np.cos(2.0 * np.pi * order * u)
    return window
