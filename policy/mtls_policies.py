"""What this setup promises, as Pulumi CrossGuard policies (``pulumi preview --policy-pack policy``).

- ``istio-gateway-mutual-tls``: every Gateway server that selects the Istio ingress gateway on
  port 443 uses ``MUTUAL`` TLS with a ``credentialName``, pins client ``subjectAltNames`` and
  allows TLS 1.2 or newer only.
- ``alb-reencrypts-to-gateway``: the ALB's way to the gateway is verified TLS with a client
  certificate, one table entry per ALB flavour (:data:`INGRESS_FLAVOURS`, :data:`ALB_CHECKS`).
- ``no-private-key-outside-secrets``: no PEM private key in a ConfigMap, an annotation or a label
  (readable by anyone who may list the object; keys belong in Secrets).  A Secret's data is never
  judged: the program's own keys (``alb-certs``, the gateway's ``alb-mtls-gateway-cert``) are where
  keys belong.
- ``alb-hop-ends-at-mutual-gateway`` (a stack policy, across resources): every Ingress rule routed to
  the gateway has a host with TLS that a MUTUAL Gateway serves, the name the ALB verifies the gateway
  by is one of that Gateway's hosts (a cluster-internal ``<service>.<namespace>.svc`` included), and
  every VirtualService on the hop is bound to that Gateway and no other, for hosts it serves.

The checks are pure functions over the resource's inputs as the engine sends them (camelCase
dicts), so the tests run them without the CLI; :func:`policies` wraps them for pulumi-policy.
Building the ``PolicyPack`` starts the analyzer's gRPC server, so only ``__main__.py`` does that.
This module needs nothing but pulumi-policy: the pack runs in its own virtualenv.

Values computed during the update (on a new stack's first preview, the gateway's nlb-dns
subdomain and everything derived from it) cannot be checked by ``pulumi preview``.  What is known
is checked and reported; when nothing known is wrong but something could not be checked, the
policy raises pulumi-policy's ``UnknownValueError``, which the CLI shows as an advisory "can't run
policy during preview" naming the values.  ``pulumi up`` runs every policy again, with every value
known, before it creates or updates the resource.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
    proxy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

PACK_NAME = "iks-alb-istio-mtls"

GATEWAY_POLICY = "istio-gateway-mutual-tls"
ALB_POLICY = "alb-reencrypts-to-gateway"
KEY_POLICY = "no-private-key-outside-secrets"
HOP_POLICY = "alb-hop-ends-at-mutual-gateway"

#: The program's defaults (settings.py); a stack that changes them sets the same in the policy config.
DEFAULT_GATEWAY_SELECTOR: Mapping[str, str] = {"istio": "ingressgateway"}
DEFAULT_GATEWAY_SERVICE = "istio-ingressgateway"

#: The labels of the ingress gateway's pods, which a Gateway applies to when its selector is a
#: subset of them.  Istio's default profile (istioctl/operator) and the IKS managed Istio add-on
#: install the same ``istio-ingressgateway`` Deployment; its pod template carries these labels
#: (and revision/canonical-name labels Istio's injector adds).  Policy config ``gatewayPodLabels``
#: replaces the list; ``gatewaySelector`` (the stack's) is always one more set.
DEFAULT_GATEWAY_POD_LABELS: tuple[Mapping[str, str], ...] = (
    {
        "app": "istio-ingressgateway",
        "istio": "ingressgateway",
        "chart": "gateways",
        "heritage": "Tiller",
        "release": "istio",
        "install.operator.istio.io/owning-resource": "unknown",
        "operator.istio.io/component": "IngressGateways",
        "istio.io/rev": "default",
        "service.istio.io/canonical-name": "istio-ingressgateway",
        "service.istio.io/canonical-revision": "latest",
        "sidecar.istio.io/inject": "false",
    },
)

#: IngressClass -> the ALB flavour of the controller that serves it on IKS: the community
#: ingress-nginx ALBs (public-/private-iks-k8s-nginx), IBM's retired ALB image (iks-nginx),
#: the Traefik ALBs (public-/private-iks-traefik).  Policy config ``ingressClasses`` adds to it.
DEFAULT_INGRESS_CLASSES: Mapping[str, str] = {
    "public-iks-k8s-nginx": "nginx",
    "private-iks-k8s-nginx": "nginx",
    "iks-nginx": "ibm-legacy",
    "public-iks-traefik": "traefik",
    "private-iks-traefik": "traefik",
}
#: The cluster's default IngressClass, which serves an Ingress that names none (the program's
#: own default); policy config ``defaultIngressClass``.
DEFAULT_INGRESS_CLASS = "public-iks-k8s-nginx"
HTTPS_PORT = 443
ISTIO_MIN_TLS = ("TLSV1_2", "TLSV1_3")
TRAEFIK_MIN_TLS = ("VersionTLS12", "VersionTLS13")

NGINX = "nginx.ingress.kubernetes.io/"
BLUEMIX = "ingress.bluemix.net/"
TRAEFIK = "traefik.ingress.kubernetes.io/"

PRIVATE_KEY_RE = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/\s]{16,}={0,2}\s*$")
_BASE64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}")  # base64 of "-----BEGIN" and what follows


# --- plain values --------------------------------------------------------------------------------

#: The strings the engine sends for values it does not know yet, one per type.
UNKNOWN_SENTINELS = frozenset(
    getattr(proxy, name) for name in dir(proxy) if name.startswith("UNKNOWN_") and name.endswith("_VALUE")
)


@dataclass(frozen=True)
class Unknown:
    """A value that ``pulumi preview`` cannot know yet (computed during the update)."""

    path: str


def plain(value: Any, path: str = "") -> Any:
    """The inputs as plain dicts and lists, each value the engine marked unknown as :class:`Unknown`.

    pulumi-policy hands the inputs over in a proxy that raises on unknown values; reading item
    by item keeps what is known.
    """
    if isinstance(value, str):
        return Unknown(path or "(root)") if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            sub = f"{path}.{key}" if path else str(key)
            try:
                out[key] = plain(value[key], sub)
            except UnknownValueError:
                out[key] = Unknown(sub)
        return out
    if isinstance(value, Sequence):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index], f"{path}[{index}]"))
            except UnknownValueError:
                items.append(Unknown(f"{path}[{index}]"))
        return items
    return value


def get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``: ``None`` when a level is missing, the :class:`Unknown` when one is unknown."""
    for key in keys:
        if isinstance(obj, Unknown):
            return obj
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


@dataclass
class Finding:
    """What one check found on one resource."""

    applies: bool = False
    violations: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    #: e.g. the ALB flavour the check recognised.
    detail: str = ""


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(value).items()}


@dataclass(frozen=True)
class PolicySettings:
    """The policy config (``pulumi preview --policy-pack-config``), defaults as the program's."""

    gateway_selector: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GATEWAY_SELECTOR))
    gateway_service: str = DEFAULT_GATEWAY_SERVICE
    gateway_pod_labels: tuple[Mapping[str, str], ...] = DEFAULT_GATEWAY_POD_LABELS
    ingress_classes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INGRESS_CLASSES))
    default_ingress_class: str = DEFAULT_INGRESS_CLASS

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> PolicySettings:
        config = config or {}
        selector = config.get("gatewaySelector") or DEFAULT_GATEWAY_SELECTOR
        service = config.get("gatewayService") or DEFAULT_GATEWAY_SERVICE
        pods = config.get("gatewayPodLabels") or DEFAULT_GATEWAY_POD_LABELS
        classes = {**DEFAULT_INGRESS_CLASSES, **_labels(config.get("ingressClasses") or {})}
        return cls(
            gateway_selector=_labels(selector),
            gateway_service=str(service),
            gateway_pod_labels=tuple(_labels(labels) for labels in pods),
            ingress_classes=classes,
            default_ingress_class=str(config.get("defaultIngressClass") or DEFAULT_INGRESS_CLASS),
        )

    def gateway_workloads(self) -> tuple[Mapping[str, str], ...]:
        """The label sets of the gateway's pods: the configured ones, and the stack's selector
        (the pods it selects carry at least those labels)."""
        return (*self.gateway_pod_labels, self.gateway_selector)


Check = Callable[[Mapping[str, Any], PolicySettings], Finding]


def group_kind(resource_type: str) -> tuple[str, str]:
    """``kubernetes:networking.istio.io/v1:Gateway`` -> (``networking.istio.io``, ``Gateway``); core is ``""``."""
    package, _, rest = resource_type.partition(":")
    if package != "kubernetes" or ":" not in rest:
        return ("", "")
    module, _, kind = rest.partition(":")
    group = module.rpartition("/")[0]
    return ("" if group == "core" else group, kind)


# --- the Istio Gateway ---------------------------------------------------------------------------


def _shown(value: Any) -> str:
    """A value in a message: ``not set`` rather than ``None``."""
    return "not set" if value is None else repr(value)


def _port_number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def selects(selector: Mapping[str, Any], pod_labels: Mapping[str, str]) -> bool:
    """Istio applies a Gateway to a workload whose labels include every label of its selector."""
    return all(pod_labels.get(key) == value for key, value in selector.items())


def check_gateway(gateway: Mapping[str, Any], settings: PolicySettings) -> Finding:
    """Every server on 443 of a Gateway selecting the ingress gateway: MUTUAL, credential, SANs, TLS >= 1.2.

    A Gateway applies to the gateway's pods when its selector is a subset of their labels
    (:meth:`PolicySettings.gateway_workloads`); a Gateway without a selector applies to every
    gateway workload, so it is judged too.
    """
    found = Finding()
    selector = get(gateway, "spec", "selector")
    if isinstance(selector, Unknown):
        found.unknown.append(selector.path)
        return found
    selector = selector or {}
    if any(isinstance(v, Unknown) for v in selector.values()):
        found.unknown.extend(v.path for v in selector.values() if isinstance(v, Unknown))
        return found
    if not any(selects(selector, labels) for labels in settings.gateway_workloads()):
        return found
    servers = get(gateway, "spec", "servers")
    if isinstance(servers, Unknown):
        found.applies = True
        found.unknown.append(servers.path)
        return found
    for index, server in enumerate(servers or []):
        where = f"spec.servers[{index}]"
        number = get(server, "port", "number")
        if isinstance(number, Unknown):
            found.unknown.append(number.path)
            continue
        if _port_number(number) != HTTPS_PORT:
            continue
        found.applies = True
        _check_server_tls(get(server, "tls"), where, found)
    return found


def _check_server_tls(tls: Any, where: str, found: Finding) -> None:
    if isinstance(tls, Unknown):
        found.unknown.append(tls.path)
        return
    if not isinstance(tls, Mapping):
        found.violations.append(f"{where} (port 443) has no tls: it must be MUTUAL, so the gateway demands the ALB's client certificate")
        return
    mode = tls.get("mode")
    if isinstance(mode, Unknown):
        found.unknown.append(mode.path)
    elif mode != "MUTUAL":
        found.violations.append(f"{where}.tls.mode is {_shown(mode)}: it must be 'MUTUAL', so the gateway demands the ALB's client certificate")
    name, names = tls.get("credentialName"), tls.get("credentialNames")
    unknown_names = [v.path for v in (name, names) if isinstance(v, Unknown)]
    if unknown_names:
        found.unknown.extend(unknown_names)
    elif not (isinstance(name, str) and name.strip()) and not (isinstance(names, list) and names and all(names)):
        found.violations.append(
            f"{where}.tls has no credentialName: the gateway has no server certificate, and no <credentialName>-cacert to verify clients with"
        )
    sans = tls.get("subjectAltNames")
    unknown_sans = [sans] if isinstance(sans, Unknown) else [s for s in sans or [] if isinstance(s, Unknown)]
    if unknown_sans:
        found.unknown.extend(s.path for s in unknown_sans)
    elif not isinstance(sans, list) or not sans or not all(isinstance(s, str) and s.strip() for s in sans):
        found.violations.append(
            f"{where}.tls.subjectAltNames is empty: any client certificate the CA signed would get in; pin the ALB's"
        )
    minimum = tls.get("minProtocolVersion")
    if isinstance(minimum, Unknown):
        found.unknown.append(minimum.path)
    elif minimum not in ISTIO_MIN_TLS:
        found.violations.append(f"{where}.tls.minProtocolVersion is {_shown(minimum)}: it must be 'TLSV1_2' or 'TLSV1_3'")


# --- the ALB -> gateway hop ---------------------------------------------------------------------


@dataclass(frozen=True)
class IngressFlavour:
    """How to recognise one ALB flavour's Ingress, and what it must say to re-encrypt with mTLS."""

    name: str
    #: Substrings of ``ingressClassName`` that mean this flavour when no annotation says so.
    class_hints: tuple[str, ...]
    check: Callable[[Mapping[str, Any], str, Finding], None]


def _annotation(annotations: Mapping[str, Any], key: str, found: Finding) -> Any:
    value = annotations.get(key)
    if isinstance(value, Unknown):
        found.unknown.append(value.path)
    return value


#: nginx annotation -> (required value, or None for "non-empty"; why).
_NGINX_RULES: dict[str, tuple[str | None, str]] = {
    "backend-protocol": ("HTTPS", "without it the ALB speaks plain HTTP to the gateway's TLS port"),
    "proxy-ssl-verify": ("on", "ingress-nginx verifies the gateway's certificate only when this is exactly \"on\""),
    "proxy-ssl-name": (None, "the name the gateway's certificate is verified against (default upstream_balancer never matches)"),
    "proxy-ssl-server-name": ("on", "sends SNI: the gateway picks its server and certificate by SNI"),
    "proxy-ssl-secret": (None, "the ALB's client certificate: without it the gateway refuses the connection"),
}


def _check_nginx(annotations: Mapping[str, Any], gateway_service: str, found: Finding) -> None:
    for name, (required, why) in _NGINX_RULES.items():
        value = _annotation(annotations, NGINX + name, found)
        if isinstance(value, Unknown):
            continue
        if required is not None and value != required:
            found.violations.append(f"annotation {NGINX}{name} is {_shown(value)}: it must be {required!r} ({why})")
        elif required is None and not (isinstance(value, str) and value.strip()):
            found.violations.append(f"annotation {NGINX}{name} is missing or empty ({why})")


def parse_ssl_services(text: str) -> list[dict[str, str]]:
    """``ssl-service=a ssl-secret=b; ssl-service=c`` -> one dict per service."""
    entries = []
    for chunk in text.split(";"):
        pairs = dict(token.partition("=")[::2] for token in chunk.split() if "=" in token)
        if pairs:
            entries.append(pairs)
    return entries


def _check_ibm_legacy(annotations: Mapping[str, Any], gateway_service: str, found: Finding) -> None:
    key = f"{BLUEMIX}ssl-services"
    value = _annotation(annotations, key, found)
    if isinstance(value, Unknown):
        return
    if not isinstance(value, str) or not value.strip():
        found.violations.append(f"annotation {key} is missing: the legacy ALB would not re-encrypt to the gateway")
        return
    entry = next((e for e in parse_ssl_services(value) if e.get("ssl-service") == gateway_service), None)
    if entry is None:
        found.violations.append(f"annotation {key} has no entry ssl-service={gateway_service}: the ALB would not re-encrypt to the gateway")
    elif not entry.get("ssl-secret", "").strip():
        found.violations.append(
            f"annotation {key} names no ssl-secret for ssl-service={gateway_service}: the ALB would present no client certificate"
        )


def _check_traefik_ingress(annotations: Mapping[str, Any], gateway_service: str, found: Finding) -> None:
    """Traefik takes backend TLS from the backend *Service*'s annotations (a ServersTransport), never
    from the Ingress: routed straight to the installation's gateway Service, it would not present
    the ALB's client certificate (the program routes to a Service of its own for that)."""
    found.violations.append(
        f"it routes to the gateway Service {gateway_service} through a Traefik ALB: Traefik reads backend TLS "
        "from the Service's serversTransport annotation, so route to a Service bound to a ServersTransport "
        "(as the program's albFlavor=traefik does)"
    )


#: The flavours by name; :func:`detect_flavour` picks one by the Ingress's class.
INGRESS_FLAVOURS: tuple[IngressFlavour, ...] = (
    IngressFlavour("ibm-legacy", (), _check_ibm_legacy),
    IngressFlavour("nginx", ("nginx",), _check_nginx),
    IngressFlavour("traefik", ("traefik",), _check_traefik_ingress),
)
_FLAVOUR_BY_NAME: dict[str, IngressFlavour] = {f.name: f for f in INGRESS_FLAVOURS}


def ingress_class(ingress: Mapping[str, Any], settings: PolicySettings) -> str | Unknown:
    """The class that decides which controller serves the Ingress: the legacy annotation when set
    (controllers read it first), else ``spec.ingressClassName``, else the cluster's default class."""
    annotations = get(ingress, "metadata", "annotations") or {}
    if isinstance(annotations, Unknown):
        return annotations
    legacy = annotations.get("kubernetes.io/ingress.class")
    if legacy is not None:
        return legacy if isinstance(legacy, Unknown) else str(legacy)
    name = get(ingress, "spec", "ingressClassName")
    if isinstance(name, Unknown):
        return name
    return str(name) if name else settings.default_ingress_class


def detect_flavour(ingress: Mapping[str, Any], settings: PolicySettings | None = None) -> IngressFlavour | None | Unknown:
    """The flavour of the controller behind the Ingress's class, never of its annotation prefixes:
    a stray ``ingress.bluemix.net/…`` annotation does not make an ingress-nginx Ingress legacy."""
    settings = settings or PolicySettings()
    name = ingress_class(ingress, settings)
    if isinstance(name, Unknown):
        return name
    flavour = settings.ingress_classes.get(name)
    if flavour is None:
        # A class this pack was not told about: recognise IKS-like names, nothing else.
        flavour = next((f.name for f in INGRESS_FLAVOURS if any(h in name for h in f.class_hints)), None)
    return _FLAVOUR_BY_NAME.get(flavour) if flavour else None


def backend_services(ingress: Mapping[str, Any]) -> list[Any]:
    """Every Service the Ingress routes to (an :class:`Unknown` where that is not known yet)."""
    spec = get(ingress, "spec")
    if isinstance(spec, Unknown):
        return [spec]
    out = [get(spec, "defaultBackend", "service", "name")]
    rules = get(spec, "rules")
    if isinstance(rules, Unknown):
        return [*out, rules]
    for rule in rules or []:
        paths = get(rule, "http", "paths")
        if isinstance(paths, Unknown):
            out.append(paths)
            continue
        out.extend(get(path, "backend", "service", "name") for path in paths or [])
    return [name for name in out if name is not None]


def check_ingress(ingress: Mapping[str, Any], settings: PolicySettings) -> Finding:
    """An Ingress routing to the gateway's Service re-encrypts with verification and a client certificate."""
    found = Finding()
    services = backend_services(ingress)
    if settings.gateway_service not in services:
        found.unknown.extend(s.path for s in services if isinstance(s, Unknown))
        return found
    found.applies = True
    flavour = detect_flavour(ingress, settings)
    if isinstance(flavour, Unknown):
        found.unknown.append(flavour.path)
        return found
    if flavour is None:
        known = ", ".join(f"{name} ({flavour})" for name, flavour in sorted(settings.ingress_classes.items()))
        found.violations.append(
            f"it routes to the gateway Service {settings.gateway_service} but its IngressClass {ingress_class(ingress, settings)!r} "
            f"is served by no ALB this pack knows (classes: {known}; policy config ingressClasses adds one): "
            "nothing shows that it re-encrypts to the gateway with a client certificate"
        )
        return found
    found.detail = flavour.name
    annotations = get(ingress, "metadata", "annotations") or {}
    flavour.check(annotations, settings.gateway_service, found)
    return found


def check_servers_transport(transport: Mapping[str, Any], settings: PolicySettings) -> Finding:
    """Traefik's counterpart of the nginx annotations: verify the gateway, present the client certificate."""
    found = Finding(applies=True, detail="traefik")
    spec = get(transport, "spec")
    if isinstance(spec, Unknown):
        found.unknown.append(spec.path)
        return found
    spec = spec or {}
    skip = spec.get("insecureSkipVerify")
    if isinstance(skip, Unknown):
        found.unknown.append(skip.path)
    elif skip is True or str(skip).lower() == "true":
        found.violations.append("spec.insecureSkipVerify is true: Traefik would accept any certificate from the gateway")
    for key, why in (
        ("serverName", "the name the gateway's certificate is verified against, sent as SNI"),
        ("certificatesSecrets", "the ALB's client certificate: without it the gateway refuses the connection"),
    ):
        value = spec.get(key)
        if isinstance(value, Unknown):
            found.unknown.append(value.path)
        elif not value or (isinstance(value, list) and not all(value)):
            found.violations.append(f"spec.{key} is missing or empty ({why})")
    minimum = spec.get("minVersion")
    if isinstance(minimum, Unknown):
        found.unknown.append(minimum.path)
    elif minimum is not None and minimum not in TRAEFIK_MIN_TLS:
        found.violations.append(f"spec.minVersion is {_shown(minimum)}: it must be 'VersionTLS12' or 'VersionTLS13'")
    return found


#: (API group, kind) -> the check of policy ``alb-reencrypts-to-gateway``.  A new ALB flavour is
#: an :data:`INGRESS_FLAVOURS` entry (annotations on the Ingress) or a kind here (its own object).
ALB_CHECKS: dict[tuple[str, str], Check] = {
    ("networking.k8s.io", "Ingress"): check_ingress,
    ("traefik.io", "ServersTransport"): check_servers_transport,
}
GATEWAY_CHECKS: dict[tuple[str, str], Check] = {
    ("networking.istio.io", "Gateway"): check_gateway,
}


# --- the whole hop, across resources (a stack policy) ---------------------------------------------


@dataclass(frozen=True)
class StackResource:
    """One resource as the stack policy sees it: type token, URN and properties (see :func:`plain`)."""

    type: str
    urn: str
    props: Mapping[str, Any]

    @property
    def kind(self) -> tuple[str, str]:
        return group_kind(self.type)

    @property
    def label(self) -> str:
        """``<kind> <resource name>``, as a message names the resource."""
        return f"{self.kind[1] or self.type} {self.urn.rpartition('::')[2]}"

    def ref(self) -> str | Unknown:
        """``namespace/name`` (a namespaced object without a namespace lands in ``default``)."""
        namespace, name = get(self.props, "metadata", "namespace"), get(self.props, "metadata", "name")
        for value in (namespace, name):
            if isinstance(value, Unknown):
                return value
        return f"{namespace or 'default'}/{name}"

    def namespace(self) -> str | Unknown:
        namespace = get(self.props, "metadata", "namespace")
        return namespace if isinstance(namespace, Unknown) else str(namespace or "default")


@dataclass
class StackFinding:
    """What the stack check found: violations by URN (``None``: the stack), unknowns, and what it judged."""

    violations: list[tuple[str | None, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    #: How many of each thing were judged (``VirtualService``, ``Ingress rule``, ``verified name``), for
    #: the tests' control that the check ran on something.
    judged: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.judged[what] = self.judged.get(what, 0) + 1

    def pending(self, resource: StackResource, *values: Any) -> None:
        """Note each :class:`Unknown` among ``values`` as ``<kind> <name>: <path>``."""
        self.unknown.extend(f"{resource.label}: {v.path}" for v in values if isinstance(v, Unknown))


def _items(value: Any) -> list[Any]:
    """A list property as a list; anything else (absent, malformed) as no items."""
    return list(value) if isinstance(value, (list, tuple)) else []


def gateway_host(entry: str) -> str:
    """A Gateway server's host without its namespace part (``ns/host``, ``*/host``, ``./host``)."""
    return entry.rpartition("/")[2].lower().rstrip(".")


def host_matches(pattern: str, host: str) -> bool:
    """Whether ``pattern`` (a name, ``*.suffix`` or ``*``) covers ``host``, as Istio matches hosts."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) or host == pattern
    return pattern == host


@dataclass
class _GatewayView:
    """A Gateway of the stack as the hop needs it: whether it applies to the ingress gateway's pods
    and is MUTUAL there, and the hosts its MUTUAL servers on 443 serve."""

    resource: StackResource
    ref: str
    pods: bool
    """Its selector applies to the ingress gateway's pods (:meth:`PolicySettings.gateway_workloads`)."""
    broken: bool
    """Policy ``istio-gateway-mutual-tls`` finds it wrong."""
    servers: int = 0
    """Its MUTUAL servers on 443."""
    hosts: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def mutual(self) -> bool:
        return self.pods and not self.broken and (self.servers > 0 or bool(self.unknown))


def _gateway_view(resource: StackResource, ref: str, settings: PolicySettings) -> _GatewayView:
    found = check_gateway(resource.props, settings)
    selector = get(resource.props, "spec", "selector")
    pods = isinstance(selector, Unknown) or any(
        selects(selector if isinstance(selector, Mapping) else {}, labels) for labels in settings.gateway_workloads()
    )
    view = _GatewayView(resource, ref, pods=pods, broken=bool(found.violations))
    servers = get(resource.props, "spec", "servers")
    if isinstance(servers, Unknown):
        view.unknown.append(f"{resource.label}: {servers.path}")
        return view
    for server in _items(servers):
        number, mode, hosts = get(server, "port", "number"), get(server, "tls", "mode"), get(server, "hosts")
        if isinstance(number, Unknown) or isinstance(mode, Unknown):
            view.unknown.extend(f"{resource.label}: {v.path}" for v in (number, mode) if isinstance(v, Unknown))
            continue
        if _port_number(number) != HTTPS_PORT or mode != "MUTUAL":
            continue
        view.servers += 1
        if isinstance(hosts, Unknown):
            view.unknown.append(f"{resource.label}: {hosts.path}")
            continue
        for host in _items(hosts):
            if isinstance(host, Unknown):
                view.unknown.append(f"{resource.label}: {host.path}")
            elif isinstance(host, str):
                view.hosts.append(gateway_host(host))
    return view


def _gateway_ref(entry: str, namespace: str) -> str:
    """A VirtualService's ``gateways`` entry as ``namespace/name`` (a bare name is in its own namespace)."""
    return entry if "/" in entry else f"{namespace}/{entry}"


def _transport_key(text: str) -> str:
    """Traefik's name of a kubernetescrd ServersTransport, ``<namespace>-<name>``, from an annotation or an object."""
    return re.sub(r"[^A-Za-z0-9-]", "-", text.partition("@")[0])


class _Hop:
    """The stack's objects indexed for :func:`check_hop`."""

    def __init__(self, resources: Sequence[StackResource], settings: PolicySettings, found: StackFinding) -> None:
        self.settings = settings
        self.found = found
        self.gateways: dict[str, _GatewayView] = {}
        self.virtual_services: list[StackResource] = []
        self.ingresses: list[StackResource] = []
        self.services: dict[str, StackResource] = {}
        self.transports: dict[str, StackResource] = {}
        for resource in resources:
            group, kind = resource.kind
            ref = resource.ref()
            if isinstance(ref, Unknown):
                if (group, kind) in GATEWAY_CHECKS or kind in ("VirtualService", "Ingress", "ServersTransport"):
                    found.pending(resource, ref)
                continue
            if (group, kind) in GATEWAY_CHECKS:
                self.gateways[ref] = _gateway_view(resource, ref, settings)
            elif (group, kind) == ("networking.istio.io", "VirtualService"):
                self.virtual_services.append(resource)
            elif (group, kind) == ("networking.k8s.io", "Ingress"):
                self.ingresses.append(resource)
            elif (group, kind) == ("", "Service"):
                self.services[ref] = resource
            elif (group, kind) == ("traefik.io", "ServersTransport"):
                namespace, _, name = ref.partition("/")
                self.transports[_transport_key(f"{namespace}-{name}")] = resource

    def mutual(self) -> list[_GatewayView]:
        return [view for view in self.gateways.values() if view.mutual]

    def selects_gateway_pods(self, service: StackResource) -> bool:
        selector = get(service.props, "spec", "selector")
        if not isinstance(selector, Mapping) or not selector or any(isinstance(v, Unknown) for v in selector.values()):
            return False
        return any(selects(selector, labels) for labels in self.settings.gateway_workloads())

    def gateway_backend(self, namespace: str, name: Any) -> StackResource | bool:
        """Whether Service ``name`` of ``namespace`` leads to the gateway's pods: the gateway's own
        Service (``True``) or a Service of the stack that selects them (that Service)."""
        if name == self.settings.gateway_service:
            return True
        service = self.services.get(f"{namespace}/{name}")
        if service is not None and self.selects_gateway_pods(service):
            return service
        return False

    def served(self, name: str, what: str, urn: str, why: str, *, judged: str | None = None) -> None:
        """``name`` must be a host of a MUTUAL Gateway of the stack; ``what`` names where it was found,
        ``judged`` what to count it as (:attr:`StackFinding.judged`)."""
        if judged:
            self.found.count(judged)
        gateways = self.mutual()
        if any(host_matches(host, name) for view in gateways for host in view.hosts):
            return
        pending = [path for view in gateways for path in view.unknown]
        if pending:
            self.found.unknown.extend(pending)
            return
        hosts = sorted({host for view in gateways for host in view.hosts})
        where = f"among the hosts of a MUTUAL Gateway of this stack ({', '.join(hosts)})" if hosts else (
            "served by a MUTUAL Gateway of this stack, and the stack has none for the ingress gateway's pods")
        self.found.violations.append((urn, f"{what} is {name!r}, which is not {where}: {why}"))


def _check_virtual_service(hop: _Hop, resource: StackResource, alb_hosts: set[str]) -> None:
    """A VirtualService on the hop (bound to a Gateway of the ingress gateway's pods, or routing a
    host the ALB sends to the gateway) is bound to a MUTUAL Gateway of the stack, to no Gateway
    that is not one, and each of its hosts is one of that Gateway's."""
    found, urn = hop.found, resource.urn
    namespace = resource.namespace()
    hosts, gateways = get(resource.props, "spec", "hosts"), get(resource.props, "spec", "gateways")
    if isinstance(namespace, Unknown) or isinstance(gateways, Unknown) or isinstance(hosts, Unknown):
        found.pending(resource, namespace, gateways, hosts)
        return
    entries = _items(gateways) or ["mesh"]
    if any(isinstance(v, Unknown) for v in [*entries, *_items(hosts)]):
        found.pending(resource, *entries, *_items(hosts))
        return
    refs = [_gateway_ref(str(g), namespace) for g in entries if g != "mesh"]
    names = [str(h).lower() for h in _items(hosts)]
    ingress_gateway = any(ref in hop.gateways and hop.gateways[ref].pods for ref in refs)
    alb_routed = [h for h in names if any(host_matches(h, a) or host_matches(a, h) for a in alb_hosts)]
    if not (ingress_gateway or alb_routed):
        return
    found.count("VirtualService")
    bound: list[_GatewayView] = []
    for ref in refs:
        view = hop.gateways.get(ref)
        if view is None:
            found.violations.append((urn, f"it is bound to Gateway {ref}, which this stack does not define: nothing shows that "
                                          "it demands the ALB's client certificate, so its hosts could be reached around the hop"))
        elif not view.pods:
            found.violations.append((urn, f"it is bound to Gateway {ref}, which does not apply to the ingress gateway's pods: "
                                          "its hosts would be served outside the mutual-TLS hop"))
        elif not view.mutual:
            found.violations.append((urn, f"it is bound to Gateway {ref}, which is not MUTUAL (policy {GATEWAY_POLICY}): "
                                          "its hosts would be served without the ALB's client certificate"))
        else:
            bound.append(view)
    if not refs:
        shown = "not set (the mesh only)" if not _items(gateways) else f"{[str(g) for g in entries]}"
        found.violations.append((urn, f"spec.gateways is {shown}: it routes {', '.join(alb_routed)}, which the ALB sends to the "
                                      "gateway, but is bound to no Gateway, so the gateway has no route for it; bind it to the "
                                      "MUTUAL Gateway the ALB's hop ends at"))
    if not bound:
        return
    pending = [path for view in bound for path in view.unknown]
    for index, host in enumerate(names):
        if any(host_matches(g, host) or host_matches(host, g) for view in bound for g in view.hosts):
            continue
        if pending:
            found.unknown.extend(pending)
            continue
        refs_shown = ", ".join(view.ref for view in bound)
        found.violations.append((urn, f"spec.hosts[{index}] {host!r} is not a host of Gateway {refs_shown}: Istio ignores "
                                      "the route for it there, so the ALB's requests for it get 404"))


def _rule_hosts(hop: _Hop, resource: StackResource) -> tuple[list[tuple[int, Any]], list[StackResource]]:
    """The rules of an Ingress that route to the gateway (index, host), and the Services of the
    stack in front of the gateway's pods they route to."""
    found = hop.found
    namespace = resource.namespace()
    rules = get(resource.props, "spec", "rules")
    if isinstance(namespace, Unknown) or isinstance(rules, Unknown):
        found.pending(resource, namespace, rules)
        return [], []
    routed: list[tuple[int, Any]] = []
    fronts: list[StackResource] = []
    default = get(resource.props, "spec", "defaultBackend", "service", "name")
    if default is not None and not isinstance(default, Unknown) and hop.gateway_backend(namespace, default):
        routed.append((-1, None))
    for index, rule in enumerate(_items(rules)):
        paths = get(rule, "http", "paths")
        if isinstance(paths, Unknown):
            found.pending(resource, paths)
            continue
        to_gateway = False
        for path in _items(paths):
            name = get(path, "backend", "service", "name")
            if isinstance(name, Unknown):
                found.pending(resource, name)
                continue
            backend = hop.gateway_backend(namespace, name)
            if isinstance(backend, StackResource) and backend not in fronts:
                fronts.append(backend)
            to_gateway = to_gateway or bool(backend)
        if to_gateway:
            routed.append((index, get(rule, "host")))
    return routed, fronts


def _check_ingress_hop(hop: _Hop, resource: StackResource) -> set[str]:
    """An Ingress routing to the gateway: every such host has TLS and is a host of the MUTUAL
    Gateway, and the name the ALB verifies the gateway by is one too.  Returns its hosts."""
    found, urn = hop.found, resource.urn
    routed, fronts = _rule_hosts(hop, resource)
    if not routed:
        return set()
    tls = get(resource.props, "spec", "tls")
    tls_hosts: list[str] = []
    if isinstance(tls, Unknown):
        found.pending(resource, tls)
    else:
        for entry in _items(tls):
            names = get(entry, "hosts")
            if isinstance(names, Unknown):
                found.pending(resource, names)
                continue
            tls_hosts.extend(str(n) for n in _items(names) if isinstance(n, str))
    hosts: set[str] = set()
    for index, host in routed:
        where = "spec.defaultBackend" if index < 0 else f"spec.rules[{index}]"
        found.count("Ingress rule")
        if isinstance(host, Unknown):
            found.pending(resource, host)
            continue
        if not host:
            found.violations.append((urn, f"{where} routes to the gateway for any host: give it a host, with a spec.tls entry, "
                                          "so the ALB serves it only over TLS with its certificate"))
            continue
        hosts.add(str(host).lower())
        if not isinstance(tls, Unknown) and not any(host_matches(t, str(host)) for t in tls_hosts):
            found.violations.append((urn, f"{where} host {host!r} has no spec.tls entry: the ALB would not serve it with its "
                                          "certificate (ingress-nginx also serves such a host over plain HTTP)"))
        hop.served(str(host), f"{where} host", urn,
                   "the gateway has no route for it, so the ALB's requests for it would get 404")
    _check_verified_name(hop, resource, fronts)
    return hosts


def _check_verified_name(hop: _Hop, resource: StackResource, fronts: list[StackResource]) -> None:
    """The name the ALB sends as SNI and verifies the gateway's certificate by (per flavour) is a
    host of the MUTUAL Gateway: the gateway picks its server by SNI."""
    why = "the ALB sends it as SNI and the gateway picks its server by it, so the handshake would fail"
    found, urn = hop.found, resource.urn
    flavour = detect_flavour(resource.props, hop.settings)
    if isinstance(flavour, Unknown):
        found.pending(resource, flavour)
        return
    annotations = get(resource.props, "metadata", "annotations") or {}
    if isinstance(annotations, Unknown):
        found.pending(resource, annotations)
        return
    if flavour is not None and flavour.name == "nginx":
        name = annotations.get(NGINX + "proxy-ssl-name")
        if isinstance(name, Unknown):
            found.pending(resource, name)
        elif isinstance(name, str) and name.strip():
            hop.served(name.strip(), f"annotation {NGINX}proxy-ssl-name", urn, why, judged="verified name")
    elif flavour is not None and flavour.name == "ibm-legacy":
        value = annotations.get(BLUEMIX + "ssl-services")
        if isinstance(value, Unknown):
            found.pending(resource, value)
        elif isinstance(value, str):
            for entry in parse_ssl_services(value):
                if entry.get("ssl-service") == hop.settings.gateway_service and entry.get("proxy-ssl-name"):
                    hop.served(entry["proxy-ssl-name"], f"annotation {BLUEMIX}ssl-services proxy-ssl-name", urn, why, judged="verified name")
    elif flavour is not None and flavour.name == "traefik":
        for service in fronts:
            _check_traefik_front(hop, service, why)


def _check_traefik_front(hop: _Hop, service: StackResource, why: str) -> None:
    """A Service of the stack in front of the gateway's pods, routed to by a Traefik ALB: bound to a
    ServersTransport of the stack, whose serverName the MUTUAL Gateway serves."""
    found = hop.found
    annotations = get(service.props, "metadata", "annotations") or {}
    key = TRAEFIK + "service.serverstransport"
    ref = annotations if isinstance(annotations, Unknown) else annotations.get(key)
    if isinstance(ref, Unknown):
        found.pending(service, ref)
        return
    if not isinstance(ref, str) or not ref.strip():
        found.violations.append((service.urn, f"Service {service.ref()} selects the gateway's pods for a Traefik ALB but has no "
                                              f"annotation {key}: Traefik would connect without the client certificate"))
        return
    transport = hop.transports.get(_transport_key(ref.strip()))
    if transport is None:
        found.violations.append((service.urn, f"annotation {key} names {ref!r}, which is no ServersTransport of this stack: "
                                              "nothing shows that Traefik verifies the gateway and presents the client certificate"))
        return
    name = get(transport.props, "spec", "serverName")
    if isinstance(name, Unknown):
        found.pending(transport, name)
    elif isinstance(name, str) and name.strip():
        hop.served(name.strip(), f"spec.serverName of ServersTransport {transport.ref()}", transport.urn, why, judged="verified name")


def check_hop(resources: Sequence[StackResource], settings: PolicySettings) -> StackFinding:
    """Across the stack: what the ALB sends to the gateway ends at its MUTUAL server.

    - every Ingress rule routed to the gateway (its Service, or a Service of the stack that selects
      its pods) has a host with a ``spec.tls`` entry, and that host is a host of a MUTUAL Gateway;
    - the name the ALB verifies the gateway by (nginx ``proxy-ssl-name``, ibm-legacy
      ``ssl-services`` ``proxy-ssl-name``, Traefik ``serverName``) is one of those hosts, a
      cluster-internal name (``<service>.<namespace>.svc``) included;
    - every VirtualService on the hop (bound to a Gateway of the ingress gateway's pods, or
      routing a host the ALB sends there) is bound to a MUTUAL Gateway of the stack, to no other
      Gateway, and each of its hosts is one of that Gateway's.
    """
    found = StackFinding()
    hop = _Hop(resources, settings, found)
    alb_hosts: set[str] = set()
    for ingress in hop.ingresses:
        alb_hosts |= _check_ingress_hop(hop, ingress)
    for virtual_service in hop.virtual_services:
        _check_virtual_service(hop, virtual_service, alb_hosts)
    return found


# --- private keys -------------------------------------------------------------------------------


def holds_private_key(text: Any) -> bool:
    """A PEM private key in ``text``, as it is or base64-encoded (the whole value or a ``LS0tLS1CRUdJTi`` run)."""
    if not isinstance(text, str):
        return False
    if PRIVATE_KEY_RE.search(text):
        return True
    candidates = _BASE64_PEM.findall(text)
    if _BASE64_TEXT.match(text):
        candidates.append(text)
    for candidate in candidates:
        compact = "".join(candidate.split())
        try:
            decoded = base64.b64decode(compact + "=" * (-len(compact) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue
        if PRIVATE_KEY_RE.search(decoded):
            return True
    return False


def _metadata_blocks(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``metadata`` object, the pod template's included."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key == "metadata":
                out.append((sub, item))
            out.extend(_metadata_blocks(item, sub))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_metadata_blocks(item, f"{path}[{index}]"))
    return out


def check_no_private_key(obj: Mapping[str, Any], kind: str) -> Finding:
    """No PEM private key in annotations, labels or ConfigMap data.  Messages never quote the value."""
    found = Finding(applies=True)
    for where, meta in _metadata_blocks(obj):
        for part in ("annotations", "labels"):
            block = get(meta, part)
            if isinstance(block, Unknown):
                found.unknown.append(block.path)
                continue
            for key, value in (block or {}).items() if isinstance(block, Mapping) else []:
                if isinstance(value, Unknown):
                    found.unknown.append(value.path)
                elif holds_private_key(value) or holds_private_key(key):
                    singular = part[:-1]
                    found.violations.append(
                        f"{singular} {key!r} ({where}.{part}) holds a PEM private key: anyone who may read the object "
                        "reads it; keep keys in a Secret"
                    )
    if kind in ("ConfigMap", "ConfigMapPatch"):
        for part in ("data", "binaryData"):
            block = get(obj, part)
            if isinstance(block, Unknown):
                found.unknown.append(block.path)
                continue
            for key, value in (block or {}).items() if isinstance(block, Mapping) else []:
                if isinstance(value, Unknown):
                    found.unknown.append(value.path)
                elif holds_private_key(value):
                    found.violations.append(
                        f"ConfigMap {part} key {key!r} holds a PEM private key: ConfigMaps are not secret; keep keys in a Secret"
                    )
    return found


# --- pulumi-policy wiring -----------------------------------------------------------------------


def _report(found: Finding, report_violation: ReportViolation) -> None:
    """Violations first; if there are none but something was unknown, say so as pulumi-policy does."""
    for message in found.violations:
        report_violation(message, None)
    if found.unknown and not found.violations:
        error = UnknownValueError(UNKNOWN_STRING_VALUE, found.unknown[0].split("."))
        error.message = f"{', '.join(sorted(set(found.unknown)))} can't be known during preview (`pulumi up` checks them)"
        raise error


def _table_validation(table: Mapping[tuple[str, str], Check]) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        check = table.get(group_kind(args.resource_type))
        if check is not None:
            _report(check(plain(args.props), PolicySettings.from_config(args.get_config())), report_violation)

    return validate


def _report_stack(found: StackFinding, report_violation: ReportViolation) -> None:
    """As :func:`_report`, each violation on the resource it is about."""
    for urn, message in found.violations:
        report_violation(message, urn)
    if found.unknown and not found.violations:
        error = UnknownValueError(UNKNOWN_STRING_VALUE, found.unknown[0].split("."))
        error.message = f"{', '.join(sorted(set(found.unknown)))} can't be known during preview (`pulumi up` checks them)"
        raise error


def _validate_hop(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [StackResource(r.resource_type, r.urn, plain(r.props)) for r in args.resources]
    _report_stack(check_hop(resources, PolicySettings.from_config(args.get_config())), report_violation)


def _validate_keys(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type.startswith("kubernetes:"):
        _report(check_no_private_key(plain(args.props), group_kind(args.resource_type)[1]), report_violation)


def policies(enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> list[Policy]:
    """The pack's policies; ``__main__.py`` hands them to ``PolicyPack``."""
    selector_schema = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": dict(DEFAULT_GATEWAY_SELECTOR),
        "description": "labels of the Istio ingress gateway pods (the stack's gatewaySelector)",
    }
    service_schema = {
        "type": "string",
        "default": DEFAULT_GATEWAY_SERVICE,
        "description": "the gateway's Service (the stack's gatewayService)",
    }
    pods_schema = {
        "type": "array",
        "items": {"type": "object", "additionalProperties": {"type": "string"}},
        "default": [dict(labels) for labels in DEFAULT_GATEWAY_POD_LABELS],
        "description": "label sets of the ingress gateway's pods; a Gateway whose selector is a subset of one applies to them",
    }
    classes_schema = {
        "type": "object",
        "additionalProperties": {"type": "string", "enum": [f.name for f in INGRESS_FLAVOURS]},
        "default": dict(DEFAULT_INGRESS_CLASSES),
        "description": "IngressClass -> ALB flavour of the controller serving it (added to the IKS classes)",
    }
    default_class_schema = {
        "type": "string",
        "default": DEFAULT_INGRESS_CLASS,
        "description": "the cluster's default IngressClass, which serves an Ingress naming none",
    }
    return [
        ResourceValidationPolicy(
            name=GATEWAY_POLICY,
            description="Every Istio Gateway server selecting the ingress gateway on port 443 uses MUTUAL TLS "
            "with a credentialName, pinned client subjectAltNames and minProtocolVersion TLS 1.2 or newer.",
            validate=_table_validation(GATEWAY_CHECKS),
            enforcement_level=enforcement_level,
            config_schema=PolicyConfigSchema(properties={"gatewaySelector": selector_schema, "gatewayPodLabels": pods_schema}),
        ),
        ResourceValidationPolicy(
            name=ALB_POLICY,
            description="The ALB re-encrypts to the Istio gateway, verifies its certificate by name (SNI on) and "
            "presents a client certificate (nginx: backend-protocol HTTPS, proxy-ssl-verify on, proxy-ssl-name, "
            "proxy-ssl-server-name on, proxy-ssl-secret; ibm-legacy: ssl-services with an ssl-secret; "
            "traefik: a ServersTransport with serverName and certificatesSecrets).",
            validate=_table_validation(ALB_CHECKS),
            enforcement_level=enforcement_level,
            config_schema=PolicyConfigSchema(
                properties={
                    "gatewayService": service_schema,
                    "ingressClasses": classes_schema,
                    "defaultIngressClass": default_class_schema,
                }
            ),
        ),
        ResourceValidationPolicy(
            name=KEY_POLICY,
            description="No PEM private key in a ConfigMap, an annotation or a label: keys belong in Secrets.",
            validate=_validate_keys,
            enforcement_level=enforcement_level,
        ),
        StackValidationPolicy(
            name=HOP_POLICY,
            description="What the ALB sends to the gateway ends at its MUTUAL server: every Ingress rule routed to the "
            "gateway has a host with TLS that a MUTUAL Gateway serves, the name the ALB verifies the gateway by "
            "(proxy-ssl-name, ssl-services proxy-ssl-name, ServersTransport serverName) is a host of that Gateway, "
            "and every VirtualService on the hop is bound to that Gateway, and to no other, for hosts it serves.",
            validate=_validate_hop,
            enforcement_level=enforcement_level,
            config_schema=PolicyConfigSchema(
                properties={
                    "gatewaySelector": selector_schema,
                    "gatewayPodLabels": pods_schema,
                    "gatewayService": service_schema,
                    "ingressClasses": classes_schema,
                    "defaultIngressClass": default_class_schema,
                }
            ),
        ),
    ]
