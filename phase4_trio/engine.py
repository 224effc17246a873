"""The engine: one Trio nursery that owns every task, from capture to the last client.

Lifecycle: ``Engine(config)`` validates and opens what can fail early (source, WAV file,
listening socket), so user mistakes surface as one-line errors before anything runs;
``await engine.run()`` starts the tasks and runs until cancelled; cancellation stops the
source first, then everything else, and the recorder finishes its file under a shield.

Channel map (sizes from ``pipeline`` / ``transport`` config; drawn in docs/architecture.md)::

    source ─push─▶ CaptureBridge ─[capture_queue]─▶ Processor ─route─▶ Router
             └─tap─▶ WavRecorder FIFO (every block)               ├─[client_queue]─▶ ws × N
                                                                  └─[1, latest]───▶ UDP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import metrics as m
from .capture import CaptureBridge, CaptureSource, open_source
from .config import Config
from .dsp import Analyzer
from .level import NO_SIGNAL_DBFS, no_signal
from .pipeline.processor import Processor
from .pipeline.router import Router
from .record import WavRecorder
from .transport.http import HttpApp, load_assets
from .transport.server import WebServer
from .transport.udp import UdpStats, run_udp_sender

log = logging.getLogger(__name__)

STATS_INTERVAL = 0.25
SILENCE_LIMIT = 1.0


class Engine:
    def __init__(self, config: Config, *, paced: bool = True) -> None:
        self.config = config
        self.source: CaptureSource = open_source(config.input, paced=paced)
        self.sample_rate = self.source.sample_rate
        self.channels = self.source.channels
        self.block_size = config.input.buffer_size
        analyzer = (
            Analyzer(self.block_size, self.sample_rate, config.dsp.fft_window)
            if config.dsp.enabled
            else None
        )
        self._analyzer = analyzer
        self.router = Router()
        self.callback_histogram = m.Histogram(m.CALLBACK_BUCKETS)
        self.latency_histogram = m.Histogram(m.LATENCY_BUCKETS)
        self.callback_durations: list[float] = []
        self.keep_callback_durations = False
        self.bridge: CaptureBridge | None = None
        self.processor: Processor | None = None
        self.web: WebServer | None = None
        if config.transport.websocket_enabled:
            app = HttpApp(load_assets(), self.render_metrics, self.health)
            self.web = WebServer(config.transport, self.router, app, self.latency_histogram.observe)
        self._last_audio = -1.0
        self._last_received = 0
        self.udp_stats = UdpStats()
        self.recorder: WavRecorder | None = None
        if config.record.path:
            self.recorder = WavRecorder(
                config.record.path,
                sample_rate=self.sample_rate,
                channels=self.channels,
                sample_format=config.record.format,
                fifo_seconds=config.record.fifo_seconds,
                force=config.record.force,
            )
            self.recorder.check()  # the file itself is created when the recorder starts

    # ------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; ``task_status.started(self)`` once audio is flowing."""
        if self.web is not None:
            await self.web.bind()
        pipeline = self.config.pipeline
        with CaptureBridge(
            block_size=self.block_size,
            channels=self.channels,
            slots=pipeline.ring_slots,
            queue_size=pipeline.capture_queue,
        ) as bridge:
            self.bridge = bridge
            self.processor = Processor(bridge, self._analyzer, self.sample_rate)
            if self.recorder is not None:
                bridge.add_tap(self.recorder)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_named, "processor", self.processor.run, self.router.route)
                    nursery.start_soon(_named, "stats", self._stats_loop)
                    if self.web is not None:
                        await nursery.start(_named, "websocket", self.web.run)
                    if self.config.transport.udp_enabled:
                        await nursery.start(_named, "udp", self._send_udp)
                    await nursery.start(_named, "capture", self._capture, bridge)
                    if self.recorder is not None:
                        await nursery.start(_named, "recorder", self._record)
                    task_status.started(self)
            finally:
                bridge.close()
                bridge.discard_waiting()

    async def _capture(self, bridge: CaptureBridge, *, task_status: trio.TaskStatus[None]) -> None:
        """The source; once it has stopped, for whatever reason, the recorder is told to
        finish, so the file ends with the very last captured block."""
        try:
            await self.source.run(bridge, task_status=task_status)
        finally:
            bridge.close()
            if self.recorder is not None:
                self.recorder.stop()

    async def _record(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Shielded: cancelling the engine must not finish the file while the source still
        captures; :meth:`_capture` stops the recorder once the source is down."""
        assert self.recorder is not None
        with trio.CancelScope(shield=True):
            await self.recorder.run(task_status=task_status)

    async def _send_udp(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Capacity 1, sampled: the sender wants the newest spectrum at each tick, and the
        ones it skips are by design (``skipped``), not losses (``dropped``)."""
        transport = self.config.transport
        with self.router.subscribe("udp", 1, sampled=True) as subscription:
            await run_udp_sender(
                transport.udp_send_address,
                transport.udp_send_interval.seconds,
                subscription,
                self.udp_stats,
                self.block_size,
                task_status=task_status,
            )

    async def _stats_loop(self) -> None:
        assert self.bridge is not None and self.processor is not None
        durations = self.bridge.stats.callback_seconds
        while True:
            while durations:
                value = durations.popleft()
                self.callback_histogram.observe(value)
                if self.keep_callback_durations:
                    self.callback_durations.append(value)
            received = self.processor.stats.received
            if received != self._last_received:
                self._last_received = received
                self._last_audio = time.monotonic()
            await trio.sleep(STATS_INTERVAL)

    # ------------------------------------------------------------ health and metrics

    def health(self) -> tuple[bool, str]:
        state = getattr(self.source, "state", "running")
        if state != "running":
            return False, f"capture {state}"
        if self._last_audio < 0:
            return False, "waiting for audio"
        silent = time.monotonic() - self._last_audio
        if silent > SILENCE_LIMIT:
            return False, f"no audio for {silent:.1f} s"
        # The bridge's ring holds the last ring_slots blocks captured (~1.5 s at the defaults).
        if self.bridge is not None and no_signal(self.bridge._ring):
            return True, f"ok: no signal (audio flowing, but below {NO_SIGNAL_DBFS:g} dBFS)"
        return True, "ok: audio flowing"

    @property
    def urls(self) -> tuple[str, str] | None:
        """The page URL and the WebSocket URL, once bound."""
        if self.web is None:
            return None
        host = self.config.transport.websocket_address.host
        shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(
            host, f"[{host}]" if ":" in host else host
        )
        port = self.web.port
        return (
            f"http://{shown}:{port}/",
            f"ws://{shown}:{port}{self.config.transport.websocket_path}",
        )

    def render_metrics(self) -> str:
        return m.render(self.collect_metrics())

    def collect_metrics(self) -> list[m.Metric]:
        collected: list[m.Metric] = []
        bridge, processor = self.bridge, self.processor
        if bridge is not None:
            s = bridge.stats
            collected += [
                m.counter(
                    "phase4_frames_captured_total", "Blocks delivered by the source.", s.captured
                ),
                m.labelled(
                    "phase4_frames_dropped_total",
                    "counter",
                    "Blocks or spectra lost, by stage.",
                    [
                        ((("stage", "ring"),), s.ring_full),
                        ((("stage", "capture_queue"),), s.queue_full),
                        ((("stage", "shutdown"),), s.late),
                        (
                            (("stage", "processor_error"),),
                            processor.stats.errors if processor else 0,
                        ),
                    ],
                ),
                m.labelled(
                    "phase4_callback_status_total",
                    "counter",
                    "Callback status flags reported by the audio backend.",
                    [
                        ((("flag", "input_overflow"),), s.overflows),
                        ((("flag", "input_underflow"),), s.underflows),
                    ],
                ),
                m.counter(
                    "phase4_capture_tap_errors_total",
                    "Blocks a capture tap (the recorder) failed to take.",
                    s.tap_errors,
                ),
                m.histogram(
                    "phase4_callback_seconds",
                    "Time spent in the capture callback.",
                    self.callback_histogram,
                ),
            ]
        restarts = getattr(self.source, "restarts", None)
        if restarts is not None:
            collected += [
                m.counter("phase4_capture_restarts_total", "Device streams reopened.", restarts),
                m.counter(
                    "phase4_capture_open_failures_total",
                    "Failed attempts to reopen the device.",
                    getattr(self.source, "open_failures", 0),
                ),
                m.gauge(
                    "phase4_capture_reconnecting",
                    "1 while the device stream is being reopened.",
                    getattr(self.source, "state", "") == "reconnecting",
                ),
            ]
        if processor is not None:
            collected.append(
                m.counter(
                    "phase4_spectra_total",
                    "Spectra produced by the processor.",
                    processor.stats.processed,
                )
            )
        collected.append(
            m.labelled(
                "phase4_endpoint_dropped_total",
                "counter",
                "Spectra an endpoint lost because its queue was full.",
                [((("endpoint", s.name),), s.dropped) for s in self.router.subscriptions],
            )
        )
        collected.append(
            m.counter(
                "phase4_endpoints_dropped_total",
                "Spectra lost by all endpoints since start, those gone included.",
                self.router.closed_dropped + sum(s.dropped for s in self.router.subscriptions),
            )
        )
        if self.web is not None:
            w = self.web.stats
            collected += [
                m.gauge(
                    "phase4_clients_connected",
                    "WebSocket clients connected now.",
                    w.clients_connected,
                ),
                m.counter(
                    "phase4_clients_total",
                    "WebSocket clients accepted since start.",
                    w.clients_total,
                ),
                m.counter(
                    "phase4_http_requests_total",
                    "Plain HTTP requests answered (page, assets, metrics, health, errors).",
                    w.http_requests,
                ),
                m.labelled(
                    "phase4_connections_refused_total",
                    "counter",
                    "Connections refused, by reason.",
                    [
                        ((("reason", "origin"),), w.refused_origin),
                        ((("reason", "max_clients"),), w.refused_full),
                        ((("reason", "bad_request"),), w.bad_requests),
                        ((("reason", "handshake_timeout"),), w.handshake_timeouts),
                    ],
                ),
                m.histogram(
                    "phase4_capture_to_send_seconds",
                    "From the capture callback to the message written to a client socket.",
                    self.latency_histogram,
                ),
            ]
        if self.config.transport.udp_enabled:
            u = self.udp_stats
            collected += [
                m.labelled(
                    "phase4_udp_ticks_total",
                    "counter",
                    "UDP send ticks, by outcome (idle: no new spectrum since the last tick).",
                    [
                        ((("outcome", "sent"),), u.sent),
                        ((("outcome", "error"),), u.errors),
                        ((("outcome", "idle"),), u.idle),
                    ],
                ),
                m.counter("phase4_udp_bytes_total", "UDP payload bytes sent.", u.bytes),
            ]
        if self.recorder is not None:
            r = self.recorder.stats
            collected += [
                m.counter(
                    "phase4_record_frames_total",
                    "Frames written to the WAV file.",
                    r.frames_written,
                ),
                m.labelled(
                    "phase4_record_lost_frames_total",
                    "counter",
                    "Captured frames not recorded, by reason.",
                    [
                        ((("reason", "fifo_overflow"),), r.overflows),
                        ((("reason", "after_stop"),), r.late_frames),
                    ],
                ),
                m.counter("phase4_record_errors_total", "WAV write errors.", r.errors),
                m.gauge(
                    "phase4_record_fifo_fill_ratio", "Recorder FIFO fill, 0 to 1.", r.fifo_fill
                ),
            ]
        collected += m.process_metrics()
        return collected


async def _named(
    name: str,
    function: Callable[..., Awaitable[Any]],
    *args: Any,
    task_status: trio.TaskStatus[Any] | None = None,
) -> None:
    """Run a task; if it fails, say which one before the failure takes the engine down."""
    try:
        if task_status is None:
            await function(*args)
        else:
            await function(*args, task_status=task_status)
    except Exception:
        log.error("task %r failed; shutting the engine down", name, exc_info=True)
        raise
