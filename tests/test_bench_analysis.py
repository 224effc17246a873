"""The bench's analysis cost functions: they run, and measure what they say."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from phase4_trio.bench.analysis import (
    BREAKDOWN_CLIENTS,
    STAGES,
    analysis_breakdown,
    analysis_cost,
    beat_signal,
    busy_signal,
    per_block_cost,
    view_queries,
)


def test_analysis_cost_reports_every_figure() -> None:
    result = analysis_cost(client_counts=(3, 10), seconds=0.2, repeats=1)
    assert result["fft_size"] == 4096
    for key in ("analyzer", "fine_spectrum", "views"):
        assert result[key] > 0, key
    assert set(result["clients"]) == {"3", "10"}
    assert all(value > 0 for value in result["clients"].values())


def test_the_views_are_three_layouts_under_two_dynamics() -> None:
    queries = view_queries()
    assert len(queries) == 6 and len(set(queries)) == 6
    assert {query.split("&")[0] for query in queries} == {
        "bands=octave:3",
        "bands=mel:40",
        "bands=log:32",
    }


def test_more_work_costs_more() -> None:
    """Six views cost more than none: the figures measure the work, not a constant."""
    bare = min(per_block_cost((), seconds=0.3, repeats=3) for _ in range(2))
    loaded = min(per_block_cost(view_queries(), seconds=0.3, repeats=3) for _ in range(2))
    assert loaded > bare


def test_the_busy_signal_has_bursts() -> None:
    signal = busy_signal(128, 256)
    assert signal.shape == (128, 256, 1)
    levels = abs(signal).reshape(-1, 4096).max(axis=1)
    assert levels.max() > 4 * levels.min()


# ------------------------------------------------------------------ the per-stage breakdown


@pytest.fixture(scope="module")
def breakdown() -> dict[str, Any]:
    """One short breakdown: one cycle of tempo updates (172 blocks), one run."""
    return analysis_breakdown(seconds=0.5, repeats=1)


def test_the_breakdown_has_every_stage_and_is_json(breakdown: dict[str, Any]) -> None:
    assert orjson.loads(orjson.dumps(breakdown)) == breakdown
    assert breakdown["fft_size"] == 4096
    assert breakdown["block_period_us"] == pytest.approx(1e6 * 256 / 44100, abs=0.01)
    assert breakdown["blocks"] == 172  # whole cycles of updates: 4 × 43 blocks
    assert (breakdown["views"], breakdown["clients"]) == (6, BREAKDOWN_CLIENTS)
    for part in ("us", "percent_of_block", "percent_of_analysis"):
        assert list(breakdown[part]) == list(STAGES), part
        assert all(value > 0 for value in breakdown[part].values()), part


def test_the_breakdown_adds_up(breakdown: dict[str, Any]) -> None:
    us, period = breakdown["us"], breakdown["block_period_us"]
    assert breakdown["total_us"] == pytest.approx(sum(us.values()), abs=0.05)
    assert sum(breakdown["percent_of_analysis"].values()) == pytest.approx(100, abs=0.01)
    for stage in STAGES:
        assert breakdown["percent_of_block"][stage] == pytest.approx(
            100 * us[stage] / period, abs=1e-3
        )
    assert breakdown["total_percent_of_block"] == pytest.approx(
        sum(breakdown["percent_of_block"].values()), abs=1e-3
    )
    assert breakdown["frame_us_per_client"] == pytest.approx(
        us["frames"] / BREAKDOWN_CLIENTS, abs=0.01
    )
    tempo = breakdown["tempo_beat"]
    assert tempo["us"] == us["tempo_beat"]
    assert tempo["percent_of_block"] == breakdown["percent_of_block"]["tempo_beat"]
    assert tempo["percent_of_analysis"] == breakdown["percent_of_analysis"]["tempo_beat"]
    analyzer = us["fft_flux"] + us["tempo_beat"] + us["analyzer_rest"]
    assert tempo["percent_of_analyzer"] == pytest.approx(100 * tempo["us"] / analyzer, abs=0.01)
    assert tempo["versus_fft_flux"] == pytest.approx(tempo["us"] / us["fft_flux"], abs=0.01)


def test_the_tracker_runs_its_estimate_on_the_beat(breakdown: dict[str, Any]) -> None:
    """The estimate ran as on music: it found the loop's tempo, once per 43 blocks, and the
    blocks that ran it cost more than the mean of all (the per-block copies alone are cheap)."""
    tempo = breakdown["tempo_beat"]
    assert tempo["tracked_bpm"] == pytest.approx(120, abs=1)
    assert tempo["tracked_confidence"] > 0.5
    assert tempo["updates"] == breakdown["blocks"] // 43 == 4
    assert tempo["update_us"] > tempo["us"]


def test_the_beat_signal_hits_on_every_beat() -> None:
    signal = beat_signal(860, 256, 44100, bpm=120).reshape(-1)  # 5 s: 10 beats
    assert signal.dtype == np.float32 and signal.shape == (860 * 256,)
    beat, hit = 22050, 441  # 0.5 s; the first 10 ms after each, and 10 ms from 0.2 s on
    hits = [float(abs(signal[k * beat : k * beat + hit]).max()) for k in range(10)]
    between = [float(abs(signal[k * beat + 8820 : k * beat + 8820 + hit]).max()) for k in range(10)]
    assert min(hits) > 0.2
    assert max(between) < min(hits)
