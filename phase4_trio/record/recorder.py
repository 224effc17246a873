"""The WAV recorder: every captured block, to disk, without ever slowing the capture.

It is a :class:`~phase4_trio.capture.bridge.CaptureTap`: the bridge calls :meth:`WavRecorder.write`
in the capture thread for every block, before anything that could drop it, so the file has
every block even when the visualization path is dropping. ``write`` only copies into a
preallocated :class:`~phase4_trio.record.fifo.FrameFifo`; a writer thread drains the FIFO
to disk every :data:`POLL_SECONDS`. Disk latency therefore shows up as FIFO fill, and only
a stall longer than the FIFO (``record.fifo_seconds``) loses audio — counted in
``overflows``, never silent.

The file's format (``pcm16`` or ``float32``, docs/recording.md) is :mod:`phase4_trio.wav`'s.
The RIFF and data sizes are rewritten every :data:`HEADER_UPDATE_SECONDS` (a crash leaves a
file that plays up to the last update), after a write error (the file is cut back to the last
whole frame and stays valid), and when the recorder stops.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import time
from pathlib import Path

import attrs
import numpy as np
import trio

from .. import metrics as m
from .. import wav
from ..config import RecordFormat
from ..dsp.level import dbfs
from ..errors import Phase4Error
from ..samples import FloatArray
from .fifo import FrameFifo

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
HEADER_UPDATE_SECONDS = 1.0
JOIN_TIMEOUT = 30.0


@attrs.frozen
class RecorderStats:
    """A snapshot. Levels are of the audio drained in the writer's latest pass (about
    :data:`POLL_SECONDS`), all channels together; RMS is plain (a full-scale sine reads -3 dBFS)."""

    frames_written: int
    blocks_received: int
    overflows: int
    late_frames: int
    errors: int
    peak_dbfs: float
    rms_dbfs: float
    fifo_fill: float
    error: str

    def metrics(self) -> list[m.Metric]:
        return [
            m.counter(
                "phase4_record_frames_total", "Frames written to the WAV file.", self.frames_written
            ),
            m.labelled(
                "phase4_record_lost_frames_total",
                "counter",
                "Captured frames not recorded, by reason.",
                [
                    ((("reason", "fifo_overflow"),), self.overflows),
                    ((("reason", "after_stop"),), self.late_frames),
                ],
            ),
            m.counter("phase4_record_errors_total", "WAV write errors.", self.errors),
            m.gauge("phase4_record_fifo_fill_ratio", "Recorder FIFO fill, 0 to 1.", self.fifo_fill),
        ]


class WavRecorder:
    """Records every block the bridge captures to one WAV file.

    Call :meth:`open` early (it is where user mistakes surface as :class:`Phase4Error`),
    add the recorder as a bridge tap and run :meth:`run` in the nursery. ``run`` returns by
    itself once the recorder has stopped writing — ``max_frames`` reached, or a write
    failed (the engine goes on; the error is in :attr:`stats`) — and otherwise runs until
    cancelled. Either way it drains the FIFO, finalises the header and closes the file
    before returning, shielded from cancellation. Cancel it after the source has stopped to
    keep the last blocks; blocks offered once the recorder has stopped taking them are
    counted in ``late_frames``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int,
        channels: int,
        sample_format: RecordFormat,
        fifo_seconds: float,
        force: bool = False,
        max_frames: int | None = None,
    ) -> None:
        if sample_format not in wav.BITS:
            raise ValueError(f"sample format must be pcm16 or float32, got {sample_format!r}")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_format: RecordFormat = sample_format
        self.force = force
        self._fifo = FrameFifo(seconds=fifo_seconds, sample_rate=sample_rate, channels=channels)
        self._frame_bytes = wav.frame_bytes(sample_format, channels)
        self._header_size = len(wav.header(sample_format, channels, sample_rate, 0))
        self._wav_limit = (wav.SIZE_LIMIT - self._header_size) // self._frame_bytes
        self._requested = max_frames
        self._max_frames = (
            self._wav_limit if max_frames is None else min(max_frames, self._wav_limit)
        )
        self._file: io.FileIO | None = None
        self._frames = 0
        self._writing = True
        self._stopped = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._errors = 0
        self._error = ""
        self._peak = 0.0
        self._rms = 0.0

    # ------------------------------------------------------------ Trio side

    def check(self) -> None:
        """Raise the user errors :meth:`open` would, without creating anything; lets an owner
        refuse a bad path before it starts other work."""
        if self.path.is_dir():
            raise Phase4Error(f"{self.path}: is a directory, not a file name")
        if not self.force and self.path.exists():
            raise self._exists_error()
        if not self.path.parent.is_dir():
            raise Phase4Error(f"{self.path}: cannot create (no directory {self.path.parent})")

    def _exists_error(self) -> Phase4Error:
        return Phase4Error(
            f"{self.path}: already exists; use --force (record.force: true) to overwrite it"
        )

    def open(self) -> None:
        """Create the file and write an empty header; refuse to overwrite unless ``force``."""
        self.check()
        try:
            handle = open(self.path, "wb" if self.force else "xb", buffering=0)  # noqa: SIM115
        except FileExistsError:  # created since check(): still not ours to overwrite
            raise self._exists_error() from None
        except OSError as error:
            raise Phase4Error(f"{self.path}: cannot create ({error.strerror or error})") from None
        try:
            handle.write(self._header())
        except OSError as error:
            handle.close()
            if not self.force:  # only a file this call created, never an existing path
                self.path.unlink(missing_ok=True)
            raise Phase4Error(f"{self.path}: cannot write ({error.strerror or error})") from None
        self._file = handle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write until stopped or cancelled, then finish the file; opens the file if needed."""
        if self._file is None:
            self.open()
        self._token = trio.lowlevel.current_trio_token()
        stop = threading.Event()
        thread = threading.Thread(
            target=self._writer, args=(stop,), name="phase4-recorder", daemon=True
        )
        thread.start()
        task_status.started()
        try:
            await self._stopped.wait()
        finally:
            stop.set()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(thread.join, JOIN_TIMEOUT)
            if thread.is_alive():
                log.error(
                    "%s: still writing after %.0f s; its header may not count the last frames",
                    self.path,
                    JOIN_TIMEOUT,
                )

    def stop(self) -> None:
        """End :meth:`run` as cancellation would: drain, finalise, close. Lets an owner run
        the recorder shielded and stop it only after the source has stopped, so the file
        ends with the very last captured block."""
        self._stopped.set()

    @property
    def complete(self) -> bool:
        """``max_frames`` were written."""
        return self._requested is not None and self._frames >= self._requested

    @property
    def stats(self) -> RecorderStats:
        fifo = self._fifo.stats
        return RecorderStats(
            frames_written=self._frames,
            blocks_received=fifo.accepted_blocks,
            overflows=fifo.overflow_frames,
            late_frames=fifo.late_frames + fifo.rejected_frames,
            errors=self._errors,
            peak_dbfs=dbfs(self._peak),
            rms_dbfs=dbfs(self._rms),
            fifo_fill=self._fifo.pending() / self._fifo.capacity,
            error=self._error,
        )

    # ------------------------------------------------------------ capture thread

    def write(self, block: FloatArray) -> None:
        """The bridge's tap: copy the block into the FIFO; never blocks, never raises."""
        self._fifo.write(block)

    # ------------------------------------------------------------ writer thread

    def _writer(self, stop: threading.Event) -> None:
        next_header = time.monotonic() + HEADER_UPDATE_SECONDS
        try:
            while True:
                stopping = stop.wait(POLL_SECONDS)
                if stopping:
                    self._fifo.close()
                self._drain()
                if self._writing and time.monotonic() >= next_header:
                    next_header += HEADER_UPDATE_SECONDS
                    self._rewrite_header()
                if stopping:
                    return
        except Exception as error:
            log.exception("%s: recorder failed", self.path)
            self._stop_writing(f"recorder failed ({error!r})")
        finally:
            self._finish()

    def _drain(self) -> None:
        if not self._writing:
            return
        peak = 0.0
        square_sum = 0.0
        count = 0
        for view in self._fifo.readable():
            chunk = view[: self._max_frames - self._frames]
            if len(chunk):
                self._write(chunk)
                if not self._writing:
                    return
                self._fifo.consume(len(chunk))
                peak = max(peak, float(np.max(np.abs(chunk))))
                square_sum += float(np.dot(chunk.ravel(), chunk.ravel()))
                count += chunk.size
            if self._frames >= self._max_frames:
                if self.complete:
                    self._stop_writing()
                else:
                    self._stop_writing(f"reached the {wav.SIZE_LIMIT // 2**20} MiB limit of WAV")
                break
        if count:
            self._peak = peak
            self._rms = math.sqrt(square_sum / count)

    def _write(self, frames: FloatArray) -> None:
        """Append whole frames; a failure stops the recording with the file kept valid."""
        assert self._file is not None
        payload = wav.encode(frames, self.sample_format)
        done = 0
        try:
            while done < len(payload):
                done += self._file.write(payload[done:])
        except OSError as error:
            self._frames += done // self._frame_bytes
            self._stop_writing(f"write failed ({error.strerror or error})")
            return
        self._frames += len(frames)

    def _stop_writing(self, failure: str | None = None) -> None:
        """Take no more blocks and tell the Trio side; a failure is counted, logged loudly,
        and the file cut back to its last whole frame with a header that says so."""
        self._writing = False
        self._fifo.close()
        if failure is not None:
            self._errors += 1
            seconds = self._frames / self.sample_rate
            self._error = (
                f"{self.path}: {failure}; recording stopped, file valid up to {seconds:.2f} s"
            )
            log.error("%s", self._error)
            if self._file is not None:
                # Drop a partly written frame; if even this fails, the header still counts
                # only whole frames and readers ignore bytes past the data chunk.
                with contextlib.suppress(OSError):
                    self._file.truncate(self._header_size + self._frames * self._frame_bytes)
        if self._file is not None:
            self._rewrite_header()
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._stopped.set)

    def _rewrite_header(self) -> None:
        assert self._file is not None
        try:
            self._file.seek(0)
            self._file.write(self._header())
            self._file.seek(self._header_size + self._frames * self._frame_bytes)
        except OSError as error:
            self._errors += 1
            log.error("%s: cannot update the WAV header (%s)", self.path, error.strerror or error)

    def _finish(self) -> None:
        if self._file is None:
            return
        self._rewrite_header()
        try:
            self._file.close()
        except OSError as error:
            self._errors += 1
            log.error("%s: closing failed (%s)", self.path, error.strerror or error)
        self._file = None

    def _header(self) -> bytes:
        return wav.header(self.sample_format, self.channels, self.sample_rate, self._frames)
