"""What a WLED in audio sync receive mode reads from a packet, written from WLED's own struct.

Each field is read at the offset WLED-MM's ``struct audioSyncPacket`` documents
(``__attribute__((packed))``, little-endian like the ESP32), rather than with the builder's
``struct`` format, so a layout mistake in the builder cannot hide in both.
"""

from __future__ import annotations

import struct

import attrs


@attrs.frozen
class Received:
    header: bytes
    pressure: float
    sample_raw: float
    sample_smth: float
    sample_peak: int
    frame_counter: int
    fft_result: tuple[int, ...]
    zero_crossing_count: int
    fft_magnitude: float
    fft_major_peak: float


def receive(packet: bytes) -> Received:
    """What WLED reads: it checks the size and the 6-byte header, then takes the fields."""
    assert len(packet) == 44  # sizeof(audioSyncPacket)
    assert packet[0:6] == b"00002\x00"  # strncmp(header, "00002", 6)

    def f32(offset: int) -> float:
        value: float = struct.unpack("<f", packet[offset : offset + 4])[0]
        return value

    return Received(
        header=packet[0:6],
        pressure=packet[6] + packet[7] / 256.0,  # pressure[0] integer, pressure[1] fraction
        sample_raw=f32(8),
        sample_smth=f32(12),
        sample_peak=packet[16],
        frame_counter=packet[17],
        fft_result=tuple(packet[18:34]),
        zero_crossing_count=int.from_bytes(packet[34:36], "little"),
        fft_magnitude=f32(36),
        fft_major_peak=f32(40),
    )
