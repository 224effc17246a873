"""Analysis through the real engine: a synthetic WAV file in, a real WebSocket client out.

Each test writes a WAV file, runs an :class:`~phase4_trio.engine.Engine` on it (unpaced where
the test only needs many frames, paced where it needs every frame in order) and reads what a
``trio-websocket`` client receives, exactly as a visualizer would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import trio
import trio_websocket

from analysis_signals import pink_noise, sine, white_noise, write_wav
from engine_helpers import make_config, running_engine, ws_url
from phase4_trio.wire import p4sp

RATE = 44100


async def receive(connection: trio_websocket.WebSocketConnection) -> Any:
    message = await connection.get_message()
    return orjson.loads(message) if isinstance(message, str) else p4sp.decode(message)


async def frames_from(
    path: Path,
    query: str,
    *,
    count: int,
    paced: bool = False,
    fft_size: int | str = "auto",
    buffer_size: int = 256,
) -> tuple[dict[str, Any] | None, list[Any]]:
    """The layout message (if the client asked for bands) and the next ``count`` frames."""
    config = make_config(
        input={"source": f"wav:{path}", "buffer_size": buffer_size},
        dsp={"fft_size": fft_size},
    )
    layout = None
    frames = []
    with trio.fail_after(60):
        async with running_engine(config, paced=paced) as engine:
            url = ws_url(engine, query)
            async with trio_websocket.open_websocket_url(url) as connection:
                first = await receive(connection)
                if isinstance(first, dict) and first["type"] == "bands":
                    layout = first
                else:
                    frames.append(first)
                while len(frames) < count:
                    frames.append(await receive(connection))
    return layout, frames


def dip_db(values: np.ndarray, frequencies: np.ndarray) -> float:
    near_60 = np.flatnonzero(abs(frequencies - 60) <= 6)
    near_100 = np.flatnonzero(abs(frequencies - 100) <= 6)
    first = near_60[np.argmax(values[near_60])]
    second = near_100[np.argmax(values[near_100])]
    return float(
        20 * np.log10(min(values[first], values[second]) / values[first + 1 : second].min())
    )


async def test_two_close_tones_are_two_peaks_at_8192_points(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "tones.wav", sine(60.0, 0.3, 2.0) + sine(100.0, 0.3, 2.0))
    _, frames = await frames_from(path, "format=f32&resolution=fine", count=40, fft_size=8192)
    spectrum = frames[-1]
    assert spectrum.fft_size == 8192 and len(spectrum.magnitudes) == 4097
    assert dip_db(spectrum.magnitudes, np.arange(4097) * RATE / 8192) >= 20
    layout, frames = await frames_from(path, "bands=octave:24", count=40, fft_size=8192)
    assert layout is not None and layout["fftSize"] == 8192
    values = np.array(frames[-1]["magnitudes"])
    assert dip_db(values, np.array(layout["centres"])) >= 20


def band_levels(
    layout: dict[str, Any], frames: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean band power in dB over ``frames``, and the band centres."""
    power = np.mean([np.square(frame["magnitudes"]) for frame in frames], axis=0)
    return 10 * np.log10(power), np.array(layout["centres"])


@pytest.mark.parametrize("bands", ["octave:1", "octave:3"])
async def test_pink_noise_is_flat_and_white_noise_rises_3_db_per_octave(
    tmp_path: Path, bands: str
) -> None:
    """Band powers averaged over 5 s of audio, 63 Hz to 8 kHz, within ±1 dB."""
    for noise, slope in ((pink_noise, 0.0), (white_noise, 3.0)):
        path = write_wav(tmp_path / "noise.wav", noise(5.0, RATE, seed=2, rms=0.1))
        # paced, so the frames cover 5 s of audio (or a little more, should the client lose
        # a few on a busy machine)
        layout, frames = await frames_from(path, f"bands={bands}", count=862, paced=True)
        assert layout is not None
        assert frames[-1]["frameCount"] - frames[0]["frameCount"] >= 861
        level, centres = band_levels(layout, frames)
        inside = (centres > 60) & (centres < 8500)
        level = level[inside] - slope * np.log2(centres[inside] / 1000)
        assert np.abs(level - level.mean()).max() < 1.0, (noise.__name__, level - level.mean())


async def test_a_sine_at_a_third_octave_mid_band_reads_its_level(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "sine.wav", sine(1000.0, 0.1, 1.0))  # -20 dBFS
    layout, frames = await frames_from(path, "bands=octave:3&scale=db", count=40)
    assert layout is not None
    band = int(np.argmin(abs(np.array(layout["centres"]) - 1000)))
    assert frames[-1]["scale"] == "db"
    assert frames[-1]["magnitudes"][band] == pytest.approx(-20.0, abs=0.5)


async def test_smoothing_reaches_90_percent_of_a_step_within_its_attack_time(
    tmp_path: Path,
) -> None:
    """With fft_size = buffer_size the bands follow the block, so the step is the smoothing's."""
    step_at = 40 * 256  # a block boundary
    samples = sine(1000.0, 0.5, 1.0)
    samples[:step_at] *= 0.01
    path = write_wav(tmp_path / "step.wav", samples)
    attack_ms = 50.0
    _, frames = await frames_from(
        path,
        f"bands=octave:1&smooth={attack_ms:g}:1000&format=f32",
        count=440,  # two loops of the file and then some, whenever the client started
        paced=True,
        fft_size=256,
    )
    loop = len(samples) // 256
    counts = [frame.frame_count for frame in frames]
    # the first pass over the step that the client received whole (a busy machine may make
    # it lose a frame now and then)
    start = next(
        i
        for i, count in enumerate(counts)
        if count % loop == 39 and counts[i : i + 41] == list(range(count, count + 41))
    )
    band = 5  # the 1 kHz octave
    values = [frame.magnitudes[band] for frame in frames[start : start + 41]]
    goal = values[0] + 0.9 * (0.5 - values[0])  # 0.5: the sine's amplitude in its band
    reached = next(index for index, value in enumerate(values) if value >= goal)
    block_ms = 256 / RATE * 1000
    assert abs(reached * block_ms - attack_ms) <= block_ms, values


async def test_auto_gain_lifts_minus_30_dbfs_to_near_one_within_5_seconds(tmp_path: Path) -> None:
    """A loud passage (2 s at 0 dBFS), then -30 dBFS: right after it the gain still holds
    (values far below 1), 5 s on the loudest band reads 0.8-1.0. Unpaced, the file loops
    many times; frames are gathered until both moments have been seen."""
    samples = sine(1000.0, 10 ** (-30 / 20), 8.0)
    samples[: 2 * RATE] = sine(1000.0, 1.0, 2.0)
    path = write_wav(tmp_path / "quiet.wav", samples)
    loop = len(samples) // 256
    config = make_config(input={"source": f"wav:{path}"})
    just_after: list[float] = []  # 2.2-3.0 s into the file
    five_seconds_on: list[float] = []  # 7.0-8.0 s
    with trio.fail_after(60):
        async with running_engine(config, paced=False) as engine:
            url = ws_url(engine, "bands=octave:3&scale=unit&gain=auto")
            async with trio_websocket.open_websocket_url(url) as connection:
                assert (await receive(connection))["type"] == "bands"
                heard_loud = False  # the client may join anywhere in the loop
                while len(just_after) < 20 or len(five_seconds_on) < 20:
                    frame = await receive(connection)
                    at = frame["frameCount"] % loop * 256 / RATE
                    if at < 2.0:
                        heard_loud = True
                    elif heard_loud and 2.2 < at < 3.0:
                        just_after.append(max(frame["magnitudes"]))
                    elif heard_loud and at > 7.0:
                        five_seconds_on.append(max(frame["magnitudes"]))
    assert max(just_after) < 0.1
    assert all(0.8 <= value <= 1.0 for value in five_seconds_on)


async def test_channels_all_gives_each_channel_its_own_bands(tmp_path: Path) -> None:
    stereo = np.stack([sine(500.0, 0.5, 1.0), sine(4000.0, 0.25, 1.0)], axis=1)
    path = write_wav(tmp_path / "stereo.wav", stereo)
    layout, frames = await frames_from(path, "bands=octave:3&channels=all", count=40)
    assert layout is not None
    centres = np.array(layout["centres"])
    left, right = frames[-1]["channels"]
    assert (left["channel"], right["channel"]) == (0, 1)
    assert centres[np.argmax(left["magnitudes"])] == pytest.approx(501, rel=0.01)
    assert centres[np.argmax(right["magnitudes"])] == pytest.approx(3981, rel=0.01)
    _, binary = await frames_from(path, "format=f32&channels=1&resolution=fine", count=40)
    decoded = binary[-1]
    assert decoded.magnitudes.shape == (1, 2049) and decoded.channels[0].channel == 1
    assert np.argmax(decoded.magnitudes[0]) * RATE / 4096 == pytest.approx(4000, abs=11)


async def test_the_gate_says_silent(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "quiet.wav", sine(1000.0, 0.001, 1.0))  # about -63 dBFS RMS
    _, frames = await frames_from(path, "bands=log:16&gate=-50", count=30)
    assert all(frame["silent"] for frame in frames)
    assert all(value == 0.0 for value in frames[-1]["magnitudes"])


async def test_the_original_client_sees_its_message_unchanged(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "tone.wav", sine(1000.0, 0.5, 1.0))
    _, frames = await frames_from(path, "", count=3)
    for frame in frames:
        assert frame["type"] == "fft_magnitudes"
        assert len(frame["magnitudes"]) == len(frame["spectralFlux"]) == 129
        assert frame["fftSize"] == 256


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("bands=octave:5", "bands: octave:N takes N in 1, 2, 3, 6, 12, 24, got 5"),
        ("smooth=fast", "smooth: expected ATTACK_MS:RELEASE_MS (e.g. 20:300), got 'fast'"),
        ("channels=1", "channels: channel 1 does not exist: the input has 1 (numbered from 0)"),
        ("gate=3", "gate: expected dBFS from -120 to 0, got '3'"),
    ],
)
async def test_bad_queries_are_http_400_with_one_line(query: str, line: str) -> None:
    async with running_engine() as engine:
        with pytest.raises(trio_websocket.ConnectionRejected) as caught:
            async with trio_websocket.open_websocket_url(ws_url(engine, query)):
                pass
    assert caught.value.status_code == 400
    assert caught.value.body is not None and caught.value.body.decode().strip() == line
