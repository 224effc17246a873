"""What a WebSocket client asks for in its URL query, parsed and checked (sans-I/O).

``ws://host:port/ws?format=f32&fps=30&bins=64``: unknown, repeated or out-of-range parameters
are an :class:`OptionError`, which the server answers with HTTP 400 and one line.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qs

import attrs

FORMATS = ("json", "f32")
MAX_FPS = 1000.0


class OptionError(ValueError):
    """A query parameter the client got wrong; answered with HTTP 400 at the handshake."""


@attrs.frozen
class ClientOptions:
    """What a client asked for in its URL query (``?format=f32&fps=30&bins=64``)."""

    format: str = "json"
    fps: float | None = None
    bins: int | None = None
    flux: bool = True


def parse_options(query: str) -> ClientOptions:
    """Parse and check the query string; unknown or repeated parameters are errors."""
    try:
        fields = parse_qs(
            query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=8
        )
    except ValueError as error:
        raise OptionError(f"malformed query string: {error}") from None
    options: dict[str, object] = {}
    for name, values in fields.items():
        if len(values) != 1:
            raise OptionError(f"{name}: given more than once")
        value = values[0]
        if name == "format":
            if value not in FORMATS:
                raise OptionError(f"format: must be one of {', '.join(FORMATS)}; got {value!r}")
            options["format"] = value
        elif name == "fps":
            try:
                fps = float(value)
            except ValueError:
                raise OptionError(f"fps: expected a number, got {value!r}") from None
            if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
                raise OptionError(f"fps: must be within 0-{MAX_FPS:g}, got {value!r}")
            options["fps"] = fps
        elif name == "bins":
            # isdigit() alone also accepts digits int() refuses ("²")
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 4096:
                raise OptionError(f"bins: expected a whole number 1-4096, got {value!r}")
            options["bins"] = int(value)
        elif name == "flux":
            if value not in ("0", "1"):
                raise OptionError(f"flux: expected 0 or 1, got {value!r}")
            options["flux"] = value == "1"
        else:
            raise OptionError(f"{name!r}: unknown parameter (known: format, fps, bins, flux)")
    return ClientOptions(**options)  # type: ignore[arg-type]
