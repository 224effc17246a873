"""``phase4 record OUT.wav``: capture straight to a WAV file, nothing else.

No DSP, no server: source → bridge → recorder tap, so the whole machine serves the file.
On a terminal a status line shows elapsed/remaining recorded time, a peak meter and the
FIFO fill, redrawn every :data:`REDRAW_SECONDS`; log records are written on lines of their
own above it (:mod:`.terminal`). When stdout is not a terminal (a pipe, a log, a test) only
the one-line summary is printed at the end.

Stopping: after ``--seconds`` the recorder stops itself at exactly that many frames; on
SIGINT/SIGTERM the source is stopped first, then the recorder drains and finalises the
header, so the file always ends on the last captured block. Exit 0 when the file holds
everything captured; exit 1 when anything was lost (FIFO overflow, write error), after
saying what on stderr — the file is still a valid WAV up to that point.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from typing import TextIO

import trio

from ..capture import Block, CaptureBridge, CaptureSource, open_source
from ..config import Config
from ..record import WavRecorder
from .terminal import StatusLine, setup_logging

REDRAW_SECONDS = 0.1
METER_WIDTH = 30
METER_FLOOR_DBFS = -60.0


def record_command(config: Config, *, seconds: float | None, stream: TextIO = sys.stdout) -> int:
    """Open the source and the file (user errors raise :class:`Phase4Error`), record, report."""
    status = StatusLine(stream) if stream.isatty() else None
    setup_logging(config.log_level, status)
    source = open_source(config.input)
    recorder = WavRecorder(
        config.record.path,
        sample_rate=source.sample_rate,
        channels=source.channels,
        sample_format=config.record.format,
        fifo_seconds=config.record.fifo_seconds,
        force=config.record.force,
        max_frames=None if seconds is None else round(seconds * source.sample_rate),
    )
    recorder.open()
    trio.run(_record, config, source, recorder, seconds, status)
    stats = recorder.stats
    rate = source.sample_rate
    print(
        f"phase4: recorded {stats.frames_written / rate:.2f} s ({stats.frames_written} frames,"
        f" {rate} Hz, {source.channels} ch, {config.record.format}) to {recorder.path}",
        file=stream,
        flush=True,
    )
    failed = False
    if stats.overflows:
        print(
            f"phase4: {stats.overflows} frames lost: the disk fell behind by more than"
            f" record.fifo_seconds ({config.record.fifo_seconds:g} s)",
            file=sys.stderr,
        )
        failed = True
    if stats.errors:
        print(f"phase4: {stats.error or 'write errors, see the log'}", file=sys.stderr)
        failed = True
    return 1 if failed else 0


async def _record(
    config: Config,
    source: CaptureSource,
    recorder: WavRecorder,
    seconds: float | None,
    status: StatusLine | None,
) -> None:
    # Nothing here listens to the stream: the bridge rests and only feeds its tap.
    send, _receive = trio.open_memory_channel[Block](1)
    bridge = CaptureBridge(
        block_size=config.input.buffer_size,
        channels=source.channels,
        slots=config.pipeline.ring_slots,
        sample_rate=source.sample_rate,
        send=send,
    )
    bridge.add_tap(recorder)
    capture_scope = trio.CancelScope()

    async def recording(task_status: trio.TaskStatus[None]) -> None:
        await recorder.run(task_status=task_status)
        capture_scope.cancel()  # the recorder stopped itself: length reached, or a failure

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(recording)
            with capture_scope:
                async with trio.open_nursery() as capture:
                    capture.start_soon(_cancel_on_signal, signals, capture.cancel_scope)
                    if status is not None:
                        capture.start_soon(_show_progress, recorder, seconds, status)
                    await capture.start(source.run, bridge)
            bridge.close()
            recorder.stop()
    if status is not None:
        status.finish(progress_line(recorder, seconds, final=True))


async def _cancel_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    async for _signum in signals:
        scope.cancel()
        return


async def _show_progress(recorder: WavRecorder, seconds: float | None, status: StatusLine) -> None:
    while True:
        status.show(progress_line(recorder, seconds))
        await trio.sleep(REDRAW_SECONDS)


def progress_line(recorder: WavRecorder, seconds: float | None, *, final: bool = False) -> str:
    """``REC 00:01.2 / 00:03.0 (00:01.8 left)  [#####-----]  peak -6.0 dBFS  rms -9.0 dBFS
    fifo 0%``; the ``final`` line, drawn once recording has stopped, has nothing left."""
    stats = recorder.stats
    elapsed = stats.frames_written / recorder.sample_rate
    timing = _clock(elapsed)
    if seconds is not None:
        timing += f" / {_clock(seconds)}"
        if not final:
            timing += f" ({_clock(max(0.0, seconds - elapsed))} left)"
    clip = "  CLIP" if stats.peak_dbfs >= -0.1 else ""
    return (
        f"REC {timing}  [{meter(stats.peak_dbfs)}]  peak {_db(stats.peak_dbfs)}"
        f"  rms {_db(stats.rms_dbfs)}  fifo {stats.fifo_fill:.0%}{clip}"
    )


def meter(level_dbfs: float, width: int = METER_WIDTH) -> str:
    """A bar from :data:`METER_FLOOR_DBFS` (empty) to 0 dBFS (full)."""
    fraction = 1.0 - level_dbfs / METER_FLOOR_DBFS
    filled = round(min(1.0, max(0.0, fraction)) * width)
    return "#" * filled + "-" * (width - filled)


def _db(value: float) -> str:
    return f"{value:6.1f} dBFS"


def _clock(seconds: float) -> str:
    """``MM:SS.s``; rounded to tenths first, so 59.96 s reads 01:00.0, never 00:60.0."""
    minutes, rest = divmod(round(seconds, 1), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"
