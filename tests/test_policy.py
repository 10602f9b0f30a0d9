"""The policy pack (policy/), without the Pulumi CLI: the program's own resources pass every policy
for every ALB flavour and every shape (httpbin, ``apps``, ``gatewayCertSource=private-ca``,
``platform=generic``), and each broken variant is caught by the policy that promises it.  The
resource policies judge one object at a time; the stack policy ``alb-hop-ends-at-mutual-gateway``
judges the whole stack, as the engine sends it after the resources (reads included).

Three levels: the pure checks, the pulumi-policy ``ResourceValidationPolicy`` objects the pack
is made of (called as the analyzer calls them), and the pack itself started the way
``pulumi preview --policy-pack policy`` starts it, spoken to over its gRPC port.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from cryptography.x509.oid import ExtendedKeyUsageOID
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

import mtls_policies as mp
from components import settings
from tests.support import pki, stacks
from tests.support.cluster import ALB_SECRET, CLUSTER, ROOT, standin
from tools import mock_program

pytestmark = pytest.mark.policy

POLICY_DIR = ROOT / "policy"

GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
TRANSPORT = "kubernetes:traefik.io/v1alpha1:ServersTransport"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
SERVICE = "kubernetes:core/v1:Service"
PEM_KEY = pki.key_pem(pki.new_key())
B64_KEY = base64.b64encode(PEM_KEY.encode()).decode()
PEM_CERT = pki.self_signed_ca("Test Policy Root").cert_pem


@dataclass
class Outcome:
    """What the pack's policies said about one resource."""

    violations: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)

    def policies(self) -> set[str]:
        return {name for name, _ in self.violations}


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [])


def analyze(resource_type: str, props: dict[str, Any], config: dict[str, dict[str, Any]] | None = None) -> Outcome:
    """Run every resource policy of the pack on one resource, as the analyzer does (props behind the unknown proxy)."""
    outcome = Outcome()
    for policy in mp.policies():
        if not isinstance(policy, ResourceValidationPolicy):
            continue
        args = ResourceValidationArgs(
            resource_type,
            unknown_checking_proxy(copy.deepcopy(props)),
            f"urn:pulumi:dev::iks-alb-istio-mtls::{resource_type}::r",
            "r",
            _options(),
            None,
            (config or {}).get(policy.name),
        )

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            outcome.violations.append((name, message))

        try:
            policy.validate(args, report)
        except UnknownValueError as exc:
            outcome.unknown.append((policy.name, exc.message))
    return outcome


#: One resource as the engine sends it to a stack policy: type token, URN, properties (its outputs).
StackItem = tuple[str, str, dict[str, Any]]


@dataclass
class StackOutcome:
    """What the pack's stack policies said about a whole stack: violations by URN, unknowns."""

    violations: list[tuple[str | None, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [message for _, message in self.violations]


def analyze_stack(resources: Sequence[StackItem], config: dict[str, dict[str, Any]] | None = None) -> StackOutcome:
    """Run every stack policy of the pack on a stack, as the analyzer's AnalyzeStack does."""
    outcome = StackOutcome()
    for policy in mp.policies():
        if not isinstance(policy, StackValidationPolicy):
            continue
        items = [PolicyResource(token, unknown_checking_proxy(copy.deepcopy(props)), urn, urn.rpartition("::")[2],
                                _options(), None, None, [], {}) for token, urn, props in resources]
        args = StackValidationArgs(items, (config or {}).get(policy.name))

        def report(message: str, urn: str | None = None) -> None:
            outcome.violations.append((urn, message))

        try:
            policy.validate(args, report)
        except UnknownValueError as exc:
            outcome.unknown.append(exc.message)
    return outcome


def stack_of(rendering: mock_program.Rendering) -> list[StackItem]:
    """What the engine sends a stack policy: every resource of the stack with its outputs, reads included."""
    return [(r.type, r.urn, copy.deepcopy(r.outputs)) for r in rendering.resources if r.custom]


# --- the program's own resources ---------------------------------------------------------------

CLIENT_ROOT = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
CLIENT_LEAF = CLIENT_ROOT.intermediate(
    "Test Client Issuing CA", organization="Example Corp (test)",
    ekus=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
).issue_leaf(pki.ALB_SANS, client_auth=True)

#: id -> (config, stand-in overrides, policy config); every ALB flavour, and the other axes.
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]] = {
    **{f"flavor-{flavor}": ({"albFlavor": flavor}, {}, {}) for flavor in settings.ALB_FLAVORS},
    **{f"flavor-{flavor}-v1beta1-vpc": (
        {"albFlavor": flavor, "istioApiVersion": "networking.istio.io/v1beta1", "clusterType": "vpc",
         "albTlsMode": "default-certificate"},
        {"gateway_addresses": ["a1b2c3d4-us-south.lb.appdomain.cloud"]}, {}) for flavor in settings.ALB_FLAVORS},
    "alb-client-certificate": (
        {"clientCertSource": "alb", "trustedCaPem": CLIENT_ROOT.cert_pem},
        {"secrets": {f"default/{ALB_SECRET}": {"tls.crt": CLIENT_LEAF.chain_pem, "tls.key": CLIENT_LEAF.key_pem}}}, {}),
    "custom-gateway-selector-and-service": (
        {"gatewaySelector": '{"istio": "public-gw"}', "gatewayService": "public-gw",
         "gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert"},
        {},
        {mp.GATEWAY_POLICY: {"gatewaySelector": {"istio": "public-gw"}}, mp.ALB_POLICY: {"gatewayService": "public-gw"},
         mp.HOP_POLICY: {"gatewaySelector": {"istio": "public-gw"}, "gatewayService": "public-gw"}},
    ),
    # The new shapes: apps (several hosts, a custom domain), private-ca and generic, every flavour.
    **{case: (config, cluster, {}) for case, (config, cluster) in stacks.new_shape_stacks().items()},
}


@pytest.fixture(scope="module")
def renderings() -> dict[str, mock_program.Rendering]:
    out = {}
    for case, (config, cluster, _) in CONFIGS.items():
        rendering = mock_program.render({"cluster": CLUSTER, **config}, standin(**cluster))
        assert rendering.error is None, f"{case}: {rendering.error}"
        out[case] = rendering
    return out


def registered(rendering: mock_program.Rendering) -> Iterator[mock_program.Registered]:
    """What the engine would send the analyzer: every resource the program registers (reads excluded)."""
    return (r for r in rendering.resources if r.custom and not r.read)


@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_programs_resources_pass_every_policy(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    policy_config = CONFIGS[case][2]
    results = {f"{r.type} {r.name}": analyze(r.type, r.inputs, policy_config) for r in registered(renderings[case])}
    assert {k: o.violations for k, o in results.items() if o.violations} == {}
    assert {k: o.unknown for k, o in results.items() if o.unknown} == {}
    whole = analyze_stack(stack_of(renderings[case]), policy_config)
    assert whole.violations == [] and whole.unknown == []


def _count(rendering: mock_program.Rendering, token: str) -> int:
    return sum(1 for r in registered(rendering) if r.type.rpartition(":")[2] == token.rpartition(":")[2])


@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_hop_policy_judges_every_route_of_the_stack(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    """The control for the stack policy: every VirtualService and every Ingress rule was judged
    (several with apps), and the one name the ALB verifies the gateway by."""
    rendering = renderings[case]
    policy_config = CONFIGS[case][2]
    resources = [mp.StackResource(token, urn, props) for token, urn, props in stack_of(rendering)]
    found = mp.check_hop(resources, mp.PolicySettings.from_config(policy_config.get(mp.HOP_POLICY)))
    (ingress,) = [r for r in registered(rendering) if r.type == INGRESS]
    expected = {"VirtualService": _count(rendering, VIRTUAL_SERVICE), "Ingress rule": len(ingress.inputs["spec"]["rules"]),
                "verified name": 1}
    assert found.judged == expected
    if CONFIGS[case][0].get("apps"):
        assert expected["VirtualService"] == len(stacks.APPS) and expected["Ingress rule"] == len(stacks.APP_HOSTS)


@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_policies_apply_to_the_programs_gateway_and_alb(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    """The control for the test above: the checks ran on the objects they are about, not on nothing.

    A new ALB flavour fails here until the pack knows it (an INGRESS_FLAVOURS or ALB_CHECKS entry).
    """
    config, _, policy_config = CONFIGS[case]
    gateway_settings = mp.PolicySettings.from_config(policy_config.get(mp.GATEWAY_POLICY))
    alb_settings = mp.PolicySettings.from_config(policy_config.get(mp.ALB_POLICY))
    gateway_checked, alb_flavours = 0, set()
    for r in registered(renderings[case]):
        key = mp.group_kind(r.type)
        if key in mp.GATEWAY_CHECKS:
            gateway_checked += mp.GATEWAY_CHECKS[key](r.inputs, gateway_settings).applies
        if key in mp.ALB_CHECKS:
            found = mp.ALB_CHECKS[key](r.inputs, alb_settings)
            if found.applies:
                alb_flavours.add(found.detail)
    assert gateway_checked == 1
    assert alb_flavours == {config.get("albFlavor", "nginx")}


OFFLINE_RENDERS: dict[str, dict[str, str]] = {
    **{f"flavor-{flavor}": {"albFlavor": flavor} for flavor in settings.ALB_FLAVORS},
    **{f"private-ca-{flavor}": {"albFlavor": flavor, "gatewayCertSource": "private-ca"} for flavor in settings.ALB_FLAVORS},
    "apps-traefik": {"albFlavor": "traefik", "routes": "", "apps": json.dumps(stacks.APPS)},
}


@pytest.mark.parametrize("case", list(OFFLINE_RENDERS))
def test_the_offline_render_passes_every_policy(case: str) -> None:
    """The files a reviewer reads (placeholders and all) pass the same policies, the stack's included."""
    from tools import render

    result = render.render_stack(ROOT, "dev", OFFLINE_RENDERS[case])
    items: list[StackItem] = []
    for number, body in enumerate(result.manifests):
        api_group, _, version = body["apiVersion"].rpartition("/")
        token = f"kubernetes:{api_group or 'core'}/{version}:{body['kind']}"
        outcome = analyze(token, body)
        assert outcome.violations == [] and outcome.unknown == [], (token, outcome)
        items.append((token, f"urn:pulumi:dev::iks-alb-istio-mtls::{token}::file-{number}", body))
    whole = analyze_stack(items)
    assert whole.violations == [] and whole.unknown == []
    assert sum(1 for token, _, _ in items if token.endswith(":VirtualService")) == (len(stacks.APPS) if "apps" in case else 1)


# --- broken variants, each caught ----------------------------------------------------------------


def _inputs(renderings: dict[str, mock_program.Rendering], case: str, token: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in registered(renderings[case]) if r.type == token
             and (name is None or r.inputs["metadata"]["name"] == name)]
    assert len(found) == 1, (case, token, name)
    return copy.deepcopy(found[0].inputs)


def _tls(p: dict[str, Any]) -> dict[str, Any]:
    return p["spec"]["servers"][0]["tls"]  # type: ignore[no-any-return]


def _ann(p: dict[str, Any]) -> dict[str, Any]:
    return p["metadata"]["annotations"]  # type: ignore[no-any-return]


def _second_server(p: dict[str, Any]) -> None:
    p["spec"]["servers"].append({"port": {"number": 443, "name": "https-plain", "protocol": "HTTPS"},
                                 "hosts": ["other.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "x"}})


NGINX = "nginx.ingress.kubernetes.io/"
SSL_SERVICES = "ingress.bluemix.net/ssl-services"
Mutation = Callable[[dict[str, Any]], Any]

#: id -> (case, resource type, metadata.name or None, mutation, policy, words of the message).
BROKEN: dict[str, tuple[str, str, str | None, Mutation, str, str]] = {
    "gateway-simple": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(mode="SIMPLE"),
                       mp.GATEWAY_POLICY, "spec.servers[0].tls.mode is 'SIMPLE': it must be 'MUTUAL'"),
    "gateway-istio-mutual": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(mode="ISTIO_MUTUAL"),
                             mp.GATEWAY_POLICY, "tls.mode is 'ISTIO_MUTUAL'"),
    "gateway-optional-mutual": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(mode="OPTIONAL_MUTUAL"),
                                mp.GATEWAY_POLICY, "tls.mode is 'OPTIONAL_MUTUAL'"),
    "gateway-no-tls": ("flavor-nginx", GATEWAY, None, lambda p: p["spec"]["servers"][0].pop("tls"),
                       mp.GATEWAY_POLICY, "spec.servers[0] (port 443) has no tls"),
    "gateway-no-credential": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).pop("credentialName"),
                              mp.GATEWAY_POLICY, "has no credentialName"),
    "gateway-empty-credential": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(credentialName=""),
                                 mp.GATEWAY_POLICY, "has no credentialName"),
    "gateway-no-sans": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).pop("subjectAltNames"),
                        mp.GATEWAY_POLICY, "subjectAltNames is empty"),
    "gateway-empty-sans": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(subjectAltNames=[]),
                           mp.GATEWAY_POLICY, "subjectAltNames is empty"),
    "gateway-no-min-tls": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).pop("minProtocolVersion"),
                           mp.GATEWAY_POLICY, "minProtocolVersion is not set"),
    "gateway-tls-1-1": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(minProtocolVersion="TLSV1_1"),
                        mp.GATEWAY_POLICY, "minProtocolVersion is 'TLSV1_1'"),
    "gateway-tls-auto": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(minProtocolVersion="TLS_AUTO"),
                         mp.GATEWAY_POLICY, "minProtocolVersion is 'TLS_AUTO'"),
    "gateway-second-server-simple": ("flavor-nginx", GATEWAY, None, _second_server,
                                     mp.GATEWAY_POLICY, "spec.servers[1].tls.mode is 'SIMPLE'"),
    "gateway-port-as-string": ("flavor-nginx", GATEWAY, None,
                               lambda p: (p["spec"]["servers"][0]["port"].update(number="443"), _tls(p).update(mode="SIMPLE")),
                               mp.GATEWAY_POLICY, "tls.mode is 'SIMPLE'"),
    "gateway-v1beta1-simple": ("flavor-nginx-v1beta1-vpc", GATEWAY.replace("/v1:", "/v1beta1:"), None,
                               lambda p: _tls(p).update(mode="SIMPLE"), mp.GATEWAY_POLICY, "tls.mode is 'SIMPLE'"),
    "gateway-empty-selector-simple": ("flavor-nginx", GATEWAY, None,
                                      lambda p: (p["spec"].pop("selector"), _tls(p).update(mode="SIMPLE")),
                                      mp.GATEWAY_POLICY, "tls.mode is 'SIMPLE'"),
    "gateway-custom-selector-simple": ("custom-gateway-selector-and-service", GATEWAY, None,
                                       lambda p: _tls(p).update(mode="SIMPLE"), mp.GATEWAY_POLICY, "tls.mode is 'SIMPLE'"),
    "nginx-http-backend": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).update({f"{NGINX}backend-protocol": "HTTP"}),
                           mp.ALB_POLICY, f"annotation {NGINX}backend-protocol is 'HTTP': it must be 'HTTPS'"),
    "nginx-no-backend-protocol": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).pop(f"{NGINX}backend-protocol"),
                                  mp.ALB_POLICY, f"{NGINX}backend-protocol is not set"),
    "nginx-verify-off": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).update({f"{NGINX}proxy-ssl-verify": "off"}),
                         mp.ALB_POLICY, f"{NGINX}proxy-ssl-verify is 'off': it must be 'on'"),
    "nginx-verify-true": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).update({f"{NGINX}proxy-ssl-verify": "true"}),
                          mp.ALB_POLICY, f"{NGINX}proxy-ssl-verify is 'true': it must be 'on'"),
    "nginx-no-ssl-name": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).pop(f"{NGINX}proxy-ssl-name"),
                          mp.ALB_POLICY, f"{NGINX}proxy-ssl-name is missing or empty"),
    "nginx-empty-ssl-name": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).update({f"{NGINX}proxy-ssl-name": " "}),
                             mp.ALB_POLICY, f"{NGINX}proxy-ssl-name is missing or empty"),
    "nginx-no-sni": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).update({f"{NGINX}proxy-ssl-server-name": "off"}),
                     mp.ALB_POLICY, f"{NGINX}proxy-ssl-server-name is 'off': it must be 'on'"),
    "nginx-no-client-cert": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).pop(f"{NGINX}proxy-ssl-secret"),
                             mp.ALB_POLICY, f"{NGINX}proxy-ssl-secret is missing or empty"),
    "nginx-annotations-gone": ("flavor-nginx", INGRESS, None,
                               lambda p: p["metadata"].update(annotations={"pulumi.com/skipAwait": "true"}),
                               mp.ALB_POLICY, f"{NGINX}backend-protocol is not set"),
    "unknown-flavour": ("flavor-nginx", INGRESS, None,
                        lambda p: (p["metadata"].update(annotations={}), p["spec"].update(ingressClassName="haproxy")),
                        mp.ALB_POLICY, "its IngressClass 'haproxy' is served by no ALB this pack knows"),
    "legacy-no-ssl-secret": ("flavor-ibm-legacy", INGRESS, None,
                             lambda p: _ann(p).update({SSL_SERVICES: "ssl-service=istio-ingressgateway proxy-ssl-verify-depth=3"}),
                             mp.ALB_POLICY, "names no ssl-secret for ssl-service=istio-ingressgateway"),
    "legacy-empty-ssl-secret": ("flavor-ibm-legacy", INGRESS, None,
                                lambda p: _ann(p).update({SSL_SERVICES: "ssl-service=istio-ingressgateway ssl-secret="}),
                                mp.ALB_POLICY, "names no ssl-secret"),
    "legacy-other-service": ("flavor-ibm-legacy", INGRESS, None,
                             lambda p: _ann(p).update({SSL_SERVICES: "ssl-service=httpbin ssl-secret=alb-certs"}),
                             mp.ALB_POLICY, "has no entry ssl-service=istio-ingressgateway"),
    "legacy-no-ssl-services": ("flavor-ibm-legacy", INGRESS, None,
                               lambda p: (_ann(p).pop(SSL_SERVICES), _ann(p).update({"ingress.bluemix.net/redirect-to-https": "True"})),
                               mp.ALB_POLICY, f"annotation {SSL_SERVICES} is missing"),
    "custom-service-verify-off": ("custom-gateway-selector-and-service", INGRESS, None,
                                  lambda p: _ann(p).update({f"{NGINX}proxy-ssl-verify": "off"}),
                                  mp.ALB_POLICY, "proxy-ssl-verify is 'off'"),
    "configmap-key": ("flavor-nginx", CONFIGMAP, None, lambda p: p.update(data={"client.key": PEM_KEY}),
                      mp.KEY_POLICY, "ConfigMap data key 'client.key' holds a PEM private key"),
    "configmap-binary-key": ("flavor-nginx", CONFIGMAP, None,
                             lambda p: p.update(binaryData={"k": B64_KEY}),
                             mp.KEY_POLICY, "ConfigMap binaryData key 'k' holds a PEM private key"),
    "annotation-key": ("flavor-nginx", INGRESS, None, lambda p: _ann(p).update({"example.com/key": PEM_KEY}),
                       mp.KEY_POLICY, "annotation 'example.com/key' (metadata.annotations) holds a PEM private key"),
    "annotation-base64-key": ("flavor-nginx", SECRET, "alb-certs",
                              lambda p: p["metadata"].update(annotations={"example.com/key": B64_KEY}),
                              mp.KEY_POLICY, "annotation 'example.com/key'"),
    "annotation-embedded-base64-key": ("flavor-nginx", INGRESS, None,
                                       lambda p: _ann(p).update({"example.com/cfg": f"key: {B64_KEY}"}),
                                       mp.KEY_POLICY, "annotation 'example.com/cfg'"),
    "label-key": ("flavor-nginx", SECRET, "alb-certs", lambda p: p["metadata"]["labels"].update(key=PEM_KEY),
                  mp.KEY_POLICY, "label 'key' (metadata.labels) holds a PEM private key"),
    "pod-template-annotation-key": ("flavor-nginx", DEPLOYMENT, None,
                                    lambda p: p["spec"]["template"]["metadata"].update(annotations={"k": PEM_KEY}),
                                    mp.KEY_POLICY, "(spec.template.metadata.annotations) holds a PEM private key"),
}
if "traefik" in settings.ALB_FLAVORS:
    BROKEN.update({
        "traefik-skip-verify": ("flavor-traefik", TRANSPORT, None, lambda p: p["spec"].update(insecureSkipVerify=True),
                                mp.ALB_POLICY, "spec.insecureSkipVerify is true"),
        "traefik-no-client-cert": ("flavor-traefik", TRANSPORT, None, lambda p: p["spec"].pop("certificatesSecrets"),
                                   mp.ALB_POLICY, "spec.certificatesSecrets is missing or empty"),
        "traefik-no-server-name": ("flavor-traefik", TRANSPORT, None, lambda p: p["spec"].update(serverName=""),
                                   mp.ALB_POLICY, "spec.serverName is missing or empty"),
        "traefik-tls-1-0": ("flavor-traefik", TRANSPORT, None, lambda p: p["spec"].update(minVersion="VersionTLS10"),
                            mp.ALB_POLICY, "spec.minVersion is 'VersionTLS10'"),
    })


def _gateway_key_to(where: str) -> Mutation:
    def mutate(p: dict[str, Any]) -> None:
        key = p["stringData"]["tls.key"]
        if where == "annotation":
            p["metadata"]["annotations"] = {"example.com/key": key}
        else:
            p["metadata"]["labels"]["key"] = base64.b64encode(key.encode()).decode()
    return mutate


BROKEN.update({
    "gateway-cert-key-in-an-annotation": ("private-ca-nginx", SECRET, "alb-mtls-gateway-cert", _gateway_key_to("annotation"),
                                          mp.KEY_POLICY, "annotation 'example.com/key' (metadata.annotations) holds a PEM private key"),
    "gateway-cert-key-in-a-label": ("generic-traefik", SECRET, "alb-mtls-gateway-cert", _gateway_key_to("label"),
                                    mp.KEY_POLICY, "label 'key' (metadata.labels) holds a PEM private key"),
})


def _configmap() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "istio-system"}, "data": {}}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_variant_is_caught(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    config_case, token, name, mutate, policy, words = BROKEN[case]
    props = _configmap() if token == CONFIGMAP else _inputs(renderings, config_case, token, name)
    assert analyze(token, props, CONFIGS[config_case][2]).violations == [], "the unbroken control must pass"
    mutate(props)
    outcome = analyze(token, props, CONFIGS[config_case][2])
    assert outcome.policies() == {policy}, outcome.violations
    assert any(words in message for _, message in outcome.violations), outcome.violations
    assert not any(PEM_KEY.splitlines()[1] in message for _, message in outcome.violations), "never quote a key"


# --- objects that try to slip past: the pack sees them as the controllers and Istio do -----------

BLUEMIX_DECOY = {SSL_SERVICES: "ssl-service=istio-ingressgateway ssl-secret=alb-certs"}

#: id -> (case, resource type, mutation, policy config, words of the message): each is caught.
SLIP_PAST: dict[str, tuple[str, str, Mutation, dict[str, dict[str, Any]], str]] = {
    # A stray legacy annotation does not make an ingress-nginx Ingress legacy: its class decides.
    "nginx-verify-off-behind-a-bluemix-decoy": (
        "flavor-nginx", INGRESS, lambda p: _ann(p).update({**BLUEMIX_DECOY, f"{NGINX}proxy-ssl-verify": "off"}),
        {}, f"{NGINX}proxy-ssl-verify is 'off': it must be 'on'"),
    "nginx-annotations-swapped-for-bluemix": (
        "flavor-nginx", INGRESS,
        lambda p: p["metadata"].update(annotations={"pulumi.com/skipAwait": "true", **BLUEMIX_DECOY}),
        {}, f"{NGINX}backend-protocol is not set"),
    # Without a class the cluster's default IngressClass serves it.
    "no-class-default-nginx": (
        "flavor-nginx", INGRESS,
        lambda p: (p["spec"].pop("ingressClassName"), _ann(p).update({f"{NGINX}proxy-ssl-verify": "off"})),
        {}, f"{NGINX}proxy-ssl-verify is 'off'"),
    "no-class-default-traefik": (
        "flavor-nginx", INGRESS, lambda p: p["spec"].pop("ingressClassName"),
        {mp.ALB_POLICY: {"defaultIngressClass": "public-iks-traefik"}}, "through a Traefik ALB"),
    "no-class-default-unknown": (
        "flavor-nginx", INGRESS, lambda p: p["spec"].pop("ingressClassName"),
        {mp.ALB_POLICY: {"defaultIngressClass": "haproxy"}}, "its IngressClass 'haproxy' is served by no ALB"),
    # The deprecated annotation wins over spec.ingressClassName, as controllers read it first.
    "legacy-class-annotation-over-nginx-class": (
        "flavor-nginx", INGRESS, lambda p: _ann(p).update({"kubernetes.io/ingress.class": "iks-nginx"}),
        {}, f"annotation {SSL_SERVICES} is missing"),
    "nginx-annotations-on-the-legacy-class": (
        "flavor-ibm-legacy", INGRESS,
        lambda p: p["metadata"].update(annotations={f"{NGINX}proxy-ssl-verify": "on", f"{NGINX}backend-protocol": "HTTPS"}),
        {}, f"annotation {SSL_SERVICES} is missing"),
    "traefik-class-straight-to-the-gateway-service": (
        "flavor-nginx", INGRESS, lambda p: p["spec"].update(ingressClassName="private-iks-traefik"),
        {}, "through a Traefik ALB"),
    "a-class-the-config-maps-to-nginx": (
        "flavor-nginx", INGRESS,
        lambda p: (p["spec"].update(ingressClassName="edge"), _ann(p).update({f"{NGINX}proxy-ssl-secret": ""})),
        {mp.ALB_POLICY: {"ingressClasses": {"edge": "nginx"}}}, f"{NGINX}proxy-ssl-secret is missing or empty"),
    # A Gateway applies when its selector is a subset of the gateway pods' labels.
    "gateway-selects-by-app-label": (
        "flavor-nginx", GATEWAY,
        lambda p: (p["spec"].update(selector={"app": "istio-ingressgateway"}), _tls(p).update(mode="SIMPLE")),
        {}, "tls.mode is 'SIMPLE'"),
    "gateway-selects-by-revision": (
        "flavor-nginx", GATEWAY,
        lambda p: (p["spec"].update(selector={"istio.io/rev": "default"}), _tls(p).pop("subjectAltNames")),
        {}, "subjectAltNames is empty"),
    "gateway-selects-two-pod-labels": (
        "flavor-nginx", GATEWAY,
        lambda p: (p["spec"].update(selector={"app": "istio-ingressgateway", "istio": "ingressgateway"}),
                   _tls(p).update(mode="OPTIONAL_MUTUAL")),
        {}, "tls.mode is 'OPTIONAL_MUTUAL'"),
    "gateway-without-selector": (
        "flavor-nginx", GATEWAY, lambda p: (p["spec"].pop("selector"), _tls(p).update(mode="SIMPLE")),
        {}, "tls.mode is 'SIMPLE'"),
    "gateway-empty-selector": (
        "flavor-nginx", GATEWAY, lambda p: (p["spec"].update(selector={}), _tls(p).update(mode="SIMPLE")),
        {}, "tls.mode is 'SIMPLE'"),
    "gateway-selects-configured-pod-labels": (
        "flavor-nginx", GATEWAY,
        lambda p: (p["spec"].update(selector={"gateway": "edge"}), _tls(p).update(mode="SIMPLE")),
        {mp.GATEWAY_POLICY: {"gatewayPodLabels": [{"gateway": "edge", "app": "edge-gw"}]}}, "tls.mode is 'SIMPLE'"),
}


@pytest.mark.parametrize("case", list(SLIP_PAST))
def test_what_tries_to_slip_past_is_caught(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    config_case, token, mutate, policy_config, words = SLIP_PAST[case]
    props = _inputs(renderings, config_case, token)
    assert analyze(token, props, policy_config).violations == [], "the unchanged object must pass"
    mutate(props)
    outcome = analyze(token, props, policy_config)
    assert outcome.policies() == {mp.GATEWAY_POLICY if token == GATEWAY else mp.ALB_POLICY}, outcome.violations
    assert any(words in message for _, message in outcome.violations), outcome.violations


#: id -> (case, resource type, mutation, policy config): not the gateway's pods or not an ALB of ours.
NOT_OURS: dict[str, tuple[str, str, Mutation, dict[str, dict[str, Any]]]] = {
    "gateway-selector-beyond-the-pod-labels": (
        "flavor-nginx", GATEWAY,
        lambda p: (p["spec"].update(selector={"istio": "ingressgateway", "tier": "edge"}), _tls(p).update(mode="SIMPLE")),
        {}),
    "gateway-for-other-pods-when-configured": (
        "flavor-nginx", GATEWAY,
        lambda p: (p["spec"].update(selector={"app": "istio-ingressgateway"}), _tls(p).update(mode="SIMPLE")),
        {mp.GATEWAY_POLICY: {"gatewayPodLabels": [{"istio": "ingressgateway", "app": "edge-gw"}]}}),
}


@pytest.mark.parametrize("case", list(NOT_OURS))
def test_what_does_not_reach_the_gateway_pods_is_left_alone(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    config_case, token, mutate, policy_config = NOT_OURS[case]
    props = _inputs(renderings, config_case, token)
    mutate(props)
    outcome = analyze(token, props, policy_config)
    assert outcome.violations == [] and outcome.unknown == []


# --- what the policies leave alone ---------------------------------------------------------------

#: id -> (case, resource type, metadata.name, mutation): still no violation.
ALLOWED: dict[str, tuple[str, str, str | None, Mutation]] = {
    "key-in-a-secret": ("flavor-nginx", SECRET, "alb-certs", lambda p: p["stringData"].update({"extra.key": PEM_KEY})),
    "certificate-in-a-configmap": ("flavor-nginx", CONFIGMAP, None, lambda p: p.update(data={"ca.crt": PEM_CERT})),
    "gateway-for-another-workload": ("flavor-nginx", GATEWAY, None,
                                     lambda p: (p["spec"].update(selector={"app": "egress"}), _tls(p).update(mode="SIMPLE"))),
    "gateway-port-80-plain": ("flavor-nginx", GATEWAY, None,
                              lambda p: p["spec"]["servers"].append({"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                                                     "hosts": ["*"]})),
    "gateway-tls-1-3": ("flavor-nginx", GATEWAY, None, lambda p: _tls(p).update(minProtocolVersion="TLSV1_3")),
    "ingress-to-another-service": ("flavor-nginx", INGRESS, None,
                                   lambda p: (p["metadata"].update(annotations={}),
                                              [x["backend"]["service"].update(name="httpbin") for x in p["spec"]["rules"][0]["http"]["paths"]])),
}


@pytest.mark.parametrize("case", list(ALLOWED))
def test_what_the_policies_leave_alone(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    config_case, token, name, mutate = ALLOWED[case]
    props = _configmap() if token == CONFIGMAP else _inputs(renderings, config_case, token, name)
    mutate(props)
    outcome = analyze(token, props)
    assert outcome.violations == [] and outcome.unknown == []


# --- the whole hop: the stack policy on broken stacks ----------------------------------------------


class StackUnderTest:
    """A rendered stack as the stack policy receives it, to break one object of it at a time."""

    def __init__(self, rendering: mock_program.Rendering) -> None:
        self.items: list[StackItem] = stack_of(rendering)

    def _find(self, kind: str, name: str | None) -> StackItem:
        found = [item for item in self.items if item[0].rpartition(":")[2] == kind
                 and (name is None or (item[2].get("metadata") or {}).get("name") == name)]
        assert len(found) == 1, (kind, name, len(found))
        return found[0]

    def props(self, kind: str, name: str | None = None) -> dict[str, Any]:
        return self._find(kind, name)[2]

    def urn(self, kind: str, name: str | None = None) -> str:
        return self._find(kind, name)[1]

    def urns(self, kind: str, name: str | None = None) -> set[str]:
        """Every URN of ``kind`` (named ``name``, or all of them)."""
        return {urn for token, urn, props in self.items if token.rpartition(":")[2] == kind
                and (name is None or (props.get("metadata") or {}).get("name") == name)}

    def drop(self, kind: str, name: str | None = None) -> None:
        self.items.remove(self._find(kind, name))

    def add(self, token: str, props: dict[str, Any]) -> None:
        self.items.append((token, f"urn:pulumi:dev::iks-alb-istio-mtls::{token}::extra-{props['metadata']['name']}", props))


def _extra_gateway(name: str, selector: dict[str, str], mode: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": "istio-system"},
            "spec": {"selector": selector, "servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                                                        "hosts": ["*"], "tls": {"mode": mode, "credentialName": "other-cert",
                                                                                "minProtocolVersion": "TLSV1_2",
                                                                                "subjectAltNames": ["x.example.com"]}}]}}


def _bind_also(stack: StackUnderTest, vs: str, gateway: dict[str, Any], *, instead: bool = False) -> None:
    stack.add(GATEWAY, gateway)
    ref = f"istio-system/{gateway['metadata']['name']}"
    spec = stack.props("VirtualService", vs)["spec"]
    spec["gateways"] = [ref] if instead else [*spec["gateways"], ref]


def _tls_without(props: dict[str, Any], host: str) -> None:
    for entry in props["spec"]["tls"]:
        entry["hosts"] = [h for h in entry["hosts"] if h != host]
    props["spec"]["tls"] = [entry for entry in props["spec"]["tls"] if entry["hosts"]]


def _ssl_services_name(props: dict[str, Any], name: str) -> None:
    annotations = props["metadata"]["annotations"]
    key = SSL_SERVICES
    annotations[key] = re.sub(r"proxy-ssl-name=\S+", f"proxy-ssl-name={name}", annotations[key])


INTERNAL = stacks.PRIVATE_GATEWAY_NAME
FULL_INTERNAL = f"{INTERNAL}.cluster.local"
StackMutation = Callable[[StackUnderTest], Any]

#: id -> (case, mutation of the stack, (kind, name) of the resources the violation is reported on, None: every
#: one of the kind, words of the message).
HOP_BROKEN: dict[str, tuple[str, StackMutation, tuple[str, str | None], str]] = {
    # An app's VirtualService not bound to the MUTUAL gateway.
    "app-vs-bound-to-the-mesh-only": (
        "apps-nginx", lambda s: s.props("VirtualService", "alb-mtls-orders")["spec"].update(gateways=["mesh"]),
        ("VirtualService", "alb-mtls-orders"), f"spec.gateways is ['mesh']: it routes {stacks.API_HOST}, which the ALB sends"),
    "app-vs-without-gateways": (
        "apps-traefik", lambda s: s.props("VirtualService", "alb-mtls-shop")["spec"].pop("gateways"),
        ("VirtualService", "alb-mtls-shop"), "spec.gateways is not set (the mesh only): it routes shop.example.com"),
    "app-vs-bound-to-a-gateway-outside-the-stack": (
        "apps-ibm-legacy", lambda s: s.props("VirtualService", "alb-mtls-web")["spec"].update(gateways=["istio-system/public"]),
        ("VirtualService", "alb-mtls-web"), "it is bound to Gateway istio-system/public, which this stack does not define"),
    "app-vs-bare-gateway-name-in-another-namespace": (
        "apps-nginx", lambda s: (s.props("VirtualService", "alb-mtls-users")["metadata"].update(namespace="shop"),
                                 s.props("VirtualService", "alb-mtls-users")["spec"].update(gateways=["httpbin-gateway"])),
        ("VirtualService", "alb-mtls-users"), "it is bound to Gateway shop/httpbin-gateway, which this stack does not define"),
    "app-vs-also-on-a-simple-gateway": (
        "apps-nginx", lambda s: _bind_also(s, "alb-mtls-shop", _extra_gateway("public", {"istio": "ingressgateway"}, "SIMPLE")),
        ("VirtualService", "alb-mtls-shop"), "it is bound to Gateway istio-system/public, which is not MUTUAL"),
    "app-vs-on-another-workloads-gateway": (
        "apps-traefik", lambda s: _bind_also(s, "alb-mtls-web", _extra_gateway("edge", {"istio": "egressgateway"}, "MUTUAL"),
                                             instead=True),
        ("VirtualService", "alb-mtls-web"), "Gateway istio-system/edge, which does not apply to the ingress gateway's pods"),
    "app-vs-for-a-host-the-gateway-does-not-serve": (
        "apps-nginx", lambda s: s.props("VirtualService", "alb-mtls-shop")["spec"].update(hosts=["shop.example.org"]),
        ("VirtualService", "alb-mtls-shop"), "spec.hosts[0] 'shop.example.org' is not a host of Gateway istio-system/httpbin-gateway"),
    "app-vs-on-a-gateway-that-is-not-mutual": (
        "apps-ibm-legacy", lambda s: _tls(s.props("Gateway")).update(mode="SIMPLE"),
        ("VirtualService", None), "Gateway istio-system/httpbin-gateway, which is not MUTUAL (policy istio-gateway-mutual-tls)"),
    # An Ingress rule of an app host without TLS, or one the gateway does not serve.
    "custom-domain-rule-without-tls": (
        "apps-nginx", lambda s: _tls_without(s.props("Ingress"), stacks.CUSTOM_HOST),
        ("Ingress", None), "spec.rules[2] host 'shop.example.com' has no spec.tls entry"),
    "label-host-rule-without-tls-on-traefik": (
        "apps-traefik", lambda s: _tls_without(s.props("Ingress"), stacks.API_HOST),
        ("Ingress", None), f"spec.rules[1] host '{stacks.API_HOST}' has no spec.tls entry"),
    "label-host-rule-without-tls-on-ibm-legacy": (
        "apps-ibm-legacy", lambda s: _tls_without(s.props("Ingress"), stacks.WEB_HOST),
        ("Ingress", None), f"spec.rules[0] host '{stacks.WEB_HOST}' has no spec.tls entry"),
    "rule-without-host": (
        "apps-nginx", lambda s: s.props("Ingress")["spec"]["rules"][1].pop("host"),
        ("Ingress", None), "spec.rules[1] routes to the gateway for any host"),
    "rule-for-a-host-the-gateway-does-not-serve": (
        "apps-nginx", lambda s: s.props("Gateway")["spec"]["servers"][0]["hosts"].remove(stacks.CUSTOM_HOST),
        ("Ingress", None), "spec.rules[2] host is 'shop.example.com', which is not among the hosts of a MUTUAL Gateway"),
    "no-gateway-in-the-stack": (
        "generic-nginx", lambda s: s.drop("Gateway"),
        ("Ingress", None), "which is not served by a MUTUAL Gateway of this stack, and the stack has none"),
    # The name the ALB verifies the gateway by (private-ca: a cluster-internal one) that the Gateway does not serve.
    "private-ca-ssl-name-the-gateway-does-not-serve": (
        "private-ca-nginx", lambda s: _ann(s.props("Ingress")).update({f"{NGINX}proxy-ssl-name": FULL_INTERNAL}),
        ("Ingress", None), f"annotation {NGINX}proxy-ssl-name is '{FULL_INTERNAL}', which is not among the hosts"),
    "private-ca-gateway-without-its-internal-name": (
        "private-ca-nginx", lambda s: s.props("Gateway")["spec"]["servers"][0]["hosts"].remove(INTERNAL),
        ("Ingress", None), f"annotation {NGINX}proxy-ssl-name is '{INTERNAL}', which is not among the hosts"),
    "private-ca-legacy-ssl-name-the-gateway-does-not-serve": (
        "private-ca-ibm-legacy", lambda s: _ssl_services_name(s.props("Ingress"), FULL_INTERNAL),
        ("Ingress", None), f"ssl-services proxy-ssl-name is '{FULL_INTERNAL}', which is not among the hosts"),
    "private-ca-traefik-server-name-the-gateway-does-not-serve": (
        "private-ca-traefik", lambda s: s.props("ServersTransport")["spec"].update(serverName="gateway.example.com"),
        ("ServersTransport", None),
        "spec.serverName of ServersTransport istio-system/httpbin-gateway-mtls is 'gateway.example.com', which is not among"),
    "generic-traefik-service-without-its-transport": (
        "generic-traefik", lambda s: s.props("Service", "httpbin-gateway-tls")["metadata"]["annotations"].pop(
            "traefik.ingress.kubernetes.io/service.serverstransport"),
        ("Service", "httpbin-gateway-tls"), "has no annotation traefik.ingress.kubernetes.io/service.serverstransport"),
    "generic-traefik-service-naming-another-transport": (
        "generic-traefik", lambda s: s.props("Service", "httpbin-gateway-tls")["metadata"]["annotations"].update(
            {"traefik.ingress.kubernetes.io/service.serverstransport": "istio-system-other@kubernetescrd"}),
        ("Service", "httpbin-gateway-tls"), "names 'istio-system-other@kubernetescrd', which is no ServersTransport of this stack"),
}


@pytest.mark.parametrize("case", list(HOP_BROKEN))
def test_each_broken_hop_is_caught_on_the_resource_at_fault(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    config_case, mutate, (kind, name), words = HOP_BROKEN[case]
    stack = StackUnderTest(renderings[config_case])
    assert analyze_stack(stack.items).violations == [], "the unbroken stack must pass"
    mutate(stack)
    outcome = analyze_stack(stack.items)
    at_fault = [(urn, m) for urn, m in outcome.violations if words in m]
    assert at_fault, outcome.violations
    assert {urn for urn, _ in at_fault} == stack.urns(kind, name)


#: id -> (case, mutation): stacks that still pass the stack policy.
HOP_ALLOWED: dict[str, tuple[str, StackMutation]] = {
    "app-vs-also-bound-to-the-mesh": (
        "apps-nginx", lambda s: s.props("VirtualService", "alb-mtls-orders")["spec"]["gateways"].append("mesh")),
    "a-mesh-only-vs-for-an-internal-host": (
        "apps-nginx", lambda s: s.add(VIRTUAL_SERVICE, {
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "orders-internal", "namespace": "shop"},
            "spec": {"hosts": ["orders.shop.svc.cluster.local"], "http": [{"route": [{"destination": {"host": "orders"}}]}]}})),
    "a-wildcard-gateway-host": (
        "apps-traefik", lambda s: s.props("Gateway")["spec"]["servers"][0].update(
            hosts=[pki.GATEWAY_DOMAIN, f"*.{pki.ALB_DOMAIN}", stacks.CUSTOM_HOST])),
    "gateway-hosts-with-a-namespace": (
        "apps-ibm-legacy", lambda s: s.props("Gateway")["spec"]["servers"][0].update(
            hosts=[f"istio-system/{h}" for h in s.props("Gateway")["spec"]["servers"][0]["hosts"]])),
    "a-cluster-internal-name-the-gateway-serves": (
        "private-ca-nginx", lambda s: (_ann(s.props("Ingress")).update({f"{NGINX}proxy-ssl-name": FULL_INTERNAL}),
                                       s.props("Gateway")["spec"]["servers"][0]["hosts"].append(FULL_INTERNAL))),
    "an-ingress-to-another-service-without-tls": (
        "apps-nginx", lambda s: s.add(INGRESS, {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "plain", "namespace": "shop"},
            "spec": {"ingressClassName": "public-iks-k8s-nginx", "rules": [{"host": "plain.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "storefront", "port": {"number": 80}}}}]}}]}})),
}


@pytest.mark.parametrize("case", list(HOP_ALLOWED))
def test_what_the_hop_policy_leaves_alone(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    config_case, mutate = HOP_ALLOWED[case]
    stack = StackUnderTest(renderings[config_case])
    mutate(stack)
    outcome = analyze_stack(stack.items)
    assert outcome.violations == [] and outcome.unknown == []


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [("*", "a.example.com", True), ("*.example.com", "a.b.example.com", True), ("*.example.com", "example.com", False),
     ("A.Example.com.", "a.example.com", True), ("a.example.com", "b.example.com", False), ("*.example.com", "*.example.com", True)],
)
def test_host_matching(pattern: str, host: str, expected: bool) -> None:
    assert mp.host_matches(pattern, host) is expected


# --- the gateway's own certificate Secret (private-ca) -------------------------------------------


@pytest.mark.parametrize("case", [c for c in CONFIGS if c.startswith(("private-ca-", "generic-"))])
def test_the_gateways_key_in_its_tls_secret_is_no_leak(renderings: dict[str, mock_program.Rendering], case: str) -> None:
    """alb-mtls-gateway-cert holds the gateway's private key, in a kubernetes.io/tls Secret: where keys belong."""
    secret = _inputs(renderings, case, SECRET, "alb-mtls-gateway-cert")
    assert secret["type"] == "kubernetes.io/tls"
    assert mp.holds_private_key(secret["stringData"]["tls.key"]), "the control: the Secret does hold a key"
    record = next(r for r in registered(renderings[case]) if r.inputs.get("metadata", {}).get("name") == "alb-mtls-gateway-cert")
    assert record.is_secret("stringData.tls.key"), "a Pulumi secret, so the state and the render redact it"
    outcome = analyze(SECRET, secret)
    assert outcome.violations == [] and outcome.unknown == []


# --- preview: values not known yet ---------------------------------------------------------------


def test_unknown_credential_is_reported_as_not_checkable(renderings: dict[str, mock_program.Rendering]) -> None:
    gateway = _inputs(renderings, "flavor-nginx", GATEWAY)
    _tls(gateway)["credentialName"] = UNKNOWN_STRING_VALUE
    outcome = analyze(GATEWAY, gateway)
    assert outcome.violations == []
    assert outcome.unknown == [(mp.GATEWAY_POLICY, "spec.servers[0].tls.credentialName can't be known during preview "
                                                   "(`pulumi up` checks them)")]


def test_a_whole_unknown_spec_is_not_checkable_and_not_a_pass(renderings: dict[str, mock_program.Rendering]) -> None:
    gateway = _inputs(renderings, "flavor-nginx", GATEWAY)
    gateway["spec"] = UNKNOWN_OBJECT_VALUE
    ingress = _inputs(renderings, "flavor-nginx", INGRESS)
    ingress["metadata"]["annotations"] = UNKNOWN_OBJECT_VALUE
    assert [p for p, _ in analyze(GATEWAY, gateway).unknown] == [mp.GATEWAY_POLICY]
    assert sorted(p for p, _ in analyze(INGRESS, ingress).unknown) == [mp.ALB_POLICY, mp.KEY_POLICY]


def test_what_is_known_is_still_checked_during_preview(renderings: dict[str, mock_program.Rendering]) -> None:
    gateway = _inputs(renderings, "flavor-nginx", GATEWAY)
    _tls(gateway).update(credentialName=UNKNOWN_STRING_VALUE, mode="SIMPLE")
    outcome = analyze(GATEWAY, gateway)
    assert [m for _, m in outcome.violations] == ["spec.servers[0].tls.mode is 'SIMPLE': it must be 'MUTUAL', so the "
                                                  "gateway demands the ALB's client certificate"]
    ingress = _inputs(renderings, "flavor-nginx", INGRESS)
    _ann(ingress).update({f"{NGINX}proxy-ssl-name": UNKNOWN_STRING_VALUE, f"{NGINX}proxy-ssl-verify": "off"})
    assert [p for p, _ in analyze(INGRESS, ingress).violations] == [mp.ALB_POLICY]


def test_parse_ssl_services() -> None:
    assert mp.parse_ssl_services("ssl-service=a ssl-secret=b; ssl-service=c proxy-ssl-name=x.example.com") == [
        {"ssl-service": "a", "ssl-secret": "b"}, {"ssl-service": "c", "proxy-ssl-name": "x.example.com"}]


# --- the pack as the CLI runs it -----------------------------------------------------------------


def test_pack_files() -> None:
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    requirements = (POLICY_DIR / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements
    main = (POLICY_DIR / "__main__.py").read_text()
    assert "PolicyPack(" in main and "policies=policies()" in main
    names = [p.name for p in mp.policies()]
    assert names == [mp.GATEWAY_POLICY, mp.ALB_POLICY, mp.KEY_POLICY, mp.HOP_POLICY] and len(set(names)) == 4
    assert [type(p).__name__ for p in mp.policies()] == ["ResourceValidationPolicy"] * 3 + ["StackValidationPolicy"]


def test_the_policy_module_stands_alone() -> None:
    """The pack runs in its own virtualenv, where the project's components are not installed."""
    code = "import sys, mtls_policies; assert not [m for m in sys.modules if m.startswith('components')]"
    # -E -s: no PYTHONPATH, no user site; ``-c`` puts only the pack's own folder on the path.
    subprocess.run([sys.executable, "-E", "-s", "-c", code], cwd=POLICY_DIR, check=True)


@pytest.fixture(scope="module")
def pack() -> Iterator[Any]:
    """The pack started as the CLI starts it (``python -m pulumi.policy <engine> policy``), on loopback."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY_DIR)],
        cwd=POLICY_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = (proc.stdout.readline() if proc.stdout else "").strip()
        assert port.isdigit(), f"the pack printed no port: {port!r} {proc.stderr.read() if proc.stderr else ''}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _struct(props: dict[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2

    struct = struct_pb2.Struct()
    json_format.ParseDict(props, struct)
    return struct


def _request(r: mock_program.Registered | None, token: str = "", props: dict[str, Any] | None = None) -> Any:
    from pulumi.runtime.proto import analyzer_pb2

    struct = _struct(props if props is not None else (r.inputs if r else {}))
    token = token or (r.type if r else "")
    return analyzer_pb2.AnalyzeRequest(type=token, properties=struct, urn=f"urn:pulumi:dev::p::{token}::r", name="r")


def _stack_request(items: Sequence[StackItem]) -> Any:
    from pulumi.runtime.proto import analyzer_pb2

    return analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(type=token, urn=urn, name=urn.rpartition("::")[2], properties=_struct(props))
        for token, urn, props in items
    ])


def test_the_running_pack_lists_its_mandatory_policies(pack: Any) -> None:
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = pack.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == mp.PACK_NAME
    assert [(p.name, p.enforcementLevel) for p in info.policies] == [
        (name, analyzer_pb2.MANDATORY) for name in (mp.GATEWAY_POLICY, mp.ALB_POLICY, mp.KEY_POLICY, mp.HOP_POLICY)]


def test_the_running_pack_passes_the_program_and_catches_a_broken_gateway(
    pack: Any, renderings: dict[str, mock_program.Rendering]
) -> None:
    from pulumi.runtime.proto import analyzer_pb2

    for r in registered(renderings["flavor-nginx"]):
        assert list(pack.Analyze(_request(r), timeout=30).diagnostics) == [], r.name
    gateway = _inputs(renderings, "flavor-nginx", GATEWAY)
    _tls(gateway).update(mode="SIMPLE")
    (diagnostic,) = pack.Analyze(_request(None, GATEWAY, gateway), timeout=30).diagnostics
    assert diagnostic.policyName == mp.GATEWAY_POLICY and diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "tls.mode is 'SIMPLE'" in diagnostic.message
    _tls(gateway).update(mode="MUTUAL", credentialName=UNKNOWN_STRING_VALUE)
    (diagnostic,) = pack.Analyze(_request(None, GATEWAY, gateway), timeout=30).diagnostics
    assert diagnostic.enforcementLevel == analyzer_pb2.ADVISORY
    assert "can't run policy 'istio-gateway-mutual-tls'" in diagnostic.message and "credentialName" in diagnostic.message


def test_the_running_pack_judges_the_whole_stack(pack: Any, renderings: dict[str, mock_program.Rendering]) -> None:
    """AnalyzeStack, as the engine calls it after the resources: the apps stack passes; an app's
    VirtualService bound to the mesh only is reported, mandatory, on that VirtualService."""
    from pulumi.runtime.proto import analyzer_pb2

    stack = StackUnderTest(renderings["apps-nginx"])
    assert list(pack.AnalyzeStack(_stack_request(stack.items), timeout=30).diagnostics) == []
    stack.props("VirtualService", "alb-mtls-users")["spec"]["gateways"] = ["mesh"]
    (diagnostic,) = pack.AnalyzeStack(_stack_request(stack.items), timeout=30).diagnostics
    assert diagnostic.policyName == mp.HOP_POLICY and diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert diagnostic.urn == stack.urn("VirtualService", "alb-mtls-users")
    assert "spec.gateways is ['mesh']" in diagnostic.message


# --- a stack's first preview, rendered as such ------------------------------------------------


@pytest.mark.parametrize("flavor", settings.ALB_FLAVORS)
def test_a_first_preview_is_checked_on_everything_but_the_pending_names(flavor: str) -> None:
    """Before the nlb-dns registration exists only its names are unknown: the Gateway's mode,
    TLS version and pins, and the ALB's re-encryption settings, are checked in the preview."""
    rendering = mock_program.render({"cluster": CLUSTER, "albFlavor": flavor}, standin(), preview=True)
    assert rendering.error is None, rendering.error
    by_type: dict[str, list[Outcome]] = {}
    for r in registered(rendering):
        by_type.setdefault(r.type, []).append(analyze(r.type, r.inputs))
    assert all(o.violations == [] for outcomes in by_type.values() for o in outcomes), by_type
    (gateway,) = by_type[GATEWAY]
    assert [(p, m.split(" ")[0]) for p, m in gateway.unknown] == [(mp.GATEWAY_POLICY, "spec.servers[0].tls.credentialName")]
    gateway_props = next(r.inputs for r in registered(rendering) if r.type == GATEWAY)
    tls = gateway_props["spec"]["servers"][0]["tls"]
    assert (tls["mode"], tls["minProtocolVersion"], tls["credentialName"]) == ("MUTUAL", "TLSV1_2", mock_program.UNKNOWN)
    assert tls["subjectAltNames"] and mock_program.UNKNOWN not in tls["subjectAltNames"]
    if flavor == "traefik":
        (transport,) = by_type[TRANSPORT]
        assert [p for p, _ in transport.unknown] == [mp.ALB_POLICY]
        spec = next(r.inputs for r in registered(rendering) if r.type == TRANSPORT)["spec"]
        assert spec["serverName"] == mock_program.UNKNOWN and spec["certificatesSecrets"] == ["alb-certs"]
    else:
        (ingress,) = by_type[INGRESS]
        annotations = next(r.inputs for r in registered(rendering) if r.type == INGRESS)["metadata"]["annotations"]
        assert mock_program.UNKNOWN not in [v for k, v in annotations.items() if not k.endswith(("proxy-ssl-name", "ssl-services"))]
        # proxy-ssl-name (in ibm-legacy: inside ssl-services) is the pending gateway domain;
        # an annotation not known yet cannot be searched for keys either.
        assert sorted(p for p, _ in ingress.unknown) == [mp.ALB_POLICY, mp.KEY_POLICY]


def test_a_broken_gateway_is_caught_in_the_first_preview() -> None:
    """The point of the above: a SIMPLE gateway fails the preview, not only `pulumi up`."""
    rendering = mock_program.render({"cluster": CLUSTER}, standin(), preview=True)
    gateway = copy.deepcopy(next(r.inputs for r in registered(rendering) if r.type == GATEWAY))
    gateway["spec"]["servers"][0]["tls"]["mode"] = "SIMPLE"
    assert mp.GATEWAY_POLICY in analyze(GATEWAY, gateway).policies()


@pytest.mark.parametrize("flavor", settings.ALB_FLAVORS)
def test_a_private_ca_first_preview_checks_the_whole_hop(flavor: str) -> None:
    """With gatewayCertSource=private-ca nothing on the hop waits for IBM Cloud: the first preview
    knows every name, so every policy, the stack's included, judges everything, and a Gateway
    that does not serve the ALB's cluster-internal name fails that preview."""
    config = {"cluster": CLUSTER, "albFlavor": flavor, "gatewayCertSource": "private-ca"}
    rendering = mock_program.render(config, standin(), preview=True)
    assert rendering.error is None, rendering.error
    outcomes = {f"{r.type} {r.name}": analyze(r.type, r.inputs) for r in registered(rendering)}
    assert {k: (o.violations, o.unknown) for k, o in outcomes.items() if o.violations or o.unknown} == {}
    whole = analyze_stack(stack_of(rendering))
    assert whole.violations == [] and whole.unknown == []
    stack = StackUnderTest(rendering)
    stack.props("Gateway")["spec"]["servers"][0]["hosts"].remove(INTERNAL)
    assert any(f"is '{INTERNAL}', which is not among the hosts" in m for m in analyze_stack(stack.items).messages())


def test_a_first_preview_of_apps_names_what_waits_and_catches_an_unbound_route() -> None:
    """nlb-dns: the Gateway's hosts wait for the subdomain, so the stack policy says what it cannot
    check yet; an app's VirtualService bound to the mesh only is still caught in that preview."""
    rendering = mock_program.render({"cluster": CLUSTER, "apps": stacks.APPS}, standin(**stacks.APPS_CLUSTER), preview=True)
    assert rendering.error is None, rendering.error
    whole = analyze_stack(stack_of(rendering))
    assert whole.violations == []
    (message,) = whole.unknown
    assert "Gateway mesh-gateway: spec.servers[0].hosts" in message and "can't be known during preview" in message
    stack = StackUnderTest(rendering)
    stack.props("VirtualService", "alb-mtls-web")["spec"]["gateways"] = ["mesh"]
    assert any("spec.gateways is ['mesh']" in m for m in analyze_stack(stack.items).messages())
