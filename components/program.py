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
from .alb_ingress import AlbIngress, AlbIngressArgs
from .apps import ServiceApps, ServiceAppsArgs
from .client_pki import ClientPki, ClientPkiArgs, Preflight
from .gateway_cert import GatewayCert, GatewayCertArgs
from .gateway_dns import GatewayDns, GatewayDnsArgs, https_target_port, load_balancer_addresses
from .mesh_gateway import MeshGateway, MeshGatewayArgs
from .sample_app import SampleApp, SampleAppArgs
from .settings import PROJECT, ConfigError, Settings, check_app_hosts, parse_settings
from .settings import alb_domain as alb_domain_rule
from .settings import secret_name as secret_name_rule

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
    try:
        # What IBM Cloud reports meets the same rules as what a user types.
        domain = settings.alb_domain or alb_domain_rule("albDomain", found.domain)
        secret = settings.alb_secret or secret_name_rule("albSecret", found.secret)
    except ConfigError as exc:
        raise pulumi.RunError(
            f"{exc} (as `ibmcloud ks cluster get --cluster {settings.cluster}` reports it; set albDomain and albSecret)"
        ) from None
    return domain, secret


def read_gateway_service(settings: Settings, service_ref: str, provider: k8s.Provider) -> k8s.core.v1.Service | None:
    """The Istio installation's gateway Service, read once: its load-balancer addresses feed the
    nlb-dns registration, its port 443 target the Traefik flavour's own Service.  ``None`` when
    neither needs it (a configured gatewayDomain on nginx or ibm-legacy)."""
    if not (settings.registers_dns or settings.alb_flavor == "traefik"):
        return None
    return k8s.core.v1.Service.get("gateway-service", service_ref, opts=pulumi.ResourceOptions(provider=provider))


def gateway_identity(
    settings: Settings, pki: ClientPki, addresses: pulumi.Output[list[str]] | None, with_k8s: pulumi.ResourceOptions
) -> GatewayDns | GatewayCert:
    """The gateway's name and certificate secret: an nlb-dns subdomain (registered, or the one
    configured), or a certificate from the program's CA (``gatewayCertSource=private-ca``)."""
    if settings.gateway_cert_source == "private-ca":
        if pki.ca_cert_pem is None or pki.ca_private_key_pem is None:  # settings refuse it: clientCertSource=alb
            raise pulumi.RunError("gatewayCertSource=private-ca needs clientCertSource=private-ca (the program's CA)")
        return GatewayCert(
            "gateway-cert",
            GatewayCertArgs(
                cluster=settings.cluster,
                namespace=settings.gateway_namespace,
                gateway_service=settings.gateway_service,
                ca_cert_pem=pki.ca_cert_pem,
                ca_private_key_pem=pki.ca_private_key_pem,
                validity_hours=settings.gateway_cert_validity_hours,
                early_renewal_hours=settings.gateway_cert_early_renewal_hours,
            ),
            opts=with_k8s,
        )
    return GatewayDns(
        "gateway-dns",
        GatewayDnsArgs(
            cluster=settings.cluster,
            cluster_type=settings.cluster_type,
            secret_namespace=settings.gateway_namespace,
            cert_wait_timeout_seconds=settings.cert_wait_timeout_seconds,
            addresses=addresses,
            configured_domain=settings.gateway_domain,
            configured_secret=settings.gateway_secret,
        ),
        opts=with_k8s,
    )


def run(discover: Discover | None = None, preflight: Preflight | None = None) -> None:
    """Build the whole resource graph for the current stack.

    ``discover`` and ``preflight`` default to asking IBM Cloud and to the certificate checks;
    the offline tools pass their own (a stand-in cluster, a rehearsal without the preflight).
    """
    try:
        settings = parse_settings(read_raw_config())
        # Checked, then carried in canonical form (an indented bundle would break nginx).
        # nginx (the nginx and ibm-legacy ALBs) verifies the gateway only up to a root in ca.crt.
        needs_root = {"nginx": "ingress-nginx", "ibm-legacy": "the IBM ALB's nginx"}.get(settings.alb_flavor)
        trusted_ca_pem = certs.to_pem(
            certs.check_trust_bundle(
                settings.trusted_ca_pem or certs.isrg_roots_pem(), "trustedCaPem", require_root=needs_root
            )
        )
    except (ConfigError, certs.CertificateError) as exc:
        raise pulumi.RunError(str(exc)) from None
    alb_domain, alb_secret = resolve_alb(settings, discover or ibmcloud.discover_alb)
    host = specs.alb_host(alb_domain)
    if settings.apps is not None:
        try:
            check_app_hosts(settings.apps, alb_domain)
        except ConfigError as exc:
            raise pulumi.RunError(str(exc)) from None

    provider = k8s.Provider(
        "k8s",
        context=settings.kube_context,
        enable_secret_mutable=True,
    )
    # Every component gets the provider through opts; their children inherit it.
    with_k8s = pulumi.ResourceOptions(providers=[provider])
    # The httpbin sample: always without apps (its namespace even without httpbin), with apps only if asked.
    app = None
    if settings.apps is None or settings.deploy_httpbin:
        app = SampleApp(
            "app", SampleAppArgs(namespace=settings.app_namespace, deploy_httpbin=settings.deploy_httpbin), opts=with_k8s
        )
    apps = None
    if settings.apps is not None:
        apps = ServiceApps(
            "apps",
            ServiceAppsArgs(
                apps=settings.apps,
                alb_domain=alb_domain,
                gateway_namespace=settings.gateway_namespace,
                existing={settings.app_namespace: app.namespace} if app is not None else {},
                preflight=certs.preflight_host_tls_material,
            ),
            opts=with_k8s,
        )
    service_ref = f"{settings.gateway_namespace}/{settings.gateway_service}"
    service = read_gateway_service(settings, service_ref, provider)
    addresses = None
    if service is not None and settings.registers_dns:
        addresses = service.status.apply(
            lambda status: load_balancer_addresses(status, cluster_type=settings.cluster_type, service_ref=service_ref)
        )
    https_port: pulumi.Output[int | str] | None = None
    if service is not None and settings.alb_flavor == "traefik":
        https_port = service.spec.apply(lambda spec: https_target_port(spec, service_ref))
    pki = ClientPki(
        "client-pki",
        ClientPkiArgs(
            source=settings.client_cert_source,
            cluster=settings.cluster,
            alb_domain=alb_domain,
            alb_secret_ref=f"{settings.alb_secret_namespace}/{alb_secret}",
            trusted_ca_pem=trusted_ca_pem,
            validity_hours=settings.client_cert_validity_hours,
            early_renewal_hours=settings.client_cert_early_renewal_hours,
            preflight=preflight or certs.preflight_alb_client_material,
        ),
        opts=with_k8s,
    )
    dns = gateway_identity(settings, pki, addresses, with_k8s)
    # The ALB verifies the gateway against trustedCaPem (nlb-dns) or the program's CA (private-ca).
    alb_trusts: pulumi.Input[str] = trusted_ca_pem
    if isinstance(dns, GatewayCert) and pki.ca_cert_pem is not None:
        alb_trusts = pki.ca_cert_pem
    served = [host] if settings.apps is None else specs.app_hosts(settings.apps, alb_domain)
    hosts = dns.hostname.apply(lambda gateway_domain: [gateway_domain, *served])
    mesh = MeshGateway(
        "mesh",
        MeshGatewayArgs(
            namespace=settings.gateway_namespace,
            selector=settings.gateway_selector,
            istio_api_version=settings.istio_api_version,
            hosts=hosts,
            gateway_secret=dns.secret_name,
            trusted_client_ca_pem=pki.gateway_trusted_ca_pem,
            pinned_sans=pki.pinned_sans,
            routes=settings.routes,
            app_namespace=settings.app_namespace,
            apps=settings.apps,
            alb_domain=alb_domain,
            app_namespaces=apps.namespaces if apps is not None else {},
            wait_for=[dns],
        ),
        opts=with_k8s,
    )
    AlbIngress(
        "alb",
        AlbIngressArgs(
            flavor=settings.alb_flavor,
            ingress_class_name=settings.ingress_class_name,
            namespace=settings.gateway_namespace,
            gateway_service=settings.gateway_service,
            gateway_selector=settings.gateway_selector,
            gateway_https_target_port=https_port,
            gateway_domain=dns.hostname,
            routes=settings.routes,
            apps=settings.apps,
            custom_tls=apps.tls_secrets if apps is not None else {},
            cluster=settings.cluster,
            alb_domain=alb_domain,
            alb_secret=alb_secret,
            alb_secret_namespace=settings.alb_secret_namespace,
            alb_tls_mode=settings.alb_tls_mode,
            client_cert_pem=pki.client_cert_pem,
            client_key_pem=pki.client_key_pem,
            trusted_ca_pem=alb_trusts,
            wait_for=[mesh],
        ),
        opts=with_k8s,
    )

    pulumi.export("gatewayDomain", dns.hostname)
    pulumi.export("gatewaySecret", dns.secret_name)
    pulumi.export("gatewayNamespace", settings.gateway_namespace)
    pulumi.export("albCertsSecret", f"{settings.gateway_namespace}/{specs.ALB_CERTS_SECRET}")
    pulumi.export("clientCertificateNotAfter", pki.not_after)
    if isinstance(dns, GatewayCert):
        pulumi.export("gatewayCertificateNotAfter", dns.not_after)
    if settings.apps is None:
        pulumi.export("albHost", host)
        # A private-ca gateway's name resolves only inside the cluster: list what a client can reach.
        reachable = served if settings.gateway_cert_source == "private-ca" else hosts
        pulumi.export("urls", pulumi.Output.from_input(reachable).apply(lambda h: specs.urls(h, settings.routes)))
    else:
        pulumi.export("urls", specs.app_urls(settings.apps, alb_domain))
    if app is not None:
        pulumi.export("appNamespace", app.namespace.metadata.apply(lambda m: m.name))
