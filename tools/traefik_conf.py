"""What IKS's Traefik ALB would run, derived from the objects the program emits (pure code).

With ``albFlavor=traefik`` the program asks for an Ingress, a Service of ours in front of the
gateway pods (carrying the ``service.*`` annotations), a ``ServersTransport`` and the
``alb-certs`` secret.  Traefik's two Kubernetes providers turn them into its dynamic
configuration: the Ingress provider makes the routers and the service (reading the Service's
annotations), the CRD provider makes the servers transport (reading the secrets).  This module
does the same translation into Traefik's *file provider* format, so a loopback Traefik runs
exactly what the program produced.  Names follow the providers (``<ns>-<ingress>-<host><path>``
for routers, ``<ns>-<service>-<port>`` for services, ``<ns>-<name>`` for transports, each with
non-alphanumerics folded to ``-``); values come from the manifests; only the upstream address
and the file paths are the loopback's own.  Anything on these objects that this module does not
translate is refused, so the loopback can never silently differ from the cluster.

Sources: traefik/traefik ``pkg/provider/kubernetes/ingress/kubernetes.go`` (``loadRouter``,
``loadService``, ``getProtocol``) and ``pkg/provider/kubernetes/crd/kubernetes.go``
(ServersTransport: ``rootCAs`` read ``tls.ca`` or ``ca.crt``, ``certificatesSecrets`` read
``tls.crt``/``tls.key``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from components import specs

from .dataplane_conf import object_ref

ANNOTATION = specs.TRAEFIK
#: Ingress annotations translated here (router level).
ROUTER_ANNOTATIONS = ("router.tls", "router.entrypoints", "router.pathmatcher", "router.priority")
#: Service annotations translated here.
SERVICE_ANNOTATIONS = ("service.serverstransport", "service.serversscheme", "service.passhostheader")
#: ServersTransport spec fields that carry over to the file provider as they are.
TRANSPORT_PASSTHROUGH = (
    "serverName", "insecureSkipVerify", "minVersion", "maxVersion", "cipherSuites",
    "peerCertSANs", "disableHTTP2", "maxIdleConnsPerHost",
)
CRD_PROVIDER_SUFFIX = "@kubernetescrd"


class TraefikConfigError(ValueError):
    """The manifests lack something Traefik needs, or hold something not translated here."""


def normalize(name: str) -> str:
    """Traefik's ``provider.Normalize``: runs of non-alphanumerics become one ``-``, ends trimmed."""
    out: list[str] = []
    field: list[str] = []
    for char in name:
        if char.isalnum():
            field.append(char)
        elif field:
            out.append("".join(field))
            field = []
    if field:
        out.append("".join(field))
    return "-".join(out)


def _by_kind(manifests: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    found: dict[str, dict[str, Mapping[str, Any]]] = {}
    for obj in manifests:
        found.setdefault(str(obj.get("kind")), {})[object_ref(obj)] = obj
    return found


def _traefik_annotations(obj: Mapping[str, Any], allowed: Sequence[str], what: str) -> dict[str, str]:
    annotations = obj.get("metadata", {}).get("annotations", {}) or {}
    out: dict[str, str] = {}
    for key, value in annotations.items():
        if not key.startswith(ANNOTATION):
            continue
        short = key[len(ANNOTATION):]
        if short not in allowed:
            raise TraefikConfigError(f"{what} {object_ref(obj)} has annotation {key}, which this translation does not cover")
        out[short] = str(value)
    return out


def _bool(value: str, key: str) -> bool:
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TraefikConfigError(f"annotation {ANNOTATION}{key} must be true or false; got {value!r}")


def _host_rule(host: str) -> str:
    if host.startswith("*."):
        escaped = host.replace(".", r"\.").replace(r"*\.", r"[a-zA-Z0-9-]+\.", 1)
        return f"HostRegexp(`^{escaped}$`)"
    return f"Host(`{host}`)"


def _path_rule(path: Mapping[str, Any], path_matcher: str | None) -> str | None:
    value = path.get("path")
    if not value:
        return None
    path_type = path.get("pathType") or "ImplementationSpecific"
    if path_type == "Exact":
        matcher = "Path"
    elif path_type == "Prefix":
        matcher = "PathPrefix"
    else:
        matcher = path_matcher or "PathPrefix"
    return f"{matcher}(`{value}`)"


def _service_port(service: Mapping[str, Any], backend_port: Mapping[str, Any]) -> Mapping[str, Any]:
    for port in service.get("spec", {}).get("ports", []):
        if backend_port.get("number") == port.get("port") or (backend_port.get("name") and backend_port.get("name") == port.get("name")):
            return port
    raise TraefikConfigError(f"Service {object_ref(service)} has no port {backend_port!r}: Traefik would skip the path")


def _secret_key(secrets: Mapping[str, Mapping[str, Any]], ref: str, keys: Sequence[str], use: str) -> None:
    if ref not in secrets:
        raise TraefikConfigError(f"secret {ref} ({use}) is referenced but the program does not create it")
    data = secrets[ref].get("stringData") or secrets[ref].get("data") or {}
    if not any(data.get(k) for k in keys):
        raise TraefikConfigError(f"secret {ref} ({use}) has none of the keys {', '.join(keys)}")


def servers_transport(
    transport: Mapping[str, Any],
    secrets: Mapping[str, Mapping[str, Any]],
    *,
    client_cert_file: str,
    client_key_file: str,
    ca_file: str,
) -> dict[str, Any]:
    """A ServersTransport object as the file provider's ``http.serversTransports`` entry.

    Each ``rootCAs`` secret becomes ``ca_file`` and each ``certificatesSecrets`` secret the
    ``client_cert_file``/``client_key_file`` pair, after checking the secret exists in the
    transport's namespace with the keys Traefik reads (the loopback writes those files from it).
    """
    namespace = transport.get("metadata", {}).get("namespace", "default")
    spec = dict(transport.get("spec", {}))
    unknown = set(spec) - set(TRANSPORT_PASSTHROUGH) - {"rootCAs", "certificatesSecrets"}
    if unknown:
        raise TraefikConfigError(f"ServersTransport {object_ref(transport)} sets {', '.join(sorted(unknown))}, not translated here")
    out: dict[str, Any] = {key: spec[key] for key in TRANSPORT_PASSTHROUGH if key in spec}
    root_cas: list[str] = []
    for root_ca in spec.get("rootCAs", []):
        if "secret" not in root_ca or "configMap" in root_ca:
            raise TraefikConfigError(f"ServersTransport {object_ref(transport)} rootCAs entry {root_ca!r} is not a secret reference")
        _secret_key(secrets, f"{namespace}/{root_ca['secret']}", ("tls.ca", "ca.crt"), "rootCAs")
        root_cas.append(ca_file)
    if root_cas:
        out["rootCAs"] = sorted(set(root_cas))
    certificates: list[dict[str, str]] = []
    for name in spec.get("certificatesSecrets", []):
        _secret_key(secrets, f"{namespace}/{name}", ("tls.crt",), "certificatesSecrets")
        _secret_key(secrets, f"{namespace}/{name}", ("tls.key",), "certificatesSecrets")
        certificates.append({"certFile": client_cert_file, "keyFile": client_key_file})
    if certificates:
        out["certificates"] = [dict(c) for c in {tuple(sorted(c.items())): c for c in certificates}.values()]
    return out


def traefik_file_config(
    manifests: Iterable[Mapping[str, Any]],
    *,
    client_cert_file: str,
    client_key_file: str,
    ca_file: str,
    upstream: str,
    alb_cert_file: str | None = None,
    alb_key_file: str | None = None,
    entry_points: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Traefik's dynamic configuration (file provider) for the program's Traefik objects.

    ``manifests``: a rendering's objects (``Rendering.manifests()``), secrets with plain
    ``stringData``.  ``upstream``: ``host:port`` where the gateway listens (in the cluster
    Traefik would use the endpoints of our Service, ``<pod IP>:8443``).  ``client_cert_file``,
    ``client_key_file``, ``ca_file``: where the loopback wrote ``tls.crt``, ``tls.key`` and
    ``ca.crt`` of the secret the ServersTransport names.  ``alb_cert_file``/``alb_key_file``
    (optional): the ALB's own server certificate, loaded as the Ingress's TLS secret would be, or
    as the default certificate when the Ingress names no secret (``albTlsMode=default-certificate``).
    The certificates of other TLS secrets (a custom domain's): :func:`tls_config`.
    ``entry_points``: used when the Ingress has no ``router.entrypoints`` annotation (Traefik
    then attaches the routers to all default entry points).

    Returns ``{"http": {"routers", "services", "serversTransports"}, "tls": ...}``, ready to be
    written as YAML (or JSON) for ``--providers.file.filename``.
    """
    objs = _by_kind(manifests)
    ingresses = list(objs.get("Ingress", {}).values())
    if len(ingresses) != 1:
        raise TraefikConfigError(f"expected one Ingress in the rendering, found {len(ingresses)}")
    ingress = ingresses[0]
    namespace = ingress.get("metadata", {}).get("namespace", "default")
    ingress_name = ingress.get("metadata", {}).get("name", "")
    services = objs.get("Service", {})
    transports = objs.get("ServersTransport", {})
    secrets = objs.get("Secret", {})

    router_conf = _traefik_annotations(ingress, ROUTER_ANNOTATIONS, "Ingress")
    routers: dict[str, dict[str, Any]] = {}
    http_services: dict[str, dict[str, Any]] = {}
    http_transports: dict[str, dict[str, Any]] = {}
    for rule in ingress.get("spec", {}).get("rules", []):
        host = rule.get("host", "")
        for path in (rule.get("http") or {}).get("paths", []):
            backend = path.get("backend", {}).get("service")
            if not backend:
                raise TraefikConfigError(f"Ingress {object_ref(ingress)} path {path.get('path')!r} has no service backend")
            service_ref = f"{namespace}/{backend['name']}"
            if service_ref not in services:
                raise TraefikConfigError(f"Ingress {object_ref(ingress)} routes to Service {service_ref}, which the program does not create")
            service = services[service_ref]
            port = _service_port(service, backend.get("port", {}))
            backend_port = backend.get("port", {})
            port_string = backend_port.get("name") or str(backend_port.get("number"))
            service_name = normalize(f"{namespace}-{backend['name']}-{port_string}")
            http_services[service_name] = _load_balancer(
                service, port, upstream, transports, secrets, http_transports,
                client_cert_file=client_cert_file, client_key_file=client_key_file, ca_file=ca_file,
            )
            parts = [p for p in (_host_rule(host) if host else None, _path_rule(path, router_conf.get("router.pathmatcher"))) if p]
            router: dict[str, Any] = {"rule": " && ".join(parts), "service": service_name}
            if "router.entrypoints" in router_conf:
                router["entryPoints"] = [e.strip() for e in router_conf["router.entrypoints"].split(",") if e.strip()]
            elif entry_points:
                router["entryPoints"] = list(entry_points)
            if "router.priority" in router_conf:
                router["priority"] = int(router_conf["router.priority"])
            if _bool(router_conf.get("router.tls", "false"), "router.tls"):
                router["tls"] = {}
            key = normalize(f"{namespace}-{ingress_name}-{host}{path.get('path', '')}")
            if key in routers:
                raise TraefikConfigError(f"Ingress {object_ref(ingress)} has two paths that make router {key}")
            routers[key] = router

    config: dict[str, Any] = {"http": {"routers": routers, "services": http_services}}
    if http_transports:
        config["http"]["serversTransports"] = http_transports
    tls = tls_config(ingress, alb_cert_file, alb_key_file)
    if tls:
        config["tls"] = tls
    return config


def _load_balancer(
    service: Mapping[str, Any],
    port: Mapping[str, Any],
    upstream: str,
    transports: Mapping[str, Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, Any]],
    http_transports: dict[str, dict[str, Any]],
    **files: str,
) -> dict[str, Any]:
    """The Ingress provider's ``loadService``: scheme, transport and host header from the Service."""
    conf = _traefik_annotations(service, SERVICE_ANNOTATIONS, "Service")
    port_name = str(port.get("name", ""))
    scheme = conf.get("service.serversscheme") or ("https" if port.get("port") == 443 or port_name.startswith("https") else "http")
    load_balancer: dict[str, Any] = {"servers": [{"url": f"{scheme}://{upstream}"}]}
    if "service.passhostheader" in conf:
        load_balancer["passHostHeader"] = _bool(conf["service.passhostheader"], "service.passhostheader")
    reference = conf.get("service.serverstransport")
    if reference:
        if not reference.endswith(CRD_PROVIDER_SUFFIX):
            raise TraefikConfigError(f"Service {object_ref(service)} names ServersTransport {reference!r}, not one of the kubernetescrd provider")
        transport_id = reference[: -len(CRD_PROVIDER_SUFFIX)]
        matches = [t for ref, t in transports.items() if normalize(ref.replace("/", "-")) == transport_id]
        if len(matches) != 1:
            raise TraefikConfigError(f"Service {object_ref(service)} names ServersTransport {reference!r}, which the program does not create")
        http_transports[transport_id] = servers_transport(matches[0], secrets, **files)
        # In the file provider the transport lives beside the service: its plain name resolves there.
        load_balancer["serversTransport"] = transport_id
    return {"loadBalancer": load_balancer}


def tls_config(
    ingress: Mapping[str, Any],
    cert_file: str | None,
    key_file: str | None,
    tls_files: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The ``tls`` section for the Ingress's ``tls`` entries, as the Ingress provider loads them:
    every secret one entry of ``certificates`` (Traefik picks one by SNI), an entry without a
    secret the default certificate.  ``tls_files``: ``namespace/name`` of a TLS secret other than
    the ALB's (a custom domain's ``tlsSecret``) → its certificate and key files; any other secret
    is the ALB's own (``cert_file``/``key_file``)."""
    tls_files = tls_files or {}
    namespace = ingress.get("metadata", {}).get("namespace", "default")
    entries = ingress.get("spec", {}).get("tls", [])
    alb = {"certFile": cert_file, "keyFile": key_file} if cert_file and key_file else None
    certificates: list[dict[str, str]] = []
    for entry in entries:
        if not entry.get("secretName"):
            continue
        files = tls_files.get(f"{namespace}/{entry['secretName']}")
        pair = {"certFile": files[0], "keyFile": files[1]} if files else alb
        if pair is not None and pair not in certificates:
            certificates.append(pair)
    out: dict[str, Any] = {}
    if certificates:
        out["certificates"] = certificates
    if alb is not None and (not entries or any(not entry.get("secretName") for entry in entries)):
        out["stores"] = {"default": {"defaultCertificate": alb}}
    return out
