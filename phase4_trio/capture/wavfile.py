"""Read a WAV file into float32 frames: PCM 8/16/24/32-bit and IEEE float 32/64.

The stdlib ``wave`` module reads PCM only; recordings made with ``record.format: float32``
must play back as a ``wav:`` source too, so the RIFF chunks are parsed here directly.
"""

from __future__ import annotations

import struct
from pathlib import Path

import attrs
import numpy as np

from ..errors import Phase4Error
from ..samples import FloatArray

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE


@attrs.frozen(eq=False)
class WavData:
    frames: FloatArray  # shape (n, channels), float32 in [-1, 1)
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.frames.shape[1])


def read_wav(path: str | Path) -> WavData:
    """Decode a whole WAV file; any problem is one :class:`Phase4Error` line naming the file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise Phase4Error(f"wav:{path}: cannot read ({error.strerror or error})") from None
    try:
        return _decode(raw)
    except (ValueError, struct.error) as error:
        raise Phase4Error(f"wav:{path}: not a usable WAV file ({error})") from None


def _decode(raw: bytes) -> WavData:
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("missing RIFF/WAVE header")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    while offset + 8 <= len(raw):
        chunk_id = raw[offset : offset + 4]
        (size,) = struct.unpack_from("<I", raw, offset + 4)
        body = raw[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            code, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if code == _EXTENSIBLE and len(body) >= 26:
                (code,) = struct.unpack_from("<H", body, 24)
            fmt = (code, channels, rate, bits)
        elif chunk_id == b"data":
            data = body
        offset += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError("no fmt or data chunk")
    code, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise ValueError(f"{channels} channels at {rate} Hz")
    width = bits // 8
    usable = len(data) - len(data) % (width * channels)
    data = data[:usable]
    if code == _FLOAT and bits in (32, 64):
        samples = np.frombuffer(data, dtype=f"<f{width}").astype(np.float32)
    elif code == _PCM and bits == 8:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif code == _PCM and bits in (16, 32):
        ints = np.frombuffer(data, dtype=f"<i{width}")
        samples = (ints / float(2 ** (bits - 1))).astype(np.float32)
    elif code == _PCM and bits == 24:
        triples = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = (ints / float(1 << 23)).astype(np.float32)
    else:
        raise ValueError(f"unsupported encoding (format {code}, {bits}-bit)")
    if samples.size == 0:
        raise ValueError("no audio frames")
    return WavData(samples.reshape(-1, channels), rate)
