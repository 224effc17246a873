"""phase4-trio: a real-time audio analysis engine on Trio.

Capture → processor → router → endpoints, in one nursery tree. The public surface:
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, load_config
from .errors import ConfigError, Phase4Error

__all__ = ["Config", "ConfigError", "Phase4Error", "__version__", "load_config"]
