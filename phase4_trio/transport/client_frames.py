"""What one WebSocket client receives, given its options: pure, and shared where it can be.

A server frame is unmasked and carries no extension, so its bytes are the same for every client
with the same options and ``dropped`` count: :func:`frame_for` builds them once per spectrum
(cached on it, like the encodings), and a client that has lost frames gets its own count
spliced into the cached body.
"""

from __future__ import annotations

from ..pipeline.messages import Spectrum
from ..wire import json_spectrum, p4sp
from ..wire.websocket_frame import Opcode, header
from .bands import reduce_spectrum
from .options import ClientOptions


def encode_for(spectrum: Spectrum, options: ClientOptions, dropped: int) -> str | bytes:
    """The message a client with these options gets; shared work is cached on the spectrum."""
    if options.bins is not None:
        spectrum = reduce_spectrum(spectrum, options.bins)
    if options.format == "f32":
        return p4sp.encode(spectrum, with_flux=options.flux, dropped=dropped)
    return json_spectrum.encode_message(spectrum, dropped)


def _frame_key(options: ClientOptions) -> str:
    if options.format == "f32":
        return "ws-frame:f32+flux" if options.flux else "ws-frame:f32"
    return "ws-frame:json"


def frame_for(spectrum: Spectrum, options: ClientOptions, dropped: int) -> bytes:
    """The complete WebSocket frame carrying :func:`encode_for`'s message.

    The frame with ``dropped == 0`` (what a client that keeps up gets) is built once per
    spectrum and options and shared; a client that has lost frames gets its own count
    spliced in, which for JSON is one join of a short prefix with the cached body.
    """
    if options.bins is not None:
        spectrum = reduce_spectrum(spectrum, options.bins)
    key = _frame_key(options)
    if dropped == 0:
        cached: bytes | None = spectrum.encoded(key)
        if cached is not None:
            return cached
    if options.format == "f32":
        payload = p4sp.encode(spectrum, with_flux=options.flux, dropped=dropped)
        frame = b"".join((header(Opcode.BINARY, len(payload)), payload))
    else:
        prefix, rest = json_spectrum.encode_parts(spectrum, dropped)
        frame = b"".join((header(Opcode.TEXT, len(prefix) + len(rest)), prefix, rest))
    if dropped == 0:
        spectrum.remember(key, frame)
    return frame
