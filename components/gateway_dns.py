"""Recipe steps 4-6: the gateway's address and its nlb-dns subdomain with an IKS certificate.

The program reads the gateway's Service once; :func:`load_balancer_addresses` and
:func:`https_target_port` turn what it read into values.  The registration runs
``python3 -m components.ibmcloud`` through a pulumi-command ``local.Command``
(create/update/delete); this file only wires it.  Parsing the Command's
one-line JSON result is pure and lives in :mod:`components.ibmcloud`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, cast

import pulumi
import pulumi_command as command

from . import ibmcloud, specs
from .settings import ClusterType


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


def _typed(value: Any) -> bool:
    """A pulumi-kubernetes output type (properties per field), not a plain dict."""
    return any(isinstance(getattr(type(value), name, None), property) for name in ("ports", "target_port"))


def https_target_port(spec: Any, service_ref: str) -> int | str:
    """``targetPort`` of the Service's port 443 (the Service's spec, typed or a dict), or a clear error."""
    ports = getattr(spec, "ports", None) if _typed(spec) else spec.get("ports") if isinstance(spec, dict) else None
    # Typed ServicePorts are dicts too, but reading one by its wire name ("targetPort") logs a
    # warning on every run: read them through their properties.
    listed = [
        {"port": getattr(p, "port", None), "targetPort": getattr(p, "target_port", None)} if _typed(p) else p
        for p in ports or []
        if _typed(p) or isinstance(p, dict)
    ]
    try:
        return specs.gateway_https_target_port(listed, service_ref)
    except ValueError as exc:
        raise pulumi.RunError(str(exc)) from None


class GatewayDnsArgs(TypedDict):
    """What :class:`GatewayDns` needs: where to register, or the subdomain the user configured."""

    cluster: str
    """The IKS cluster (``cluster``)."""
    cluster_type: ClusterType
    """``classic`` registers IPs, ``vpc`` the load balancer's hostname (``clusterType``)."""
    secret_namespace: str
    """Where IKS must put the subdomain's certificate: the gateway's namespace (``gatewayNamespace``)."""
    cert_wait_timeout_seconds: int
    """How long the registration waits for the certificate (``certWaitTimeoutSeconds``)."""
    addresses: pulumi.Output[Sequence[str]] | None
    """The gateway Service's load-balancer addresses, read by the program; ``None``: do not
    register, use ``configured_domain`` and ``configured_secret``."""
    configured_domain: str | None
    """``gatewayDomain``, when the user keeps the subdomain."""
    configured_secret: str | None
    """``gatewaySecret``, its certificate secret."""


class GatewayDns(pulumi.ComponentResource):
    """The gateway's DNS name and certificate secret: registered here, or the configured ones."""

    hostname: pulumi.Output[str]
    """The gateway's subdomain (the Gateway's host, the ALB's SNI and ``proxy-ssl-name``)."""
    secret_name: pulumi.Output[str]
    """Its certificate secret in the gateway's namespace (the Gateway's ``credentialName``)."""
    registration: command.local.Command | None
    """The nlb-dns Command, when this component registers the subdomain."""

    def __init__(self, name: str, args: GatewayDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iks-alb-istio-mtls:index:GatewayDns", name, None, opts)
        self.registration = None
        addresses = args["addresses"]
        if addresses is None:
            # The configured subdomain (settings only allows gatewayDomain with gatewaySecret).
            self.hostname = pulumi.Output.from_input(cast(str, args["configured_domain"]))
            self.secret_name = pulumi.Output.from_input(cast(str, args["configured_secret"]))
            self.register_outputs({"hostname": self.hostname, "secretName": self.secret_name})
            return
        cluster, cluster_type, namespace = args["cluster"], args["cluster_type"], args["secret_namespace"]

        def line(action: str) -> pulumi.Output[str]:
            return addresses.apply(
                lambda found: ibmcloud.command_line(
                    action,
                    cluster=cluster,
                    cluster_type=cluster_type,
                    addresses=found,
                    secret_namespace=namespace,
                    timeout_seconds=args["cert_wait_timeout_seconds"],
                )
            )

        # Cluster, type or address change: a different registration, so replace it (old one
        # removed first: IBM refuses a second subdomain for the same IP).  Anything else (the
        # timeout) is an in-place update, which keeps the stored result.
        triggers = addresses.apply(lambda found: [cluster, cluster_type, namespace, *found])
        self.registration = command.local.Command(
            f"{name}-registration",
            create=line("create"),
            update=line("update"),
            delete=line("delete"),
            triggers=[triggers],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        result = self.registration.stdout.apply(lambda stdout: checked_result(stdout, namespace))
        self.hostname = result.apply(lambda r: r.hostname)
        self.secret_name = result.apply(lambda r: r.secret_name)
        self.register_outputs({"hostname": self.hostname, "secretName": self.secret_name})
