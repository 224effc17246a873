"""The WAV recorder with real source threads, a real bridge and real files."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import trio

from engine_helpers import listening_bridge, take_blocks
from phase4_trio import wav
from phase4_trio.capture import CaptureBridge, SyntheticSource, read_wav
from phase4_trio.capture.synthetic import ToneGenerator
from phase4_trio.errors import Phase4Error
from phase4_trio.pipeline.messages import FloatArray
from phase4_trio.record import WavRecorder

RATE = 44100
BLOCK = 256
TONE_HZ = 1000.0


class Counter:
    """Fills block n with the value n / 2**20, so a recording shows which blocks it holds."""

    sample_rate = RATE
    channels = 1

    def __init__(self) -> None:
        self.n = 0

    def fill(self, out: FloatArray) -> None:
        for start in range(0, len(out), BLOCK):  # unpaced sources fill several blocks at once
            out[start : start + BLOCK] = self.n / 2**20
            self.n += 1


def tone(frames: int, channels: int = 1) -> np.ndarray:
    """What ToneGenerator produced for the first ``frames`` frames, block by block."""
    generator = ToneGenerator(TONE_HZ, 0.5, RATE, channels)
    out = np.zeros((-(-frames // BLOCK) * BLOCK, channels), np.float32)
    for start in range(0, len(out), BLOCK):
        generator.fill(out[start : start + BLOCK])
    return out[:frames]


def make_recorder(path: Path, sample_format: str = "float32", **kwargs: object) -> WavRecorder:
    options: dict[str, object] = {
        "sample_rate": RATE,
        "channels": 1,
        "sample_format": sample_format,
        "fifo_seconds": 10.0,
    }
    options.update(kwargs)
    return WavRecorder(path, **options)  # type: ignore[arg-type]


async def record(
    recorder: WavRecorder,
    source: SyntheticSource,
    *,
    seconds: float | None = None,
    consume: bool = True,
    queue: int = 64,
    slots: int = 64,
) -> CaptureBridge:
    """source thread → bridge (→ a consumer that releases blocks, unless stalled) and the
    recorder as the bridge's tap. Stops the source first, then the recorder, as the engine
    does; with ``seconds=None`` waits for the recorder to finish by itself."""
    finished = trio.Event()

    async def run_recorder(task_status: trio.TaskStatus[None]) -> None:
        await recorder.run(task_status=task_status)
        finished.set()

    async def release() -> None:
        while True:
            bridge.release(await take_blocks(blocks))

    bridge, blocks = listening_bridge(
        block_size=BLOCK, channels=source.channels, sample_rate=RATE, slots=slots, queue=queue
    )
    bridge.add_tap(recorder)
    async with trio.open_nursery() as outer:
        await outer.start(run_recorder)
        async with trio.open_nursery() as inner:
            if consume:
                inner.start_soon(release)
            await inner.start(source.run, bridge)
            if seconds is None:
                await finished.wait()
            else:
                await trio.sleep(seconds)
            inner.cancel_scope.cancel()
        bridge.close()
        recorder.stop()
    return bridge


def tone_source(channels: int = 1, paced: bool = True) -> SyntheticSource:
    return SyntheticSource(ToneGenerator(TONE_HZ, 0.5, RATE, channels), BLOCK, paced=paced)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.slow
@pytest.mark.parametrize("sample_format", ["pcm16", "float32"])
async def test_three_seconds_of_tone(tmp_path: Path, sample_format: str) -> None:
    path = tmp_path / "tone.wav"
    recorder = make_recorder(path, sample_format, max_frames=3 * RATE)
    await record(recorder, tone_source())
    wav = read_wav(path)
    assert wav.sample_rate == RATE
    assert wav.channels == 1
    assert len(wav.frames) == 3 * RATE
    assert abs(peak_frequency(wav.frames[:, 0], RATE) - TONE_HZ) < 1.0
    expected = tone(3 * RATE)
    if sample_format == "float32":
        assert np.array_equal(wav.frames, expected)  # bit-exact
    else:
        assert np.abs(wav.frames - expected).max() <= 0.5 / 32768 + 1e-9
        with wave.open(str(path)) as reader:  # the stdlib reads it too
            assert (reader.getnframes(), reader.getsampwidth(), reader.getframerate()) == (
                3 * RATE,
                2,
                RATE,
            )
    stats = recorder.stats
    assert (stats.frames_written, stats.overflows, stats.errors) == (3 * RATE, 0, 0)
    assert stats.peak_dbfs == pytest.approx(-6.02, abs=0.1)
    assert stats.rms_dbfs == pytest.approx(-9.03, abs=0.2)


async def test_every_block_is_recorded_while_the_visualization_path_drops(
    tmp_path: Path,
) -> None:
    """Nobody reads the capture queue: the bridge drops almost everything, the file nothing."""
    path = tmp_path / "stalled.wav"
    recorder = make_recorder(path, "float32", channels=2)
    bridge = await record(recorder, tone_source(channels=2), seconds=1.0, consume=False, queue=2)
    assert bridge.stats.queue_full + bridge.stats.ring_full > bridge.stats.captured // 2
    wav = read_wav(path)
    assert len(wav.frames) == bridge.stats.captured * BLOCK
    assert np.array_equal(wav.frames, tone(len(wav.frames), channels=2))
    assert recorder.stats.late_frames == 0


async def test_fifo_overflow_is_counted_and_whole_blocks_survive(tmp_path: Path) -> None:
    """An unpaced source outruns a FIFO of two blocks drained every 20 ms."""
    path = tmp_path / "overflow.wav"
    recorder = make_recorder(path, "float32", fifo_seconds=2 * BLOCK / RATE)
    bridge = await record(recorder, SyntheticSource(Counter(), BLOCK, paced=False), seconds=0.5)
    stats = recorder.stats
    assert stats.overflows > 0
    assert stats.frames_written + stats.overflows == bridge.stats.captured * BLOCK
    blocks = read_wav(path).frames[:, 0].reshape(-1, BLOCK)
    assert (blocks == blocks[:, :1]).all()  # every block whole
    numbers = np.rint(blocks[:, 0] * 2**20).astype(int)
    assert (np.diff(numbers) >= 1).all()
    assert len(numbers) + stats.overflows // BLOCK == bridge.stats.captured


async def test_the_header_is_kept_current_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    recorder = make_recorder(path, "pcm16")
    checked = False

    async def look_while_recording() -> None:
        nonlocal checked
        await trio.sleep(1.6)
        raw = path.read_bytes()
        riff_size, data_size = (
            struct.unpack_from("<I", raw, 4)[0],
            struct.unpack_from("<I", raw, 40)[0],
        )
        assert data_size >= RATE  # half a second at least: the once-a-second update ran
        assert data_size <= len(raw) - 44
        assert riff_size == 36 + data_size
        checked = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(look_while_recording)
        await record(recorder, tone_source(), seconds=2.0)
    assert checked


async def test_the_wav_size_limit_ends_the_recording_with_a_valid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wav, "SIZE_LIMIT", 58 + 1000 * 4)
    path = tmp_path / "limit.wav"
    recorder = make_recorder(path, "float32")
    await record(recorder, tone_source())  # ends by itself at the limit
    assert len(read_wav(path).frames) == 1000
    assert recorder.stats.errors == 1
    assert "limit" in recorder.stats.error


def test_an_existing_file_is_not_overwritten_without_force(tmp_path: Path) -> None:
    path = tmp_path / "keep.wav"
    path.write_bytes(b"precious")
    with pytest.raises(Phase4Error, match=r"keep\.wav: already exists; use --force"):
        make_recorder(path).open()
    assert path.read_bytes() == b"precious"
    forced = make_recorder(path, force=True)
    forced.open()
    assert path.read_bytes()[:4] == b"RIFF"


def test_unwritable_destinations_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(Phase4Error, match=r"cannot create \(no directory"):
        make_recorder(tmp_path / "no" / "such" / "dir.wav").open()
    with pytest.raises(Phase4Error, match="is a directory"):
        make_recorder(tmp_path).open()
    with pytest.raises(Phase4Error, match="is a directory"):
        make_recorder(tmp_path, force=True).open()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_device_is_refused_at_open_and_left_alone() -> None:
    with pytest.raises(Phase4Error, match="/dev/full: cannot write"):
        make_recorder(Path("/dev/full"), force=True).open()
    assert Path("/dev/full").exists()
