"""Recipe steps 4-6: the gateway's address and its nlb-dns subdomain with an IKS certificate.

The registration runs ``python3 -m components.ibmcloud`` through a pulumi-command
``local.Command`` (create/update/delete); this file only wires it.  Parsing the Command's
one-line JSON result is pure and lives in :mod:`components.ibmcloud`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from . import ibmcloud
from .settings import Settings


def load_balancer_addresses(status: Any, *, cluster_type: str, service_ref: str) -> list[str]:
    """Every ``status.loadBalancer.ingress[*].ip`` (classic) or ``.hostname`` (vpc), in order.

    A multizone classic cluster has one IP per zone; all of them are registered.
    """
    entries = []
    lb = getattr(status, "load_balancer", None) if status is not None else None
    for entry in (getattr(lb, "ingress", None) or []) if lb is not None else []:
        value = getattr(entry, "ip" if cluster_type == "classic" else "hostname", None)
        if value:
            entries.append(str(value))
    if not entries:
        kind = "IP" if cluster_type == "classic" else "hostname"
        raise pulumi.RunError(
            f"Service {service_ref} has no load-balancer {kind} yet (status.loadBalancer.ingress is empty); "
            f"check `kubectl -n {service_ref.split('/')[0]} get svc {service_ref.split('/')[1]}` "
            f"and that clusterType={cluster_type} is right"
        )
    return sorted(dict.fromkeys(entries))


def checked_result(stdout: str, gateway_namespace: str) -> ibmcloud.NlbResult:
    """The Command's JSON result, whose secret the gateway can actually read."""
    try:
        result = ibmcloud.parse_result(stdout)
    except ValueError as exc:
        raise pulumi.RunError(f"the nlb-dns registration printed no usable result ({exc})") from None
    if result.secret_namespace != gateway_namespace:
        raise pulumi.RunError(
            f"nlb-dns subdomain {result.hostname} keeps its certificate secret {result.secret_name} in namespace "
            f"{result.secret_namespace}, but the gateway reads secrets only from {gateway_namespace}: "
            f"set gatewayDomain/gatewaySecret to a subdomain whose secret is there"
        )
    return result


class GatewayDns(pulumi.ComponentResource):
    """The gateway's DNS name and certificate secret: registered here, or the configured ones."""

    hostname: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    addresses: pulumi.Output[Sequence[str]]
    registration: Optional[command.local.Command]

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        provider: k8s.Provider,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__("iks-alb-istio-mtls:index:GatewayDns", name, None, opts)
        self.registration = None
        if settings.gateway_domain is not None and settings.gateway_secret is not None:
            self.hostname = pulumi.Output.from_input(settings.gateway_domain)
            self.secret_name = pulumi.Output.from_input(settings.gateway_secret)
            self.addresses = pulumi.Output.from_input([])
            self.register_outputs({"hostname": self.hostname, "secretName": self.secret_name})
            return

        service_ref = f"{settings.gateway_namespace}/{settings.gateway_service}"
        service = k8s.core.v1.Service.get(
            f"{name}-gateway-service",
            service_ref,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.addresses = service.status.apply(
            lambda status: load_balancer_addresses(status, cluster_type=settings.cluster_type, service_ref=service_ref)
        )

        def line(action: str) -> pulumi.Output[str]:
            return self.addresses.apply(
                lambda addresses: ibmcloud.command_line(
                    action,
                    cluster=settings.cluster,
                    cluster_type=settings.cluster_type,
                    addresses=addresses,
                    secret_namespace=settings.gateway_namespace,
                    timeout_seconds=settings.cert_wait_timeout_seconds,
                )
            )

        # Cluster, type or address change: a different registration, so replace it (old one
        # removed first: IBM refuses a second subdomain for the same IP).  Anything else (the
        # timeout) is an in-place update, which keeps the stored result.
        triggers = self.addresses.apply(
            lambda a: [settings.cluster, settings.cluster_type, settings.gateway_namespace, *a]
        )
        self.registration = command.local.Command(
            f"{name}-registration",
            create=line("create"),
            update=line("update"),
            delete=line("delete"),
            triggers=[triggers],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        result = self.registration.stdout.apply(
            lambda stdout: checked_result(stdout, settings.gateway_namespace)
        )
        self.hostname = result.apply(lambda r: r.hostname)
        self.secret_name = result.apply(lambda r: r.secret_name)
        self.register_outputs({"hostname": self.hostname, "secretName": self.secret_name})
