"""Per-client options: ?format=f32, ?bins=N, ?fps=N — parsing, real sockets, and pacing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import numpy as np
import pytest
import trio_websocket
from hypothesis import given
from hypothesis import strategies as st

from engine_helpers import make_config, receive_json, running_engine, ws_url
from phase4_trio.transport.options import ClientOptions, OptionError, parse_options
from phase4_trio.wire import p4sp
from phase4_trio.wire.json_spectrum import rfc3339

BIN_HZ = 44100 / 256


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ClientOptions()),
        ("format=f32", ClientOptions(format="f32")),
        ("fps=30&bins=64", ClientOptions(fps=30.0, bins=64)),
        ("format=json&flux=0", ClientOptions(flux=False)),
    ],
)
def test_parse_options(query: str, expected: ClientOptions) -> None:
    assert parse_options(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "format=xml",
        "fps=0",
        "fps=nan",
        "fps=-3",
        "bins=0",
        "bins=abc",
        "flux=yes",
        "x=1",
        "fps=1&fps=2",
    ],
)
def test_bad_options_are_option_errors(query: str) -> None:
    with pytest.raises(OptionError):
        parse_options(query)


@given(st.text(max_size=200))
def test_parse_options_fuzz_raises_only_option_error(query: str) -> None:
    with contextlib.suppress(OptionError):
        parse_options(query)


async def test_binary_format_over_a_real_socket() -> None:
    config = make_config(input={"source": f"tone:{30 * BIN_HZ!r}:1.0"})
    async with running_engine(config) as engine:
        url = ws_url(engine, "format=f32")
        async with trio_websocket.open_websocket_url(url) as ws:
            for _ in range(5):
                message = await ws.get_message()
    assert isinstance(message, bytes)
    decoded = p4sp.decode(message)
    assert decoded.sample_rate == 44100
    assert decoded.fft_size == 256
    assert len(decoded.magnitudes) == 129
    assert int(np.argmax(decoded.magnitudes)) == 30
    assert decoded.magnitudes[30] == pytest.approx(0.5, rel=0.05)
    assert decoded.flux is not None


async def test_bins_reduces_json_magnitudes() -> None:
    async with running_engine() as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine, "bins=32")) as ws:
            message = await receive_json(ws)
    assert len(message["magnitudes"]) == 32
    assert message["bands"] == 32
    assert len(message["spectralFlux"]) == 32


async def test_fps_sends_fewer_and_latest_frames() -> None:
    async with running_engine() as engine:
        async with trio_websocket.open_websocket_url(ws_url(engine, "fps=10")) as ws:
            counts = [(await receive_json(ws))["frameCount"] for _ in range(6)]
    steps = np.diff(counts)
    assert (steps > 5).all(), counts  # ~17 frames between sends at 172/10
    assert engine.router.stats.gone_dropped == 0


@given(st.floats(0, 4e9, allow_nan=False))
def test_rfc3339_matches_datetime(timestamp: float) -> None:
    micros = round(timestamp * 1_000_000)
    expected = datetime.fromtimestamp(micros // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert rfc3339(timestamp) == f"{expected}.{micros % 1_000_000:06d}Z"
    parsed = datetime.strptime(rfc3339(timestamp), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(parsed.timestamp() - timestamp) < 1e-5 * max(1.0, timestamp / 1e9)
