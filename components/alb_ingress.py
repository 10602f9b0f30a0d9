"""Recipe steps 9 and 13: the ``alb-certs`` secret and the ALB Ingress that re-encrypts to the gateway.

The Ingress lives in the gateway's namespace because ingress-nginx reads
``proxy-ssl-secret`` only from the Ingress's own namespace, and the backend Service
(the gateway) must be in it too.  The ALB reads the Ingress's TLS secret from that
namespace as well, while IKS keeps the subdomain's certificate in ``default``: IBM's
documented way is ``ibmcloud ks ingress secret create --cert-crn`` in the other namespace
(``albTlsMode=mirror``, kept current by IKS when a Secrets Manager instance is registered),
or the ALB's ``defaultCertificate`` (``albTlsMode=default-certificate``).

``albFlavor=traefik`` (IKS's Traefik ALBs) re-encrypts through a ``ServersTransport``
(``traefik.io/v1alpha1``) instead of annotations.  Traefik takes it from the backend
*Service*'s annotations, so the Ingress routes to a Service of ours that selects the gateway
pods: the gateway's own Service belongs to the Istio installation (see
:func:`specs.traefik_gateway_service_spec`).  Order: ``alb-certs`` and the nlb-dns
registration -> ServersTransport -> Service -> Ingress, so Traefik never sees a reference to
something that does not exist yet (and ``destroy`` removes them the other way round).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union, cast

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from . import deferred, ibmcloud, specs
from .settings import Settings


class AlbIngress(pulumi.ComponentResource):
    """``alb-certs`` (client cert, key, CA bundle for the gateway) and the Ingress using it."""

    secret: k8s.core.v1.Secret
    ingress: k8s.networking.v1.Ingress
    tls_mirror: Optional[command.local.Command] = None
    servers_transport: Optional[k8s.apiextensions.CustomResource] = None
    gateway_service: Optional[k8s.core.v1.Service] = None

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        alb_domain: str,
        alb_secret: str,
        gateway_domain: pulumi.Output[str],
        client_cert_pem: pulumi.Output[str],
        client_key_pem: pulumi.Output[str],
        trusted_ca_pem: str,
        wait_for: Sequence[pulumi.Resource],
        provider: k8s.Provider,
        gateway_https_target_port: Optional[pulumi.Input[Union[int, str]]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__("iks-alb-istio-mtls:index:AlbIngress", name, None, opts)
        ns = settings.gateway_namespace
        data = pulumi.Output.all(client_cert_pem, client_key_pem).apply(
            lambda pems: specs.alb_certs_data(settings.alb_flavor, pems[0], pems[1], trusted_ca_pem)
        )
        # Renewal changes the data: the provider's enable_secret_mutable updates it in place.
        self.secret = k8s.core.v1.Secret(
            f"{name}-alb-certs",
            metadata={"name": specs.ALB_CERTS_SECRET, "namespace": ns, "labels": specs.labels("alb")},
            type="Opaque",
            string_data=pulumi.Output.secret(cast(Any, data)),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        host = specs.alb_host(alb_domain)
        tls_secret_name, tls_waits = self._tls_secret(name, settings, alb_secret)
        # Only the values still pending stay unknown in a preview (see deferred.py).
        pending = deferred.Deferred()
        annotations = pending.resolve(
            specs.ingress_annotations(
                flavor=settings.alb_flavor,
                gateway_namespace=ns,
                gateway_service=settings.gateway_service,
                gateway_domain=pending.text(gateway_domain),
            )
        )
        backend_waits: list[pulumi.Resource] = []
        if settings.alb_flavor == "traefik":
            backend_waits = self._traefik_backend(
                name, settings, gateway_domain, gateway_https_target_port or specs.GATEWAY_HTTPS_TARGET_PORT, wait_for, provider
            )
        backend_service = specs.ingress_backend_service(settings.alb_flavor, settings.gateway_service)
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata={
                "name": specs.INGRESS_NAME,
                "namespace": ns,
                "labels": specs.labels("alb"),
                "annotations": annotations,
            },
            spec=pending.resolve(
                specs.ingress_spec(
                    ingress_class_name=settings.ingress_class_name,
                    host=host,
                    routes=settings.routes,
                    gateway_service=backend_service,
                    tls_secret_name=pending.text(tls_secret_name) if tls_secret_name is not None else None,
                )
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[self.secret, *backend_waits, *tls_waits, *wait_for]
            ),
        )
        self.register_outputs({"host": host})

    def _traefik_backend(
        self,
        name: str,
        settings: Settings,
        gateway_domain: pulumi.Output[str],
        https_target_port: pulumi.Input[Union[int, str]],
        wait_for: Sequence[pulumi.Resource],
        provider: k8s.Provider,
    ) -> list[pulumi.Resource]:
        """The ServersTransport (client cert, CA, server name) and the Service it is bound to."""
        ns = settings.gateway_namespace
        transport = deferred.Deferred()
        # The spec waits for the registration through gateway_domain; alb-certs, which it
        # reads, and the Gateway (wait_for) are explicit.
        self.servers_transport = k8s.apiextensions.CustomResource(
            f"{name}-servers-transport",
            api_version=specs.TRAEFIK_API_VERSION,
            kind="ServersTransport",
            metadata={"name": specs.SERVERS_TRANSPORT_NAME, "namespace": ns, "labels": specs.labels("alb")},
            spec=transport.resolve(specs.servers_transport_spec(gateway_domain=transport.text(gateway_domain))),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.secret, *wait_for]),
        )
        pending = deferred.Deferred()
        # A ClusterIP Service with a selector: the provider's await (endpoints exist) then also
        # proves that gatewaySelector finds the gateway pods.
        self.gateway_service = k8s.core.v1.Service(
            f"{name}-traefik-service",
            metadata={
                "name": specs.TRAEFIK_GATEWAY_SERVICE,
                "namespace": ns,
                "labels": specs.labels("alb"),
                "annotations": specs.traefik_service_annotations(ns),
            },
            spec=cast(Any, pending.resolve(specs.traefik_gateway_service_spec(settings.gateway_selector, pending.text(https_target_port)))),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.servers_transport]),
        )
        return [self.servers_transport, self.gateway_service]

    def _tls_secret(
        self, name: str, settings: Settings, alb_secret: str
    ) -> tuple[Optional[pulumi.Output[str]], list[pulumi.Resource]]:
        """The ALB secret's name in the Ingress's namespace, and what must exist first."""
        ns = settings.gateway_namespace
        if settings.alb_secret_namespace == ns:
            return pulumi.Output.from_input(alb_secret), []
        if settings.alb_tls_mode == "default-certificate":
            return None, []

        def line(action: str) -> str:
            return ibmcloud.mirror_command_line(
                action, cluster=settings.cluster, name=alb_secret,
                source_namespace=settings.alb_secret_namespace, namespace=ns,
            )

        self.tls_mirror = command.local.Command(
            f"{name}-tls-mirror",
            create=line("mirror-secret"),
            update=line("mirror-secret"),
            delete=line("unmirror-secret"),
            triggers=[settings.cluster, alb_secret, settings.alb_secret_namespace, ns],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        return self.tls_mirror.stdout.apply(ibmcloud.parse_mirror_result), [self.tls_mirror]
