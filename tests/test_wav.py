"""The WAV format module on its own: headers, sample encodings and the decoder, no files."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from phase4_trio import wav


@pytest.mark.parametrize(("channels", "frames"), [(1, 0), (2, 12345)])
def test_the_pcm16_header_is_the_one_the_stdlib_writes(channels: int, frames: int) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(48000)
        writer.writeframes(bytes(frames * channels * 2))
    assert buffer.getvalue()[:44] == wav.header("pcm16", channels, 48000, frames)


def test_the_float32_header_has_format_3_and_a_fact_chunk() -> None:
    header = wav.header("float32", 2, 48000, 1000)
    assert len(header) == 58
    assert header[:4] == b"RIFF"
    assert struct.unpack_from("<I", header, 4)[0] == 50 + 8000
    assert header[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<IHHIIHHH", header, 16) == (18, 3, 2, 48000, 384000, 8, 32, 0)
    assert header[38:42] == b"fact"
    assert struct.unpack_from("<II", header, 42) == (4, 1000)
    assert header[50:54] == b"data"
    assert struct.unpack_from("<I", header, 54)[0] == 8000


def test_pcm16_rounds_clips_and_zeroes_nan() -> None:
    frames = np.array(
        [[0.0], [0.5], [-1.0], [1.0], [2.0], [-3.0], [np.nan], [1.4 / 32768], [-1.6 / 32768]],
        dtype=np.float32,
    )
    ints = np.frombuffer(bytes(wav.encode(frames, "pcm16")), dtype="<i2")
    assert ints.tolist() == [0, 16384, -32768, 32767, 32767, -32768, 0, 1, -2]


@pytest.mark.parametrize("encoding", ["pcm16", "float32"])
def test_what_is_written_decodes_back(encoding: wav.Encoding) -> None:
    rng = np.random.default_rng(1)
    frames = (rng.integers(-32768, 32767, size=(500, 2)) / 32768).astype(np.float32)
    data = bytes(wav.encode(frames, encoding))
    decoded = wav.decode(wav.header(encoding, 2, 22050, 500) + data)
    assert decoded.sample_rate == 22050
    assert decoded.channels == 2
    np.testing.assert_array_equal(decoded.frames, frames)  # 16-bit material: bit-exact both ways


@pytest.mark.parametrize(("width", "scale"), [(1, 128), (3, 1 << 23), (4, 1 << 31)])
def test_other_pcm_widths_are_read(width: int, scale: int) -> None:
    values = [0, scale // 2, -scale // 2, scale - 1, -scale]
    if width == 1:  # 8-bit WAV is unsigned, offset 128
        raw = bytes(v + 128 for v in values)
    else:
        raw = b"".join(v.to_bytes(width, "little", signed=True) for v in values)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(width)
        writer.setframerate(8000)
        writer.writeframes(raw)
    decoded = wav.decode(buffer.getvalue())
    expected = np.array(values, dtype=np.float64) / scale
    np.testing.assert_allclose(decoded.frames[:, 0], expected, atol=1e-7)


def test_float64_and_extensible_files_are_read() -> None:
    samples = np.array([0.25, -0.5, 0.125], dtype="<f8")
    fmt = struct.pack("<HHIIHHHHIH14s", wav.EXTENSIBLE, 1, 8000, 64000, 8, 64, 22, 64, 0, 3, b"")
    data = samples.tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    decoded = wav.decode(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert decoded.frames[:, 0].tolist() == [0.25, -0.5, 0.125]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "missing RIFF/WAVE header"),
        (b"RIFF\0\0\0\0WAVE", "no fmt or data chunk"),
        (wav.header("pcm16", 1, 8000, 0), "no audio frames"),
        (b"RIFF\0\0\0\0WAVEfmt \2\0\0\0\1\0data\0\0\0\0", "truncated chunk"),
    ],
)
def test_broken_files_are_value_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wav.decode(raw)


def test_a_zero_bit_format_is_refused_not_divided_by() -> None:
    fmt = struct.pack("<HHIIHH", wav.PCM, 1, 8000, 0, 0, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data\4\0\0\0abcd"
    with pytest.raises(ValueError, match="unsupported encoding"):
        wav.decode(b"RIFF" + struct.pack("<I", len(body)) + body)
