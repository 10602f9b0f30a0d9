"""The stand-in cluster the tests render the program against: a classic single-zone IKS cluster
with IKS-length names (longer than a certificate's 64-character common name)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools import mock_program

ROOT = Path(__file__).resolve().parents[2]

ALB_DOMAIN = "mycluster-0123456789abcdef0123456789abcdef-0000.us-south.containers.appdomain.cloud"
ALB_SECRET = "mycluster-0123456789abcdef0123456789abcdef-0000"
GATEWAY_DOMAIN = "mycluster-0123456789abcdef0123456789abcdef-0001.us-south.containers.appdomain.cloud"
GATEWAY_SECRET = "mycluster-0123456789abcdef0123456789abcdef-0001"
CLUSTER = "mycluster"

Render = Callable[..., mock_program.Rendering]


def standin(**overrides: Any) -> mock_program.ClusterStandIn:
    """A classic single-zone cluster unless told otherwise."""
    values: dict[str, Any] = {
        "alb_domain": ALB_DOMAIN,
        "alb_secret": ALB_SECRET,
        "gateway_addresses": ["169.46.7.10"],
        "gateway_domain": GATEWAY_DOMAIN,
        "gateway_secret": GATEWAY_SECRET,
    }
    values.update(overrides)
    return mock_program.ClusterStandIn(**values)


def render(config: dict[str, Any] | None = None, cluster: mock_program.ClusterStandIn | None = None) -> mock_program.Rendering:
    """The program's run for one stack (``cluster`` set unless overridden)."""
    return mock_program.render({"cluster": CLUSTER, **(config or {})}, cluster or standin())
