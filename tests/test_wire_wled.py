"""WLED audio sync v2 packets, read back by a decoder written from WLED's own struct
(tests/wled_receiver.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase4_trio.dsp import Analyzer
from phase4_trio.pipeline.messages import Spectrum
from phase4_trio.transport.outputs.frames import WledFrames, coherent_gain
from phase4_trio.transport.outputs.summary import Collector, Summary
from phase4_trio.wire import wled
from wled_receiver import Received, receive

RATE = 44100


def spectra(signal: np.ndarray, size: int) -> list[Spectrum]:
    analyzer = Analyzer(size, RATE, "hann")
    out = []
    for index, start in enumerate(range(0, len(signal) - size + 1, size)):
        a = analyzer.process(signal[start : start + size].astype(np.float32))
        out.append(
            Spectrum(
                index,
                start / RATE,
                RATE,
                size,
                a.magnitudes,
                a.flux,
                a.bpm,
                a.bpm_confidence,
                a.rms,
                a.peak,
                a.zero_crossing_rate,
            )
        )
    return out


def packets(signal: np.ndarray, size: int, per_packet: int = 4) -> list[Received]:
    """Packets the way the output makes them: a summary every ``per_packet`` spectra."""
    frames = WledFrames("hann")
    collector = Collector(RATE / size)
    out = []
    for index, spectrum in enumerate(spectra(signal, size), 1):
        collector.add(spectrum)
        if index % per_packet == 0:
            summary = collector.take()
            assert summary is not None
            out.append(receive(frames.packet(summary, per_packet * size / RATE)))
    return out


def tone(frequency: float, amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return amplitude * np.sin(2 * np.pi * frequency * t)


@pytest.mark.parametrize("size", [256, 1024, 4096])
def test_a_1khz_tone_reads_a_major_peak_of_1khz_within_one_bin(size: int) -> None:
    last = packets(tone(1000.0, 0.5), size)[-1]
    bin_hz = RATE / size
    assert abs(last.fft_major_peak - 1000.0) <= bin_hz
    assert abs(last.fft_major_peak - 1000.0) <= 0.05 * bin_hz  # measured: within 0.015 bin
    # -6 dBFS on the 0-4096 scale that maps -60..0 dBFS
    assert last.fft_magnitude == pytest.approx(4096 * 54 / 60, rel=0.01)
    # 1 kHz is the centre of GEQ channel 7 (818-1120 Hz), the loudest
    assert int(np.argmax(last.fft_result)) == 7
    assert last.fft_result[7] == wled.GEQ_MAX


def test_a_1khz_tone_has_the_zero_crossings_wled_would_count() -> None:
    """WLED-MM: sign changes in 512 samples at 22050 Hz, times 2/3: 1 kHz gives 46.3 * 2/3."""
    last = packets(tone(1000.0, 0.5), 256)[-1]
    assert last.zero_crossing_count == round(2000 * 511 / 22050 * 2 / 3)


def test_silence_reads_zero_level_and_no_peak() -> None:
    for packet in packets(np.zeros(RATE), 256):
        assert packet.sample_raw == 0.0
        assert packet.sample_smth == 0.0
        assert packet.sample_peak == 0
        assert packet.fft_result == (0,) * 16
        assert packet.fft_magnitude == 0.0
        assert packet.fft_major_peak == 1.0  # what WLED sends with its noise gate closed
        assert packet.zero_crossing_count == 0
        assert packet.pressure == 0.0


def test_level_follows_the_rms_in_dbfs_and_the_smoothed_level_follows_it() -> None:
    loud = packets(np.concatenate([tone(1000.0, 1.0, 0.5), np.zeros(RATE // 2)]), 256)
    raw = [p.sample_raw for p in loud]
    smooth = [p.sample_smth for p in loud]
    # a full-scale sine: -3 dBFS RMS on -60..0 dBFS -> 255 * 57/60
    assert raw[len(raw) // 4] == pytest.approx(255 * (60 - 3.0103) / 60, rel=1e-3)
    assert smooth[len(raw) // 4] == pytest.approx(raw[len(raw) // 4], rel=1e-3)
    assert raw[-1] == 0.0
    after = raw.index(0.0)  # the first packet of silence: the raw level drops at once...
    assert after >= len(raw) // 2
    assert 0.0 < smooth[after] < raw[after - 1]  # ...the smoothed one follows
    assert smooth[-1] < 0.01


def test_pink_noise_reads_level_across_the_channels() -> None:
    """The +3 dB/octave tilt evens out pink noise; at 1024 points (WLED's own 43 Hz bins)
    every channel sits within a few steps of the others (measured 166-174)."""
    rng = np.random.default_rng(0)
    n = RATE * 4
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[1:] /= np.sqrt(frequencies[1:])
    spectrum[0] = 0
    pink = np.fft.irfft(spectrum, n)
    pink *= 0.1 / np.sqrt(np.mean(pink**2))  # -20 dBFS RMS
    channels = np.mean([p.fft_result for p in packets(pink, 1024, per_packet=1)], axis=0)
    assert channels.max() - channels.min() < 16
    assert 140 < channels.mean() < 200


def test_the_frame_counter_rolls_over_and_onsets_raise_the_peak_flag() -> None:
    clicks = np.zeros(RATE * 2)
    rng = np.random.default_rng(1)
    for start in range(RATE // 2, len(clicks), RATE // 2):
        clicks[start : start + 200] = rng.uniform(-0.8, 0.8, 200) * np.exp(-np.arange(200) / 40)
    received = packets(np.tile(clicks, 2), 256, per_packet=1)  # 1378 packets
    counters = [p.frame_counter for p in received]
    assert counters[:3] == [0, 1, 2]
    assert counters[256] == 0
    assert all((b - a) % 256 == 1 for a, b in itertools.pairwise(counters))
    peaks = [p.sample_peak for p in received]
    assert sum(peaks) == 6  # one per click: 0.5, 1.0 and 1.5 s into each 2 s


def test_pressure_is_wled_mm_s_estimate_of_the_sample_peak() -> None:
    assert wled.pressure(0.0) == 0.0
    assert wled.pressure(2.3 / 32767) == 0.0
    assert wled.pressure(1.0) == 255.0
    middle = math.exp((math.log(2.3) + math.log(32767 - 6144)) / 2) / 32767
    assert wled.pressure(middle) == pytest.approx(128.0, rel=1e-6)


def test_geq_channels_cover_wled_s_bins() -> None:
    """Channel edges are WLED's bin ranges, end to end, from bin 1 to bin 215."""
    edges = wled.GEQ_EDGES_HZ
    assert np.allclose(edges[1:, 0], edges[:-1, 1])
    assert edges[0, 0] == pytest.approx(0.5 * 22050 / 512)
    assert edges[-1, 1] == pytest.approx(215.5 * 22050 / 512)


def test_coherent_gain_of_hann_is_one_half() -> None:
    assert coherent_gain("hann") == pytest.approx(0.5, abs=1e-3)


@given(
    st.floats(0, 255, width=32),
    st.floats(0, 255, width=32),
    st.booleans(),
    st.integers(0, 1000),
    st.lists(st.integers(0, 254), min_size=16, max_size=16),
    st.integers(0, 70000),
    st.floats(0, 4096, width=32),
    st.floats(1, 11025, width=32),
    st.floats(0, 300),
)
def test_every_field_reads_back_from_its_offset(
    raw: float,
    smooth: float,
    peak: bool,
    counter: int,
    geq: list[int],
    crossings: int,
    magnitude: float,
    major: float,
    pressure: float,
) -> None:
    packet = wled.WledPacket(
        raw, smooth, peak, counter, tuple(geq), crossings, magnitude, major, pressure
    )
    got = receive(wled.encode(packet))
    assert (got.sample_raw, got.sample_smth) == (raw, smooth)
    assert got.sample_peak == int(peak)
    assert got.frame_counter == counter % 256
    assert got.fft_result == tuple(geq)
    assert got.zero_crossing_count == min(crossings, 65535)
    assert (got.fft_magnitude, got.fft_major_peak) == (magnitude, major)
    assert got.pressure == pytest.approx(min(pressure, 255 + 255 / 256), abs=1 / 512)


def test_a_packet_needs_sixteen_channels() -> None:
    with pytest.raises(ValueError, match="16 GEQ channels"):
        wled.encode(wled.WledPacket(0, 0, False, 0, (0,) * 15, 0, 0, 1))


def test_the_summary_of_what_arrived_between_two_packets() -> None:
    collector = Collector(RATE / 256)
    assert collector.take() is None
    block = 256 / RATE
    loud, quiet = spectra(np.concatenate([tone(440, 0.5, block), tone(440, 0.05, block)]), 256)
    collector.add(loud)
    collector.add(quiet)
    summary = collector.take()
    assert isinstance(summary, Summary)
    assert summary.latest is quiet
    assert summary.blocks == 2
    assert summary.peak == loud.peak
    assert summary.rms == pytest.approx(math.sqrt((loud.rms**2 + quiet.rms**2) / 2))
    assert collector.take() is None
