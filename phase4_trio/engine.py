"""The engine: one Trio nursery that owns every task, from capture to the last client.

Lifecycle: ``Engine(config)`` validates and opens what can fail early (source, WAV file,
listening socket), so user mistakes surface as one-line errors before anything runs;
``await engine.run()`` starts the tasks and runs until cancelled; cancellation stops the
source first, then everything else, WebSocket clients get their close frame, and the recorder
finishes its file under a shield.

Channel map (sizes from the ``pipeline`` and ``transport`` config; drawn in
docs/architecture.md)::

    audio thread ─push─▶ CaptureBridge ─token─▶ [capture_queue] ─▶ processor
        └─tap─▶ WavRecorder FIFO (every block)                      │ batches
                                                                     ▼
                            ws client × N ◀─[client_queue]─ router ◀─[router_queue]
                            UDP sender    ◀─[1]──────────────┤
                            OSC, WLED     ◀─[64]─────────────┤
                            NATS          ◀─[publisher's]────┘

The router tells the bridge what its subscribers want (:meth:`Engine._follow_demand`): with
nobody listening the bridge rests and Trio is not woken per block.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from . import metrics as m
from .capture import Block, CaptureBridge, CaptureSource, CaptureState, open_source
from .config import Config, analysis_fft_size
from .dsp import Analyzer
from .dsp.level import NO_SIGNAL_DBFS, no_signal
from .dsp.views import Views
from .errors import Phase4Error
from .pipeline.messages import Batch
from .pipeline.processor import Processor
from .pipeline.router import Demand, Router
from .record import WavRecorder
from .transport.http import HttpApp, load_assets
from .transport.outputs import configured_outputs
from .transport.server import StreamInfo, WebServer
from .transport.udp import UdpStats, run_udp_sender

if TYPE_CHECKING:
    from .transport.nats.publisher import NatsPublisher

log = logging.getLogger(__name__)

STATS_INTERVAL = 0.25
# In standby nothing is captured: the stats need not be looked at as often (a resume sets the
# time of the last audio itself).
STANDBY_STATS_INTERVAL = 2.0
SILENCE_LIMIT = 1.0


class Engine:
    def __init__(self, config: Config, *, paced: bool = True) -> None:
        self.config = config
        self.source: CaptureSource = open_source(config.input, paced=paced)
        self.sample_rate = self.source.sample_rate
        self.channels = self.source.channels
        self.block_size = config.input.buffer_size
        self.fft_size = analysis_fft_size(config)
        analyzer = (
            Analyzer(
                self.block_size,
                self.sample_rate,
                config.dsp.fft_window,
                self.fft_size,
                tempo_range=config.dsp.tempo_range,
            )
            if config.dsp.enabled
            else None
        )
        self._analyzer = analyzer
        self.views = Views()
        # Rated subscribers accept what the bridge delivers on its grid: half a block early.
        self.router = Router(early=0.5 * self.block_size / self.sample_rate, views=self.views)
        self.callback_histogram = m.Histogram(m.CALLBACK_BUCKETS)
        self.latency_histogram = m.Histogram(m.LATENCY_BUCKETS)
        self.callback_durations: list[float] = []
        self.keep_callback_durations = False
        self.bridge: CaptureBridge | None = None
        self.processor: Processor | None = None
        self.web: WebServer | None = None
        if config.transport.websocket_enabled:
            app = HttpApp(load_assets(), self.render_metrics, self.health)
            self.web = WebServer(
                config.transport,
                self.router,
                app,
                self.latency_histogram.observe,
                StreamInfo(self.views, self.sample_rate, self.fft_size, self.channels),
            )
        self._last_audio = -1.0
        self._demand_changed = trio.Event()
        self._standing_by = False
        self.standbys = 0
        self._last_captured = 0
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
        # NATS publishing (docs/scaling.md): a router subscriber with its own task.
        self.nats: NatsPublisher | None = None
        if config.output.nats.enabled:
            from .transport.nats.publisher import (
                NatsPublisher,  # nats-py is imported only when used
            )

            self.nats = NatsPublisher(
                config.output.nats,
                sample_rate=self.sample_rate,
                block_size=self.block_size,
                fft_size=self.block_size,
            )
        # OSC and WLED outputs (docs/protocol.md): router subscribers, one task each.
        self.outputs = configured_outputs(config, self.sample_rate / self.block_size)

    # ------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; ``task_status.started(self)`` once audio is flowing."""
        if self.web is not None:
            await self.web.bind()
        pipeline = self.config.pipeline
        blocks_out, blocks_in = trio.open_memory_channel[Block](pipeline.capture_queue)
        batches_out, batches_in = trio.open_memory_channel[Batch](pipeline.router_queue)
        bridge = CaptureBridge(
            block_size=self.block_size,
            channels=self.channels,
            slots=pipeline.ring_slots,
            sample_rate=self.sample_rate,
            send=blocks_out,
            preroll=self.preroll_blocks,
            max_batch=max(1, pipeline.capture_queue // 2),
        )
        self.bridge = bridge
        self.processor = Processor(bridge, self._analyzer, self.sample_rate)
        if self.recorder is not None:
            bridge.add_tap(self.recorder)
        self.router.on_demand(self._follow_demand)
        standby = self.config.input.standby and self.recorder is None
        try:
            with blocks_out, blocks_in, batches_out, batches_in:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        _named, "processor", self.processor.run, blocks_in, batches_out
                    )
                    nursery.start_soon(_named, "router", self.router.run, batches_in)
                    nursery.start_soon(_named, "stats", self._stats_loop)
                    if self.web is not None:
                        await nursery.start(_named, "websocket", self.web.run)
                    if self.config.transport.udp_enabled:
                        await nursery.start(_named, "udp", self._send_udp)
                    if self.nats is not None:
                        await nursery.start(_named, "nats", self.nats.run, self.router)
                    for output in self.outputs:
                        await nursery.start(_named, output.name, output.run, self.router)
                    await nursery.start(_named, "capture", self._capture, bridge)
                    if standby:
                        nursery.start_soon(_named, "standby", self._standby)
                    if self.recorder is not None:
                        await nursery.start(_named, "recorder", self._record)
                    task_status.started(self)
        finally:
            bridge.close()
            bridge.discard_waiting()

    @property
    def preroll_blocks(self) -> int:
        """Blocks kept while resting: enough to fill the longest analysis window (the fine
        spectrum's), plus one for the first flux."""
        window = self._analyzer.fft_size if self._analyzer is not None else self.block_size
        return math.ceil(window / self.block_size) + 1

    def _follow_demand(self, demand: Demand) -> None:
        """Nobody listens: the bridge rests (no analysis, Trio not woken per block); someone
        does: deliveries about as often as the most eager subscriber wants spectra. A source
        in standby is woken first, and what the bridge kept from before it paused is let go:
        it is not the start of the stream the listener will get."""
        bridge = self.bridge
        assert bridge is not None
        self._demand_changed.set()
        if demand is None:
            bridge.rest()
            return
        if self._standing_by:
            self._standing_by = False
            bridge.drop_preroll()
            self._last_audio = time.monotonic()
            self.source.standby(False)
        bridge.listen(demand)

    async def _standby(self) -> None:
        """Pause the source once nothing has needed audio for ``input.standby_after``
        (:meth:`_follow_demand` wakes it). No recorder runs when this task does."""
        linger = self.config.input.standby_after.seconds
        while True:
            changed = self._demand_changed = trio.Event()
            if self.router.demand is None and not self._standing_by:
                with trio.move_on_after(linger):
                    await changed.wait()
                if not changed.is_set():
                    self._standing_by = True
                    self.source.standby(True)
                    self.standbys += 1
                    continue
            await changed.wait()

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
        """Capacity 1 and the send interval as its rate: the sender wants the newest spectrum
        every interval, and the ones it skips are by design (``skipped``), not losses."""
        transport = self.config.transport
        with self.router.subscribe(
            "udp", 1, fps=1.0 / transport.udp_send_interval.seconds
        ) as subscription:
            await run_udp_sender(
                transport.udp_send_address,
                subscription,
                self.udp_stats,
                self.block_size,
                task_status=task_status,
            )

    async def _stats_loop(self) -> None:
        assert self.bridge is not None
        durations = self.bridge.stats.callback_seconds
        while True:
            while durations:
                value = durations.popleft()
                self.callback_histogram.observe(value)
                if self.keep_callback_durations:
                    self.callback_durations.append(value)
            captured = self.bridge.stats.captured
            if captured != self._last_captured:
                self._last_captured = captured
                self._last_audio = time.monotonic()
            await trio.sleep(STANDBY_STATS_INTERVAL if self._standing_by else STATS_INTERVAL)

    # ------------------------------------------------------------ host events

    def observe(
        self, on_client: Callable[[bool, int], None], on_device: Callable[[bool, str], None]
    ) -> None:
        """Host mode (``phase4 run --events``): be told as WebSocket clients come and go,
        ``(connected, count)``, and as the capture device is lost and back, ``(lost, reason)``."""
        from .capture.device import DeviceCapture

        if self.web is not None:
            self.web.on_client = on_client
        if isinstance(self.source, DeviceCapture):
            self.source.on_state = lambda state, reason: on_device(
                state is not CaptureState.RUNNING, reason
            )

    # ------------------------------------------------------------ health and metrics

    def health(self) -> tuple[bool, str]:
        state = self.source.state
        if self._standing_by:
            return True, "ok: standby (capture paused until a client connects)"
        if state is not CaptureState.RUNNING:
            return False, f"capture {state.value}"
        if self._last_audio < 0:
            return False, "waiting for audio"
        silent = time.monotonic() - self._last_audio
        if silent > SILENCE_LIMIT:
            return False, f"no audio for {silent:.1f} s"
        # The bridge's ring holds the last ring_slots blocks captured (~1.5 s at the defaults).
        if self.bridge is not None and no_signal(self.bridge.recent):
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
        """Each stage's own counters; families a stage shares (drops by stage) are merged
        when rendered."""
        collected: list[m.Metric] = []
        if self.bridge is not None:
            collected += self.bridge.stats.metrics()
            collected.append(
                m.histogram(
                    "phase4_callback_seconds",
                    "Time spent in the capture callback.",
                    self.callback_histogram,
                )
            )
        collected += self.source.metrics()
        collected += [
            m.gauge(
                "phase4_capture_standby",
                "1 while capture is paused because nothing needs audio.",
                self._standing_by,
            ),
            m.counter(
                "phase4_capture_standbys_total",
                "Times capture paused because nothing needed audio.",
                self.standbys,
            ),
        ]
        if self.processor is not None:
            collected += self.processor.stats.metrics()
        collected += self.router.stats.metrics(self.router.subscriptions)
        if self.web is not None:
            collected += self.web.stats.metrics()
            collected.append(
                m.histogram(
                    "phase4_capture_to_send_seconds",
                    "From the capture callback to the message written to a client socket.",
                    self.latency_histogram,
                )
            )
        if self.config.transport.udp_enabled:
            collected += self.udp_stats.metrics()
        for output in self.outputs:
            collected += output.metrics()
        if self.recorder is not None:
            collected += self.recorder.stats.metrics()
        if self.nats is not None:
            collected += self.nats.metrics()
        collected += m.process_metrics()
        return collected


async def _named(
    name: str,
    function: Callable[..., Awaitable[Any]],
    *args: Any,
    task_status: trio.TaskStatus[Any] | None = None,
) -> None:
    """Run a task; if it fails, say which one before the failure takes the engine down.

    A user's mistake found by a task as it starts (an unresolvable UDP host) is the CLI's to
    report, as one line: no traceback for it here."""
    try:
        if task_status is None:
            await function(*args)
        else:
            await function(*args, task_status=task_status)
    except Phase4Error:
        raise
    except Exception:
        log.error("task %r failed; shutting the engine down", name, exc_info=True)
        raise
