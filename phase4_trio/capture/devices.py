"""Input devices as PortAudio (through sounddevice) sees them: listing and selection.

``sounddevice`` is imported lazily, here and only here, so that a machine without the
PortAudio library can still run the synthetic sources; :func:`load_sounddevice` turns the
missing library into a one-line :class:`Phase4Error` that names the Debian package.

PortAudio takes its snapshot of the devices when it is initialised (on ``import
sounddevice``). A device that appears later, or a sound server that restarted, is seen
only after :func:`reinitialize_portaudio`.
"""

from __future__ import annotations

import re
import threading
from types import ModuleType
from typing import Any

import attrs

from ..errors import Phase4Error

NO_PORTAUDIO = (
    "the PortAudio library is not installed ({detail}); install it with "
    "'apt-get install libportaudio2' (Debian/Ubuntu) or use a synthetic source: --source tone:440"
)
NO_INPUT = (
    "no audio input device found; plug in a microphone, start the virtual device "
    "(scripts/virtual-audio start, see docs/capture.md) or use a synthetic source: "
    "--source tone:440"
)

_reinit_lock = threading.Lock()


@attrs.frozen
class DeviceInfo:
    """One input-capable device, as listed by ``phase4 devices``."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    default: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "hostapi": self.hostapi,
            "max_input_channels": self.max_input_channels,
            "default_samplerate": self.default_samplerate,
            "default": self.default,
        }

    def label(self) -> str:
        """``1 'default' (ALSA)``: how messages name a device."""
        return f"{self.index} {self.name!r} ({self.hostapi})"


def load_sounddevice() -> ModuleType:
    """Import sounddevice, or raise a one-line :class:`Phase4Error` when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as error:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise Phase4Error(NO_PORTAUDIO.format(detail=" ".join(str(error).split()))) from None
    module: ModuleType = sd
    return module


def reinitialize_portaudio(sd: ModuleType | None = None) -> None:
    """Terminate and re-initialise PortAudio so it re-scans devices and sound servers.

    Every stream must be closed first: ``Pa_Terminate`` closes whatever is still open. This
    blocks (ALSA probes every card), so call it from a worker thread under Trio. Note that
    sounddevice points fd 2 at /dev/null while PortAudio initialises, to hide ALSA's chatter.
    """
    sd = sd or load_sounddevice()
    with _reinit_lock:
        sd._terminate()
        sd._initialize()


def _default_input_index(sd: ModuleType) -> int:
    try:
        index = sd.default.device[0]
    except Exception:
        return -1
    return index if isinstance(index, int) else -1


def list_input_devices(sd: ModuleType | None = None) -> list[DeviceInfo]:
    """Every device with at least one input channel, in PortAudio's index order."""
    sd = sd or load_sounddevice()
    hostapis = [str(api["name"]) for api in sd.query_hostapis()]
    default = _default_input_index(sd)
    devices = []
    for raw in sd.query_devices():
        channels = int(raw["max_input_channels"])
        if channels <= 0:
            continue
        api = int(raw["hostapi"])
        devices.append(
            DeviceInfo(
                index=int(raw["index"]),
                name=str(raw["name"]),
                hostapi=hostapis[api] if 0 <= api < len(hostapis) else str(api),
                max_input_channels=channels,
                default_samplerate=float(raw["default_samplerate"]),
                default=int(raw["index"]) == default,
            )
        )
    return devices


def _brief(devices: list[DeviceInfo], limit: int = 6) -> str:
    shown = ", ".join(d.label() for d in devices[:limit])
    more = f" and {len(devices) - limit} more" if len(devices) > limit else ""
    return shown + more


def resolve_device(spec: int | str, sd: ModuleType | None = None) -> DeviceInfo:
    """Pick an input device by index, by case-insensitive name substring, or -1 for the default.

    A name that equals one device's name exactly (ignoring case) wins over substring matches;
    otherwise a substring must match exactly one device.
    """
    sd = sd or load_sounddevice()
    devices = list_input_devices(sd)
    if not devices:
        raise Phase4Error(NO_INPUT)
    if isinstance(spec, str) and re.fullmatch(r"-?\d+", spec.strip()):  # not isdigit(): "²"
        spec = int(spec.strip())
    if isinstance(spec, int):
        if spec == -1:
            for device in devices:
                if device.default:
                    return device
            raise Phase4Error(
                "there is no default input device; pick one with --device INDEX or NAME "
                f"(input devices: {_brief(devices)}) or use --source tone:440"
            )
        for device in devices:
            if device.index == spec:
                return device
        raise Phase4Error(
            f"no input device with index {spec}; input devices: {_brief(devices)} "
            "(phase4 devices lists them)"
        )
    wanted = spec.strip().lower()
    if not wanted:
        raise Phase4Error("device name must not be empty (use -1 for the default input)")
    exact = [d for d in devices if d.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in devices if wanted in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise Phase4Error(
            f"no input device matches {spec!r}; input devices: {_brief(devices)} "
            "(phase4 devices lists them)"
        )
    raise Phase4Error(
        f"device {spec!r} is ambiguous, it matches {_brief(matches)}; "
        "use the index or more of the name"
    )
