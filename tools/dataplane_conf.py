"""What the cluster's proxies would run, derived from the objects the program emits (pure code).

The program only *asks* for an Ingress, a Gateway, a VirtualService and secrets; ingress-nginx
(the IKS ALB) and Istio (the gateway's Envoy) turn them into proxy configuration.  This module
does the same translation for the parts that matter to the mutual-TLS hop, so the loopback
data plane (tests, ``rehearse``) runs the real nginx and Envoy on exactly what the program
produced.  Nothing here invents a value: hosts, paths, names, key names and protocol versions
all come from the manifests; only addresses and file paths are the loopback's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    virtual_service: Mapping[str, Any]
    secrets: Mapping[str, Mapping[str, str]]
    """``namespace/name`` → data (plain text) of every Secret the program creates."""

    def secret(self, ref: str) -> Mapping[str, str]:
        if ref not in self.secrets:
            raise DataPlaneConfigError(f"secret {ref} is referenced but the program does not create it")
        return self.secrets[ref]


def object_ref(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` of a manifest, as messages and secret references spell it."""
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def collect(manifests: Iterable[Mapping[str, Any]]) -> MeshObjects:
    """Pick the Ingress, Gateway, VirtualService and Secrets out of a rendering's manifests."""
    found: dict[str, list[Mapping[str, Any]]] = {"Ingress": [], "Gateway": [], "VirtualService": []}
    secrets: dict[str, dict[str, str]] = {}
    for obj in manifests:
        kind = obj.get("kind")
        if kind in found:
            found[kind].append(obj)
        elif kind == "Secret":
            secrets[object_ref(obj)] = {**obj.get("stringData", {})}
    for kind, objs in found.items():
        if len(objs) != 1:
            raise DataPlaneConfigError(f"expected one {kind} in the rendering, found {len(objs)}")
    return MeshObjects(found["Ingress"][0], found["Gateway"][0], found["VirtualService"][0], secrets)


# --- Istio → Envoy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayFiles:
    """Where the loopback keeps what Istio's SDS would hand Envoy for one server."""

    cert_chain: str
    private_key: str
    trusted_ca: str


def gateway_mtls_server(gateway: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Gateway's MUTUAL HTTPS server on 443: the one the ALB talks to."""
    for server in gateway.get("spec", {}).get("servers", []):
        if server.get("port", {}).get("number") == specs.GATEWAY_HTTPS_PORT and server.get("tls"):
            return dict(server)
    raise DataPlaneConfigError(f"Gateway {object_ref(gateway)} has no TLS server on port {specs.GATEWAY_HTTPS_PORT}")


def cacert_secret_ref(gateway: Mapping[str, Any]) -> str:
    """Istio reads a MUTUAL server's CA from ``<credentialName>-cacert`` in the gateway's namespace."""
    server = gateway_mtls_server(gateway)
    namespace = gateway.get("metadata", {}).get("namespace", "default")
    return f"{namespace}/{specs.cacert_secret_name(server['tls']['credentialName'])}"


def _uri_match(match: Mapping[str, Any]) -> dict[str, Any]:
    uri = match.get("uri", {})
    if "exact" in uri:
        return {"path": uri["exact"]}
    if "prefix" in uri:
        return {"prefix": uri["prefix"]}
    raise DataPlaneConfigError(f"VirtualService match {match!r} is neither exact nor prefix")


def envoy_routes(virtual_service: Mapping[str, Any], cluster: str) -> list[dict[str, Any]]:
    """One Envoy route per VirtualService match, in order, as Istio generates them."""
    routes: list[dict[str, Any]] = []
    for http in virtual_service.get("spec", {}).get("http", []):
        for match in http.get("match", [{"uri": {"prefix": "/"}}]):
            routes.append({"match": _uri_match(match), "route": {"cluster": cluster, "timeout": "10s"}})
    return routes


def envoy_config(
    objs: MeshObjects,
    files: GatewayFiles,
    *,
    listen_port: int,
    upstream_port: int,
    address: str = "127.0.0.1",
    admin_port: int | None = None,
) -> dict[str, Any]:
    """Envoy bootstrap equal, for this hop, to what Istio pushes the ingress gateway.

    - a TLS inspector and a filter chain matching the Gateway server's ``hosts`` on SNI;
    - the ``credentialName`` secret as server certificate, the ``-cacert`` secret as the
      client validation context with ``subjectAltNames`` as exact SAN matchers;
    - ``minProtocolVersion``; one route per VirtualService match to the app, 404 otherwise.
    """
    server = gateway_mtls_server(objs.gateway)
    tls = server["tls"]
    if tls.get("mode") != "MUTUAL":
        raise DataPlaneConfigError(f"Gateway {object_ref(objs.gateway)} server is {tls.get('mode')}, not MUTUAL")
    hosts = list(server.get("hosts", []))
    vs_hosts = [h for h in objs.virtual_service.get("spec", {}).get("hosts", []) if h in hosts or "*" in hosts]
    params: dict[str, Any] = {}
    if "minProtocolVersion" in tls:
        params["tls_minimum_protocol_version"] = ISTIO_TLS_VERSIONS[tls["minProtocolVersion"]]
    if "maxProtocolVersion" in tls:
        params["tls_maximum_protocol_version"] = ISTIO_TLS_VERSIONS[tls["maxProtocolVersion"]]
    validation: dict[str, Any] = {"trusted_ca": {"filename": files.trusted_ca}}
    if tls.get("subjectAltNames"):
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "DNS", "matcher": {"exact": san}} for san in tls["subjectAltNames"]
        ]
    http_connection_manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "route_config": {
            "name": "https.443",
            "virtual_hosts": [
                {
                    "name": host,
                    "domains": [host, f"{host}:*"],
                    "routes": envoy_routes(objs.virtual_service, "app"),
                }
                for host in vs_hosts
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
    return {
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
                                    "common_tls_context": {
                                        "tls_params": params,
                                        "alpn_protocols": ["h2", "http/1.1"],
                                        "tls_certificates": [
                                            {
                                                "certificate_chain": {"filename": files.cert_chain},
                                                "private_key": {"filename": files.private_key},
                                            }
                                        ],
                                        "validation_context": validation,
                                    },
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
                    "name": "app",
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": "app",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {"endpoint": {"address": {"socket_address": {"address": address, "port_value": upstream_port}}}}
                                ]
                            }
                        ],
                    },
                }
            ],
        }
    }


# --- ingress-nginx → nginx ------------------------------------------------------------------------


@dataclass(frozen=True)
class NginxFiles:
    """Files ingress-nginx would write from the Ingress's secrets."""

    server_cert: str
    server_key: str
    proxy_cert: str | None
    proxy_key: str | None
    proxy_trusted: str | None


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


def nginx_conf(
    objs: MeshObjects,
    files: NginxFiles,
    *,
    listen_port: int,
    upstream_port: int,
    workdir: str,
    address: str = "127.0.0.1",
) -> str:
    """nginx.conf with the server ingress-nginx would generate for the Ingress.

    TLS for the Ingress host; each path ``proxy_pass https://`` to the backend (here: Envoy);
    ``proxy_ssl_*`` from the annotations and the ``proxy-ssl-secret``; HTTP/1.1 upstream;
    anything else gets the default backend's 404.  ``proxy_ssl_session_reuse off`` so that a
    refused handshake is never hidden by a resumed session.
    """
    ingress = objs.ingress
    rules = ingress.get("spec", {}).get("rules", [])
    if len(rules) != 1:
        raise DataPlaneConfigError(f"Ingress {object_ref(ingress)}: expected one rule, found {len(rules)}")
    host = rules[0]["host"]
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
    wanted = _nginx_locations(rules[0]["http"]["paths"])
    locations = "\n".join(f"    location {loc} {{\n{body}\n    }}" for loc in wanted)
    if "/" not in wanted:  # ingress-nginx's default backend answers everything else
        locations += '\n    location / { return 404 "default backend - 404\\n"; }'

    return f"""# Generated from Ingress {object_ref(ingress)} as ingress-nginx would (loopback data plane).
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  upstream upstream_balancer {{ server {address}:{upstream_port}; }}
  server {{
    listen {address}:{listen_port} ssl;
    server_name {host};
    ssl_certificate {files.server_cert};
    ssl_certificate_key {files.server_key};
    ssl_protocols TLSv1.2 TLSv1.3;
{locations}
  }}
}}
"""


def dumps(config: Mapping[str, Any]) -> str:
    """Envoy reads JSON as YAML: write it as JSON (no YAML dependency)."""
    return json.dumps(config, indent=2)
