"""Errors a user can cause. The CLI prints them as one line each and exits 2."""

from __future__ import annotations

from collections.abc import Sequence


class Phase4Error(Exception):
    """A problem the user can fix: bad flag, missing device, port in use, unreadable file."""

    exit_code = 2

    def lines(self) -> list[str]:
        return [" ".join(str(self).split())]


class ConfigError(Phase4Error):
    """One or more config problems, each a ``(dotted.key, what is wrong)`` pair."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.problems))

    def lines(self) -> list[str]:
        return [f"{key}: {message}" for key, message in self.problems]
