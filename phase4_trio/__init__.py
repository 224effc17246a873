"""phase4-trio: a real-time audio analysis engine on Trio.

Capture → processor → router → endpoints, in one nursery tree (docs/architecture.md).
The public surface is re-exported here but imported lazily, so ``import phase4_trio`` (and the
``phase4`` command's first moments, when a SIGTERM must already stop it cleanly) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .config import Config, load_config
    from .engine import Engine
    from .errors import ConfigError, Phase4Error

_EXPORTS = {
    "Config": "config",
    "load_config": "config",
    "Engine": "engine",
    "ConfigError": "errors",
    "Phase4Error": "errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["Config", "ConfigError", "Engine", "Phase4Error", "__version__", "load_config"]
