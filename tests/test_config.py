"""Config: defaults, layering, round trip, and every kind of bad value named by its dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from phase4_trio.config import (
    WINDOW_NAMES,
    Address,
    Config,
    DeviceSource,
    DspConfig,
    Duration,
    InputConfig,
    NoiseSource,
    PipelineConfig,
    RecordConfig,
    ToneSource,
    TransportConfig,
    WavSource,
    dump_yaml,
    env_overrides,
    load_config,
    parse_source,
    structure_config,
    unstructure_config,
)
from phase4_trio.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def problems_of(data: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        structure_config(data)
    return dict(caught.value.problems)


def test_default_yaml_documents_exactly_the_defaults() -> None:
    documented = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    assert structure_config(documented) == Config()
    assert documented.keys() == unstructure_config(Config()).keys()
    for section, values in unstructure_config(Config()).items():
        if isinstance(values, dict):
            assert documented[section].keys() == values.keys(), section


def test_every_key_has_a_comment() -> None:
    lines = (ROOT / "config" / "default.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if ":" in stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            assert lines[number - 1].strip().startswith("#"), f"key without comment: {line!r}"


addresses = st.builds(
    Address,
    st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "localhost", "example.org"]),
    st.integers(0, 65535),
)
sources = st.one_of(
    st.just(DeviceSource()),
    st.just(NoiseSource()),
    st.builds(
        ToneSource,
        st.floats(1.0, 1999.0, allow_nan=False),  # below Nyquist at every sample rate drawn
        st.floats(0.0, 1.0, allow_nan=False),
    ),
    st.builds(WavSource, st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1)),
)
durations = st.builds(Duration, st.floats(0.001, 1e6, allow_nan=False))
configs = st.builds(
    Config,
    log_level=st.sampled_from(["debug", "info", "warning", "error", "critical"]),
    input=st.builds(
        InputConfig,
        source=sources,
        device=st.one_of(st.integers(-1, 64), st.sampled_from(["pulse", "USB Mic"])),
        channels=st.integers(1, 64),
        sample_rate=st.integers(4000, 384000),
        buffer_size=st.sampled_from([2**k for k in range(4, 17)]),
        low_latency=st.booleans(),
        sample_format=st.sampled_from(["float32", "int32"]),
    ),
    dsp=st.builds(
        DspConfig,
        enabled=st.booleans(),
        fft_window=st.sampled_from(WINDOW_NAMES),
        tempo_range=st.tuples(st.floats(30, 150), st.floats(2, 2.5)).map(
            lambda pair: (pair[0], min(300.0, pair[0] * pair[1]))
        ),
    ),
    transport=st.builds(
        TransportConfig,
        websocket_address=addresses,
        udp_send_address=addresses,
        udp_send_interval=durations,
        handshake_timeout=durations,
        allowed_origins=st.lists(
            st.sampled_from(["http://a.example", "https://b.example:8443"])
        ).map(tuple),
        max_clients=st.integers(1, 10000),
        client_queue=st.integers(1, 100),
    ),
    pipeline=st.builds(
        PipelineConfig,
        ring_slots=st.integers(4, 4096),
        capture_queue=st.integers(2, 4096),
        router_queue=st.integers(1, 4096),
    ),
    record=st.builds(RecordConfig, fifo_seconds=st.floats(0.5, 600.0)),
)


@given(configs)
def test_round_trip_is_identity(config: Config) -> None:
    assert structure_config(unstructure_config(config)) == config


@given(configs)
def test_yaml_round_trip_is_identity(config: Config) -> None:
    assert structure_config(yaml.safe_load(dump_yaml(config))) == config


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("input: {sample_rate: 22050, buffer_size: 512, channels: 2}\n")
    environ = {"PHASE4_INPUT__BUFFER_SIZE": "1024", "PHASE4_INPUT__CHANNELS": "1"}
    config = load_config(path, environ=environ, overrides={"input": {"channels": 2}})
    assert config.input.sample_rate == 22050  # file beats default
    assert config.input.buffer_size == 1024  # env beats file
    assert config.input.channels == 2  # flag beats env
    assert config.input.low_latency is True  # default survives


def test_env_values_are_yaml_scalars() -> None:
    data = env_overrides(
        {"PHASE4_LOG_LEVEL": "DEBUG", "PHASE4_DSP__ENABLED": "false", "HOME": "/root"}
    )
    assert data.data == {"log_level": "DEBUG", "dsp": {"enabled": False}}
    assert data.names == {"log_level": "PHASE4_LOG_LEVEL", "dsp.enabled": "PHASE4_DSP__ENABLED"}
    config = load_config(environ={"PHASE4_LOG_LEVEL": "DEBUG", "PHASE4_DSP__FFT_WINDOW": "Hamming"})
    assert config.log_level == "debug"
    assert config.dsp.fft_window == "hamming"


def test_unknown_env_key_names_the_variable_and_the_nearest_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"PHASE4_INPUT__SAMPLERATE": "48000"})
    assert caught.value.lines() == [
        "PHASE4_INPUT__SAMPLERATE: input.samplerate: unknown key (did you mean sample_rate?)"
    ]


def test_env_value_errors_name_the_variable_unless_a_flag_set_the_key_again() -> None:
    environ = {"PHASE4_INPUT__SAMPLE_RATE": "fast", "PHASE4_DSP__FFT_WINDOW": "square"}
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ)
    assert sorted(caught.value.lines()) == [
        "PHASE4_DSP__FFT_WINDOW: dsp.fft_window: must be one of "
        "bartletthann, blackman, blackmannuttall, hann, hamming, lanczos, nuttall; got 'square'",
        "PHASE4_INPUT__SAMPLE_RATE: input.sample_rate: expected a whole number, got 'fast'",
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ, overrides={"input": {"sample_rate": "slow"}})
    assert "input.sample_rate: expected a whole number, got 'slow'" in caught.value.lines()


def test_a_section_set_by_env_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"PHASE4_INPUT": "5"})
    assert caught.value.lines() == ["PHASE4_INPUT: input: expected a mapping, got 5"]


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"input": {"buffersize": 512}},
            "input.buffersize: unknown key (did you mean buffer_size?)",
        ),
        ({"inptu": {}}, "inptu: unknown key (did you mean input?)"),
        (
            {"transport": {"max_client": 3}},
            "transport.max_client: unknown key (did you mean max_clients?)",
        ),
        ({"input": {"zzz": 1}}, "input.zzz: unknown key"),
    ],
)
def test_misspelt_keys_get_a_suggestion(data: dict[str, object], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        structure_config(data)
    assert caught.value.lines() == [line]


@pytest.mark.parametrize(
    ("source", "rate", "ok"),
    [
        ("tone:22049", 44100, True),
        ("tone:22050", 44100, False),
        ("tone:30000", 44100, False),
        ("tone:30000", 96000, True),
        ("tone:4000", 8000, False),
        ("wav:/any.wav", 4000, True),  # plays at the file's own rate
    ],
)
def test_a_tone_at_or_above_nyquist_is_refused(source: str, rate: int, ok: bool) -> None:
    data = {"input": {"source": source, "sample_rate": rate}}
    if ok:
        structure_config(data)
        return
    problems = problems_of(data)
    assert list(problems) == ["input.source"]
    assert problems["input.source"].startswith(
        f"a {source[5:]} Hz tone is at or above the Nyquist frequency ({rate // 2} Hz at "
        f"input.sample_rate {rate})"
    )


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"input": {"sample_rate": "fast"}}, "input.sample_rate", "whole number"),
        ({"input": {"sample_rate": 44100.5}}, "input.sample_rate", "whole number"),
        ({"input": {"sample_rate": 100}}, "input.sample_rate", "within"),
        ({"input": {"buffer_size": 300}}, "input.buffer_size", "power of two"),
        ({"input": {"channels": 0}}, "input.channels", "within"),
        ({"input": {"low_latency": "yes"}}, "input.low_latency", "true or false"),
        ({"input": {"source": "mic"}}, "input.source", "unknown source"),
        ({"input": {"source": "tone:abc"}}, "input.source", "numbers"),
        ({"input": {"source": "tone:440:2"}}, "input.source", "amplitude"),
        ({"input": {"device": 1.5}}, "input.device", "device index"),
        ({"input": {"device": -7}}, "input.device", "-1"),
        ({"input": {"sample_format": "int16"}}, "input.sample_format", "one of"),
        ({"dsp": {"fft_window": "kaiser"}}, "dsp.fft_window", "one of"),
        ({"dsp": {"tempo_range": [180, 70]}}, "dsp.tempo_range", "MIN < MAX"),
        ({"dsp": {"tempo_range": [20, 100]}}, "dsp.tempo_range", "30 <= MIN"),
        ({"dsp": {"tempo_range": [100, 400]}}, "dsp.tempo_range", "MAX <= 300"),
        ({"dsp": {"tempo_range": [100, 150]}}, "dsp.tempo_range", "octave"),
        ({"dsp": {"tempo_range": 120}}, "dsp.tempo_range", "[MIN, MAX]"),
        ({"dsp": {"tempo_range": [70, "fast"]}}, "dsp.tempo_range", "number"),
        (
            {"transport": {"websocket_address": "localhost"}},
            "transport.websocket_address",
            "HOST:PORT",
        ),
        ({"transport": {"websocket_address": "h:70000"}}, "transport.websocket_address", "port"),
        ({"transport": {"websocket_path": "ws"}}, "transport.websocket_path", "absolute"),
        ({"transport": {"udp_send_interval": "soon"}}, "transport.udp_send_interval", "duration"),
        ({"transport": {"udp_send_interval": "0ms"}}, "transport.udp_send_interval", "positive"),
        ({"transport": {"allowed_origins": ["studio"]}}, "transport.allowed_origins", "origins"),
        ({"transport": {"max_clients": 0}}, "transport.max_clients", "at least"),
        ({"record": {"format": "mp3"}}, "record.format", "one of"),
        ({"log_level": "loud"}, "log_level", "one of"),
        ({"input": {"nope": 1}}, "input.nope", "unknown key"),
        ({"extra": {}}, "extra", "unknown key"),
        ({"input": 5}, "input", "mapping"),
    ],
)
def test_bad_values_name_their_key(data: dict[str, object], key: str, fragment: str) -> None:
    problems = problems_of(data)
    assert key in problems, problems
    assert fragment in problems[key]


def test_all_problems_reported_at_once() -> None:
    problems = problems_of(
        {
            "input": {"buffer_size": 100, "sample_rate": "x"},
            "dsp": {"fft_window": "nope"},
            "transport": {"bogus": True},
        }
    )
    assert set(problems) == {
        "input.buffer_size",
        "input.sample_rate",
        "dsp.fft_window",
        "transport.bogus",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device", DeviceSource()),
        ("noise", NoiseSource()),
        ("tone:440", ToneSource(440.0, 0.5)),
        ("TONE:1000:0.25", ToneSource(1000.0, 0.25)),
        ("wav:/tmp/a:b.wav", WavSource("/tmp/a:b.wav")),
    ],
)
def test_parse_source(text: str, expected: object) -> None:
    assert parse_source(text) == expected


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:8889", "127.0.0.1", 8889), ("[::1]:80", "::1", 80), (":9000", "0.0.0.0", 9000)],
)
def test_address_parse(text: str, host: str, port: int) -> None:
    address = Address.parse(text)
    assert (address.host, address.port) == (host, port)
    assert Address.parse(str(address)) == address


@pytest.mark.parametrize(
    ("text", "seconds"), [("33.33ms", 0.03333), ("2s", 2.0), ("500us", 0.0005), (1.5, 1.5)]
)
def test_duration_parse(text: object, seconds: float) -> None:
    assert Duration.parse(text).seconds == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("milliseconds", "shown"),
    [
        (5000.0, "5s"),
        (33.33, "33.33ms"),
        (1500.0, "1.5s"),
        (120000.0, "2m"),
        (90000.0, "90s"),
        (0.5, "500us"),
        (1.0, "1ms"),
        (0.001, "1us"),
        (999.5, "999.5ms"),
    ],
)
def test_durations_are_shown_as_people_write_them(milliseconds: float, shown: str) -> None:
    assert str(Duration(milliseconds)) == shown
    assert Duration.parse(shown) == Duration(milliseconds)


@given(st.floats(1e-6, 1e9, allow_nan=False, allow_infinity=False))
def test_a_shown_duration_parses_back_to_the_same_value(milliseconds: float) -> None:
    duration = Duration(milliseconds)
    assert Duration.parse(str(duration)) == duration


def test_tone_sources_are_shown_without_float_noise() -> None:
    assert str(ToneSource(440.0, 0.5)) == "tone:440:0.5"
    assert str(ToneSource(2756.25, 1.0)) == "tone:2756.25:1"
    assert parse_source(str(ToneSource(0.1, 0.3))) == ToneSource(0.1, 0.3)


def test_configuration_doc_lists_every_key_and_env_name() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for section, values in unstructure_config(Config()).items():
        keys = (
            [(f"{section}.{k}", f"PHASE4_{section}__{k}".upper()) for k in values]
            if isinstance(values, dict)
            else [(section, f"PHASE4_{section}".upper())]
        )
        for dotted, env in keys:
            assert f"`{dotted}`" in doc, dotted
            assert f"`{env}`" in doc, env
