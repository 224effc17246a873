"""``phase4 config show`` and ``phase4 config validate F``."""

from __future__ import annotations

import sys

from ..config import (
    Config,
    deep_merge,
    dump_yaml,
    read_config_file,
    structure_config,
    unstructure_config,
)


def show(config: Config) -> int:
    """The effective config as YAML; it validates as a file of its own."""
    sys.stdout.write(dump_yaml(config))
    return 0


def validate(path: str) -> int:
    """A file on its own terms: defaults + file only, no env, no flags. Problems raise
    :class:`~phase4_trio.errors.ConfigError`, every one of them at once."""
    structure_config(deep_merge(unstructure_config(Config()), read_config_file(path)))
    print(f"{path}: ok")
    return 0
