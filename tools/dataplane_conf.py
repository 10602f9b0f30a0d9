"""What the cluster's proxies would run, derived from the objects the program emits (pure code).

The program only *asks* for an Ingress, a Gateway, VirtualServices and secrets; ingress-nginx
(the IKS ALB) and Istio (the gateway's Envoy) turn them into proxy configuration.  This module
does the same translation for the parts that matter to the mutual-TLS hop, so the loopback
data plane (tests, ``rehearse``) runs the real nginx and Envoy on exactly what the program
produced.  Nothing here invents a value: hosts, paths, names, key names and protocol versions
all come from the manifests; only addresses and file paths are the loopback's own.

- nginx: one ``server`` per Ingress host, with the certificate of the ``tls`` entry that lists
  it (the ALB's, or a custom domain's own secret), its paths to the gateway, and a catch-all
  server answering the default backend's 404;
- Envoy: the Gateway's MUTUAL server (certificate and client CA over SDS, by Istio's secret
  names), one virtual host per host with the routes of every VirtualService bound to the
  Gateway for it, each route to the outbound cluster of its destination
  (``outbound|<port>||<service>.<ns>.svc.cluster.local``), which the loopback points at a
  stand-in of that destination.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components import specs

NGINX_ANNOTATION = specs.NGINX
ISTIO_TLS_VERSIONS = {"TLSV1_0": "TLSv1_0", "TLSV1_1": "TLSv1_1", "TLSV1_2": "TLSv1_2", "TLSV1_3": "TLSv1_3"}


class DataPlaneConfigError(ValueError):
    """The manifests lack something the proxies need (names the object and field)."""


@dataclass(frozen=True)
class MeshObjects:
    """The objects of one rendering that the data plane is built from."""

    ingress: Mapping[str, Any]
    gateway: Mapping[str, Any]
    virtual_services: tuple[Mapping[str, Any], ...]
    """Every VirtualService, in the order the program creates them (Istio merges one host's in
    creation order): the httpbin sample's one, or one per ``apps`` entry."""
    secrets: Mapping[str, Mapping[str, str]]
    """``namespace/name`` → data (plain text) of every Secret the program creates."""
    manifests: tuple[Mapping[str, Any], ...] = ()
    """The whole rendering (which destination is the httpbin sample: :func:`httpbin_destinations`)."""

    def secret(self, ref: str) -> Mapping[str, str]:
        if ref not in self.secrets:
            raise DataPlaneConfigError(f"secret {ref} is referenced but the program does not create it")
        return self.secrets[ref]


def object_ref(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` of a manifest, as messages and secret references spell it."""
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def collect(manifests: Iterable[Mapping[str, Any]]) -> MeshObjects:
    """Pick the Ingress, Gateway, VirtualServices and Secrets out of a rendering's manifests."""
    manifests = tuple(manifests)
    found: dict[str, list[Mapping[str, Any]]] = {"Ingress": [], "Gateway": [], "VirtualService": []}
    secrets: dict[str, dict[str, str]] = {}
    for obj in manifests:
        kind = obj.get("kind")
        if kind in found:
            found[kind].append(obj)
        elif kind == "Secret":
            secrets[object_ref(obj)] = {**obj.get("stringData", {})}
    for kind in ("Ingress", "Gateway"):
        if len(found[kind]) != 1:
            raise DataPlaneConfigError(f"expected one {kind} in the rendering, found {len(found[kind])}")
    if not found["VirtualService"]:
        raise DataPlaneConfigError("expected at least one VirtualService in the rendering, found 0")
    return MeshObjects(found["Ingress"][0], found["Gateway"][0], tuple(found["VirtualService"]), secrets, manifests)


# --- Istio → Envoy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayFiles:
    """Where the loopback keeps what Istio's SDS would hand Envoy for one server.

    ``sds_cert``/``sds_ca``: the files of SDS resources (:func:`sds_resources`, one secret each)
    naming the certificate and key, and the client CA.  Envoy watches them, so replacing one (a
    rename) hands Envoy renewed material without a restart, as Istio's SDS does when the
    ``credentialName`` secrets change.  Unset: the files are configured directly.
    """

    cert_chain: str
    private_key: str
    trusted_ca: str
    sds_cert: str | None = None
    sds_ca: str | None = None


@dataclass(frozen=True, order=True)
class Destination:
    """One VirtualService route destination: ``<service>.<ns>.svc.cluster.local`` and port."""

    host: str
    port: int

    @property
    def cluster(self) -> str:
        """Istio's name for the outbound cluster: ``outbound|<port>||<host>``."""
        return f"outbound|{self.port}||{self.host}"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def gateway_mtls_server(gateway: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Gateway's MUTUAL HTTPS server on 443: the one the ALB talks to."""
    for server in gateway.get("spec", {}).get("servers", []):
        if server.get("port", {}).get("number") == specs.GATEWAY_HTTPS_PORT and server.get("tls"):
            return dict(server)
    raise DataPlaneConfigError(f"Gateway {object_ref(gateway)} has no TLS server on port {specs.GATEWAY_HTTPS_PORT}")


def gateway_namespace(gateway: Mapping[str, Any]) -> str:
    return str(gateway.get("metadata", {}).get("namespace", "default"))


def credential_secret_ref(gateway: Mapping[str, Any]) -> str:
    """Istio reads a server's certificate from ``credentialName`` in the gateway's namespace."""
    server = gateway_mtls_server(gateway)
    return f"{gateway_namespace(gateway)}/{server['tls']['credentialName']}"


def cacert_secret_ref(gateway: Mapping[str, Any]) -> str:
    """Istio reads a MUTUAL server's CA from ``<credentialName>-cacert`` in the gateway's namespace."""
    server = gateway_mtls_server(gateway)
    return f"{gateway_namespace(gateway)}/{specs.cacert_secret_name(server['tls']['credentialName'])}"


def bound_virtual_services(objs: MeshObjects) -> list[Mapping[str, Any]]:
    """The VirtualServices bound to the Gateway (``gateways``: ``<ns>/<name>``, or the bare name
    from the Gateway's own namespace), in creation order."""
    gw_ns = gateway_namespace(objs.gateway)
    gw_name = objs.gateway.get("metadata", {}).get("name", "")
    bound = []
    for vs in objs.virtual_services:
        vs_ns = vs.get("metadata", {}).get("namespace", "default")
        refs = vs.get("spec", {}).get("gateways", [])
        if f"{gw_ns}/{gw_name}" in refs or (vs_ns == gw_ns and gw_name in refs):
            bound.append(vs)
    return bound


def _uri_match(match: Mapping[str, Any]) -> dict[str, Any]:
    uri = match.get("uri", {})
    if "exact" in uri:
        return {"path": uri["exact"]}
    if "prefix" in uri:
        return {"prefix": uri["prefix"]}
    raise DataPlaneConfigError(f"VirtualService match {match!r} is neither exact nor prefix")


def http_destination(virtual_service: Mapping[str, Any], http: Mapping[str, Any]) -> Destination:
    """The one destination of a VirtualService ``http`` entry (weights are not translated here)."""
    routes = http.get("route", [])
    if len(routes) != 1:
        raise DataPlaneConfigError(
            f"VirtualService {object_ref(virtual_service)} http entry {http.get('name')!r} has {len(routes)} destinations; "
            "the loopback translates exactly one"
        )
    destination = routes[0].get("destination", {})
    port = destination.get("port", {}).get("number")
    if not destination.get("host") or not isinstance(port, int):
        raise DataPlaneConfigError(f"VirtualService {object_ref(virtual_service)} destination {destination!r} lacks a host or a port number")
    return Destination(str(destination["host"]), port)


def envoy_routes(virtual_service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One Envoy route per VirtualService match, in order, as Istio generates them, each to the
    outbound cluster of its destination."""
    routes: list[dict[str, Any]] = []
    for http in virtual_service.get("spec", {}).get("http", []):
        cluster = http_destination(virtual_service, http).cluster
        for match in http.get("match", [{"uri": {"prefix": "/"}}]):
            routes.append({"match": _uri_match(match), "route": {"cluster": cluster, "timeout": "10s"}})
    return routes


def virtual_hosts(objs: MeshObjects) -> list[tuple[str, list[dict[str, Any]]]]:
    """Istio's virtual hosts for the MUTUAL server: one per host of the server that a bound
    VirtualService names, its routes those of every such VirtualService, in creation order."""
    hosts = list(gateway_mtls_server(objs.gateway).get("hosts", []))
    out: dict[str, list[dict[str, Any]]] = {}
    for vs in bound_virtual_services(objs):
        routes = envoy_routes(vs)
        for host in vs.get("spec", {}).get("hosts", []):
            if host in hosts or "*" in hosts:
                out.setdefault(host, []).extend(routes)
    return list(out.items())


def destinations(objs: MeshObjects) -> list[Destination]:
    """Every destination the gateway routes to, once each, in the order the routes name them."""
    found: dict[Destination, None] = {}
    served = {host for host, _ in virtual_hosts(objs)}
    for vs in bound_virtual_services(objs):
        if not served.intersection(vs.get("spec", {}).get("hosts", [])):
            continue
        for http in vs.get("spec", {}).get("http", []):
            found.setdefault(http_destination(vs, http))
    return list(found)


def httpbin_destinations(objs: MeshObjects) -> set[Destination]:
    """Destinations that are Istio's httpbin sample, so that httpbin itself stands in for them:
    those of the sample's VirtualService (``httpbin``), and any whose Service the rendering
    creates in front of a Deployment running an httpbin image (an app routed to the sample)."""
    out: set[Destination] = set()
    for vs in bound_virtual_services(objs):
        if vs.get("metadata", {}).get("name") == specs.VIRTUAL_SERVICE_NAME:
            out.update(http_destination(vs, http) for http in vs.get("spec", {}).get("http", []))
    deployments = [m for m in objs.manifests if m.get("kind") == "Deployment"]
    for service in (m for m in objs.manifests if m.get("kind") == "Service"):
        meta = service.get("metadata", {})
        host = f"{meta.get('name')}.{meta.get('namespace', 'default')}.svc.cluster.local"
        selector = service.get("spec", {}).get("selector") or {}
        runs_httpbin = any(
            d.get("metadata", {}).get("namespace", "default") == meta.get("namespace", "default")
            and selector
            and selector.items() <= (d.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}).items()
            and any("httpbin" in str(c.get("image", "")) for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []))
            for d in deployments
        )
        if runs_httpbin:
            out.update(Destination(host, int(p["port"])) for p in service.get("spec", {}).get("ports", []) if "port" in p)
    return out


#: Istio's names for the SDS secrets of a gateway server's ``credentialName``.
def sds_names(objs: MeshObjects) -> tuple[str, str]:
    credential = gateway_mtls_server(objs.gateway)["tls"]["credentialName"]
    return f"kubernetes://{credential}", f"kubernetes://{specs.cacert_secret_name(credential)}"


def sds_resources(objs: MeshObjects, files: GatewayFiles) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two SDS files Envoy watches (one secret each, by Istio's names): the server
    certificate and key, and the client CA."""
    cert_name, ca_name = sds_names(objs)
    secret_type = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
    cert = {
        "@type": secret_type,
        "name": cert_name,
        "tls_certificate": {"certificate_chain": {"filename": files.cert_chain}, "private_key": {"filename": files.private_key}},
    }
    ca = {"@type": secret_type, "name": ca_name, "validation_context": {"trusted_ca": {"filename": files.trusted_ca}}}
    return {"resources": [cert]}, {"resources": [ca]}


def envoy_config(
    objs: MeshObjects,
    files: GatewayFiles,
    *,
    listen_port: int,
    upstreams: Mapping[Destination, int],
    address: str = "127.0.0.1",
    admin_port: int | None = None,
) -> dict[str, Any]:
    """Envoy bootstrap equal, for this hop, to what Istio pushes the ingress gateway.

    - a TLS inspector and a filter chain matching the Gateway server's ``hosts`` on SNI;
    - the ``credentialName`` secret as server certificate, the ``-cacert`` secret as the
      client validation context with ``subjectAltNames`` as exact SAN matchers (over SDS from
      watched files when ``files.sds_cert``/``sds_ca`` are set, else from the files directly);
    - ``minProtocolVersion``; one virtual host per served host with the routes of every
      VirtualService for it, each to the cluster of its destination (``upstreams``: the
      loopback port standing in for it), 404 otherwise;
    - the client certificate's details in ``x-forwarded-client-cert`` (``SANITIZE_SET`` with
      subject, cert, URI and DNS: Istio's default for a gateway).
    """
    server = gateway_mtls_server(objs.gateway)
    tls = server["tls"]
    if tls.get("mode") != "MUTUAL":
        raise DataPlaneConfigError(f"Gateway {object_ref(objs.gateway)} server is {tls.get('mode')}, not MUTUAL")
    hosts = list(server.get("hosts", []))
    params: dict[str, Any] = {}
    if "minProtocolVersion" in tls:
        params["tls_minimum_protocol_version"] = ISTIO_TLS_VERSIONS[tls["minProtocolVersion"]]
    if "maxProtocolVersion" in tls:
        params["tls_maximum_protocol_version"] = ISTIO_TLS_VERSIONS[tls["maxProtocolVersion"]]
    san_matchers: dict[str, Any] = {}
    if tls.get("subjectAltNames"):
        san_matchers["match_typed_subject_alt_names"] = [
            {"san_type": "DNS", "matcher": {"exact": san}} for san in tls["subjectAltNames"]
        ]
    common_tls_context: dict[str, Any] = {"tls_params": params, "alpn_protocols": ["h2", "http/1.1"]}
    if files.sds_cert and files.sds_ca:
        cert_name, ca_name = sds_names(objs)
        common_tls_context["tls_certificate_sds_secret_configs"] = [
            {"name": cert_name, "sds_config": {"path_config_source": {"path": files.sds_cert}, "resource_api_version": "V3"}}
        ]
        common_tls_context["combined_validation_context"] = {
            "default_validation_context": san_matchers,
            "validation_context_sds_secret_config": {
                "name": ca_name,
                "sds_config": {"path_config_source": {"path": files.sds_ca}, "resource_api_version": "V3"},
            },
        }
    else:
        common_tls_context["tls_certificates"] = [
            {"certificate_chain": {"filename": files.cert_chain}, "private_key": {"filename": files.private_key}}
        ]
        common_tls_context["validation_context"] = {"trusted_ca": {"filename": files.trusted_ca}, **san_matchers}
    missing = [str(d) for d in destinations(objs) if d not in upstreams]
    if missing:
        raise DataPlaneConfigError(f"no loopback upstream stands in for {', '.join(missing)}")
    http_connection_manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"subject": True, "cert": True, "uri": True, "dns": True},
        "route_config": {
            "name": "https.443",
            "virtual_hosts": [
                {"name": host, "domains": [host, f"{host}:*"], "routes": routes} for host, routes in virtual_hosts(objs)
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    admin = {"admin": {"address": {"socket_address": {"address": address, "port_value": admin_port}}}} if admin_port else {}
    # SDS needs a node identity; Istio's is the pod's (router~<ip>~<pod>.<ns>~...): the loopback's own here.
    node = {"node": {"id": f"router~{address}~loopback-gateway", "cluster": "loopback-gateway"}}
    return {
        **node,
        **admin,
        "static_resources": {
            "listeners": [
                {
                    "name": f"{address}_{listen_port}",
                    "address": {"socket_address": {"address": address, "port_value": listen_port}},
                    "listener_filters": [
                        {
                            "name": "envoy.filters.listener.tls_inspector",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                            },
                        }
                    ],
                    "filter_chains": [
                        {
                            "filter_chain_match": {"server_names": [h for h in hosts if h != "*"]} if "*" not in hosts else {},
                            "transport_socket": {
                                "name": "envoy.transport_sockets.tls",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                                    "require_client_certificate": True,
                                    "common_tls_context": common_tls_context,
                                },
                            },
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": http_connection_manager}
                            ],
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": destination.cluster,
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": destination.cluster,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {"endpoint": {"address": {"socket_address": {"address": address, "port_value": upstreams[destination]}}}}
                                ]
                            }
                        ],
                    },
                }
                for destination in destinations(objs)
            ],
        }
    }


# --- ingress-nginx → nginx ------------------------------------------------------------------------


@dataclass(frozen=True)
class NginxFiles:
    """Files ingress-nginx would write from the Ingress's secrets.

    ``server_cert``/``server_key``: the ALB's certificate, served for every host whose ``tls``
    entry names no secret of ``host_certs`` (and by the catch-all server); ``host_certs``:
    ``namespace/name`` of another TLS secret an entry names (a custom domain's) → its files.
    """

    server_cert: str
    server_key: str
    proxy_cert: str | None
    proxy_key: str | None
    proxy_trusted: str | None
    host_certs: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class UpstreamTls:
    """How the ALB re-encrypts to the backend, read from the Ingress's annotations."""

    https: bool
    secret_ref: str | None = None
    cert_key: str = "tls.crt"
    key_key: str = "tls.key"
    ca_key: str = "ca.crt"
    name: str | None = None
    server_name: bool = False
    verify: bool = False
    verify_depth: str = "1"
    protocols: str | None = None

    def files_needed(self, secret: Mapping[str, str]) -> tuple[bool, bool]:
        """(client certificate sent, upstream verified): both ALBs configure the client
        certificate and the trusted CA only when the secret has the CA key."""
        has_ca = bool(secret.get(self.ca_key))
        return has_ca and bool(secret.get(self.cert_key)) and bool(secret.get(self.key_key)), has_ca


def upstream_tls(ingress: Mapping[str, Any]) -> UpstreamTls:
    """ingress-nginx's ``backend-protocol``/``proxy-ssl-*`` annotations, or IBM's legacy
    ``ingress.bluemix.net/ssl-services`` (``ssl-secret`` keys ``client.crt``/``client.key``/``trusted.crt``)."""
    annotations: Mapping[str, str] = ingress.get("metadata", {}).get("annotations", {})
    namespace = ingress.get("metadata", {}).get("namespace", "default")
    legacy = annotations.get(f"{specs.BLUEMIX}ssl-services")
    if legacy:
        fields = dict(part.split("=", 1) for part in legacy.split() if "=" in part)
        secret = fields.get("ssl-secret")
        return UpstreamTls(
            https=True,
            secret_ref=f"{namespace}/{secret}" if secret else None,
            cert_key="client.crt",
            key_key="client.key",
            ca_key="trusted.crt",
            name=fields.get("proxy-ssl-name"),
            server_name="proxy-ssl-name" in fields,
            verify=bool(secret),
            verify_depth=fields.get("proxy-ssl-verify-depth", "1"),
        )

    def ann(key: str) -> str | None:
        return annotations.get(f"{NGINX_ANNOTATION}{key}")

    return UpstreamTls(
        https=(ann("backend-protocol") or "HTTP").upper() == "HTTPS",
        secret_ref=ann("proxy-ssl-secret"),
        name=ann("proxy-ssl-name"),
        server_name=ann("proxy-ssl-server-name") == "on",
        # ingress-nginx: proxy-ssl-verify is exactly "on" or it is off.
        verify=ann("proxy-ssl-verify") == "on",
        verify_depth=ann("proxy-ssl-verify-depth") or "1",
        protocols=ann("proxy-ssl-protocols"),
    )


def _nginx_locations(paths: Sequence[Mapping[str, Any]]) -> list[str]:
    """ingress-nginx turns a ``Prefix`` path ``/p`` into ``location = /p`` + ``location /p/``."""
    out: list[str] = []
    for path in paths:
        value = path["path"]
        kind = path.get("pathType", "Prefix")
        if kind == "Exact":
            out.append(f"= {value}")
        elif value == "/":
            out.append("/")
        else:
            out.append(f"= {value.rstrip('/')}")
            out.append(f"{value.rstrip('/')}/")
    return out


def ingress_rules(ingress: Mapping[str, Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """The Ingress's hosts and their paths, rules of one host merged as ingress-nginx merges them."""
    hosts: dict[str, list[Mapping[str, Any]]] = {}
    for rule in ingress.get("spec", {}).get("rules", []):
        if not rule.get("host"):
            raise DataPlaneConfigError(f"Ingress {object_ref(ingress)} has a rule without a host, not translated here")
        hosts.setdefault(rule["host"], []).extend((rule.get("http") or {}).get("paths", []))
    if not hosts:
        raise DataPlaneConfigError(f"Ingress {object_ref(ingress)} has no rules")
    return list(hosts.items())


def tls_secret_ref(ingress: Mapping[str, Any], host: str) -> str | None:
    """``namespace/name`` of the TLS secret the first ``tls`` entry listing ``host`` names, or
    None: the ALB's default certificate (no entry, or one without ``secretName``)."""
    namespace = ingress.get("metadata", {}).get("namespace", "default")
    for entry in ingress.get("spec", {}).get("tls", []):
        if host in entry.get("hosts", []):
            return f"{namespace}/{entry['secretName']}" if entry.get("secretName") else None
    return None


def tls_secret_refs(ingress: Mapping[str, Any]) -> list[str]:
    """Every TLS secret the Ingress's ``tls`` entries name, once each."""
    namespace = ingress.get("metadata", {}).get("namespace", "default")
    refs = [f"{namespace}/{e['secretName']}" for e in ingress.get("spec", {}).get("tls", []) if e.get("secretName")]
    return list(dict.fromkeys(refs))


def nginx_conf(
    objs: MeshObjects,
    files: NginxFiles,
    *,
    listen_port: int,
    upstream_port: int,
    workdir: str,
    address: str = "127.0.0.1",
    master_process: bool = False,
) -> str:
    """nginx.conf with the servers ingress-nginx would generate for the Ingress.

    One server per host, with the certificate of its ``tls`` entry; each path ``proxy_pass
    https://`` to the backend (here: Envoy); ``proxy_ssl_*`` from the annotations and the
    ``proxy-ssl-secret``; HTTP/1.1 upstream; anything else, and any other host (the catch-all
    server), gets the default backend's 404.  ``proxy_ssl_session_reuse off`` so that a refused
    handshake is never hidden by a resumed session.  ``master_process``: a master that reloads
    the configuration and the files on SIGHUP, as the ALB does when a secret changes.
    """
    ingress = objs.ingress
    upstream = upstream_tls(ingress)
    scheme = "https" if upstream.https else "http"
    proxy: list[str] = [
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-Proto https;",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 10s;",
    ]
    if upstream.https:
        proxy.append("proxy_ssl_session_reuse off;")
        if upstream.name:
            proxy.append(f"proxy_ssl_name {upstream.name};")
        if upstream.server_name:
            proxy.append("proxy_ssl_server_name on;")
        if upstream.protocols:
            proxy.append(f"proxy_ssl_protocols {upstream.protocols};")
        if files.proxy_trusted:
            proxy.append(f"proxy_ssl_trusted_certificate {files.proxy_trusted};")
            proxy.append(f"proxy_ssl_verify {'on' if upstream.verify else 'off'};")
            proxy.append(f"proxy_ssl_verify_depth {upstream.verify_depth};")
        if files.proxy_cert and files.proxy_key:
            proxy.append(f"proxy_ssl_certificate {files.proxy_cert};")
            proxy.append(f"proxy_ssl_certificate_key {files.proxy_key};")
    proxy.append(f"proxy_pass {scheme}://upstream_balancer;")
    body = "\n".join(f"      {line}" for line in proxy)
    default_backend = 'return 404 "default backend - 404\\n";'
    servers: list[str] = []
    for host, paths in ingress_rules(ingress):
        ref = tls_secret_ref(ingress, host)
        cert, key = files.host_certs.get(ref, (files.server_cert, files.server_key)) if ref else (files.server_cert, files.server_key)
        wanted = list(dict.fromkeys(_nginx_locations(paths)))
        locations = "\n".join(f"    location {loc} {{\n{body}\n    }}" for loc in wanted)
        if "/" not in wanted:  # ingress-nginx's default backend answers everything else
            locations += f"\n    location / {{ {default_backend} }}"
        servers.append(
            f"""  server {{
    listen {address}:{listen_port} ssl;
    server_name {host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
{locations}
  }}"""
        )
    # ingress-nginx's catch-all server: any other host gets the default backend.
    servers.append(
        f"""  server {{
    listen {address}:{listen_port} ssl default_server;
    server_name _;
    ssl_certificate {files.server_cert};
    ssl_certificate_key {files.server_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ {default_backend} }}
  }}"""
    )
    server_text = "\n".join(servers)
    return f"""# Generated from Ingress {object_ref(ingress)} as ingress-nginx would (loopback data plane).
daemon off;
master_process {'on' if master_process else 'off'};
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  # ingress-nginx sizes these to the longest host; IKS names are longer than nginx's default.
  server_names_hash_bucket_size 256;
  server_names_hash_max_size 1024;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  upstream upstream_balancer {{ server {address}:{upstream_port}; }}
{server_text}
}}
"""


def dumps(config: Mapping[str, Any]) -> str:
    """Envoy reads JSON as YAML: write it as JSON (no YAML dependency)."""
    return json.dumps(config, indent=2)
