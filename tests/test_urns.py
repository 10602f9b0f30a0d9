"""Existing stacks keep every resource's URN (type, name, parent chain) across refactors.

A changed URN makes ``pulumi up`` delete the old resource and create a new one: for the nlb-dns
Command that runs a real ``nlb-dns rm``.  The golden lists in ``tests/data/urns.json`` were taken
from the program as users' stacks have it; a change to them must come with an alias in the
program (``pulumi.Alias``) and an entry here proving the alias points at the old URN.

Reads (``Service.get``, ``Secret.get``) are different: the engine never deletes what it only read,
and a read cannot carry an alias (the engine's ReadResource takes none).  A read that moved is
listed in :data:`MOVED_READS`, old line -> new line; everything else must match exactly.

Regenerate only on purpose, and only the cases you add: ``python -m tests.test_urns CASE...`` prints them
(the existing cases' lines are the users' URNs from before a move: never rewrite them).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support import pki
from tests.support.cluster import ALB_SECRET, ROOT, render, standin
from tools import mock_program

GOLDEN = ROOT / "tests" / "data" / "urns.json"

_CLIENT_ROOT = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
_CLIENT_LEAF = _CLIENT_ROOT.intermediate(
    "Test Client Issuing CA", organization="Example Corp (test)",
    ekus=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
).issue_leaf(pki.ALB_SANS, client_auth=True)

_SHOP = pki.self_signed_ca("Example Test Root").issue_leaf(["shop.example.com"])

#: Stack config and stand-in cluster per case: the three ALB flavours on the default stack, and
#: the other branches that register resources of their own.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "traefik": ({"albFlavor": "traefik"}, {}),
    "ibm-legacy": ({"albFlavor": "ibm-legacy"}, {}),
    "configured-gateway-domain": (
        {"gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert", "albTlsMode": "default-certificate",
         "deployHttpbin": "false"},
        {},
    ),
    "alb-client-certificate": (
        {"clientCertSource": "alb", "trustedCaPem": _CLIENT_ROOT.cert_pem},
        {"secrets": {f"default/{ALB_SECRET}": {"tls.crt": _CLIENT_LEAF.chain_pem, "tls.key": _CLIENT_LEAF.key_pem}}},
    ),
    # Added with issues 17 and 18 (new stacks; their URNs are kept from then on).
    "apps": (
        {"apps": [
            {"name": "web", "host": "web", "service": "web", "namespace": "web", "port": 8080, "createNamespace": True},
            {"name": "api", "host": "api", "paths": ["/v1"], "service": "api", "namespace": "shop", "port": 80},
            {"name": "shop", "host": "shop.example.com", "tlsSecret": "shop-tls", "service": "shop",
             "namespace": "shop", "port": 80},
        ]},
        {"namespaces": ("default", "istio-system", "shop"),
         "secrets": {"istio-system/shop-tls": {"tls.crt": _SHOP.chain_pem, "tls.key": _SHOP.key_pem}}},
    ),
    "private-ca": ({"gatewayCertSource": "private-ca"}, {}),
    "generic": (
        {"platform": "generic", "albDomain": "apps.example.com", "albSecret": "apps-tls", "ingressClassName": "nginx"},
        {},
    ),
}


_STACK = "urn:pulumi:dev::iks-alb-istio-mtls::pulumi:pulumi:Stack::iks-alb-istio-mtls-dev"
_SERVICE = "kubernetes:core/v1:Service"

#: Reads that moved, old "urn <- parent" -> new: the gateway's Service is read once by the
#: program (issue 11) instead of inside the DNS component.
MOVED_READS: dict[str, str] = {
    f"urn:pulumi:dev::iks-alb-istio-mtls::iks-alb-istio-mtls:index:GatewayDns${_SERVICE}::gateway-dns-gateway-service"
    " <- urn:pulumi:dev::iks-alb-istio-mtls::pulumi:pulumi:Stack$iks-alb-istio-mtls:index:GatewayDns::gateway-dns":
    f"urn:pulumi:dev::iks-alb-istio-mtls::pulumi:pulumi:Stack${_SERVICE}::gateway-service <- {_STACK}",
}


def urns(case: str) -> list[str]:
    """Every URN the program registers or reads for ``case``, with its parent's URN, sorted (the
    engine registers in whatever order the outputs resolve)."""
    return sorted(f"{r.urn} <- {r.parent}" for r in _rendering(case).resources)


def _rendering(case: str) -> mock_program.Rendering:
    config, cluster = CASES[case]
    rendering = render(config, standin(**cluster))
    if rendering.error is not None:
        raise AssertionError(f"{case}: {rendering.error}")
    return rendering


@pytest.mark.parametrize("case", list(CASES))
def test_every_urn_and_parent_is_unchanged(case: str) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert urns(case) == sorted(MOVED_READS.get(line, line) for line in golden[case])


def test_only_reads_moved() -> None:
    """A moved line must be a read in the program as it is now, or it needs an alias instead."""
    reads = {f"{r.urn} <- {r.parent}" for case in CASES for r in _rendering(case).resources if r.read}
    assert set(MOVED_READS.values()) <= reads


def test_the_golden_lists_hold_the_resources_that_matter() -> None:
    """The lists are not empty or trivial: the nlb-dns Command and the objects users have are there."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert set(golden) == set(CASES)
    default = "\n".join(golden["default"])
    for token in ("command:local:Command::gateway-dns-registration", "command:local:Command::alb-tls-mirror",
                  "networking.istio.io/v1:Gateway::mesh-gateway", "networking.k8s.io/v1:Ingress::alb-ingress",
                  "tls:index/locallySignedCert:LocallySignedCert::client-pki-client-cert"):
        assert token in default, token
    assert any("ServersTransport" in u for u in golden["traefik"])
    assert not any("gateway-dns-registration" in u for u in golden["configured-gateway-domain"])
    assert sum("VirtualService::mesh-virtualservice-" in u for u in golden["apps"]) == 3
    assert any("GatewayCert" in u for u in golden["private-ca"])
    assert not any("command:local:Command" in u for u in golden["generic"])


if __name__ == "__main__":
    json.dump({case: urns(case) for case in sys.argv[1:] or CASES}, sys.stdout, indent=1)
    sys.stdout.write("\n")
