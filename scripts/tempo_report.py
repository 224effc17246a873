"""The measurements behind docs/dsp.md's tempo and beat tables, printed as Markdown.

Runs the tempo tracker over the groove test set and the validation set of tests/grooves.py
(rendered once per machine with fluidsynth, cached under ~/.cache/phase4-trio/grooves) with the
block-sized 256-point FFT and a 4096-point sliding one, librosa's beat tracker over the same
renders (whole files), click tracks, a tempo change, a stop, and the tracker's cost per block.
It writes nothing: copy what it prints into docs/dsp.md by hand.

    .venv/bin/python scripts/tempo_report.py [--skip librosa,clicks,cost]

librosa is a dev-only dependency (``pip install -e '.[dev]'``); the engine never imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from clicks import blocks, click_track
from grooves import (
    BLOCK,
    FRAME_RATE,
    SAMPLE_RATE,
    TOLERANCE,
    Groove,
    Score,
    beat_times,
    cases,
    f_measure,
    fine_spectra,
    groove,
    judge,
    score,
    track,
    validation_cases,
)
from numpy.typing import NDArray

from phase4_trio.dsp import (
    Analysis,
    Analyzer,
    MagnitudeSpectrum,
    SpectralFlux,
    TempoTracker,
    make_window,
)

SIZES = (256, 4096)
BINS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01))


def librosa_score(made: Groove) -> Score:
    """librosa's beat tracker with its defaults over the whole file, scored as ours is."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tempo, beats = librosa.beat.beat_track(y=made.samples, sr=SAMPLE_RATE, units="time")
    return judge(made, float(np.atleast_1d(tempo)[0]), 1.0, np.asarray(beats, dtype=np.float64))


def groove_tables(skip: set[str]) -> None:
    sets = {"test": cases(), "validation": validation_cases()}
    rows: dict[str, dict[str, dict[str, Score]]] = {}
    for set_name, made in sets.items():
        rows[set_name] = {}
        for name, render in made:
            grooved = render()
            scores = {f"ours {size}": score(grooved, size) for size in SIZES}
            if "librosa" not in skip:
                scores["librosa"] = librosa_score(grooved)
            rows[set_name][name] = scores
    methods = list(next(iter(rows["test"].values())))
    for set_name, by_groove in rows.items():
        print(f"\n#### {set_name} set: bpm (confidence), beat F\n")
        print("| groove | " + " | ".join(methods) + " |")
        print("| --- |" + " --- |" * len(methods))
        for name, scores in by_groove.items():
            cells = []
            for method in methods:
                s = scores[method]
                mark = "" if s.right else " ✗"
                confidence = "" if method == "librosa" else f" ({s.confidence:.2f})"
                cells.append(f"{s.bpm:.1f}{confidence}{mark}, F {s.f_measure:.2f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n#### Summary\n")
    print("| set | method | tempo within 2 BPM | wrong (confidence) | mean beat F |")
    print("| --- | --- | --- | --- | --- |")
    for set_name, by_groove in rows.items():
        for method in methods:
            readings = [s[method] for s in by_groove.values()]
            right = sum(s.right for s in readings)
            wrong = [
                f"{n} {s[method].bpm:.1f}"
                + ("" if method == "librosa" else f" ({s[method].confidence:.2f})")
                for n, s in by_groove.items()
                if not s[method].right
            ]
            share = 100 * right / len(readings)
            mean_f = np.mean([s.f_measure for s in readings])
            print(
                f"| {set_name} | {method} | {right} / {len(readings)} ({share:.0f} %)"
                f" | {', '.join(wrong) or '-'} | {mean_f:.3f} |"
            )
    print("\n#### Accuracy against confidence (test and validation sets together)\n")
    print("| confidence | " + " | ".join(f"ours {size}" for size in SIZES) + " |")
    print("| --- |" + " --- |" * len(SIZES))
    for low, high in BINS:
        cells = []
        for size in SIZES:
            inside = [
                s[f"ours {size}"]
                for by_groove in rows.values()
                for s in by_groove.values()
                if low <= s[f"ours {size}"].confidence < high
            ]
            cells.append(f"{sum(s.right for s in inside)} / {len(inside)} right")
        print(f"| {low:.1f}-{min(high, 1.0):.1f} | " + " | ".join(cells) + " |")


def change_and_stop_table() -> None:
    print("\n#### Tempo change and stop\n")
    print("| case | FFT | result |")
    print("| --- | --- | --- |")
    changes = (
        ("rock", 120.0, 140.0, 5),
        ("four-on-the-floor", 120.0, 140.0, 7),
        ("drum-and-bass", 160.0, 174.0, 8),
    )
    for style, before, after, seed in changes:
        made = groove(style, [(0.0, before), (8.0, after)], seconds=16.0, seed=seed)
        change = float(made.beats[np.argmax(np.abs(np.diff(made.beats) - 60.0 / after) < 1e-6)])
        for size in SIZES:
            bpm, _confidence, beats = track(made.samples, size)
            wrong = np.flatnonzero(np.abs(bpm - after) > 2.0)
            relock = (wrong[-1] + 1) / FRAME_RATE - change if len(wrong) else 0.0
            truth = made.beats[made.beats >= change + 4.0]
            found = beat_times(beats)
            f = f_measure(found[found >= change + 4.0 - TOLERANCE], truth)
            print(
                f"| {style} {before:g} → {after:g} | {size} | within 2 BPM for good "
                f"{relock:.2f} s after the change; beat F from +4 s {f:.2f} |"
            )
    made = groove("four-on-the-floor", [(0.0, 124.0)], seconds=14.0, seed=6, play_until=9.0)
    last = float(made.beats[-1])
    start = round(last * FRAME_RATE)
    for size in SIZES:
        bpm, _confidence, beats = track(made.samples, size)
        ends = [start]
        ends += (
            [start + int(np.flatnonzero(bpm[start:] != 0.0)[-1]) + 1] if bpm[start:].any() else []
        )
        ends += [start + int(np.flatnonzero(beats[start:])[-1]) + 1] if beats[start:].any() else []
        print(
            f"| four-on-the-floor 124, drums stop | {size} | bpm 0, no beats "
            f"{max(ends) / FRAME_RATE - last:.2f} s after the last hit |"
        )


def click_tables() -> None:
    configurations = ((44100, 256), (48000, 256), (44100, 512))
    print("\n#### Click tracks, 8 s, tempo range 50-210: bpm (confidence)\n")
    print("| true BPM | " + " | ".join(f"{r / 1000:g} kHz / {n}" for r, n in configurations) + " |")
    print("| --- |" + " --- |" * len(configurations))
    for bpm in (60, 75, 90, 100, 120, 128, 140, 160, 174, 200):
        cells = []
        for rate, size in configurations:
            result = analyse(click_track(bpm, rate, seed=bpm), rate, size)
            cells.append(f"{result.bpm:.2f} ({result.bpm_confidence:.2f})")
        print(f"| {bpm} | " + " | ".join(cells) + " |")
    print("\nSweep 60-200 BPM in 2.5 BPM steps, noise bursts and 1 kHz blips, 0.37 s offset:\n")
    for rate, size in configurations:
        worst, lowest = 0.0, 1.0
        beats_f: list[float] = []
        for tempo in np.arange(60.0, 200.01, 2.5).tolist():
            for kind in ("noise", "blip"):
                samples = click_track(tempo, rate, seconds=12.0, kind=kind, offset=0.37)
                analyzer = Analyzer(size, rate, "hann", tempo_range=(50.0, 210.0))
                results = [analyzer.process(block) for block in blocks(samples, size)]
                reading = results[round(8.0 * rate / size) - 1]
                worst = max(worst, abs(reading.bpm - tempo))
                lowest = min(lowest, reading.bpm_confidence)
                found = (np.flatnonzero([r.beat for r in results]) + 0.5) * size / rate
                truth = 0.37 + np.arange(60) * 60.0 / tempo
                truth = truth[(truth >= 8.0) & (truth < 12.0)]
                found = found[(found >= 8.0 - TOLERANCE) & (found < 12.0)]
                beats_f.append(f_measure(found, truth))
        print(
            f"- {rate / 1000:g} kHz / {size}: worst error {worst:.3f} BPM, lowest confidence "
            f"{lowest:.2f}, beat F (8-12 s, ±35 ms) mean {np.mean(beats_f):.3f}, "
            f"lowest {min(beats_f):.2f}"
        )


def analyse(samples: NDArray[np.float32], rate: int, size: int) -> Analysis:
    """The analysis of the last block of ``samples`` (tempo range 50-210, around the clicks)."""
    analyzer = Analyzer(size, rate, "hann", tempo_range=(50.0, 210.0))
    return [analyzer.process(block) for block in blocks(samples, size)][-1]


def cost_table(repeats: int) -> None:
    made = groove("rock", [(0.0, 96.0)], seed=1)
    samples = made.samples
    count = len(samples) // BLOCK
    print(f"\n#### Cost per block (process_time, best of {repeats}, a 16 s groove)\n")
    print("| what | µs per block |")
    print("| --- | --- |")
    for size in SIZES:
        if size == BLOCK:
            batch = samples[: count * BLOCK].reshape(count, BLOCK, 1)
            magnitudes = MagnitudeSpectrum(make_window("hann", BLOCK)).batch(batch)
        else:
            magnitudes = fine_spectra(samples, size)
        flux = SpectralFlux(size, SAMPLE_RATE).batch(magnitudes)
        rows = list(zip(flux, magnitudes, strict=True))

        def run(rows: list[tuple[NDArray[np.float32], NDArray[np.float32]]] = rows) -> None:
            push = TempoTracker(SAMPLE_RATE, BLOCK).push
            for row_flux, row_magnitudes in rows:
                push(row_flux, row_magnitudes)

        cost = best(run, repeats) / count * 1e6
        print(f"| tempo and beats, {size}-point spectrum ({size // 2 + 1} bins) | {cost:.1f} |")
    batch = samples[: count * BLOCK].reshape(count, BLOCK, 1)

    def whole() -> None:
        analyzer = Analyzer(BLOCK, SAMPLE_RATE, "hann")
        for block in batch:
            analyzer.process(block)

    cost = best(whole, repeats) / count * 1e6
    print(f"| Analyzer.process, one block at a time, everything included | {cost:.1f} |")


def best(run: Callable[[], None], repeats: int) -> float:
    return min(timeit.repeat(run, number=1, repeat=repeats, timer=time.process_time))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", default="", help="comma-separated: librosa, clicks, cost")
    parser.add_argument("--repeats", type=int, default=7, help="timing repeats (best is kept)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    groove_tables(skip)
    change_and_stop_table()
    if "clicks" not in skip:
        click_tables()
    if "cost" not in skip:
        cost_table(args.repeats)


if __name__ == "__main__":
    main()
