"""``gatewayCertSource=private-ca`` and ``platform=generic`` under Pulumi's mocks.

private-ca: the program's CA issues the gateway's certificate for the gateway Service's cluster
DNS name, the ALB verifies the gateway against that CA with SNI and ``proxy-ssl-name`` set to
that name, and there is no nlb-dns Command.  generic: no ``ibmcloud`` at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import certs, specs
from tests.support.cluster import ALB_DOMAIN, ALB_SECRET, CLUSTER, ROOT, standin
from tools import mock_program

SECRET = "kubernetes:core/v1:Secret"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
TRANSPORT = "kubernetes:traefik.io/v1alpha1:ServersTransport"
COMMAND = "command:local:Command"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
PROVIDER = "pulumi:providers:kubernetes"
NGINX = specs.NGINX
INTERNAL = "istio-ingressgateway.istio-system.svc"
GENERIC: dict[str, Any] = {
    "platform": "generic", "albDomain": "apps.example.com", "albSecret": "apps-example-tls", "ingressClassName": "nginx",
}


def ok(r: mock_program.Rendering) -> mock_program.Rendering:
    assert r.error is None, r.error
    return r


def render(config: dict[str, Any], cluster: mock_program.ClusterStandIn | None = None, **kw: Any) -> mock_program.Rendering:
    return mock_program.render(config, cluster or standin(), **kw)


@pytest.fixture(scope="module")
def private_ca() -> mock_program.Rendering:
    return ok(render({"cluster": CLUSTER, "gatewayCertSource": "private-ca"}))


def _gateway_secret(r: mock_program.Rendering) -> mock_program.Registered:
    return r.one(SECRET, name=specs.PRIVATE_GATEWAY_SECRET)


def test_private_ca_has_no_nlb_dns_registration(private_ca: mock_program.Rendering) -> None:
    assert [c.name for c in private_ca.by_type(COMMAND)] == ["alb-tls-mirror"]  # the ALB certificate's copy only
    assert "nlb-dns" not in " ".join(str(c.inputs) for c in private_ca.by_type(COMMAND))


def test_gateway_certificate_from_the_programs_ca_for_the_internal_name(private_ca: mock_program.Rendering) -> None:
    secret = _gateway_secret(private_ca)
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["metadata"]["namespace"] == "istio-system"
    assert secret.is_secret("stringData")
    data = secret.inputs["stringData"]
    cert = x509.load_pem_x509_certificate(data["tls.crt"].encode())
    assert certs.dns_sans(data["tls.crt"]) == [INTERNAL, f"{INTERNAL}.cluster.local"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    # Issued by the CA the ALB trusts for the gateway (alb-certs ca.crt), which is the CA the
    # gateway trusts for the ALB's client certificate (the -cacert secret).
    alb_ca = private_ca.one(SECRET, name=specs.ALB_CERTS_SECRET).inputs["stringData"]["ca.crt"]
    cacert = private_ca.one(SECRET, name=f"{specs.PRIVATE_GATEWAY_SECRET}-cacert").inputs["stringData"]["ca.crt"]
    assert alb_ca == cacert
    anchors = certs.check_trust_bundle(alb_ca, "ca.crt")
    certs.verify_chain([cert], anchors, what="gateway certificate", purpose="server", host=INTERNAL,
                       anchors_what="ca.crt")
    certs.check_key_matches(cert, certs.parse_private_key(data["tls.key"], "tls.key"), "tls.key")  # raises on a mismatch


def test_gateway_serves_the_internal_name_with_its_certificate(private_ca: mock_program.Rendering) -> None:
    (server,) = private_ca.one(GATEWAY).inputs["spec"]["servers"]
    assert server["hosts"] == [INTERNAL, specs.alb_host(ALB_DOMAIN)]
    assert server["tls"]["mode"] == "MUTUAL"
    assert server["tls"]["credentialName"] == specs.PRIVATE_GATEWAY_SECRET
    gateway = private_ca.one(GATEWAY)
    assert private_ca.depends_on(gateway.urn, _gateway_secret(private_ca).urn)
    assert private_ca.outputs["gatewayDomain"] == INTERNAL
    assert private_ca.outputs["gatewaySecret"] == specs.PRIVATE_GATEWAY_SECRET
    assert private_ca.outputs["gatewayCertificateNotAfter"].endswith("Z")
    # Only what a client outside the cluster can reach: not the gateway's cluster-internal name.
    assert private_ca.outputs["urls"] == [f"https://{specs.alb_host(ALB_DOMAIN)}/status"]


@pytest.mark.parametrize("flavor", ["nginx", "ibm-legacy"])
def test_the_alb_verifies_the_internal_name(flavor: str) -> None:
    r = ok(render({"cluster": CLUSTER, "gatewayCertSource": "private-ca", "albFlavor": flavor}))
    annotations = r.one(INGRESS).inputs["metadata"]["annotations"]
    if flavor == "nginx":
        assert annotations[f"{NGINX}proxy-ssl-name"] == INTERNAL
        assert annotations[f"{NGINX}proxy-ssl-server-name"] == "on"
        assert annotations[f"{NGINX}proxy-ssl-verify"] == "on"
    else:
        assert f"proxy-ssl-name={INTERNAL}" in annotations[f"{specs.BLUEMIX}ssl-services"]


def test_traefik_verifies_the_internal_name() -> None:
    r = ok(render({"cluster": CLUSTER, "gatewayCertSource": "private-ca", "albFlavor": "traefik"}))
    spec = r.by_type(TRANSPORT)[0].inputs["spec"]
    assert spec["serverName"] == INTERNAL and spec["insecureSkipVerify"] is False


def test_renewal_is_early_and_in_place(private_ca: mock_program.Rendering) -> None:
    signed = [s for s in private_ca.by_type(SIGNED) if s.name == "gateway-cert-cert"]
    assert len(signed) == 1
    assert signed[0].inputs["earlyRenewalHours"] == 720 and signed[0].inputs["validityPeriodHours"] == 2160
    # Renewal changes the Secret's data: the provider updates a Secret in place with this flag,
    # instead of replacing it (a replaced Secret would be deleted under the gateway for a moment).
    assert private_ca.one(PROVIDER).inputs["enableSecretMutable"] in (True, "true")
    assert not _gateway_secret(private_ca).delete_before_replace


def test_gateway_cert_hours_are_configurable() -> None:
    r = ok(render({"cluster": CLUSTER, "gatewayCertSource": "private-ca", "gatewayCertValidityHours": 240,
                   "gatewayCertEarlyRenewalHours": 48}))
    (signed,) = [s for s in r.by_type(SIGNED) if s.name == "gateway-cert-cert"]
    assert (signed.inputs["validityPeriodHours"], signed.inputs["earlyRenewalHours"]) == (240, 48)


# --- platform=generic: no ibmcloud at all --------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["nginx", "traefik"])
def test_generic_makes_no_ibmcloud_call(flavor: str) -> None:
    cluster = standin()
    r = ok(render({**GENERIC, "albFlavor": flavor}, cluster))
    assert cluster.discover_calls == []
    assert r.by_type(COMMAND) == []
    ingress = r.one(INGRESS).manifest()
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # The ALB's TLS secret is the user's, in gatewayNamespace: named directly, never mirrored.
    assert ingress["spec"]["tls"] == [{"hosts": ["httpbin.apps.example.com"], "secretName": "apps-example-tls"}]
    assert r.one(GATEWAY).inputs["spec"]["servers"][0]["tls"]["credentialName"] == specs.PRIVATE_GATEWAY_SECRET


def test_generic_with_apps() -> None:
    entry = {"name": "web", "host": "web", "service": "web", "namespace": "web", "port": 80, "createNamespace": True}
    cluster = standin()
    r = ok(render({**GENERIC, "apps": [entry]}, cluster))
    assert cluster.discover_calls == [] and r.by_type(COMMAND) == []
    assert r.outputs["urls"] == ["https://web.apps.example.com"]


def test_generic_default_certificate_when_the_secret_is_elsewhere() -> None:
    r = ok(render({**GENERIC, "albSecretNamespace": "ingress-nginx"}))
    assert r.one(INGRESS).manifest()["spec"]["tls"] == [{"hosts": ["httpbin.apps.example.com"]}]
    assert r.by_type(COMMAND) == []


def test_the_same_stack_on_iks_still_registers_nlb_dns() -> None:
    r = ok(render({"cluster": CLUSTER, "albDomain": ALB_DOMAIN, "albSecret": ALB_SECRET}))
    assert any(c.name == "gateway-dns-registration" for c in r.by_type(COMMAND))


FAKE_IBMCLOUD = ROOT / "tests" / "fake_ibmcloud"


def _with_the_real_discovery(config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[
        mock_program.Rendering, list[Any]]:
    """The program with its own ``ibmcloud`` discovery (not the stand-in's), the fake ``ibmcloud``
    first on PATH recording every call it gets."""
    from components.program import run

    state = tmp_path / "ibmcloud-state.json"
    state.write_text(json.dumps({"clusters": {CLUSTER: {"type": "classic", "id": "c0ffee"}}}))
    monkeypatch.setenv("PATH", f"{FAKE_IBMCLOUD}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_IBMCLOUD_STATE", str(state))
    r = mock_program.render(config, standin(), program=lambda _stand_in_discovery: run())
    return r, json.loads(state.read_text()).get("calls", [])


def test_generic_calls_no_ibmcloud_even_with_one_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r, calls = _with_the_real_discovery({**GENERIC, "albFlavor": "traefik"}, tmp_path, monkeypatch)
    assert r.error is None, r.error
    assert calls == []
    # The same probe sees the call an iks stack makes to discover its ALB.
    _, iks_calls = _with_the_real_discovery({"cluster": CLUSTER}, tmp_path, monkeypatch)
    assert [c["argv"][:3] for c in iks_calls] == [["ks", "cluster", "get"]]


def test_a_renewing_up_keeps_ca_and_keys_and_issues_new_certificates(private_ca: mock_program.Rendering) -> None:
    """What the next ``pulumi up`` in the renewal window changes: only certificates, in the same Secrets."""
    renewed = ok(render({"cluster": CLUSTER, "gatewayCertSource": "private-ca"}, renewal_of=private_ca))
    before, after = _gateway_secret(private_ca), _gateway_secret(renewed)
    assert after.urn == before.urn  # the same Secret, updated in place
    assert after.inputs["stringData"]["tls.key"] == before.inputs["stringData"]["tls.key"]
    assert after.inputs["stringData"]["tls.crt"] != before.inputs["stringData"]["tls.crt"]
    ca_before = private_ca.one(SECRET, name=specs.ALB_CERTS_SECRET).inputs["stringData"]
    ca_after = renewed.one(SECRET, name=specs.ALB_CERTS_SECRET).inputs["stringData"]
    assert ca_after["ca.crt"] == ca_before["ca.crt"] and ca_after["tls.crt"] != ca_before["tls.crt"]
    anchors = certs.check_trust_bundle(ca_after["ca.crt"], "ca.crt")
    renewed_cert = x509.load_pem_x509_certificate(after.inputs["stringData"]["tls.crt"].encode())
    certs.verify_chain([renewed_cert], anchors, what="renewed gateway certificate", purpose="server", host=INTERNAL,
                       anchors_what="ca.crt")
