"""The ``output`` config section: OSC and WLED targets, rates, prefix, band layout."""

from __future__ import annotations

import pytest

from phase4_trio.cli import build_parser, flag_overrides
from phase4_trio.config import (
    Address,
    BandLayout,
    Config,
    WledAddress,
    load_config,
    structure_config,
    unstructure_config,
)
from phase4_trio.errors import ConfigError


def output(**section: object) -> Config:
    return load_config(environ={}, overrides={"output": section})


def problems(**section: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        output(**section)
    return dict(caught.value.problems)


def test_defaults_send_nothing() -> None:
    config = Config()
    assert config.output.osc.targets == ()
    assert config.output.wled.targets == ()
    assert (config.output.osc.rate, config.output.osc.prefix) == (60.0, "/phase4")
    assert config.output.osc.bands == BandLayout("log", 32)
    assert config.output.wled.rate == 50.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.50", WledAddress("192.168.1.50", 11988)),
        ("239.0.0.1", WledAddress("239.0.0.1", 11988)),
        ("wled.local:21324", WledAddress("wled.local", 21324)),
        ("fe80::1", WledAddress("fe80::1", 11988)),
        ("[fe80::1]", WledAddress("fe80::1", 11988)),
        ("[::1]:5000", WledAddress("::1", 5000)),
    ],
)
def test_a_wled_target_takes_port_11988_unless_told(text: str, expected: WledAddress) -> None:
    assert output(wled={"targets": [text]}).output.wled.targets == (expected,)


def test_a_single_string_is_a_list_of_one_and_everything_round_trips() -> None:
    config = output(
        osc={"targets": "127.0.0.1:9000", "prefix": "/stage/left", "bands": "LOG:8", "rate": 30},
        wled={"targets": ["10.0.0.2", "[::1]:7000"]},
    )
    assert config.output.osc.targets == (Address("127.0.0.1", 9000),)
    assert config.output.osc.bands == BandLayout("log", 8)
    data = unstructure_config(config)
    assert data["output"]["osc"]["targets"] == ["127.0.0.1:9000"]
    assert data["output"]["osc"]["bands"] == "log:8"
    assert data["output"]["wled"]["targets"] == ["10.0.0.2:11988", "[::1]:7000"]
    assert structure_config(data) == config


@pytest.mark.parametrize(
    ("section", "key", "fragment"),
    [
        ({"osc": {"targets": ["127.0.0.1"]}}, "output.osc.targets", "expected HOST:PORT"),
        ({"osc": {"targets": ["h:0"]}}, "output.osc.targets", "port 0 is not a destination"),
        ({"osc": {"targets": ["h:70000"]}}, "output.osc.targets", "outside 0-65535"),
        ({"osc": {"targets": [":9000"]}}, "output.osc.targets", "needs a host"),
        ({"osc": {"targets": 9000}}, "output.osc.targets", "list of strings"),
        ({"osc": {"rate": 0}}, "output.osc.rate", "within 1-1000"),
        ({"osc": {"prefix": "phase4"}}, "output.osc.prefix", "starts with '/'"),
        ({"osc": {"prefix": "/a//b"}}, "output.osc.prefix", "non-empty parts"),
        ({"osc": {"prefix": "/a b"}}, "output.osc.prefix", "without spaces"),
        ({"osc": {"prefix": "/a*"}}, "output.osc.prefix", "#*,?[]{}"),
        ({"osc": {"bands": "mel:24"}}, "output.osc.bands", "log:N"),
        ({"osc": {"bands": "log:0"}}, "output.osc.bands", "1-4096"),
        ({"osc": {"colour": "red"}}, "output.osc.colour", "unknown key"),
        ({"wled": {"targets": ["h:99999"]}}, "output.wled.targets", "outside 0-65535"),
        ({"wled": {"rate": 5000}}, "output.wled.rate", "within 1-1000"),
    ],
)
def test_bad_values_name_their_dotted_key(
    section: dict[str, object], key: str, fragment: str
) -> None:
    found = problems(**section)
    assert list(found) == [key]
    assert fragment in found[key]


def test_repeated_flags_become_the_target_lists() -> None:
    args = build_parser().parse_args(
        ["run", "--osc", "127.0.0.1:9000", "--osc", "10.0.0.3:8000", "--wled", "239.0.0.1"]
    )
    config = load_config(environ={}, overrides=flag_overrides(args))
    assert [str(t) for t in config.output.osc.targets] == ["127.0.0.1:9000", "10.0.0.3:8000"]
    assert [str(t) for t in config.output.wled.targets] == ["239.0.0.1:11988"]


def test_environment_variables_reach_the_nested_keys() -> None:
    config = load_config(
        environ={
            "PHASE4_OUTPUT__OSC__TARGETS": "[127.0.0.1:9000, '[::1]:9001']",
            "PHASE4_OUTPUT__WLED": "{targets: [239.0.0.1], rate: 40}",
        }
    )
    assert [str(t) for t in config.output.osc.targets] == ["127.0.0.1:9000", "[::1]:9001"]
    assert config.output.wled.rate == 40.0
