"""What happened between two packets of a paced output.

An OSC or WLED output sends at its own rate (60 or 50 per second) while spectra arrive at the
block rate (about 172 per second at 44.1 kHz / 256). Sending only the newest spectrum would
lose what fell in between: a click one block long, the loudest sample, an onset. So the
output reads every spectrum into a :class:`Collector`, and each packet describes the blocks
since the previous one: the newest spectrum for the spectral values, the level over all of
them (RMS as their power mean, the highest peak), their mean zero-crossing rate, the
strongest onset that fired among them, and whether a beat fell in any of them.

Pure (no I/O, no clock): the output task feeds it and takes a :class:`Summary` per tick.
"""

from __future__ import annotations

import attrs

from ...dsp.onset import OnsetDetector
from ...pipeline.messages import Spectrum


@attrs.frozen
class Summary:
    """The blocks since the previous packet; ``onset`` is 0.0 when none fired."""

    latest: Spectrum
    blocks: int
    rms: float
    peak: float
    zero_crossing_rate: float
    onset: float
    beat: bool = False


class Collector:
    """Accumulates spectra, oldest first, until :meth:`take` hands over their summary."""

    def __init__(self, frame_rate: float) -> None:
        self._onsets = OnsetDetector(frame_rate)
        self._latest: Spectrum | None = None
        self._blocks = 0
        self._power = 0.0
        self._peak = 0.0
        self._crossings = 0.0
        self._onset = 0.0
        self._beat = False

    def add(self, spectrum: Spectrum) -> None:
        self._latest = spectrum
        self._blocks += 1
        self._power += spectrum.rms * spectrum.rms
        self._peak = max(self._peak, spectrum.peak)
        self._crossings += spectrum.zero_crossing_rate
        self._onset = max(self._onset, self._onsets.push(spectrum.flux, spectrum.magnitudes))
        self._beat |= spectrum.beat

    def take(self) -> Summary | None:
        """The summary of what arrived since the last call, or None if nothing did."""
        latest, blocks = self._latest, self._blocks
        if latest is None:
            return None
        summary = Summary(
            latest=latest,
            blocks=blocks,
            rms=(self._power / blocks) ** 0.5,
            peak=self._peak,
            zero_crossing_rate=self._crossings / blocks,
            onset=self._onset,
            beat=self._beat,
        )
        self._latest = None
        self._blocks = 0
        self._power = self._peak = self._crossings = self._onset = 0.0
        self._beat = False
        return summary
