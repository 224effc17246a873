"""The analysis options of a client's query: bands, resolution, channels, scale, smooth, gain,
gate; and dsp.fft_size in the config."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from phase4_trio.config import analysis_fft_size, load_config, structure_config
from phase4_trio.dsp import Resolution
from phase4_trio.dsp.dynamics import DynamicsSpec, Scale, Smoothing
from phase4_trio.dsp.layouts import BandKind, BandSpec
from phase4_trio.dsp.views import ChannelMode, Channels, ViewSpec
from phase4_trio.errors import ConfigError
from phase4_trio.transport.options import ClientOptions, OptionError, parse_options


@pytest.mark.parametrize(
    ("query", "view"),
    [
        ("", None),
        ("format=f32&fps=30", None),
        ("bands=octave:3", ViewSpec(BandSpec(BandKind.OCTAVE, 3), Resolution.FINE)),
        ("bands=mel:40&resolution=fine", ViewSpec(BandSpec(BandKind.MEL, 40), Resolution.FINE)),
        ("resolution=fine", ViewSpec(None, Resolution.FINE)),
        ("scale=db", ViewSpec(dynamics=DynamicsSpec(Scale.DB))),
        ("channels=mix", ViewSpec()),
        ("channels=all", ViewSpec(channels=Channels(ChannelMode.ALL))),
        ("channels=1,0", ViewSpec(channels=Channels(ChannelMode.LIST, (1, 0)))),
        (
            "bands=log:32&scale=unit&smooth=20:300&gain=auto&gate=-60",
            ViewSpec(
                BandSpec(BandKind.LOG, 32),
                Resolution.FINE,
                dynamics=DynamicsSpec(Scale.UNIT, Smoothing(20, 300), True, -60.0),
            ),
        ),
        ("gain=off", ViewSpec()),
    ],
)
def test_analysis_options_make_a_view(query: str, view: ViewSpec | None) -> None:
    assert parse_options(query).view == view


def test_the_original_options_are_unchanged() -> None:
    assert parse_options("format=f32&fps=30&bins=64&flux=0") == ClientOptions(
        format="f32", fps=30.0, bins=64, flux=False
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bands=octave:5", "bands: octave:N takes N in 1, 2, 3, 6, 12, 24, got 5"),
        ("bands=mel:0", "bands: mel:N takes N from 1 to 1024, got 0"),
        ("bands=log:abc", "bands: expected log:N with N a whole number, got 'log:abc'"),
        ("bands=bark:3", "bands: expected octave:N, mel:N or log:N"),
        ("scale=loud", "scale: must be one of linear, db, unit; got 'loud'"),
        ("smooth=fast", "smooth: expected ATTACK_MS:RELEASE_MS"),
        ("smooth=10:-1", "smooth: attack and release must be within 0-60000 ms"),
        ("gain=2", "gain: must be one of auto, off; got '2'"),
        ("gate=10", "gate: expected dBFS from -120 to 0, got '10'"),
        ("gate=loud", "gate: expected dBFS"),
        ("gate=nan", "gate: expected dBFS"),
        ("channels=2", "channels: channel 2 does not exist: the input has 2"),
        ("channels=0,0", "channels: a channel is listed twice"),
        ("channels=left", "channels: expected mix, all or channel numbers"),
        ("resolution=high", "resolution: must be one of block, fine"),
        ("bands=octave:3&resolution=block", "resolution: bands always come from the fine"),
        ("bins=32&bands=log:32", "bins: cannot be combined with bands (use bands=log:N)"),
        ("bins=32&scale=db", "bins: cannot be combined with scale"),
        ("bands=log:8&bands=log:9", "bands: given more than once"),
        ("colour=red", "'colour': unknown parameter (known: format, fps, bins, flux, bands,"),
    ],
)
def test_bad_analysis_options_are_one_line(query: str, message: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_options(query, input_channels=2)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


values = st.text(max_size=12) | st.sampled_from(
    ["octave:3", "mel:40", "log:0", "db", "unit", "20:300", "auto", "-60", "all", "0,1", "fine"]
)
names = st.sampled_from(
    ["bands", "resolution", "channels", "scale", "smooth", "gain", "gate", "bins", "format", "x"]
)


@given(st.lists(st.tuples(names, values), max_size=6))
@example([("channels", "9999")])
@example([("bands", "octave:99999999999")])
@settings(max_examples=500)
def test_structured_queries_raise_only_option_error(pairs: list[tuple[str, str]]) -> None:
    query = "&".join(f"{name}={value}" for name, value in pairs)
    with contextlib.suppress(OptionError):
        parse_options(query, input_channels=2)


def test_fft_size_defaults_to_auto() -> None:
    config = load_config(environ={})
    assert config.dsp.fft_size == "auto"
    assert analysis_fft_size(config) == 4096
    big_blocks = load_config(environ={}, overrides={"input": {"buffer_size": 8192}})
    assert analysis_fft_size(big_blocks) == 8192


@pytest.mark.parametrize("value", [256, 1024, 16384, "auto", "AUTO"])
def test_good_fft_sizes(value: object) -> None:
    config = load_config(environ={}, overrides={"dsp": {"fft_size": value}})
    assert analysis_fft_size(config) == (4096 if str(value).lower() == "auto" else value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3000, "must be auto or a power of two between 16 and 16384, got 3000"),
        (32768, "must be auto or a power of two between 16 and 16384, got 32768"),
        (128, "must be at least input.buffer_size (256), got 128"),
        ("big", "expected auto or a power of two, got 'big'"),
        (True, "expected auto or a power of two, got True"),
        (4096.0, "expected auto or a power of two, got 4096.0"),
    ],
)
def test_bad_fft_sizes_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        structure_config({"dsp": {"fft_size": value}})
    assert caught.value.problems == [("dsp.fft_size", message)]


def test_fft_size_from_the_environment() -> None:
    config = load_config(environ={"PHASE4_DSP__FFT_SIZE": "8192"})
    assert analysis_fft_size(config) == 8192


@pytest.mark.parametrize(
    ("flag", "line"),
    [
        ("3000", "dsp.fft_size: must be auto or a power of two between 16 and 16384, got 3000"),
        ("128", "dsp.fft_size: must be at least input.buffer_size (256), got 128"),
    ],
)
def test_a_bad_fft_size_flag_is_one_line_and_exit_2(flag: str, line: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "phase4_trio", "run", "--source", "tone:440", "--fft-size", flag],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"phase4: {line}"
