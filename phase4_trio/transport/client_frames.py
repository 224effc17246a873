"""What one WebSocket client receives, given its options: pure, and shared where it can be.

A server frame is unmasked and carries no extension, so its bytes are the same for every client
with the same options and ``dropped`` count: :func:`frame_for` builds them once per spectrum
(cached on it, like the encodings), and a client that has lost frames gets its own count
spliced into the cached body.

A client with analysis options (a :class:`~..dsp.views.ViewSpec`) gets its view's frame, which
:meth:`~..dsp.views.Views.process` attached to the spectrum; a spectrum that has none (one
relayed from elsewhere, without samples) goes out in the original's form instead.
:func:`layout_message` is what such a client receives first, once, when it asked for bands.
"""

from __future__ import annotations

from ..dsp.layouts import band_layout
from ..dsp.views import view_frame
from ..pipeline.messages import Spectrum
from ..wire import json_spectrum, p4sp
from ..wire.websocket_frame import Opcode, header
from .bands import reduce_spectrum
from .options import ClientOptions


def encode_for(spectrum: Spectrum, options: ClientOptions, dropped: int) -> str | bytes:
    """The message a client with these options gets; shared work is cached on the spectrum."""
    frame = None if options.view is None else view_frame(spectrum, options.view)
    if frame is not None:
        if options.format == "f32":
            return p4sp.encode_view(spectrum, frame, with_flux=options.flux, dropped=dropped)
        return b"".join(json_spectrum.encode_view_parts(spectrum, frame, dropped)).decode()
    if options.bins is not None:
        spectrum = reduce_spectrum(spectrum, options.bins)
    if options.format == "f32":
        return p4sp.encode(spectrum, with_flux=options.flux, dropped=dropped)
    return json_spectrum.encode_message(spectrum, dropped)


def frame_for(spectrum: Spectrum, options: ClientOptions, dropped: int) -> bytes:
    """The complete WebSocket frame carrying :func:`encode_for`'s message.

    The frame with ``dropped == 0`` (what a client that keeps up gets) is built once per
    spectrum and options and shared; a client that has lost frames gets its own count
    spliced in, which for JSON is one join of a short prefix with the cached body.
    """
    key = options.frame_key
    if dropped == 0:
        cached: bytes | None = spectrum.encoded(key)
        if cached is not None:
            return cached
    view = None if options.view is None else view_frame(spectrum, options.view)
    if view is None and options.view is not None:  # no samples here: the original's form
        options = ClientOptions(format=options.format, flux=options.flux)
        key = options.frame_key
    source = spectrum if options.bins is None else reduce_spectrum(spectrum, options.bins)
    if options.format == "f32":
        if view is None:
            payload = p4sp.encode(source, with_flux=options.flux, dropped=dropped)
        else:
            payload = p4sp.encode_view(spectrum, view, with_flux=options.flux, dropped=dropped)
        frame = b"".join((header(Opcode.BINARY, len(payload)), payload))
    else:
        if view is None:
            prefix, rest = json_spectrum.encode_parts(source, dropped)
        else:
            prefix, rest = json_spectrum.encode_view_parts(spectrum, view, dropped)
        frame = b"".join((header(Opcode.TEXT, len(prefix) + len(rest)), prefix, rest))
    if dropped == 0:
        spectrum.remember(key, frame)
    return frame


def layout_message(options: ClientOptions, sample_rate: int, fft_size: int) -> bytes | None:
    """The ``{"type":"bands",...}`` text message a client that asked for bands receives once,
    before its first frame; None for a client without bands. ``fft_size`` is the fine
    spectrum's (``dsp.fft_size`` resolved)."""
    if options.view is None or options.view.bands is None:
        return None
    return json_spectrum.encode_layout(band_layout(options.view.bands, sample_rate, fft_size))
