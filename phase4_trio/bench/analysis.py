"""What the analysis a visualizer asks for costs per block: pure, no engine, no sockets.

Blocks of a synthetic signal go through the :class:`~..dsp.Analyzer` (one block per batch, as
at real time), the :class:`~..dsp.views.Views` with three band layouts under two sets of
dynamics options, and :func:`~..transport.client_frames.frame_for` for each client, exactly
as the processor, the router and the client tasks do, minus the sockets. CPU time per block
is the best of a few repeats (``time.process_time``), so the figures are the engine's
arithmetic alone; ratios between them hold better than absolute values on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..dsp import Analyzer
from ..dsp.views import Views, analysed_spectrum
from ..transport.client_frames import frame_for
from ..transport.options import ClientOptions, parse_options

LAYOUTS = ("octave:3", "mel:40", "log:32")
DYNAMICS = ("scale=unit&smooth=20:300&gain=auto", "scale=db&gate=-70")


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
