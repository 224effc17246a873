"""Finding the virtual audio device (``scripts/virtual-audio``) without being told where it is.

The script runs a private PulseAudio server whose socket lives in its runtime directory
(``$VIRTUAL_AUDIO_DIR``, default ``/tmp/phase4-pulse``). PortAudio reaches PulseAudio
through ALSA's pulse plugin, which only looks where ``PULSE_SERVER`` (or the login
session's runtime directory) points; so after ``scripts/virtual-audio start`` a plain
``phase4 devices`` used to see nothing. :func:`discover` decides, before PortAudio is
initialised, whether this process should use the virtual server: only when nothing else was
chosen — ``PULSE_SERVER`` is unset and the session has no sound server of its own — and the
virtual server answers on its socket.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Mapping
from pathlib import Path

import attrs

DEFAULT_DIR = "/tmp/phase4-pulse"


class Found(enum.Enum):
    CONFIGURED = "PULSE_SERVER is set"
    SESSION = "the login session has its own sound server"
    VIRTUAL = "the virtual device answers"
    NOTHING = "no sound server found"


@attrs.frozen
class Discovery:
    found: Found
    runtime_dir: Path
    env: dict[str, str] = attrs.field(factory=dict)  # what to add to the environment

    @property
    def virtual_running(self) -> bool:
        return self.found is Found.VIRTUAL

    def describe(self) -> str:
        """One line for a person: where the sound comes from and how to play into it."""
        server = self.env.get("PULSE_SERVER", "")
        return (
            f"using the virtual device of scripts/virtual-audio ({self.runtime_dir}); "
            f"play sound into it with: PULSE_SERVER={server} paplay -d vsink FILE.wav"
        )


def runtime_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("VIRTUAL_AUDIO_DIR") or DEFAULT_DIR)


def answers(path: Path) -> bool:
    """Whether a server accepts connections on this Unix socket (a stale socket file does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def client_env(directory: Path) -> dict[str, str]:
    """What a PulseAudio client needs to reach the server whose runtime directory this is
    (what ``scripts/virtual-audio env`` prints)."""
    return {
        "XDG_RUNTIME_DIR": str(directory),
        "PULSE_SERVER": f"unix:{directory / 'pulse' / 'native'}",
        "PULSE_CLIENTCONFIG": str(directory / "client.conf"),
    }


def virtual_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """:func:`client_env` of the virtual device when its server answers, else None."""
    directory = runtime_dir(environ)
    server = directory / "pulse" / "native"
    return client_env(directory) if server.is_socket() and answers(server) else None


def discover(environ: Mapping[str, str]) -> Discovery:
    """What this process should do about PulseAudio (see the module docstring)."""
    directory = runtime_dir(environ)
    if environ.get("PULSE_SERVER"):
        return Discovery(Found.CONFIGURED, directory)
    session_dir = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    session = Path(session_dir) / "pulse" / "native"
    if session.is_socket() and answers(session):
        return Discovery(Found.SESSION, directory)
    env = virtual_env(environ)
    if env is None:
        return Discovery(Found.NOTHING, directory)
    return Discovery(Found.VIRTUAL, directory, env)
