"""The WAV format, in one place: the header the recorder writes, the sample encodings, and
the decoder the ``wav:`` source reads with. Pure: bytes in, bytes or arrays out.

Written here rather than with the stdlib ``wave`` module, which reads and writes PCM only:
recordings made with ``record.format: float32`` (WAVE_FORMAT_IEEE_FLOAT) must be written
and must play back as a ``wav:`` source too.

* ``pcm16`` — WAVE_FORMAT_PCM, 16-bit. Samples are scaled by 32768, rounded to the nearest
  integer (no dither: material that was 16-bit to begin with round-trips bit-exactly, and
  the rounding error of the rest stays at or below half an LSB, about -101 dBFS) and
  clipped to [-32768, 32767]; NaN is written as 0.
* ``float32`` — WAVE_FORMAT_IEEE_FLOAT with the ``fact`` chunk the format requires: the
  float32 samples bit for bit.

The decoder also reads PCM 8/24/32-bit, IEEE float 64 and WAVE_FORMAT_EXTENSIBLE files.
"""

from __future__ import annotations

import struct
from typing import Literal, TypeAlias

import attrs
import numpy as np

from .samples import FloatArray

PCM = 1
IEEE_FLOAT = 3
EXTENSIBLE = 0xFFFE
# The RIFF size field is 32-bit: no WAV file may exceed 4 GiB.
SIZE_LIMIT = 0xFFFFFFFF

Encoding: TypeAlias = Literal["pcm16", "float32"]
BITS: dict[Encoding, int] = {"pcm16": 16, "float32": 32}


# ---------------------------------------------------------------- writing


def header(encoding: Encoding, channels: int, sample_rate: int, frames: int) -> bytes:
    """The complete header for ``frames`` frames: 44 bytes (pcm16) or 58 (float32)."""
    bits = BITS[encoding]
    block_align = channels * bits // 8
    data_bytes = frames * block_align
    byte_rate = sample_rate * block_align
    if encoding == "pcm16":
        fmt = struct.pack("<HHIIHH", PCM, channels, sample_rate, byte_rate, block_align, bits)
        extra = b""
    else:
        fmt = struct.pack(
            "<HHIIHHH", IEEE_FLOAT, channels, sample_rate, byte_rate, block_align, bits, 0
        )
        extra = b"fact" + struct.pack("<II", 4, frames)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra
        + b"data"
        + struct.pack("<I", data_bytes)
    )
    return b"RIFF" + struct.pack("<I", len(body) + data_bytes) + body


def frame_bytes(encoding: Encoding, channels: int) -> int:
    return channels * BITS[encoding] // 8


def encode(frames: FloatArray, encoding: Encoding) -> memoryview:
    """float32 frames ``(n, channels)`` as the data chunk's bytes, little-endian."""
    if encoding == "pcm16":
        scaled = np.multiply(frames, 32768.0, dtype=np.float32)
        np.nan_to_num(scaled, copy=False, nan=0.0)
        np.rint(scaled, out=scaled)
        np.clip(scaled, -32768.0, 32767.0, out=scaled)
        return scaled.astype("<i2").data.cast("B")
    return np.ascontiguousarray(frames, dtype="<f4").data.cast("B")


# ---------------------------------------------------------------- reading


@attrs.frozen(eq=False)
class WavData:
    frames: FloatArray  # shape (n, channels), float32 in [-1, 1)
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.frames.shape[1])


def decode(raw: bytes) -> WavData:
    """A whole WAV file's bytes as float32 frames; :class:`ValueError` says what is wrong."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("missing RIFF/WAVE header")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    try:
        while offset + 8 <= len(raw):
            chunk_id = raw[offset : offset + 4]
            (size,) = struct.unpack_from("<I", raw, offset + 4)
            body = raw[offset + 8 : offset + 8 + size]
            if chunk_id == b"fmt ":
                code, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
                if code == EXTENSIBLE and len(body) >= 26:
                    (code,) = struct.unpack_from("<H", body, 24)
                fmt = (code, channels, rate, bits)
            elif chunk_id == b"data":
                data = body
            offset += 8 + size + (size & 1)
    except struct.error as error:
        raise ValueError(f"truncated chunk ({error})") from None
    if fmt is None or data is None:
        raise ValueError("no fmt or data chunk")
    code, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise ValueError(f"{channels} channels at {rate} Hz")
    width = bits // 8
    if width < 1:
        raise ValueError(f"unsupported encoding (format {code}, {bits}-bit)")
    usable = len(data) - len(data) % (width * channels)
    data = data[:usable]
    if code == IEEE_FLOAT and bits in (32, 64):
        samples = np.frombuffer(data, dtype=f"<f{width}").astype(np.float32)
    elif code == PCM and bits == 8:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif code == PCM and bits in (16, 32):
        ints = np.frombuffer(data, dtype=f"<i{width}")
        samples = (ints / float(2 ** (bits - 1))).astype(np.float32)
    elif code == PCM and bits == 24:
        triples = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = (ints / float(1 << 23)).astype(np.float32)
    else:
        raise ValueError(f"unsupported encoding (format {code}, {bits}-bit)")
    if samples.size == 0:
        raise ValueError("no audio frames")
    return WavData(samples.reshape(-1, channels), rate)
