"""The ``phase4`` console script and ``python -m phase4_trio``.

SIGTERM is taken over before the CLI's imports run, so a stop request that arrives while the
program is still starting ends it like Ctrl-C: exit 0, no traceback.
"""

from __future__ import annotations

import signal


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        return 0
    return cli_main()
