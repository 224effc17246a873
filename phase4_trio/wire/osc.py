"""OSC bundles (Open Sound Control 1.0), built with python-osc's own builders.

One bundle per output tick, time tag "immediately" (receivers act on arrival; a time tag
from this host's clock would mean nothing to another machine's). Addresses hang under a
configurable prefix, ``/phase4`` by default; docs/protocol.md#osc lists every message and
the type of each argument:

``PREFIX/bands``  f × N     band values (linear amplitude)
``PREFIX/level``  f f       RMS and peak, dBFS
``PREFIX/bpm``    f f       tempo (0 until known) and its confidence 0–1
``PREFIX/frame``  i d       frame count and capture time (Unix seconds; a double, since a
                            float32 cannot hold today's Unix time closer than 128 s)
``PREFIX/onset``  f         only in a bundle whose frames had an onset: its strength
``PREFIX/beat``   f         only in a bundle whose frames had a beat: the tempo

The frame count is an OSC ``i`` (int32) until it passes 2**31 - 1 (about 144 days at
172 frames per second), then an ``h`` (int64), as python-osc chooses.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

FLOAT = OscMessageBuilder.ARG_TYPE_FLOAT
DOUBLE = OscMessageBuilder.ARG_TYPE_DOUBLE


@attrs.frozen
class OscFrame:
    """What one bundle says. ``onset`` is 0.0 and ``beat`` False when none happened."""

    bands: Sequence[float]
    rms_db: float
    peak_db: float
    bpm: float
    bpm_confidence: float
    frame_count: int
    capture_time: float
    onset: float = 0.0
    beat: bool = False


def _message(address: str, *args: tuple[float | int, str | None]) -> OscMessageBuilder:
    builder = OscMessageBuilder(address=address)
    for value, arg_type in args:
        builder.add_arg(value, arg_type)
    return builder


def build_bundle(frame: OscFrame, prefix: str = "/phase4") -> bytes:
    """The bundle's bytes, ready for one UDP datagram."""
    bands = OscMessageBuilder(address=f"{prefix}/bands")
    for value in frame.bands:
        bands.add_arg(float(value), FLOAT)
    messages = [
        bands,
        _message(f"{prefix}/level", (frame.rms_db, FLOAT), (frame.peak_db, FLOAT)),
        _message(f"{prefix}/bpm", (frame.bpm, FLOAT), (frame.bpm_confidence, FLOAT)),
        _message(f"{prefix}/frame", (frame.frame_count, None), (frame.capture_time, DOUBLE)),
    ]
    if frame.onset > 0.0:
        messages.append(_message(f"{prefix}/onset", (frame.onset, FLOAT)))
    if frame.beat:
        messages.append(_message(f"{prefix}/beat", (frame.bpm, FLOAT)))
    bundle = OscBundleBuilder(IMMEDIATELY)
    for message in messages:
        bundle.add_content(message.build())
    dgram: bytes = bundle.build().dgram
    return dgram
