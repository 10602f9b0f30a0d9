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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from .ibmcloud.cmdline import CLUSTER_NAME, NAMESPACE_NAME, SECRET_NAME

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

#: Default IngressClass per ALB flavour: the IKS community ingress-nginx ALBs serve
#: public-iks-k8s-nginx, IKS's Traefik ALBs (Traefik 3.x) public-/private-iks-traefik, and IBM's
#: retired ALB image, the only one that reads ingress.bluemix.net annotations, iks-nginx.
DEFAULT_INGRESS_CLASS: Final[dict[str, str]] = {
    "nginx": "public-iks-k8s-nginx",
    "ibm-legacy": "iks-nginx",
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
    "ingressClassName": KeySpec(None, "IngressClass of the ALB; unset: public-iks-k8s-nginx (nginx), public-iks-traefik (traefik) or iks-nginx (ibm-legacy)."),
    "clientCertSource": KeySpec("private-ca", "private-ca (a CA and client certificate made here) or alb (the ALB's own certificate)."),
    "trustedCaPem": KeySpec(None, "PEM bundle the ALB trusts for the gateway (alb mode: the gateway too); unset: ISRG Root X1 + X2."),
    "gatewayNamespace": KeySpec("istio-system", "namespace of the Istio ingress gateway workload."),
    "gatewayService": KeySpec("istio-ingressgateway", "the gateway's LoadBalancer Service."),
    "gatewaySelector": KeySpec({"istio": "ingressgateway"}, "labels selecting the gateway pods, a JSON object of strings."),
    "gatewayDomain": KeySpec(None, "existing nlb-dns subdomain of the gateway; set with gatewaySecret to skip registration."),
    "gatewaySecret": KeySpec(None, "certificate secret of gatewayDomain in gatewayNamespace."),
    "appNamespace": KeySpec("httptools", "namespace of the httpbin sample, created and deleted by the program: never a system namespace or gatewayNamespace."),
    "deployHttpbin": KeySpec(True, "deploy Istio's httpbin sample."),
    "routes": KeySpec(["/status"], "path prefixes routed from the ALB through the gateway to httpbin; with nginx only letters, digits, /, _ and - (ingress-nginx's strict path check)."),
    "istioApiVersion": KeySpec("networking.istio.io/v1", "apiVersion of the Istio Gateway and VirtualService."),
    "certWaitTimeoutSeconds": KeySpec(1800, "how long to wait for the nlb-dns certificate."),
    "clientCertValidityHours": KeySpec(2160, "validity of the ALB client certificate (private-ca)."),
    "clientCertEarlyRenewalHours": KeySpec(720, "renew the client certificate on the first `pulumi up` this close to expiry."),
}

# A DNS name: dot-separated labels of letters, digits and inner hyphens, at least two labels.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE: Final = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
# One rule with the nlb-dns Command's own argument checks (components/ibmcloud/cmdline.py), so a
# value the program accepts is one the stored command line accepts too.
_K8S_NAME_RE: Final = NAMESPACE_NAME  # an RFC 1123 label: namespaces, Services, IngressClasses
_SECRET_NAME_RE: Final = SECRET_NAME  # an RFC 1123 subdomain
_LABEL_KEY_RE: Final = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE_RE: Final = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_ROUTE_RE: Final = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
#: The API server's rules for Prefix and Exact Ingress paths (networking validation).
_API_INVALID_SEQUENCES: Final = ("//", "/./", "/../", "%2f", "%2F")
_API_INVALID_SUFFIXES: Final = ("/..", "/.")
#: ingress-nginx's strict-validate-path-type (on by default since controller v1.12): Prefix and
#: Exact paths may hold only letters, digits, '/', '_' and '-'.
_NGINX_PATH_RE: Final = re.compile(r"^/[A-Za-z0-9_/-]*$")
#: The flavours whose ALB is the community ingress-nginx controller (IBM's retired image is not).
NGINX_FLAVORS: Final = ("nginx",)
#: A cluster name or ID as IKS accepts them (letters, digits, '.', '_', '-'; starting with one
#: of the first two), which also keeps it from being read as a flag by the ibmcloud CLI.
_CLUSTER_RE: Final = CLUSTER_NAME
#: Namespaces the program must never own: it creates appNamespace and deletes it on destroy.
_SYSTEM_NAMESPACES: Final = ("default", "istio-system")
_SYSTEM_NAMESPACE_PREFIXES: Final = ("kube-", "ibm-", "calico-", "tigera-")
#: The longest names the program derives from configured ones (see specs).
_ALB_HOST_PREFIX: Final = "httpbin."
_CACERT_SUFFIX: Final = "-cacert"


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one stack (one stack per cluster)."""

    cluster: str
    cluster_type: ClusterType = "classic"
    kube_context: str | None = None
    alb_domain: str | None = None
    alb_secret: str | None = None
    alb_secret_namespace: str = "default"
    alb_flavor: AlbFlavor = "nginx"
    alb_tls_mode: AlbTlsMode = "mirror"
    ingress_class_name: str = "public-iks-k8s-nginx"
    client_cert_source: ClientCertSource = "private-ca"
    trusted_ca_pem: str | None = None
    gateway_namespace: str = "istio-system"
    gateway_service: str = "istio-ingressgateway"
    gateway_selector: Mapping[str, str] = field(default_factory=lambda: {"istio": "ingressgateway"})
    gateway_domain: str | None = None
    gateway_secret: str | None = None
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


def _text(key: str, raw: Any) -> str:
    """Any non-blank text (a PEM bundle spans lines and starts with dashes)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(key, "must be a non-empty string")
    return raw.strip()


def _string(key: str, raw: Any) -> str:
    """A one-line value, which may end up on a command line."""
    value = _text(key, raw)
    if value.startswith("-"):
        raise ConfigError(key, f"must not start with '-' (a command line would read it as a flag): {value!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(key, "holds a control character (a line break or tab pasted with it?)")
    return value


def _cluster(key: str, raw: Any) -> str:
    value = _string(key, raw)
    if not _CLUSTER_RE.fullmatch(value):
        raise ConfigError(
            key, f"is not an IKS cluster name or ID (letters, digits, '.', '_', '-'; at most 100): {value!r}"
        )
    return value


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


def _domain(key: str, raw: Any, *, prefix: str = "") -> str:
    """A DNS name that stays one (at most 253 characters) with ``prefix`` put in front of it."""
    value = _string(key, raw).lower().rstrip(".")
    if not _DOMAIN_RE.match(value):
        raise ConfigError(key, f"is not a valid DNS subdomain: {raw!r}")
    if len(prefix + value) > 253:
        derived = f", so {prefix}<{key}> would be {len(prefix + value)}" if prefix else ""
        raise ConfigError(key, f"is {len(value)} characters long{derived}: a DNS name has at most 253")
    return value


def alb_domain(key: str, raw: Any) -> str:
    """``albDomain`` (configured or discovered): the ALB host ``httpbin.<albDomain>`` must be a DNS name."""
    return _domain(key, raw, prefix=_ALB_HOST_PREFIX)


def _k8s_name(key: str, raw: Any) -> str:
    value = _string(key, raw)
    if not _K8S_NAME_RE.fullmatch(value):
        raise ConfigError(key, f"is not a valid Kubernetes name (lower-case letters, digits, '-'; at most 63): {value!r}")
    return value


def _secret_name(key: str, raw: Any, *, suffix: str = "") -> str:
    """A secret name that stays one (at most 253 characters) with ``suffix`` appended."""
    value = _string(key, raw)
    if not _SECRET_NAME_RE.fullmatch(value):
        raise ConfigError(key, f"is not a valid Kubernetes secret name: {value!r}")
    if len(value + suffix) > 253:
        raise ConfigError(
            key, f"is {len(value)} characters long, so <{key}>{suffix} would be {len(value + suffix)}: a secret name has at most 253"
        )
    return value


def secret_name(key: str, raw: Any) -> str:
    """A Kubernetes secret name (``albSecret``, configured or discovered)."""
    return _secret_name(key, raw)


def _label_key_ok(label: str) -> bool:
    """``[prefix/]name``: the prefix a DNS subdomain of at most 253, the name at most 63."""
    prefix, _, name = label.rpartition("/")
    return bool(_LABEL_KEY_RE.match(label)) and len(prefix) <= 253 and len(name) <= 63


def _selector(key: str, raw: Any) -> dict[str, str]:
    value = _decode(key, raw)
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, 'must be a non-empty map of label to string, e.g. {"istio": "ingressgateway"}')
    out: dict[str, str] = {}
    for label, val in value.items():
        if not isinstance(label, str) or not isinstance(val, str):
            raise ConfigError(key, f"must map strings to strings; {label!r}: {val!r} is not")
        if not _label_key_ok(label) or not _LABEL_VALUE_RE.match(val):
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
        if not isinstance(item, str) or not _ROUTE_RE.match(item):
            raise ConfigError(key, f"entry {item!r} is not an absolute path such as /status")
        bad = [seq for seq in _API_INVALID_SEQUENCES if seq in item]
        bad += [suffix for suffix in _API_INVALID_SUFFIXES if item.endswith(suffix) or item.endswith(suffix + "/")]
        if bad:
            raise ConfigError(key, f"entry {item!r} contains {bad[0]!r}, which the Kubernetes API server refuses in an Ingress path")
        route = normalize_route(item)
        if route in routes:
            raise ConfigError(key, f"entry {item!r} is listed twice")
        routes.append(route)
    return tuple(routes)


def _nginx_paths(flavor: str, routes: tuple[str, ...]) -> None:
    """ingress-nginx's strict path check, for the flavours it serves."""
    if flavor not in NGINX_FLAVORS:
        return
    for route in routes:
        if not _NGINX_PATH_RE.match(route):
            raise ConfigError(
                "routes",
                f"entry {route!r}: ingress-nginx (strict-validate-path-type, on by default) accepts only letters, digits, "
                f"'/', '_' and '-' in a Prefix path, so the {flavor} ALB would refuse the Ingress; use a path without "
                "other characters, or albFlavor=traefik",
            )


def _app_namespace(values: Mapping[str, Any]) -> None:
    """The program creates appNamespace and deletes it on destroy: never a namespace it must not own."""
    namespace = values["app_namespace"]
    if namespace == values["gateway_namespace"]:
        raise ConfigError(
            "appNamespace", f"is the gateway's namespace ({namespace}); the program creates appNamespace and deletes it on destroy"
        )
    if namespace in _SYSTEM_NAMESPACES or namespace.startswith(_SYSTEM_NAMESPACE_PREFIXES):
        raise ConfigError(
            "appNamespace", f"{namespace!r} is a system namespace; the program creates appNamespace and deletes it on destroy"
        )


def _pem_bundle(key: str, raw: Any) -> str:
    value = _text(key, raw)
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ConfigError(key, "holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)")
    return value.strip() + "\n"


_PARSERS: Final[dict[str, Callable[[str, Any], Any]]] = {
    "cluster": _cluster,
    "clusterType": lambda k, v: _choice(k, v, CLUSTER_TYPES),
    "kubeContext": _string,
    "albDomain": alb_domain,
    "albSecret": secret_name,
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
    "gatewaySecret": lambda k, v: _secret_name(k, v, suffix=_CACERT_SUFFIX),
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
    for key, value in raw.items():
        if isinstance(value, str) and value and not value.strip():
            raise ConfigError(key, "is only whitespace: give it a value, or remove the key to use its default")
    if raw.get("cluster") in (None, ""):
        raise ConfigError("cluster", "is required: the IKS cluster name or ID (pulumi config set cluster <name>)")

    values: dict[str, Any] = {}
    for key, spec in KEYS.items():
        # Pulumi.yaml declares optional keys with default "" (a typed key without a
        # default would be required by the CLI): "" means unset.
        unset = raw.get(key) is None or (spec.default is None and raw[key] == "")
        if not unset:
            values[_FIELD_OF[key]] = _PARSERS[key](key, raw[key])
        elif spec.default is not None:
            default = spec.default
            values[_FIELD_OF[key]] = tuple(default) if isinstance(default, list) else default

    flavor = cast(str, values["alb_flavor"])
    values.setdefault("ingress_class_name", DEFAULT_INGRESS_CLASS[flavor])
    _nginx_paths(flavor, values["routes"])
    _app_namespace(values)

    if ("gateway_domain" in values) != ("gateway_secret" in values):
        missing = "gatewaySecret" if "gateway_domain" in values else "gatewayDomain"
        raise ConfigError(missing, "must be set together with gatewayDomain/gatewaySecret (both: use that existing nlb-dns subdomain)")
    if values["client_cert_early_renewal_hours"] >= values["client_cert_validity_hours"]:
        raise ConfigError("clientCertEarlyRenewalHours", "must be smaller than clientCertValidityHours")
    return Settings(**values)
