"""The OSC bundle builder, decoded with python-osc's own parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.parsing import osc_types

from phase4_trio.wire.osc import OscFrame, build_bundle


def frame(**changes: object) -> OscFrame:
    values: dict[str, object] = {
        "bands": [0.5, 0.25, 0.0, 1.0],
        "rms_db": -9.03,
        "peak_db": -6.02,
        "bpm": 120.5,
        "bpm_confidence": 0.75,
        "frame_count": 5123,
        "capture_time": 1764099601.123456,
    }
    values.update(changes)
    return OscFrame(**values)  # type: ignore[arg-type]


def messages(data: bytes) -> dict[str, OscMessage]:
    assert OscBundle.dgram_is_bundle(data)
    bundle = OscBundle(data)
    assert bundle.timestamp == 0  # "immediately"
    contents = list(bundle)
    assert all(isinstance(m, OscMessage) for m in contents)
    found = {m.address: m for m in contents}
    assert len(found) == len(contents)
    return found


def type_tags(message: OscMessage) -> str:
    _address, index = osc_types.get_string(message.dgram, 0)
    tags, _ = osc_types.get_string(message.dgram, index)
    return str(tags)


def test_one_bundle_holds_bands_level_bpm_and_frame() -> None:
    found = messages(build_bundle(frame()))
    assert list(found) == ["/phase4/bands", "/phase4/level", "/phase4/bpm", "/phase4/frame"]
    assert found["/phase4/bands"].params == [0.5, 0.25, 0.0, 1.0]
    assert type_tags(found["/phase4/bands"]) == ",ffff"
    assert found["/phase4/level"].params == pytest.approx([-9.03, -6.02], abs=1e-5)
    assert type_tags(found["/phase4/level"]) == ",ff"
    assert found["/phase4/bpm"].params == pytest.approx([120.5, 0.75])
    assert found["/phase4/frame"].params == [5123, 1764099601.123456]  # a double: exact
    assert type_tags(found["/phase4/frame"]) == ",id"


def test_onset_and_beat_are_there_only_when_they_happened() -> None:
    assert "/phase4/onset" not in messages(build_bundle(frame(onset=0.0)))
    found = messages(build_bundle(frame(onset=0.8)))
    assert found["/phase4/onset"].params == pytest.approx([0.8])
    assert "/phase4/beat" not in found
    found = messages(build_bundle(frame(beat=True)))
    assert found["/phase4/beat"].params == pytest.approx([120.5])


def test_the_prefix_is_applied_to_every_address() -> None:
    found = messages(build_bundle(frame(onset=1.0), "/stage/left"))
    assert sorted(found) == [
        "/stage/left/bands",
        "/stage/left/bpm",
        "/stage/left/frame",
        "/stage/left/level",
        "/stage/left/onset",
    ]


def test_a_frame_count_past_int32_becomes_an_int64() -> None:
    found = messages(build_bundle(frame(frame_count=2**31)))
    assert found["/phase4/frame"].params[0] == 2**31
    assert type_tags(found["/phase4/frame"]) == ",hd"


@given(
    st.lists(st.floats(0, 10, width=32), max_size=256),
    st.integers(0, 2**40),
    st.floats(0, 4e9),
)
def test_whatever_the_values_python_osc_reads_them_back(
    bands: list[float], frame_count: int, capture_time: float
) -> None:
    found = messages(
        build_bundle(frame(bands=bands, frame_count=frame_count, capture_time=capture_time))
    )
    assert found["/phase4/bands"].params == bands
    assert found["/phase4/frame"].params == [frame_count, capture_time]
