"""Shared test setup: make tests/ importable for its helper modules; the NATS cluster."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from nats_helpers import Cluster, cluster_session


@pytest.fixture(scope="session")
def nats_cluster() -> Iterator[Cluster]:
    """The real 3-node NATS cluster of scripts/nats-cluster, started if it is not running."""
    yield from cluster_session()
