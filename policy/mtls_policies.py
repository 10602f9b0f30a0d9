"""What this setup promises, as Pulumi CrossGuard policies (``pulumi preview --policy-pack policy``).

- ``istio-gateway-mutual-tls``: every Gateway server that selects the Istio ingress gateway on
  port 443 uses ``MUTUAL`` TLS with a ``credentialName``, pins client ``subjectAltNames`` and
  allows TLS 1.2 or newer only.
- ``alb-reencrypts-to-gateway``: the ALB's way to the gateway is verified TLS with a client
  certificate, one table entry per ALB flavour (:data:`INGRESS_FLAVOURS`, :data:`ALB_CHECKS`).
- ``no-private-key-outside-secrets``: no PEM private key in a ConfigMap, an annotation or a label
  (readable by anyone who may list the object; keys belong in Secrets).

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
    proxy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

PACK_NAME = "iks-alb-istio-mtls"

GATEWAY_POLICY = "istio-gateway-mutual-tls"
ALB_POLICY = "alb-reencrypts-to-gateway"
KEY_POLICY = "no-private-key-outside-secrets"

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
    ]
