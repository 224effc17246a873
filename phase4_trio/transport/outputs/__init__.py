"""Outputs in other tools' languages: OSC bundles and WLED audio sync packets.

Each configured output is a :class:`~.datagram.PacedOutput`, a router subscriber like a
WebSocket client; what differs is only how a packet is built (:mod:`.frames`, on the wire
builders :mod:`phase4_trio.wire.osc` and :mod:`phase4_trio.wire.wled`).
"""

from __future__ import annotations

from ...config import Config
from ...wire.osc import build_bundle
from .datagram import PacedOutput
from .frames import WledFrames, osc_frame
from .summary import Summary

__all__ = ["PacedOutput", "configured_outputs"]


def configured_outputs(config: Config, frame_rate: float) -> list[PacedOutput]:
    """The outputs that have targets; ``frame_rate`` is the number of spectra per second."""
    outputs = []
    osc = config.output.osc
    if osc.targets:

        def bundle(summary: Summary, _elapsed: float) -> bytes:
            return build_bundle(osc_frame(summary, osc.bands), osc.prefix)

        outputs.append(
            PacedOutput(
                "osc",
                "output.osc.targets",
                osc.targets,
                osc.rate,
                frame_rate,
                bundle,
                multicast=False,
            )
        )
    wled = config.output.wled
    if wled.targets:
        outputs.append(
            PacedOutput(
                "wled",
                "output.wled.targets",
                wled.targets,
                wled.rate,
                frame_rate,
                WledFrames(config.dsp.fft_window).packet,
                multicast=True,
            )
        )
    return outputs
