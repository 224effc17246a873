"""Signal levels and the no-signal threshold, on plain arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phase4_trio.level import NO_SIGNAL_DBFS, dbfs, no_signal, peak_dbfs


def test_dbfs_of_full_scale_half_and_zero() -> None:
    assert dbfs(1.0) == 0.0
    assert dbfs(0.5) == pytest.approx(-6.0206, abs=1e-4)
    assert dbfs(0.0) == -math.inf


@pytest.mark.parametrize(
    ("peak", "silent"),
    [(0.0, True), (1e-5, True), (10 ** (NO_SIGNAL_DBFS / 20) * 1.01, False), (1e-3, False)],
)
def test_no_signal_is_a_peak_below_minus_90_dbfs(peak: float, silent: bool) -> None:
    block = np.zeros((3, 256, 2), dtype=np.float32)
    block[1, 17, 1] = -peak
    assert no_signal(block) is silent
    assert peak_dbfs(block) == pytest.approx(dbfs(float(np.float32(peak))))


def test_nothing_at_all_is_no_signal() -> None:
    assert no_signal(np.zeros((0, 1), dtype=np.float32))
