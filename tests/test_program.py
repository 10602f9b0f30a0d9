"""The program under Pulumi's mocks: every resource, property, dependency and output of the recipe."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import certs, ibmcloud, settings, specs
from tests.support.cluster import ALB_DOMAIN, ALB_SECRET, CLUSTER, GATEWAY_DOMAIN, GATEWAY_SECRET, ROOT, Render, standin
from tools import mock_program
from tools.manifests import strings as _strings

NS = "kubernetes:core/v1:Namespace"
SECRET = "kubernetes:core/v1:Secret"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
VS = "kubernetes:networking.istio.io/v1:VirtualService"
COMMAND = "command:local:Command"
ALB_HOST = f"httpbin.{ALB_DOMAIN}"
NGINX = "nginx.ingress.kubernetes.io/"


def ok(rendering: mock_program.Rendering) -> mock_program.Rendering:
    assert rendering.error is None, rendering.error
    return rendering


def dns_command(r: mock_program.Rendering) -> mock_program.Registered:
    return next(c for c in r.by_type(COMMAND) if c.name.endswith("-registration"))


@pytest.fixture(scope="module")
def default() -> mock_program.Rendering:
    """Defaults: classic, private-ca, nginx; only ``cluster`` set (as with a fresh stack)."""
    return ok(mock_program.render({"cluster": CLUSTER}, standin()))


# --- resources -----------------------------------------------------------------------------


def test_namespace_has_sidecar_injection(default: mock_program.Rendering) -> None:
    ns = default.one(NS)
    assert ns.inputs["metadata"]["name"] == "httptools"
    assert ns.inputs["metadata"]["labels"]["istio-injection"] == "enabled"


def test_httpbin_sample_is_deployed(default: mock_program.Rendering) -> None:
    svc = default.one(SERVICE, name="httpbin")
    assert svc.inputs["metadata"]["namespace"] == "httptools"
    assert svc.manifest()["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": 8080}]
    dep = default.one(DEPLOYMENT)
    assert dep.manifest()["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 8080}]
    assert default.one("kubernetes:core/v1:ServiceAccount").inputs["metadata"]["name"] == "httpbin"


def test_deploy_httpbin_false_keeps_only_the_namespace(render: Render) -> None:
    r = ok(render({"deployHttpbin": "false"}))
    assert r.by_type(DEPLOYMENT) == [] and r.by_type("kubernetes:core/v1:ServiceAccount") == []
    assert len(r.by_type(NS)) == 1


def test_one_explicit_provider_with_mutable_secrets(default: mock_program.Rendering, render: Render) -> None:
    provider = default.one("pulumi:providers:kubernetes")
    assert provider.inputs.get("enableSecretMutable") in (True, "true")
    assert "context" not in provider.inputs  # current kubeconfig context
    k8s_objects = [r for r in default.resources if r.type.startswith("kubernetes:") and r.custom and "providers" not in r.type]
    assert k8s_objects and all(r.provider.startswith(provider.urn) for r in k8s_objects)
    with_context = ok(render({"kubeContext": "iks-prod"})).one("pulumi:providers:kubernetes")
    assert with_context.inputs["context"] == "iks-prod"


def test_gateway_address_is_read_from_the_gateway_service(default: mock_program.Rendering) -> None:
    read = [r for r in default.by_type(SERVICE) if r.read]
    assert [r.id for r in read] == ["istio-system/istio-ingressgateway"]


def test_dns_registration_command(default: mock_program.Rendering) -> None:
    cmd = dns_command(default)
    for action in ("create", "update", "delete"):
        line = cmd.inputs[action]
        argv = shlex.split(line)
        assert argv[:4] == ["python3", "-m", "components.ibmcloud", action], line
        assert not any(a.startswith("/") for a in argv), "no absolute paths: delete replays from any checkout"
        assert argv[argv.index("--cluster") + 1] == CLUSTER
        assert argv[argv.index("--address") + 1] == "169.46.7.10"
        assert argv[argv.index("--secret-namespace") + 1] == "istio-system"
        assert argv[argv.index("--timeout") + 1] == "1800"
        assert "PRIVATE" not in line
    assert "dir" not in cmd.inputs
    assert cmd.delete_before_replace
    assert cmd.inputs["triggers"] == [[CLUSTER, "classic", "istio-system", "169.46.7.10"]]


def test_multizone_classic_registers_every_ip(render: Render) -> None:
    r = ok(render(cluster=standin(gateway_addresses=["169.46.7.10", "169.62.1.4", "169.48.2.9"])))
    argv = shlex.split(dns_command(r).inputs["create"])
    addresses = [argv[i + 1] for i, a in enumerate(argv) if a == "--address"]
    assert addresses == ["169.46.7.10", "169.48.2.9", "169.62.1.4"]


def test_vpc_registers_the_load_balancer_hostname(render: Render) -> None:
    lb = "a1b2c3d4-us-south.lb.appdomain.cloud"
    r = ok(render({"clusterType": "vpc"}, standin(gateway_addresses=[lb])))
    argv = shlex.split(dns_command(r).inputs["create"])
    assert argv[argv.index("--type") + 1] == "vpc"
    assert argv[argv.index("--address") + 1] == lb


def test_gateway_service_without_address_fails_before_the_command(render: Render) -> None:
    r = render(cluster=standin(gateway_addresses=[]))
    assert isinstance(r.error, Exception) and "istio-system/istio-ingressgateway has no load-balancer IP" in str(r.error)
    assert not [c for c in r.by_type(COMMAND) if c.name.endswith("-registration")]
    assert r.by_type(GATEWAY) == [] and r.by_type(INGRESS) == []


def test_dns_result_becomes_outputs(default: mock_program.Rendering) -> None:
    assert default.outputs["gatewayDomain"] == GATEWAY_DOMAIN
    assert default.outputs["gatewaySecret"] == GATEWAY_SECRET
    assert default.outputs["albHost"] == ALB_HOST
    assert default.outputs["urls"] == [f"https://{GATEWAY_DOMAIN}/status", f"https://{ALB_HOST}/status"]


def test_private_ca_and_client_certificate(default: mock_program.Rendering) -> None:
    ca = default.one("tls:index/selfSignedCert:SelfSignedCert")
    assert ca.inputs["isCaCertificate"] is True
    assert "cert_signing" in ca.inputs["allowedUses"]
    csr = default.one("tls:index/certRequest:CertRequest")
    assert csr.inputs["dnsNames"] == [f"alb.{ALB_DOMAIN}"]
    assert len(csr.inputs["subject"]["commonName"]) <= 64
    cert = default.one("tls:index/locallySignedCert:LocallySignedCert")
    assert "client_auth" in cert.inputs["allowedUses"] and "server_auth" not in cert.inputs["allowedUses"]
    assert 0 < cert.inputs["earlyRenewalHours"] < cert.inputs["validityPeriodHours"]
    issued = x509.load_pem_x509_certificate(cert.outputs["certPem"].encode())
    eku = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert default.outputs["clientCertificateNotAfter"] == cert.outputs["validityEndTime"]


def test_alb_certs_secret_for_nginx(default: mock_program.Rendering) -> None:
    secret = default.one(SECRET, name="alb-certs")
    assert secret.inputs["metadata"]["namespace"] == "istio-system"
    data = secret.inputs["stringData"]
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    cert = default.one("tls:index/locallySignedCert:LocallySignedCert")
    assert data["tls.crt"] == cert.outputs["certPem"]
    assert data["tls.key"] == default.by_urn(next(
        r.urn for r in default.by_type("tls:index/privateKey:PrivateKey") if r.name.endswith("client-key")
    )).outputs["privateKeyPem"]
    assert data["ca.crt"] == certs.isrg_roots_pem()
    assert secret.is_secret("stringData")


def test_cacert_secret_holds_the_private_ca(default: mock_program.Rendering) -> None:
    secret = default.one(SECRET, name=f"{GATEWAY_SECRET}-cacert")
    assert secret.inputs["metadata"]["namespace"] == "istio-system"
    assert secret.inputs["stringData"] == {"ca.crt": default.one("tls:index/selfSignedCert:SelfSignedCert").outputs["certPem"]}


def test_gateway_is_mutual_tls_pinned_to_the_alb(default: mock_program.Rendering) -> None:
    gw = default.one(GATEWAY)
    assert gw.inputs["apiVersion"] == "networking.istio.io/v1"
    assert gw.inputs["metadata"]["namespace"] == "istio-system"
    spec = gw.manifest()["spec"]
    assert spec["selector"] == {"istio": "ingressgateway"}
    (server,) = spec["servers"]
    assert server["port"] == {"number": 443, "name": "https-alb-mtls", "protocol": "HTTPS"}
    assert server["hosts"] == [GATEWAY_DOMAIN, ALB_HOST]
    assert server["tls"] == {
        "mode": "MUTUAL",
        "credentialName": GATEWAY_SECRET,
        "minProtocolVersion": "TLSV1_2",
        "subjectAltNames": [f"alb.{ALB_DOMAIN}"],
    }


def test_virtual_service_routes_to_httpbin(default: mock_program.Rendering) -> None:
    spec = default.one(VS).manifest()["spec"]
    assert spec["hosts"] == [GATEWAY_DOMAIN, ALB_HOST]
    assert spec["gateways"] == ["istio-system/httpbin-gateway"]
    (http,) = spec["http"]
    assert http["match"] == [{"uri": {"exact": "/status"}}, {"uri": {"prefix": "/status/"}}]
    assert http["route"] == [{"destination": {"host": "httpbin.httptools.svc.cluster.local", "port": {"number": 8000}}}]


def test_ingress_for_nginx(default: mock_program.Rendering) -> None:
    ing = default.one(INGRESS).manifest()
    assert ing["metadata"]["namespace"] == "istio-system"
    spec = ing["spec"]
    assert spec["ingressClassName"] == "public-iks-k8s-nginx"
    assert spec["tls"] == [{"hosts": [ALB_HOST], "secretName": ALB_SECRET}]
    (rule,) = spec["rules"]
    assert rule["host"] == ALB_HOST
    assert rule["http"]["paths"] == [
        {"path": "/status", "pathType": "Prefix",
         "backend": {"service": {"name": "istio-ingressgateway", "port": {"number": 443}}}}
    ]
    ann = ing["metadata"]["annotations"]
    assert ann[f"{NGINX}backend-protocol"] == "HTTPS"
    assert ann[f"{NGINX}proxy-ssl-secret"] == "istio-system/alb-certs"
    assert ann[f"{NGINX}proxy-ssl-verify"] == "on"
    assert int(ann[f"{NGINX}proxy-ssl-verify-depth"]) >= 2
    assert ann[f"{NGINX}proxy-ssl-name"] == GATEWAY_DOMAIN
    assert ann[f"{NGINX}proxy-ssl-server-name"] == "on"
    assert ann["pulumi.com/skipAwait"] == "true"
    assert not any(k.startswith("ingress.bluemix.net/") for k in ann)


def test_alb_tls_secret_is_mirrored_with_ibm_cli(default: mock_program.Rendering) -> None:
    mirror = next(c for c in default.by_type(COMMAND) if c.name.endswith("-tls-mirror"))
    argv = shlex.split(mirror.inputs["create"])
    assert argv[:4] == ["python3", "-m", "components.ibmcloud", "mirror-secret"]
    assert argv[argv.index("--name") + 1] == ALB_SECRET
    assert argv[argv.index("--from-namespace") + 1] == "default"
    assert argv[argv.index("--namespace") + 1] == "istio-system"
    assert shlex.split(mirror.inputs["delete"])[3] == "unmirror-secret"
    ingress = default.one(INGRESS)
    assert default.depends_on(ingress.urn, mirror.urn)


def test_alb_tls_default_certificate_omits_the_secret(render: Render) -> None:
    r = ok(render({"albTlsMode": "default-certificate"}))
    assert r.one(INGRESS).manifest()["spec"]["tls"] == [{"hosts": [ALB_HOST]}]
    assert not [c for c in r.by_type(COMMAND) if c.name.endswith("-tls-mirror")]


def test_alb_secret_already_in_gateway_namespace_is_used_directly(render: Render) -> None:
    r = ok(render({"albSecretNamespace": "istio-system"}))
    assert r.one(INGRESS).manifest()["spec"]["tls"] == [{"hosts": [ALB_HOST], "secretName": ALB_SECRET}]
    assert not [c for c in r.by_type(COMMAND) if c.name.endswith("-tls-mirror")]


def test_ibm_legacy_flavor(render: Render) -> None:
    r = ok(render({"albFlavor": "ibm-legacy"}))
    data = r.one(SECRET, name="alb-certs").inputs["stringData"]
    assert set(data) == {"client.crt", "client.key", "trusted.crt"}
    ann = r.one(INGRESS).inputs["metadata"]["annotations"]
    assert ann["ingress.bluemix.net/ssl-services"] == (
        f"ssl-service=istio-ingressgateway ssl-secret=alb-certs proxy-ssl-verify-depth=3 proxy-ssl-name={GATEWAY_DOMAIN}"
    )
    assert not any(k.startswith(NGINX) for k in ann)
    # Only IBM's retired ALB image reads ingress.bluemix.net annotations, and it serves iks-nginx:
    # the community ALBs' public-iks-k8s-nginx would ignore ssl-services and not re-encrypt.
    assert r.one(INGRESS).inputs["spec"]["ingressClassName"] == "iks-nginx"


def test_existing_gateway_domain_skips_registration(render: Render) -> None:
    r = ok(render({"gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert"}))
    assert not [c for c in r.by_type(COMMAND) if c.name.endswith("-registration")]
    assert not [s for s in r.by_type(SERVICE) if s.read]
    server = r.one(GATEWAY).manifest()["spec"]["servers"][0]
    assert server["hosts"] == ["gw.example.com", ALB_HOST]
    assert server["tls"]["credentialName"] == "gw-cert"
    assert r.one(SECRET, name="gw-cert-cacert")
    assert r.outputs["gatewayDomain"] == "gw.example.com"
    assert r.one(INGRESS).inputs["metadata"]["annotations"][f"{NGINX}proxy-ssl-name"] == "gw.example.com"


def test_several_routes(render: Render) -> None:
    r = ok(render({"routes": '["/status", "/headers/", "/"]'}))
    paths = r.one(INGRESS).manifest()["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/status", "/headers", "/"]
    assert r.one(VS).manifest()["spec"]["http"][0]["match"] == [
        {"uri": {"exact": "/status"}}, {"uri": {"prefix": "/status/"}},
        {"uri": {"exact": "/headers"}}, {"uri": {"prefix": "/headers/"}},
        {"uri": {"prefix": "/"}},
    ]
    assert r.outputs["urls"] == [
        f"https://{GATEWAY_DOMAIN}/status", f"https://{GATEWAY_DOMAIN}/headers", f"https://{GATEWAY_DOMAIN}",
        f"https://{ALB_HOST}/status", f"https://{ALB_HOST}/headers", f"https://{ALB_HOST}",
    ]


def test_alb_domain_is_discovered_only_when_unset(render: Render) -> None:
    cluster = standin()
    ok(render(cluster=cluster))
    assert cluster.discover_calls == [CLUSTER]
    cluster = standin()
    r = ok(render({"albDomain": "other.example.com", "albSecret": "other"}, cluster))
    assert cluster.discover_calls == []
    assert r.outputs["albHost"] == "httpbin.other.example.com"


def test_discovery_failure_is_one_clear_error(render: Render) -> None:
    def fail(cluster: str) -> ibmcloud.AlbInfo:
        raise ibmcloud.IbmCloudError("not logged in: run `ibmcloud login`")

    cluster = standin()
    cluster.discover = fail  # type: ignore[method-assign]
    r = render(cluster=cluster)
    assert "ibmcloud login" in str(r.error) and "albDomain" in str(r.error)
    assert r.resources == []


# --- dependencies --------------------------------------------------------------------------


def test_gateway_waits_for_registration_and_cacert(default: mock_program.Rendering) -> None:
    gw = default.one(GATEWAY).urn
    assert default.depends_on(gw, dns_command(default).urn)
    assert default.depends_on(gw, default.one(SECRET, name=f"{GATEWAY_SECRET}-cacert").urn)


def test_virtual_service_waits_for_gateway(default: mock_program.Rendering) -> None:
    assert default.depends_on(default.one(VS).urn, default.one(GATEWAY).urn)


def test_ingress_waits_for_alb_certs_gateway_and_virtual_service(default: mock_program.Rendering) -> None:
    ing = default.one(INGRESS).urn
    for other in (default.one(SECRET, name="alb-certs"), default.one(GATEWAY), default.one(VS)):
        assert default.depends_on(ing, other.urn), other.name


def test_httpbin_does_not_wait_for_dns(default: mock_program.Rendering) -> None:
    dns = dns_command(default).urn
    for r in (default.one(DEPLOYMENT), default.one(NS)):
        assert not default.depends_on(r.urn, dns)


def test_no_two_resources_share_a_urn(default: mock_program.Rendering) -> None:
    urns = [r.urn for r in default.resources]
    assert len(urns) == len(set(urns))


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"albFlavor": "ibm-legacy"}])
def test_key_material_only_in_secrets(render: Render, config: dict[str, Any]) -> None:
    r = ok(render(config))
    for res in r.resources:
        for path, text in _strings(res.inputs):
            if "PRIVATE KEY" in text:
                assert res.is_secret(path), f"{res.name}.{path} carries a key in the clear"
    for name, value in r.outputs.items():
        assert "PRIVATE KEY" not in json.dumps(value, default=str), name
    for res in r.by_type(COMMAND):
        assert "PRIVATE" not in json.dumps(res.inputs)


# --- configuration -------------------------------------------------------------------------


def test_pulumi_yaml_declares_every_key_with_the_programs_defaults() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "iks-alb-istio-mtls"
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"]
    declared = project["config"]
    assert set(declared) == set(settings.KEYS)
    for key, spec in settings.KEYS.items():
        entry = declared[key]
        assert entry["description"], key
        default = entry["default"]
        if key == "gatewaySelector":
            default = json.loads(default)
        expected = spec.default if spec.default is not None else ""
        assert default == expected, key


APPS_CONFIG = [{"name": "shop", "host": "shop", "service": "web", "namespace": "shop", "port": 8080}]
GENERIC = {"platform": "generic", "albDomain": "apps.example.com", "albSecret": "apps-tls", "ingressClassName": "nginx"}


@pytest.mark.parametrize(
    "config",
    [
        {"cluster": "c"},
        {"cluster": "c", "apps": APPS_CONFIG},
        {"cluster": "c", "gatewayCertSource": "private-ca"},
        GENERIC,
        {**GENERIC, "apps": APPS_CONFIG, "albFlavor": "traefik"},
    ],
    ids=["iks", "apps", "private-ca", "generic", "generic-apps"],
)
def test_the_clis_defaults_change_nothing(config: dict[str, Any]) -> None:
    """The CLI passes every Pulumi.yaml default as if the user had set it: the program must read
    them as unset, or a key whose default depends on another (routes with apps, albTlsMode on
    generic) would be refused or wrong under the real CLI only."""
    yaml_defaults = {k: v.get("default") for k, v in yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"].items()}
    via_cli = {k: v for k, v in yaml_defaults.items() if v is not None} | config
    assert settings.parse_settings(config) == settings.parse_settings(via_cli)


def test_defaults_are_applied_without_the_cli() -> None:
    s = settings.parse_settings({"cluster": "c"})
    assert s.cluster_type == "classic" and s.routes == ("/status",) and s.cert_wait_timeout_seconds == 1800
    assert s.ingress_class_name == "public-iks-k8s-nginx" and s.gateway_selector == {"istio": "ingressgateway"}


def test_example_stack_file_is_valid() -> None:
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    prefix = "iks-alb-istio-mtls:"
    assert all(k.startswith(prefix) for k in stack)
    parsed = settings.parse_settings({k[len(prefix):]: v for k, v in stack.items()})
    assert parsed.cluster


def test_readme_documents_every_key_and_output(default: mock_program.Rendering) -> None:
    readme = (ROOT / "README.md").read_text()
    for key in settings.KEYS:
        assert f"| `{key}`" in readme, key
    for output in default.outputs:
        assert f"`{output}`" in readme, output


def test_specs_urls_for_root_route() -> None:
    assert specs.urls(["a.example.com"], ["/"]) == ["https://a.example.com"]


# --- what is checked is what is stored ------------------------------------------------------------


def _indented(pem: str) -> str:
    """As a YAML block pasted one level too deep: every line indented, text around the blocks."""
    return "# our roots\n" + "".join(f"    {line}\n" for line in pem.strip().splitlines()) + "  trailing words\n"


def test_an_indented_trusted_ca_bundle_is_stored_canonical(render: Render) -> None:
    from tests.support import pki

    root = pki.self_signed_ca("Test Pasted Root", organization="Example Corp (test)")
    r = render({"trustedCaPem": _indented(root.cert_pem)})
    assert r.error is None, r.error
    stored = r.one("kubernetes:core/v1:Secret", name=specs.ALB_CERTS_SECRET).inputs["stringData"]["ca.crt"]
    assert stored == root.cert_pem
    assert all(line == line.lstrip() for line in stored.splitlines()), "no indented PEM line reaches nginx"


def test_alb_material_is_carried_in_canonical_form(render: Render) -> None:
    """clientCertSource=alb: the secret's indented chain and key reach alb-certs re-written."""
    from cryptography.x509.oid import ExtendedKeyUsageOID as Eku

    from tests.support import pki

    root = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
    leaf = root.intermediate("Test Client Issuing CA", ekus=[Eku.SERVER_AUTH, Eku.CLIENT_AUTH]).issue_leaf(
        pki.ALB_SANS, client_auth=True
    )
    secrets = {f"default/{ALB_SECRET}": {"tls.crt": _indented(leaf.chain_pem), "tls.key": _indented(leaf.key_pem)}}
    r = render({"clientCertSource": "alb", "trustedCaPem": root.cert_pem}, standin(secrets=secrets))
    assert r.error is None, r.error
    data = r.one("kubernetes:core/v1:Secret", name=specs.ALB_CERTS_SECRET).inputs["stringData"]
    assert data["tls.crt"] == certs.to_pem(certs.parse_certificates(leaf.chain_pem, "chain"))
    assert data["tls.key"].startswith("-----BEGIN PRIVATE KEY-----\n") and "    " not in data["tls.key"]
    assert certs.parse_private_key(data["tls.key"], "key").public_key() == leaf.key.public_key()
