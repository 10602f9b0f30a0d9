"""Recipe steps 4-6: the gateway's address and its nlb-dns subdomain with an IKS certificate.

The registration runs ``python3 -m components.ibmcloud`` through a pulumi-command
``local.Command`` (create/update/delete); this file only wires it.  Parsing the Command's
one-line JSON result is pure and lives in :mod:`components.ibmcloud`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union, cast

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from . import ibmcloud, specs
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


def https_target_port(spec: Any, service_ref: str) -> Union[int, str]:
    """``targetPort`` of the Service's port 443 (the Service's spec, typed or a dict), or a clear error."""
    ports = spec.get("ports") if isinstance(spec, dict) else getattr(spec, "ports", None)
    listed = [
        p if isinstance(p, dict) else {"port": getattr(p, "port", None), "targetPort": getattr(p, "target_port", None)}
        for p in ports or []
    ]
    try:
        return specs.gateway_https_target_port(listed, service_ref)
    except ValueError as exc:
        raise pulumi.RunError(str(exc)) from None


class GatewayDns(pulumi.ComponentResource):
    """The gateway's DNS name and certificate secret: registered here, or the configured ones."""

    hostname: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    addresses: pulumi.Output[Sequence[str]]
    registration: Optional[command.local.Command]
    #: The pod port behind port 443 of the gateway's Service (read when asked for).
    https_target_port: Optional[pulumi.Output[Union[int, str]]]

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        provider: k8s.Provider,
        read_https_target_port: bool = False,
        opts: Optional[pulumi.ResourceOptions] = None,
    ) -> None:
        super().__init__("iks-alb-istio-mtls:index:GatewayDns", name, None, opts)
        self.registration = None
        self.https_target_port = None
        service_ref = f"{settings.gateway_namespace}/{settings.gateway_service}"
        service: Optional[k8s.core.v1.Service] = None
        if settings.registers_dns or read_https_target_port:
            # One read of the installation's Service, for its address and its HTTPS port.
            service = k8s.core.v1.Service.get(
                f"{name}-gateway-service",
                service_ref,
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        if service is not None and read_https_target_port:
            self.https_target_port = service.spec.apply(lambda spec: https_target_port(spec, service_ref))
        if service is None or not settings.registers_dns:
            # The configured subdomain (settings only allows gatewayDomain with gatewaySecret).
            self.hostname = pulumi.Output.from_input(cast(str, settings.gateway_domain))
            self.secret_name = pulumi.Output.from_input(cast(str, settings.gateway_secret))
            self.addresses = pulumi.Output.from_input([])
            self.register_outputs({"hostname": self.hostname, "secretName": self.secret_name})
            return

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
