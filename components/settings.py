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
GatewayCertSource = Literal["nlb-dns", "private-ca"]
Platform = Literal["iks", "generic"]

CLUSTER_TYPES: Final = ("classic", "vpc")
ALB_FLAVORS: Final = ("nginx", "ibm-legacy", "traefik")
CLIENT_CERT_SOURCES: Final = ("private-ca", "alb")
ALB_TLS_MODES: Final = ("mirror", "default-certificate")
GATEWAY_CERT_SOURCES: Final = ("nlb-dns", "private-ca")
PLATFORMS: Final = ("iks", "generic")
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
        self.problem = problem
        super().__init__(f"config {PROJECT}:{key}: {problem}")


@dataclass(frozen=True)
class KeySpec:
    """One config key as documented in Pulumi.yaml and the README."""

    default: Any
    description: str


#: Every config key, its default (``None``: unset / computed) and meaning.  ``Pulumi.yaml``
#: and the README are checked against this table by the tests.
KEYS: Final[dict[str, KeySpec]] = {
    "platform": KeySpec("iks", "iks (IBM Cloud Kubernetes Service) or generic (any Kubernetes cluster: no ibmcloud call, no IKS default; see docs/platforms.md)."),
    "cluster": KeySpec(None, "IKS cluster name or ID (required on iks; on generic only the certificates' organization)."),
    "clusterType": KeySpec("classic", "classic or vpc (VPC load balancers have a hostname, not an IP)."),
    "kubeContext": KeySpec(None, "kubeconfig context to deploy to; unset: the current context."),
    "albDomain": KeySpec(None, "ALB Ingress subdomain; unset: discovered with `ibmcloud ks cluster get`."),
    "albSecret": KeySpec(None, "the ALB's TLS secret name; unset: discovered likewise."),
    "albSecretNamespace": KeySpec(None, "namespace of the ALB's TLS secret; unset: default on iks, gatewayNamespace on generic."),
    "albFlavor": KeySpec("nginx", "nginx (IKS community ingress-nginx ALB), traefik (IKS Traefik ALB, a ServersTransport; ingressClassName then defaults to public-iks-traefik) or ibm-legacy (ingress.bluemix.net/ssl-services)."),
    "albTlsMode": KeySpec(None, "how the Ingress in gatewayNamespace gets the ALB certificate when albSecretNamespace is another namespace: mirror (ibmcloud ks ingress secret create --cert-crn; iks only) or default-certificate (the ALB's defaultCertificate); unset: mirror on iks, default-certificate on generic."),
    "ingressClassName": KeySpec(None, "IngressClass of the ALB; unset: public-iks-k8s-nginx (nginx), public-iks-traefik (traefik) or iks-nginx (ibm-legacy)."),
    "clientCertSource": KeySpec("private-ca", "private-ca (a CA and client certificate made here) or alb (the ALB's own certificate)."),
    "trustedCaPem": KeySpec(None, "PEM bundle the ALB trusts for the gateway (alb mode: the gateway too); unset: ISRG Root X1 + X2."),
    "gatewayNamespace": KeySpec("istio-system", "namespace of the Istio ingress gateway workload."),
    "gatewayService": KeySpec("istio-ingressgateway", "the gateway's LoadBalancer Service."),
    "gatewaySelector": KeySpec({"istio": "ingressgateway"}, "labels selecting the gateway pods, a JSON object of strings."),
    "gatewayCertSource": KeySpec(None, "nlb-dns (an IKS subdomain and certificate for the gateway) or private-ca (this program's CA issues it for the gateway Service's cluster DNS name); unset: nlb-dns on iks, private-ca on generic."),
    "gatewayDomain": KeySpec(None, "existing nlb-dns subdomain of the gateway; set with gatewaySecret to skip registration."),
    "gatewaySecret": KeySpec(None, "certificate secret of gatewayDomain in gatewayNamespace."),
    "appNamespace": KeySpec("httptools", "namespace of the httpbin sample, created and deleted by the program: never a system namespace or gatewayNamespace."),
    "deployHttpbin": KeySpec(None, "deploy Istio's httpbin sample (true or false); unset: true without apps, false with apps."),
    "routes": KeySpec(None, "path prefixes routed from the ALB through the gateway to httpbin, a list; with nginx only letters, digits, /, _ and - (ingress-nginx's strict path check); unset: [\"/status\"]; refused with apps."),
    "apps": KeySpec(None, "your services behind the hop: a list of {name, host, paths, service, namespace, port, createNamespace, tlsSecret} (JSON or YAML); unset: the httpbin sample (see docs/apps.md)."),
    "istioApiVersion": KeySpec("networking.istio.io/v1", "apiVersion of the Istio Gateway and VirtualService."),
    "certWaitTimeoutSeconds": KeySpec(1800, "how long to wait for the nlb-dns certificate."),
    "clientCertValidityHours": KeySpec(2160, "validity of the ALB client certificate (private-ca)."),
    "clientCertEarlyRenewalHours": KeySpec(720, "renew the client certificate on the first `pulumi up` this close to expiry."),
    "gatewayCertValidityHours": KeySpec(2160, "validity of the gateway's certificate (gatewayCertSource=private-ca)."),
    "gatewayCertEarlyRenewalHours": KeySpec(720, "renew the gateway's certificate on the first `pulumi up` this close to expiry (private-ca)."),
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
class App:
    """One entry of ``apps``: a service of the user's behind the mutual-TLS hop."""

    name: str
    """Names its VirtualService (in ``gatewayNamespace``) and its resources."""
    host: str
    """A single label (served as ``<label>.<albDomain>`` with the ALB's certificate) or a full
    custom domain (served with ``tls_secret``)."""
    paths: tuple[str, ...]
    service: str
    namespace: str
    port: int
    create_namespace: bool
    tls_secret: str | None = None

    @property
    def custom_domain(self) -> bool:
        """A full domain of the user's, with its own certificate, not a label under albDomain."""
        return "." in self.host

    def fqdn(self, alb_domain: str) -> str:
        """The host the ALB serves this app on."""
        return self.host if self.custom_domain else f"{self.host}.{alb_domain}"

    @property
    def destination(self) -> str:
        """The Service's cluster DNS name, as the VirtualService routes to it."""
        return f"{self.service}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one stack (one stack per cluster)."""

    cluster: str
    platform: Platform = "iks"
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
    gateway_cert_source: GatewayCertSource = "nlb-dns"
    gateway_domain: str | None = None
    gateway_secret: str | None = None
    app_namespace: str = "httptools"
    deploy_httpbin: bool = True
    routes: tuple[str, ...] = ("/status",)
    apps: tuple[App, ...] | None = None
    istio_api_version: str = "networking.istio.io/v1"
    cert_wait_timeout_seconds: int = 1800
    client_cert_validity_hours: int = 2160
    client_cert_early_renewal_hours: int = 720
    gateway_cert_validity_hours: int = 2160
    gateway_cert_early_renewal_hours: int = 720

    @property
    def registers_dns(self) -> bool:
        """Whether the program registers an nlb-dns subdomain (no existing one configured)."""
        return self.gateway_cert_source == "nlb-dns" and self.gateway_domain is None


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


def _path(key: str, item: Any, say: str) -> str:
    """One Ingress path, as the API server would take it; ``say`` starts each message."""
    if not isinstance(item, str) or not _ROUTE_RE.match(item):
        raise ConfigError(key, f"{say}{item!r} is not an absolute path such as /status")
    bad = [seq for seq in _API_INVALID_SEQUENCES if seq in item]
    bad += [suffix for suffix in _API_INVALID_SUFFIXES if item.endswith(suffix) or item.endswith(suffix + "/")]
    if bad:
        raise ConfigError(key, f"{say}{item!r} contains {bad[0]!r}, which the Kubernetes API server refuses in an Ingress path")
    return normalize_route(item)


def _path_list(key: str, value: Any, say: str, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(key, f"must be a list of paths, e.g. {example}")
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, f"must be a non-empty list of absolute paths, e.g. {example}")
    routes: list[str] = []
    for item in value:
        route = _path(key, item, say)
        if route in routes:
            raise ConfigError(key, f"{say}{item!r} is listed twice")
        routes.append(route)
    return tuple(routes)


def _routes(key: str, raw: Any) -> tuple[str, ...]:
    return _path_list(key, _decode(key, raw), "entry ", '["/status"]')


def _nginx_path(flavor: str, key: str, route: str, say: str) -> None:
    """ingress-nginx's strict path check, for the flavours it serves."""
    if flavor in NGINX_FLAVORS and not _NGINX_PATH_RE.match(route):
        raise ConfigError(
            key,
            f"{say}{route!r}: ingress-nginx (strict-validate-path-type, on by default) accepts only letters, digits, "
            f"'/', '_' and '-' in a Prefix path, so the {flavor} ALB would refuse the Ingress; use a path without "
            "other characters, or albFlavor=traefik",
        )


def _nginx_paths(flavor: str, routes: tuple[str, ...]) -> None:
    for route in routes:
        _nginx_path(flavor, "routes", route, "entry ")


# --- apps: the user's own services -----------------------------------------------------------------

#: The fields of an ``apps`` entry, and whether each is required.
APP_FIELDS: Final[dict[str, bool]] = {
    "name": True,
    "host": True,
    "paths": False,
    "service": True,
    "namespace": True,
    "port": True,
    "createNamespace": False,
    "tlsSecret": False,
}
_APP_EXAMPLE: Final = '[{"name": "shop", "host": "shop", "paths": ["/"], "service": "web", "namespace": "shop", "port": 8080}]'


def _entry_label(index: int, entry: Mapping[str, Any]) -> str:
    name = entry.get("name")
    return f"entry {index} ({name!r})" if isinstance(name, str) and name else f"entry {index}"


def _app_field(say: str, check: Callable[[str, Any], Any], value: Any) -> Any:
    """A field checked by a key's own rule, its message re-worded to name ``apps`` and the entry."""
    try:
        return check("apps", value)
    except ConfigError as exc:
        raise ConfigError("apps", f"{say} {exc.problem}") from None


def _port(key: str, raw: Any) -> int:
    value = raw.strip() if isinstance(raw, str) else raw
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(key, f"must be a port number from 1 to 65535; got {raw!r}")
    return value


def _app(index: int, entry: Any) -> App:
    if not isinstance(entry, Mapping):
        raise ConfigError("apps", f"entry {index} must be an object such as {_APP_EXAMPLE[1:-1]}; got {entry!r}")
    say = _entry_label(index, entry)
    for field_name in entry:
        if field_name not in APP_FIELDS:
            close = difflib.get_close_matches(str(field_name), list(APP_FIELDS), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; the fields are {', '.join(APP_FIELDS)}"
            raise ConfigError("apps", f"{say} has an unknown field {field_name!r}{hint}")
    for field_name, required in APP_FIELDS.items():
        if required and entry.get(field_name) in (None, ""):
            required_fields = ", ".join(f for f, needed in APP_FIELDS.items() if needed)
            raise ConfigError("apps", f"{say} needs {field_name!r} (every entry has {required_fields})")
    name = _app_field(f"{say} name", _k8s_name, entry["name"])
    host_raw = _app_field(f"{say} host", _string, entry["host"]).lower()  # DNS names know no case
    if "." in host_raw:
        host = _app_field(f"{say} host", _domain, host_raw)
    else:
        host = _app_field(f"{say} host", _k8s_name, host_raw)
    tls_secret = None
    if entry.get("tlsSecret") not in (None, ""):
        tls_secret = _app_field(f"{say} tlsSecret", secret_name, entry["tlsSecret"])
    if "." in host and tls_secret is None:
        raise ConfigError(
            "apps",
            f"{say} host {host} is a custom domain: it needs 'tlsSecret', the name of a TLS secret for it that you keep "
            "in gatewayNamespace (a single label is served as <label>.<albDomain> with the ALB's certificate)",
        )
    if "." not in host and tls_secret is not None:
        raise ConfigError(
            "apps", f"{say} host {host!r} is a label under albDomain, served with the ALB's certificate: 'tlsSecret' is only for a custom domain"
        )
    paths: tuple[str, ...] = ("/",)
    if entry.get("paths") is not None:
        paths = _path_list("apps", entry["paths"], f"{say} path ", '["/"]')
    return App(
        name=name,
        host=host,
        paths=paths,
        service=_app_field(f"{say} service", _k8s_name, entry["service"]),
        namespace=_app_field(f"{say} namespace", _k8s_name, entry["namespace"]),
        port=_app_field(f"{say} port", _port, entry["port"]),
        create_namespace=_app_field(f"{say} createNamespace", _bool, entry.get("createNamespace", False)),
        tls_secret=tls_secret,
    )


def _apps(key: str, raw: Any) -> tuple[App, ...]:
    value = _decode(key, raw)
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, f"must be a non-empty list of services, e.g. {_APP_EXAMPLE} (remove the key for the httpbin sample)")
    apps = tuple(_app(index, entry) for index, entry in enumerate(value, start=1))
    seen: dict[str, int] = {}
    for index, app in enumerate(apps, start=1):
        if app.name in seen:
            raise ConfigError(key, f"entry {index} ({app.name!r}) has the same name as entry {seen[app.name]}: names must be unique")
        seen[app.name] = index
    return apps


def _segment_prefix(outer: str, inner: str) -> bool:
    """Whether Prefix path ``outer`` also matches ``inner`` (whole segments, as Kubernetes does)."""
    return outer == "/" or inner == outer or inner.startswith(outer + "/")


def check_app_hosts(apps: tuple[App, ...], alb_domain: str) -> None:
    """Rules that need the ALB's subdomain (configured or discovered): the served names are DNS
    names, and no host and path is claimed twice.

    Entries of one host with nested paths (``/`` and ``/api``) are refused too: Istio merges the
    VirtualServices of one host in creation order, so the shorter path could take the longer
    one's requests; one entry may nest its own paths (same destination).
    """
    claimed: list[tuple[str, str, int, App]] = []
    certificate: dict[str, tuple[int, App]] = {}
    for index, app in enumerate(apps, start=1):
        host = app.fqdn(alb_domain)
        say = f"entry {index} ({app.name!r})"
        if len(host) > 253:
            raise ConfigError("apps", f"{say} host {host} is {len(host)} characters long: a DNS name has at most 253")
        first_index, first = certificate.setdefault(host, (index, app))
        if first.tls_secret != app.tls_secret:
            def served(entry: App) -> str:
                return f"tlsSecret {entry.tls_secret}" if entry.tls_secret else "the ALB's certificate"

            raise ConfigError(
                "apps",
                f"{say} serves host {host} with {served(app)}, entry {first_index} ({first.name!r}) with {served(first)}: "
                "a host has one certificate, so give its entries the same host and tlsSecret",
            )
        for path in app.paths:
            for other_host, other_path, other_index, other in claimed:
                if other_host != host or other_index == index:
                    continue
                if other_path == path:
                    raise ConfigError(
                        "apps", f"{say} claims host {host} path {path}, which entry {other_index} ({other.name!r}) claims already"
                    )
                if _segment_prefix(other_path, path) or _segment_prefix(path, other_path):
                    raise ConfigError(
                        "apps",
                        f"{say} path {path} and entry {other_index} ({other.name!r}) path {other_path} overlap on host {host}: "
                        "Istio merges one host's VirtualServices in creation order, so the shorter path could take the "
                        "longer one's requests; route both paths in one entry, or use paths that do not nest",
                    )
        claimed.extend((host, path, index, app) for path in app.paths)


def _app_rules(values: Mapping[str, Any], explicit: set[str]) -> None:
    """``apps`` with the keys around it: routes refused, namespaces it may own, the flavour's paths."""
    apps: tuple[App, ...] = values["apps"]
    if "routes" in explicit:
        raise ConfigError("routes", "is for the httpbin sample; with apps set each entry has its own paths (remove routes)")
    created: dict[str, tuple[int, bool]] = {}
    for index, app in enumerate(apps, start=1):
        say = f"entry {index} ({app.name!r})"
        for path in app.paths:
            _nginx_path(values["alb_flavor"], "apps", path, f"{say} path ")
        if app.namespace in created and created[app.namespace][1] != app.create_namespace:
            first = created[app.namespace][0]
            raise ConfigError(
                "apps",
                f"{say} and entry {first} disagree on createNamespace for namespace {app.namespace}: say the same in both "
                "(true: the program creates and deletes it; false: it must exist)",
            )
        created.setdefault(app.namespace, (index, app.create_namespace))
        if not app.create_namespace:
            continue
        if app.namespace == values["gateway_namespace"]:
            raise ConfigError(
                "apps", f"{say} createNamespace: the gateway's namespace ({app.namespace}) is never created or deleted by the program"
            )
        if app.namespace in _SYSTEM_NAMESPACES or app.namespace.startswith(_SYSTEM_NAMESPACE_PREFIXES):
            raise ConfigError(
                "apps", f"{say} createNamespace: {app.namespace!r} is a system namespace, which the program must not create or delete"
            )
        if values["deploy_httpbin"] and app.namespace == values["app_namespace"]:
            raise ConfigError(
                "apps",
                f"{say} createNamespace: {app.namespace} is appNamespace, which the program creates for httpbin "
                "(deployHttpbin); set createNamespace false there",
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
    "platform": lambda k, v: _choice(k, v, PLATFORMS),
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
    "gatewayCertSource": lambda k, v: _choice(k, v, GATEWAY_CERT_SOURCES),
    "gatewayDomain": _domain,
    "gatewaySecret": lambda k, v: _secret_name(k, v, suffix=_CACERT_SUFFIX),
    "appNamespace": _k8s_name,
    "deployHttpbin": _bool,
    "routes": _routes,
    "apps": _apps,
    "istioApiVersion": lambda k, v: _choice(k, v, ISTIO_API_VERSIONS),
    "certWaitTimeoutSeconds": _positive_int,
    "clientCertValidityHours": _positive_int,
    "clientCertEarlyRenewalHours": _positive_int,
    "gatewayCertValidityHours": _positive_int,
    "gatewayCertEarlyRenewalHours": _positive_int,
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
    values: dict[str, Any] = {}
    explicit: set[str] = set()
    for key, spec in KEYS.items():
        # Pulumi.yaml declares optional keys with default "" (a typed key without a
        # default would be required by the CLI): "" means unset.
        unset = raw.get(key) is None or (spec.default is None and raw[key] == "")
        if not unset:
            values[_FIELD_OF[key]] = _PARSERS[key](key, raw[key])
            explicit.add(key)
        elif spec.default is not None:
            default = spec.default
            values[_FIELD_OF[key]] = tuple(default) if isinstance(default, list) else default

    _platform_rules(values, explicit)
    values.setdefault("routes", ("/status",))
    flavor = cast(str, values["alb_flavor"])
    values.setdefault("ingress_class_name", DEFAULT_INGRESS_CLASS[flavor])
    values.setdefault("deploy_httpbin", "apps" not in values)
    _nginx_paths(flavor, values["routes"])
    _app_namespace(values)
    if "apps" in values:
        _app_rules(values, explicit)

    if ("gateway_domain" in values) != ("gateway_secret" in values):
        missing = "gatewaySecret" if "gateway_domain" in values else "gatewayDomain"
        raise ConfigError(missing, "must be set together with gatewayDomain/gatewaySecret (both: use that existing nlb-dns subdomain)")
    if values["client_cert_early_renewal_hours"] >= values["client_cert_validity_hours"]:
        raise ConfigError("clientCertEarlyRenewalHours", "must be smaller than clientCertValidityHours")
    if values["gateway_cert_early_renewal_hours"] >= values["gateway_cert_validity_hours"]:
        raise ConfigError("gatewayCertEarlyRenewalHours", "must be smaller than gatewayCertValidityHours")
    return Settings(**values)


def _platform_rules(values: dict[str, Any], explicit: set[str]) -> None:
    """Per-platform defaults and refusals (docs/platforms.md lists them), and the gateway
    certificate's source with the keys that only one source uses."""
    generic = values["platform"] == "generic"
    if not generic and "cluster" not in values:
        raise ConfigError("cluster", "is required: the IKS cluster name or ID (pulumi config set cluster <name>)")
    source = values.setdefault("gateway_cert_source", "private-ca" if generic else "nlb-dns")
    if generic:
        values.setdefault("cluster", "generic")
        for key in ("albDomain", "albSecret"):
            if _FIELD_OF[key] not in values:
                raise ConfigError(key, "is required on platform generic: there is no IBM Cloud to discover it from")
        if "ingressClassName" not in explicit:
            raise ConfigError("ingressClassName", "is required on platform generic: name your ingress controller's IngressClass")
        if values["alb_flavor"] == "ibm-legacy":
            raise ConfigError("albFlavor", "ibm-legacy is IBM's retired IKS ALB: use nginx or traefik on platform generic")
        if source == "nlb-dns":
            raise ConfigError(
                "gatewayCertSource", "nlb-dns registers an IKS subdomain with ibmcloud: use private-ca on platform generic"
            )
        if values.get("alb_tls_mode") == "mirror":
            raise ConfigError(
                "albTlsMode",
                "mirror copies the ALB certificate with IBM's certificate manager: on platform generic keep the TLS secret "
                "(albSecret) in gatewayNamespace, or use default-certificate",
            )
    values.setdefault("alb_secret_namespace", values["gateway_namespace"] if generic else "default")
    values.setdefault("alb_tls_mode", "default-certificate" if generic else "mirror")
    if source == "private-ca":
        for key in ("gatewayDomain", "gatewaySecret"):
            if key in explicit:
                raise ConfigError(key, "names the nlb-dns way; with gatewayCertSource=private-ca the program issues the gateway's certificate")
        if values["client_cert_source"] != "private-ca":
            raise ConfigError(
                "gatewayCertSource", "private-ca needs the program's CA, which exists with clientCertSource=private-ca only"
            )
        if "trustedCaPem" in explicit:
            raise ConfigError(
                "trustedCaPem", "is not used with gatewayCertSource=private-ca: the ALB trusts the program's CA for the gateway"
            )
