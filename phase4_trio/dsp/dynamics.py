"""Dynamics of a client's values: gate, automatic gain, scale, attack/release smoothing.

A LED strip or a VJ patch wants values that sit in 0–1 whatever the volume, move smoothly,
and fall to zero when nothing plays. These steps do that on the server, once per distinct set
of options, however many clients asked for it. They are stateful (smoothing and gain follow
the stream), so each :class:`Dynamics` must see every frame of the stream once, in order;
time is counted in frames (``frame_seconds`` each), never read from a clock. A frame that
never reached it (lost before the views, e.g. under overload) still counts: the caller says
how many frames each call covers.

Per frame, for ``(rows, values)`` amplitudes (a row per channel) and each row's RMS level:

1. **gate** (``gate=DBFS``): a row whose RMS level is below the gate is silent: its values
   read the scale's floor (0, or :data:`~.detail.DB_FLOOR` in dB), and its smoothing restarts
   from there.
2. **gain** (``gain=auto``): amplitudes are multiplied by ``1 / envelope``, where the envelope
   follows the loudest value of the frame (all rows) at once when it rises, holds it for
   :data:`GAIN_HOLD_SECONDS`, then falls by :data:`GAIN_DECAY_DB_PER_SECOND`, never below
   :data:`GAIN_FLOOR_DB`. So the loudest band sits at 1 over the last seconds, and after a loud
   passage the gain recovers within a few seconds (like cava's autosens, in time units).
   Silent frames leave the envelope alone, so a pause does not blow the gain up.
3. **scale**: ``linear`` (amplitude × gain), ``unit`` (the same, clipped to 0–1) or ``db``
   (``20·log10``, floored at -120).
4. **smooth** (``smooth=ATTACK_MS:RELEASE_MS``): each value moves towards its new value by a
   fraction per frame chosen so that a step covers 90 % of its height in the attack time when
   rising and in the release time when falling.
"""

from __future__ import annotations

import enum
import math

import attrs
import numpy as np
from numpy.typing import NDArray

from .detail import DB_FLOOR, to_db

GAIN_HOLD_SECONDS = 1.5
GAIN_DECAY_DB_PER_SECOND = 10.0
#: The envelope never falls below this level, so the gain is at most +60 dB: a quiet room
#: stays quiet instead of being amplified into full-scale noise.
GAIN_FLOOR_DB = -60.0
#: Longest attack or release accepted, in milliseconds.
MAX_SMOOTH_MS = 60_000.0
_FLOOR_AMPLITUDE = 10.0 ** (DB_FLOOR / 20.0)


class Scale(enum.Enum):
    LINEAR = "linear"
    DB = "db"
    UNIT = "unit"

    @property
    def floor(self) -> float:
        """What a silent value reads in this scale."""
        return DB_FLOOR if self is Scale.DB else 0.0


@attrs.frozen
class Smoothing:
    """Attack and release times in milliseconds (0 means no smoothing that way)."""

    attack_ms: float
    release_ms: float

    @classmethod
    def parse(cls, text: str) -> Smoothing:
        """``ATTACK_MS:RELEASE_MS``, e.g. ``20:300``; ValueError with one line otherwise."""
        attack_text, colon, release_text = text.partition(":")
        try:
            if not colon:
                raise ValueError
            attack, release = float(attack_text), float(release_text)
        except ValueError:
            raise ValueError(f"expected ATTACK_MS:RELEASE_MS (e.g. 20:300), got {text!r}") from None
        for value in (attack, release):
            if not (math.isfinite(value) and 0.0 <= value <= MAX_SMOOTH_MS):
                raise ValueError(f"attack and release must be within 0-{MAX_SMOOTH_MS:g} ms")
        return cls(attack, release)

    def __str__(self) -> str:
        return f"{self.attack_ms:g}:{self.release_ms:g}"


@attrs.frozen
class DynamicsSpec:
    """What a client asked for: ``scale``, ``smooth``, ``gain=auto``, ``gate``."""

    scale: Scale = Scale.LINEAR
    smooth: Smoothing | None = None
    auto_gain: bool = False
    gate_db: float | None = None


def step_fraction(time_ms: float, frame_seconds: float) -> float:
    """Per-frame fraction of the remaining distance, so that 90 % is covered in ``time_ms``."""
    if time_ms <= 0.0:
        return 1.0
    return 1.0 - math.pow(0.1, frame_seconds * 1000.0 / time_ms)


@attrs.frozen
class DynamicsFrame:
    """One frame's values after dynamics: ``(rows, values)``, which rows were gated, and the
    automatic gain in dB (0 without ``gain=auto``)."""

    values: NDArray[np.float32]
    silent: NDArray[np.bool_]
    gain_db: float


class Dynamics:
    """The dynamics of one stream of ``(rows, values)`` amplitude frames."""

    def __init__(self, spec: DynamicsSpec, frame_seconds: float) -> None:
        self.spec = spec
        self.frame_seconds = frame_seconds
        smooth = spec.smooth
        self._attack = np.float32(step_fraction(smooth.attack_ms, frame_seconds) if smooth else 1.0)
        self._release = np.float32(
            step_fraction(smooth.release_ms, frame_seconds) if smooth else 1.0
        )
        self._smoothing = self._attack < 1.0 or self._release < 1.0
        self._state: NDArray[np.float32] | None = None
        self._no_rows_silent = np.zeros(0, dtype=np.bool_)
        self._envelope_db = GAIN_FLOOR_DB
        self._hold = 0.0

    def __call__(
        self, amplitudes: NDArray[np.float32], rms_db: NDArray[np.float32], elapsed: int = 1
    ) -> DynamicsFrame:
        """The frame's values: a read-only array, never written afterwards (it may be
        ``amplitudes`` itself when no step changes them). ``elapsed`` is how many frames
        of the stream passed since the previous call (more than one after a loss)."""
        spec = self.spec
        if spec.gate_db is None:
            silent = self._never_silent(len(amplitudes))
            gated = False
        else:
            silent = rms_db < spec.gate_db
            gated = bool(silent.any())
        gain_db = 0.0
        values = amplitudes
        if spec.auto_gain:
            gain_db = self._gain(amplitudes, silent, gated, elapsed)
            values = amplitudes * np.float32(10.0 ** (gain_db / 20.0))
        if spec.scale is Scale.DB:
            values = to_db(values)
        elif spec.scale is Scale.UNIT:
            values = np.minimum(values, np.float32(1.0))  # amplitudes are never negative
        floor = np.float32(spec.scale.floor)
        if gated:
            values = values.copy() if values is amplitudes else values
            values[silent] = floor
        if self._smoothing:
            values = self._smooth(values, silent, floor, gated, elapsed)
        values.setflags(write=False)
        return DynamicsFrame(values, silent, gain_db)

    def _never_silent(self, rows: int) -> NDArray[np.bool_]:
        silent = self._no_rows_silent
        if len(silent) != rows:
            silent = self._no_rows_silent = np.zeros(rows, dtype=np.bool_)
            silent.setflags(write=False)
        return silent

    def _gain(
        self,
        amplitudes: NDArray[np.float32],
        silent: NDArray[np.bool_],
        gated: bool,
        elapsed: int,
    ) -> float:
        """Update the envelope with the frame's loudest audible value; the gain in dB."""
        audible = amplitudes[~silent] if gated else amplitudes
        if audible.size:
            loudest = 20.0 * math.log10(max(float(audible.max()), _FLOOR_AMPLITUDE))
            if loudest >= self._envelope_db:
                self._envelope_db = loudest
                self._hold = GAIN_HOLD_SECONDS
            else:
                seconds = elapsed * self.frame_seconds
                held = min(self._hold, seconds)
                self._hold -= held
                if seconds > held:
                    falling = GAIN_DECAY_DB_PER_SECOND * (seconds - held)
                    self._envelope_db = max(loudest, self._envelope_db - falling)
            self._envelope_db = max(self._envelope_db, GAIN_FLOOR_DB)
        return -self._envelope_db

    def _smooth(
        self,
        values: NDArray[np.float32],
        silent: NDArray[np.bool_],
        floor: np.float32,
        gated: bool,
        elapsed: int,
    ) -> NDArray[np.float32]:
        """The smoothed values, a new array that is also the next frame's state (never
        written after it is handed out, so sharing it is safe)."""
        state = self._state
        if state is not None and state.shape == values.shape:
            attack, release = self._attack, self._release
            if elapsed > 1:  # the fraction of the distance left after that many frames
                attack = np.float32(1.0 - (1.0 - attack) ** elapsed)
                release = np.float32(1.0 - (1.0 - release) ** elapsed)
            step = np.where(values > state, attack, release)
            change = values - state
            change *= step
            values = state + change
            if gated:
                values[silent] = floor
        self._state = values
        return values
