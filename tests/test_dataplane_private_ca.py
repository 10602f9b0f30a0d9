"""The conformance tier for ``gatewayCertSource=private-ca``, on every ALB flavour.

The program issues the gateway's certificate from its own CA for the gateway Service's cluster
name (Secret ``alb-mtls-gateway-cert``, the Gateway's ``credentialName``) and has the ALB verify
it against that CA (``ca.crt``/``trusted.crt`` of ``alb-certs``) under that name.  Envoy serves
the rendering's secret, not anything of the cluster's; the ALB accepts it, and refuses a gateway
certificate from another CA or for another name.  A renewal (the next ``pulumi up`` re-issues
both certificates from the same CA) is swapped into the running proxies while a request loop
keeps getting answers.

Needs nginx and Envoy, and Traefik for its flavour; skipped without them on a laptop, failed
with ``CI=true``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components import specs
from tests.support import pki
from tests.support.cluster import CLUSTER, standin
from tests.support.dataplane import ALB_HOST, MATERIAL, alb_identity, fetch, render_ok, require_flavor_tools
from tools import dataplane, mock_program
from tools import x509 as tx

pytestmark = pytest.mark.dataplane

FLAVORS = ("nginx", "ibm-legacy", "traefik")
GATEWAY_NAME = "istio-ingressgateway.istio-system.svc"
CONFIG: dict[str, Any] = {"cluster": CLUSTER, "gatewayCertSource": "private-ca", "routes": ["/status", "/anything"]}


@pytest.fixture(scope="module", params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    require_flavor_tools(str(request.param))
    return str(request.param)


@pytest.fixture(scope="module")
def rendering(flavor: str) -> mock_program.Rendering:
    return render_ok({**CONFIG, "albFlavor": flavor})


@pytest.fixture(scope="module")
def plane(rendering: mock_program.Rendering) -> Iterator[dataplane.LoopbackDataPlane]:
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), MATERIAL) as dp:
        yield dp


def _secret(manifests: list[dict[str, Any]], name: str) -> dict[str, str]:
    return next(m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == name)["stringData"]


def program_ca(rendering: mock_program.Rendering) -> tx.CA:
    """The program's CA (the pulumi-tls stand-ins made a real one), which issued both certificates."""
    cert = next(r for r in rendering.resources if r.type == "tls:index/selfSignedCert:SelfSignedCert")
    key = next(r for r in rendering.resources if r.type == "tls:index/privateKey:PrivateKey" and r.name.endswith("-ca-key"))
    return tx.CA.from_pem(cert.outputs["certPem"], key.outputs["privateKeyPem"])


def _with_gateway_cert(rendering: mock_program.Rendering, issued: tx.Issued) -> list[dict[str, Any]]:
    """The rendering with another certificate in the Gateway's credentialName secret."""
    manifests = copy.deepcopy(rendering.manifests())
    _secret(manifests, specs.PRIVATE_GATEWAY_SECRET).update({"tls.crt": issued.chain_pem, "tls.key": issued.key_pem})
    return manifests


# --- accepted -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status"), [("/status/200", 200), ("/anything/x", 200), ("/status/418", 418)])
def test_through_the_alb(plane: dataplane.LoopbackDataPlane, path: str, status: int) -> None:
    answer = fetch(plane, ALB_HOST, path)
    assert answer.status == status, answer


def test_the_gateway_serves_the_programs_certificate(plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering) -> None:
    """Straight to the gateway under its cluster name, trusting only the program's CA."""
    manifests = rendering.manifests()
    ca_pem = program_ca(rendering).cert_pem
    answer = fetch(plane, GATEWAY_NAME, "/status/418", to="gateway", identity=alb_identity(rendering), ca_pem=ca_pem)
    assert answer.status == 418, answer
    assert answer.peer_cert is not None
    served = x509.load_der_x509_certificate(answer.peer_cert)
    assert served == x509.load_pem_x509_certificate(_secret(manifests, specs.PRIVATE_GATEWAY_SECRET)["tls.crt"].encode())
    assert served != x509.load_pem_x509_certificate(MATERIAL.gateway_cert_chain.encode())  # not the cluster's nlb-dns one
    assert "rendering" in plane.gateway_credential()[2]


def test_the_alb_trusts_the_programs_ca_under_the_gateways_cluster_name(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering, flavor: str
) -> None:
    ca_pem = program_ca(rendering).cert_pem
    alb_certs = _secret(rendering.manifests(), specs.ALB_CERTS_SECRET)
    assert (alb_certs.get("trusted.crt") or alb_certs["ca.crt"]) == ca_pem
    if flavor == "traefik":
        (transport,) = json.loads(plane.alb_conf_text)["http"]["serversTransports"].values()
        assert transport["serverName"] == GATEWAY_NAME
        ca_file = transport["rootCAs"][0]
    else:
        assert f"proxy_ssl_name {GATEWAY_NAME};" in plane.alb_conf_text
        assert "proxy_ssl_verify on;" in plane.alb_conf_text
        ca_file = next(line.split()[1].rstrip(";") for line in plane.alb_conf_text.splitlines()
                       if line.strip().startswith("proxy_ssl_trusted_certificate"))
    with open(ca_file) as handle:
        assert handle.read() == ca_pem


# --- refused ------------------------------------------------------------------------------------------


def _refused_by_the_alb(rendering: mock_program.Rendering, issued: tx.Issued, nginx_says: str, traefik_says: str) -> None:
    with dataplane.LoopbackDataPlane.from_manifests(_with_gateway_cert(rendering, issued), MATERIAL) as dp:
        answer = fetch(dp, ALB_HOST, "/status/418")
        if dp.alb == "traefik":
            assert answer.status == 500, answer  # Traefik's answer to an upstream TLS verification error
            assert traefik_says in dp.log_tail("traefik", 400)
        else:
            assert answer.status == 502, answer
            assert nginx_says in dp.log_tail("nginx", 50)
        # ... while the gateway serves exactly the certificate it was given (Envoy's admin says so).
        assert format(issued.cert.serial_number, "x") in [s.lstrip("0") for s in dp.served_gateway_serials()]


def test_the_alb_refuses_a_gateway_certificate_from_another_ca(rendering: mock_program.Rendering) -> None:
    other = pki.self_signed_ca("Test Other Gateway CA")
    issued = other.issue_leaf(specs.gateway_internal_names("istio-ingressgateway", "istio-system"))
    _refused_by_the_alb(rendering, issued, "upstream SSL certificate verify error", "x509: certificate signed by unknown authority")


def test_the_alb_refuses_a_gateway_certificate_for_another_name(rendering: mock_program.Rendering) -> None:
    issued = program_ca(rendering).issue_leaf(["other-gateway.istio-system.svc"])
    _refused_by_the_alb(rendering, issued, "upstream SSL certificate does not match", "x509: certificate is valid for other-gateway")


# --- renewal: the next `pulumi up` swaps both certificates in, and no request fails -------------------

LOOP_SECONDS = 30.0  # the request loop's bound, whatever happens


def render_renewed(first: mock_program.Rendering, config: dict[str, Any]) -> mock_program.Rendering:
    """The same config rendered again as the ``pulumi up`` that renews: keys, CA and CSRs from the
    first rendering's state, so only the two LocallySignedCerts (client and gateway) are new."""
    kept = [r for r in first.resources if r.type in mock_program.KEPT_ON_RENEWAL and not r.read]
    assert len(kept) == 6, sorted(r.name for r in kept)  # CA, client and gateway: a key each; the CA; two CSRs
    renewed = mock_program.render(config, standin(), renewal_of=first)
    assert renewed.error is None, renewed.error
    return renewed


def _client_hash(rendering: mock_program.Rendering) -> str:
    cert = x509.load_pem_x509_certificate(alb_identity(rendering).cert_pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _xfcc_hash(dp: dataplane.LoopbackDataPlane) -> str | None:
    """Which client certificate the ALB presented to the gateway, as the gateway tells httpbin."""
    answer = fetch(dp, ALB_HOST, "/anything/who")
    if answer.status != 200:
        return None
    xfcc = answer.json()["headers"].get("X-Forwarded-Client-Cert", "")
    found = re.search(r"Hash=([0-9a-f]{64})", xfcc)
    return found.group(1) if found else None


def _gateway_serial(rendering: mock_program.Rendering) -> str:
    return format(x509.load_pem_x509_certificate(_secret(rendering.manifests(), specs.PRIVATE_GATEWAY_SECRET)["tls.crt"].encode()).serial_number, "x")


def _until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_renewed_certificates_are_swapped_in_while_requests_keep_succeeding(rendering: mock_program.Rendering, flavor: str) -> None:
    renewed = render_renewed(rendering, {**CONFIG, "albFlavor": flavor})
    before, after = rendering.manifests(), renewed.manifests()
    # The precondition: a renewal, not a rotation (same CA and keys, new certificates).
    assert _secret(after, specs.ALB_CERTS_SECRET).get("ca.crt", "") == _secret(before, specs.ALB_CERTS_SECRET).get("ca.crt", "")
    assert _secret(after, specs.PRIVATE_GATEWAY_SECRET)["tls.key"] == _secret(before, specs.PRIVATE_GATEWAY_SECRET)["tls.key"]
    assert _gateway_serial(renewed) != _gateway_serial(rendering) and _client_hash(renewed) != _client_hash(rendering)

    results: list[tuple[float, int | None, str | None]] = []
    stop = threading.Event()

    def loop(dp: dataplane.LoopbackDataPlane) -> None:
        deadline = time.monotonic() + LOOP_SECONDS
        while not stop.is_set() and time.monotonic() < deadline:
            answer = fetch(dp, ALB_HOST, "/status/418")
            results.append((time.monotonic(), answer.status, answer.error))
            time.sleep(0.01)

    with dataplane.LoopbackDataPlane.from_manifests(before, MATERIAL, reloadable=True) as dp:
        assert _xfcc_hash(dp) == _client_hash(rendering)
        assert _gateway_serial(rendering) in [s.lstrip("0") for s in dp.served_gateway_serials()]
        worker = threading.Thread(target=loop, args=(dp,), daemon=True)
        worker.start()
        try:
            assert _until(lambda: len(results) >= 5, 10), results
            swapped_at = time.monotonic()
            dp.renew(after)
            # Both proxies use the new certificates: the gateway serves the renewed one, and the
            # ALB presents the renewed client certificate.
            assert _until(lambda: _xfcc_hash(dp) == _client_hash(renewed), 10), _xfcc_hash(dp)
            served = [s.lstrip("0") for s in dp.served_gateway_serials()]
            assert _gateway_serial(renewed) in served and _gateway_serial(rendering) not in served
            done_at = time.monotonic()
            assert _until(lambda: sum(1 for t, _, _ in results if t > done_at) >= 5, 10), results
        finally:
            stop.set()
            worker.join(timeout=LOOP_SECONDS)
        assert not worker.is_alive()
        failed = [r for r in results if r[1] != 418]
        assert failed == [], failed[:5]
        assert any(t < swapped_at for t, _, _ in results) and any(t > done_at for t, _, _ in results)
        # The previous generation's key files are gone; the renewed ones are private.
        keys = sorted(p.name for p in dp.workdir.glob("*.key"))
        assert keys and all("-2." in name for name in keys), keys


def test_a_renewal_changes_certificates_only(rendering: mock_program.Rendering) -> None:
    """Another shape (other routes) is a new data plane, not a renewal; nginx renews only with a master."""
    other = render_ok({**CONFIG, "routes": ["/status"], "albFlavor": "nginx"})
    dp = dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), MATERIAL, reloadable=True)
    with pytest.raises(dataplane.DataPlaneError, match="a renewal changes certificates only"):
        dp.renew(other.manifests())
    if dp.alb == "nginx":
        fixed = dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), MATERIAL)
        with pytest.raises(dataplane.DataPlaneError, match="reloadable=True"):
            fixed.renew(rendering.manifests())


def test_a_gateway_certificate_envoy_rejects_fails_the_start_at_once(rendering: mock_program.Rendering) -> None:
    """A secret whose key does not match its certificate: Envoy rejects the SDS secret, and the
    data plane says so at once (not after the start timeout), stopping all it started."""
    ca = program_ca(rendering)
    issued, other = ca.issue_leaf([GATEWAY_NAME]), ca.issue_leaf([GATEWAY_NAME])
    manifests = copy.deepcopy(rendering.manifests())
    _secret(manifests, specs.PRIVATE_GATEWAY_SECRET).update({"tls.crt": issued.chain_pem, "tls.key": other.key_pem})
    dp = dataplane.LoopbackDataPlane.from_manifests(manifests, MATERIAL)
    started = time.monotonic()
    with pytest.raises(dataplane.DataPlaneError, match="Envoy rejected the gateway's certificate") as refused:
        dp.start()
    assert time.monotonic() - started < dataplane.START_TIMEOUT_SECONDS / 2
    assert "KEY_VALUES_MISMATCH" in str(refused.value)
    assert dp.files_removed and dp.processes == []
