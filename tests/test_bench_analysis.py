"""The bench's analysis cost function: it runs, and measures what it says."""

from __future__ import annotations

from phase4_trio.bench.analysis import analysis_cost, busy_signal, per_block_cost, view_queries


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
