"""Recipe steps 10-12: the gateway's client-CA secret, the Istio Gateway and VirtualService(s).

Istio reads a MUTUAL server's certificate from ``credentialName`` and its client CA from
``<credentialName>-cacert`` (key ``ca.crt``); both must be in the gateway workload's
namespace.  The Gateway and VirtualService go there too, next to what they use.  With
``apps`` set there is one VirtualService per entry (``alb-mtls-<name>``, a name the httpbin
sample's ``httpbin`` can never be), all bound to the one Gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from . import deferred, specs
from .settings import App


class MeshGatewayArgs(TypedDict):
    """What :class:`MeshGateway` needs."""

    namespace: str
    """The gateway workload's namespace (``gatewayNamespace``): the Gateway, the VirtualService and
    the ``-cacert`` secret go there, next to what they use."""
    selector: Mapping[str, str]
    """Labels of the gateway pods the Gateway applies to (``gatewaySelector``)."""
    istio_api_version: str
    """apiVersion of the Gateway and VirtualService (``istioApiVersion``)."""
    hosts: pulumi.Output[Sequence[str]]
    """The gateway's subdomain and the ALB host."""
    gateway_secret: pulumi.Output[str]
    """The gateway's server certificate secret (``credentialName``)."""
    trusted_client_ca_pem: pulumi.Output[str]
    """The CA(s) the gateway trusts for the ALB's client certificate."""
    pinned_sans: pulumi.Output[Sequence[str]]
    """The client certificate SANs the gateway accepts."""
    routes: Sequence[str]
    """Path prefixes routed to httpbin (``routes``), when ``apps`` is unset."""
    app_namespace: str
    """Where httpbin runs (``appNamespace``), when ``apps`` is unset."""
    apps: Sequence[App] | None
    """The user's services (``apps``); ``None``: the httpbin sample's one VirtualService."""
    alb_domain: str
    """The ALB's Ingress subdomain, under which an app's label host is served."""
    app_namespaces: Mapping[str, pulumi.Resource]
    """Each app namespace's resource: an app's VirtualService waits for it (and goes first on destroy)."""
    wait_for: Sequence[pulumi.Resource]
    """What must exist before the Gateway: the nlb-dns registration, whose secret it names."""


class MeshGateway(pulumi.ComponentResource):
    """MUTUAL-TLS Gateway for the gateway's name and the ALB's hosts, routed to httpbin or to ``apps``."""

    gateway: k8s.apiextensions.CustomResource
    virtual_service: k8s.apiextensions.CustomResource | None = None
    """The httpbin sample's VirtualService (``apps`` unset)."""
    cacert_secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: MeshGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        """``opts`` carries the Kubernetes provider (``providers``), which the children inherit."""
        super().__init__("iks-alb-istio-mtls:index:MeshGateway", name, None, opts)
        ns = args["namespace"]
        hosts, gateway_secret = args["hosts"], args["gateway_secret"]
        self.cacert_secret = k8s.core.v1.Secret(
            f"{name}-cacert",
            metadata={
                "name": gateway_secret.apply(specs.cacert_secret_name),
                "namespace": ns,
                "labels": specs.labels("istio-ingressgateway"),
            },
            type="Opaque",
            string_data={"ca.crt": args["trusted_client_ca_pem"]},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Only the values still pending stay unknown in a preview (see deferred.py).
        pending = deferred.Deferred()
        spec = pending.resolve(
            specs.gateway_spec(
                selector=args["selector"],
                hosts=pending.items(hosts),
                credential_name=pending.text(gateway_secret),
                client_sans=pending.items(args["pinned_sans"]),
            )
        )
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=args["istio_api_version"],
            kind="Gateway",
            metadata={"name": specs.GATEWAY_NAME, "namespace": ns, "labels": specs.labels("httpbin")},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cacert_secret, *args["wait_for"]]),
        )
        self.virtual_services: list[k8s.apiextensions.CustomResource] = []
        gateway_ref = f"{ns}/{specs.GATEWAY_NAME}"
        if args["apps"] is None:
            vs_spec = pending.resolve(
                specs.virtual_service_spec(
                    hosts=pending.items(hosts),
                    gateway_ref=gateway_ref,
                    routes=args["routes"],
                    app_namespace=args["app_namespace"],
                )
            )
            self.virtual_service = self._virtual_service(
                f"{name}-virtualservice", args, specs.VIRTUAL_SERVICE_NAME, "httpbin", vs_spec, [self.gateway]
            )
        for app in args["apps"] or ():
            self._virtual_service(
                f"{name}-virtualservice-{app.name}",
                args,
                specs.app_virtual_service_name(app),
                app.name,
                specs.app_virtual_service_spec(app, host=app.fqdn(args["alb_domain"]), gateway_ref=gateway_ref),
                [self.gateway, args["app_namespaces"][app.namespace]],
            )
        self.register_outputs({})

    def _virtual_service(
        self,
        resource_name: str,
        args: MeshGatewayArgs,
        name: str,
        app: str,
        spec: Any,
        depends_on: list[pulumi.Resource],
    ) -> k8s.apiextensions.CustomResource:
        """One VirtualService beside the Gateway, in its namespace, after what it routes through."""
        virtual_service = k8s.apiextensions.CustomResource(
            resource_name,
            api_version=args["istio_api_version"],
            kind="VirtualService",
            metadata={"name": name, "namespace": args["namespace"], "labels": specs.labels(app)},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        self.virtual_services.append(virtual_service)
        return virtual_service
