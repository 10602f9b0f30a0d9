"""Recipe steps 10-12: the gateway's client-CA secret, the Istio Gateway and VirtualService.

Istio reads a MUTUAL server's certificate from ``credentialName`` and its client CA from
``<credentialName>-cacert`` (key ``ca.crt``); both must be in the gateway workload's
namespace.  The Gateway and VirtualService go there too, next to what they use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from . import deferred, specs
from .settings import Settings


class MeshGateway(pulumi.ComponentResource):
    """MUTUAL-TLS Gateway for the gateway domain and the ALB host, routed to httpbin."""

    gateway: k8s.apiextensions.CustomResource
    virtual_service: k8s.apiextensions.CustomResource

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        hosts: pulumi.Output[Sequence[str]],
        gateway_secret: pulumi.Output[str],
        trusted_client_ca_pem: pulumi.Output[str],
        pinned_sans: pulumi.Output[Sequence[str]],
        wait_for: Sequence[pulumi.Resource],
        provider: k8s.Provider,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__("iks-alb-istio-mtls:index:MeshGateway", name, None, opts)
        ns = settings.gateway_namespace
        self.cacert_secret = k8s.core.v1.Secret(
            f"{name}-cacert",
            metadata={
                "name": gateway_secret.apply(specs.cacert_secret_name),
                "namespace": ns,
                "labels": specs.labels("istio-ingressgateway"),
            },
            type="Opaque",
            string_data={"ca.crt": trusted_client_ca_pem},
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        # Only the values still pending stay unknown in a preview (see deferred.py).
        pending = deferred.Deferred()
        spec = pending.resolve(
            specs.gateway_spec(
                selector=settings.gateway_selector,
                hosts=pending.items(hosts),
                credential_name=pending.text(gateway_secret),
                client_sans=pending.items(pinned_sans),
            )
        )
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=settings.istio_api_version,
            kind="Gateway",
            metadata={"name": specs.GATEWAY_NAME, "namespace": ns, "labels": specs.labels("httpbin")},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.cacert_secret, *wait_for]),
        )
        vs_spec = pending.resolve(
            specs.virtual_service_spec(
                hosts=pending.items(hosts),
                gateway_ref=f"{ns}/{specs.GATEWAY_NAME}",
                routes=settings.routes,
                app_namespace=settings.app_namespace,
            )
        )
        self.virtual_service = k8s.apiextensions.CustomResource(
            f"{name}-virtualservice",
            api_version=settings.istio_api_version,
            kind="VirtualService",
            metadata={"name": specs.VIRTUAL_SERVICE_NAME, "namespace": ns, "labels": specs.labels("httpbin")},
            spec=vs_spec,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.gateway]),
        )
        self.register_outputs({})
