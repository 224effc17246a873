"""``phase4 devices [--json]``: the input devices PortAudio sees, as a table or JSON."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..capture.devices import NO_INPUT, DeviceInfo, list_input_devices
from ..capture.pulse import Discovery


def devices_command(
    as_json: bool,
    audio: Discovery,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """A missing PortAudio raises :class:`Phase4Error` (exit 2).

    No input device at all is a valid answer, not an error: ``[]`` in JSON, or a hint on
    stderr; the exit code is 0 either way. When the devices come from the virtual device
    (found by itself, see :mod:`phase4_trio.capture.pulse`), the table says so.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    devices = list_input_devices()
    if as_json:
        json.dump([d.to_json() for d in devices], out, indent=2)
        out.write("\n")
        return 0
    if not devices:
        print(f"phase4: {NO_INPUT}", file=err)
        return 0
    print(format_table(devices), file=out)
    if audio.virtual_running:
        print(f"phase4: {audio.describe()}", file=err)
    return 0


def format_table(devices: list[DeviceInfo]) -> str:
    """One row per device, ``*`` marks the default."""
    headers = ("", "index", "name", "host API", "inputs", "default rate")
    rows = [
        (
            "*" if d.default else "",
            str(d.index),
            d.name,
            d.hostapi,
            str(d.max_input_channels),
            f"{d.default_samplerate:g} Hz",
        )
        for d in devices
    ]
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    numeric = {1, 4, 5}
    lines = []
    for row in (headers, *rows):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
