"""Shared fixtures: the program rendered under Pulumi's mocks against a stand-in cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components import renderer  # noqa: E402

ALB_DOMAIN = "mycluster-0123456789abcdef0123456789abcdef-0000.us-south.containers.appdomain.cloud"
ALB_SECRET = "mycluster-0123456789abcdef0123456789abcdef-0000"
GATEWAY_DOMAIN = "mycluster-0123456789abcdef0123456789abcdef-0001.us-south.containers.appdomain.cloud"
GATEWAY_SECRET = "mycluster-0123456789abcdef0123456789abcdef-0001"
CLUSTER = "mycluster"

Render = Callable[..., renderer.Rendering]


def standin(**overrides: Any) -> renderer.ClusterStandIn:
    """A classic single-zone cluster unless told otherwise."""
    values: dict[str, Any] = {
        "alb_domain": ALB_DOMAIN,
        "alb_secret": ALB_SECRET,
        "gateway_addresses": ["169.46.7.10"],
        "gateway_domain": GATEWAY_DOMAIN,
        "gateway_secret": GATEWAY_SECRET,
    }
    values.update(overrides)
    return renderer.ClusterStandIn(**values)


@pytest.fixture
def render() -> Render:
    """``render(config_overrides, cluster=standin())``: the program's run for one stack."""

    def _render(config: dict[str, Any] | None = None, cluster: renderer.ClusterStandIn | None = None) -> renderer.Rendering:
        return renderer.render({"cluster": CLUSTER, **(config or {})}, cluster or standin())

    return _render
