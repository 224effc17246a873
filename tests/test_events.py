"""Host-mode events: the pure builders, and a writer that never stalls the engine."""

from __future__ import annotations

import logging
import os
import time

import orjson
import pytest

from phase4_trio import __version__, events


def test_each_event_is_one_json_line_with_its_name_and_time() -> None:
    before = time.time()
    line = events.encode(events.client(connected=True, count=3))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    event = orjson.loads(line)
    assert event["event"] == "client"
    assert before <= event["time"] <= time.time()
    assert (event["state"], event["count"]) == ("connected", 3)
    assert events.client(connected=False, count=0)["state"] == "disconnected"
    assert events.device(lost=True, reason="stream finished")["reason"] == "stream finished"
    assert "reason" not in events.device(lost=False)
    assert events.error("phase4: no", 2)["exitCode"] == 2
    assert events.shutdown(0, "stdin closed")["reason"] == "stdin closed"


def test_ready_says_where_and_what() -> None:
    ready = events.ready(
        page="http://127.0.0.1:5/",
        websocket="ws://127.0.0.1:5/ws",
        ports=[events.port("http", "127.0.0.1", 5)],
        outputs=[events.output("osc", "127.0.0.1:9000")],
        source="noise",
        sample_rate=48000,
        block_size=512,
        channels=2,
    )
    assert ready["version"] == __version__
    assert ready["pid"] == os.getpid()
    assert ready["ports"] == [{"name": "http", "protocol": "tcp", "host": "127.0.0.1", "port": 5}]
    assert ready["outputs"] == [{"name": "osc", "target": "127.0.0.1:9000"}]
    assert (ready["sampleRate"], ready["blockSize"], ready["channels"]) == (48000, 512, 2)


def test_a_reader_that_never_reads_does_not_stall_the_emitter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    read_end, write_end = os.pipe()
    try:
        host = events.HostEvents()
        host.start(write_end)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="phase4_trio.events"):
            for count in range(5000):  # ~60 bytes each: far past a 64 KiB pipe
                host.client(True, count)
        assert time.monotonic() - started < 2.0
        assert [r.getMessage() for r in caplog.records] == [
            "host events dropped: nobody reads stdout"
        ]
        started = time.monotonic()
        host.close(timeout=0.5)
        assert time.monotonic() - started < 1.5
        first = orjson.loads(os.read(read_end, 65536).split(b"\n", 1)[0])
        assert first["count"] == 0  # in order, from the first
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_closed_pipe_stops_the_events_not_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        host = events.HostEvents()
        host.start(write_end)
        with caplog.at_level(logging.WARNING, logger="phase4_trio.events"):
            host.client(True, 1)
            host.close()
            host.client(True, 2)  # after close: nothing, quietly
    finally:
        os.close(write_end)
    assert any("stdout is gone" in r.getMessage() for r in caplog.records)


def test_everything_emitted_before_close_is_written_in_order() -> None:
    read_end, write_end = os.pipe()
    host = events.HostEvents()
    host.start(write_end)
    for count in range(100):
        host.client(True, count)
    host.emit(events.shutdown(0, "stopped"))
    host.close()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        lines = reader.read().splitlines()
    assert [orjson.loads(line).get("count") for line in lines[:-1]] == list(range(100))
    assert orjson.loads(lines[-1])["event"] == "shutdown"
