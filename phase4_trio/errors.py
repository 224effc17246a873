"""Errors a user can cause. The CLI prints them as one line each and exits 2."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class Phase4Error(Exception):
    """A problem the user can fix: bad flag, missing device, port in use, unreadable file."""

    exit_code = 2

    def lines(self) -> list[str]:
        return [" ".join(str(self).split())]


class ConfigError(Phase4Error):
    """One or more config problems, each a ``(dotted.key, what is wrong)`` pair.

    ``origins`` names where a key was set when that is not obvious (the environment
    variable behind it): its line then reads ``PHASE4_X__Y: x.y: what is wrong``.
    """

    def __init__(
        self, problems: Sequence[tuple[str, str]], origins: Mapping[str, str] | None = None
    ) -> None:
        self.problems = list(problems)
        self.origins = dict(origins or {})
        super().__init__("; ".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{self.origins[key]}: {key}: {message}" if key in self.origins else f"{key}: {message}"
            for key, message in self.problems
        ]
