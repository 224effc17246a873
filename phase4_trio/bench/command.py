"""The ``phase4 bench`` command: its flags, the run, and what it prints or writes."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path
from typing import Any

from ..errors import Phase4Error
from .options import BenchOptions

__all__ = ["add_arguments", "bench_command", "run_bench"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="length of each measurement window (default 10; 1 for a quick run)",
    )
    parser.add_argument(
        "--soak", action="store_true", help="also run the RSS growth soak (10 min by default)"
    )
    parser.add_argument(
        "--soak-seconds", type=float, default=600.0, metavar="S", help="soak length (default 600)"
    )
    parser.add_argument(
        "--fanout-max",
        type=int,
        default=1000,
        metavar="N",
        help="stop the fan-out steps at N clients (default 1000)",
    )
    parser.add_argument(
        "--format",
        dest="wire_format",
        choices=("all", "json", "f32"),
        default="all",
        help="wire formats to measure (default: all)",
    )
    parser.add_argument(
        "--source", default="tone:1000", metavar="S", help="synthetic source (default tone:1000)"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "trio-websocket"),
        default="raw",
        help="client used for 100 clients, fan-out and throughput (default raw)",
    )
    parser.add_argument(
        "--no-peer",
        dest="peer",
        action="store_false",
        help="leave out the rows measured beside cava on the virtual device",
    )
    parser.add_argument(
        "--nats",
        metavar="URLS",
        help="also measure NATS (link cost, engine alone vs engine + 2 relays) on these"
        " nodes of one cluster, comma-separated (scripts/nats-cluster env prints them)",
    )
    parser.add_argument("--write-doc", metavar="PATH", help="write the Markdown report to PATH")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when any figure misses its target"
    )


def options_from(args: argparse.Namespace) -> BenchOptions:
    problems = []
    if not 0.2 <= args.seconds <= 3600:
        problems.append(f"--seconds: expected 0.2-3600, got {args.seconds:g}")
    if not 1 <= args.soak_seconds <= 86400:
        problems.append(f"--soak-seconds: expected 1-86400, got {args.soak_seconds:g}")
    if not 1 <= args.fanout_max <= 8192:
        problems.append(f"--fanout-max: expected 1-8192, got {args.fanout_max}")
    if not args.source.startswith(("tone", "noise", "wav:")):
        problems.append(
            f"--source: a synthetic source is needed (tone, noise, wav:PATH), got {args.source!r}"
        )
    nats: tuple[str, ...] = ()
    if args.nats:
        from ..transport.nats.naming import parse_servers

        try:
            nats = parse_servers(args.nats)
        except ValueError as error:
            problems.append(f"--nats: {error}")
        if len(nats) < 2:
            problems.append("--nats: two nodes of one cluster are needed (scripts/nats-cluster)")
    if problems:
        raise Phase4Error("; ".join(problems))
    formats = ("json", "f32") if args.wire_format == "all" else (args.wire_format,)
    return BenchOptions(
        seconds=args.seconds,
        soak=args.soak,
        soak_seconds=args.soak_seconds,
        fanout_max=args.fanout_max,
        source=args.source,
        client=args.client,
        formats=formats,
        peer=args.peer,
        nats=nats,
    )


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, options in canonical form."""
    words = ["phase4", "bench"]
    if args.json:
        words.append("--json")
    if args.seconds != 10.0:
        words += ["--seconds", f"{args.seconds:g}"]
    if args.soak:
        words.append("--soak")
        if args.soak_seconds != 600.0:
            words += ["--soak-seconds", f"{args.soak_seconds:g}"]
    if args.fanout_max != 1000:
        words += ["--fanout-max", str(args.fanout_max)]
    if args.wire_format != "all":
        words += ["--format", args.wire_format]
    if args.source != "tone:1000":
        words += ["--source", args.source]
    if args.client != "raw":
        words += ["--client", args.client]
    if not args.peer:
        words.append("--no-peer")
    if args.nats:
        words += ["--nats", args.nats]
    if args.write_doc:
        words += ["--write-doc", args.write_doc]
    return shlex.join(words)


def run_bench(options: BenchOptions, command: str, *, quiet: bool = False) -> dict[str, Any]:
    """Run the suite and return the full report (figures, checks, raw results, machine)."""
    import trio

    from . import report
    from .suite import binary_available, run_suite

    def progress(message: str) -> None:
        if not quiet:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    load_start = report.machine()["loadavg"]
    started = datetime.datetime.now(datetime.UTC)
    results = trio.run(run_suite, options, progress)
    formats = [f for f in options.formats if f == "json" or binary_available()]
    checks = report.evaluate(results, formats, options.soak)
    return {
        "command": command,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "loadavg_start": load_start,
        "options": {
            "seconds": options.seconds,
            "soak": options.soak,
            "soak_seconds": options.soak_seconds,
            "fanout_max": options.fanout_max,
            "source": options.source,
            "client": options.client,
            "formats": formats,
        },
        "figures": {row["key"]: row["value"] for row in checks},
        "targets": {row["key"]: row["target"] for row in checks if row["limit"] is not None},
        "misses": [row["key"] for row in checks if row["status"] == "MISS"],
        "checks": checks,
        "results": results,
    }


def bench_command(args: argparse.Namespace) -> int:
    import orjson

    from . import report
    from .suite import BenchError

    options = options_from(args)
    try:
        result = run_bench(options, command_line(args))
    except BenchError as error:
        print(f"phase4: bench failed: {error}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(report.table(result))
    if args.write_doc:
        path = Path(args.write_doc)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.markdown(result), encoding="utf-8")
        print(f"bench: wrote {path}", file=sys.stderr)
    return 1 if args.strict and result["misses"] else 0
