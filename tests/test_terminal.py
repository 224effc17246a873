"""The record command's status line and the log records around it, as a terminal shows them;
and the real ``phase4 record`` on a pseudo-terminal."""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from phase4_trio.commands.terminal import StatusLine, setup_logging

PHASE4 = [sys.executable, "-m", "phase4_trio"]


def screen(text: str) -> list[str]:
    """What a terminal shows for ``text``: CR returns to column 0, ESC[K erases to the end of
    the line, LF starts a new line (as the pty's onlcr turns it into CR LF)."""
    lines = [""]
    column = 0
    i = 0
    while i < len(text):
        if text.startswith("\x1b[K", i):
            lines[-1] = lines[-1][:column]
            i += 3
            continue
        char = text[i]
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("")
            column = 0
        else:
            line = lines[-1]
            lines[-1] = line[:column] + char + line[column + 1 :]
            column += 1
        i += 1
    return lines


class Terminal(io.StringIO):
    """stdout and stderr both going to one terminal, as on a console."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    yield Terminal()
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def test_a_log_record_gets_a_line_of_its_own_and_the_meter_comes_back(
    terminal: Terminal,
) -> None:
    status = StatusLine(terminal)
    setup_logging("info", status, terminal)
    log = logging.getLogger("phase4_trio.test")
    status.show("REC 00:01.0 / 00:03.0 (00:02.0 left)  [#####]")
    log.warning("the disk is slow")
    status.show("REC 00:01.1 / 00:03.0 (00:01.9 left)  [######]")
    status.finish("REC 00:03.0 / 00:03.0  [######]")
    shown = screen(terminal.getvalue())
    assert len(shown) == 3, shown
    assert re.fullmatch(r"\S+ \S+ WARNING phase4_trio.test: the disk is slow", shown[0]), shown
    assert shown[1] == "REC 00:03.0 / 00:03.0  [######]"
    assert shown[2] == ""


def test_records_from_another_thread_never_land_inside_the_meter(terminal: Terminal) -> None:
    status = StatusLine(terminal)
    setup_logging("info", status, terminal)
    log = logging.getLogger("phase4_trio.test")

    def chatter() -> None:
        for i in range(200):
            log.error("writer thread says %d", i)

    thread = threading.Thread(target=chatter)
    thread.start()
    while thread.is_alive():
        status.show("REC meter")
    thread.join()
    status.finish("REC done")
    shown = screen(terminal.getvalue())
    records = [line for line in shown if "writer thread says" in line]
    assert len(records) == 200
    assert all(line.split(" ", 2)[2].startswith("ERROR") for line in records), records[:3]
    assert all("REC" not in line for line in records)
    assert shown[-2:] == ["REC done", ""]


def test_without_a_status_line_logging_is_plain(terminal: Terminal) -> None:
    setup_logging("warning", None, terminal)
    logging.getLogger("phase4_trio.test").info("not shown")
    logging.getLogger("phase4_trio.test").warning("shown")
    assert terminal.getvalue().endswith("WARNING phase4_trio.test: shown\n")
    assert "not shown" not in terminal.getvalue()


def test_record_on_a_terminal_ends_with_an_honest_meter_line(tmp_path: Path) -> None:
    """The real command on a pseudo-terminal: live meter lines, then one final line with the
    whole length and no time left (it once read ``(-00:00.0)``), then the summary."""
    controller, child = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    process = subprocess.Popen(
        [*PHASE4, "record", str(tmp_path / "t.wav"), "--source", "tone:440", "--seconds", "0.5"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=environ,
    )
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=30) == 0
    text = output.decode()
    assert "left)" in text  # the live meter ran
    assert "(-" not in text
    shown = [line for line in screen(text.replace("\r\n", "\n")) if line]
    assert len(shown) == 2, shown
    assert re.fullmatch(r"REC 00:00\.5 / 00:00\.5  \[[#-]{30}\]  peak +-\d+\.\d dBFS .*", shown[0])
    assert shown[1].startswith("phase4: recorded 0.50 s (22050 frames, 44100 Hz")
