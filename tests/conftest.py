"""Shared fixtures: the program rendered under Pulumi's mocks against a stand-in cluster."""

from __future__ import annotations

import pytest

from tests.support import cluster
from tests.support.cluster import Render


@pytest.fixture
def render() -> Render:
    """``render(config_overrides, cluster=standin())``: the program's run for one stack."""
    return cluster.render
