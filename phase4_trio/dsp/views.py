"""Views: what clients asked for (bands, channels, dynamics), computed once per spectrum.

A client that asks for ``?bands=octave:3&gain=auto&smooth=20:300`` wants values that depend on
every spectrum before this one (smoothing, gain, flux and onsets all have state). Clients may
drop frames when they read slowly, so that state cannot live in the clients: it lives here,
one :class:`ViewState` per distinct :class:`ViewSpec`, fed with **every** spectrum of the
stream once, in order, by :meth:`Views.process`. Each result is attached to its spectrum
(``spectrum.remember``) as a :class:`ViewFrame`, and every client with that spec only encodes
it (once per format, like every encoding). A hundred clients on three layouts cost what three
clients do.

Work shared between views is shared here too: views that differ only in their dynamics share
one :class:`_Stage` (band powers, flux, onsets, centroid, levels), and a stage asks the
spectrum's :class:`~.detail.SampleWindows` for the spectra it needs, which computes them once
per batch.

Clients :meth:`~Views.acquire` their spec before they subscribe to the stream and
:meth:`~Views.release` it when they leave, so a view exists exactly while someone wants it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import attrs
import numpy as np
from numpy.typing import NDArray

from ..pipeline.messages import Spectrum
from . import Analysis
from .band_onsets import BandOnsets, first_eligible_band
from .detail import DB_FLOOR, Detail, Resolution, SampleWindows
from .dynamics import Dynamics, DynamicsSpec
from .layouts import BandLayout, BandSpec, band_layout
from .level import dbfs

_VIEW_PREFIX = "view:"


@attrs.frozen(eq=False)
class AnalysedSpectrum(Spectrum):
    """A spectrum from this engine's analyzer: it can also give its block's samples-based
    detail (finer spectra, channels, levels). Relayed spectra are plain :class:`Spectrum`."""

    detail: Detail = attrs.field(kw_only=True)


def analysed_spectrum(
    frame_count: int, capture_time: float, sample_rate: int, analysis: Analysis
) -> AnalysedSpectrum:
    """The spectrum of one analysed block, as the processor routes it."""
    return AnalysedSpectrum(
        frame_count,
        capture_time,
        sample_rate,
        len(analysis.magnitudes) * 2 - 2,
        analysis.magnitudes,
        analysis.flux,
        analysis.bpm,
        analysis.bpm_confidence,
        analysis.rms,
        analysis.peak,
        analysis.zero_crossing_rate,
        analysis.beat_phase,
        analysis.beat,
        detail=analysis.detail,
    )


class ChannelMode(enum.Enum):
    MIX = "mix"  # the mean of the input channels, one row
    ALL = "all"  # every input channel, a row each
    LIST = "list"  # the listed input channels, in the order given


@attrs.frozen
class Channels:
    """Which rows a view has: ``channels=mix``, ``channels=all`` or ``channels=0,1``."""

    mode: ChannelMode = ChannelMode.MIX
    indices: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str, max_channels: int = 64) -> Channels:
        if text in ("mix", "all"):
            return cls(ChannelMode(text))
        parts = text.split(",")
        if not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
            raise ValueError(f"expected mix, all or channel numbers like 0,1; got {text!r}")
        indices = tuple(int(p) for p in parts)
        if len(set(indices)) != len(indices):
            raise ValueError(f"a channel is listed twice in {text!r}")
        if max(indices) >= max_channels:
            raise ValueError(
                f"channel {max(indices)} does not exist: the input has {max_channels} "
                f"(numbered from 0)"
            )
        return cls(ChannelMode.LIST, indices)

    @property
    def per_channel(self) -> bool:
        return self.mode is not ChannelMode.MIX

    def rows(self, channels: int) -> tuple[int, ...]:
        """The input channels of the rows (empty for the mix)."""
        if self.mode is ChannelMode.ALL:
            return tuple(range(channels))
        return self.indices

    def __str__(self) -> str:
        if self.mode is ChannelMode.LIST:
            return ",".join(map(str, self.indices))
        return str(self.mode.value)


@attrs.frozen
class ViewSpec:
    """Everything that shapes a view's values; hashable, one state per distinct spec.

    Without ``bands`` the values are the FFT bins of ``resolution``; with bands, they are band
    powers (as amplitudes) of the fine spectrum.
    """

    bands: BandSpec | None = None
    resolution: Resolution = Resolution.BLOCK
    channels: Channels = attrs.field(factory=Channels)
    dynamics: DynamicsSpec = attrs.field(factory=DynamicsSpec)

    #: A canonical query-like text, e.g. ``bands=octave:3&channels=mix&scale=unit``: the
    #: spectrum cache key of the view's frames.
    key: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.bands is not None and self.resolution is not Resolution.FINE:
            raise ValueError("bands are always computed from the fine spectrum")
        d = self.dynamics
        parts = [
            f"bands={self.bands}" if self.bands else f"resolution={self.resolution.value}",
            f"channels={self.channels}",
            f"scale={d.scale.value}",
        ]
        if d.smooth is not None:
            parts.append(f"smooth={d.smooth}")
        if d.auto_gain:
            parts.append("gain=auto")
        if d.gate_db is not None:
            parts.append(f"gate={d.gate_db:g}")
        object.__setattr__(self, "key", "&".join(parts))


@attrs.frozen(eq=False)
class ViewFrame:
    """One spectrum as one view sees it. Arrays have a row per channel row of the view (one
    for the mix): ``values`` and ``flux`` ``(rows, n)``, the rest ``(rows,)``."""

    spec: ViewSpec
    fft_size: int
    channels: tuple[int, ...]  # the input channel of each row; empty for the mix
    layout: BandLayout | None
    values: NDArray[np.float32]
    flux: NDArray[np.float32]
    onsets: NDArray[np.bool_] | None  # bands only
    centroid: NDArray[np.float32]  # Hz, magnitude-weighted, DC left out; 0 for silence
    rms: NDArray[np.float32]  # dBFS
    peak: NDArray[np.float32]  # dBFS
    silent: NDArray[np.bool_]
    gain_db: float

    @property
    def all_silent(self) -> bool:
        return bool(self.silent.all())


def view_frame(spectrum: Spectrum, spec: ViewSpec) -> ViewFrame | None:
    """The frame :meth:`Views.process` attached for ``spec``, or None (a spectrum without
    samples, such as a relayed one, or one processed before the view existed)."""
    frame: ViewFrame | None = spectrum.encoded(_VIEW_PREFIX + spec.key)
    return frame


def spectrum_levels(spectrum: Spectrum) -> tuple[float, float] | None:
    """RMS and peak in dBFS of the spectrum's block (of the channels' mean, the signal the
    spectrum is taken from), floored at -120; None for a spectrum this engine did not
    analyse (DSP disabled, or relayed from elsewhere), whose levels are unknown."""
    if not isinstance(spectrum, AnalysedSpectrum):
        return None
    return dbfs(spectrum.rms), dbfs(spectrum.peak)


def _mix_levels(spectra: Sequence[Spectrum]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``(blocks, 1)`` RMS and peak in dBFS of the spectra's blocks, as the analyzer measured
    them on the channels' mean."""
    rms = np.array([[dbfs(s.rms)] for s in spectra], dtype=np.float32)
    peak = np.array([[dbfs(s.peak)] for s in spectra], dtype=np.float32)
    return rms, peak


@attrs.frozen(eq=False)
class _StageBatch:
    """A stage's results for consecutive blocks of one batch: arrays with a leading axis of
    blocks, then ``(rows, values)`` or ``(rows,)``; ``onsets`` a list of arrays (or None)."""

    amplitudes: NDArray[np.float32]
    flux: NDArray[np.float32]
    onsets: list[NDArray[np.bool_]] | None
    centroid: NDArray[np.float32]
    rms: NDArray[np.float32]
    peak: NDArray[np.float32]


@attrs.frozen
class _StageKey:
    bands: BandSpec | None
    resolution: Resolution
    channels: Channels


class _Stage:
    """Band powers (or bins), flux, onsets, centroid and levels of one (bands, resolution,
    channels) combination: the part of a view that does not depend on its dynamics."""

    def __init__(self, key: _StageKey) -> None:
        self.key = key
        self._previous: NDArray[np.float32] | None = None
        self._onsets: BandOnsets | None = None
        self._epoch: int | None = None
        self._layout: BandLayout | None = None

    def layout(self, windows: SampleWindows, sample_rate: int) -> BandLayout | None:
        bands = self.key.bands
        if bands is None:
            return None
        size = windows.fft_size(self.key.resolution)
        layout = self._layout
        if layout is None or layout.fft_size != size or layout.sample_rate != sample_rate:
            layout = self._layout = band_layout(bands, sample_rate, size)
            self._onsets = None
        return layout

    def run(
        self,
        windows: SampleWindows,
        blocks: slice,
        mix_levels: tuple[NDArray[np.float32], NDArray[np.float32]],
        sample_rate: int,
    ) -> _StageBatch:
        """The stage's results for the blocks ``blocks`` of one batch, in order;
        ``mix_levels`` are the blocks' levels for a stage of the mix."""
        key = self.key
        resolution = key.resolution
        per_channel = key.channels.per_channel
        spectra = windows.spectra(resolution, per_channel)[blocks]
        centroid = windows.centroids(resolution, per_channel)[blocks]
        if per_channel:
            levels = windows.levels()
            rms, peak = levels.rms[blocks], levels.peak[blocks]
        else:
            rms, peak = mix_levels
        if per_channel:
            rows = list(key.channels.rows(windows.channels))
            if rows != list(range(windows.channels)):
                missing = max(rows) + 1 - windows.channels
                if missing > 0:  # a channel the input does not have reads as silence
                    spectra, centroid, rms, peak = _silent_rows(
                        missing, spectra, centroid, rms, peak
                    )
                spectra, centroid = spectra[:, rows], centroid[:, rows]
                rms, peak = rms[:, rows], peak[:, rows]
        else:
            spectra = spectra[:, np.newaxis]
        layout = self.layout(windows, sample_rate)
        if layout is None:
            amplitudes = spectra
        else:
            amplitudes = layout.amplitudes(spectra, windows.window_power(resolution))
        if windows.epoch != self._epoch:
            self._epoch = windows.epoch
            self._previous = None
            if self._onsets is not None:
                self._onsets.reset()
        if layout is not None and self._onsets is None:
            self._onsets = BandOnsets(
                windows.hop / sample_rate,
                windows.fft_size(resolution) / windows.hop,
                first_eligible_band(layout.lowers, layout.uppers, layout.resolution),
            )
        detector = self._onsets
        return _StageBatch(
            amplitudes=amplitudes,
            flux=self._flux(amplitudes),
            onsets=None if detector is None else [detector(row) for row in amplitudes],
            centroid=centroid,
            rms=rms,
            peak=peak,
        )

    def _flux(self, amplitudes: NDArray[np.float32]) -> NDArray[np.float32]:
        """Growth of each value since the frame before (zeros for the first frame)."""
        previous = self._previous
        if previous is None or previous.shape != amplitudes.shape[1:]:
            previous = amplitudes[0]
        flux = np.empty_like(amplitudes)
        np.subtract(amplitudes[0], previous, out=flux[0])
        if len(amplitudes) > 1:
            np.subtract(amplitudes[1:], amplitudes[:-1], out=flux[1:])
        np.maximum(flux, 0.0, out=flux)
        self._previous = amplitudes[-1]
        return flux


def _silent_rows(count: int, *arrays: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
    """``arrays`` (blocks first, channels second) with ``count`` silent channels appended:
    zero spectra and centroids, levels at the floor."""
    spectra, centroid, rms, peak = arrays
    return (
        np.concatenate((spectra, np.zeros((len(spectra), count, spectra.shape[2]), np.float32)), 1),
        np.concatenate((centroid, np.zeros((len(centroid), count), np.float32)), 1),
        np.concatenate((rms, np.full((len(rms), count), DB_FLOOR, np.float32)), 1),
        np.concatenate((peak, np.full((len(peak), count), DB_FLOOR, np.float32)), 1),
    )


class ViewState:
    """One view: its spec, its shared stage and its own dynamics."""

    def __init__(self, spec: ViewSpec, stage: _Stage) -> None:
        self.spec = spec
        self.cache_key = _VIEW_PREFIX + spec.key
        self.stage = stage
        self._dynamics: Dynamics | None = None
        self._last_frame: int | None = None

    def frame(
        self,
        stage: _StageBatch,
        index: int,
        frame_count: int,
        windows: SampleWindows,
        sample_rate: int,
    ) -> ViewFrame:
        """The view's frame of the ``index``-th block of a stage batch, the stream's frame
        ``frame_count`` (called in order; frames lost on the way still count as time)."""
        dynamics = self._dynamics
        frame_seconds = windows.hop / sample_rate
        if dynamics is None or dynamics.frame_seconds != frame_seconds:
            dynamics = self._dynamics = Dynamics(self.spec.dynamics, frame_seconds)
        last, self._last_frame = self._last_frame, frame_count
        elapsed = 1 if last is None or frame_count <= last else frame_count - last
        rms = stage.rms[index]
        shaped = dynamics(stage.amplitudes[index], rms, elapsed)
        spec = self.spec
        return ViewFrame(
            spec=spec,
            fft_size=windows.fft_size(spec.resolution),
            channels=spec.channels.rows(windows.channels),
            layout=self.stage.layout(windows, sample_rate),
            values=shaped.values,
            flux=stage.flux[index],
            onsets=None if stage.onsets is None else stage.onsets[index],
            centroid=stage.centroid[index],
            rms=rms,
            peak=stage.peak[index],
            silent=shaped.silent,
            gain_db=shaped.gain_db,
        )


class Views:
    """The views clients hold, each computed once per spectrum for all of them.

    Not thread-safe and not async: the router task calls :meth:`process` on each batch
    before offering it to subscribers, and clients acquire and release from Trio tasks of
    the same thread.
    """

    def __init__(self) -> None:
        self._users: dict[ViewSpec, int] = {}
        self._views: dict[ViewSpec, ViewState] = {}
        self._stages: dict[_StageKey, _Stage] = {}

    @property
    def specs(self) -> tuple[ViewSpec, ...]:
        return tuple(self._views)

    def acquire(self, spec: ViewSpec) -> None:
        """One more client wants ``spec``: its values are attached from the next batch on."""
        users = self._users.get(spec, 0)
        self._users[spec] = users + 1
        if users:
            return
        key = _StageKey(spec.bands, spec.resolution, spec.channels)
        stage = self._stages.get(key)
        if stage is None:
            stage = self._stages[key] = _Stage(key)
        self._views[spec] = ViewState(spec, stage)

    def release(self, spec: ViewSpec) -> None:
        """A client that acquired ``spec`` is gone; the last one's leaving drops its state."""
        users = self._users[spec] - 1
        if users:
            self._users[spec] = users
            return
        del self._users[spec]
        view = self._views.pop(spec)
        if all(other.stage is not view.stage for other in self._views.values()):
            del self._stages[view.stage.key]

    @contextmanager
    def held(self, spec: ViewSpec | None) -> Iterator[None]:
        """Hold ``spec`` (if any) for the ``with`` block: a client's view, around its
        subscription to the stream (enter this first, so every spectrum it is offered has
        its frame)."""
        if spec is None:
            yield
            return
        self.acquire(spec)
        try:
            yield
        finally:
            self.release(spec)

    def process(self, batch: Sequence[Spectrum]) -> None:
        """Compute every view's frame of every spectrum of ``batch`` (oldest first) and attach
        it to the spectrum. Spectra without samples (relayed ones) are skipped."""
        if not self._views:
            return
        for windows, spectra in _by_windows(batch):
            first = spectra[0].detail.index
            blocks = slice(first, first + len(spectra))
            rate = spectra[0].sample_rate
            mix_levels = _mix_levels(spectra)
            for stage in self._stages.values():
                results = stage.run(windows, blocks, mix_levels, rate)
                for view in self._views.values():
                    if view.stage is not stage:
                        continue
                    for index, spectrum in enumerate(spectra):
                        frame = view.frame(results, index, spectrum.frame_count, windows, rate)
                        spectrum.remember(view.cache_key, frame)


def _by_windows(
    batch: Iterable[Spectrum],
) -> list[tuple[SampleWindows, list[AnalysedSpectrum]]]:
    """The analysed spectra of a batch, in runs of consecutive blocks of one
    :class:`SampleWindows`."""
    runs: list[tuple[SampleWindows, list[AnalysedSpectrum]]] = []
    for spectrum in batch:
        if not isinstance(spectrum, AnalysedSpectrum):
            continue
        detail = spectrum.detail
        if runs and runs[-1][0] is detail.windows:
            run = runs[-1][1]
            if run[-1].detail.index + 1 == detail.index:
                run.append(spectrum)
                continue
        runs.append((detail.windows, [spectrum]))
    return runs
