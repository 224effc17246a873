"""Synthetic signals with known content, for the analysis tests and the accuracy tables.

Every generator is seeded and returns float32 samples; onset tracks also return the exact
onset times in seconds.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from phase4_trio.dsp import Analyzer
from phase4_trio.dsp.views import ViewFrame, Views, ViewSpec, analysed_spectrum, view_frame

Samples = NDArray[np.float32]


def sine(frequency: float, amplitude: float, seconds: float, rate: int = 44100) -> Samples:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * math.pi * frequency * t)).astype(np.float32)


def coloured_noise(seconds: float, rate: int, seed: int, exponent: float, rms: float) -> Samples:
    """Noise with power spectral density ∝ f^-exponent (0 white, 1 pink), scaled to ``rms``.

    Made in one inverse FFT with the exact magnitude at every frequency and random phases
    (a random-phase multisine, periodic over its length), so its band powers are exact rather
    than exact only on average, and a test measures the analysis, not the random generator.
    """
    frames = round(seconds * rate)
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, frames // 2 + 1)
    spectrum = np.exp(1j * phases)
    frequencies = np.fft.rfftfreq(frames, 1 / rate)
    shape = np.zeros_like(frequencies)
    shape[1:] = frequencies[1:] ** (-exponent / 2)
    noise = np.fft.irfft(spectrum * shape, frames)
    return (noise * (rms / np.sqrt(np.mean(noise**2)))).astype(np.float32)


def pink_noise(seconds: float, rate: int = 44100, seed: int = 0, rms: float = 0.1) -> Samples:
    return coloured_noise(seconds, rate, seed, 1.0, rms)


def white_noise(seconds: float, rate: int = 44100, seed: int = 0, rms: float = 0.1) -> Samples:
    return coloured_noise(seconds, rate, seed, 0.0, rms)


def _place(track: NDArray[np.float64], sound: NDArray[np.float64], at: float, rate: int) -> None:
    start = round(at * rate)
    end = min(len(track), start + len(sound))
    track[start:end] += sound[: end - start]


def click_track(
    seconds: float, rate: int = 44100, seed: int = 0
) -> tuple[Samples, NDArray[np.float64]]:
    """Short decaying noise bursts (3 ms) at irregular times 80–600 ms apart, from -30 to
    -6 dBFS, over white noise at -60 dBFS."""
    rng = np.random.default_rng(seed)
    track = rng.standard_normal(round(seconds * rate)) * 10 ** (-60 / 20)
    times = []
    at = 0.3
    while at < seconds - 0.3:
        times.append(at)
        at += rng.uniform(0.08, 0.6)
    length = round(0.03 * rate)
    envelope = np.exp(-np.arange(length) / (0.003 * rate))
    for onset in times:
        level = 10 ** (rng.uniform(-30, -6) / 20)
        _place(track, level * rng.standard_normal(length) * envelope, onset, rate)
    return track.astype(np.float32), np.array(times)


def kick(rate: int) -> NDArray[np.float64]:
    """A sine sweeping 150 → 50 Hz with a 120 ms decay."""
    t = np.arange(round(0.4 * rate)) / rate
    frequency = 50 + 100 * np.exp(-t / 0.03)
    phase = 2 * math.pi * np.cumsum(frequency) / rate
    return np.sin(phase) * np.exp(-t / 0.12)


def snare(rate: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """High-passed noise with a 60 ms decay over a 190 Hz tone with a 40 ms decay."""
    t = np.arange(round(0.25 * rate)) / rate
    noise = np.diff(rng.standard_normal(len(t) + 1))
    return 0.6 * noise * np.exp(-t / 0.06) + 0.5 * np.sin(2 * math.pi * 190 * t) * np.exp(-t / 0.04)


def hihat(rate: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """First-difference (high-passed) noise with a 15 ms decay."""
    t = np.arange(round(0.08 * rate)) / rate
    return 0.5 * np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.015)


def drum_track(
    seconds: float, rate: int = 44100, seed: int = 0, bpm: float = 112.0
) -> tuple[Samples, dict[str, NDArray[np.float64]]]:
    """A drum-like loop with known onsets per instrument: kick on beats 1 and 3 (and a pushed
    eighth now and then), snare on 2 and 4, hi-hat on eighths with random skips, all with
    random levels, over a held 110 Hz bass note and pink noise at -50 dBFS."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * rate)
    track = pink_noise(seconds, rate, seed + 1, 10 ** (-50 / 20)).astype(np.float64)
    track += sine(110.0, 0.05, seconds, rate)
    beat = 60.0 / bpm
    onsets: dict[str, list[float]] = {"kick": [], "snare": [], "hihat": []}
    sounds = {"kick": lambda: kick(rate), "snare": lambda: snare(rate, rng)}
    eighth = 0
    while (at := 0.25 + eighth * beat / 2) < seconds - 0.5:
        position = eighth % 8
        hits = []
        if position in (0, 4) or (position == 5 and rng.random() < 0.3):
            hits.append("kick")
        if position in (2, 6):
            hits.append("snare")
        if rng.random() < 0.85:
            hits.append("hihat")
        for name in hits:
            sound = hihat(rate, rng) if name == "hihat" else sounds[name]()
            level = 10 ** (rng.uniform(-12, -4) / 20)
            _place(track, level * sound, at, rate)
            onsets[name].append(at)
        eighth += 1
    assert len(track) == frames
    peak = np.abs(track).max()
    return (track * (0.9 / peak)).astype(np.float32), {k: np.array(v) for k, v in onsets.items()}


def write_wav(path: Path, samples: Samples, rate: int = 44100) -> Path:
    """16-bit PCM WAV, ``(frames,)`` or ``(frames, channels)``."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def f_measure(
    detected: NDArray[np.float64], truth: NDArray[np.float64], tolerance: float = 0.05
) -> tuple[float, float, float]:
    """Precision, recall and F-measure, each true onset matched to at most one detection
    within ``tolerance`` seconds (greedy in time order, as mir_eval does for onsets)."""
    used = np.zeros(len(detected), dtype=bool)
    hits = 0
    for onset in truth:
        candidates = np.flatnonzero(~used & (np.abs(detected - onset) <= tolerance))
        if len(candidates):
            used[candidates[np.argmin(np.abs(detected[candidates] - onset))]] = True
            hits += 1
    precision = hits / len(detected) if len(detected) else 0.0
    recall = hits / len(truth) if len(truth) else 0.0
    total = precision + recall
    return precision, recall, (2 * precision * recall / total if total else 0.0)


def analyse(
    samples: Samples,
    specs: list[ViewSpec],
    *,
    fft_size: int = 4096,
    block: int = 256,
    rate: int = 44100,
    batch: int = 1,
) -> dict[ViewSpec, list[ViewFrame]]:
    """Run ``samples`` (``(frames,)`` or ``(frames, channels)``) through the analyzer and the
    views, ``batch`` blocks at a time, as the engine does; every view's frames in order."""
    data = samples.reshape(len(samples), -1)
    count = len(data) // block
    analyzer = Analyzer(block, rate, "hann", fft_size)
    views = Views()
    for spec in specs:
        views.acquire(spec)
    frames: dict[ViewSpec, list[ViewFrame]] = {spec: [] for spec in specs}
    for start in range(0, count, batch):
        stop = min(count, start + batch)
        blocks = data[start * block : stop * block].reshape(stop - start, block, -1)
        spectra = [
            analysed_spectrum(start + i, 0.0, rate, a)
            for i, a in enumerate(analyzer.process_batch(blocks))
        ]
        views.process(spectra)
        for spectrum in spectra:
            for spec in specs:
                frame = view_frame(spectrum, spec)
                assert frame is not None
                frames[spec].append(frame)
    return frames


def onset_times(
    onsets: NDArray[np.bool_], block: int = 256, rate: int = 44100, merge: float = 0.05
) -> NDArray[np.float64]:
    """Times (the end of the frame's block) of frames where any of ``onsets``' bands fired,
    ``(frames, bands)``; detections closer than ``merge`` to the previous one count once."""
    kept: list[float] = []
    for frame in np.flatnonzero(onsets.any(axis=1)):
        at = (frame + 1) * block / rate
        if not kept or at - kept[-1] > merge:
            kept.append(at)
    return np.array(kept)


def merged(times: NDArray[np.float64], merge: float = 0.05) -> NDArray[np.float64]:
    """Sorted ``times`` with those closer than ``merge`` to the previous one dropped."""
    kept: list[float] = []
    for at in np.sort(times):
        if not kept or at - kept[-1] > merge:
            kept.append(float(at))
    return np.array(kept)
