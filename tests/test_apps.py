"""``apps``: your own services behind the mutual-TLS hop, under Pulumi's mocks.

One Gateway server for every host (MUTUAL, the pinned client SANs), a VirtualService per entry,
one Ingress rule per host on every ALB flavour, namespaces created or only read, and a custom
domain's TLS secret checked before the Ingress names it and never copied.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import yaml

from components import specs
from tests.support import documented, pki
from tests.support.cluster import ALB_DOMAIN, ALB_SECRET, CLUSTER, GATEWAY_DOMAIN, GATEWAY_SECRET, ROOT, standin
from tools import mock_program
from tools.manifests import strings

NS = "kubernetes:core/v1:Namespace"
SECRET = "kubernetes:core/v1:Secret"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
VS = "kubernetes:networking.istio.io/v1:VirtualService"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"

CUSTOM_HOST = "shop.example.com"
CUSTOM_SECRET = "shop-example-tls"
CUSTOM_CA = pki.self_signed_ca("Example Corp Test Root")
CUSTOM_CERT = CUSTOM_CA.issue_leaf([CUSTOM_HOST])

APPS: list[dict[str, Any]] = [
    {"name": "web", "host": "web", "paths": ["/"], "service": "frontend", "namespace": "web", "port": 8080,
     "createNamespace": True},
    {"name": "orders", "host": "api", "paths": ["/orders"], "service": "orders", "namespace": "shop", "port": 9000},
    {"name": "users", "host": "api", "paths": ["/users", "/login"], "service": "users", "namespace": "shop",
     "port": 9001},
    {"name": "shop", "host": CUSTOM_HOST, "tlsSecret": CUSTOM_SECRET, "paths": ["/"], "service": "storefront",
     "namespace": "shop", "port": 80},
]
API_HOST = f"api.{ALB_DOMAIN}"
WEB_HOST = f"web.{ALB_DOMAIN}"


def cluster(material: pki.Issued | None = CUSTOM_CERT, **secret: str) -> mock_program.ClusterStandIn:
    """The stand-in with namespace ``shop`` existing and the custom domain's TLS secret in istio-system."""
    data = {"tls.crt": material.chain_pem, "tls.key": material.key_pem} if material else {}
    data.update(secret)
    return standin(
        namespaces=("default", "istio-system", "kube-system", "shop"),
        secrets={f"istio-system/{CUSTOM_SECRET}": data},
    )


def render(config: dict[str, Any] | None = None, standin_cluster: mock_program.ClusterStandIn | None = None,
           **kw: Any) -> mock_program.Rendering:
    return mock_program.render({"cluster": CLUSTER, "apps": APPS, **(config or {})}, standin_cluster or cluster(), **kw)


def ok(r: mock_program.Rendering) -> mock_program.Rendering:
    assert r.error is None, r.error
    return r


@pytest.fixture(scope="module")
def apps() -> mock_program.Rendering:
    return ok(render())


# --- the mesh: one Gateway, a VirtualService per entry ---------------------------------------------


def test_one_mutual_gateway_server_serves_every_host(apps: mock_program.Rendering) -> None:
    (server,) = apps.one(GATEWAY).inputs["spec"]["servers"]
    assert server["hosts"] == [GATEWAY_DOMAIN, WEB_HOST, API_HOST, CUSTOM_HOST]
    assert server["tls"]["mode"] == "MUTUAL"
    assert server["tls"]["credentialName"] == GATEWAY_SECRET
    assert server["tls"]["subjectAltNames"] == [specs.alb_client_dns_name(ALB_DOMAIN)]


def test_a_virtual_service_per_entry_to_its_service(apps: mock_program.Rendering) -> None:
    services = {vs.inputs["metadata"]["name"]: vs.inputs for vs in apps.by_type(VS)}
    assert sorted(services) == ["alb-mtls-orders", "alb-mtls-shop", "alb-mtls-users", "alb-mtls-web"]
    users = services["alb-mtls-users"]
    assert users["metadata"]["namespace"] == "istio-system"
    assert users["spec"]["hosts"] == [API_HOST]
    assert users["spec"]["gateways"] == [f"istio-system/{specs.GATEWAY_NAME}"]
    (http,) = users["spec"]["http"]
    assert http["match"] == [{"uri": {"exact": "/users"}}, {"uri": {"prefix": "/users/"}},
                             {"uri": {"exact": "/login"}}, {"uri": {"prefix": "/login/"}}]
    assert http["route"] == [{"destination": {"host": "users.shop.svc.cluster.local", "port": {"number": 9001}}}]
    assert services["alb-mtls-web"]["spec"]["http"][0]["match"] == [{"uri": {"prefix": "/"}}]
    assert services["alb-mtls-shop"]["spec"]["hosts"] == [CUSTOM_HOST]


def test_no_httpbin_unless_asked(apps: mock_program.Rendering) -> None:
    assert not apps.by_type(DEPLOYMENT)
    assert "httpbin" not in [vs.inputs["metadata"]["name"] for vs in apps.by_type(VS)]
    assert "appNamespace" not in apps.outputs and "albHost" not in apps.outputs


def test_httpbin_beside_apps_when_asked() -> None:
    entry = {"name": "httpbin", "host": "httpbin", "paths": ["/status"], "service": "httpbin",
             "namespace": "httptools", "port": 8000}
    r = ok(render({"deployHttpbin": "true", "apps": [*APPS, entry]}))
    assert r.one(DEPLOYMENT).inputs["metadata"]["namespace"] == "httptools"
    # The sample's namespace is the program's already: the entry waits for it, never reads it.
    assert [ns.id for ns in r.by_type(NS) if ns.read] == ["shop"]
    httptools = [ns for ns in r.by_type(NS) if not ns.read and ns.inputs["metadata"]["name"] == "httptools"]
    assert len(httptools) == 1
    vs = next(v for v in r.by_type(VS) if v.inputs["metadata"]["name"] == "alb-mtls-httpbin")
    assert r.depends_on(vs.urn, httptools[0].urn)
    assert r.outputs["appNamespace"] == "httptools"


# --- namespaces: created or read, as the entry says -------------------------------------------------


def test_created_namespace_has_injection_and_read_one_is_not_owned(apps: mock_program.Rendering) -> None:
    namespaces = {ns.inputs["metadata"]["name"] if not ns.read else ns.id: ns for ns in apps.by_type(NS)}
    assert set(namespaces) == {"web", "shop"}
    assert not namespaces["web"].read
    assert namespaces["web"].inputs["metadata"]["labels"]["istio-injection"] == "enabled"
    assert namespaces["shop"].read  # createNamespace false: referenced, never created or deleted
    orders = next(v for v in apps.by_type(VS) if v.inputs["metadata"]["name"] == "alb-mtls-orders")
    assert apps.depends_on(orders.urn, namespaces["shop"].urn)


def test_a_missing_namespace_stops_the_run_before_its_routes() -> None:
    r = render(standin_cluster=standin(secrets=cluster().secrets))  # no namespace "shop"
    assert r.error is not None and "resource 'shop' does not exist" in str(r.error)
    assert not [v for v in r.by_type(VS) if v.inputs["metadata"]["name"] in ("alb-mtls-orders", "alb-mtls-users")]


# --- the Ingress: a rule per host, TLS per host, on every flavour ------------------------------------


@pytest.mark.parametrize("flavor", ["nginx", "traefik", "ibm-legacy"])
def test_ingress_has_a_rule_per_host_on_every_flavour(flavor: str) -> None:
    r = ok(render({"albFlavor": flavor}))
    spec = r.one(INGRESS).manifest()["spec"]
    rules = {rule["host"]: [p["path"] for p in rule["http"]["paths"]] for rule in spec["rules"]}
    assert rules == {WEB_HOST: ["/"], API_HOST: ["/orders", "/users", "/login"], CUSTOM_HOST: ["/"]}
    backend = specs.ingress_backend_service(flavor, "istio-ingressgateway")
    assert {p["backend"]["service"]["name"] for rule in spec["rules"] for p in rule["http"]["paths"]} == {backend}
    tls = {tuple(entry["hosts"]): entry.get("secretName") for entry in spec["tls"]}
    assert tls[(CUSTOM_HOST,)] == CUSTOM_SECRET
    assert tls[(WEB_HOST, API_HOST)] == ALB_SECRET  # the mirrored ALB certificate, as for httpbin


def test_default_certificate_mode_serves_label_hosts_with_the_albs_default() -> None:
    r = ok(render({"albTlsMode": "default-certificate"}))
    tls = r.one(INGRESS).manifest()["spec"]["tls"]
    assert {"hosts": [WEB_HOST, API_HOST]} in tls
    assert {"hosts": [CUSTOM_HOST], "secretName": CUSTOM_SECRET} in tls


def test_urls_list_every_host_and_path(apps: mock_program.Rendering) -> None:
    assert apps.outputs["urls"] == [
        f"https://{WEB_HOST}",
        f"https://{API_HOST}/orders",
        f"https://{API_HOST}/users",
        f"https://{API_HOST}/login",
        f"https://{CUSTOM_HOST}",
    ]


# --- the custom domain's TLS secret: checked, never copied ------------------------------------------


def test_custom_tls_secret_is_read_from_the_gateway_namespace_and_never_copied(apps: mock_program.Rendering) -> None:
    reads = [r for r in apps.by_type(SECRET) if r.read]
    assert [r.id for r in reads] == [f"istio-system/{CUSTOM_SECRET}"]
    created = [r.inputs["metadata"]["name"] for r in apps.by_type(SECRET) if not r.read]
    assert CUSTOM_SECRET not in created
    key_lines = {line for line in CUSTOM_CERT.key_pem.splitlines() if "PRIVATE KEY" not in line}
    for res in apps.resources:
        if res.read:
            continue
        for _, text in strings(res.inputs):
            assert not key_lines & set(text.splitlines()), f"{res.name} carries the custom domain's key"
    ingress = apps.one(INGRESS)
    assert apps.depends_on(ingress.urn, reads[0].urn)  # the Ingress names it only after the check


NOW = pki.utcnow()
DAY = dt.timedelta(days=1)
REF = f"istio-system/{CUSTOM_SECRET}"
CRT = f"secret {REF} key tls.crt"
KEY = f"secret {REF} key tls.key"
OTHER_KEY = pki.key_pem(pki.new_key())

# (case, material, extra secret keys, exact message)
BAD_TLS: list[tuple[str, pki.Issued | None, dict[str, str], str]] = [
    ("no-tls-crt", None, {"tls.key": CUSTOM_CERT.key_pem},
     f"apps entry 'shop' tlsSecret: secret {REF} has no key tls.crt: it is not a TLS secret (kubectl create secret tls)"),
    ("another-host", CUSTOM_CA.issue_leaf(["other.example.com"]), {},
     f"apps entry 'shop' tlsSecret: {CRT} (CN=other.example.com) does not cover host {CUSTOM_HOST}: its DNS names "
     "are other.example.com."),
    ("expired", CUSTOM_CA.issue_leaf([CUSTOM_HOST], not_before=NOW - 90 * DAY, not_after=NOW - DAY), {},
     ""),
    ("key-of-another-certificate", CUSTOM_CERT, {"tls.key": OTHER_KEY},
     f"apps entry 'shop' tlsSecret: {KEY} does not belong to the certificate in key tls.crt (CN={CUSTOM_HOST}): "
     "their public keys differ."),
]


@pytest.mark.parametrize(("material", "extra", "expected"), [pytest.param(m, e, x, id=c) for c, m, e, x in BAD_TLS])
def test_bad_custom_tls_secret_stops_the_ingress(material: pki.Issued | None, extra: dict[str, str], expected: str) -> None:
    r = render(standin_cluster=cluster(material, **extra))
    assert r.error is not None
    message = str(r.error)
    if expected:
        assert message == expected
    assert CUSTOM_SECRET in message and "shop" in message
    assert "PRIVATE KEY" not in message and "\n" not in message
    assert not r.by_type(INGRESS), "the Ingress must not name a secret that failed its check"
    assert documented.is_documented(message), f"docs/troubleshooting.md lacks: {documented.as_documented(message)}"


def test_missing_custom_tls_secret_is_one_clear_error() -> None:
    r = render(standin_cluster=standin(namespaces=("default", "istio-system", "shop")))
    assert r.error is not None and CUSTOM_SECRET in str(r.error)
    assert not r.by_type(INGRESS)


# --- what stays as it was -----------------------------------------------------------------------------


def test_apps_in_a_first_preview_keep_their_literals() -> None:
    r = ok(render(preview=True))
    names = sorted(vs.inputs["metadata"]["name"] for vs in r.by_type(VS))
    assert names == ["alb-mtls-orders", "alb-mtls-shop", "alb-mtls-users", "alb-mtls-web"]
    (server,) = r.one(GATEWAY).inputs["spec"]["servers"]
    assert server["tls"]["mode"] == "MUTUAL"


def test_an_app_named_httpbin_never_takes_the_samples_name() -> None:
    entry = {"name": "httpbin", "host": "bin", "service": "httpbin", "namespace": "shop", "port": 8000}
    r = ok(render({"apps": [entry]}))
    assert [vs.inputs["metadata"]["name"] for vs in r.by_type(VS)] == ["alb-mtls-httpbin"]
    assert specs.VIRTUAL_SERVICE_NAME == "httpbin"


# --- the docs' example stacks are stacks the program takes ---------------------------------------------


def _yaml_blocks(page: str) -> list[dict[str, Any]]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = [yaml.safe_load(block) for block in re.findall(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M)]
    return [block["config"] for block in blocks if isinstance(block, dict) and "config" in block]


@pytest.mark.parametrize("page", ["apps.md", "platforms.md"])
def test_the_example_stacks_in_the_docs_render(page: str) -> None:
    examples = _yaml_blocks(page)
    assert examples, f"docs/{page} shows no example stack"
    for example in examples:
        config = {key.split(":", 1)[1]: value for key, value in example.items()}
        if config.get("platform") != "generic":
            config.setdefault("cluster", CLUSTER)
        r = mock_program.render(config, cluster())
        assert r.error is None, f"docs/{page}: {r.error}"
        assert r.by_type(VS) and r.by_type(INGRESS)
