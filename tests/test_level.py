"""The no-signal threshold /healthz reports, on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest

from phase4_trio.dsp.level import NO_SIGNAL_DBFS, no_signal


@pytest.mark.parametrize(
    ("peak", "silent"),
    [(0.0, True), (1e-5, True), (10 ** (NO_SIGNAL_DBFS / 20) * 1.01, False), (1e-3, False)],
)
def test_no_signal_is_a_peak_below_minus_90_dbfs(peak: float, silent: bool) -> None:
    ring = np.zeros((3, 256, 2), dtype=np.float32)  # the bridge's ring: slots, frames, channels
    ring[1, 17, 1] = -peak
    assert no_signal(ring) is silent


def test_nothing_at_all_is_no_signal() -> None:
    assert no_signal(np.zeros((0, 1), dtype=np.float32))
