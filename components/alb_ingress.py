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

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from . import deferred, ibmcloud, specs
from .settings import AlbFlavor, AlbTlsMode, App


class AlbIngressArgs(TypedDict):
    """What :class:`AlbIngress` needs."""

    flavor: AlbFlavor
    """Which ALB serves the Ingress (``albFlavor``): annotations or a ServersTransport."""
    ingress_class_name: str
    """The ALB's IngressClass (``ingressClassName``, or the flavour's default)."""
    namespace: str
    """The gateway's namespace (``gatewayNamespace``): the Ingress and ``alb-certs`` live there."""
    gateway_service: str
    """The gateway's Service (``gatewayService``), the Ingress's backend on nginx and ibm-legacy."""
    gateway_selector: Mapping[str, str]
    """Labels of the gateway pods, which the Traefik flavour's own Service selects."""
    gateway_https_target_port: pulumi.Output[int | str] | None
    """The pod port behind port 443 of the gateway's Service (Traefik flavour), read by the program."""
    gateway_domain: pulumi.Output[str]
    """The gateway's subdomain: the ALB's SNI and the name it verifies."""
    routes: Sequence[str]
    """Path prefixes the ALB sends to the gateway for httpbin (``routes``), when ``apps`` is unset."""
    apps: Sequence[App] | None
    """The user's services (``apps``): one Ingress rule per host; ``None``: the httpbin sample's host."""
    custom_tls: Mapping[str, pulumi.Output[str]]
    """Custom domain -> its ``tlsSecret``, known once the secret passed its check."""
    cluster: str
    """The IKS cluster, for the ALB certificate's mirror (``cluster``)."""
    alb_domain: str
    """The ALB's Ingress subdomain: the Ingress's host derives from it."""
    alb_secret: str
    """The ALB's TLS secret (``albSecret``)."""
    alb_secret_namespace: str
    """Where IKS keeps it (``albSecretNamespace``)."""
    alb_tls_mode: AlbTlsMode
    """How the Ingress's namespace gets the ALB certificate (``albTlsMode``)."""
    client_cert_pem: pulumi.Output[str]
    """The certificate the ALB presents to the gateway."""
    client_key_pem: pulumi.Output[str]
    """Its private key (a secret)."""
    trusted_ca_pem: pulumi.Input[str]
    """The roots the ALB trusts for the gateway's certificate: ``trustedCaPem`` (nlb-dns) or the
    program's CA (``gatewayCertSource=private-ca``)."""
    wait_for: Sequence[pulumi.Resource]
    """What must exist before the Ingress routes to the gateway: the Gateway."""


class AlbIngress(pulumi.ComponentResource):
    """``alb-certs`` (client cert, key, CA bundle for the gateway) and the Ingress using it."""

    secret: k8s.core.v1.Secret
    ingress: k8s.networking.v1.Ingress
    tls_mirror: command.local.Command | None = None
    servers_transport: k8s.apiextensions.CustomResource | None = None
    gateway_service: k8s.core.v1.Service | None = None

    def __init__(self, name: str, args: AlbIngressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        """``opts`` carries the Kubernetes provider (``providers``), which the children inherit."""
        super().__init__("iks-alb-istio-mtls:index:AlbIngress", name, None, opts)
        ns, flavor = args["namespace"], args["flavor"]
        data = pulumi.Output.all(args["client_cert_pem"], args["client_key_pem"], args["trusted_ca_pem"]).apply(
            lambda pems: specs.alb_certs_data(flavor, pems[0], pems[1], pems[2])
        )
        # Renewal changes the data: the provider's enable_secret_mutable updates it in place.
        self.secret = k8s.core.v1.Secret(
            f"{name}-alb-certs",
            metadata={"name": specs.ALB_CERTS_SECRET, "namespace": ns, "labels": specs.labels("alb")},
            type="Opaque",
            string_data=pulumi.Output.secret(cast(Any, data)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        host = specs.alb_host(args["alb_domain"])
        tls_secret_name, tls_waits = self._tls_secret(name, args)
        # Only the values still pending stay unknown in a preview (see deferred.py).
        pending = deferred.Deferred()
        annotations = pending.resolve(
            specs.ingress_annotations(
                flavor=flavor,
                gateway_namespace=ns,
                gateway_service=args["gateway_service"],
                gateway_domain=pending.text(args["gateway_domain"]),
            )
        )
        backend_waits: list[pulumi.Resource] = []
        if flavor == "traefik":
            backend_waits = self._traefik_backend(name, args)
        backend_service = specs.ingress_backend_service(flavor, args["gateway_service"])
        alb_tls = pending.text(tls_secret_name) if tls_secret_name is not None else None
        if args["apps"] is None:
            hosts = [specs.IngressHost(host, tuple(args["routes"]), alb_tls)]
        else:
            custom = args["custom_tls"]
            hosts = [
                specs.IngressHost(h.host, h.paths, pending.text(custom[h.host])) if h.host in custom else h
                for h in specs.ingress_hosts(args["apps"], args["alb_domain"], alb_tls)
            ]
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
                    ingress_class_name=args["ingress_class_name"], hosts=hosts, gateway_service=backend_service
                )
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.secret, *backend_waits, *tls_waits, *args["wait_for"]]
            ),
        )
        self.register_outputs({"host": host} if args["apps"] is None else {"hosts": [h.host for h in hosts]})

    def _traefik_backend(self, name: str, args: AlbIngressArgs) -> list[pulumi.Resource]:
        """The ServersTransport (client cert, CA, server name) and the Service it is bound to."""
        ns = args["namespace"]
        transport = deferred.Deferred()
        # The spec waits for the registration through gateway_domain; alb-certs, which it
        # reads, and the Gateway (wait_for) are explicit.
        self.servers_transport = k8s.apiextensions.CustomResource(
            f"{name}-servers-transport",
            api_version=specs.TRAEFIK_API_VERSION,
            kind="ServersTransport",
            metadata={"name": specs.SERVERS_TRANSPORT_NAME, "namespace": ns, "labels": specs.labels("alb")},
            spec=transport.resolve(specs.servers_transport_spec(gateway_domain=transport.text(args["gateway_domain"]))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.secret, *args["wait_for"]]),
        )
        https_target_port = args["gateway_https_target_port"] or specs.GATEWAY_HTTPS_TARGET_PORT
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
            spec=cast(Any, pending.resolve(specs.traefik_gateway_service_spec(args["gateway_selector"], pending.text(https_target_port)))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.servers_transport]),
        )
        return [self.servers_transport, self.gateway_service]

    def _tls_secret(self, name: str, args: AlbIngressArgs) -> tuple[pulumi.Output[str] | None, list[pulumi.Resource]]:
        """The ALB secret's name in the Ingress's namespace, and what must exist first."""
        ns, alb_secret, source_ns = args["namespace"], args["alb_secret"], args["alb_secret_namespace"]
        if source_ns == ns:
            return pulumi.Output.from_input(alb_secret), []
        if args["alb_tls_mode"] == "default-certificate":
            return None, []
        cluster = args["cluster"]

        def line(action: str) -> str:
            return ibmcloud.mirror_command_line(
                action, cluster=cluster, name=alb_secret, source_namespace=source_ns, namespace=ns,
            )

        self.tls_mirror = command.local.Command(
            f"{name}-tls-mirror",
            create=line("mirror-secret"),
            update=line("mirror-secret"),
            delete=line("unmirror-secret"),
            triggers=[cluster, alb_secret, source_ns, ns],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        return self.tls_mirror.stdout.apply(ibmcloud.parse_mirror_result), [self.tls_mirror]
