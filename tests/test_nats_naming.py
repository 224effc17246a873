"""NATS names, the metadata message and P4SP back into spectra: pure, no server."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from phase4_trio.config import ConfigError, load_config
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.bands import reduce_spectrum
from phase4_trio.transport.nats import naming
from phase4_trio.transport.nats.codec import StreamMeta, spectrum_from_payload, spectrum_payload
from phase4_trio.wire import p4sp
from phase4_trio.wire.p4sp import WireError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://host", "nats://host:4222"),
        (" nats://host:14222/ ", "nats://host:14222"),
        ("nats://[::1]:4223", "nats://[::1]:4223"),
        ("nats://[::1]", "nats://[::1]:4222"),
        ("nats://user:secret@host:1", "nats://user:secret@host:1"),
    ],
)
def test_urls_are_normalised(text: str, expected: str) -> None:
    assert naming.parse_url(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:4222",
        "http://host:4222",
        "nats://",
        "nats://host:99999",
        "nats://host:0",
        "nats://host:port",
        "nats://host:4222/path",
        "nats://host:4222?x=1",
        "nats://[oops",
    ],
)
def test_bad_urls_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"nats://|port|path"):
        naming.parse_url(text)


def test_servers_split_on_commas_and_drop_duplicates() -> None:
    assert naming.parse_servers("nats://a:1,nats://b, nats://a:1") == (
        "nats://a:1",
        "nats://b:4222",
    )
    assert naming.parse_servers(["nats://a:1", "nats://c:3,nats://d:4"]) == (
        "nats://a:1",
        "nats://c:3",
        "nats://d:4",
    )
    with pytest.raises(ValueError, match="empty server"):
        naming.parse_servers("nats://a:1,,nats://b:2")


@pytest.mark.parametrize("good", ["studio", "rack-2", "A_b-9", "x" * 64])
def test_engine_ids(good: str) -> None:
    assert naming.check_engine_id(good) == good


@pytest.mark.parametrize("bad", ["", "a.b", "a*", ">", "a b", "x" * 65, "é"])
def test_bad_engine_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="engine id"):
        naming.check_engine_id(bad)


def test_prefixes() -> None:
    assert naming.check_prefix("venue.phase4") == "venue.phase4"
    for bad in ("", "a..b", ".a", "a.", "a.*", "a >"):
        with pytest.raises(ValueError, match="subject prefix"):
            naming.check_prefix(bad)


def test_default_engine_id_is_the_host_name_made_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(naming.socket, "gethostname", lambda: "Studio_1.example.org")
    assert naming.default_engine_id() == "Studio_1"
    monkeypatch.setattr(naming.socket, "gethostname", lambda: "r@ck 2")
    assert naming.default_engine_id() == "r-ck-2"
    monkeypatch.setattr(naming.socket, "gethostname", lambda: "")
    assert naming.default_engine_id() == "phase4"


def test_subjects_and_displayed_urls() -> None:
    assert naming.spectra_subject("phase4", "studio") == "phase4.studio.spectra"
    assert naming.meta_subject("venue.p4", "a") == "venue.p4.a.meta"
    assert naming.display_url("nats://me:secret@h:1") == "nats://me:***@h:1"
    assert naming.display_url("nats://h:1") == "nats://h:1"


def _spectrum(frame: int = 7) -> Spectrum:
    rng = np.random.default_rng(frame)
    magnitudes = rng.random(129, dtype=np.float32)
    flux = rng.random(129, dtype=np.float32)
    return Spectrum(
        frame, 1764.5, 44100, 256, magnitudes, flux, 121.5, 0.75, beat_phase=0.5, beat=True
    )


def test_a_published_spectrum_comes_back_whole_and_keeps_its_bytes() -> None:
    original = _spectrum()
    payload = spectrum_payload(original)
    assert payload is p4sp.encode(original, with_flux=True)  # encoded once, shared
    relayed = spectrum_from_payload(payload)
    for field in ("frame_count", "capture_time", "sample_rate", "fft_size"):
        assert getattr(relayed, field) == getattr(original, field)
    assert relayed.bpm == pytest.approx(121.5)
    assert relayed.bpm_confidence == pytest.approx(0.75)
    assert (relayed.beat_phase, relayed.beat) == (0.5, True)
    assert np.array_equal(relayed.magnitudes, original.magnitudes)
    assert np.array_equal(relayed.flux, original.flux)
    # A relay's binary clients get the bytes that crossed NATS, not a re-encoding.
    assert p4sp.encode(relayed, with_flux=True) is payload
    without_flux = p4sp.encode(relayed, with_flux=False)
    assert without_flux == p4sp.encode(original, with_flux=False)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"P4SP" + bytes(60),
        p4sp.encode(_spectrum(), with_flux=False),
        p4sp.encode(_spectrum(), with_flux=True, dropped=3),
        p4sp.encode(reduce_spectrum(_spectrum(), 16), with_flux=True),
    ],
    ids=["empty", "zeros", "no-flux", "dropped", "banded"],
)
def test_anything_else_is_a_wire_error(payload: bytes) -> None:
    with pytest.raises(WireError):
        spectrum_from_payload(payload)


def test_metadata_round_trip() -> None:
    meta = StreamMeta("studio", 48000, 512, 512, "phase4.studio.spectra")
    assert StreamMeta.decode(meta.encode()) == meta
    for bad in (
        b"",
        b"[]",
        b'{"type": "other"}',
        meta.encode().replace(b'"version":1', b'"version":2'),
    ):
        with pytest.raises(ValueError, match=r"stream_meta|version"):
            StreamMeta.decode(bad)


def test_config_section_and_its_errors() -> None:
    config = load_config(
        environ={"PHASE4_OUTPUT__NATS__SERVERS": "nats://a:1,nats://b:2"},
        overrides={"output": {"nats": {"engine_id": "rack-1"}}},
    )
    nats = config.output.nats
    assert nats.enabled
    assert nats.servers == ("nats://a:1", "nats://b:2")
    assert (nats.subject_prefix, nats.engine_id) == ("phase4", "rack-1")
    assert not load_config(environ={}).output.nats.enabled
    with pytest.raises(ConfigError) as error:
        load_config(
            environ={},
            overrides={
                "output": {"nats": {"servers": "nats://x:99999", "engine_id": "a.b", "prefix": 1}}
            },
        )
    lines = error.value.lines()
    assert len(lines) == 3
    assert lines[0].startswith("output.nats.prefix: unknown key")
    assert any(line.startswith("output.nats.servers: expected nats://") for line in lines)
    assert any(line.startswith("output.nats.engine_id: an engine id") for line in lines)


def phase4(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHASE4_")}
    return subprocess.run(
        [sys.executable, "-m", "phase4_trio", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--publish", "nats//host:4222"], "output.nats.servers: expected nats://"),
        (["relay", "--engine", "a"], "relay: no NATS server"),
        (["relay", "--nats", "nats://h:1"], "relay: give at least one --engine"),
        (["relay", "--nats", "h:1", "--engine", "a"], "output.nats.servers: expected nats://"),
        (["relay", "--nats", "nats://h:1", "--engine", "a.b"], "--engine: an engine id"),
        (["relay", "--nats", "nats://h:1", "--engine", "metrics"], "a path the relay serves"),
        (["relay", "--nats", "nats://h:1", "--engine", "a", "--engine", "a"], "named twice"),
    ],
)
def test_bad_flags_are_one_line_exit_2(args: list[str], expected: str) -> None:
    result = phase4(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
