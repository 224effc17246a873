"""What the analysis a visualizer asks for costs per block: pure, no engine, no sockets.

Blocks of a synthetic signal go through the :class:`~..dsp.Analyzer` (one block per batch, as
at real time), the :class:`~..dsp.views.Views` with three band layouts under two sets of
dynamics options, and :func:`~..transport.client_frames.frame_for` for each client, exactly
as the processor, the router and the client tasks do, minus the sockets. CPU time per block
is the best of a few repeats (``time.process_time``), so the figures are the engine's
arithmetic alone; ratios between them hold better than absolute values on a busy machine.

:func:`analysis_breakdown` splits one block's cost into its stages (the block FFT and flux, the
tempo and beat tracker, the rest of the analyzer, the fine spectrum, the views, the clients'
frames) on a drum-like signal with a steady beat (:func:`beat_signal`), for ``phase4 bench``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import AUTO_FFT_SIZE
from ..dsp import Analyzer, MagnitudeSpectrum, Resolution, SpectralFlux, TempoTracker, make_window
from ..dsp.tempo import HISTORY_SECONDS, STEADY_REUSE, UPDATE_SECONDS
from ..dsp.views import Views, analysed_spectrum
from ..transport.client_frames import frame_for
from ..transport.options import ClientOptions, parse_options

LAYOUTS = ("octave:3", "mel:40", "log:32")
DYNAMICS = ("scale=unit&smooth=20:300&gain=auto", "scale=db&gate=-70")
#: The stages of :func:`analysis_breakdown`, in the order a block goes through them.
STAGES = ("fft_flux", "tempo_beat", "analyzer_rest", "fine_spectrum", "views", "frames")
#: Clients whose frames :func:`analysis_breakdown` builds: one per band layout.
BREAKDOWN_CLIENTS = 3


def busy_signal(blocks: int, block_size: int, seed: int = 0) -> NDArray[np.float32]:
    """Noise bursts of random level every ~0.1 s over a quiet tone: it keeps the onsets,
    the gain and the smoothing busy. ``(blocks, block_size, 1)``."""
    rng = np.random.default_rng(seed)
    frames = blocks * block_size
    envelope = np.repeat(rng.uniform(0.0, 0.5, frames // 4096 + 1), 4096)[:frames]
    tone = 0.05 * np.sin(2 * np.pi * 0.01 * np.arange(frames))
    samples = rng.standard_normal(frames) * envelope + tone
    signal: NDArray[np.float32] = samples.astype(np.float32).reshape(blocks, block_size, 1)
    return signal


def beat_signal(
    blocks: int, block_size: int, sample_rate: int = 44100, bpm: float = 120.0, seed: int = 0
) -> NDArray[np.float32]:
    """A drum-like loop at ``bpm``: a kick (a sine sweeping 150 → 50 Hz) on every beat and a
    hi-hat (high-passed noise) on every off-beat, each at a random level, over noise at about
    -50 dBFS, so the tempo tracker finds its beat and runs its whole estimate as on music.
    ``(blocks, block_size, 1)``."""
    rng = np.random.default_rng(seed)
    frames = blocks * block_size
    track = rng.standard_normal(frames) * 0.003
    t = np.arange(round(0.3 * sample_rate)) / sample_rate
    sweep = 2 * np.pi * np.cumsum(50 + 100 * np.exp(-t / 0.03)) / sample_rate
    kick = np.sin(sweep) * np.exp(-t / 0.12)
    t = t[: round(0.06 * sample_rate)]
    hats = np.diff(rng.standard_normal((16, len(t) + 1))) * np.exp(-t / 0.015) * 0.5
    half_beat = 30.0 / bpm
    for index in range(math.ceil(frames / sample_rate / half_beat)):
        at = round(index * half_beat * sample_rate)
        sound = kick if index % 2 == 0 else hats[index % len(hats)]
        end = min(frames, at + len(sound))
        track[at:end] += rng.uniform(0.3, 0.8) * sound[: end - at]
    signal: NDArray[np.float32] = track.astype(np.float32).reshape(blocks, block_size, 1)
    return signal


def view_queries(layouts: Sequence[str] = LAYOUTS, dynamics: Sequence[str] = DYNAMICS) -> list[str]:
    """Every layout under every set of dynamics options."""
    return [f"bands={layout}&{options}" for layout in layouts for options in dynamics]


def per_block_cost(
    queries: Sequence[str],
    clients: Sequence[ClientOptions] = (),
    *,
    fft_size: int = 4096,
    block_size: int = 256,
    sample_rate: int = 44100,
    seconds: float = 2.0,
    repeats: int = 3,
) -> float:
    """CPU µs per block to analyse, process the views of ``queries`` and build one frame for
    each of ``clients``, one block per batch; the best of ``repeats`` runs, each with a fresh
    analyzer and views (made before its clock starts)."""
    blocks = max(1, round(seconds * sample_rate / block_size))
    signal = busy_signal(blocks, block_size)
    specs = [spec for spec in (parse_options(query).view for query in queries) if spec]
    best = float("inf")
    for _ in range(repeats):
        analyzer = Analyzer(block_size, sample_rate, "hann", fft_size)
        views = Views()
        for spec in specs:
            views.acquire(spec)
        start = time.process_time()
        for index in range(blocks):
            result = analyzer.process_batch(signal[index : index + 1])[0]
            spectrum = analysed_spectrum(index, 0.0, sample_rate, result)
            views.process((spectrum,))
            for options in clients:
                frame_for(spectrum, options, 0)
        best = min(best, time.process_time() - start)
    return best / blocks * 1e6


def analysis_cost(
    *,
    fft_size: int = 4096,
    client_counts: Sequence[int] = (3, 100),
    seconds: float = 2.0,
    repeats: int = 3,
) -> dict[str, Any]:
    """The bench's analysis figures, in µs of CPU per block at 44.1 kHz / 256:

    - ``analyzer``: the original's analysis alone (block spectrum, flux, tempo);
    - ``fine_spectrum``: plus the ``fft_size``-point sliding spectrum (one view of its bins);
    - ``views``: plus three band layouts under two sets of dynamics options (six views);
    - ``clients``: plus a JSON frame for each of N clients spread over the three layouts
      (one set of dynamics), for each N of ``client_counts``: encode-once makes N = 100
      cost about what N = 3 does.
    """
    queries = view_queries()
    measure = {"fft_size": fft_size, "seconds": seconds, "repeats": repeats}

    def cost(queries: Sequence[str], clients: Sequence[ClientOptions] = ()) -> float:
        return round(
            per_block_cost(queries, clients, fft_size=fft_size, seconds=seconds, repeats=repeats),
            1,
        )

    client_queries = view_queries(dynamics=DYNAMICS[:1])
    clients: dict[str, float] = {}
    for count in client_counts:
        options = [parse_options(client_queries[i % len(client_queries)]) for i in range(count)]
        clients[str(count)] = cost(queries, options)
    return measure | {
        "analyzer": cost(()),
        "fine_spectrum": cost(("resolution=fine",)),
        "views": cost(queries),
        "clients": clients,
    }


def analysis_breakdown(
    *,
    fft_size: int = AUTO_FFT_SIZE,
    block_size: int = 256,
    sample_rate: int = 44100,
    bpm: float = 120.0,
    seconds: float = 2.0,
    repeats: int = 3,
) -> dict[str, Any]:
    """What each stage of one block's analysis costs, in µs of CPU per block and as a share of
    the block period, on :func:`beat_signal` at ``bpm``, one block per batch as at real time:

    - ``fft_flux``: the block spectrum and its flux (what the analyzer does first);
    - ``tempo_beat``: :meth:`TempoTracker.push` with that block's flux and magnitudes (the
      per-block copies and beat clock, and every :data:`UPDATE_SECONDS` the estimate and phase
      search, averaged over whole cycles of :data:`STEADY_REUSE` updates);
    - ``analyzer_rest``: the rest of :meth:`Analyzer.process_batch` (levels, the sample
      history, the result objects): its whole time minus the two stages above, which run
      again, on their own, fed the same blocks (nothing is taken apart);
    - ``fine_spectrum``: the ``fft_size``-point spectrum (``detail.spectrum(FINE)``), which
      the band views ask for;
    - ``views``: the spectrum message and six views (three layouts under two dynamics);
    - ``frames``: a JSON frame for each of :data:`BREAKDOWN_CLIENTS` clients, one per layout.

    The tracker's history is filled first (:data:`HISTORY_SECONDS` of the signal, not timed), so
    the estimate works over all of it. Each stage is timed per block with
    ``time.process_time`` (one clock read, ~1 µs, falls to each); of ``repeats`` runs of
    ``seconds``, each on the next part of the signal, the one with the lowest total is kept,
    so the stages add up to ``total_us``. ``tempo_beat`` adds the mean of the blocks that ran
    an estimate and what the tracker read.
    """
    period_us = 1e6 * block_size / sample_rate
    frame_rate = sample_rate / block_size
    step = max(1, round(UPDATE_SECONDS * frame_rate))  # blocks per tempo update
    cycle = step * STEADY_REUSE
    blocks = cycle * max(1, round(seconds * frame_rate / cycle))
    preroll = cycle * math.ceil(HISTORY_SECONDS * frame_rate / cycle)
    signal = beat_signal(preroll + repeats * blocks, block_size, sample_rate, bpm)

    analyzer = Analyzer(block_size, sample_rate, "hann", fft_size)
    spectrum = MagnitudeSpectrum(make_window("hann", block_size))
    flux = SpectralFlux(block_size, sample_rate)
    tracker = TempoTracker(sample_rate, block_size)
    views = Views()
    queries = view_queries()
    for query in queries:
        spec = parse_options(query).view
        assert spec is not None
        views.acquire(spec)
    client_queries = view_queries(dynamics=DYNAMICS[:1])
    clients = [
        parse_options(client_queries[i % len(client_queries)]) for i in range(BREAKDOWN_CLIENTS)
    ]
    for index in range(preroll):
        block = signal[index : index + 1]
        magnitudes = spectrum.batch(block)
        tracker.push(flux.batch(magnitudes)[0], magnitudes[0])
        analyzer.process_batch(block)

    clock = time.process_time
    best: dict[str, float] | None = None
    best_updates: list[float] = []
    for repeat in range(repeats):
        spent = dict.fromkeys(STAGES, 0.0)
        analyzer_spent = 0.0
        updates: list[float] = []
        start = preroll + repeat * blocks
        for index in range(start, start + blocks):
            block = signal[index : index + 1]
            t0 = clock()
            magnitudes = spectrum.batch(block)
            flux_rows = flux.batch(magnitudes)
            t1 = clock()
            tracker.push(flux_rows[0], magnitudes[0])
            t2 = clock()
            result = analyzer.process_batch(block)[0]
            t3 = clock()
            result.detail.spectrum(Resolution.FINE)
            t4 = clock()
            message = analysed_spectrum(index, 0.0, sample_rate, result)
            views.process((message,))
            t5 = clock()
            for options in clients:
                frame_for(message, options, 0)
            t6 = clock()
            spent["fft_flux"] += t1 - t0
            spent["tempo_beat"] += t2 - t1
            analyzer_spent += t3 - t2
            spent["fine_spectrum"] += t4 - t3
            spent["views"] += t5 - t4
            spent["frames"] += t6 - t5
            if (index + 1) % step == 0:  # this push ran the estimate
                updates.append(t2 - t1)
        spent["analyzer_rest"] = max(0.0, analyzer_spent - spent["fft_flux"] - spent["tempo_beat"])
        if best is None or sum(spent.values()) < sum(best.values()):
            best, best_updates = spent, updates
    assert best is not None

    us = {stage: 1e6 * best[stage] / blocks for stage in STAGES}
    total = sum(us.values())
    update_us = 1e6 * sum(best_updates) / max(1, len(best_updates))
    analyzer_us = us["fft_flux"] + us["tempo_beat"] + us["analyzer_rest"]
    return {
        "fft_size": fft_size,
        "block_size": block_size,
        "sample_rate": sample_rate,
        "block_period_us": round(period_us, 2),
        "bpm": bpm,
        "blocks": blocks,
        "repeats": repeats,
        "views": len(queries),
        "clients": len(clients),
        "us": {stage: round(value, 2) for stage, value in us.items()},
        "percent_of_block": {stage: round(100 * us[stage] / period_us, 4) for stage in STAGES},
        "percent_of_analysis": {stage: round(100 * us[stage] / total, 3) for stage in STAGES},
        "total_us": round(total, 2),
        "total_percent_of_block": round(100 * total / period_us, 4),
        "frame_us_per_client": round(us["frames"] / max(1, len(clients)), 2),
        "tempo_beat": {
            "us": round(us["tempo_beat"], 2),
            "percent_of_block": round(100 * us["tempo_beat"] / period_us, 4),
            "percent_of_analysis": round(100 * us["tempo_beat"] / total, 3),
            "percent_of_analyzer": round(100 * us["tempo_beat"] / analyzer_us, 3),
            "versus_fft_flux": round(us["tempo_beat"] / us["fft_flux"], 3),
            "updates": len(best_updates),
            "update_us": round(update_us, 2),
            "update_percent_of_block": round(100 * update_us / period_us, 3),
            "tracked_bpm": round(tracker.bpm, 2),
            "tracked_confidence": round(tracker.confidence, 3),
        },
    }
