"""The Pulumi program: settings -> components -> stack outputs.  ``__main__.py`` calls :func:`run`.

Order of failure matters: config errors (and a bad ``trustedCaPem``) stop the run before
any resource is registered; cluster material is checked inside :class:`ClientPki` before
the resources that would carry it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import config as runtime_config

from . import certs, ibmcloud, specs
from .alb_ingress import AlbIngress
from .client_pki import ClientPki
from .gateway_dns import GatewayDns
from .mesh_gateway import MeshGateway
from .sample_app import SampleApp
from .settings import PROJECT, ConfigError, Settings, parse_settings

Discover = Callable[[str], ibmcloud.AlbInfo]


def read_raw_config() -> dict[str, Any]:
    """This project's config as the engine passed it (explicit keys only, no defaults).

    Reading the whole namespace, not key by key, is what lets a misspelt key be refused.
    """
    merged: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {key[len(prefix):]: value for key, value in merged.items() if key.startswith(prefix)}


def resolve_alb(settings: Settings, discover: Discover) -> tuple[str, str]:
    """The ALB subdomain and TLS secret: configured, or asked of IBM Cloud once per run."""
    if settings.alb_domain and settings.alb_secret:
        return settings.alb_domain, settings.alb_secret
    try:
        found = discover(settings.cluster)
    except ibmcloud.IbmCloudError as exc:
        raise pulumi.RunError(f"{exc} (or set albDomain and albSecret in the stack config)") from None
    return settings.alb_domain or found.domain, settings.alb_secret or found.secret


def run(discover: Discover | None = None) -> None:
    """Build the whole resource graph for the current stack."""
    try:
        settings = parse_settings(read_raw_config())
        trusted_ca_pem = settings.trusted_ca_pem or certs.isrg_roots_pem()
        certs.check_trust_bundle(trusted_ca_pem, "trustedCaPem")
    except (ConfigError, certs.CertificateError) as exc:
        raise pulumi.RunError(str(exc)) from None
    alb_domain, alb_secret = resolve_alb(settings, discover or ibmcloud.discover_alb)
    host = specs.alb_host(alb_domain)

    provider = k8s.Provider(
        "k8s",
        context=settings.kube_context,
        enable_secret_mutable=True,
    )
    app = SampleApp("app", namespace=settings.app_namespace, deploy_httpbin=settings.deploy_httpbin,
                    opts=pulumi.ResourceOptions(providers=[provider]))
    # Traefik routes to a Service of ours, which must target the gateway pods' HTTPS port.
    dns = GatewayDns("gateway-dns", settings, provider=provider, read_https_target_port=settings.alb_flavor == "traefik")
    pki = ClientPki(
        "client-pki",
        settings,
        alb_domain=alb_domain,
        alb_secret=alb_secret,
        trusted_ca_pem=trusted_ca_pem,
        provider=provider,
    )
    hosts = dns.hostname.apply(lambda gateway_domain: [gateway_domain, host])
    mesh = MeshGateway(
        "mesh",
        settings,
        hosts=hosts,
        gateway_secret=dns.secret_name,
        trusted_client_ca_pem=pki.gateway_trusted_ca_pem,
        pinned_sans=pki.pinned_sans,
        wait_for=[dns],
        provider=provider,
    )
    AlbIngress(
        "alb",
        settings,
        alb_domain=alb_domain,
        alb_secret=alb_secret,
        gateway_domain=dns.hostname,
        client_cert_pem=pki.client_cert_pem,
        client_key_pem=pki.client_key_pem,
        trusted_ca_pem=trusted_ca_pem,
        wait_for=[mesh],
        provider=provider,
        gateway_https_target_port=dns.https_target_port,
    )

    pulumi.export("gatewayDomain", dns.hostname)
    pulumi.export("gatewaySecret", dns.secret_name)
    pulumi.export("gatewayNamespace", settings.gateway_namespace)
    pulumi.export("albHost", host)
    pulumi.export("albCertsSecret", f"{settings.gateway_namespace}/{specs.ALB_CERTS_SECRET}")
    pulumi.export("urls", hosts.apply(lambda h: specs.urls(h, settings.routes)))
    pulumi.export("clientCertificateNotAfter", pki.not_after)
    pulumi.export("appNamespace", app.namespace.metadata.apply(lambda m: m.name))
