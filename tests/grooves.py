"""Drum grooves with known beats: General MIDI patterns written with mido, rendered by fluidsynth.

The tempo and beat tests need real drum sounds (kicks whose energy sits in a few low bins,
snares, hi-hats, reverb tails), not clicks: a click track is the easy case. Each groove is a
one-bar pattern per drum in sixteenth-note steps, repeated, lightly humanised (a few ms of
timing jitter and some velocity spread, seeded) and written as a type-0 MIDI file; fluidsynth
renders it with the Debian ``timgm6mb-soundfont``. Renders are cached outside the repository,
under ``$XDG_CACHE_HOME/phase4-trio/grooves`` (or ``~/.cache/...``), keyed by a hash of the
MIDI bytes, the soundfont and the render options, so a test run renders each groove once per
machine and never writes into the work tree.

The true beat times come from the generator itself (the notated grid, before humanising).
:func:`track` and :func:`score` run the analysis over a groove and score it, for
tests/test_dsp_grooves.py and scripts/tempo_report.py alike.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import mido
import numpy as np
from numpy.typing import NDArray

from phase4_trio.dsp import Analyzer, Resolution, SpectralFlux, TempoTracker

SAMPLE_RATE = 44100
SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
# MIDI as a container for event times in seconds: 960 ticks per beat at 60 BPM = 1 ms per tick
# is too coarse for jitter tests; at 1 000 000 µs per beat and 10 000 ticks per beat, 0.1 ms.
_TICKS_PER_SECOND = 10_000
_DRUM_CHANNEL = 9

KICK, SIDE_STICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE = (
    36,
    37,
    38,
    39,
    42,
    44,
    46,
    51,
)
_VELOCITY = {"X": 118, "x": 88, "g": 34}


@attrs.frozen
class Style:
    """One bar of 16 sixteenth-note steps per drum: ``X`` accent, ``x`` hit, ``g`` ghost note.

    ``swing`` moves each off-beat eighth from half to ``swing`` of the beat (2/3 is triplet
    swing) and the sixteenths between with it; ``felt`` is the tempo a listener may tap
    relative to the notated one besides 1 (0.5 for half-time grooves).
    """

    name: str
    parts: dict[int, str]
    swing: float = 0.5
    felt: tuple[float, ...] = (1.0,)


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style(
            "four-on-the-floor",
            {
                KICK: "X...X...X...X...",
                CLAP: "....X.......X...",
                OPEN_HAT: "..x...x...x...x.",
                CLOSED_HAT: "g.g.g.g.g.g.g.g.",
            },
        ),
        Style(
            "rock",
            {
                KICK: "X.......X.x.....",
                SNARE: "....X.......X...",
                CLOSED_HAT: "x.x.x.x.x.x.x.x.",
            },
        ),
        Style(
            "funk",
            {
                KICK: "X..x......X..x..",
                SNARE: "....X..g.g..X..g",
                CLOSED_HAT: "xgxgxgxgxgxgxgxg",
            },
        ),
        Style(
            "hip-hop",
            {
                KICK: "X......x..X.....",
                SNARE: "....X.......X...",
                CLOSED_HAT: "x.x.x.x.x.x.x.x.",
            },
            swing=2 / 3,
        ),
        Style(
            "drum-and-bass",
            {
                KICK: "X.........X.....",
                SNARE: "....X.......X...",
                CLOSED_HAT: "x.x.x.x.x.x.x.x.",
                RIDE: "..g...g...g...g.",
            },
        ),
        Style(
            "half-time",
            {
                KICK: "X.........x.....",
                SNARE: "........X.......",
                CLOSED_HAT: "x.x.x.x.x.x.x.x.",
            },
            felt=(1.0, 0.5),
        ),
    )
}

# Tempi per style: what each style is usually played at, spread over 70-180 BPM, and across the
# octave pairs (70-90 against 140-180) that a tempo range alone cannot tell apart.
TEMPI: dict[str, tuple[float, ...]] = {
    "four-on-the-floor": (120.0, 124.0, 128.0, 136.0),
    "rock": (76.0, 96.0, 120.0, 160.0),
    "funk": (84.0, 96.0, 108.0, 116.0),
    "hip-hop": (72.0, 80.0, 88.0, 96.0),
    "drum-and-bass": (164.0, 170.0, 174.0, 178.0),
    "half-time": (130.0, 140.0, 150.0, 170.0),
}


@attrs.frozen
class Groove:
    """A rendered groove: mono float32 samples and the notated beat times in seconds."""

    name: str
    samples: NDArray[np.float32]
    beats: NDArray[np.float64]
    felt: tuple[float, ...]

    def tempo_at(self, seconds: float) -> float:
        """The notated tempo of the beat interval that contains ``seconds``."""
        index = int(np.searchsorted(self.beats, seconds)) - 1
        index = min(max(index, 0), len(self.beats) - 2)
        return 60.0 / float(self.beats[index + 1] - self.beats[index])


def beat_grid(tempi: Sequence[tuple[float, float]], seconds: float) -> NDArray[np.float64]:
    """Beat times for ``(from_second, bpm)`` segments; a new tempo starts on the next downbeat."""
    beats = [0.0]
    segment = 0
    while beats[-1] < seconds + 4.0:
        if segment + 1 < len(tempi) and beats[-1] >= tempi[segment + 1][0] and len(beats) % 4 == 1:
            segment += 1
        beats.append(beats[-1] + 60.0 / tempi[segment][1])
    return np.array(beats)


def midi_events(
    style: Style, beats: NDArray[np.float64], seconds: float, seed: int
) -> list[tuple[float, int, int]]:
    """(time, note, velocity) for every hit before ``seconds``, humanised with ``seed``."""
    rng = np.random.default_rng(seed)
    events = []
    for bar_start in range(0, len(beats) - 4, 4):
        for note, steps in style.parts.items():
            for step, mark in enumerate(steps):
                if mark == ".":
                    continue
                beat, sixteenth = divmod(step, 4)
                fraction = _swung(sixteenth / 4, style.swing)
                start = beats[bar_start + beat]
                time = start + fraction * (beats[bar_start + beat + 1] - start)
                time += float(rng.normal(0.0, 0.003))
                velocity = int(np.clip(_VELOCITY[mark] + rng.normal(0.0, 6.0), 1, 127))
                if 0.0 <= time < seconds:
                    events.append((max(0.0, time), note, velocity))
    return sorted(events)


def _swung(fraction: float, swing: float) -> float:
    """Where a straight position within the beat lands when the off-beat eighth is at ``swing``."""
    if fraction <= 0.5:
        return fraction * 2 * swing
    return swing + (fraction - 0.5) * 2 * (1 - swing)


def write_midi(events: Sequence[tuple[float, int, int]], seconds: float) -> bytes:
    """A type-0 MIDI file: drum hits on channel 10, 50 ms long, then silence to ``seconds``."""
    ticks_per_beat = _TICKS_PER_SECOND
    file = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    file.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    timeline: list[tuple[int, int, mido.Message]] = []
    for time, note, velocity in events:
        tick = round(time * _TICKS_PER_SECOND)
        on = mido.Message("note_on", channel=_DRUM_CHANNEL, note=note, velocity=velocity)
        off = mido.Message("note_off", channel=_DRUM_CHANNEL, note=note, velocity=0)
        timeline.append((tick, 1, on))
        timeline.append((tick + _TICKS_PER_SECOND // 20, 0, off))
    timeline.sort(key=lambda item: (item[0], item[1]))
    now = 0
    for tick, _order, message in timeline:
        track.append(message.copy(time=tick - now))
        now = tick
    end = round(seconds * _TICKS_PER_SECOND)
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    buffer = io.BytesIO()
    file.save(file=buffer)
    return buffer.getvalue()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phase4-trio" / "grooves"


def render(midi: bytes, seconds: float) -> NDArray[np.float32]:
    """Mono float32 samples of ``midi`` through fluidsynth, ``seconds`` long, cached by hash."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise RuntimeError("fluidsynth and timgm6mb-soundfont are needed: run scripts/bootstrap")
    options = ["-ni", "-q", "-g", "0.5", "-r", str(SAMPLE_RATE), "-T", "wav", "-O", "s16"]
    key = hashlib.sha256()
    key.update(midi)
    key.update(_file_digest(SOUNDFONT))
    key.update(" ".join(options).encode())
    target = cache_dir() / f"{key.hexdigest()[:32]}.wav"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_suffix(f".{os.getpid()}.tmp")
        source = staging.with_suffix(".mid")
        source.write_bytes(midi)
        try:
            subprocess.run(
                ["fluidsynth", *options, "-F", str(staging), str(SOUNDFONT), str(source)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            staging.replace(target)
        finally:
            source.unlink(missing_ok=True)
            staging.unlink(missing_ok=True)
    with wave.open(str(target), "rb") as reader:
        channels = reader.getnchannels()
        frames = reader.readframes(reader.getnframes())
    stereo = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).astype(np.float32)
    mono = stereo.mean(axis=1) / 32768.0
    total = round(seconds * SAMPLE_RATE)
    return np.pad(mono, (0, max(0, total - len(mono))))[:total]


_DIGESTS: dict[Path, bytes] = {}


def _file_digest(path: Path) -> bytes:
    if path not in _DIGESTS:
        _DIGESTS[path] = hashlib.sha256(path.read_bytes()).digest()
    return _DIGESTS[path]


def groove(
    style_name: str,
    tempi: Sequence[tuple[float, float]],
    seconds: float = 16.0,
    seed: int = 0,
    noise_snr_db: float | None = None,
    play_until: float | None = None,
) -> Groove:
    """Render ``style_name`` at ``(from_second, bpm)`` tempi, optionally with pink noise mixed
    in at ``noise_snr_db`` (RMS over the whole file) and the drums stopping at ``play_until``.
    """
    style = STYLES[style_name]
    until = seconds if play_until is None else play_until
    beats = beat_grid(tempi, seconds)
    events = midi_events(style, beats, until, seed)
    samples = render(write_midi(events, seconds), seconds)
    if noise_snr_db is not None:
        noise = pink_noise(len(samples), seed)
        level = np.sqrt(np.mean(samples.astype(np.float64) ** 2))
        noise *= level / np.sqrt(np.mean(noise**2)) * 10 ** (-noise_snr_db / 20)
        samples = samples + noise.astype(np.float32)
        samples /= max(1.0, float(np.abs(samples).max()) / 0.99)
    tempo_text = "→".join(f"{bpm:g}" for _start, bpm in tempi)
    noise_text = "" if noise_snr_db is None else f"+pink{noise_snr_db:g}dB"
    return Groove(
        f"{style_name}@{tempo_text}{noise_text}",
        samples.astype(np.float32),
        beats[beats < until],
        style.felt,
    )


def pink_noise(count: int, seed: int) -> NDArray[np.float64]:
    """Gaussian noise with a 1/f power spectrum (-3 dB per octave), zero mean."""
    spectrum = np.fft.rfft(np.random.default_rng(seed + 1000).standard_normal(count))
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0
    spectrum /= np.sqrt(frequencies)
    spectrum[0] = 0.0
    pink: NDArray[np.float64] = np.fft.irfft(spectrum, count)
    return pink


def cases() -> list[tuple[str, Callable[[], Groove]]]:
    """The steady test set, ``(id, render)``: every style at each of its tempi, and three
    noisy mixes (pink noise at 0 dB SNR)."""
    return _steady_cases(
        TEMPI,
        0,
        (("four-on-the-floor", 124.0), ("rock", 96.0), ("drum-and-bass", 174.0)),
        99,
    )


# A second set, never used to set a parameter: other tempi and seeds of the same styles.
VALIDATION_TEMPI: dict[str, tuple[float, ...]] = {
    "four-on-the-floor": (118.0, 126.0, 132.0),
    "rock": (70.0, 84.0, 108.0, 140.0, 176.0),
    "funk": (80.0, 90.0, 100.0),
    "hip-hop": (76.0, 84.0, 92.0),
    "drum-and-bass": (160.0, 172.0, 180.0),
    "half-time": (120.0, 144.0, 160.0, 176.0),
}


def validation_cases() -> list[tuple[str, Callable[[], Groove]]]:
    """The validation set, ``(id, render)``, built like :func:`cases`."""
    return _steady_cases(
        VALIDATION_TEMPI,
        500,
        (("funk", 92.0), ("hip-hop", 84.0), ("half-time", 150.0), ("rock", 140.0)),
        777,
    )


def _steady_cases(
    tempi: dict[str, tuple[float, ...]],
    first_seed: int,
    noisy: Sequence[tuple[str, float]],
    noisy_seed: int,
) -> list[tuple[str, Callable[[], Groove]]]:
    made: list[tuple[str, Callable[[], Groove]]] = []
    for index, (name, tempi_of_style) in enumerate(tempi.items()):
        for number, bpm in enumerate(tempi_of_style):
            seed = first_seed + 10 * index + number
            made.append(
                (
                    f"{name}@{bpm:g}",
                    lambda name=name, bpm=bpm, seed=seed: groove(name, [(0.0, bpm)], seed=seed),
                )
            )
    for name, bpm in noisy:
        made.append(
            (
                f"{name}@{bpm:g}+pink",
                lambda name=name, bpm=bpm: groove(
                    name, [(0.0, bpm)], seed=noisy_seed, noise_snr_db=0.0
                ),
            )
        )
    return made


BLOCK = 256
FRAME_RATE = SAMPLE_RATE / BLOCK
# Beats within this of the notated beat times count as found.
TOLERANCE = 0.035


def fine_spectra(samples: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """The :class:`Analyzer`'s fine spectrum of every block: Hann magnitudes of the last
    ``size`` samples at the end of each block (``dsp.fft_size``, hop = one block)."""
    count = len(samples) // BLOCK
    analyzer = Analyzer(BLOCK, SAMPLE_RATE, "hann", size)
    results = analyzer.process_batch(samples[: count * BLOCK].reshape(count, BLOCK, 1))
    return np.stack([result.detail.spectrum(Resolution.FINE) for result in results])


def track(
    samples: NDArray[np.float32], size: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Per-block bpm, confidence and beat flags of 256-frame blocks: through :class:`Analyzer`
    with the block-sized FFT (``size`` 256), or through :class:`TempoTracker` fed the
    analyzer's fine spectrum of ``size`` points (:func:`fine_spectra`)."""
    count = len(samples) // BLOCK
    if size == BLOCK:
        analyzer = Analyzer(BLOCK, SAMPLE_RATE, "hann")
        results = analyzer.process_batch(samples[: count * BLOCK].reshape(count, BLOCK, 1))
        return (
            np.array([r.bpm for r in results]),
            np.array([r.bpm_confidence for r in results]),
            np.array([r.beat for r in results]),
        )
    magnitudes = fine_spectra(samples, size)
    flux = SpectralFlux(size, SAMPLE_RATE).batch(magnitudes)
    tracker = TempoTracker(SAMPLE_RATE, BLOCK)
    bpm, confidence = np.zeros(count), np.zeros(count)
    beats = np.zeros(count, dtype=bool)
    for index in range(count):
        tracker.push(flux[index], magnitudes[index])
        bpm[index], confidence[index] = tracker.bpm, tracker.confidence
        beats[index] = tracker.beat
    return bpm, confidence, beats


def beat_times(beats: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Middle of each block flagged with a beat, in seconds."""
    return (np.flatnonzero(beats) + 0.5) / FRAME_RATE


def f_measure(found: NDArray[np.float64], truth: NDArray[np.float64]) -> float:
    """F-measure of beats matched one-to-one within :data:`TOLERANCE`."""
    if len(found) == 0 or len(truth) == 0:
        return 0.0
    used: set[int] = set()
    for time in found:
        nearest = int(np.argmin(np.abs(truth - time)))
        if abs(truth[nearest] - time) <= TOLERANCE and nearest not in used:
            used.add(nearest)
    if not used:
        return 0.0
    precision, recall = len(used) / len(found), len(used) / len(truth)
    return 2 * precision * recall / (precision + recall)


@attrs.frozen
class Score:
    """A tempo reading (right: within 2 BPM of the notated tempo, or half of it for a
    half-time groove) with its confidence, and the beat F-measure over 8-16 s."""

    bpm: float
    right: bool
    confidence: float
    f_measure: float


def judge(made: Groove, bpm: float, confidence: float, found: NDArray[np.float64]) -> Score:
    """Score a reading taken at 8 s and beat times (seconds) against ``made``."""
    notated = made.tempo_at(8.0)
    levels = [level for level in made.felt if abs(bpm - notated * level) <= 2.0]
    truth = made.beats[(made.beats >= 8.0) & (made.beats < 16.0)]
    found = found[(found >= 8.0 - TOLERANCE) & (found < 16.0)]
    if levels and levels[0] != 1.0:
        # Read at half: score against every other beat, on whichever side it locked.
        truth = max((truth[0::2], truth[1::2]), key=lambda t: f_measure(found, t))
    return Score(bpm, bool(levels), confidence, f_measure(found, truth))


def score(made: Groove, size: int) -> Score:
    """The analysis of ``made`` (see :func:`track`) scored after 8 s of audio."""
    bpm, confidence, beats = track(made.samples, size)
    at = round(8.0 * FRAME_RATE) - 1
    return judge(made, float(bpm[at]), float(confidence[at]), beat_times(beats))
