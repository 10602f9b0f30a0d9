"""The conformance tier for ``apps``: several services behind one hop, on real proxies.

One rendering with two label hosts under the ALB's subdomain, one host shared by two entries
(paths that do not nest, different Services), and a custom domain served with its own TLS
secret.  nginx (or Traefik) is configured from the one Ingress, Envoy from the Gateway and every
VirtualService; each destination has a stand-in of its own on 127.0.0.1 that names the
destination it stands in for, so a 200 proves the request reached *that* app.

Needs nginx and Envoy, and Traefik for its flavour; skipped without them on a laptop, failed
with ``CI=true``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import specs
from tests.support import pki
from tests.support.cluster import ALB_DOMAIN, GATEWAY_DOMAIN
from tests.support.dataplane import (
    ALB_CERT,
    APPS,
    APPS_MATERIAL,
    CUSTOM_CERT,
    CUSTOM_HOST,
    CUSTOM_SECRET,
    LE,
    PINNED,
    alb_identity,
    app_destination,
    app_host,
    apps_cluster,
    fetch,
    render_apps,
    require_flavor_tools,
)
from tools import dataplane, mock_program, verify
from tools import dataplane_conf as conf
from tools import x509 as x509_builder

pytestmark = pytest.mark.dataplane

FLAVORS = ("nginx", "ibm-legacy", "traefik")
# (app, path) pairs that must reach the app: every path of every entry, below and at the prefix.
ROUTED = [(app, path) for app in APPS for path in app["paths"]] + [
    (APPS[1], "/orders/42"),
    (APPS[2], "/refunds/7?full=1"),
    (APPS[0], "/any/page"),
]


@pytest.fixture(scope="module", params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    require_flavor_tools(str(request.param))
    return str(request.param)


@pytest.fixture(scope="module")
def rendering(flavor: str) -> mock_program.Rendering:
    return render_apps({"albFlavor": flavor})


@pytest.fixture(scope="module")
def plane(rendering: mock_program.Rendering, flavor: str) -> Iterator[dataplane.LoopbackDataPlane]:
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), APPS_MATERIAL) as dp:
        assert dp.alb == ("traefik" if flavor == "traefik" else "nginx")  # ibm-legacy's ALB is nginx too
        if flavor == "ibm-legacy":  # ... configured from its ssl-services annotation
            assert conf.upstream_tls(dp.objs.ingress).ca_key == "trusted.crt"
        yield dp


def _label(case: tuple[dict[str, Any], str]) -> str:
    return f"{case[0]['name']}{case[1]}"


# --- each app's host and path reaches that app ----------------------------------------------------


@pytest.mark.parametrize("case", ROUTED, ids=_label)
def test_each_app_is_reached_through_the_alb(plane: dataplane.LoopbackDataPlane, case: tuple[dict[str, Any], str]) -> None:
    app, path = case
    answer = fetch(plane, app_host(app), path)
    assert answer.status == 200, answer
    seen = answer.json()
    assert seen["destination"] == app_destination(app), seen
    assert seen["host"] == app_host(app) and seen["path"] == path, seen


def test_every_destination_has_a_stand_in_of_its_own(plane: dataplane.LoopbackDataPlane) -> None:
    assert sorted(str(d) for d in plane.upstreams) == sorted(app_destination(app) for app in APPS)
    assert len(set(plane.upstreams.values())) == len(APPS), plane.upstreams
    assert plane.httpbin_port == 0  # no destination is the httpbin sample
    assert [name for name, _ in plane.processes] == ["upstreams", "envoy", plane.alb]


def test_the_request_crossed_the_hop_with_the_alb_client_certificate(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering
) -> None:
    """The gateway tells the app who the client was (XFCC, as Istio's gateway does): the ALB's
    client certificate from alb-certs, so the request came through the mutual-TLS hop."""
    der = x509.load_pem_x509_certificate(alb_identity(rendering).cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    seen = fetch(plane, app_host(APPS[0]), "/").json()
    assert seen["xfcc"] and f"Hash={hashlib.sha256(der).hexdigest()}" in seen["xfcc"], seen
    assert f"DNS={PINNED}" in seen["xfcc"], seen


# --- nothing else is routed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "path"),
    [
        (app_host(APPS[1]), "/"),  # the shared host has no "/" ...
        (app_host(APPS[1]), "/ordersX"),  # ... a prefix is whole segments ...
        (app_host(APPS[1]), "/invoices"),  # ... and no path of another host
        (f"nobody.{ALB_DOMAIN}", "/"),  # a host no entry names (the ALB's certificate covers it)
    ],
)
def test_an_unrouted_host_or_path_is_404(plane: dataplane.LoopbackDataPlane, host: str, path: str) -> None:
    answer = fetch(plane, host, path)
    assert answer.status == 404, answer
    assert b"destination" not in answer.body, "no app answered"


# --- certificates the client sees ------------------------------------------------------------------


def _served(answer: dataplane.Fetched) -> x509.Certificate:
    assert answer.peer_cert is not None, answer
    return x509.load_der_x509_certificate(answer.peer_cert)


def test_the_custom_domain_is_served_with_its_own_certificate(plane: dataplane.LoopbackDataPlane) -> None:
    custom = _served(fetch(plane, CUSTOM_HOST, "/"))
    assert custom == CUSTOM_CERT.cert
    label = _served(fetch(plane, app_host(APPS[0]), "/"))
    assert label == ALB_CERT.cert
    # A client that trusts only the LE-like root (the ALB's) refuses the custom domain: it is
    # not the ALB's certificate under another name.
    refused = fetch(plane, CUSTOM_HOST, "/", ca_pem=LE.anchors_pem)
    assert refused.status is None and refused.error and "certificate verify failed" in refused.error, refused


def test_the_alb_configuration_has_one_host_each_with_its_certificate(plane: dataplane.LoopbackDataPlane) -> None:
    hosts = [app_host(app) for app in APPS]
    if plane.alb == "nginx":
        for host in dict.fromkeys(hosts):
            assert plane.alb_conf_text.count(f"server_name {host};") == 1, host
        served = [line.split()[1].rstrip(";") for line in plane.alb_conf_text.splitlines() if line.split()[:1] == ["ssl_certificate"]]
        assert len(served) == 4  # 3 hosts + the catch-all server
        assert [Path(p).name for p in served] == ["alb-tls.crt", "alb-tls.crt", "host-1-tls.crt", "alb-tls.crt"]
    else:
        dynamic = json.loads(plane.alb_conf_text)
        rules = sorted(r["rule"] for r in dynamic["http"]["routers"].values())
        assert rules == sorted(f"Host(`{app_host(a)}`) && PathPrefix(`{p}`)" for a in APPS for p in a["paths"])
        certs = dynamic["tls"]["certificates"]
        assert len(certs) == 2 and certs[1]["certFile"].endswith("host-1-tls.crt"), certs


def test_envoy_merges_the_virtual_services_of_one_host(plane: dataplane.LoopbackDataPlane) -> None:
    (listener,) = plane.envoy_config["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hosts = {v["name"]: v for v in manager["route_config"]["virtual_hosts"]}
    assert sorted(hosts) == sorted(dict.fromkeys(app_host(app) for app in APPS))
    # The shared host: both entries' routes (creation order, which only matters for nesting
    # paths, which the program refuses), each to its own destination.
    api = {(next(iter(r["match"].values())), r["route"]["cluster"]) for r in hosts[app_host(APPS[1])]["routes"]}
    orders, payments = "outbound|9090||orders.shop.svc.cluster.local", "outbound|9091||payments.payments.svc.cluster.local"
    assert api == {
        ("/orders", orders), ("/orders/", orders),
        ("/payments", payments), ("/payments/", payments), ("/refunds", payments), ("/refunds/", payments),
    }
    assert sorted(c["name"] for c in plane.envoy_config["static_resources"]["clusters"]) == sorted(
        f"outbound|{a['port']}||{a['service']}.{a['namespace']}.svc.cluster.local" for a in APPS
    )


# --- the gateway still demands the ALB's client certificate ----------------------------------------


def _gateway(plane: dataplane.LoopbackDataPlane, identity: verify.ClientIdentity | None) -> dataplane.Fetched:
    """Straight to the gateway as the ALB reaches it: SNI the gateway's name, Host an app's."""
    return fetch(plane, app_host(APPS[1]), "/orders", to="gateway", sni=GATEWAY_DOMAIN, identity=identity)


def test_the_gateway_serves_an_app_to_the_alb_client_certificate(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering
) -> None:
    answer = _gateway(plane, alb_identity(rendering))
    assert answer.status == 200 and answer.json()["destination"] == app_destination(APPS[1]), answer


def _refused(plane: dataplane.LoopbackDataPlane, identity: verify.ClientIdentity | None, reason: str) -> None:
    before = plane.envoy_ssl_stats().get(reason, 0)
    answer = _gateway(plane, identity)
    assert answer.status is None and answer.error, answer
    assert plane.envoy_ssl_stats().get(reason, 0) == before + 1, plane.envoy_ssl_stats()


def test_the_gateway_refuses_a_client_without_certificate(plane: dataplane.LoopbackDataPlane) -> None:
    _refused(plane, None, "fail_verify_no_cert")


def test_the_gateway_refuses_a_client_certificate_from_another_ca(plane: dataplane.LoopbackDataPlane) -> None:
    other = pki.self_signed_ca("Test Other Client CA")
    key = pki.new_key()
    now = pki.utcnow()
    cert = x509_builder.certificate(
        x509_builder.dn("intruder"), key.public_key(), signer=other.key, issuer=other.name,
        not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=1),
        ca=None, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH], dns_names=[PINNED], ski=False,
    )
    _refused(plane, verify.ClientIdentity(pki.pem(cert), pki.key_pem(key)), "fail_verify_error")


# --- the translation itself (no proxies) ------------------------------------------------------------


def test_the_custom_domain_secret_is_the_clusters_not_the_renderings(rendering: mock_program.Rendering) -> None:
    """The program reads the tlsSecret and never copies it: the data plane needs it from the cluster."""
    objs = conf.collect(rendering.manifests())
    ref = f"istio-system/{CUSTOM_SECRET}"
    assert ref not in objs.secrets
    assert conf.tls_secret_ref(objs.ingress, CUSTOM_HOST) == ref
    assert conf.tls_secret_ref(objs.ingress, app_host(APPS[0])) != ref
    assert sorted(vs["metadata"]["name"] for vs in objs.virtual_services) == sorted(f"alb-mtls-{a['name']}" for a in APPS)
    assert conf.httpbin_destinations(objs) == set()


def test_an_app_routed_to_the_httpbin_sample_gets_httpbin(flavor: str) -> None:
    """An entry whose Service is the sample's (deployHttpbin) is served by httpbin itself."""
    apps = [{"name": "bin", "host": "bin", "paths": ["/status"], "service": "httpbin", "namespace": "httptools",
             "port": specs.HTTPBIN_PORT}]
    r = mock_program.render(
        {"cluster": "mycluster", "apps": apps, "deployHttpbin": True, "albFlavor": flavor,
         "trustedCaPem": LE.anchors_pem},
        apps_cluster(),
    )
    assert r.error is None, r.error
    with dataplane.LoopbackDataPlane.from_manifests(r.manifests(), APPS_MATERIAL) as dp:
        assert dp.httpbin_port and list(dp.upstreams.values()) == [dp.httpbin_port]
        assert fetch(dp, f"bin.{ALB_DOMAIN}", "/status/418").status == 418
