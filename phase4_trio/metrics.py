"""Prometheus text exposition, built from the stages' own counters at scrape time.

Stages keep plain integer counters (cheap on the hot path); only the two latency histograms
are fed as events happen. Rendering is pure: a list of samples in, text out.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import resource
import time
from collections.abc import Iterable, Sequence

import attrs

Labels = tuple[tuple[str, str], ...]

CALLBACK_BUCKETS = (5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 5e-3)
LATENCY_BUCKETS = (0.5e-3, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 250e-3, 1.0)


class Histogram:
    """Cumulative-bucket histogram, as Prometheus defines it."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


@attrs.frozen
class Metric:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: tuple[tuple[Labels, float], ...] = ()
    histogram: Histogram | None = None


def counter(name: str, help: str, value: float, labels: Labels = ()) -> Metric:
    return Metric(name, "counter", help, ((labels, value),))


def gauge(name: str, help: str, value: float, labels: Labels = ()) -> Metric:
    return Metric(name, "gauge", help, ((labels, value),))


def labelled(name: str, kind: str, help: str, samples: Iterable[tuple[Labels, float]]) -> Metric:
    return Metric(name, kind, help, tuple(samples))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def merge(metrics: Iterable[Metric]) -> list[Metric]:
    """One family per name, in first-seen order: stages that count into the same family
    (drops, by stage) each contribute their samples."""
    merged: dict[str, Metric] = {}
    for metric in metrics:
        known = merged.get(metric.name)
        if known is None:
            merged[metric.name] = metric
        elif (
            known.histogram is not None or metric.histogram is not None or known.kind != metric.kind
        ):
            raise ValueError(f"metric {metric.name} defined twice with different shapes")
        else:
            merged[metric.name] = attrs.evolve(known, samples=known.samples + metric.samples)
    return list(merged.values())


def render(metrics: Iterable[Metric]) -> str:
    lines: list[str] = []
    for metric in merge(metrics):
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        if metric.histogram is not None:
            histogram = metric.histogram
            running = 0
            for bound, count in zip(histogram.buckets, histogram.counts, strict=False):
                running += count
                lines.append(f'{metric.name}_bucket{{le="{bound!r}"}} {running}')
            lines.append(f'{metric.name}_bucket{{le="+Inf"}} {histogram.count}')
            lines.append(f"{metric.name}_sum {histogram.total!r}")
            lines.append(f"{metric.name}_count {histogram.count}")
            continue
        for labels, value in metric.samples:
            lines.append(f"{metric.name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def histogram(name: str, help: str, data: Histogram) -> Metric:
    return Metric(name, "histogram", help, histogram=data)


def process_metrics() -> list[Metric]:
    """RSS and CPU seconds of this process, from /proc and getrusage."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    metrics = [
        counter(
            "process_cpu_seconds_total",
            "User and system CPU time.",
            usage.ru_utime + usage.ru_stime,
        ),
        gauge("process_start_time_seconds", "Unix time the process started.", _START),
    ]
    rss = resident_bytes()
    if rss is not None:
        metrics.append(gauge("process_resident_memory_bytes", "Resident set size.", rss))
    with contextlib.suppress(OSError):
        metrics.append(
            gauge("process_open_fds", "Open file descriptors.", len(os.listdir("/proc/self/fd")))
        )
    return metrics


def resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


_START = time.time()
