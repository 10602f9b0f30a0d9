"""albFlavor=traefik under Pulumi's mocks: the IKS Traefik ALB's ServersTransport, our Service, the Ingress.

Also the pure side: the settings, the spec builders and :mod:`tools.traefik_conf`, which
turns the rendered objects into the file-provider configuration a loopback Traefik runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import certs, settings, specs
from tests.support import pki
from tests.support.cluster import ALB_DOMAIN, ALB_SECRET, CLUSTER, GATEWAY_DOMAIN, GATEWAY_SECRET, Render, standin
from tools import mock_program, traefik_conf
from tools.manifests import strings as _strings

SECRET = "kubernetes:core/v1:Secret"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
VS = "kubernetes:networking.istio.io/v1:VirtualService"
TRANSPORT = "kubernetes:traefik.io/v1alpha1:ServersTransport"
COMMAND = "command:local:Command"
ALB_HOST = f"httpbin.{ALB_DOMAIN}"
TRAEFIK = "traefik.ingress.kubernetes.io/"
LABELS = {"app": "alb", "app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "iks-alb-istio-mtls"}

# The Traefik CRD schema, read in place beside the checkout (CI lays shared/ there).
_CRD_CANDIDATES = [
    Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "traefik",
    Path("/work/shared/reference/traefik"),
]
CRD_DIR = Path(os.environ.get("TRAEFIK_REFERENCE_DIR", "") or next((p for p in _CRD_CANDIDATES if p.is_dir()), _CRD_CANDIDATES[0]))


def ok(rendering: mock_program.Rendering) -> mock_program.Rendering:
    assert rendering.error is None, rendering.error
    return rendering


def traefik_render(render: Render, **config: Any) -> mock_program.Rendering:
    return ok(render({"albFlavor": "traefik", **config}))


@pytest.fixture(scope="module")
def traefik() -> mock_program.Rendering:
    """albFlavor=traefik, everything else default (private-ca, mirror, one route)."""
    return ok(mock_program.render({"cluster": CLUSTER, "albFlavor": "traefik"}, standin()))


def dns_command(r: mock_program.Rendering) -> mock_program.Registered:
    return next(c for c in r.by_type(COMMAND) if c.name.endswith("-registration"))


# --- settings ------------------------------------------------------------------------------


def test_traefik_flavor_defaults_to_the_iks_traefik_ingress_class() -> None:
    assert settings.parse_settings({"cluster": "c", "albFlavor": "traefik"}).ingress_class_name == "public-iks-traefik"
    private = settings.parse_settings({"cluster": "c", "albFlavor": "traefik", "ingressClassName": "private-iks-traefik"})
    assert private.ingress_class_name == "private-iks-traefik"
    assert settings.parse_settings({"cluster": "c"}).ingress_class_name == "public-iks-k8s-nginx"
    assert settings.parse_settings({"cluster": "c", "albFlavor": "ibm-legacy"}).ingress_class_name == "iks-nginx"


def test_unknown_flavor_names_every_choice() -> None:
    with pytest.raises(settings.ConfigError) as err:
        settings.parse_settings({"cluster": "c", "albFlavor": "haproxy"})
    assert str(err.value) == "config iks-alb-istio-mtls:albFlavor: must be one of nginx, ibm-legacy, traefik; got 'haproxy'"


def test_pulumi_yaml_and_settings_describe_the_traefik_flavor() -> None:
    root = Path(__file__).resolve().parent.parent
    declared = yaml.safe_load((root / "Pulumi.yaml").read_text())["config"]["albFlavor"]["description"]
    assert declared == settings.KEYS["albFlavor"].description
    assert "traefik" in declared and "public-iks-traefik" in declared


# --- the objects ---------------------------------------------------------------------------


def test_servers_transport(traefik: mock_program.Rendering) -> None:
    st = traefik.one(TRANSPORT)
    assert st.manifest() == {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "ServersTransport",
        "metadata": {"name": "httpbin-gateway-mtls", "namespace": "istio-system", "labels": LABELS},
        "spec": {
            "serverName": GATEWAY_DOMAIN,
            "rootCAs": [{"secret": "alb-certs"}],
            "certificatesSecrets": ["alb-certs"],
            "minVersion": "VersionTLS12",
            "maxVersion": "VersionTLS13",
            "insecureSkipVerify": False,
        },
    }


def test_servers_transport_sets_max_version_with_min_version() -> None:
    """Traefik 3.7 rejects minVersion alone and falls back to a transport without the client cert."""
    spec = specs.servers_transport_spec(gateway_domain="gw.example.com")
    assert spec["minVersion"] == "VersionTLS12" and spec["maxVersion"] == "VersionTLS13"


def test_gateway_service_of_our_own(traefik: mock_program.Rendering) -> None:
    svc = traefik.one(SERVICE, name="httpbin-gateway-tls")
    assert not svc.read
    assert svc.manifest() == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "httpbin-gateway-tls",
            "namespace": "istio-system",
            "labels": LABELS,
            "annotations": {
                f"{TRAEFIK}service.serverstransport": "istio-system-httpbin-gateway-mtls@kubernetescrd",
                f"{TRAEFIK}service.serversscheme": "https",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"istio": "ingressgateway"},
            "ports": [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}],
        },
    }


def _our_service(r: mock_program.Rendering) -> dict[str, Any]:
    return next(x.inputs for x in r.by_type(SERVICE) if not x.read and x.inputs["metadata"]["name"] == specs.TRAEFIK_GATEWAY_SERVICE)


@pytest.mark.parametrize("target", [9443, "https"])
def test_our_service_targets_the_installed_gateways_https_port(target: int | str) -> None:
    """A gateway installed with another pod port: our Service follows the installation's Service."""
    ports = [{"name": "http2", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": target}]
    r = ok(mock_program.render({"cluster": CLUSTER, "albFlavor": "traefik"}, standin(gateway_ports=ports)))
    assert _our_service(r)["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": target, "protocol": "TCP"}]


def test_a_gateway_service_without_443_is_one_clear_error() -> None:
    r = mock_program.render({"cluster": CLUSTER, "albFlavor": "traefik"}, standin(gateway_ports=[{"name": "http2", "port": 80}]))
    assert str(r.error) == (
        "service istio-system/istio-ingressgateway has no port 443: it is not the Istio ingress gateway's "
        "HTTPS Service (gatewayService)"
    )
    assert [x for x in r.resources if not x.read and x.type in (SERVICE, INGRESS) and x.inputs["metadata"]["name"] != "httpbin"] == []


def test_with_an_existing_gateway_domain_the_service_is_still_read_once_for_its_port() -> None:
    ports = [{"name": "https", "port": 443, "targetPort": 9443}]
    config = {"cluster": CLUSTER, "albFlavor": "traefik", "gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert"}
    r = ok(mock_program.render(config, standin(gateway_ports=ports)))
    assert [x.id for x in r.by_type(SERVICE) if x.read] == ["istio-system/istio-ingressgateway"]
    assert "gateway-dns-registration" not in [c.name for c in r.by_type("command:local:Command")]
    assert _our_service(r)["spec"]["ports"][0]["targetPort"] == 9443


def test_istio_gateway_service_is_only_read(traefik: mock_program.Rendering) -> None:
    """The Istio installation owns istio-ingressgateway: we read its address, never write it."""
    mine = [r for r in traefik.by_type(SERVICE) if r.inputs.get("metadata", {}).get("name") == "istio-ingressgateway"]
    assert mine == []
    assert [r.id for r in traefik.by_type(SERVICE) if r.read] == ["istio-system/istio-ingressgateway"]


def test_ingress(traefik: mock_program.Rendering) -> None:
    ing = traefik.one(INGRESS).manifest()
    assert ing == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "httpbin-alb",
            "namespace": "istio-system",
            "labels": LABELS,
            "annotations": {"pulumi.com/skipAwait": "true", f"{TRAEFIK}router.tls": "true"},
        },
        "spec": {
            "ingressClassName": "public-iks-traefik",
            "tls": [{"hosts": [ALB_HOST], "secretName": ALB_SECRET}],
            "rules": [
                {
                    "host": ALB_HOST,
                    "http": {
                        "paths": [
                            {"path": "/status", "pathType": "Prefix",
                             "backend": {"service": {"name": "httpbin-gateway-tls", "port": {"number": 443}}}}
                        ]
                    },
                }
            ],
        },
    }


def test_no_other_flavours_annotations(traefik: mock_program.Rendering) -> None:
    ann = traefik.one(INGRESS).inputs["metadata"]["annotations"]
    assert not any(k.startswith(("nginx.ingress.kubernetes.io/", "ingress.bluemix.net/")) for k in ann)
    assert not any(k.startswith(f"{TRAEFIK}service.") for k in ann), "service.* annotations belong on the Service"


def test_alb_certs_secret_serves_both_transport_fields(traefik: mock_program.Rendering) -> None:
    secret = traefik.one(SECRET, name="alb-certs")
    assert secret.inputs["metadata"]["namespace"] == traefik.one(TRANSPORT).inputs["metadata"]["namespace"]
    data = secret.inputs["stringData"]
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}  # certificatesSecrets: tls.*; rootCAs: ca.crt
    assert data["ca.crt"] == certs.isrg_roots_pem()
    assert data["tls.crt"] == traefik.one("tls:index/locallySignedCert:LocallySignedCert").outputs["certPem"]
    assert "PRIVATE KEY" in data["tls.key"]
    assert secret.is_secret("stringData")


def test_every_reference_resolves(traefik: mock_program.Rendering) -> None:
    """Ingress -> Service -> ServersTransport -> Secrets, as Traefik's providers look them up."""
    st = traefik.one(TRANSPORT).manifest()
    ns = st["metadata"]["namespace"]
    ing = traefik.one(INGRESS).manifest()
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    svc = traefik.one(SERVICE, name=backend["name"]).manifest()
    assert svc["metadata"]["namespace"] == ing["metadata"]["namespace"] == ns
    assert backend["port"]["number"] in [p["port"] for p in svc["spec"]["ports"]]
    ref = svc["metadata"]["annotations"][f"{TRAEFIK}service.serverstransport"]
    assert ref == traefik_conf.normalize(f"{ns}-{st['metadata']['name']}") + "@kubernetescrd"
    for name in st["spec"]["certificatesSecrets"] + [r["secret"] for r in st["spec"]["rootCAs"]]:
        assert traefik.one(SECRET, name=name).inputs["metadata"]["namespace"] == ns


def test_gateway_namespace_and_selector_follow_the_config(render: Render) -> None:
    config = {"albFlavor": "traefik", "gatewayNamespace": "mesh-gw", "albSecretNamespace": "mesh-gw",
              "gatewaySelector": '{"app": "gw", "istio": "ingressgateway"}'}
    r = ok(render(config, standin(secret_namespace="mesh-gw")))
    svc = r.one(SERVICE, name="httpbin-gateway-tls").manifest()
    assert svc["metadata"]["namespace"] == "mesh-gw"
    assert svc["spec"]["selector"] == {"app": "gw", "istio": "ingressgateway"}
    assert svc["metadata"]["annotations"][f"{TRAEFIK}service.serverstransport"] == "mesh-gw-httpbin-gateway-mtls@kubernetescrd"
    assert r.one(TRANSPORT).inputs["metadata"]["namespace"] == "mesh-gw"
    assert r.one(INGRESS).inputs["metadata"]["namespace"] == "mesh-gw"


def test_existing_gateway_domain_is_the_server_name(render: Render) -> None:
    r = traefik_render(render, gatewayDomain="gw.example.com", gatewaySecret="gw-cert")
    assert r.one(TRANSPORT).manifest()["spec"]["serverName"] == "gw.example.com"


def test_several_routes(render: Render) -> None:
    r = traefik_render(render, routes='["/status", "/headers/", "/"]')
    paths = r.one(INGRESS).manifest()["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/status", "Prefix"), ("/headers", "Prefix"), ("/", "Prefix")]
    assert {p["backend"]["service"]["name"] for p in paths} == {"httpbin-gateway-tls"}
    assert r.outputs["urls"] == [
        f"https://{GATEWAY_DOMAIN}/status", f"https://{GATEWAY_DOMAIN}/headers", f"https://{GATEWAY_DOMAIN}",
        f"https://{ALB_HOST}/status", f"https://{ALB_HOST}/headers", f"https://{ALB_HOST}",
    ]


def test_default_certificate_mode(render: Render) -> None:
    r = traefik_render(render, albTlsMode="default-certificate")
    assert r.one(INGRESS).manifest()["spec"]["tls"] == [{"hosts": [ALB_HOST]}]
    assert not [c for c in r.by_type(COMMAND) if c.name.endswith("-tls-mirror")]


def test_alb_tls_secret_is_mirrored_as_for_nginx(traefik: mock_program.Rendering) -> None:
    mirror = next(c for c in traefik.by_type(COMMAND) if c.name.endswith("-tls-mirror"))
    assert traefik.depends_on(traefik.one(INGRESS).urn, mirror.urn)


def test_outputs_are_those_of_the_other_flavours(traefik: mock_program.Rendering) -> None:
    nginx = ok(mock_program.render({"cluster": CLUSTER}, standin()))
    assert set(traefik.outputs) == set(nginx.outputs)
    for key in ("gatewayDomain", "gatewaySecret", "gatewayNamespace", "albHost", "albCertsSecret", "urls", "appNamespace"):
        assert traefik.outputs[key] == nginx.outputs[key], key
    assert traefik.outputs["albCertsSecret"] == "istio-system/alb-certs"


def test_other_flavours_create_no_traefik_objects() -> None:
    for config in ({}, {"albFlavor": "ibm-legacy"}):
        r = ok(mock_program.render({"cluster": CLUSTER, **config}, standin()))
        assert r.by_type(TRANSPORT) == []
        assert [s for s in r.by_type(SERVICE) if s.inputs.get("metadata", {}).get("name") == "httpbin-gateway-tls"] == []


# --- the CRD schema ------------------------------------------------------------------------


def _check(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """The parts of an OpenAPI v3 schema that matter here: type, properties, items."""
    problems: list[str] = []
    kind = schema.get("type")
    types = {"string": str, "boolean": bool, "integer": int, "array": list, "object": dict}
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, (int, str)) else [f"{path}: not int-or-string"]
    if kind in types and (not isinstance(value, types[kind]) or (kind == "integer" and isinstance(value, bool))):
        return [f"{path}: {value!r} is not {kind}"]
    if kind == "object" and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{path}.{key}: not in the schema")
            else:
                problems += _check(item, schema["properties"][key], f"{path}.{key}")
    if kind == "array":
        for i, item in enumerate(value):
            problems += _check(item, schema.get("items", {}), f"{path}[{i}]")
    return problems


def test_servers_transport_matches_the_traefik_crd(traefik: mock_program.Rendering) -> None:
    crd_file = CRD_DIR / "traefik.io_serverstransports.yaml"
    if not crd_file.is_file():
        pytest.skip(f"Traefik CRD reference not found at {crd_file}")
    crd = yaml.safe_load(crd_file.read_text())
    st = traefik.one(TRANSPORT).manifest()
    group, version = st["apiVersion"].split("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == st["kind"]
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert served["served"] is True
    schema = served["schema"]["openAPIV3Schema"]
    assert _check(st["spec"], schema["properties"]["spec"], "spec") == []
    for root_ca in st["spec"]["rootCAs"]:  # x-kubernetes-validations: not both
        assert not ("secret" in root_ca and "configMap" in root_ca)


# --- dependencies --------------------------------------------------------------------------


def test_servers_transport_waits_for_alb_certs_registration_and_gateway(traefik: mock_program.Rendering) -> None:
    st = traefik.one(TRANSPORT).urn
    for other in (traefik.one(SECRET, name="alb-certs"), dns_command(traefik), traefik.one(GATEWAY)):
        assert traefik.depends_on(st, other.urn), other.name


def test_service_waits_for_servers_transport(traefik: mock_program.Rendering) -> None:
    assert traefik.depends_on(traefik.one(SERVICE, name="httpbin-gateway-tls").urn, traefik.one(TRANSPORT).urn)


def test_ingress_waits_for_everything_it_routes_through(traefik: mock_program.Rendering) -> None:
    ing = traefik.one(INGRESS).urn
    for other in (
        traefik.one(TRANSPORT), traefik.one(SERVICE, name="httpbin-gateway-tls"), traefik.one(SECRET, name="alb-certs"),
        traefik.one(GATEWAY), traefik.one(VS), dns_command(traefik),
    ):
        assert traefik.depends_on(ing, other.urn), other.name


def test_registration_order(traefik: mock_program.Rendering) -> None:
    """Registered in the order the engine will create them (and destroy them reversed)."""
    order = [r.urn for r in traefik.resources]
    st = order.index(traefik.one(TRANSPORT).urn)
    assert order.index(traefik.one(SECRET, name="alb-certs").urn) < st
    assert st < order.index(traefik.one(SERVICE, name="httpbin-gateway-tls").urn) < order.index(traefik.one(INGRESS).urn)


def test_no_address_no_traefik_objects(render: Render) -> None:
    r = render({"albFlavor": "traefik"}, standin(gateway_addresses=[]))
    assert r.error is not None
    assert r.by_type(TRANSPORT) == [] and r.by_type(INGRESS) == []


# --- secrets and both client certificate sources ------------------------------------------

ROOT_CA = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
INTER = ROOT_CA.intermediate("Test Client Issuing CA", organization="Example Corp (test)",
                             ekus=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
GOOD = INTER.issue_leaf(pki.ALB_SANS, client_auth=True)


def _alb_source(render: Render, issued: pki.Issued, trusted: str) -> mock_program.Rendering:
    secrets = {f"default/{ALB_SECRET}": {"tls.crt": issued.chain_pem, "tls.key": issued.key_pem}}
    return render({"albFlavor": "traefik", "clientCertSource": "alb", "trustedCaPem": trusted}, standin(secrets=secrets))




@pytest.mark.parametrize("source", ["private-ca", "alb"])
def test_key_material_only_in_secrets(render: Render, source: str) -> None:
    r = ok(_alb_source(render, GOOD, ROOT_CA.cert_pem)) if source == "alb" else traefik_render(render)
    for res in r.resources:
        for path, text in _strings(res.inputs):
            if "PRIVATE KEY" in text:
                assert res.is_secret(path), f"{res.name}.{path} carries a key in the clear"
    for name, value in r.outputs.items():
        assert "PRIVATE KEY" not in json.dumps(value, default=str), name
    for res in (r.one(TRANSPORT), r.one(SERVICE, name="httpbin-gateway-tls"), r.one(INGRESS)):
        assert "PRIVATE" not in json.dumps(res.inputs)
    assert r.one(SECRET, name="alb-certs").is_secret("stringData")


def test_alb_source_carries_the_alb_certificate(render: Render) -> None:
    r = ok(_alb_source(render, GOOD, ROOT_CA.cert_pem))
    data = r.one(SECRET, name="alb-certs").inputs["stringData"]
    assert data["tls.crt"].startswith(GOOD.cert_pem.strip())
    assert data["ca.crt"] == ROOT_CA.cert_pem
    assert r.one(TRANSPORT).manifest()["spec"]["certificatesSecrets"] == ["alb-certs"]
    assert r.one(GATEWAY).manifest()["spec"]["servers"][0]["tls"]["subjectAltNames"] == [f"*.{ALB_DOMAIN}", ALB_DOMAIN]


def test_alb_source_preflight_refuses_a_letsencrypt_leaf_before_any_traefik_object(render: Render) -> None:
    le = pki.letsencrypt_like()
    r = _alb_source(render, pki.alb_leaf(le), le.anchors_pem)
    assert r.error is not None and "has no clientAuth extended key usage" in str(r.error)
    assert r.by_type(TRANSPORT) == [] and r.by_type(INGRESS) == []
    assert [s for s in r.by_type(SERVICE) if s.inputs.get("metadata", {}).get("name") == "httpbin-gateway-tls"] == []
    assert [s for s in r.by_type(SECRET) if s.inputs.get("metadata", {}).get("name") == "alb-certs"] == []


# --- traefik_conf: what Traefik's providers derive, as file-provider config ------------------

FILES = {"client_cert_file": "/run/alb/tls.crt", "client_key_file": "/run/alb/tls.key", "ca_file": "/run/alb/ca.crt"}


def test_file_config_for_the_default_rendering(traefik: mock_program.Rendering) -> None:
    conf = traefik_conf.traefik_file_config(traefik.manifests(), upstream="127.0.0.1:18443", **FILES)
    router_key = traefik_conf.normalize(f"istio-system-httpbin-alb-{ALB_HOST}/status")
    assert conf == {
        "http": {
            "routers": {
                router_key: {
                    "rule": f"Host(`{ALB_HOST}`) && PathPrefix(`/status`)",
                    "service": "istio-system-httpbin-gateway-tls-443",
                    "tls": {},
                }
            },
            "services": {
                "istio-system-httpbin-gateway-tls-443": {
                    "loadBalancer": {
                        "servers": [{"url": "https://127.0.0.1:18443"}],
                        "serversTransport": "istio-system-httpbin-gateway-mtls",
                    }
                }
            },
            "serversTransports": {
                "istio-system-httpbin-gateway-mtls": {
                    "serverName": GATEWAY_DOMAIN,
                    "insecureSkipVerify": False,
                    "minVersion": "VersionTLS12",
                    "maxVersion": "VersionTLS13",
                    "rootCAs": ["/run/alb/ca.crt"],
                    "certificates": [{"certFile": "/run/alb/tls.crt", "keyFile": "/run/alb/tls.key"}],
                }
            },
        }
    }
    assert router_key.startswith("istio-system-httpbin-alb-httpbin-mycluster-") and router_key.endswith("-status")


def test_file_config_routes_entry_points_and_alb_certificate(render: Render) -> None:
    r = traefik_render(render, routes='["/status", "/headers", "/"]')
    conf = traefik_conf.traefik_file_config(
        r.manifests(), upstream="127.0.0.1:1", entry_points=["websecure"],
        alb_cert_file="/run/alb.crt", alb_key_file="/run/alb.key", **FILES,
    )
    rules = sorted(router["rule"] for router in conf["http"]["routers"].values())
    assert rules == sorted(f"Host(`{ALB_HOST}`) && PathPrefix(`{p}`)" for p in ("/status", "/headers", "/"))
    assert all(router["entryPoints"] == ["websecure"] and router["tls"] == {} for router in conf["http"]["routers"].values())
    assert len(conf["http"]["services"]) == 1
    assert conf["tls"] == {"certificates": [{"certFile": "/run/alb.crt", "keyFile": "/run/alb.key"}]}


def test_file_config_default_certificate_mode(render: Render) -> None:
    r = traefik_render(render, albTlsMode="default-certificate")
    conf = traefik_conf.traefik_file_config(
        r.manifests(), upstream="127.0.0.1:1", alb_cert_file="/a.crt", alb_key_file="/a.key", **FILES
    )
    assert conf["tls"] == {"stores": {"default": {"defaultCertificate": {"certFile": "/a.crt", "keyFile": "/a.key"}}}}


def _mutated(r: mock_program.Rendering, kind: str, change: Any) -> list[dict[str, Any]]:
    out = []
    for m in r.manifests():
        m = json.loads(json.dumps(m))
        if m["kind"] == kind:
            m = change(m)
            if m is None:
                continue
        out.append(m)
    return out


def _drop_transport(m: dict[str, Any]) -> None:
    return None


def _secret_without_ca(m: dict[str, Any]) -> dict[str, Any]:
    if m["metadata"]["name"] == "alb-certs":
        del m["stringData"]["ca.crt"]
    return m


def _service_with_middleware(m: dict[str, Any]) -> dict[str, Any]:
    if m["metadata"]["name"] == "httpbin-gateway-tls":
        m["metadata"]["annotations"][f"{TRAEFIK}service.sticky.cookie"] = "true"
    return m


def _ingress_with_middleware(m: dict[str, Any]) -> dict[str, Any]:
    m["metadata"]["annotations"][f"{TRAEFIK}router.middlewares"] = "default-x@kubernetescrd"
    return m


def _transport_with_config_map(m: dict[str, Any]) -> dict[str, Any]:
    m["spec"]["rootCAs"] = [{"configMap": "ca"}]
    return m


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("ServersTransport", _drop_transport, "names ServersTransport 'istio-system-httpbin-gateway-mtls@kubernetescrd', which the program does not create"),
        ("Secret", _secret_without_ca, "secret istio-system/alb-certs (rootCAs) has none of the keys tls.ca, ca.crt"),
        ("Service", _service_with_middleware, f"has annotation {TRAEFIK}service.sticky.cookie, which this translation does not cover"),
        ("Ingress", _ingress_with_middleware, f"has annotation {TRAEFIK}router.middlewares, which this translation does not cover"),
        ("ServersTransport", _transport_with_config_map, "rootCAs entry {'configMap': 'ca'} is not a secret reference"),
    ],
    ids=["transport-missing", "ca-key-missing", "service-annotation", "router-annotation", "configmap-ca"],
)
def test_file_config_refuses_what_it_cannot_translate(traefik: mock_program.Rendering, kind: str, change: Any, message: str) -> None:
    with pytest.raises(traefik_conf.TraefikConfigError) as err:
        traefik_conf.traefik_file_config(_mutated(traefik, kind, change), upstream="127.0.0.1:1", **FILES)
    assert message in str(err.value)


def test_file_config_needs_the_traefik_flavor() -> None:
    nginx = ok(mock_program.render({"cluster": CLUSTER}, standin()))
    with pytest.raises(traefik_conf.TraefikConfigError, match="istio-system/istio-ingressgateway, which the program does not create"):
        traefik_conf.traefik_file_config(nginx.manifests(), upstream="127.0.0.1:1", **FILES)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("istio-system/httpbin-gateway-mtls", "istio-system-httpbin-gateway-mtls"), ("a--b..c/", "a-b-c"), ("-x-", "x")],
)
def test_normalize_is_traefiks(name: str, expected: str) -> None:
    assert traefik_conf.normalize(name) == expected


def test_gateway_secret_name_is_not_touched(traefik: mock_program.Rendering) -> None:
    """The Gateway's own certificate (nlb-dns) is Istio's business, as with every flavour."""
    assert traefik.one(GATEWAY).manifest()["spec"]["servers"][0]["tls"]["credentialName"] == GATEWAY_SECRET


def test_reading_the_gateway_service_logs_nothing(render: Render) -> None:
    """Reading a typed ServicePort by its wire name logged "Key 'targetPort' not found" every run."""
    for ports in (None, [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]):
        cluster = standin() if ports is None else standin(gateway_ports=ports)
        r = render({"albFlavor": "traefik"}, cluster)
        assert r.error is None, r.error
        assert r.logs == [], r.logs
