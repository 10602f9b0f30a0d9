"""Shared fixtures: the program rendered under Pulumi's mocks against a stand-in cluster."""

from __future__ import annotations

import os

import pytest

from tests.support import cluster
from tests.support.cluster import Render


@pytest.fixture
def render() -> Render:
    """``render(config_overrides, cluster=standin())``: the program's run for one stack."""
    return cluster.render


#: The engine tier is opt-in (it builds the Pulumi CLI and a control plane, ~25 min cold): without
#: ENGINE=1 it is not collected at all, so a normal run neither runs nor "skips" it.
collect_ignore = [] if os.environ.get("ENGINE") == "1" else ["test_engine_tools.py", "test_engine_objects.py"]
