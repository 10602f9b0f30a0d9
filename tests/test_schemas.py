"""Schema conformance: every object the program emits, for each test configuration, validates
against the official Kubernetes schemas of every minor from 1.28 to the newest kubernetes-validate
ships (strict), and every custom resource against the CRD of the apiVersion it uses (unknown fields
rejected: the API server would silently drop a misspelt ``credentialName``).  The configurations
cover the httpbin sample and the new shapes (tests/support/stacks.py): ``apps`` with several hosts
on every flavour, ``gatewayCertSource=private-ca`` on every flavour and ``platform=generic``; each new
shape has a control that it is what was validated, and broken variants of it that are refused.
Secrets also meet the API server's own rules that no schema carries (valid keys; a
``kubernetes.io/tls`` Secret holds ``tls.crt`` and ``tls.key``).

The CRDs are read in place from ``shared/reference`` beside the checkout (never copied into the
project; ``SHARED_REFERENCE_DIR`` overrides).  Without it the CRD tests skip, except with
``CI=true``, where they fail.  A new CRD-backed kind is one line in :data:`CRD_FILES`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import settings
from tests.support import pki, schemas, stacks
from tests.support.cluster import ALB_SECRET, CLUSTER, standin
from tests.support.schemas import CRD_FILES, VERSIONS, crd_catalog
from tests.support.schemas import every_version_problems as builtin_problems
from tools import mock_program

pytestmark = pytest.mark.schemas

# --- the configurations -------------------------------------------------------------------------

CLIENT_ROOT = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
CLIENT_LEAF = CLIENT_ROOT.intermediate(
    "Test Client Issuing CA", organization="Example Corp (test)",
    ekus=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
).issue_leaf(pki.ALB_SANS, client_auth=True)
VPC_LB = "a1b2c3d4-us-south.lb.appdomain.cloud"

#: id -> (config overrides as the CLI passes them, stand-in cluster overrides).
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    **{f"flavor-{flavor}": ({"albFlavor": flavor}, {}) for flavor in settings.ALB_FLAVORS},
    "vpc-default-certificate-v1beta1-routes": (
        {"clusterType": "vpc", "albTlsMode": "default-certificate", "istioApiVersion": "networking.istio.io/v1beta1",
         "routes": '["/status", "/headers/", "/"]'},
        {"gateway_addresses": [VPC_LB]},
    ),
    "ibm-legacy-multizone-v1beta1": (
        {"albFlavor": "ibm-legacy", "istioApiVersion": "networking.istio.io/v1beta1"},
        {"gateway_addresses": ["169.46.7.10", "169.62.1.4"]},
    ),
    "existing-gateway-domain-no-httpbin": (
        {"gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert", "albSecretNamespace": "istio-system",
         "deployHttpbin": "false", "appNamespace": "apps",
         "gatewaySelector": '{"istio": "ingressgateway", "app": "istio-ingressgateway"}'},
        {},
    ),
    "alb-client-certificate": (
        {"clientCertSource": "alb", "trustedCaPem": CLIENT_ROOT.cert_pem},
        {"secrets": {f"default/{ALB_SECRET}": {"tls.crt": CLIENT_LEAF.chain_pem, "tls.key": CLIENT_LEAF.key_pem}}},
    ),
    # The new shapes: apps (several entries, a shared host, a custom domain) on every flavour,
    # gatewayCertSource=private-ca on every flavour, platform=generic (private-ca) on nginx and traefik.
    **stacks.new_shape_stacks(),
    "apps-generic-traefik-v1beta1": (
        {**stacks.generic("traefik"), "apps": stacks.APPS, "istioApiVersion": "networking.istio.io/v1beta1"},
        stacks.APPS_CLUSTER,
    ),
}


def _virtual_services(case: str) -> int:
    """How many VirtualServices the case's stack has: one per apps entry, else httpbin's one."""
    return len(CONFIGS[case][0].get("apps") or [None])


@pytest.fixture(scope="module")
def renderings() -> dict[str, mock_program.Rendering]:
    """One rendering per configuration, shared by every test here (a run takes ~0.1-1 s)."""
    out = {}
    for case, (config, cluster) in CONFIGS.items():
        rendering = mock_program.render({"cluster": CLUSTER, **config}, standin(**cluster))
        assert rendering.error is None, f"{case}: {rendering.error}"
        out[case] = rendering
    return out


# --- the program's objects -----------------------------------------------------------------------


def test_versions_are_every_minor_from_1_28_to_the_newest() -> None:
    minors = [int(v.split(".")[1]) for v in VERSIONS]
    assert VERSIONS[0] == "1.28"
    assert minors == list(range(28, minors[-1] + 1)), "no minor skipped"
    assert minors[-1] >= 33, f"kubernetes-validate ships only up to {VERSIONS[-1]}: upgrade it"


@pytest.mark.parametrize("case", list(CONFIGS))
def test_builtin_objects_validate_strictly_in_every_version(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    objects = [m for m in renderings[case].manifests() if not schemas.is_custom(m)]
    kinds = {m["kind"] for m in objects}
    assert {"Namespace", "Secret", "Ingress"} <= kinds, kinds
    problems = {f"{m['kind']} {m['metadata'].get('name')}": builtin_problems(m) for m in objects}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_custom_resources_validate_against_the_crd_of_their_version(
    renderings: dict[str, mock_program.Rendering], case: str
) -> None:
    catalog = crd_catalog()
    custom = [m for m in renderings[case].manifests() if schemas.is_custom(m)]
    istio = [m for m in custom if schemas.api_group(m["apiVersion"]) == "networking.istio.io"]
    expected_version = CONFIGS[case][0].get("istioApiVersion", "networking.istio.io/v1")
    assert sorted(m["kind"] for m in istio) == ["Gateway", *["VirtualService"] * _virtual_services(case)]
    assert {m["apiVersion"] for m in istio} == {expected_version}
    traefik = CONFIGS[case][0].get("albFlavor") == "traefik"
    assert [m["kind"] for m in custom if m not in istio] == (["ServersTransport"] if traefik else [])
    problems = {
        f"{m['kind']} {m['metadata'].get('name')}": catalog.problems(m, metadata_version=VERSIONS[-1]) for m in custom
    }
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_custom_group_the_program_uses_has_a_crd_file(renderings: dict[str, mock_program.Rendering]) -> None:
    groups = {schemas.api_group(m["apiVersion"]) for r in renderings.values() for m in r.manifests() if schemas.is_custom(m)}
    assert "networking.istio.io" in groups
    assert groups <= set(CRD_FILES), f"add the CRD of {sorted(groups - set(CRD_FILES))} to CRD_FILES"


# --- the new shapes are what was validated -------------------------------------------------------

APPS_CASES = [case for case, (config, _) in CONFIGS.items() if config.get("apps")]
PRIVATE_CA_CASES = [
    case for case, (config, _) in CONFIGS.items()
    if settings.parse_settings({"cluster": CLUSTER, **config}).gateway_cert_source == "private-ca"
]


def test_every_new_shape_is_in_the_table() -> None:
    assert {f"apps-{flavor}" for flavor in settings.ALB_FLAVORS} <= set(APPS_CASES)
    assert {f"private-ca-{flavor}" for flavor in settings.ALB_FLAVORS} | {"generic-nginx", "generic-traefik"} \
        <= set(PRIVATE_CA_CASES)


def _of(rendering: mock_program.Rendering, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [m for m in rendering.manifests() if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


@pytest.mark.parametrize("case", APPS_CASES)
def test_an_apps_stack_validates_several_hosts_and_routes(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    """The control for the schema tests above: an apps stack's objects are the multi-host shape
    (a rule per host, a TLS entry per secret, a VirtualService per entry), not httpbin's one host."""
    config = CONFIGS[case][0]
    domain = config.get("albDomain", pki.ALB_DOMAIN)
    hosts = [f"web.{domain}", f"api.{domain}", stacks.CUSTOM_HOST]
    (ingress,) = _of(renderings[case], "Ingress")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == hosts
    assert [len(rule["http"]["paths"]) for rule in ingress["spec"]["rules"]] == [1, 3, 1]
    tls = ingress["spec"]["tls"]
    assert len(tls) == 2 and {"hosts": [stacks.CUSTOM_HOST], "secretName": stacks.CUSTOM_SECRET} in tls
    virtual_services = _of(renderings[case], "VirtualService")
    assert sorted(vs["metadata"]["name"] for vs in virtual_services) == stacks.APP_VIRTUAL_SERVICES
    assert sorted(h for vs in virtual_services for h in vs["spec"]["hosts"]) == sorted([hosts[0], hosts[1], hosts[1], hosts[2]])
    (gateway,) = _of(renderings[case], "Gateway")
    assert set(hosts) <= set(gateway["spec"]["servers"][0]["hosts"])


@pytest.mark.parametrize("case", PRIVATE_CA_CASES)
def test_a_private_ca_stack_validates_the_gateways_own_certificate(
    renderings: dict[str, mock_program.Rendering], case: str
) -> None:
    """The control for private-ca: its TLS Secret, the Gateway naming it, and the ALB's verify name."""
    rendering = renderings[case]
    (secret,) = _of(rendering, "Secret", "alb-mtls-gateway-cert")
    assert secret["type"] == "kubernetes.io/tls" and sorted(secret["stringData"]) == ["tls.crt", "tls.key"]
    assert _of(rendering, "Secret", "alb-mtls-gateway-cert-cacert")
    (gateway,) = _of(rendering, "Gateway")
    server = gateway["spec"]["servers"][0]
    assert server["tls"]["credentialName"] == "alb-mtls-gateway-cert"
    assert server["hosts"][0] == stacks.PRIVATE_GATEWAY_NAME
    flavor = CONFIGS[case][0].get("albFlavor", "nginx")
    if flavor == "traefik":
        (transport,) = _of(rendering, "ServersTransport")
        assert transport["spec"]["serverName"] == stacks.PRIVATE_GATEWAY_NAME
    else:
        (ingress,) = _of(rendering, "Ingress")
        annotations = " ".join(ingress["metadata"]["annotations"].values())
        assert stacks.PRIVATE_GATEWAY_NAME in annotations
    assert not [r for r in rendering.resources if r.type == "command:local:Command" and "nlb-dns" in str(r.inputs)]


@pytest.mark.parametrize("case", list(CONFIGS))
def test_secrets_hold_what_the_api_server_requires(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    """Rules the API server applies that no schema carries: Secret keys, and a kubernetes.io/tls
    Secret's tls.crt and tls.key."""
    secrets = _of(renderings[case], "Secret")
    assert secrets
    assert {m["metadata"]["name"]: p for m in secrets if (p := schemas.secret_problems(m))} == {}
    if case in PRIVATE_CA_CASES:
        assert [m for m in secrets if m.get("type") == "kubernetes.io/tls"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda m: m["stringData"].pop("tls.key"), "a kubernetes.io/tls Secret needs key tls.key"),
        (lambda m: m["stringData"].update({"tls crt": "x"}), "key 'tls crt' is not a valid Secret key"),
        (lambda m: m.update(data={"tls.crt": "x"}, stringData={"tls.key": "y"}), None),
    ],
    ids=['tls-without-key', 'key-with-a-space', 'data-and-stringdata-together'],
)
def test_the_secret_rules_can_fail(renderings: dict[str, mock_program.Rendering], mutate: Any, expected: str | None) -> None:
    (secret,) = _of(renderings["private-ca-nginx"], "Secret", "alb-mtls-gateway-cert")
    secret = copy.deepcopy(secret)
    assert schemas.secret_problems(secret) == []
    mutate(secret)
    problems = schemas.secret_problems(secret)
    if expected is None:
        assert problems == [], "data and stringData together make up the Secret"
    else:
        assert any(expected in p for p in problems), problems


# --- the checks can fail -------------------------------------------------------------------------


def _default(renderings: dict[str, mock_program.Rendering], kind: str) -> dict[str, Any]:
    found = [m for m in renderings["flavor-nginx"].manifests()
             if m["kind"] == kind and (kind != "Secret" or m["metadata"]["name"] == "alb-certs")]
    assert len(found) == 1
    return copy.deepcopy(found[0])


def test_unknown_field_in_a_builtin_object_is_refused_in_every_version(renderings: dict[str, mock_program.Rendering]) -> None:
    ingress = _default(renderings, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    backend["port"] = {"nmber": 443}
    problems = schemas.SchemaBook(VERSIONS).problems(ingress)
    assert len(problems) == len(VERSIONS)
    assert all("'nmber' was unexpected" in p for p in problems), problems


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        ("Namespace", lambda m: m["metadata"].update(lables={"a": "b"}), "'lables' was unexpected"),
        ("Deployment", lambda m: m["spec"].update(replicas="1"), "'1' is not of type 'integer'"),
        ("Secret", lambda m: m.update(stringdata={"a": "b"}), "'stringdata' was unexpected"),
        ("Ingress", lambda m: m["spec"]["tls"][0].update(secret="x"), "'secret' was unexpected"),
    ],
)
def test_builtin_schema_catches(renderings: dict[str, mock_program.Rendering], kind: str, mutate: Any, expected: str) -> None:
    manifest = _default(renderings, kind)
    assert schemas.builtin_problems(manifest, VERSIONS[-1]) == []
    mutate(manifest)
    problems = schemas.builtin_problems(manifest, VERSIONS[-1])
    assert problems and expected in problems[0], problems


def _new_shape(renderings: dict[str, mock_program.Rendering], case: str, kind: str, name: str | None) -> dict[str, Any]:
    found = _of(renderings[case], kind, name)
    assert len(found) == 1, (case, kind, name)
    return copy.deepcopy(found[0])


@pytest.mark.parametrize(
    ("case", "kind", "name", "mutate", "expected"),
    [
        ("apps-nginx", "Ingress", None,
         lambda m: m["spec"]["rules"][2]["http"]["paths"][0]["backend"]["service"].update(prt={"number": 443}),
         "spec.rules[2].http.paths[0].backend.service: Additional properties are not allowed ('prt' was unexpected)"),
        ("apps-traefik", "Ingress", None, lambda m: m["spec"]["tls"][1].update(secretNmae="x"),
         "spec.tls[1]: Additional properties are not allowed ('secretNmae' was unexpected)"),
        ("apps-ibm-legacy", "Ingress", None, lambda m: m["spec"]["rules"][1]["http"]["paths"][2].update(pathType=None),
         "spec.rules[1].http.paths[2].pathType: None is not of type 'string'"),
        ("private-ca-nginx", "Secret", "alb-mtls-gateway-cert", lambda m: m["stringData"].update({"tls.key": 1}),
         "stringData.tls.key: 1 is not of type 'string'"),
        ("generic-traefik", "Service", "httpbin-gateway-tls", lambda m: m["spec"]["ports"][0].update(targetport=8443),
         "('targetport' was unexpected)"),
    ],
    ids=['ingress-third-rule-backend', 'ingress-second-tls-entry', 'ingress-path-type-null', 'gateway-cert-key-not-text', 'traefik-service-port'],
)
def test_builtin_schema_catches_in_the_new_shapes(
    renderings: dict[str, mock_program.Rendering], case: str, kind: str, name: str | None, mutate: Any, expected: str
) -> None:
    manifest = _new_shape(renderings, case, kind, name)
    assert schemas.builtin_problems(manifest, VERSIONS[-1]) == []
    mutate(manifest)
    problems = schemas.builtin_problems(manifest, VERSIONS[-1])
    assert problems and expected in problems[0], problems


@pytest.mark.parametrize(
    ("case", "kind", "name", "mutate", "expected"),
    [
        ("apps-nginx", "VirtualService", "alb-mtls-users", lambda m: m["spec"]["http"][0].update(timout="5s"),
         "spec.http[0]: Additional properties are not allowed ('timout' was unexpected)"),
        ("apps-traefik", "VirtualService", "alb-mtls-shop", lambda m: m["spec"].update(gateway=m["spec"].pop("gateways")),
         "spec: Additional properties are not allowed ('gateway' was unexpected)"),
        ("apps-ibm-legacy", "VirtualService", "alb-mtls-orders",
         lambda m: m["spec"]["http"][0]["route"][0]["destination"]["port"].update(number="9000"), "'9000' is not of type 'integer'"),
        ("private-ca-traefik", "ServersTransport", None, lambda m: m["spec"].update(serverName=["x"]),
         "spec.serverName: ['x'] is not of type 'string'"),
        ("generic-nginx", "Gateway", None, lambda m: _tls(m).update(credentialName=None),
         "spec.servers[0].tls.credentialName: None is not of type 'string'"),
    ],
    ids=['vs-users-timeout-typo', 'vs-shop-gateways-typo', 'vs-orders-port-as-text', 'transport-server-name-list', 'generic-gateway-credential-null'],
)
def test_crd_schema_catches_in_the_new_shapes(
    renderings: dict[str, mock_program.Rendering], case: str, kind: str, name: str | None, mutate: Any, expected: str
) -> None:
    catalog = crd_catalog()
    manifest = _new_shape(renderings, case, kind, name)
    assert catalog.problems(manifest, metadata_version=VERSIONS[-1]) == []
    mutate(manifest)
    problems = catalog.problems(manifest, metadata_version=VERSIONS[-1])
    assert any(expected in p for p in problems), problems


def _tls(m: dict[str, Any]) -> dict[str, Any]:
    return m["spec"]["servers"][0]["tls"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        ("Gateway", lambda m: _tls(m).update(credentialNmae=_tls(m).pop("credentialName")),
         "spec.servers[0].tls: Additional properties are not allowed ('credentialNmae' was unexpected)"),
        ("Gateway", lambda m: _tls(m).update(mode="MUTAL"), "spec.servers[0].tls.mode: 'MUTAL' is not one of"),
        ("Gateway", lambda m: _tls(m).update(credentialNames=["other"]),
         "only one of credentialName or credentialNames can be set"),
        ("Gateway", lambda m: m["spec"]["servers"][0]["port"].update(number="443"), "'443' is not of type 'integer'"),
        ("Gateway", lambda m: m.update(specs={}), "(root): Additional properties are not allowed ('specs' was unexpected)"),
        ("Gateway", lambda m: m["metadata"].update(lables={}), "metadata: Additional properties are not allowed ('lables'"),
        ("Gateway", lambda m: m.update(apiVersion="networking.istio.io/v2"), "no CRD in the catalog defines Gateway in networking.istio.io/v2"),
        ("VirtualService", lambda m: m["spec"]["http"][0].update(timeout="0.5ms"), "timeout: must be a valid duration greater than 1ms"),
        ("VirtualService", lambda m: m["spec"]["http"][0].update(timout="5s"), "('timout' was unexpected)"),
    ],
)
def test_crd_schema_catches(renderings: dict[str, mock_program.Rendering], kind: str, mutate: Any, expected: str) -> None:
    catalog = crd_catalog()
    manifest = _default(renderings, kind)
    assert catalog.problems(manifest, metadata_version=VERSIONS[-1]) == []
    mutate(manifest)
    problems = catalog.problems(manifest, metadata_version=VERSIONS[-1])
    assert any(expected in p for p in problems), problems


def test_a_valid_timeout_passes_the_cel_rule(renderings: dict[str, mock_program.Rendering]) -> None:
    catalog = crd_catalog()
    manifest = _default(renderings, "VirtualService")
    manifest["spec"]["http"][0]["timeout"] = "1.5s"
    assert catalog.problems(manifest, metadata_version=VERSIONS[-1]) == []


TRANSPORT = {
    "apiVersion": "traefik.io/v1alpha1",
    "kind": "ServersTransport",
    "metadata": {"name": "gw", "namespace": "istio-system"},
    "spec": {"serverName": "gw.example.com", "rootCAs": [{"secret": "alb-certs"}], "certificatesSecrets": ["alb-certs"],
             "minVersion": "VersionTLS12", "maxVersion": "VersionTLS13", "insecureSkipVerify": False},
}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(serverNmae="x"), "('serverNmae' was unexpected)"),
        (lambda s: s["rootCAs"][0].update(configMap="ca"), "(CEL: !has(self.secret) || !has(self.configMap))"),
        (lambda s: s.update(insecureSkipVerify="false"), "'false' is not of type 'boolean'"),
    ],
)
def test_the_catalog_is_generic_over_crd_files(mutate: Any, expected: str) -> None:
    """The Traefik CRD works through the same lookup as Istio's: a new kind is a CRD file."""
    catalog = crd_catalog()
    transport = copy.deepcopy(TRANSPORT)
    assert catalog.problems(transport, metadata_version=VERSIONS[-1]) == []
    mutate(transport["spec"])
    problems = catalog.problems(transport, metadata_version=VERSIONS[-1])
    assert any(expected in p for p in problems), problems


# --- the strict conversion itself (no reference needed) ------------------------------------------

_CRD = {
    "kind": "CustomResourceDefinition",
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget"},
        "versions": [
            {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                "type": "object",
                "properties": {
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "maybe": {"type": "string", "nullable": True},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "size": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 1"}]},
                },
            }}}}},
            {"name": "v0", "served": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
        ],
    },
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"free": {"anything": {"goes": 1}}, "maybe": None, "labels": {"a": "b"}}, []),
        ({"extra": 1}, ["('extra' was unexpected)"]),
        ({"labels": {"a": 1}}, ["1 is not of type 'string'"]),
        ({"size": "xx"}, ["cannot evaluate the CEL rule 'self.size() > 1' offline"]),
    ],
)
def test_strict_conversion(spec: dict[str, Any], expected: list[str]) -> None:
    catalog = schemas.CrdCatalog()
    catalog.add(_CRD, source="test")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}
    problems = catalog.problems(widget, metadata_version=VERSIONS[-1])
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems, strict=True)), problems


def test_a_version_that_is_not_served_is_refused() -> None:
    catalog = schemas.CrdCatalog()
    catalog.add(_CRD, source="test")
    problems = catalog.problems({"apiVersion": "example.com/v0", "kind": "Widget", "metadata": {"name": "w"}},
                                metadata_version=VERSIONS[-1])
    assert problems == ["test example.com/v0 Widget: this version is not served"]


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) <= 1", {"a": 1}, True),
        ("(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) <= 1", {"a": 1, "b": 2}, False),
        ("!has(self.a) || !has(self.b)", {"b": 1}, True),
        ("!has(self.a) || !has(self.b)", {"a": 1, "b": 2}, False),
        ("duration(self) >= duration('1ms')", "1m30s", True),
        ("duration(self) >= duration('1ms')", "900us", False),
        ("duration(self) >= duration('1ms')", "soon", False),
        ("self.size() > 1", "xx", None),
    ],
)
def test_cel_rules_evaluated_offline(rule: str, value: Any, expected: bool | None) -> None:
    assert schemas.evaluate_cel(rule, value) is expected
