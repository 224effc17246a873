"""Fuzz every parser that takes outside input: each may only ever raise its own error.

Config (file, environment, structured data) → ``ConfigError``; WebSocket query parameters →
``OptionError``; HTTP request heads → ``h11.RemoteProtocolError``; the Origin check never
raises. The binary wire decoder has its own fuzz in tests/test_wire_p4sp.py
(``test_decoding_arbitrary_bytes_raises_only_wire_error`` and
``test_decoding_damaged_messages_raises_only_wire_error``). A last test sends mutated request
heads to a live engine over real sockets.
"""

from __future__ import annotations

import contextlib
import logging
import random
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
import trio_websocket
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine_helpers import make_config, receive_json, running_engine, ws_url
from phase4_trio.config import (
    Config,
    TransportConfig,
    deep_merge,
    load_config,
    read_config_file,
    structure_config,
    unstructure_config,
)
from phase4_trio.errors import ConfigError
from phase4_trio.transport.http import HttpExchange
from phase4_trio.transport.options import ClientOptions, OptionError, parse_options
from phase4_trio.transport.server import origin_allowed

DEFAULTS = unstructure_config(Config())
SECTION_KEYS = [
    (section, key) for section, keys in DEFAULTS.items() if isinstance(keys, dict) for key in keys
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["tone:440", "wav:", "127.0.0.1:0", "[::1]:1", "33ms", "-1", "hann", "1e9"])
)
plain_data = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.integers() | st.none(), children, max_size=4)
    ),
    max_leaves=16,
)


# ------------------------------------------------------------------ config


def config_problems(build: Callable[[], object]) -> list[tuple[str, str]]:
    """[] if ``build`` succeeds; its problems if it raises ConfigError; anything else fails."""
    try:
        build()
    except ConfigError as error:
        problems = error.problems
        assert problems
        return problems
    return []


@given(plain_data)
@settings(max_examples=400)
def test_structure_config_of_anything_raises_only_config_error(data: Any) -> None:
    problems = config_problems(lambda: structure_config(data))
    for key, message in problems:
        assert isinstance(key, str) and isinstance(message, str)
        assert "\n" not in message


@given(st.dictionaries(st.sampled_from(SECTION_KEYS), plain_data, max_size=6), plain_data)
@settings(max_examples=400)
def test_any_value_under_real_keys_raises_only_config_error(
    values: dict[tuple[str, str], Any], extra: Any
) -> None:
    """Every known key gets arbitrary data (so every converter and validator is reached)."""
    override: dict[str, Any] = {}
    for (section, key), value in values.items():
        override.setdefault(section, {})[key] = value
    if isinstance(extra, dict):
        override.update({k: v for k, v in extra.items() if k not in DEFAULTS})
    merged = deep_merge(DEFAULTS, override)
    if not config_problems(lambda: structure_config(merged)):
        config = structure_config(merged)
        assert structure_config(unstructure_config(config)) == config  # accepted → round-trips


ENV_NAMES = [f"PHASE4_{section.upper()}__{key.upper()}" for section, key in SECTION_KEYS]


@given(st.dictionaries(st.sampled_from(ENV_NAMES), st.text(max_size=40), max_size=6))
@settings(max_examples=300)
def test_environment_values_raise_only_config_error(environ: dict[str, str]) -> None:
    config_problems(lambda: load_config(environ=environ))


@given(st.text(max_size=300) | st.binary(max_size=300))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@example("input: {sample_rate: [1, {a: b}]}\ntransport: {websocket_address: 5}\n")
@example("- just\n- a list\n")
@example("input: !!python/object:os.system {}\n")
def test_config_file_contents_raise_only_config_error(contents: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.yaml"
        if isinstance(contents, bytes):
            path.write_bytes(contents)
        else:
            path.write_text(contents, encoding="utf-8")
        config_problems(lambda: structure_config(deep_merge(DEFAULTS, read_config_file(path))))


@pytest.mark.parametrize(
    "case",
    ["env: section and key both set", "env: key and sub-key both set", "file: not UTF-8", "deep"],
)
def test_known_config_escapes(case: str, tmp_path: Path) -> None:
    if case == "env: section and key both set":
        environ = {"PHASE4_INPUT": "3", "PHASE4_INPUT__SAMPLE_RATE": "1"}
    elif case == "env: key and sub-key both set":
        environ = {"PHASE4_INPUT__SAMPLE_RATE": "1", "PHASE4_INPUT__SAMPLE_RATE__X": "1"}
    else:
        environ = {}
    path = tmp_path / "bad.yaml"
    if case == "file: not UTF-8":
        path.write_bytes(b"\xff\xfe input: {}\n")
    elif case == "deep":
        path.write_text("input: " + "[" * 5000 + "\n")
    else:
        path.write_text("{}\n")
    with pytest.raises(ConfigError):
        load_config(path, environ=environ)


# ------------------------------------------------------------------ WebSocket query


@given(st.text(max_size=80))
@settings(max_examples=500)
@example("format=f32&format=json")
@example("fps=nan&bins=0")
@example("fps=1e309")
@example("bins=%F0%9F%98%80")
@example("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9")
@example("&&&&")
@example("fps=%00")
def test_parse_options_raises_only_option_error(query: str) -> None:
    try:
        options = parse_options(query)
    except OptionError as error:
        message = str(error)
    else:
        assert isinstance(options, ClientOptions)
        assert options.fps is None or 0 < options.fps <= 1000
        assert options.bins is None or 1 <= options.bins <= 4096
        return
    assert message and "\n" not in message


query_values = st.text(max_size=12) | st.sampled_from(["0", "1", "30", "f32", "json", "1e3", "-1"])
queries = st.lists(
    st.tuples(st.sampled_from(["format", "fps", "bins", "flux", "x", ""]), query_values),
    max_size=5,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))


@given(queries)
@example("bins=²")  # str.isdigit() accepts it, int() does not: found by this test
@settings(max_examples=500)
def test_structured_queries_raise_only_option_error(query: str) -> None:
    with contextlib.suppress(OptionError):
        parse_options(query)


# ------------------------------------------------------------------ HTTP heads

header_names = st.sampled_from(
    [b"Host", b"Upgrade", b"Connection", b"Origin", b"Content-Length", b"Transfer-Encoding"]
) | st.binary(min_size=0, max_size=12)
header_values = st.sampled_from([b"websocket", b"Upgrade", b"127.0.0.1", b"chunked", b"-1"]) | (
    st.binary(max_size=40)
)
heads = st.builds(
    lambda method, target, version, headers: (
        method
        + b" "
        + target
        + b" "
        + version
        + b"\r\n"
        + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        + b"\r\n"
    ),
    st.sampled_from([b"GET", b"HEAD", b"POST", b"", b"G\x00T"]) | st.binary(max_size=8),
    st.sampled_from([b"/", b"/ws", b"/metrics", b"*", b"http://x/"]) | st.binary(max_size=30),
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1x"]) | st.binary(max_size=10),
    st.lists(st.tuples(header_names, header_values), max_size=6),
)


@given(st.binary(max_size=2000) | heads)
@settings(max_examples=800)
@example(b"GET / HTTP/1.1\r\n\r\n")  # no Host: h11 refuses (HTTP/1.1 requires it)
@example(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n")
@example(b"\r\n\r\n")
def test_parse_head_raises_only_remote_protocol_error(head: bytes) -> None:
    """Fed as the server reads (never past the head limit), any bytes end in a request, the
    end of the stream, or a RemoteProtocolError with an HTTP error status, nothing else."""
    exchange = HttpExchange()
    event = None
    status = 0
    try:
        while event is None and head:
            room = exchange.room()
            event = exchange.receive(head[:room])
            head = head[room:]
        if event is None:
            event = exchange.receive(b"")
    except h11.RemoteProtocolError as error:
        status = error.error_status_hint
    if status:
        assert 400 <= status < 600  # 501: a Transfer-Encoding h11 does not implement
    else:
        assert isinstance(event, h11.Request | h11.ConnectionClosed)


@given(st.text(max_size=60) | st.sampled_from(["http://[", "http://[::1", "http://a]b", "null"]))
@settings(max_examples=500)
def test_origin_check_never_raises_nor_lets_a_foreign_page_in(origin: str) -> None:
    """By default only the engine's own host and the local names may connect: whatever the
    text, an allowed origin names one of them."""
    if origin_allowed(origin, "127.0.0.1:8889", TransportConfig()):
        assert any(name in origin.lower() for name in ("localhost", "127.0.0.1", "[::1]")), origin


# ------------------------------------------------------------------ over real sockets

STATUS_ALLOWED = {b"101", b"200", b"400", b"403", b"404", b"405", b"431", b"503"}
VALID = (
    b"GET /ws?format=f32 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nOrigin: http://localhost\r\n\r\n"
)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Flip, drop, insert or duplicate a few bytes, keeping the blank line that ends a head."""
    body = bytearray(data[:-4])
    for _ in range(rng.randrange(1, 6)):
        position = rng.randrange(len(body) + 1)
        choice = rng.random()
        if choice < 0.3 and body:
            body[min(position, len(body) - 1)] = rng.randrange(256)
        elif choice < 0.5 and body:
            del body[position : position + rng.randrange(1, 20)]
        elif choice < 0.8:
            alphabet = string.printable.encode() + b"\x00\xff:\r\n"
            body[position:position] = bytes(rng.choice(alphabet) for _ in range(rng.randrange(20)))
        else:
            body[position:position] = body[position : position + rng.randrange(1, 200)] * 3
    return bytes(body) + b"\r\n\r\n"


async def test_mutated_heads_against_a_live_engine(caplog: pytest.LogCaptureFixture) -> None:
    """300 damaged handshakes: each gets a well-formed answer or a clean close, the engine
    logs no error, and a client that connects afterwards streams as usual."""
    caplog.set_level(logging.WARNING)
    rng = random.Random(8)
    statuses: dict[bytes, int] = {}
    config = make_config(transport={"handshake_timeout": "1s"})
    async with running_engine(config) as engine:
        assert engine.web is not None
        with trio.fail_after(120):
            for _ in range(300):
                stream = await trio.open_tcp_stream("127.0.0.1", engine.web.port)
                async with stream:
                    await stream.send_all(mutate(rng, VALID))
                    reply = b""
                    with trio.move_on_after(3):
                        while b"\r\n" not in reply:
                            chunk = await stream.receive_some(4096)
                            if not chunk:
                                break
                            reply += chunk
                status = reply.split(b" ", 2)[1] if reply.startswith(b"HTTP/1.1 ") else b"closed"
                statuses[status] = statuses.get(status, 0) + 1
                assert status in STATUS_ALLOWED | {b"closed"}, reply[:200]
            async with trio_websocket.open_websocket_url(ws_url(engine)) as ws:
                assert (await receive_json(ws))["type"] == "fft_magnitudes"
    assert len(statuses) >= 3, statuses  # the mutations really reached different outcomes
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
