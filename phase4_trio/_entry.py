"""The ``phase4`` console script and ``python -m phase4_trio``.

SIGTERM is taken over here, once, before the CLI's imports run, so a stop request that
arrives while the program is still starting ends it like Ctrl-C: exit 0, no traceback.
The dependency goes one way: this module imports :mod:`.cli`, never the reverse.
"""

from __future__ import annotations

import signal
from types import FrameType

RETRY_SECONDS = 0.01
MAX_RETRIES = 200  # 2 s: no import takes longer; after that, interrupt regardless
_retries = 0


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM acts as Ctrl-C does, but never inside an import.

    An exception raised into an import can crash the interpreter or escape as a traceback
    (seen: SIGSEGV while orjson's extension module initialised), so a SIGTERM that lands in
    one is retried on SIGALRM every :data:`RETRY_SECONDS` until the import is done. Inside
    ``trio.run`` SIGINT's handler is Trio's, which delivers the interrupt at a checkpoint
    where Trio can take it; before Trio runs, this raises :class:`KeyboardInterrupt`.
    """
    global _retries
    if _importing(frame) and _retries < MAX_RETRIES:
        _retries += 1
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    sigint = signal.getsignal(signal.SIGINT)
    if callable(sigint) and sigint is not signal.default_int_handler:
        sigint(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def main() -> int:
    signal.signal(signal.SIGTERM, interrupt)
    try:
        from .cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:  # a retried SIGTERM can land between the import and the call
        return 0
    finally:  # the exit status is decided: a stop request from here on has nothing to stop
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
