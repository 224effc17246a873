"""Finding the virtual device's PulseAudio server, against real Unix sockets in a temp dir."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from phase4_trio.capture.pulse import Found, answers, discover, virtual_env


def serve(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` (what a running server looks like from outside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    return server


@pytest.fixture
def dirs() -> Iterator[dict[str, Path]]:
    """Short paths: a Unix socket's path must fit in 108 bytes, pytest's tmp_path may not."""
    with tempfile.TemporaryDirectory(prefix="p4-") as top:
        yield {"virtual": Path(top) / "v", "session": Path(top) / "s"}


def environ(dirs: dict[str, Path], **extra: str) -> dict[str, str]:
    paths = {"VIRTUAL_AUDIO_DIR": str(dirs["virtual"]), "XDG_RUNTIME_DIR": str(dirs["session"])}
    return paths | extra


def test_a_running_virtual_device_is_used_when_nothing_else_is_set(
    dirs: dict[str, Path],
) -> None:
    with serve(dirs["virtual"] / "pulse" / "native"):
        found = discover(environ(dirs))
    assert found.found is Found.VIRTUAL
    assert found.virtual_running
    assert found.env == {
        "XDG_RUNTIME_DIR": str(dirs["virtual"]),
        "PULSE_SERVER": f"unix:{dirs['virtual']}/pulse/native",
        "PULSE_CLIENTCONFIG": f"{dirs['virtual']}/client.conf",
    }
    assert virtual_env(environ(dirs)) is None  # the server has gone with the with-block
    assert "PULSE_SERVER=unix:" in found.describe()
    assert "paplay -d vsink" in found.describe()


def test_an_explicit_pulse_server_wins(dirs: dict[str, Path]) -> None:
    with serve(dirs["virtual"] / "pulse" / "native"):
        found = discover(environ(dirs, PULSE_SERVER="unix:/somewhere/else"))
    assert (found.found, found.env) == (Found.CONFIGURED, {})


def test_the_login_sessions_own_server_wins(dirs: dict[str, Path]) -> None:
    with serve(dirs["virtual"] / "pulse" / "native"), serve(dirs["session"] / "pulse" / "native"):
        found = discover(environ(dirs))
    assert (found.found, found.env) == (Found.SESSION, {})


def test_a_stale_socket_is_not_a_server(dirs: dict[str, Path]) -> None:
    path = dirs["virtual"] / "pulse" / "native"
    serve(path).close()  # the file stays, nobody listens: a killed server's leftover
    assert path.is_socket()
    assert not answers(path)
    found = discover(environ(dirs))
    assert (found.found, found.env) == (Found.NOTHING, {})


def test_nothing_there_is_nothing_found(dirs: dict[str, Path]) -> None:
    assert discover(environ(dirs)).found is Found.NOTHING
    assert discover({}).runtime_dir == Path("/tmp/phase4-pulse")
