"""What a WebSocket client asks for in its URL query, parsed and checked (sans-I/O).

``ws://host:port/ws?format=f32&fps=30&bands=octave:3&scale=unit&gain=auto``: unknown, repeated
or out-of-range parameters are an :class:`OptionError`, which the server answers with HTTP 400
and one line. The analysis options (``bands``, ``resolution``, ``channels``, ``scale``,
``smooth``, ``gain``, ``gate``) make up the client's :class:`~..dsp.views.ViewSpec`; a client
without any of them gets the original's message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import attrs

from ..dsp.detail import DB_FLOOR, Resolution
from ..dsp.dynamics import DynamicsSpec, Scale, Smoothing
from ..dsp.layouts import BandSpec
from ..dsp.views import Channels, ViewSpec

FORMATS = ("json", "f32")
MAX_FPS = 1000.0
MAX_CHANNELS = 64
KNOWN = (
    "format",
    "fps",
    "bins",
    "flux",
    "bands",
    "resolution",
    "channels",
    "scale",
    "smooth",
    "gain",
    "gate",
)
_VIEW_OPTIONS = frozenset(KNOWN[4:])


class OptionError(ValueError):
    """A query parameter the client got wrong; answered with HTTP 400 at the handshake."""


@attrs.frozen
class ClientOptions:
    """What a client asked for in its URL query (``?format=f32&fps=30&bins=64``).

    ``view`` is None for a client that asked for none of the analysis options.
    """

    format: str = "json"
    fps: float | None = None
    bins: int | None = None
    flux: bool = True
    view: ViewSpec | None = None
    #: The spectrum cache key of this client's WebSocket frames, computed once here because
    #: every client looks it up for every spectrum.
    frame_key: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        key = "ws-frame:json"
        if self.format == "f32":
            key = "ws-frame:f32+flux" if self.flux else "ws-frame:f32"
        if self.view is not None:
            key = f"{key}:{self.view.key}"
        elif self.bins is not None:
            key = f"{key}:bins={self.bins}"
        object.__setattr__(self, "frame_key", key)


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise OptionError(f"{name}: must be one of {', '.join(choices)}; got {value!r}")
        return value

    return parse


def _fps(name: str, value: str) -> float:
    try:
        fps = float(value)
    except ValueError:
        raise OptionError(f"{name}: expected a number, got {value!r}") from None
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise OptionError(f"{name}: must be within 0-{MAX_FPS:g}, got {value!r}")
    return fps


def _bins(name: str, value: str) -> int:
    # isdigit() alone also accepts digits int() refuses ("²")
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 4096:
        raise OptionError(f"{name}: expected a whole number 1-4096, got {value!r}")
    return int(value)


def _gate(name: str, value: str) -> float:
    try:
        gate = float(value)
    except ValueError:
        gate = math.nan
    if not (math.isfinite(gate) and DB_FLOOR <= gate <= 0.0):
        raise OptionError(f"{name}: expected dBFS from {DB_FLOOR:g} to 0, got {value!r}")
    return gate


def _parsed_by(parse: Callable[[str], Any]) -> Callable[[str, str], Any]:
    """A value parser raising ValueError with one line, as an option parser."""

    def parse_option(name: str, value: str) -> Any:
        try:
            return parse(value)
        except ValueError as error:
            raise OptionError(f"{name}: {error}") from None

    return parse_option


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "format": _choice(FORMATS),
    "fps": _fps,
    "bins": _bins,
    "flux": _choice(("0", "1")),
    "bands": _parsed_by(BandSpec.parse),
    "resolution": _choice(tuple(r.value for r in Resolution)),
    "scale": _choice(tuple(s.value for s in Scale)),
    "smooth": _parsed_by(Smoothing.parse),
    "gain": _choice(("auto", "off")),
    "gate": _gate,
}


def parse_options(query: str, *, input_channels: int = MAX_CHANNELS) -> ClientOptions:
    """Parse and check the query string; unknown or repeated parameters are errors.

    ``input_channels`` is how many channels the engine captures: ``channels=N`` must name
    one of them.
    """
    try:
        fields = parse_qs(
            query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=len(KNOWN)
        )
    except ValueError as error:
        raise OptionError(f"malformed query string: {error}") from None
    values: dict[str, Any] = {}
    for name, given in fields.items():
        if name not in KNOWN:
            # quoted: the name is the client's text, a newline in it must not break the line
            raise OptionError(f"{name!r}: unknown parameter (known: {', '.join(KNOWN)})")
        if len(given) != 1:
            raise OptionError(f"{name}: given more than once")
        if name == "channels":
            parse = _parsed_by(lambda text: Channels.parse(text, input_channels))
        else:
            parse = _PARSERS[name]
        values[name] = parse(name, given[0])
    return ClientOptions(
        format=values.get("format", "json"),
        fps=values.get("fps"),
        bins=values.get("bins"),
        flux=values.get("flux", "1") == "1",
        view=_view(values),
    )


def _view(values: dict[str, Any]) -> ViewSpec | None:
    asked = _VIEW_OPTIONS & values.keys()
    if not asked:
        return None
    if "bins" in values:
        raise OptionError(
            f"bins: cannot be combined with {', '.join(sorted(asked))} (use bands=log:N)"
        )
    bands: BandSpec | None = values.get("bands")
    resolution = Resolution(values.get("resolution", "fine" if bands else "block"))
    if bands is not None and resolution is not Resolution.FINE:
        raise OptionError("resolution: bands always come from the fine spectrum (dsp.fft_size)")
    smooth: Smoothing | None = values.get("smooth")
    return ViewSpec(
        bands=bands,
        resolution=resolution,
        channels=values.get("channels", Channels()),
        dynamics=DynamicsSpec(
            scale=Scale(values.get("scale", "linear")),
            smooth=smooth,
            auto_gain=values.get("gain") == "auto",
            gate_db=values.get("gate"),
        ),
    )
