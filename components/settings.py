"""Typed, validated stack configuration: the one place that knows every config key.

Pure code (no Pulumi import): the program, the offline renderer and the tests all read
config through :func:`parse_settings`, so the defaults below are applied the same way with
or without the Pulumi CLI (the CLI fills in ``Pulumi.yaml`` defaults, mocks do not).
Every error names the key at fault and is raised before any resource is registered.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Final, Literal, Optional, cast

PROJECT: Final = "iks-alb-istio-mtls"

ClusterType = Literal["classic", "vpc"]
AlbFlavor = Literal["nginx", "ibm-legacy", "traefik"]
AlbTlsMode = Literal["mirror", "default-certificate"]
ClientCertSource = Literal["private-ca", "alb"]

CLUSTER_TYPES: Final = ("classic", "vpc")
ALB_FLAVORS: Final = ("nginx", "ibm-legacy", "traefik")
CLIENT_CERT_SOURCES: Final = ("private-ca", "alb")
ALB_TLS_MODES: Final = ("mirror", "default-certificate")
ISTIO_API_VERSIONS: Final = ("networking.istio.io/v1", "networking.istio.io/v1beta1")

#: Default IngressClass per ALB flavour: the IKS community ingress-nginx ALB serves nginx and
#: ibm-legacy; IKS's Traefik ALBs (Traefik 3.x) have their own classes (public-/private-iks-traefik).
DEFAULT_INGRESS_CLASS: Final[dict[str, str]] = {
    "nginx": "public-iks-k8s-nginx",
    "ibm-legacy": "public-iks-k8s-nginx",
    "traefik": "public-iks-traefik",
}


class ConfigError(ValueError):
    """A stack configuration value is missing or wrong; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"config {PROJECT}:{key}: {problem}")


@dataclass(frozen=True)
class KeySpec:
    """One config key as documented in Pulumi.yaml and the README."""

    default: Any
    description: str


#: Every config key, its default (``None``: unset / computed) and meaning.  ``Pulumi.yaml``
#: and the README are checked against this table by the tests.
KEYS: Final[dict[str, KeySpec]] = {
    "cluster": KeySpec(None, "IKS cluster name or ID (required)."),
    "clusterType": KeySpec("classic", "classic or vpc (VPC load balancers have a hostname, not an IP)."),
    "kubeContext": KeySpec(None, "kubeconfig context to deploy to; unset: the current context."),
    "albDomain": KeySpec(None, "ALB Ingress subdomain; unset: discovered with `ibmcloud ks cluster get`."),
    "albSecret": KeySpec(None, "the ALB's TLS secret name; unset: discovered likewise."),
    "albSecretNamespace": KeySpec("default", "namespace of the ALB's TLS secret."),
    "albFlavor": KeySpec("nginx", "nginx (IKS community ingress-nginx ALB), traefik (IKS Traefik ALB, a ServersTransport; ingressClassName then defaults to public-iks-traefik) or ibm-legacy (ingress.bluemix.net/ssl-services)."),
    "albTlsMode": KeySpec("mirror", "how the Ingress in gatewayNamespace gets the ALB certificate: mirror (ibmcloud ks ingress secret create --cert-crn) or default-certificate (the ALB's defaultCertificate)."),
    "ingressClassName": KeySpec(None, "IngressClass of the ALB; unset: public-iks-k8s-nginx (nginx, ibm-legacy) or public-iks-traefik (traefik)."),
    "clientCertSource": KeySpec("private-ca", "private-ca (a CA and client certificate made here) or alb (the ALB's own certificate)."),
    "trustedCaPem": KeySpec(None, "PEM bundle the ALB trusts for the gateway (alb mode: the gateway too); unset: ISRG Root X1 + X2."),
    "gatewayNamespace": KeySpec("istio-system", "namespace of the Istio ingress gateway workload."),
    "gatewayService": KeySpec("istio-ingressgateway", "the gateway's LoadBalancer Service."),
    "gatewaySelector": KeySpec({"istio": "ingressgateway"}, "labels selecting the gateway pods, a JSON object of strings."),
    "gatewayDomain": KeySpec(None, "existing nlb-dns subdomain of the gateway; set with gatewaySecret to skip registration."),
    "gatewaySecret": KeySpec(None, "certificate secret of gatewayDomain in gatewayNamespace."),
    "appNamespace": KeySpec("httptools", "namespace of the httpbin sample."),
    "deployHttpbin": KeySpec(True, "deploy Istio's httpbin sample."),
    "routes": KeySpec(["/status"], "path prefixes routed from the ALB through the gateway to httpbin."),
    "istioApiVersion": KeySpec("networking.istio.io/v1", "apiVersion of the Istio Gateway and VirtualService."),
    "certWaitTimeoutSeconds": KeySpec(1800, "how long to wait for the nlb-dns certificate."),
    "clientCertValidityHours": KeySpec(2160, "validity of the ALB client certificate (private-ca)."),
    "clientCertEarlyRenewalHours": KeySpec(720, "renew the client certificate on the first `pulumi up` this close to expiry."),
}

# A DNS name: dot-separated labels of letters, digits and inner hyphens, at least two labels.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE: Final = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
_K8S_NAME_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SECRET_NAME_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_KEY_RE: Final = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE_RE: Final = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_ROUTE_RE: Final = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one stack (one stack per cluster)."""

    cluster: str
    cluster_type: ClusterType = "classic"
    kube_context: Optional[str] = None
    alb_domain: Optional[str] = None
    alb_secret: Optional[str] = None
    alb_secret_namespace: str = "default"
    alb_flavor: AlbFlavor = "nginx"
    alb_tls_mode: AlbTlsMode = "mirror"
    ingress_class_name: str = "public-iks-k8s-nginx"
    client_cert_source: ClientCertSource = "private-ca"
    trusted_ca_pem: Optional[str] = None
    gateway_namespace: str = "istio-system"
    gateway_service: str = "istio-ingressgateway"
    gateway_selector: Mapping[str, str] = field(default_factory=lambda: {"istio": "ingressgateway"})
    gateway_domain: Optional[str] = None
    gateway_secret: Optional[str] = None
    app_namespace: str = "httptools"
    deploy_httpbin: bool = True
    routes: tuple[str, ...] = ("/status",)
    istio_api_version: str = "networking.istio.io/v1"
    cert_wait_timeout_seconds: int = 1800
    client_cert_validity_hours: int = 2160
    client_cert_early_renewal_hours: int = 720

    @property
    def registers_dns(self) -> bool:
        """Whether the program registers an nlb-dns subdomain (no existing one configured)."""
        return self.gateway_domain is None


def _decode(key: str, raw: Any) -> Any:
    """Config from the CLI arrives as strings (objects and lists JSON-encoded); YAML gives natives."""
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(key, f"is not valid JSON ({exc.msg} at position {exc.pos})") from None
    return raw


def _string(key: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(key, "must be a non-empty string")
    return raw.strip()


def _choice(key: str, raw: Any, choices: tuple[str, ...]) -> str:
    value = _string(key, raw)
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ConfigError(key, f"must be true or false; got {raw!r}")


def _positive_int(key: str, raw: Any) -> int:
    value: Any = raw
    if isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(key, f"must be a positive whole number; got {raw!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, f"must be a positive whole number; got {raw!r}")
    return value


def _domain(key: str, raw: Any) -> str:
    value = _string(key, raw).lower().rstrip(".")
    if len(value) > 253 or not _DOMAIN_RE.match(value):
        raise ConfigError(key, f"is not a valid DNS subdomain: {raw!r}")
    return value


def _k8s_name(key: str, raw: Any) -> str:
    value = _string(key, raw)
    if not _K8S_NAME_RE.match(value):
        raise ConfigError(key, f"is not a valid Kubernetes name (lower-case letters, digits, '-'; at most 63): {value!r}")
    return value


def _secret_name(key: str, raw: Any) -> str:
    value = _string(key, raw)
    if not _SECRET_NAME_RE.match(value):
        raise ConfigError(key, f"is not a valid Kubernetes secret name: {value!r}")
    return value


def _selector(key: str, raw: Any) -> dict[str, str]:
    value = _decode(key, raw)
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, 'must be a non-empty map of label to string, e.g. {"istio": "ingressgateway"}')
    out: dict[str, str] = {}
    for label, val in value.items():
        if not isinstance(label, str) or not isinstance(val, str):
            raise ConfigError(key, f"must map strings to strings; {label!r}: {val!r} is not")
        if not _LABEL_KEY_RE.match(label) or not _LABEL_VALUE_RE.match(val):
            raise ConfigError(key, f"{label!r}: {val!r} is not a valid Kubernetes label")
        out[label] = val
    return out


def normalize_route(route: str) -> str:
    """``/status/`` and ``/status`` mean the same to a Kubernetes ``Prefix`` path: keep one form."""
    return route.rstrip("/") or "/"


def _routes(key: str, raw: Any) -> tuple[str, ...]:
    value = _decode(key, raw)
    if isinstance(value, str):
        raise ConfigError(key, 'must be a list of paths, e.g. ["/status"]')
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, 'must be a non-empty list of absolute paths, e.g. ["/status"]')
    routes: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _ROUTE_RE.match(item) or "//" in item:
            raise ConfigError(key, f"entry {item!r} is not an absolute path such as /status")
        route = normalize_route(item)
        if route in routes:
            raise ConfigError(key, f"entry {item!r} is listed twice")
        routes.append(route)
    return tuple(routes)


def _pem_bundle(key: str, raw: Any) -> str:
    value = _string(key, raw)
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ConfigError(key, "holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)")
    return value.strip() + "\n"


_PARSERS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "cluster": _string,
    "clusterType": lambda k, v: _choice(k, v, CLUSTER_TYPES),
    "kubeContext": _string,
    "albDomain": _domain,
    "albSecret": _secret_name,
    "albSecretNamespace": _k8s_name,
    "albFlavor": lambda k, v: _choice(k, v, ALB_FLAVORS),
    "albTlsMode": lambda k, v: _choice(k, v, ALB_TLS_MODES),
    "ingressClassName": _k8s_name,
    "clientCertSource": lambda k, v: _choice(k, v, CLIENT_CERT_SOURCES),
    "trustedCaPem": _pem_bundle,
    "gatewayNamespace": _k8s_name,
    "gatewayService": _k8s_name,
    "gatewaySelector": _selector,
    "gatewayDomain": _domain,
    "gatewaySecret": _secret_name,
    "appNamespace": _k8s_name,
    "deployHttpbin": _bool,
    "routes": _routes,
    "istioApiVersion": lambda k, v: _choice(k, v, ISTIO_API_VERSIONS),
    "certWaitTimeoutSeconds": _positive_int,
    "clientCertValidityHours": _positive_int,
    "clientCertEarlyRenewalHours": _positive_int,
}

_FIELD_OF: Final[dict[str, str]] = {key: re.sub(r"([A-Z])", r"_\1", key).lower() for key in KEYS}


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate raw config (keys without the project prefix) and apply the defaults.

    Unknown keys are refused with a suggestion, since a misspelt key would otherwise be
    silently ignored and its default used.
    """
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(key, f"is not a configuration key of this program{hint}")
    if raw.get("cluster") in (None, ""):
        raise ConfigError("cluster", "is required: the IKS cluster name or ID (pulumi config set cluster <name>)")

    values: dict[str, Any] = {}
    for key, spec in KEYS.items():
        # Pulumi.yaml declares optional keys with default "" (a typed key without a
        # default would be required by the CLI): "" means unset.
        unset = raw.get(key) is None or (spec.default is None and isinstance(raw[key], str) and not raw[key].strip())
        if not unset:
            values[_FIELD_OF[key]] = _PARSERS[key](key, raw[key])
        elif spec.default is not None:
            default = spec.default
            values[_FIELD_OF[key]] = tuple(default) if isinstance(default, list) else default

    flavor = cast(str, values["alb_flavor"])
    values.setdefault("ingress_class_name", DEFAULT_INGRESS_CLASS[flavor])

    if ("gateway_domain" in values) != ("gateway_secret" in values):
        missing = "gatewaySecret" if "gateway_domain" in values else "gatewayDomain"
        raise ConfigError(missing, "must be set together with gatewayDomain/gatewaySecret (both: use that existing nlb-dns subdomain)")
    if values["client_cert_early_renewal_hours"] >= values["client_cert_validity_hours"]:
        raise ConfigError("clientCertEarlyRenewalHours", "must be smaller than clientCertValidityHours")
    return Settings(**values)
