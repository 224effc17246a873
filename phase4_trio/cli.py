"""The ``phase4`` command line: the parser, ``phase4 run``, and one line per user error.

Every error a user can cause ends as one line on stderr, ``phase4: what is wrong``, and exit
status 2; a failure of the engine itself exits 1 after logging which task failed. Library
code never prints: ``run`` is here, the other commands are in :mod:`phase4_trio.commands`.
The console script enters through :mod:`phase4_trio._entry`, which takes over SIGTERM first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import trio
import yaml

from . import __version__
from .capture import pulse
from .config import Config, DeviceSource, load_config
from .errors import Phase4Error
from .events import FORMATS, HostEvents, error, ready_from, shutdown

log = logging.getLogger("phase4_trio")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, as every other user error, and
    it points at the help of the command that was mistyped."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"phase4: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        """Unknown flags are reported by the subcommand they were given to."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self._command_parser(parsed)
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self
        for name in ("command", "config_command"):
            subparsers = next(
                (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
            )
            chosen = getattr(parsed, name, None)
            if subparsers is None or chosen not in subparsers.choices:
                break
            parser = subparsers.choices[chosen]
        return parser


def _scalar(text: str) -> Any:
    """Flag values are parsed like env values: YAML scalars, so errors name the config key."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Map the ``run``/``record`` flags onto the config tree."""
    overrides: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        overrides.setdefault(section, {})[key] = value

    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    if getattr(args, "source", None) is not None:
        put("input", "source", args.source)
    if getattr(args, "device", None) is not None:
        put("input", "device", _scalar(args.device))
    if getattr(args, "sample_rate", None) is not None:
        put("input", "sample_rate", _scalar(args.sample_rate))
    if getattr(args, "buffer_size", None) is not None:
        put("input", "buffer_size", _scalar(args.buffer_size))
    if getattr(args, "fft_size", None) is not None:
        put("dsp", "fft_size", _scalar(args.fft_size))
    if getattr(args, "ws", None) is not None:
        put("transport", "websocket_address", args.ws)
        put("transport", "websocket_enabled", True)
    if getattr(args, "udp", None) is not None:
        put("transport", "udp_send_address", args.udp)
        put("transport", "udp_enabled", True)
    servers = getattr(args, "publish", None) or getattr(args, "nats", None)
    if servers is not None:
        overrides.setdefault("output", {}).setdefault("nats", {})["servers"] = servers
    if getattr(args, "osc", None) is not None:
        overrides.setdefault("output", {}).setdefault("osc", {})["targets"] = args.osc
    if getattr(args, "wled", None) is not None:
        overrides.setdefault("output", {}).setdefault("wled", {})["targets"] = args.wled
    if getattr(args, "record", None) is not None:
        put("record", "path", args.record)
    if getattr(args, "format", None) is not None:
        put("record", "format", args.format)
    if getattr(args, "force", False):
        put("record", "force", True)
    return overrides


def load(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None), overrides=flag_overrides(args))


# ------------------------------------------------------------------ phase4 run


def cmd_run(args: argparse.Namespace) -> int:
    from .commands.terminal import setup_logging
    from .engine import Engine

    config = load(args)
    setup_logging(config.log_level)
    engine = Engine(config)
    if args.audio.virtual_running and isinstance(config.input.source, DeviceSource):
        log.info("%s", args.audio.describe())
    events: HostEvents = args.host_events
    if events.enabled or args.stop_on_stdin_close:
        trio.run(_run_until_signal, engine, events, args.stop_on_stdin_close)
    else:
        trio.run(_run_until_signal, engine)
    return 0


async def _run_until_signal(
    engine: Any, events: HostEvents | None = None, stop_on_stdin_close: bool = False
) -> None:
    """Run until a signal (or, with ``stop_on_stdin_close``, the end of stdin); announce the
    page on stdout, or with host ``events`` the ``ready`` event."""
    events = events or HostEvents()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope, events)
            if stop_on_stdin_close:
                nursery.start_soon(_cancel_on_stdin_close, nursery.cancel_scope, events)
            if events.enabled:
                engine.observe(events.client, events.device)
            await nursery.start(engine.run)
            if events.enabled:
                events.emit(ready_from(engine))
            else:
                for line in _started_lines(engine):
                    print(f"phase4: {line}", flush=True)
    log.info("stopped")


def _started_lines(engine: Any) -> list[str]:
    """What a person needs once the engine runs: where the page is, and how to stop."""
    from .transport import lan

    urls = engine.urls
    source = engine.source.description
    if urls is None:
        return [f"running, source {source} (WebSocket disabled); Ctrl-C stops"]
    lines = [f"page {urls[0]}  websocket {urls[1]}  source {source}  (Ctrl-C stops)"]
    if engine.config.transport.websocket_address.host in lan.ALL_INTERFACES:
        others = lan.page_urls(lan.interface_addresses(), engine.web.port)
        if others:
            lines.append(
                f"listening on every interface: from another machine open {' or '.join(others)}"
                f" (its firewall and this one's must let TCP port {engine.web.port} through)"
            )
        else:
            lines.append("listening on every interface, but this machine has no network address")
    return lines


async def _cancel_on_signal(
    signals: Any, scope: trio.CancelScope, events: HostEvents | None = None
) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        log.info("received %s, shutting down", name)
        if events is not None:
            events.stop_reason = f"signal {name}"
        scope.cancel()
        return


async def _cancel_on_stdin_close(scope: trio.CancelScope, events: HostEvents) -> None:
    """Stop once stdin reaches its end: the app that started the engine (and holds the other
    end of the pipe) has gone. What arrives on stdin is read and ignored. A worker thread
    does the reading, so stdin's file (maybe a terminal) is never switched to non-blocking."""
    while True:
        try:
            data = await trio.to_thread.run_sync(os.read, 0, 65536, abandon_on_cancel=True)
        except OSError:
            data = b""
        if not data:
            break
    log.info("stdin closed, shutting down")
    events.stop_reason = "stdin closed"
    scope.cancel()


def cmd_relay(args: argparse.Namespace) -> int:
    from .commands.terminal import setup_logging
    from .relay import Relay

    config = load(args)
    setup_logging(config.log_level)
    relay = Relay(config, args.engine or [])
    trio.run(_relay_until_signal, relay)
    return 0


async def _relay_until_signal(relay: Any) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope)
            await nursery.start(relay.run)
            page, websocket = relay.urls
            mounted = ", ".join(f"{feed.engine_id} at /{feed.engine_id}/" for feed in relay.feeds)
            print(
                f"phase4: relay page {page}  websocket {websocket}  engines {mounted}", flush=True
            )
    log.info("stopped")


# ------------------------------------------------------------------ the other commands


def cmd_record(args: argparse.Namespace) -> int:
    from .commands.record import record_command

    return record_command(load(args), seconds=args.seconds)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def cmd_config_show(args: argparse.Namespace) -> int:
    from .commands import config

    return config.show(load(args))


def cmd_config_validate(args: argparse.Namespace) -> int:
    from .commands import config

    return config.validate(args.file)


def cmd_devices(args: argparse.Namespace) -> int:
    from .commands.devices import devices_command

    return devices_command(args.json, args.audio)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.command import bench_command

    return bench_command(args)


# ------------------------------------------------------------------ parser


def _add_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", metavar="S", help="device (default), tone:HZ[:AMP], noise or wav:PATH"
    )
    parser.add_argument(
        "--device",
        metavar="D",
        help="input device index or name substring (see phase4 devices); -1 = default",
    )


def _add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="F", help="YAML config file (see config/default.yaml)")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="phase4",
        description="Real-time audio analysis: capture, spectrum, tempo, streamed to browsers.",
        epilog="Start with: phase4 run --source tone:440 (then open the page it prints).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"phase4 {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    run = commands.add_parser("run", help="run the engine until Ctrl-C (SIGINT) or SIGTERM")
    _add_config_flag(run)
    _add_source_flags(run)
    run.add_argument("--sample-rate", metavar="N", help="samples per second (default 44100)")
    run.add_argument(
        "--buffer-size", metavar="N", help="samples per block, a power of two (default 256)"
    )
    run.add_argument(
        "--fft-size", metavar="N", help="points of the fine spectrum, auto or a power of two"
    )
    run.add_argument(
        "--ws",
        metavar="HOST:PORT",
        help="page + WebSocket address (default 127.0.0.1:8889; 0.0.0.0:PORT for other machines)",
    )
    run.add_argument(
        "--udp", metavar="HOST:PORT", help="also send the binary spectrum by UDP to HOST:PORT"
    )
    run.add_argument(
        "--publish",
        metavar="nats://HOST:PORT[,...]",
        help="also publish every spectrum to these NATS servers (docs/scaling.md)",
    )
    run.add_argument(
        "--osc",
        metavar="HOST:PORT",
        action="append",
        help="also send OSC bundles to HOST:PORT (repeatable)",
    )
    run.add_argument(
        "--wled",
        metavar="HOST[:PORT]",
        action="append",
        help="also send WLED audio sync packets (port 11988 by default; repeatable)",
    )
    run.add_argument("--record", metavar="OUT.wav", help="also record what is captured, losslessly")
    run.add_argument("--force", action="store_true", help="let --record overwrite OUT.wav")
    run.add_argument("--log-level", metavar="L", help="debug, info, warning, error")
    run.add_argument(
        "--events",
        choices=FORMATS,
        help="host mode: one JSON event per line on stdout (ready, client, device, error,"
        " shutdown) and nothing else",
    )
    run.add_argument(
        "--stop-on-stdin-close",
        action="store_true",
        help="exit 0 when stdin closes (the app that started phase4 has gone)",
    )
    run.set_defaults(handler=cmd_run)

    relay = commands.add_parser(
        "relay", help="serve the page and stream of engines that publish to NATS (docs/scaling.md)"
    )
    _add_config_flag(relay)
    relay.add_argument(
        "--nats",
        metavar="nats://HOST:PORT[,...]",
        help="NATS servers to subscribe through (default: output.nats.servers)",
    )
    relay.add_argument(
        "--engine",
        metavar="ID",
        action="append",
        help="an engine id to serve (repeatable; the first is also served at /)",
    )
    relay.add_argument(
        "--ws", metavar="HOST:PORT", help="page + WebSocket address (default 127.0.0.1:8889)"
    )
    relay.add_argument("--log-level", metavar="L", help="debug, info, warning, error")
    relay.set_defaults(handler=cmd_relay)

    record = commands.add_parser(
        "record", help="capture to a WAV file with a live level meter (until S seconds or Ctrl-C)"
    )
    record.add_argument("record", metavar="OUT.wav", help="the WAV file to write")
    _add_config_flag(record)
    _add_source_flags(record)
    record.add_argument(
        "--seconds", metavar="S", type=_positive_seconds, help="stop after S seconds of audio"
    )
    record.add_argument(
        "--format", choices=("pcm16", "float32"), help="sample format (default pcm16)"
    )
    record.add_argument("--force", action="store_true", help="overwrite OUT.wav if it exists")
    record.add_argument("--sample-rate", metavar="N", help="samples per second (default 44100)")
    record.add_argument("--log-level", metavar="L", help="debug, info, warning, error")
    record.set_defaults(handler=cmd_record)

    config = commands.add_parser("config", help="show or validate configuration")
    config_commands = config.add_subparsers(
        dest="config_command", metavar="ACTION", parser_class=ArgumentParser
    )
    config_commands.required = True
    show = config_commands.add_parser(
        "show", help="print the effective config (defaults < file < env < flags)"
    )
    _add_config_flag(show)
    show.set_defaults(handler=cmd_config_show)
    validate = config_commands.add_parser(
        "validate", help="check a config file; exit 2 listing every problem"
    )
    validate.add_argument("file", metavar="F")
    validate.set_defaults(handler=cmd_config_validate)

    devices = commands.add_parser("devices", help="list audio input devices (for --device)")
    devices.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    devices.set_defaults(handler=cmd_devices)

    from .bench.command import add_arguments as add_bench_arguments

    bench = commands.add_parser("bench", help="the performance suite, as a table or JSON")
    add_bench_arguments(bench)
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status: 0 done, 2 a user error (one line), 1 engine failure.
    With ``run --events``, the ``shutdown`` event carries it too.

    Without a command, the help goes to stderr with status 2: nothing was done, and a script
    that forgot its command should notice.
    """
    events = HostEvents()
    code = _main(argv, events)
    events.emit(shutdown(code, events.stop_reason or ("stopped" if code == 0 else "error")))
    events.close()
    return code


def _main(argv: Sequence[str] | None, events: HostEvents) -> int:
    try:
        # Before anything initialises PortAudio: find the virtual device if nothing else is set.
        audio = pulse.discover(os.environ)
        os.environ.update(audio.env)
        parser = build_parser()  # imports subcommands: inside the try
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        if getattr(args, "events", None):
            sys.stdout.flush()
            events.start(sys.stdout.fileno())
        args.host_events = events
        args.audio = audio
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except KeyboardInterrupt:
        events.stop_reason = events.stop_reason or "interrupted"
        return 0
    except (Phase4Error, BaseExceptionGroup) as failure:
        if _only_interrupts(failure):  # Ctrl-C/SIGTERM that Trio delivered inside a nursery
            events.stop_reason = events.stop_reason or "interrupted"
            return 0
        user_errors = _user_errors(failure)
        if user_errors is None:
            log.critical("engine failed: %s", failure, exc_info=failure)
            events.emit(error(" ".join(f"engine failed: {failure}".split()), 1))
            return 1
        for problem in user_errors:
            for line in problem.lines():
                text = f"phase4: {line}"
                print(text, file=sys.stderr)
                events.emit(error(text, 2))
        return 2


def _only_interrupts(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in error.exceptions)
    return isinstance(error, KeyboardInterrupt)


def _user_errors(error: BaseException) -> list[Phase4Error] | None:
    """The user errors inside ``error``, or None if anything else is in there too."""
    if isinstance(error, Phase4Error):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        found: list[Phase4Error] = []
        for inner in error.exceptions:
            leaves = _user_errors(inner)
            if leaves is None:
                return None
            found += leaves
        return found
    return None
