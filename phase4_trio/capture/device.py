"""Capture from a real input device: a sounddevice ``InputStream``, supervised from Trio.

The PortAudio callback runs in PortAudio's own thread and does the least it can: stamp the
time, translate the status flags and hand the block to :meth:`CaptureBridge.push`, which
copies it into a preallocated slot without blocking. No logging, no locks, no exceptions
escape it.

The Trio side (:meth:`DeviceCapture.run`) opens the stream in a worker thread and then
watches it. When the stream dies (device unplugged, sound server killed, a PortAudio error,
or no audio for ``stall_timeout`` seconds) it logs once, closes the stream and reopens it
with exponential backoff, re-initialising PortAudio before every attempt so that a device
or sound server that came back is found again. ``run`` never raises for that: the rest of
the engine keeps running and clients simply see a gap in ``captureTime``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import trio

from .. import metrics as m
from ..config import InputConfig
from ..errors import Phase4Error
from .bridge import INPUT_OVERFLOW, INPUT_UNDERFLOW, CaptureBridge
from .devices import DeviceInfo, load_sounddevice, reinitialize_portaudio, resolve_device
from .state import CaptureState

log = logging.getLogger(__name__)


def open_device(config: InputConfig) -> DeviceCapture:
    """Resolve and check the configured device; user mistakes raise :class:`Phase4Error`.

    Channels beyond what the device has are clamped with a warning (as the original does);
    everything else (rate, format) must be supported as asked, or this fails with one line.
    """
    sd = load_sounddevice()
    device = resolve_device(config.device, sd)
    channels = config.channels
    if channels > device.max_input_channels:
        log.warning(
            "input.channels is %d but device %s has %d input channel(s); using %d",
            channels,
            device.label(),
            device.max_input_channels,
            device.max_input_channels,
        )
        channels = device.max_input_channels
    try:
        sd.check_input_settings(
            device=device.index,
            channels=channels,
            dtype=config.sample_format,
            samplerate=config.sample_rate,
        )
    except Exception as error:  # PortAudioError, or ValueError for a bad combination
        raise Phase4Error(
            f"input device {device.label()} cannot capture {channels} channel(s) of "
            f"{config.sample_format} at {config.sample_rate} Hz: {_one_line(error)} "
            f"(its default rate is {device.default_samplerate:g} Hz; phase4 devices lists devices)"
        ) from None
    return DeviceCapture(config, device, channels, sd)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class DeviceCapture:
    """A :class:`~phase4_trio.capture.CaptureSource` reading a PortAudio input stream.

    Counters for ``/metrics`` and tests: ``callbacks`` (blocks delivered by PortAudio),
    ``restarts`` (successful reopenings after the stream died), ``open_failures`` (failed
    reopening attempts) and ``state``.
    """

    backoff_initial = 0.1
    backoff_max = 2.0
    poll_interval = 0.1
    close_timeout = 2.0
    _PERIODS = 4096

    def __init__(
        self, config: InputConfig, device: DeviceInfo, channels: int, sd: ModuleType
    ) -> None:
        self.config = config
        self.device = device
        self.sample_rate = config.sample_rate
        self.channels = channels
        self.block_size = config.buffer_size
        self.dtype = config.sample_format
        self.latency = "low" if config.low_latency else "high"
        self.description = f"device {device.label()}"
        self.state = CaptureState.IDLE
        self.restarts = 0
        self.open_failures = 0
        self.callbacks = 0
        self.last_error = ""
        # Told (state, reason) when the stream is lost (RECONNECTING) and back (RUNNING).
        self.on_state: Callable[[CaptureState, str], None] | None = None
        # A stream that delivers nothing for this long is taken for dead. PulseAudio's null
        # sink may take up to 2 s to deliver the first block, so never less than 5 s.
        self.stall_timeout = max(5.0, 50 * self.block_size / self.sample_rate)
        self._sd = sd
        # When the device was picked as "the default input", reconnect to whatever is the
        # default then; otherwise to the device with the same name (its index may change).
        self._reconnect_spec: int | str = -1 if config.device == -1 else device.name
        self._stream: Any = None
        # Standby: what the engine wants, told by standby(); the watch loop follows it.
        self._standby_wanted = False
        self._standby_changed = trio.Event()
        # Set while the stream is stopped on purpose, so its finished callback is no loss.
        self._paused = False
        self._last_callback = 0.0
        self._times = np.zeros(self._PERIODS, dtype=np.float64)

    # ------------------------------------------------------------ PortAudio's thread

    def _make_callback(self, bridge: CaptureBridge) -> Any:
        push = bridge.push
        wall = time.time
        mono = time.monotonic
        times = self._times
        size = self._PERIODS

        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            try:
                now = wall()
                flags = 0
                if status:
                    if status.input_overflow:
                        flags |= INPUT_OVERFLOW
                    if status.input_underflow:
                        flags |= INPUT_UNDERFLOW
                tick = mono()
                count = self.callbacks
                times[count % size] = tick
                self.callbacks = count + 1
                self._last_callback = tick
                push(indata, now, flags)
            except Exception:
                pass

        return callback

    # ------------------------------------------------------------ worker threads

    def _open_sync(
        self, bridge: CaptureBridge, device: DeviceInfo, finished: threading.Event
    ) -> Any:
        stream = self._sd.InputStream(
            device=device.index,
            channels=self.channels,
            samplerate=self.sample_rate,
            blocksize=self.block_size,
            dtype=self.dtype,
            latency=self.latency,
            callback=self._make_callback(bridge),
            finished_callback=lambda: None if self._paused else finished.set(),
        )
        try:
            self._last_callback = time.monotonic()
            stream.start()
        except BaseException:
            stream.close(ignore_errors=True)
            raise
        return stream

    def _reopen_sync(self, bridge: CaptureBridge, finished: threading.Event) -> Any:
        reinitialize_portaudio(self._sd)
        device = resolve_device(self._reconnect_spec, self._sd)
        if device.max_input_channels < self.channels:
            raise Phase4Error(
                f"device {device.label()} now has only {device.max_input_channels} input channel(s)"
            )
        stream = self._open_sync(bridge, device, finished)
        self.device = device
        return stream

    @staticmethod
    def _close_sync(stream: Any) -> None:
        try:
            stream.abort(ignore_errors=True)
        finally:
            stream.close(ignore_errors=True)

    # ------------------------------------------------------------ Trio side

    async def run(
        self,
        bridge: CaptureBridge,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Capture until cancelled; reconnects on its own and never raises after starting.

        Raises :class:`Phase4Error` only when the very first open fails.
        """
        finished = threading.Event()
        try:
            try:
                self._stream = await trio.to_thread.run_sync(
                    self._open_sync, bridge, self.device, finished
                )
            except Exception as error:
                raise Phase4Error(
                    f"cannot open input device {self.device.label()}: {_one_line(error)}"
                ) from None
            self.state = CaptureState.RUNNING
            log.info(
                "capturing from %s: %d channel(s), %s, %d Hz, %d frames per block, %s latency",
                self.device.label(),
                self.channels,
                self.dtype,
                self.sample_rate,
                self.block_size,
                self.latency,
            )
            task_status.started()
            while True:
                reason = await self._watch(finished)
                lost_at = time.monotonic()
                self.last_error = reason
                self.state = CaptureState.RECONNECTING
                if self.on_state is not None:
                    self.on_state(self.state, reason)
                log.warning(
                    "capture from %s stopped: %s; reconnecting", self.device.label(), reason
                )
                stream, self._stream = self._stream, None
                await self._close(stream)
                finished = threading.Event()
                await self._reconnect(bridge, finished)
                self.restarts += 1
                self.state = CaptureState.RUNNING
                if self.on_state is not None:
                    self.on_state(self.state, "")
                log.warning(
                    "capture from %s resumed after %.1f s (%d failed attempt(s) so far)",
                    self.device.label(),
                    time.monotonic() - lost_at,
                    self.open_failures,
                )
        finally:
            self.state = CaptureState.STOPPED
            stream, self._stream = self._stream, None
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await self._close(stream)

    def standby(self, on: bool) -> None:
        if on != self._standby_wanted:
            self._standby_wanted = on
            self._standby_changed.set()

    async def _follow_standby(self, stream: Any) -> str | None:
        """Stop or restart the stream as :meth:`standby` asked; the reason if that failed.

        The stream stays open, only stopped: restarting it delivers the first block within
        about two block periods here, where opening a new one on PulseAudio takes 1.5 s.
        (About one restart in six on the virtual device's null sink waits 2 s for its first
        block, the sink's own latency; see docs/capture.md.)
        """
        if self._standby_wanted:
            self._paused = True
            try:
                await trio.to_thread.run_sync(stream.stop)
            except Exception as error:
                self._paused = False
                return f"PortAudio error on stop: {_one_line(error)}"
            self.state = CaptureState.STANDBY
            log.info("capture from %s paused: nothing needs audio", self.device.label())
            return None
        self._last_callback = time.monotonic()
        try:
            await trio.to_thread.run_sync(stream.start)
        except Exception as error:
            return f"cannot restart the stream: {_one_line(error)}"
        finally:
            self._paused = False
        self.state = CaptureState.RUNNING
        log.info("capture from %s resumed", self.device.label())
        return None

    async def _watch(self, finished: threading.Event) -> str:
        """Return, with the reason, once the current stream is dead; meanwhile stop and
        restart it as :meth:`standby` asks (at once, not at the next poll)."""
        stream = self._stream
        while True:
            # in standby there is nothing to poll: only a wish to resume wakes the task
            standing_by = self.state is CaptureState.STANDBY
            with trio.move_on_after(math.inf if standing_by else self.poll_interval):
                await self._standby_changed.wait()
            if self._standby_changed.is_set():
                self._standby_changed = trio.Event()
            if self._standby_wanted != (self.state is CaptureState.STANDBY):
                failed = await self._follow_standby(stream)
                if failed is not None:
                    return failed
            if self.state is CaptureState.STANDBY:
                continue
            if finished.is_set():
                return "the stream finished (device or sound server gone)"
            try:
                active = bool(stream.active)
            except Exception as error:
                return f"PortAudio error: {_one_line(error)}"
            if not active:
                return "the stream is no longer active"
            silent = time.monotonic() - self._last_callback
            if silent > self.stall_timeout:
                return f"no audio from the device for {silent:.1f} s"

    async def _reconnect(self, bridge: CaptureBridge, finished: threading.Event) -> None:
        delay = self.backoff_initial
        while True:
            await trio.sleep(delay)
            try:
                self._stream = await trio.to_thread.run_sync(self._reopen_sync, bridge, finished)
            except Exception as error:
                self.open_failures += 1
                message = _one_line(error)
                if message != self.last_error:
                    log.info("reopening %s failed: %s; retrying", self.device.label(), message)
                    self.last_error = message
                delay = min(delay * 2, self.backoff_max)
            else:
                return

    async def _close(self, stream: Any) -> None:
        """Stop and close a stream in a worker thread, giving up on it after ``close_timeout``."""
        with trio.move_on_after(self.close_timeout) as scope:
            await trio.to_thread.run_sync(self._close_sync, stream, abandon_on_cancel=True)
        if scope.cancelled_caught:
            log.warning(
                "closing the stream of %s took over %.0f s; abandoned it",
                self.device.label(),
                self.close_timeout,
            )

    def metrics(self) -> list[m.Metric]:
        return [
            m.counter("phase4_capture_restarts_total", "Device streams reopened.", self.restarts),
            m.counter(
                "phase4_capture_open_failures_total",
                "Failed attempts to reopen the device.",
                self.open_failures,
            ),
            m.gauge(
                "phase4_capture_reconnecting",
                "1 while the device stream is being reopened.",
                self.state is CaptureState.RECONNECTING,
            ),
        ]

    # ------------------------------------------------------------ measurements

    def callback_periods(self) -> np.ndarray:
        """Seconds between the most recent PortAudio callbacks (up to 4095 of them), by the
        monotonic clock; a reconnection gap shows up as one long period."""
        count = min(self.callbacks, self._PERIODS)
        if count < 2:
            return np.zeros(0)
        start = self.callbacks - count
        index = np.arange(start, self.callbacks) % self._PERIODS
        return np.diff(self._times[index])

    def period_stats(self) -> dict[str, float]:
        """Mean, standard deviation and maximum callback period, and the nominal one, in ms."""
        periods = self.callback_periods() * 1e3
        nominal = 1e3 * self.block_size / self.sample_rate
        if not len(periods):
            return {
                "nominal_ms": nominal,
                "mean_ms": math.nan,
                "stdev_ms": math.nan,
                "max_ms": math.nan,
            }
        return {
            "nominal_ms": nominal,
            "mean_ms": float(periods.mean()),
            "stdev_ms": float(periods.std()),
            "max_ms": float(periods.max()),
        }
